"""Tables 4.1–4.5, the dense baseline's table, the LRP/dense wall-time ratio and the adopted protocol's
figures (refprune.experiments.figures.mnist_tables, mnist_settings, mnist_seeds, mnist), on fake results."""

import json

import numpy as np
import pytest
from scipy.stats import t as student_t

from refprune.experiments.figures.mnist_tables import (
    DASH,
    THESIS_DENSE_METRICS,
    THESIS_METRICS,
    metric_rows,
    time_rows,
    write_dense_table,
    write_metric_tables,
)
from refprune.experiments.figures.protocol_settings import ADOPTED, run_name, under

VARIANTS = ("exact", "published")


def fake_record(value: float, method: str = "lrp", name: str = "run", seed: int = 0, seconds: float = 100.0,
                epochs: int = 1) -> dict:
    """A run record whose every recorded loss and accuracy is ``value`` (accuracy as a fraction)."""
    modes = ("dense",) if method == "dense" else ("soft", "hard")
    last = {f"{split}_{q}_{mode}": value for split in ("train", "val") for q in ("loss", "accuracy") for mode in modes}
    return {"job": {"name": name, "seed": seed}, "config": {"method": method}, "seconds": seconds,
            "epochs": [{"epoch": e + 1, "sparsity": 0.5, **last} for e in range(epochs)],
            "summary": {"test_loss": value, "test_accuracy": value, "sparsity": 0.5, "compression": 2.0,
                        "sparsity_per_layer": [0.5, 0.25, 0.125]}}


def interval(values):
    """The 95% prediction interval for one new run, written out: mean ± t(0.975, n − 1)·s·sqrt(1 + 1/n)."""
    v = np.asarray(values, float)
    half = student_t.ppf(0.975, v.size - 1) * v.std(ddof=1) * np.sqrt(1 + 1 / v.size)
    return v.mean() - half, v.mean() + half


def test_thesis_values_are_those_of_tables_4_2_to_4_5_and_the_dense_text():
    assert THESIS_METRICS[(0.5, 0.0)] == ("Table 4.2", 41, {"train": (0.00752, 99.8), "val": (0.131, 97.9),
                                                            "test": (0.156, 97.6)})
    assert THESIS_METRICS[(0.5, 10.0)][2]["test"] == (0.0936, 98.1)  # Table 4.4, p. 45
    assert THESIS_METRICS[(0.95, 10.0)][:2] == ("Table 4.5", 46)
    assert THESIS_DENSE_METRICS[1:] == (41, {"train": (0.0178, 99.4), "val": (0.160, 96.8), "test": (0.0927, 97.9)})


def test_metric_rows_give_the_interval_and_the_thesis_inside_verdict_per_quantity():
    losses = [0.120, 0.130, 0.140]  # validation loss: thesis Table 4.2 says 0.131, inside
    seeded = {"exact ddp2": [fake_record(v) for v in losses], "published ddp2": []}
    stated = {"exact stated": fake_record(0.199), "published stated": None}
    csv_rows, md_rows = metric_rows(seeded, stated, THESIS_METRICS[(0.5, 0.0)][2], ("soft", "hard"))
    keys = [(r["quantity"], r["split"], r["mask"]) for r in csv_rows]
    assert len(keys) == 10 and ("loss", "test", "soft") not in keys  # no soft-mask test metrics are recorded
    row = csv_rows[keys.index(("loss", "validation", "hard"))]
    lo, hi = interval(losses)
    assert row["thesis"] == 0.131 and row["exact ddp2 n"] == 3
    assert row["exact ddp2 mean"] == pytest.approx(0.13) and row["exact ddp2 std"] == pytest.approx(0.01)
    assert row["exact ddp2 pi_low"] == pytest.approx(lo, rel=1e-5)
    assert row["exact ddp2 pi_high"] == pytest.approx(hi, rel=1e-5)
    assert row["exact ddp2 thesis inside"] == "yes"
    assert row["published ddp2 n"] == 0 and row["published ddp2 thesis inside"] == ""  # no runs: no verdict
    assert row["exact stated"] == pytest.approx(0.199) and row["published stated"] == ""
    # accuracy in %: 12-14% against the thesis's 97.9% is far outside
    acc = csv_rows[keys.index(("accuracy", "validation", "hard"))]
    assert acc["exact ddp2 mean"] == pytest.approx(13.0) and acc["exact ddp2 thesis inside"] == "no"
    cells = md_rows[keys.index(("loss", "validation", "hard"))]
    assert cells[3] == "0.131" and cells[4] == f"0.130 ± 0.010 [{lo:#.3g}, {hi:#.3g}] ✓ (n = 3)"
    assert cells[5] == DASH and cells[6] == "0.199" and cells[7] == DASH
    assert md_rows[keys.index(("accuracy", "validation", "hard"))][4].endswith("✗ (n = 3)")


