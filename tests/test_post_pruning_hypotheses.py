"""The post-training pruning hypotheses of Figs. 4.4/4.5: a network per ratio, fine-tuning after
pruning, their comparison with the thesis's Figs. 4.4 and 4.5, and the figures drawn from them."""

import json

import numpy as np
import pytest

from refprune.data.tasks import load_task
from refprune.experiments.figures.synthetic_hypotheses import THESIS_FIG44, THESIS_FIG45, THESIS_RATIOS, rows
from refprune.experiments.jobs import run_post_pruning_job
from refprune.train.baselines import per_ratio_network_pruning, post_training_pruning
from refprune.train.loop import TrainConfig

LAYERS = (1, 8, 8, 1)
CFG = TrainConfig(method="dense", loss="mse", epochs=2, batch_size=64, lr=1e-2)


@pytest.fixture(scope="module")
def data():
    return load_task("synthetic", alpha=2)


def test_a_network_per_ratio_trains_a_different_network_for_each_ratio(data):
    shared = post_training_pruning(data, LAYERS, CFG, [0.0, 0.0])
    pernet = per_ratio_network_pruning(data, LAYERS, CFG, [0.0, 0.0])
    assert shared[0]["val_r2"] == shared[1]["val_r2"]   # one network, the same ratio: the same score
    assert pernet[0]["val_r2"] != pernet[1]["val_r2"]   # two networks (seeds 0 and 1)
    assert pernet[0]["val_r2"] == shared[0]["val_r2"]   # ratio 0 of seed 0 is the shared network itself


def test_the_fine_tuning_hypothesis_reports_the_scores_after_fine_tuning(data):
    job = {"kind": "post_pruning", "data": "synthetic", "alpha": 2, "seed": 0, "epochs": 2, "batch_size": 64,
           "lr": 1e-2, "layers": list(LAYERS), "ratios": [0.0, 0.9], "hypothesis": "finetune", "finetune_epochs": 3}
    tuned, _ = run_post_pruning_job(job)
    plain, _ = run_post_pruning_job({**job, "hypothesis": "shared"})
    assert tuned["hypothesis"] == "finetune"
    assert tuned["by_ratio"][1]["val_r2"] != plain["by_ratio"][1]["val_r2"]  # fine-tuning changed the pruned net
    with pytest.raises(ValueError, match="hypothesis"):
        run_post_pruning_job({**job, "hypothesis": "nope"})


def write(results, name, alpha, seed, val):
    rec = {"job": {"name": name}, "alpha": alpha, "seed": seed,
           "by_ratio": [{"ratio": p, "val_r2": v} for p, v in zip(THESIS_RATIOS, val)]}
    (results / f"{name}.json").write_text(json.dumps(rec))


def test_the_table_measures_the_distance_to_the_thesis_min_and_max(tmp_path):
    thesis = THESIS_FIG45[22]
    hi = [1.0 if t is None else t for t in thesis["max"]]
    write(tmp_path, "postprune_pernet_p2_a22_s0", 22, 0, thesis["min"])   # exactly the thesis's min …
    write(tmp_path, "postprune_pernet_p2_a22_s1", 22, 1, hi)              # … and max
    write(tmp_path, "postprune_ft_p2_a22_s0", 22, 0, np.array(thesis["min"]) + 0.1)
    write(tmp_path, "postprune_ft_p2_a22_s1", 22, 1, np.array(hi) + 0.1)
    table = {r["hypothesis"]: r for r in rows(tmp_path, "p2", [22])}
    assert table["pernet"]["Fig. 4.5 mean |error|"] == "0.000"
    assert table["ft"]["Fig. 4.5 mean |error|"] == "0.100"
    assert table["shared"]["min R² (ours | thesis)"] == "not run"
    # Fig. 4.4: our mean is the midpoint of the two seeds, +0.1 for ft
    mid = (np.array(thesis["min"]) + np.array(hi)) / 2
    want = np.mean(np.abs(mid - THESIS_FIG44[22]))
    assert table["pernet"]["Fig. 4.4 mean |error|"] == f"{want:.3f}"


