"""LRP on MNIST (thesis §4.2): dense baseline, the four Table 4.6 runs in both variants,
the r0 sweep, and Table 4.6 itself.

Fig. 3.3 (sample images, :mod:`.mnist_samples`), Table 4.1 as used (:mod:`.mnist_settings`),
Tables 4.2–4.5, the dense baseline's table and the LRP/dense wall-time ratio (:mod:`.mnist_tables`),
Figs. 4.8 (dense per epoch), 4.9–4.14 (per run: loss and accuracy per epoch, τ and r per backward
pass, sparsity per layer; :mod:`.mnist_seeds`), 4.15/4.16 and Appendix A (mask heat maps of every
layer), 4.17/4.18 (r per iteration for r0 = 0.1 … 0.9, λ = 0 and λ = 10, and their tables:
:mod:`.mnist_sweep`). Every LRP figure exists for the exact and the published gradient path
(METHOD §6), and each Table 4.6 run has one figure overlaying both (:mod:`.mnist_overlay`). The
stated protocol's figures are one run (seed 0); the adopted protocol's are the mean with a band over
its seeds (the thesis draws one run).
"""

from __future__ import annotations

import csv
import io

import numpy as np

from refprune.experiments.figures import mnist_samples, mnist_sweep
from refprune.experiments.figures.common import PERCENT_RANGE, entry, prediction_interval, save
from refprune.experiments.figures.mnist_overlay import plot_overlay
from refprune.experiments.figures.mnist_seeds import (
    curves_figure,
    masks_figure,
    r_tau_figure,
    run_figure,
    seeds_note,
    sparsity_figure,
)
from refprune.experiments.figures.mnist_settings import write_settings_table
from refprune.experiments.figures.mnist_sweep import SWEEP_EPOCHS, SWEEP_REDUCTION
from refprune.experiments.figures.mnist_tables import (
    THESIS_DENSE_METRICS,
    write_dense_table,
    write_metric_tables,
    write_time_table,
)
from refprune.experiments.figures.protocol_settings import (
    ADOPTED,
    SEEDS,
    SPARSITY_TOLERANCE_PP,
    STATED,
    TEST_ACC_TOLERANCE_PP,
    protocol_config,
    run_name,
    sweep_name,
    under,
)
from refprune.experiments.jobs import unpack_mask
from refprune.experiments.sweep import load_arrays, load_results
from refprune.train.loop import VARIANTS
from refprune.util.io import atomic_write

NAME = "mnist"
PROTOCOL = ("784-512-512-10, pixels in [0, 1], 48k/12k/10k train/validation/test (split seed 0), batch 32, "
            "25 epochs, Table 4.1 (r0 as named, τ0 = 1e-2 × std W, lr 1e-3 / 1e-4 (r) / 1e-6 (τ), λ = 0 or 10), "
            "float32; the stated protocol's runs are seed 0, the adopted one's seeds 0–4. The published variant applies P1–P4 with the published density (P5). "
            "The stated protocol's r0 sweep (Figs. 4.17/4.18) is " + "{reduction}. "
            "Two protocols side by side: the **stated** one (batch 32, one process, 1,500 steps per epoch; runs "
            "t46_*, rsweep_*) and the adopted **thesis protocol** '{adopted}' (two data-parallel processes of "
            "batch 32, gradients averaged, 750 steps per epoch, validation and test on rank 0's half; runs "
            "proto_{adopted}_*, five seeds of every run, r0 sweep included), chosen from the protocol-hypothesis "
            "table (docs/protocol.md).")
TABLE_RUNS = ((0.5, 0.0), (0.95, 0.0), (0.5, 10.0), (0.95, 10.0))
THESIS_TABLE = {  # thesis Table 4.6: train acc, test acc, sparsity, compression
    (0.5, 0.0): (99.8, 97.6, 0.0, 1.0), (0.95, 0.0): (98.9, 97.2, 86.6, 7.46),
    (0.5, 10.0): (99.96, 98.1, 95.3, 21.28), (0.95, 10.0): (98.6, 97.2, 97.9, 47.62)}
