"""The r0 sweep over seeds (refprune.experiments.figures.mnist_sweep): r where the thesis's figure ends, mean ± std
and range over the seeds present, the error against the thesis's read-off value and the gap between
the ranges; the sweep figures' seed counts."""

import json

import numpy as np
import pytest

from refprune.experiments.figures.mnist_sweep import (
    READ_OFF_UNCERTAINTY,
    SWEEP_EPOCHS,
    THESIS_SWEEP_END_R,
    plot_sweep,
    range_gap,
    seed_sweep_rows,
    thesis_interval,
    thesis_r,
    write_seed_sweep_table,
)
from refprune.experiments.figures.protocol_settings import ADOPTED, sweep_name, under

# Cells are written with 3 decimals: compare at that rounding.
ROUNDED = 5e-4


def fake_sweep_run(results, variant, lam, r0, seed, r_value, protocol=ADOPTED):
    """A finished sweep run whose r trace is constant at r_value (so r at any step is r_value)."""
    name = under(protocol, sweep_name(variant, lam, r0, SWEEP_EPOCHS, seed))
    rec = {"job": {"name": name, "seed": seed, "config": {"r0": r0, "lam": lam, "epochs": SWEEP_EPOCHS}},
           "seconds": 1.0, "summary": {}}
    (results / f"{name}.json").write_text(json.dumps(rec))
    np.savez(results / f"{name}.npz", step_index=np.array([0.0, 11_250.0]), step_r=np.full(2, r_value))


def row_of(rows, lam, r0):
    return next(r for r in rows if r["λ"] == f"{lam:g}" and r["r0"] == f"{r0:g}")


def test_thesis_intervals_are_parsed_from_ranges_and_single_values():
    assert thesis_interval("0.21–0.32") == (0.21, 0.32)
    assert thesis_interval("0.87") == (0.87, 0.87)
    assert thesis_r("0.21–0.32") == pytest.approx(0.265)


def test_the_range_gap_is_zero_where_the_ranges_meet_and_signed_where_they_do_not():
    # thesis 0.21–0.32, widened by the read-off uncertainty to [0.20, 0.33]
    assert range_gap(np.array([0.30, 0.40]), "0.21–0.32") == 0.0
    assert range_gap(np.array([0.325, 0.34]), "0.21–0.32") == 0.0  # inside the widening only
    assert range_gap(np.array([0.40, 0.44]), "0.21–0.32") == pytest.approx(0.40 - 0.32 - READ_OFF_UNCERTAINTY)
    assert range_gap(np.array([0.10, 0.15]), "0.21–0.32") == pytest.approx(0.15 - 0.21 + READ_OFF_UNCERTAINTY)


def test_mean_std_range_error_and_gap_over_the_seeds_present(tmp_path):
    seeds_r = [0.40, 0.42, 0.44]  # thesis at r0 = 0.5, λ = 0: 0.21–0.32
    for seed, r in enumerate(seeds_r):
        fake_sweep_run(tmp_path, "published", 0.0, 0.5, seed, r)
    fake_sweep_run(tmp_path, "published", 0.0, 0.9, 0, 0.868)  # thesis 0.87: meets, one seed
    rows = seed_sweep_rows(tmp_path)
    row = row_of(rows, 0.0, 0.5)
    mean, std = np.mean(seeds_r), np.std(seeds_r, ddof=1)
    assert row["published r there"] == f"{mean:.3f} ± {std:.3f} (n = 3)"
    assert row["published range there"] == "0.400–0.440"
    assert float(row["published error"]) == pytest.approx(mean - thesis_r(THESIS_SWEEP_END_R[0.0][0.5]), abs=ROUNDED)
    assert float(row["published range gap"]) == pytest.approx(0.40 - 0.33, abs=ROUNDED)
    assert row["exact r there"] == "—"  # no exact run
    one_seed = row_of(rows, 0.0, 0.9)
    assert one_seed["published r there"] == "0.868 (n = 1)" and one_seed["published range gap"] == "meets"
    summary = next(r for r in rows if r["λ"] == "0" and r["r0"] == "all")
    want = np.mean([abs(mean - 0.265), abs(0.868 - 0.87)])
    assert summary["published error"] == f"mean |error| {want:.3f}"
    assert summary["published range gap"] == "1 of 2 meet"
    assert summary["exact error"] == "—"


def test_a_run_missing_its_arrays_is_not_counted(tmp_path):
    fake_sweep_run(tmp_path, "exact", 10.0, 0.1, 0, 0.93)
    fake_sweep_run(tmp_path, "exact", 10.0, 0.1, 1, 0.95)
    (tmp_path / f"{under(ADOPTED, sweep_name('exact', 10.0, 0.1, SWEEP_EPOCHS, 1))}.npz").unlink()
    assert row_of(seed_sweep_rows(tmp_path), 10.0, 0.1)["exact r there"] == "0.930 (n = 1)"


def test_the_table_is_written_only_once_a_run_has_finished(tmp_path):
    out = tmp_path / "figures"
    assert write_seed_sweep_table(tmp_path, out) == []
    fake_sweep_run(tmp_path, "exact", 10.0, 0.1, 0, 0.93)
    [entry] = write_seed_sweep_table(tmp_path, out)
    assert entry["stem"] == under(ADOPTED, "rsweep_vs_thesis")
    assert (out / f"{entry['stem']}.csv").read_text().count("\n") == 1 + 2 * (9 + 1)  # header, 9 r0 + summary per λ


