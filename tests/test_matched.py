"""The matched-sparsity comparison: the frozen-r soft mask, the baseline job kinds (pruning at
initialisation globally and per layer), the figures group end to end at tiny size, the verdicts
from the Welch interval of the difference, the generated reading and the figure."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from refprune.data.tiny import tiny_mnist
from refprune.experiments.figures import matched, run_figures
from refprune.experiments.figures.matched_compare import (
    BASELINES,
    METHOD_LABELS,
    NOT_RUN,
    collect_points,
    comparison_rows,
    reading_lines,
    table_rows,
    verdict,
)
from refprune.experiments.jobs import JOB_KINDS
from refprune.experiments.sweep import load_results
from refprune.train.baselines import fine_tuned_pruning
from refprune.train.loop import TrainConfig, train

SMALL = (784, 16, 10)  # 12,704 weights: fast, and many more weights than one
N_WEIGHTS = 784 * 16 + 16 * 10
# One weight of the network, as a fraction: an empirical threshold at ratio s
# prunes floor or ceil of s·n weights, so the achieved sparsity is s within 1/n.
ONE_WEIGHT = 1.0 / N_WEIGHTS


def frozen_config(**kw):
    return TrainConfig(r0=0.7, learn_r=False, lam=10.0, lr_tau=1e-4, epochs=2, batch_size=32, **kw)


def test_with_learn_r_false_r_stays_exactly_r0_tau_moves_and_sparsity_is_r0():
    result = train(tiny_mnist(), SMALL, frozen_config(), log=None)
    s, steps = result["summary"], result["history"].steps
    assert set(steps["r"]) == {0.7} and s["r"] == 0.7          # never updated, not even by a clamp
    assert len(set(steps["tau"])) > 2                           # τ learned at every step
    assert abs(s["sparsity"] - 0.7) <= ONE_WEIGHT
    # the control: with r learned, λ = 10 moves r at once
    learned = train(tiny_mnist(), SMALL, TrainConfig(r0=0.7, lam=10.0, epochs=1, batch_size=32), log=None)
    assert learned["summary"]["r"] > 0.7


@pytest.mark.parametrize("kw", [{"granularity": "layer"}, {"variant": "published"}, {"learn_r": "no"}])
def test_a_frozen_r_needs_the_exact_global_path_and_a_bool(kw):
    with pytest.raises(ValueError, match="learn_r"):
        TrainConfig(**{"learn_r": False, **kw})


def test_fine_tuned_pruning_records_both_evaluations_and_hits_each_ratio_within_one_weight():
    data = tiny_mnist()
    cfg = TrainConfig(method="dense", epochs=2, batch_size=32)
    rec = fine_tuned_pruning(data, SMALL, cfg, [0.5, 0.9], finetune_epochs=3)
    assert rec["dense"]["epochs"] == 2 and rec["dense"]["seconds"] > 0
    for r, ratio in zip(rec["by_ratio"], (0.5, 0.9)):
        assert abs(r["sparsity"] - ratio) <= ONE_WEIGHT
        assert r["finetune_epochs"] == 3
        for key in ("val_accuracy", "test_accuracy", "val_loss", "test_loss"):
            assert key in r["pruned"] and key in r["finetuned"]
        assert r["finetuned"]["val_loss"] != r["pruned"]["val_loss"]  # the two are different networks


def test_fine_tuning_keeps_the_pruned_weights_at_zero_and_lowers_the_training_loss():
    from refprune.train.baselines import fine_tune, magnitude_prune, scores
    data = tiny_mnist()
    cfg = TrainConfig(method="dense", epochs=2, batch_size=32)
    dense = train(data, SMALL, cfg, log=None)
    pruned = magnitude_prune(dense["weights"], 0.9)
    mask = np.concatenate([W.ravel() for W in pruned]) != 0
    tuned_w, tuned_b = fine_tune(pruned, dense["biases"], mask.astype(np.float32), data, cfg, 5,
                                 np.random.default_rng(0))
    assert np.array_equal(np.concatenate([W.ravel() for W in tuned_w]) != 0, mask)
    before = scores(data, pruned, dense["biases"], cfg.loss, ("train",))["train_loss"]
    after = scores(data, tuned_w, tuned_b, cfg.loss, ("train",))["train_loss"]
    assert after < before


def test_the_job_kinds_reach_the_requested_sparsity_within_one_weight():
    base = {"data": "tiny_mnist", "seed": 0, "layers": list(SMALL), "epochs": 1, "batch_size": 32}
    pre, _ = JOB_KINDS["pre_pruning"]({**base, "name": "p", "kind": "pre_pruning", "ratio": 0.83})
    assert abs(pre["sparsity"] - 0.83) <= ONE_WEIGHT and "test_accuracy" in pre and pre["train_seconds"] > 0
    ft, _ = JOB_KINDS["finetune_pruning"]({**base, "name": "f", "kind": "finetune_pruning", "ratios": [0.83],
                                          "sources": ["src"], "finetune_epochs": 1})
    assert abs(ft["by_ratio"][0]["sparsity"] - 0.83) <= ONE_WEIGHT and ft["by_ratio"][0]["source"] == "src"
    fixed, _ = JOB_KINDS["train"]({**base, "name": "x", "kind": "train",
                                   "config": {"method": "lrp", "r0": 0.83, "learn_r": False, "epochs": 1}})
    assert abs(fixed["summary"]["sparsity"] - 0.83) <= ONE_WEIGHT


def test_the_dense_baselines_use_the_tasks_loss():
    from refprune.experiments.jobs import dense_config
    assert dense_config({"data": "tiny_mnist", "epochs": 1, "batch_size": 8, "seed": 0}).loss == "ce"
    assert dense_config({"data": "synthetic", "epochs": 1, "batch_size": 8, "seed": 0}).loss == "mse"


def test_stage_two_is_listed_from_the_stage_one_results_present(tmp_path):
    stage1 = matched.jobs(True, None, results=tmp_path)
    assert [j for j in stage1 if j["kind"] != "train"] == []
    lrp = next(j for j in stage1 if j["role"]["method"] == "lrp-global")
    (tmp_path / f"{lrp['name']}.json").write_text(json.dumps({"job": lrp, "summary": {"sparsity": 0.61}}))
    extra = [j for j in matched.jobs(True, None, results=tmp_path) if j not in stage1]
    # no finetune: 1 of 4 runs done; no per-layer job: this summary has no sparsity per layer
    assert sorted(j["role"]["method"] for j in extra) == ["fixedr", "prepruning", "prepruning-uniform"]
    assert all(lrp["role"]["source"] in j["name"] for j in extra)
    by = {j["role"]["method"]: j for j in extra}
    assert by["prepruning"]["ratio"] == 0.61 and by["prepruning-uniform"]["ratio"] == [0.61] * 3  # 784-64-64-10
    (tmp_path / f"{lrp['name']}.json").write_text(json.dumps(
        {"job": lrp, "summary": {"sparsity": 0.61, "sparsity_per_layer": [0.7, 0.2, 0.1]}}))
    again = {j["role"]["method"]: j for j in matched.jobs(True, None, results=tmp_path) if j not in stage1}
    assert again["prepruning-layer"]["ratio"] == [0.7, 0.2, 0.1] and again["prepruning-layer"]["kind"] == "pre_pruning"
    assert {k: again[k] for k in ("prepruning", "fixedr")} == {k: by[k] for k in ("prepruning", "fixedr")}


def test_the_jobs_of_the_committed_matched_results_are_listed_unchanged():
    """The per-layer baselines are new jobs: every committed job is still listed with the same name and dict."""
    from refprune.experiments.sweep import stored_job
    results = Path(__file__).resolve().parents[1] / "results"
    committed = {r["job"]["name"]: r["job"] for r in load_results(results, matched.PREFIX)}
    if not committed:
        pytest.skip("no committed matched results in this checkout")
    listed = {j["name"]: stored_job(j) for j in matched.jobs(False, "/m", results=results)}
    assert {name: listed.get(name) for name in committed} == committed
    new = {j["role"]["method"] for name, j in listed.items() if name not in committed}
    assert new <= {"prepruning-layer", "prepruning-uniform"}


def test_full_jobs_put_seed_0_of_both_data_sets_first_and_give_fashion_its_own_dir(tmp_path):
    write_lrp_results(matched.jobs(False, "/m", results=tmp_path), tmp_path)
    jobs = matched.jobs(False, "/m", results=tmp_path, fashion_dir="/f")
    seeds = [j["seed"] for j in jobs]
    assert seeds == sorted(seeds) and {j["data"] for j in jobs if j["seed"] == 0} == {"mnist", "fashion-mnist"}
    assert {j["data_dir"] for j in jobs if j["data"] == "fashion-mnist"} == {"/f"}
    assert {j["data_dir"] for j in jobs if j["data"] == "mnist"} == {"/m"}
    fashion = [j for j in matched.jobs(False, "/m", results=tmp_path) if j["data"] == "fashion-mnist"]
    assert {j["data_dir"] for j in fashion} == {matched.DEFAULT_FASHION_DIR}


def write_lrp_results(jobs, results, sparsity=0.7):
    for job in jobs:
        if job["role"]["method"].startswith("lrp-"):
            (results / f"{job['name']}.json").write_text(json.dumps({"job": job, "summary": {"sparsity": sparsity}}))


def test_a_unit_is_listed_once_the_lrp_runs_of_the_one_before_it_are_done(tmp_path):
    first = matched.jobs(False, "/m", results=tmp_path)
    assert {(j["seed"], j["data"]) for j in first} == {(0, "mnist")}
    write_lrp_results(first, tmp_path)
    second = matched.jobs(False, "/m", results=tmp_path)
    units = [(j["seed"], j["data"]) for j in second]
    assert units[-1] == (0, "fashion-mnist") and set(units) == {(0, "mnist"), (0, "fashion-mnist")}
    assert units.index((0, "fashion-mnist")) > max(i for i, j in enumerate(second) if j["kind"] != "train" or
                                                   j["role"]["method"] == "fixedr")  # MNIST's stage 2 first
    assert sum(j["role"]["method"] == "finetune" for j in second) == 1
    write_lrp_results(second, tmp_path)
    assert {j["seed"] for j in matched.jobs(False, "/m", results=tmp_path)} == {0, 1}
    planned = {j["name"] for j in matched.planned_jobs(False, "/m")}
    # per unit: dense, the finetune job, and per LRP run: itself, 4 baselines (global / per-layer / uniform
    # at initialisation, fixed r)
    assert len(planned) == len(matched.FULL["seeds"]) * len(matched.FULL["datasets"]) * (
        1 + 5 * len(matched.sources(matched.FULL)) + 1) and {j["name"] for j in second} <= planned


@pytest.mark.slow
def test_the_group_runs_stage_1_then_stage_2_writes_table_and_pdf_and_a_rerun_runs_nothing(tmp_path):
    results, out = tmp_path / "results", tmp_path / "figures"
    lines = []
    run_figures(["matched"], results, out, quick=True, recompute=True, log=lines.append)
    names = {p.stem for p in results.glob("*.json")}
    assert any("_finetune" in n for n in names) and sum("_fixedr-" in n for n in names) == 4
    for f in ("matched_sparsity.md", "matched_sparsity.csv", "matched_sparsity.pdf"):
        assert (out / f).exists()
    index = (out / "README.md").read_text()
    assert "LRP against the baselines at matched sparsity" in index and "Reading (generated" in index
    pdf = (out / "matched_sparsity.pdf").read_bytes()
    lines.clear()
    run_figures(["matched"], results, out, quick=True, recompute=True, log=lines.append)
    to_run = [int(m.group(1)) for line in lines for m in [re.search(r"(\d+) to run", line)] if m]
    assert to_run and set(to_run) == {0}
    assert (out / "matched_sparsity.pdf").read_bytes() == pdf  # byte-stable redraw


def synthetic_records(lrp_acc, base_acc, method="prepruning", layers=(1.0, 0.5)):
    """Result records of one LRP run and one baseline at its sparsity, one per seed (accuracies as given)."""
    recs = []
    for seed, (a, b) in enumerate(zip(lrp_acc, base_acc)):
        job = {"data": "d", "seed": seed, "role": {"method": "lrp-global", "source": "src"},
               "config": {"granularity": "global", "r0": 0.5}}
        recs.append({"job": job, "summary": {"sparsity": 0.9, "test_accuracy": a, "epochs_run": 2, "seconds": 1.0}})
        recs.append({"job": {"data": "d", "seed": seed, "role": {"method": method, "source": "src"}, "epochs": 2},
                     "sparsity": 0.9, "test_accuracy": b, "train_seconds": 0.5, "sparsity_per_layer": list(layers)})
    return recs


def judged_rows(points):
    return [c for c in comparison_rows(points) if c["verdict"] != NOT_RUN]


@pytest.mark.parametrize("lrp, base, want", [
    ((0.95, 0.96, 0.97), (0.90, 0.91, 0.92), "LRP better"),             # +5 pp, interval ±2.27 pp
    ((0.90, 0.91, 0.92), (0.95, 0.96, 0.97), "LRP worse"),              # −5 pp
    ((0.95, 0.96, 0.97), (0.955, 0.965, 0.975), "not distinguishable"),  # −0.5 pp
])
def test_the_verdict_comes_from_the_welch_interval_of_the_difference(lrp, base, want):
    from scipy.stats import ttest_ind
    points = collect_points(synthetic_records(lrp, base))
    (c,) = judged_rows(points)
    assert c["verdict"] == want
    # two samples of 3 with std 1 pp: se = sqrt(2/3), 4 degrees of freedom, t = 2.776
    assert c["interval"][1] - c["diff"] == pytest.approx(2.7764451 * np.sqrt(2 / 3))
    ci = ttest_ind(100 * np.array(lrp), 100 * np.array(base), equal_var=False).confidence_interval(0.95)
    assert c["interval"] == pytest.approx((ci.low, ci.high))  # scipy's Welch interval, an independent routine
    text = "\n".join(reading_lines(comparison_rows(points), points))
    counts = {"LRP better": "LRP better 1, LRP worse 0, not distinguishable 0,",
              "LRP worse": "LRP better 0, LRP worse 1, not distinguishable 0,",
              "not distinguishable": "LRP better 0, LRP worse 0, not distinguishable 1,"}
    assert counts[want] in text
    assert ("Where LRP is worse (interval below 0): nowhere" in text) == (want != "LRP worse")


def test_one_seed_gets_no_verdict_and_the_reading_says_so():
    points = collect_points(synthetic_records((0.97,), (0.90,)))
    comparisons = comparison_rows(points)
    assert [c["verdict"] for c in judged_rows(points)] == ["one seed, not judged"]  # +7 pp, but no interval
    text = "\n".join(reading_lines(comparisons, points))
    assert "LRP better 0, LRP worse 0, not distinguishable 0, not judged (one seed) 1" in text
    assert "No verdicts yet" in text


def test_two_lrp_seeds_against_one_baseline_seed_give_no_interval_and_no_verdict():
    recs = synthetic_records((0.95, 0.97), (0.90, 0.91))
    recs = [r for r in recs if not (r["job"]["seed"] == 1 and r["job"]["role"]["method"] == "prepruning")]
    points = collect_points(recs)
    (c,) = judged_rows(points)
    # only the seed both sides have is compared: LRP's seed 1 (97%) stays out of the difference
    assert c["lrp"]["n"] == 1 and c["base"]["n"] == 1 and c["diff"] == pytest.approx(5.0)
    assert c["verdict"] == "one seed, not judged" and c["interval"] is None
    rows = table_rows(comparison_rows(points), points)
    assert [r for r in rows if r["method"] == "LRP (global r)"][0]["seeds"] == 2  # the LRP row shows every LRP seed
    base_row = [r for r in rows if r.get("verdict") == "one seed, not judged"][0]
    assert base_row["95% interval (pp)"] == "—"
    assert base_row["test accuracy (%)"] == "90.00"  # one seed: its value, no "± 0.00" spread
    assert "no interval (one seed)" in "\n".join(reading_lines(comparison_rows(points), points))


def test_a_baseline_not_run_yet_has_its_row_and_says_so():
    points = collect_points(synthetic_records((0.95, 0.96), (0.90, 0.91)))
    rows = table_rows(comparison_rows(points), points)
    missing = [r for r in rows if r.get("verdict") == NOT_RUN]
    assert {r["method"] for r in missing} == {METHOD_LABELS[m] for m in BASELINES if m != "prepruning"}
    assert all(r["seeds"] == 0 for r in missing)
    assert "LRP's sparsity per layer: not run yet" in "\n".join(reading_lines(comparison_rows(points), points))


def test_a_collapsed_baseline_is_labelled_and_drawn_in_a_lower_panel_of_a_shared_broken_axis():
    import matplotlib.pyplot as plt

    from refprune.experiments.figures.matched_compare import matched_figure
    points = collect_points(synthetic_records((0.97, 0.975), (0.1135, 0.1135)))
    text = "\n".join(reading_lines(comparison_rows(points), points))
    assert "Collapsed to near chance" in text and "11.35% at 90.00% (seed 0)" in text and "empties layer 1" in text
    (c,) = judged_rows(points)
    assert c["label_method"] == "magnitude at initialisation, global — collapses (empties layer 1)"
    # a second data set, its LRP near 90%: the accuracy axis is shared by both panels
    other = [{**p, "data": "e", "accuracy": p["accuracy"] - 7.0} for p in points if p["method"] == "lrp-global"]
    fig = matched_figure(points + other)
    upper, lower = fig.axes[0], fig.axes[2]  # rows × columns: the upper and lower panel of data set "d"
    assert upper.get_ylim() == fig.axes[1].get_ylim() and lower.get_ylim() == fig.axes[3].get_ylim()
    assert upper.get_ylim()[0] < 90.0 < 97.5 < upper.get_ylim()[1] and upper.get_ylim()[0] > 11.35
    assert lower.get_ylim()[0] < 11.35 < lower.get_ylim()[1] < 90.0
    assert any("collapses (empties layer 1)" in t.get_text() for t in fig.legends[0].get_texts())
    assert "(2 seeds: 0, 1)" in upper.get_title()
    plt.close(fig)
    fig = matched_figure(collect_points(synthetic_records((0.97, 0.975), (0.95, 0.96))))
    assert len(fig.axes) == 1  # nothing far below: no lower panel
    plt.close(fig)


def test_the_verdict_boundaries():
    assert verdict(0.0, 1.0) == "not distinguishable" and verdict(-1.0, 0.0) == "not distinguishable"
    assert verdict(0.01, 1.0) == "LRP better" and verdict(-1.0, -0.01) == "LRP worse"
    assert verdict(0.0, 0.0) == "not distinguishable"


def test_pruning_at_initialisation_per_layer_hits_each_layers_ratio_within_one_weight():
    from refprune.train.baselines import layer_magnitude_prune, pre_training_pruning
    cfg = TrainConfig(method="dense", epochs=1, batch_size=32)
    rec = pre_training_pruning(tiny_mnist(), SMALL, cfg, [0.95, 0.3], splits=("test",))
    assert rec["ratio"] == [0.95, 0.3]
    for got, want, n in zip(rec["sparsity_per_layer"], (0.95, 0.3), (784 * 16, 16 * 10)):
        assert abs(got - want) <= 1.0 / n
    glob = pre_training_pruning(tiny_mnist(), SMALL, cfg, 0.9, splits=("test",))
    assert abs(glob["sparsity"] - 0.9) <= ONE_WEIGHT and glob["ratio"] == 0.9 and len(glob["sparsity_per_layer"]) == 2
    with pytest.raises(ValueError, match="one ratio per layer"):
        layer_magnitude_prune([np.ones((2, 2))], [0.5, 0.5])
    with pytest.raises(ValueError, match="layer 2"):
        layer_magnitude_prune([np.ones((2, 2))] * 2, [0.5, 1.0])


def test_the_global_at_initialisation_mask_is_recomputed_for_results_that_lack_its_layers():
    from refprune.experiments.figures.matched_compare import init_layer_sparsity
    job = {"data": "tiny_mnist", "seed": 0, "layers": list(SMALL), "epochs": 1, "batch_size": 32, "ratio": 0.9,
           "name": "p", "kind": "pre_pruning"}
    rec, _ = JOB_KINDS["pre_pruning"](job)
    stored = rec.pop("sparsity_per_layer")
    assert init_layer_sparsity({**rec, "job": job}) == stored  # the same seeded initialisation, the same mask


def test_the_welch_interval_and_the_interval_for_the_mean_of_m_new_runs():
    from refprune.experiments.figures.common import prediction_interval, seeds_text, welch_interval
    assert welch_interval([1.0, 1.0, 1.0], [0.0, 0.0, 0.0]) == (1.0, 1.0)  # no spread on either side
    lo, hi = welch_interval([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])  # one side constant: 2 degrees of freedom
    assert hi - 2.0 == pytest.approx(4.3026527 * 1.0 / np.sqrt(3))
    with pytest.raises(ValueError, match="2 runs on each side"):
        welch_interval([1.0], [0.0, 1.0])
    one, five = prediction_interval([1.0, 2.0, 3.0]), prediction_interval([1.0, 2.0, 3.0], new_runs=5)
    assert five[1] - 2.0 == pytest.approx((one[1] - 2.0) * np.sqrt((1 / 5 + 1 / 3) / (1 + 1 / 3)))
    assert seeds_text(1) == "1 seed" and seeds_text(3) == "3 seeds"