THESIS_RUN_FIGS = {(0.5, 0.0): "Figs. 4.9–4.11", (0.95, 0.0): "Fig. 4.12",
                   (0.5, 10.0): "Fig. 4.13", (0.95, 10.0): "Fig. 4.14"}
THESIS_MASK_FIGS = {(0.95, 10.0): "Fig. 4.15 (layer 1), App. A", (0.95, 0.0): "Fig. 4.16 (layer 1), App. A"}
PROTOCOL = PROTOCOL.format(reduction=SWEEP_REDUCTION, adopted=ADOPTED)
FULL = {"data": "mnist", "epochs": 25, "sweep_epochs": SWEEP_EPOCHS,
        "sweep_r0": {v: [round(0.1 * i, 1) for i in range(1, 10)] for v in VARIANTS},
        "sweep_seeds": {"published": [0], "exact": [0]}}
QUICK = {"data": "tiny_mnist", "epochs": 2, "sweep_epochs": 1, "sweep_r0": {v: [0.3, 0.7] for v in VARIANTS},
         "sweep_seeds": {"published": [0], "exact": [0]}, "adopted_seeds": (0, 1), "adopted_sweep": False}


def coarse_to_fine(values) -> list:
    """The values sorted, reordered ends first, then midpoints by bisection.

    A sweep stopped part way then still covers its range: 0.1 … 0.9 runs as
    0.1, 0.9, 0.5, 0.3, 0.7, 0.2, 0.4, 0.6, 0.8.
    """
    xs = sorted(values)
    if len(xs) < 3:
        return xs
    order, intervals = [0, len(xs) - 1], [(0, len(xs) - 1)]
    while intervals:
        lo, hi = intervals.pop(0)
        if hi - lo < 2:
            continue
        mid = (lo + hi) // 2
        order.append(mid)
        intervals += [(lo, mid), (mid, hi)]
    return [xs[i] for i in order]


def dense_name(seed: int = 0) -> str:
    """The dense baseline's run (thesis Fig. 4.8) under the stated protocol."""
    return f"mnist_dense_s{seed}"


def adopted_jobs(s: dict, base: dict) -> list:
    """Table 4.6 (both variants) and the r0 sweeps (both variants, both λ) under the adopted protocol,
    five seeds each: the published Table 4.6 runs first (all seeds of r0 = 0.95, λ = 0 first), then the
    exact ones, then the sweeps seed by seed."""
    seeds = s.get("adopted_seeds", SEEDS)
    extra = protocol_config(ADOPTED)

    def train_job(name, seed, config):
        return {**base, "name": under(ADOPTED, name), "seed": seed,
                "config": {"method": "lrp", **config, **extra}}

    first = sorted(TABLE_RUNS, key=lambda run: run != (0.95, 0.0))  # the row the protocols disagree on
    out = [{**train_job(run_name(variant, r0, lam, seed), seed,
                        {"variant": variant, "r0": r0, "lam": lam, "epochs": s["epochs"]}),
            **({"keep_masks": True} if seed == 0 else {})}  # seed 0's masks: Figs. 4.15/4.16, App. A
           for variant in ("published", "exact") for r0, lam in first for seed in seeds]
    out += [{**base, "name": under(ADOPTED, dense_name(seed)), "seed": seed,
             "config": {"method": "dense", "epochs": s["epochs"], **extra}} for seed in seeds]
    if not s.get("adopted_sweep", True):  # quick mode: the table's two seeds only
        return out
    out += [train_job(sweep_name(variant, lam, r0, s["sweep_epochs"], seed), seed,
                      {"variant": variant, "r0": r0, "lam": lam, "epochs": s["sweep_epochs"]})
            for seed in seeds for variant in ("published", "exact")
            for r0 in coarse_to_fine(s["sweep_r0"][variant]) for lam in (0.0, 10.0)]
    return out