def test_one_seed_gives_a_mean_without_an_interval():
    csv_rows, md_rows = metric_rows({"exact ddp2": [fake_record(0.1)]}, {}, THESIS_METRICS[(0.5, 0.0)][2], ("hard",))
    assert csv_rows[0]["exact ddp2 thesis inside"] == "" and csv_rows[0]["exact ddp2 pi_low"] == ""
    assert md_rows[0][4] == "0.100 (n = 1)"


def test_metric_tables_are_written_with_their_note_and_the_count_of_verdicts(tmp_path):
    def seeded_of(variant, r0, lam):
        return [fake_record(v) for v in (0.0070, 0.0075, 0.0080)] if lam == 0 and variant == "exact" else []

    def stated_of(variant, r0, lam):
        return fake_record(0.2) if r0 == 0.5 and lam == 0 else None

    entries = write_metric_tables(seeded_of, stated_of, tmp_path, VARIANTS, ADOPTED,
                                  lambda r0, lam: under(ADOPTED, f"t46_*_r0{r0:.2f}_lam{lam:g}_s"))
    assert [e["stem"] for e in entries] == ["table4_2", "table4_3"]
    text = (tmp_path / "table4_2.md").read_text()
    assert "Table 4.2, p. 41" in text and "do not record test metrics with the soft mask" in text
    # the train losses (thesis 0.00752) lie inside, all else (losses of 0.2-0.15, accuracies of 0.7-0.8%) outside
    assert "exact ddp2: thesis inside 2 of 10 intervals" in text
    assert "exact stated (seed 0, one run)" in text and "3 seeds" in entries[0]["caption"]
    assert (tmp_path / "table4_2.csv").read_text().count("\n") == 11
    assert not (tmp_path / "table4_4.md").exists()


def test_the_dense_table_judges_the_adopted_seeds_and_shows_a_dash_before_they_exist(tmp_path):
    stated = fake_record(0.9793, "dense")
    entries = write_dense_table([], stated, tmp_path, ADOPTED, "proto_ddp2_mnist_dense_s")
    text = (tmp_path / "mnist_dense_vs_thesis.md").read_text()
    assert entries[0]["stem"] == "mnist_dense_vs_thesis" and "p. 41" in text
    assert "| accuracy | test | dense | 97.90 | — | 97.93 |" in text and "(n = " not in text
    accs = [0.977, 0.979, 0.981]
    write_dense_table([fake_record(a, "dense") for a in accs], stated, tmp_path, ADOPTED, "proto_ddp2_mnist_dense_s")
    lo, hi = interval(100 * np.array(accs))
    text = (tmp_path / "mnist_dense_vs_thesis.md").read_text()
    assert f"| accuracy | test | dense | 97.90 | 97.90 ± 0.20 [{lo:.2f}, {hi:.2f}] ✓ (n = 3) | 97.93 |" in text
    assert write_dense_table([], None, tmp_path, ADOPTED, "x") == []


def test_the_wall_time_ratio_is_over_every_pair_of_lrp_and_dense_runs():
    lrp = {("exact", 0.5, 0.0): [300.0, 400.0]}

    def lrp_of(variant, r0, lam):
        return [fake_record(0.1, seconds=s) for s in lrp.get((variant, r0, lam), [])]

    dense = [fake_record(0.1, "dense", seconds=s) for s in (100.0, 200.0)]
    rows = time_rows({"ddp2": (lrp_of, dense), "stated": (lrp_of, [])}, ((0.5, 0.0), (0.95, 0.0)), VARIANTS)
    assert [(r["protocol"], r["run"]) for r in rows] == [("ddp2", "r0 = 0.5, λ = 0"), ("ddp2", "all four runs")]
    row = rows[0]  # ratios 3, 1.5, 4, 2
    assert row["ratio median"] == "2.50" and row["ratio range"] == "1.50–4.00"
    assert row["pairs with ratio > 2"] == "2 of 4" and row["thesis"] == "> 2 (p. 43)"
    assert row["LRP seconds"] == "350 [300–400]" and row["dense seconds"] == "150 [100–200]"
    assert rows[1]["thesis"] == "not stated"


