"""The matched-sparsity comparison (issue 17, point 3): the frozen-r soft mask, the baseline job
kinds, the figures group end to end at tiny size, and the generated reading."""

import json
import re

import numpy as np
import pytest

from refprune.data.tiny import tiny_mnist
from refprune.experiments.figures import matched, run_figures
from refprune.experiments.figures.matched_compare import (
    collect_points,
    comparison_rows,
    reading_lines,
    verdict,
)
from refprune.experiments.jobs import JOB_KINDS
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
    assert sorted(j["role"]["method"] for j in extra) == ["fixedr", "prepruning"]  # no finetune: 1 of 4 runs done
    assert all(lrp["role"]["source"] in j["name"] for j in extra)
    assert next(j for j in extra if j["kind"] == "pre_pruning")["ratio"] == 0.61


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
    assert len(planned) == len(matched.FULL["seeds"]) * len(matched.FULL["datasets"]) * (
        1 + 3 * len(matched.sources(matched.FULL)) + 1) and {j["name"] for j in second} <= planned


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


def synthetic_records(lrp_acc, base_acc, method="prepruning"):
    """Result records of one LRP run and one baseline at its sparsity, one per seed (accuracies as given)."""
    recs = []
    for seed, (a, b) in enumerate(zip(lrp_acc, base_acc)):
        job = {"data": "d", "seed": seed, "role": {"method": "lrp-global", "source": "src"},
               "config": {"granularity": "global", "r0": 0.5}}
        recs.append({"job": job, "summary": {"sparsity": 0.9, "test_accuracy": a, "epochs_run": 2, "seconds": 1.0}})
        recs.append({"job": {"data": "d", "seed": seed, "role": {"method": method, "source": "src"}, "epochs": 2},
                     "sparsity": 0.9, "test_accuracy": b, "train_seconds": 0.5})
    return recs


@pytest.mark.parametrize("lrp, base, want", [
    ((0.95, 0.96, 0.97), (0.90, 0.91, 0.92), "wins"),               # +5 pp, spread 1 pp
    ((0.90, 0.91, 0.92), (0.95, 0.96, 0.97), "loses"),              # −5 pp, spread 1 pp
    ((0.95, 0.96, 0.97), (0.955, 0.965, 0.975), "within the spread"),  # −0.5 pp, spread 1 pp
])
def test_the_reading_says_wins_loses_or_within_the_spread(lrp, base, want):
    comparisons = comparison_rows(collect_points(synthetic_records(lrp, base)))
    (c,) = comparisons
    assert c["verdict"] == want
    assert c["spread"] == pytest.approx(1.0)  # sample std of 3 values 1 pp apart
    text = "\n".join(reading_lines(comparisons, collect_points(synthetic_records(lrp, base))))
    counts = {"wins": "wins 1, loses 0, within the spread 0,", "loses": "wins 0, loses 1, within the spread 0,",
              "within the spread": "wins 0, loses 0, within the spread 1,"}
    assert counts[want] in text
    assert ("Where LRP loses: nowhere" in text) == (want != "loses")


def test_one_seed_gets_no_verdict_and_the_reading_says_so():
    comparisons = comparison_rows(collect_points(synthetic_records((0.97,), (0.90,))))
    assert [c["verdict"] for c in comparisons] == ["one seed, not judged"]  # +7 pp, but no spread to judge by
    text = "\n".join(reading_lines(comparisons, collect_points(synthetic_records((0.97,), (0.90,)))))
    assert "wins 0, loses 0, within the spread 0, not judged (one seed) 1" in text and "No verdicts yet" in text
    assert "Largest win" not in text


def test_two_lrp_seeds_against_one_baseline_seed_give_no_spread_and_no_verdict():
    from refprune.experiments.figures.matched_compare import table_rows
    recs = synthetic_records((0.95, 0.97), (0.90, 0.91))
    recs = [r for r in recs if not (r["job"]["seed"] == 1 and r["job"]["role"]["method"] == "prepruning")]
    points = collect_points(recs)
    (c,) = comparison_rows(points)
    # only the seed both sides have is compared: LRP's seed 1 (97%) stays out of the difference
    assert c["lrp"]["n"] == 1 and c["base"]["n"] == 1 and c["diff"] == pytest.approx(5.0)
    assert c["verdict"] == "one seed, not judged" and c["spread"] == 0.0  # LRP's own 1.41 pp is not a spread
    lrp_row = [r for r in table_rows([c], points) if r["method"] == "LRP (global r)"][0]
    assert lrp_row["seeds"] == 2  # the LRP row itself shows every LRP seed
    base_row = [r for r in table_rows([c], points) if r.get("verdict")][0]
    assert base_row["in larger std"] == "—"
    assert "no spread (one seed)" in "\n".join(reading_lines([c], points))


def test_a_collapsed_baseline_is_named_in_the_reading_and_cut_off_the_axis_with_a_marker():
    import matplotlib.pyplot as plt

    from refprune.experiments.figures.matched_compare import CLIP_SPAN_PP, matched_figure
    points = collect_points(synthetic_records((0.97, 0.975), (0.1135, 0.96)))
    text = "\n".join(reading_lines(comparison_rows(points), points))
    assert "Collapsed to near chance" in text and "11.35% at 90.00% (seed 0)" in text and "(seed 1)" not in text
    fig = matched_figure(points)
    ax = fig.axes[0]
    assert ax.get_ylim()[0] == pytest.approx(97.0 - CLIP_SPAN_PP)  # lowest LRP point − the span
    markers = [line for line in ax.lines if line.get_marker() == "v" and not line.get_clip_on()]
    assert len(markers) == 1 and list(markers[0].get_ydata()) == [97.0 - CLIP_SPAN_PP]
    plt.close(fig)
    fig = matched_figure(collect_points(synthetic_records((0.97, 0.975), (0.95, 0.96))))
    assert fig.axes[0].get_ylim()[0] < 95.0  # nothing far below: the axis is matplotlib's own
    plt.close(fig)


def test_the_verdict_boundaries():
    assert verdict(1.0, 1.0) == "within the spread" and verdict(-1.0, 1.0) == "within the spread"
    assert verdict(1.01, 1.0) == "wins" and verdict(-1.01, 1.0) == "loses"
    assert verdict(0.0, 0.0) == "within the spread"