def jobs(quick: bool, data_dir=None) -> list:
    s = QUICK if quick else FULL
    base = {"kind": "train", "data": s["data"], "data_dir": None if quick else data_dir}
    out = mnist_samples.jobs(quick, data_dir)
    out += [{**base, "name": dense_name(0), "seed": 0, "config": {"method": "dense", "epochs": s["epochs"]}}]
    for variant in VARIANTS:
        for r0, lam in TABLE_RUNS:
            out.append({**base, "name": run_name(variant, r0, lam), "seed": 0, "keep_masks": True,
                        "config": {"method": "lrp", "variant": variant, "r0": r0, "lam": lam,
                                   "epochs": s["epochs"]}})
        for r0 in coarse_to_fine(s["sweep_r0"][variant]):
            for lam in (0.0, 10.0):
                for seed in s["sweep_seeds"][variant]:
                    out.append({**base, "name": sweep_name(variant, lam, r0, s["sweep_epochs"], seed),
                                "seed": seed,
                                "config": {"method": "lrp", "variant": variant, "r0": r0, "lam": lam,
                                           "epochs": s["sweep_epochs"]}})
    return out + adopted_jobs(s, base)


def one(results, name):
    recs = [r for r in load_results(results, name) if r["job"]["name"] == name]
    return recs[0] if recs else None


def present(results, names) -> list:
    """The records of the runs named that exist, in the order named."""
    return [rec for rec in (one(results, n) for n in names) if rec is not None]


def adopted_runs(results, variant, r0, lam, seeds=SEEDS) -> list:
    """The adopted protocol's records of one Table 4.6 run, one per seed present."""
    return present(results, [under(ADOPTED, run_name(variant, r0, lam, sd)) for sd in seeds])


def adopted_dense(results, seeds=SEEDS) -> list:
    """The adopted protocol's dense runs present, one per seed."""
    return present(results, [under(ADOPTED, dense_name(sd)) for sd in seeds])


def stated_runs(results, variant, r0, lam) -> list:
    """The stated protocol's run of one Table 4.6 row (seed 0) as a list: one record or none."""
    return present(results, [run_name(variant, r0, lam)])


def adopted_jobs_of(r0, lam, variant="*") -> str:
    """The adopted protocol's runs of one Table 4.6 row, as a name pattern for the index."""
    return under(ADOPTED, f"t46_{variant}_r0{r0:.2f}_lam{lam:g}_s")


def mean_pm(values, scale=100.0, digits=2) -> str:
    """'mean ± std' of ``values`` × ``scale`` (one value: that value)."""
    v = scale * np.asarray(values, np.float64)
    return f"{v[0]:.{digits}f}" if v.size == 1 else f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"


def plot_dense(results, out) -> list:
    """Fig. 4.8: the stated protocol's run (seed 0) and the adopted protocol's, from whichever seeds exist."""
    thesis_acc = THESIS_DENSE_METRICS[2]["test"][1]
    entries = []
    for protocol, recs, jobs in ((STATED, present(results, [dense_name(0)]), dense_name(0)),
                                 (ADOPTED, adopted_dense(results), under(ADOPTED, dense_name(0))[:-1])):
        if not recs:
            continue
        stem = under(protocol, "fig4_8_mnist_dense")
        where = "stated protocol, seed 0" if protocol == STATED else f"adopted protocol '{ADOPTED}'"
        save(curves_figure(recs, f"Dense 784-512-512-10, {where}"), out, stem)
        accs = [r["summary"]["test_accuracy"] for r in recs]
        entries.append(entry(stem, "Fig. 4.8", f"{where if protocol == STATED else f'adopted {ADOPTED!r} protocol'}, "
                             f"{seeds_note(len(recs))}: dense baseline loss and accuracy per epoch (test accuracy "
                             f"{mean_pm(accs)}%; thesis {thesis_acc:g}%)", jobs))
    return entries