def test_table_4_1_as_used_follows_the_configuration():
    from refprune.experiments.figures.mnist import TABLE_RUNS
    from refprune.experiments.figures.mnist_settings import settings_rows
    from refprune.train.loop import TrainConfig
    rows = {r["hyper-parameter"]: r for r in settings_rows(TABLE_RUNS)}
    adopted = f"refprune, adopted protocol '{ADOPTED}'"
    tau0 = rows["τ0 (× std of all weights)"]
    assert tau0["thesis"] == "1e-2" and tau0[adopted] == "1e-2" and TrainConfig().tau0 == 1e-2
    assert rows["learning rate of τ"]["refprune, stated protocol"] == "1e-6" and TrainConfig().lr_tau == 1e-6
    assert rows["optimiser steps per epoch"]["refprune, stated protocol"] == "1,500"
    assert rows["optimiser steps per epoch"][adopted] == "750"
    assert rows["batch size"][adopted] == "32 per process × 2 processes"
    assert rows["train / validation / test images"]["refprune, stated protocol"].startswith("48,000 / 12,000 / 10,000")
    assert rows["r0 (initial pruning ratio)"]["thesis source"].startswith("Table 4.1, p. 41")
    assert rows["λ (regulariser λ(1 − r)²)"][adopted].startswith("0, 10")


# ---------------------------------------------------------------- the adopted protocol's figures


def test_the_band_is_one_sample_std_and_tau_is_averaged_in_log_space():
    from refprune.experiments.figures.mnist_seeds import mean_band, seed_stack
    values = seed_stack([[1.0, 2.0, 9.0], [3.0, 4.0], [5.0, 6.0, 7.0]])  # cut to the shortest run
    assert values.shape == (3, 2)
    mean, low, high = mean_band(values)
    np.testing.assert_allclose(mean, [3.0, 4.0])
    np.testing.assert_allclose(high - mean, [2.0, 2.0])  # ddof 1: std of 1, 3, 5 is 2
    mean, low, high = mean_band(np.array([[1e-6], [1e-4]]), log=True)
    np.testing.assert_allclose([mean[0], high[0] / mean[0]], [1e-5, 10 ** np.sqrt(2)])
    mean, low, high = mean_band(np.array([[0.5, 0.6]]))
    np.testing.assert_array_equal(low, high)  # one run: no width


def write_fake(results, rec, masks=False):
    (results / f"{rec['job']['name']}.json").write_text(json.dumps(rec))
    arrays = {"step_index": np.arange(0, 100, 10), "step_r": np.linspace(0.5, 0.4, 10),
              "step_tau": np.geomspace(1e-4, 1e-6, 10)}
    if masks:
        for l, shape in enumerate(((784, 512), (512, 512), (512, 10)), 1):
            arrays[f"mask{l}"] = np.packbits(np.ones(shape, bool), axis=None)
            arrays[f"mask{l}_shape"] = np.array(shape)
    np.savez(results / f"{rec['job']['name']}.npz", **arrays)


def test_the_adopted_figures_are_drawn_from_whichever_seeds_exist(tmp_path):
    from refprune.experiments.figures.mnist import dense_name, plot_adopted_run, plot_dense
    results, out = tmp_path / "results", tmp_path / "out"
    results.mkdir()
    write_fake(results, fake_record(0.979, "dense", dense_name(0), epochs=3))
    assert [e["stem"] for e in plot_dense(results, out)] == ["fig4_8_mnist_dense"]  # no adopted dense run yet
    for seed in (1, 3):
        write_fake(results, fake_record(0.98, "dense", under(ADOPTED, dense_name(seed)), seed, epochs=3))
    entries = plot_dense(results, out)
    assert [e["stem"] for e in entries] == ["fig4_8_mnist_dense", "proto_ddp2_fig4_8_mnist_dense"]
    assert "mean ± std over 2 seeds" in entries[1]["caption"] and "one run" in entries[0]["caption"]
    assert (out / "proto_ddp2_fig4_8_mnist_dense.png").stat().st_size > 1000
    assert plot_adopted_run(results, out, "exact", 0.5, 0.0) == []
    for seed in range(3):
        write_fake(results, fake_record(0.9, "lrp", under(ADOPTED, run_name("exact", 0.5, 0.0, seed)), seed, epochs=3),
                   masks=seed == 0)
    entries = plot_adopted_run(results, out, "exact", 0.5, 0.0)
    stem = "proto_ddp2_lrp_exact_r00.50_lam0"
    assert [e["stem"] for e in entries] == [stem, f"{stem}_masks"]
    assert "mean ± std over 3 seeds" in entries[0]["caption"] and "seed 0" in entries[1]["caption"]
    assert entries[0]["jobs"] == "proto_ddp2_t46_exact_r00.50_lam0_s"