def test_a_thesis_mean_is_inside_the_interval_for_the_mean_of_five_new_runs_where_it_should_be():
    from refprune.experiments.figures.synthetic_hypotheses import fig44_fit
    v = np.array([[0.9, 0.5], [1.0, 0.5], [1.1, 0.5001]])  # seeds × 2 ratios
    fit = fig44_fit([0.0, 0.1], v, [1.2, 0.52] + [0.0] * 8)
    # ratio 0: mean 1.0, s 0.1, t(2) 4.30 · 0.1 · sqrt(1/5 + 1/3) = 0.31 > 0.2: inside; ratio 0.1: s ≈ 0: outside
    assert fit["inside"] == 1 and fit["error"] == pytest.approx((0.2 + 0.02 - 0.0001 / 3) / 2)
    assert fig44_fit([0.0], v[:1, :1], [1.0] + [0.0] * 9)["inside"] is None  # one seed: no interval


def test_a_network_per_ratio_with_fine_tuning_fine_tunes_each_network(data):
    plain = per_ratio_network_pruning(data, LAYERS, CFG, [0.9, 0.9])
    tuned = per_ratio_network_pruning(data, LAYERS, CFG, [0.9, 0.9], finetune_epochs=3)
    assert tuned[0]["val_r2"] != plain[0]["val_r2"] and tuned[0]["val_r2"] != tuned[1]["val_r2"]


def write_curve(results, name, alpha, seed, val):
    rec = {"job": {"name": name, "seed": seed}, "alpha": alpha, "seed": seed,
           "by_ratio": [{"ratio": p, "val_r2": v, "train_r2": v + 0.01} for p, v in zip(THESIS_RATIOS, val)]}
    (results / f"{name}.json").write_text(json.dumps(rec))


def test_figs_4_4_and_4_5_draw_the_fine_tuned_procedure_and_the_plain_one_each_in_its_row(tmp_path):
    import matplotlib.pyplot as plt

    from refprune.experiments.figures import synthetic
    results, out = tmp_path / "results", tmp_path / "out"
    results.mkdir()
    for seed in range(3):
        write_curve(results, f"postprune_ft_p2_a20_s{seed}", 20, seed, np.full(10, 0.9 + 0.01 * seed))
    entries = synthetic.plot_post_pruning(results, out, [20])
    assert [e["stem"] for e in entries] == ["fig4_4_post_pruning_mean", "fig4_5_post_pruning_minmax"]
    assert "the procedure that fits the thesis best" in entries[0]["caption"]
    assert "bottom row" not in entries[0]["caption"]
    for seed in range(3):  # the plain procedure collapses at the last ratio, below the axis
        write_curve(results, f"postprune_p2_a20_s{seed}", 20, seed, [0.9] * 9 + [-5.0])
    entries = synthetic.plot_post_pruning(results, out, [20])
    assert "bottom row: pruned without fine-tuning" in entries[0]["caption"]
    assert "▼ marks the 2" in entries[0]["caption"]
    curves = {h: {20: synthetic.post_curves(results, h, 20)} for h in ("ft", "shared")}
    fig, clipped = synthetic.pruning_figure([("a", curves["ft"]), ("b", curves["shared"])], [20], "mean", "t", True)
    axes = fig.axes
    assert len(axes) == 2 and clipped == 2 and axes[0].get_ylim() == axes[1].get_ylim()
    means = [line for line in axes[0].lines if line.get_label() == "validation mean ± 1 std"]
    np.testing.assert_allclose(means[0].get_ydata(), 0.91)  # the mean over the seeds, not a median
    thesis = [line for line in axes[0].lines if line.get_label() == "thesis Fig. 4.4 (read off)"]
    np.testing.assert_array_equal(thesis[0].get_ydata(), THESIS_FIG44[20])
    plt.close(fig)