def plot_run(results, out, variant, r0, lam) -> list:
    """The stated protocol's figures of one Table 4.6 run (seed 0): curves, τ and r, sparsity, masks."""
    name = run_name(variant, r0, lam)
    rec = one(results, name)
    if rec is None:
        return []
    arrays = load_arrays(results, name)
    label = f"LRP {variant}, r0 = {r0}, λ = {lam:g}, stated protocol, seed 0"
    stem = f"lrp_{variant}_r0{r0:.2f}_lam{lam:g}"
    thesis = THESIS_RUN_FIGS[(r0, lam)]
    save(curves_figure([rec], label), out, f"{stem}_curves")
    save(r_tau_figure([arrays], label), out, f"{stem}_r_tau")
    save(sparsity_figure([rec], label), out, f"{stem}_sparsity")
    n_layers = len(rec["summary"]["sparsity_per_layer"])
    save(masks_figure([unpack_mask(arrays, l) for l in range(1, n_layers + 1)], label), out, f"{stem}_masks")
    s = rec["summary"]
    what = f"stated protocol, one run (seed 0): LRP {variant}, r0 = {r0}, λ = {lam:g}"
    note = f"test acc {100 * s['test_accuracy']:.2f}%, sparsity {100 * s['sparsity']:.2f}%"
    return [entry(f"{stem}_curves", f"{thesis} (loss, accuracy)", f"{what}: loss and accuracy per epoch; {note}",
                  name, seconds=rec["seconds"]),
            entry(f"{stem}_r_tau", f"{thesis} (τ, r)", f"{what}: τ and r per backward pass", name),
            entry(f"{stem}_sparsity", f"{thesis} (sparsity)", f"{what}: sparsity per layer", name),
            entry(f"{stem}_masks", THESIS_MASK_FIGS.get((r0, lam), "App. A"), f"{what}: hard masks of every layer",
                  name)]


def plot_adopted_run(results, out, variant, r0, lam) -> list:
    """The adopted protocol's figure of one Table 4.6 run (thesis Fig. 4.12's layout), the mean with a band
    over the seeds present; and seed 0's hard masks if its run kept them."""
    recs = adopted_runs(results, variant, r0, lam)
    if not recs:
        return []
    arrays = [load_arrays(results, rec["job"]["name"]) for rec in recs]
    label = f"LRP {variant}, r0 = {r0}, λ = {lam:g}, adopted protocol '{ADOPTED}'"
    stem = under(ADOPTED, f"lrp_{variant}_r0{r0:.2f}_lam{lam:g}")
    save(run_figure(recs, arrays, label), out, stem)
    what = f"adopted {ADOPTED!r} protocol, {seeds_note(len(recs))}: LRP {variant}, r0 = {r0}, λ = {lam:g}"
    summaries = [rec["summary"] for rec in recs]
    note = (f"test acc {mean_pm([s['test_accuracy'] for s in summaries])}%, sparsity "
            f"{mean_pm([s['sparsity'] for s in summaries])}%")
    thesis = THESIS_RUN_FIGS[(r0, lam)]
    entries = [entry(stem, f"{thesis} (loss, accuracy, τ, r, sparsity)", f"{what}: loss and accuracy per epoch, τ and "
                     f"r per backward pass, final sparsity per layer (error bars ±1 std); {note}",
                     adopted_jobs_of(r0, lam, variant))]
    if recs[0]["job"]["seed"] == 0 and "mask1" in arrays[0]:
        n_layers = len(recs[0]["summary"]["sparsity_per_layer"])
        masks = [unpack_mask(arrays[0], l) for l in range(1, n_layers + 1)]
        save(masks_figure(masks, f"{label}, seed 0"), out, f"{stem}_masks")
        entries.append(entry(f"{stem}_masks", THESIS_MASK_FIGS.get((r0, lam), "App. A"),
                             f"adopted {ADOPTED!r} protocol, seed 0: LRP {variant}, r0 = {r0}, λ = {lam:g}: hard masks "
                             "of every layer", recs[0]["job"]["name"]))
    return entries


TABLE_QUANTITIES = ("train_acc", "test_acc", "sparsity", "compression")
# The range each quantity's runs lie in; the prediction intervals are cut to it.
QUANTITY_BOUNDS = {"train_acc": PERCENT_RANGE, "test_acc": PERCENT_RANGE, "sparsity": PERCENT_RANGE,
                   "compression": (1.0, np.inf)}