@pytest.mark.slow
def test_the_sweep_figure_counts_seeds_per_r0_and_says_while_seeds_still_run(tmp_path):
    for seed in (0, 1):
        fake_sweep_run(tmp_path, "exact", 0.0, 0.3, seed, 0.3)
    fake_sweep_run(tmp_path, "exact", 0.0, 0.7, 0, 0.6)
    [entry] = plot_sweep(tmp_path, tmp_path / "figures", "exact", ADOPTED)
    assert "1–2 seed(s) per r0" in entry["caption"] and "(seeds still running)" in entry["caption"]
    assert (tmp_path / "figures" / f"{entry['stem']}.png").stat().st_size > 1000


def test_every_thesis_panel_has_an_end_and_a_read_off_r():
    from refprune.experiments.figures.mnist_sweep import SWEEP_R0, THESIS_SWEEP_LAST_ITERATION
    for lam in (0.0, 10.0):
        assert set(THESIS_SWEEP_LAST_ITERATION[lam]) == set(THESIS_SWEEP_END_R[lam]) == set(SWEEP_R0)


def test_the_trace_end_rows_set_our_last_iteration_beside_the_thesis_panels(tmp_path):
    from refprune.experiments.figures.mnist_sweep import THESIS_SWEEP_LAST_ITERATION
    from refprune.experiments.figures.protocols import sweep_run_name, trace_end_rows
    for hyp, last, epochs in (("ddp2es", 8_249, 11), ("stated", 22_499, 15)):
        name = sweep_run_name(hyp, 0.8)
        rec = {"job": {"name": name, "seed": 0}, "summary": {}, "epochs": [{"r": 0.8}] * epochs}
        (tmp_path / f"{name}.json").write_text(json.dumps(rec))
        np.savez(tmp_path / f"{name}.npz", step_index=np.array([0, last]), step_r=np.array([0.8, 0.7]))
    rows = {(r["hypothesis"], r["run"]): r for r in trace_end_rows(tmp_path)}
    thesis = THESIS_SWEEP_LAST_ITERATION[0.0][0.8]
    assert rows[("ddp2es", "r0 = 0.8")]["ours"] == "8,249"
    assert rows[("ddp2es", "r0 = 0.8")]["error"] == f"{8_249 - thesis:+,}"
    assert rows[("stated", "r0 = 0.8")]["error"] == f"{22_499 - thesis:+,}"
    # r never rises: H3 replayed stops the stated run after epoch 1 + patience = 11, of 1,500 steps each
    assert rows[("stated + H3 (replayed)", "r0 = 0.8")]["ours"] == "16,499"
    assert rows[("stated", "r0 = 0.1")]["ours"] == "not run"


def test_h3_stops_after_patience_epochs_without_a_rise_above_min_delta():
    from refprune.experiments.figures.protocols import H3_PATIENCE, h3_stop_epoch
    from refprune.train.protocol import EARLY_STOP_MIN_DELTA
    peak_then_fall = [0.50, 0.51] + [0.51 - 0.01 * k for k in range(1, 20)]
    assert h3_stop_epoch(peak_then_fall) == 2 + H3_PATIENCE  # best at epoch 2, then patience epochs
    # r wobbles above its best, but never by more than min_delta: no improvement after epoch 1
    wobbling = [0.5 + 0.9 * EARLY_STOP_MIN_DELTA * (k % 2) for k in range(20)]
    assert h3_stop_epoch(wobbling) == 1 + H3_PATIENCE
    assert h3_stop_epoch([0.5 + 0.01 * k for k in range(20)]) is None  # rising: runs them all


def test_replaying_h3_on_a_run_without_it_gives_the_trace_end_of_the_run_with_it(tmp_path):
    from refprune.experiments.figures.protocols import trace_end
    name = "run"
    epoch_r = [0.6, 0.61] + [0.6] * 13  # best at epoch 2: H3 stops after epoch 12
    rec = {"job": {"name": name, "seed": 0}, "summary": {}, "epochs": [{"r": r} for r in epoch_r]}
    (tmp_path / f"{name}.json").write_text(json.dumps(rec))
    np.savez(tmp_path / f"{name}.npz", step_index=np.array([0, 15 * 750 - 1]), step_r=np.zeros(2))
    assert trace_end(tmp_path, name, replay_h3=False) == 11_249
    assert trace_end(tmp_path, name, replay_h3=True) == 12 * 750 - 1
    assert trace_end(tmp_path, "missing", replay_h3=True) is None


def test_committed_runs_with_h3_stop_where_h3_replayed_on_the_same_seed_without_it_does():
    """H3 changes nothing before it stops: the ddp2es runs (H3 on) end where the rule, replayed on the
    adopted protocol's seed-0 runs (H3 off, otherwise the same job), says they would."""
    from pathlib import Path

    from refprune.experiments.figures.protocols import sweep_run_name, trace_end
    results = Path(__file__).resolve().parents[1] / "results"
    pairs = [(sweep_run_name("ddp2es", r0), under(ADOPTED, sweep_name("published", 0.0, r0, SWEEP_EPOCHS, 0)))
             for r0 in THESIS_SWEEP_END_R[0.0]]
    pairs = [(a, b) for a, b in pairs if (results / f"{a}.json").is_file() and (results / f"{b}.json").is_file()]
    if not pairs:
        pytest.skip("no committed ddp2es and ddp2 sweep runs to compare")
    for with_h3, without in pairs:
        assert trace_end(results, with_h3, replay_h3=False) == trace_end(results, without, replay_h3=True)
