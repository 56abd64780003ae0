"""Table 4.6 over seeds (refprune.experiments.figures.mnist): mean ± std per variant under the adopted
protocol, the 95% prediction interval for one new run with the thesis inside or not, and the stated
protocol's run beside it."""

import json

import numpy as np
import pytest
from scipy.stats import t as student_t

from refprune.experiments.figures.mnist import THESIS_TABLE, table_md, table_rows
from refprune.experiments.figures.protocol_settings import ADOPTED, run_name, under

# Table values are rounded to 2 decimals when written: compare at that rounding.
ROUNDED = 0.005


def fake_run(results, name, test_acc, sparsity):
    rec = {"job": {"name": name, "seed": 0},
           "summary": {"test_accuracy": test_acc, "sparsity": sparsity, "compression": 1 / (1 - sparsity)},
           "epochs": [{"train_accuracy_hard": 0.99}]}
    (results / f"{name}.json").write_text(json.dumps(rec))


def test_mean_std_and_prediction_interval_over_the_seeds_present(tmp_path):
    accs, sps = [0.970, 0.972, 0.974], [0.86, 0.88, 0.90]
    for seed, (acc, sp) in enumerate(zip(accs, sps)):
        fake_run(tmp_path, under(ADOPTED, run_name("published", 0.95, 0.0, seed)), acc, sp)
    fake_run(tmp_path, run_name("published", 0.95, 0.0), 0.9676, 0.519)  # the stated protocol's run
    row = next(r for r in table_rows(tmp_path) if r["run"] == "r0 = 0.95, λ = 0")
    key = f"published_{ADOPTED}"
    assert row[f"{key}_seeds"] == 3
    assert row[f"{key}_test_acc_mean"] == pytest.approx(97.2, abs=ROUNDED)
    assert row[f"{key}_sparsity_std"] == pytest.approx(100 * np.std(sps, ddof=1), abs=ROUNDED)
    # 95% prediction interval for one new run: mean ± t(0.975, n − 1)·s·sqrt(1 + 1/n), here 88 ± 4.303·2·1.155
    half = student_t.ppf(0.975, 2) * 100 * np.std(sps, ddof=1) * np.sqrt(1 + 1 / 3)
    assert row[f"{key}_sparsity_pi_low"] == pytest.approx(88.0 - half, abs=ROUNDED)
    assert row[f"{key}_sparsity_pi_high"] == pytest.approx(88.0 + half, abs=ROUNDED)
    assert THESIS_TABLE[(0.95, 0.0)][2] == 86.6 and row[f"{key}_sparsity_thesis_inside"] == "yes"
    assert row[f"{key}_test_acc_thesis_inside"] == "yes"  # 97.2 against 97.2 ± 0.2·…
    assert row[f"{key}_compression_thesis_inside"] in ("yes", "no")
    assert row["published_stated_sparsity"] == pytest.approx(51.9, abs=ROUNDED)
    assert "exact_stated_sparsity" not in row  # no exact run: its cells are "—"
    md = "\n".join(table_md([row]))
    assert f"88.00 ± 2.00 [{88.0 - half:.2f}, {88.0 + half:.2f}] ✓ (n = 3)" in md and "—" in md


def test_a_thesis_value_outside_the_interval_is_marked(tmp_path):
    for seed, sp in enumerate([0.95, 0.951, 0.952]):  # far above the thesis's 86.6%
        fake_run(tmp_path, under(ADOPTED, run_name("exact", 0.95, 0.0, seed)), 0.972, sp)
    row = next(r for r in table_rows(tmp_path) if r["run"] == "r0 = 0.95, λ = 0")
    assert row[f"exact_{ADOPTED}_sparsity_thesis_inside"] == "no"
    assert "✗" in "\n".join(table_md([row]))


def test_the_interval_is_cut_to_each_quantity_range(tmp_path):
    # train accuracy near 100% and sparsity near 0%: the raw intervals reach past 100% and below 0%
    for seed, (train, sp) in enumerate([(0.9990, 0.0), (0.9999, 0.0), (0.9995, 0.014)]):
        name = under(ADOPTED, run_name("published", 0.5, 0.0, seed))
        fake_run(tmp_path, name, 0.976, sp)
        rec = json.loads((tmp_path / f"{name}.json").read_text())
        rec["epochs"][0]["train_accuracy_hard"] = train
        (tmp_path / f"{name}.json").write_text(json.dumps(rec))
    row = next(r for r in table_rows(tmp_path) if r["run"] == "r0 = 0.5, λ = 0")
    key = f"published_{ADOPTED}"
    assert row[f"{key}_train_acc_pi_high"] == 100.0 and row[f"{key}_train_acc_pi_low"] < 99.9
    assert row[f"{key}_sparsity_pi_low"] == 0.0 and row[f"{key}_sparsity_pi_high"] > 1.4
    assert row[f"{key}_compression_pi_low"] == 1.0
    assert row[f"{key}_sparsity_thesis_inside"] == "yes"  # the thesis's 0.0% sits on the cut edge


def test_the_protocols_group_runs_the_disputed_row_with_every_seed_under_both_hypotheses_first():
    from refprune.experiments.figures import protocols
    from refprune.experiments.figures.protocol_settings import SEEDS
    jobs = protocols.jobs(False, "/m")
    first = jobs[:2 * len(SEEDS)]
    assert {j["name"] for j in first} == {under(h, run_name("published", 0.95, 0.0, s))
                                          for h in ("b64", "ddp2") for s in SEEDS}
    assert len({j["name"] for j in jobs}) == len(jobs)


def test_the_tolerance_verdict_says_by_how_much_a_row_misses():
    from refprune.experiments.figures.protocols import tolerance_verdict
    assert tolerance_verdict(2.9, -0.9) == "within ±3 / ±1 pp"
    assert tolerance_verdict(3.48, 0.2) == "sparsity 0.48 pp beyond ±3"
    assert tolerance_verdict(-34.7, -1.5) == "sparsity 31.70 pp beyond ±3; test accuracy 0.50 pp beyond ±1"


def test_the_hypothesis_difference_is_welchs_t_over_the_seeds_present(tmp_path):
    from scipy.stats import ttest_ind

    from refprune.experiments.figures.protocols import hypothesis_difference_row, table_job_name
    b64, ddp2 = [0.89, 0.90, 0.91], [0.881, 0.905, 0.93, 0.91]
    for h, sps in (("b64", b64), ("ddp2", ddp2)):
        for seed, sp in enumerate(sps):
            fake_run(tmp_path, table_job_name(h, 0.95, 0.0, seed), 0.97, sp)
    row = hypothesis_difference_row(tmp_path)
    want = ttest_ind(100 * np.array(b64), 100 * np.array(ddp2), equal_var=False)
    assert f"{100 * (np.mean(b64) - np.mean(ddp2)):+.2f} pp" in row["error"]
    assert f"t = {want.statistic:+.2f}" in row["error"] and row["ours"] == "3 / 4 seeds"
    (tmp_path / f"{table_job_name('b64', 0.95, 0.0, 1)}.json").unlink()
    (tmp_path / f"{table_job_name('b64', 0.95, 0.0, 2)}.json").unlink()
    assert hypothesis_difference_row(tmp_path) is None  # one seed of b64: no spread to test against