TABLE_NOTE = ("Accuracy and sparsity in %, compression = 1/(1 − sparsity) (the thesis's own column); train "
              "accuracy is the last epoch's with the hard mask, test accuracy after pruning for real (under ddp2: "
              "on rank 0's half of the test set, as the published code logs it). Each cell under the adopted "
              "protocol: mean ± std over the seeds, then the 95% prediction interval for one new run (t with "
              "n − 1 degrees of freedom; cut to the quantity's range: 0–100%, compression ≥ 1) and whether the thesis's value, itself one run, lies inside it "
              "(✓ inside, ✗ outside). The stated protocol's cells are one run (seed 0). The csv also keeps the "
              "earlier yardstick (mean within ±1 pp of the thesis's test accuracy, ±3 pp of its sparsity), "
              "labelled as such; the verdicts come from the intervals.")
# The earlier reproduction yardstick, kept in the csv for reference (percentage points).
YARDSTICK_PP = {"test_acc": TEST_ACC_TOLERANCE_PP, "sparsity": SPARSITY_TOLERANCE_PP}


def run_values(rec) -> dict:
    """Train accuracy (hard mask, last epoch) and test accuracy, %; sparsity, %; compression."""
    s = rec["summary"]
    return {"train_acc": 100 * rec["epochs"][-1]["train_accuracy_hard"], "test_acc": 100 * s["test_accuracy"],
            "sparsity": 100 * s["sparsity"], "compression": s["compression"]}


def seed_values(results, names) -> dict | None:
    """Each quantity's values over the runs that exist, {quantity: ndarray}, or None if none exists."""
    values = [run_values(rec) for rec in (one(results, n) for n in names) if rec is not None]
    if not values:
        return None
    return {q: np.array([d[q] for d in values], np.float64) for q in TABLE_QUANTITIES}


def interval_cells(v: np.ndarray, thesis: float, bounds: tuple[float, float]) -> dict:
    """mean, std, the prediction interval for one new run (cut to ``bounds``) and whether the thesis's value
    lies inside."""
    cells = {"mean": round(float(v.mean()), 2), "std": round(float(v.std(ddof=1)), 2) if v.size > 1 else 0.0}
    if v.size > 1:
        lo, hi = prediction_interval(v, bounds=bounds)
        cells.update({"pi_low": round(lo, 2), "pi_high": round(hi, 2),
                      "thesis_inside": "yes" if lo <= thesis <= hi else "no"})
    return cells


def table_rows(results, seeds=SEEDS) -> list:
    """Per Table 4.6 run: the thesis's values, each variant under the adopted protocol (mean ± std over the
    seeds present, the 95% prediction interval for one new run and whether the thesis lies inside) and under
    the stated one (seed 0)."""
    rows = []
    for r0, lam in TABLE_RUNS:
        thesis = dict(zip(TABLE_QUANTITIES, THESIS_TABLE[(r0, lam)]))
        row = {"run": f"r0 = {r0}, λ = {lam:g}", **{f"thesis_{q}": v for q, v in thesis.items()}}
        for variant in VARIANTS:
            vals = seed_values(results, [under(ADOPTED, run_name(variant, r0, lam, sd)) for sd in seeds])
            if vals is not None:
                key = f"{variant}_{ADOPTED}"
                row[f"{key}_seeds"] = int(vals["test_acc"].size)
                for q in TABLE_QUANTITIES:
                    row.update({f"{key}_{q}_{k}": v for k, v in interval_cells(vals[q], thesis[q], QUANTITY_BOUNDS[q]).items()})
                for q, pp in YARDSTICK_PP.items():
                    row[f"{key}_{q}_within_{pp:g}pp_earlier_yardstick"] = \
                        "yes" if abs(vals[q].mean() - thesis[q]) <= pp else "no"
            stated = one(results, run_name(variant, r0, lam))
            if stated is not None:
                row.update({f"{variant}_stated_{q}": round(v, 2) for q, v in run_values(stated).items()})
        rows.append(row)
    return rows


def table_md(rows) -> list:
    """The Markdown form: one column per variant and protocol; 'mean ± std [interval] ✓/✗ (n)' cells."""
    cols = [("thesis", None)] + [(f"{v} {ADOPTED}", f"{v}_{ADOPTED}") for v in VARIANTS] + \
           [(f"{v} stated (seed 0)", f"{v}_stated") for v in VARIANTS]
    head = "| run | quantity | " + " | ".join(c for c, _ in cols) + " |"
    lines = [head, "|---" * (len(cols) + 2) + "|"]
    for row in rows:
        for q in TABLE_QUANTITIES:
            cells = [str(row[f"thesis_{q}"])]
            for _, key in cols[1:]:
                if f"{key}_{q}_mean" in row:
                    n = row[f"{key}_seeds"]
                    text = f"{row[f'{key}_{q}_mean']:.2f}"
                    if n > 1:  # no spread from one seed
                        mark = "✓" if row[f"{key}_{q}_thesis_inside"] == "yes" else "✗"
                        text += (f" ± {row[f'{key}_{q}_std']:.2f} [{row[f'{key}_{q}_pi_low']:.2f}, "
                                 f"{row[f'{key}_{q}_pi_high']:.2f}] {mark}")
                    cells.append(text + f" (n = {n})")
                else:
                    cells.append(f"{row[f'{key}_{q}']:.2f}" if f"{key}_{q}" in row else "—")
            lines.append(f"| {row['run']} | {q} | " + " | ".join(cells) + " |")
    return lines


def write_table(results, out) -> list:
    rows = table_rows(results)
    if not any(len(r) > 5 for r in rows):
        return []
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, restval="")
    writer.writeheader()
    writer.writerows(rows)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "table4_6.csv", lambda fh: fh.write(buf.getvalue().encode()))
    md = table_md(rows)
    atomic_write(out / "table4_6.md", lambda fh: fh.write(("\n".join(md) + "\n").encode()))
    return [entry("table4_6", "Table 4.6", f"train/test accuracy (%), sparsity (%), compression: the thesis, both "
                  f"variants under the adopted '{ADOPTED}' protocol (mean ± std over seeds, 95% prediction interval "
                  f"for one new run, the thesis inside or not) and under the stated protocol (seed 0, t46_*)", under(ADOPTED, "t46_*"),
                  files=["table4_6.md", "table4_6.csv"], rows=rows,
                  section=("Table 4.6: the thesis, the adopted protocol and the stated one", [TABLE_NOTE, ""] + md))]


def plot(results, out) -> list:
    entries = mnist_samples.plot(results, out) + plot_dense(results, out)
    for variant in VARIANTS:
        for r0, lam in TABLE_RUNS:
            entries += plot_run(results, out, variant, r0, lam) + plot_adopted_run(results, out, variant, r0, lam)
    adopted_of = lambda variant, r0, lam: adopted_runs(results, variant, r0, lam)  # noqa: E731
    stated_of = lambda variant, r0, lam: stated_runs(results, variant, r0, lam)  # noqa: E731
    for r0, lam in TABLE_RUNS:
        thesis = THESIS_RUN_FIGS[(r0, lam)]
        entries += plot_overlay(stated_of, results, out, r0, lam, thesis, protocol="stated protocol")
        entries += plot_overlay(adopted_of, results, out, r0, lam, thesis, stem_prefix=under(ADOPTED, ""),
                                jobs=adopted_jobs_of(r0, lam), protocol=f"adopted {ADOPTED!r} protocol")
    entries += write_metric_tables(adopted_of, lambda *run: next(iter(stated_of(*run)), None), out, VARIANTS,
                                   ADOPTED, adopted_jobs_of)
    dense_jobs = under(ADOPTED, dense_name(0))[:-1]
    stated_dense = present(results, [dense_name(0)])
    entries += write_dense_table(adopted_dense(results), next(iter(stated_dense), None), out, ADOPTED, dense_jobs)
    entries += write_time_table({ADOPTED: (adopted_of, adopted_dense(results)), STATED: (stated_of, stated_dense)},
                                TABLE_RUNS, VARIANTS, out, dense_jobs)
    entries += write_settings_table(out, TABLE_RUNS)
    return entries + mnist_sweep.plot(results, out) + write_table(results, out)
