"""The r0 sweep on MNIST (thesis Figs. 4.17/4.18): r per iteration for r0 = 0.1 … 0.9, λ = 0 and 10.

Both gradient paths, under the stated protocol (one seed per r0) and under the adopted one (five
seeds per r0, as the thesis runs them). Two tables compare r where the thesis's figures end with
the value read off them: ``rsweep_vs_thesis`` (stated protocol, seed 0) and
``proto_<adopted>_rsweep_vs_thesis`` (adopted protocol, mean ± std and range over the seeds).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from refprune.experiments.figures.common import entry, save, write_md_csv
from refprune.experiments.figures.protocol_settings import ADOPTED, SEEDS, STATED, sweep_name, under
from refprune.experiments.sweep import load_arrays, load_results
from refprune.train.loop import VARIANTS

# The thesis's r0 sweep is 9 r0 × 5 seeds × 15 epochs per λ; at ~10-30 ms per
# MNIST step that is > 14 CPU-hours for both variants. The stated protocol's
# sweep is reduced (stated in the figure index): the thesis's 15 epochs, one
# seed per r0; the adopted protocol's has all five seeds. The epoch count and
# the seed are part of every job name, so results of another protocol are
# never mixed in.
SWEEP_EPOCHS = 15
SWEEP_REDUCTION = ("reduced from the thesis's 5 seeds to 1 seed per r0, 15 epochs as in the thesis; jobs run "
                   "coarse to fine in r0 (0.1, 0.9, 0.5, 0.3, 0.7, …), and each figure's entry names the r0 "
                   "values whose runs are done (compute time)")
THESIS_SWEEP_SEEDS = 5  # the thesis's seeds per r0 (§4.2)

SWEEP_R0 = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # the thesis's starting values (§4.2)

# Where each panel of the thesis's Figs. 4.17/4.18 ends on its "iteration" axis (the thesis does
# not say what an iteration is: 15 epochs of 48,000 images at batch 32 are 22,500 steps). Measured
# by scripts/measure_thesis_panel_ends.py on thesis p. 49 rendered at 500 dpi: the traces' last
# pixel column against the panel's white x gridlines, to about ±20 iterations (one pixel is 14–19).
# The panels do not all end alike: in Fig. 4.17 r0 = 0.1–0.7 end at 8,254–8,259 and r0 = 0.8, 0.9
# at 9,005–9,016; in Fig. 4.18 all end at 11,254–11,272. These are where the drawn lines end; line
# width carries a line 25–55 iterations past its data at the start, likely the same at the end.
# Marked on ours, and where r is compared with the thesis's.
THESIS_SWEEP_LAST_ITERATION = {
    0.0: {**dict.fromkeys(SWEEP_R0[:7], 8_250), 0.8: 9_020, 0.9: 9_020},
    10.0: dict.fromkeys(SWEEP_R0, 11_270)}


# r at the end of each panel of the thesis's Figs. 4.17 (λ = 0) and 4.18
# (λ = 10), read off the figures by eye (±0.01; a range where its five seeds
# visibly differ). Source: thesis p. 49 (Figs. 4.17/4.18).
THESIS_SWEEP_END_R = {
    0.0: {0.1: "0.00", 0.2: "0.00", 0.3: "0.03–0.04", 0.4: "0.12", 0.5: "0.21–0.32", 0.6: "0.48–0.52",
          0.7: "0.64–0.66", 0.8: "0.77–0.78", 0.9: "0.87"},
    10.0: {0.1: "0.90", 0.2: "0.92", 0.3: "0.93", 0.4: "0.93", 0.5: "0.93", 0.6: "0.935", 0.7: "0.94",
           0.8: "0.945", 0.9: "0.96"}}
# How far a value read off the thesis's figures by eye may be from the plotted one (the ±0.01 above):
# a seed range closer than this to the thesis's read-off range is counted as meeting it.
READ_OFF_UNCERTAINTY = 0.01


def thesis_interval(text: str) -> tuple[float, float]:
    """The ends of a read-off value or range such as ``"0.21–0.32"`` (a single value: both ends)."""
    parts = [float(p) for p in text.replace("–", "-").split("-")]
    return min(parts), max(parts)


def thesis_r(text: str) -> float:
    """The midpoint of a read-off value or range such as ``"0.21–0.32"``."""
    return float(np.mean(thesis_interval(text)))


def longest_protocol(recs) -> list:
    """The records of the longest sweep protocol present (most epochs), so a
    shorter, reduced sweep kept in the results is never drawn with it."""
    if not recs:
        return []
    most = max(r["job"]["config"]["epochs"] for r in recs)
    return [r for r in recs if r["job"]["config"]["epochs"] == most]


def r_at(results, name: str, step: float) -> float:
    """r of a run at a step, interpolated in its downsampled trace (its last value past the end)."""
    arrays = load_arrays(results, name)
    return float(np.interp(step, arrays["step_index"], arrays["step_r"]))


def sweep_rows(results) -> list:
    """Per λ and r0: the thesis's final r beside both variants' r at the thesis's last iteration and at the end."""
    rows = []
    for lam, by_r0 in THESIS_SWEEP_END_R.items():
        for r0, thesis in by_r0.items():
            last = THESIS_SWEEP_LAST_ITERATION[lam][r0]
            row = {"λ": f"{lam:g}", "r0": f"{r0:g}", "thesis's last step": f"≈{last:,}", "thesis r there": thesis}
            for variant in VARIANTS:
                recs = longest_protocol(load_results(results, f"rsweep_{variant}_lam{lam:g}_r0{r0:.1f}_"))
                name = recs[0]["job"]["name"] if recs else None
                row[f"{variant} r there"] = f"{r_at(results, name, last):.3f}" if name else "—"
                row[f"{variant} r at the end"] = f"{r_at(results, name, np.inf):.3f}" if name else "—"
            rows.append(row)
    return rows


def write_sweep_table(results, out) -> list:
    rows = [r for r in sweep_rows(results) if any(r[f"{v} r there"] != "—" for v in VARIANTS)]
    if not rows:
        return []
    keys = list(dict.fromkeys(k for r in rows for k in r))
    md = write_md_csv(out, "rsweep_vs_thesis", keys, rows)
    return [entry("rsweep_vs_thesis", "Figs. 4.17/4.18", "r of the r0 sweep at the thesis's last iteration and at "
                  "the end of 15 epochs, both variants, beside the thesis's final r (read off its figures)",
                  "rsweep_*", files=["rsweep_vs_thesis.md", "rsweep_vs_thesis.csv"],
                  section=("r0 sweep: the thesis's final r and the reproduction", md))]


def finished_runs(results, names) -> list:
    """The names whose result files (record and arrays) are both present."""
    return [n for n in names if (Path(results) / f"{n}.json").is_file() and (Path(results) / f"{n}.npz").is_file()]


def spread(values: np.ndarray) -> str:
    """'mean ± std (n = k)' with ddof 1, or the value alone for one run."""
    if values.size == 1:
        return f"{values[0]:.3f} (n = 1)"
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f} (n = {values.size})"


def range_gap(seeds: np.ndarray, thesis: str) -> float:
    """How far the seeds' range [min, max] lies from the thesis's read-off range widened by
    READ_OFF_UNCERTAINTY: 0 where they meet, positive where the seeds lie above, negative below."""
    lo, hi = thesis_interval(thesis)
    lo, hi = lo - READ_OFF_UNCERTAINTY, hi + READ_OFF_UNCERTAINTY
    if seeds.min() > hi:
        return float(seeds.min() - hi)
    if seeds.max() < lo:
        return float(seeds.max() - lo)
    return 0.0


def seed_sweep_rows(results, protocol: str = ADOPTED, seeds=SEEDS) -> list:
    """Per λ and r0, each variant's r over the seeds present at the thesis's last iteration: mean ± std,
    range, the mean's error against the thesis's read-off value (midpoint of its range) and the gap between
    the seeds' range and the thesis's; and r at the end. Then per λ, a row summing the errors and gaps up."""
    rows = []
    for lam, by_r0 in THESIS_SWEEP_END_R.items():
        errors, meets = {v: [] for v in VARIANTS}, {v: 0 for v in VARIANTS}
        for r0, thesis in by_r0.items():
            last = THESIS_SWEEP_LAST_ITERATION[lam][r0]
            row = {"λ": f"{lam:g}", "r0": f"{r0:g}", "thesis's last step": f"≈{last:,}", "thesis r there": thesis}
            for variant in VARIANTS:
                names = finished_runs(results, [under(protocol, sweep_name(variant, lam, r0, SWEEP_EPOCHS, s))
                                                for s in seeds])
                if not names:
                    row.update({f"{variant} {k}": "—" for k in ("r there", "range there", "error", "range gap",
                                                                 "r at the end")})
                    continue
                there = np.array([r_at(results, n, last) for n in names])
                end = np.array([r_at(results, n, np.inf) for n in names])
                errors[variant].append(there.mean() - thesis_r(thesis))
                gap = range_gap(there, thesis)
                meets[variant] += gap == 0.0
                row.update({f"{variant} r there": spread(there),
                            f"{variant} range there": f"{there.min():.3f}–{there.max():.3f}",
                            f"{variant} error": f"{errors[variant][-1]:+.3f}",
                            f"{variant} range gap": "meets" if gap == 0.0 else f"{gap:+.3f}",
                            f"{variant} r at the end": spread(end)})
            rows.append(row)
        summary = {"λ": f"{lam:g}", "r0": "all", "thesis's last step": "", "thesis r there": ""}
        for variant in VARIANTS:
            n = len(errors[variant])
            summary.update({f"{variant} r there": f"{n} r0 run", f"{variant} range there": "",
                            f"{variant} error": f"mean |error| {np.mean(np.abs(errors[variant])):.3f}" if n else "—",
                            f"{variant} range gap": f"{meets[variant]} of {n} meet" if n else "—",
                            f"{variant} r at the end": ""})
        rows.append(summary)
    return rows


SEED_TABLE_NOTE = (
    "r at the iteration where the thesis's panel ends (measured on its figure; interpolated in the stored "
    "trace; under ddp2 an iteration is one averaged step of 2 × 32 images, 750 per epoch, so 15 epochs end at "
    "11,250, just before the λ = 10 panels' ≈ 11,270, and r there is the last value). 'error': the seeds' mean − "
    "the thesis's "
    f"read-off value (midpoint of its range). 'range gap': 'meets' where the seeds' min–max range meets the "
    f"thesis's read-off range widened by ±{READ_OFF_UNCERTAINTY:g} (read-off uncertainty), else the gap "
    "(+: ours above). The thesis's figures draw five seeds per r0.")


def write_seed_sweep_table(results, out, protocol: str = ADOPTED) -> list:
    """The adopted protocol's r0 sweep over seeds beside the thesis (none while no run has finished)."""
    rows = seed_sweep_rows(results, protocol)
    if all(r[f"{v} r there"] == "—" for r in rows if r["r0"] != "all" for v in VARIANTS):
        return []
    stem = under(protocol, "rsweep_vs_thesis")
    keys = list(dict.fromkeys(k for r in rows for k in r))
    md = write_md_csv(out, stem, keys, rows)
    return [entry(stem, "Figs. 4.17/4.18", f"r of the r0 sweep under the adopted '{protocol}' protocol at the "
                  "thesis's last iteration, over the seeds (mean ± std, range), both variants, beside the thesis's "
                  "read-off r, with the error and the gap between the ranges",
                  under(protocol, "rsweep_*"), files=[f"{stem}.md", f"{stem}.csv"],
                  section=(f"r0 sweep under the adopted protocol ({protocol}): the seeds against the thesis",
                           [SEED_TABLE_NOTE, ""] + md))]


def mark_thesis(ax, step: float, thesis: str) -> None:
    """The thesis's read-off final r at its last iteration: a point at the midpoint, bars over its range
    widened by the read-off uncertainty."""
    lo, hi = thesis_interval(thesis)
    mid = thesis_r(thesis)
    ax.errorbar([step], [mid], yerr=[[mid - lo + READ_OFF_UNCERTAINTY], [hi - mid + READ_OFF_UNCERTAINTY]],
                fmt="D", color="k", ms=3.5, capsize=2.5, lw=1, zorder=5, label="thesis (read off, ±0.01)")


def sweep_figure(results, recs, title, lam: float | None = None):
    """One panel per r0 (as the thesis's Figs. 4.17/4.18), a line per seed, each panel on its own r scale.

    With ``lam``, each panel also marks where the thesis's panel ends and the r read off it there.
    """
    r0s = sorted({r["job"]["config"]["r0"] for r in recs})
    cols = min(3, len(r0s))
    rows = -(-len(r0s) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.6 * rows + 0.4), squeeze=False,
                             layout="constrained")
    for ax, r0 in zip(axes.flat, r0s):
        for rec in sorted((r for r in recs if r["job"]["config"]["r0"] == r0), key=lambda r: r["job"]["seed"]):
            arrays = load_arrays(results, rec["job"]["name"])
            ax.plot(arrays["step_index"], arrays["step_r"], lw=0.8, label=f"seed {rec['job']['seed']}")
        if lam is not None and r0 in THESIS_SWEEP_END_R[lam]:
            end = THESIS_SWEEP_LAST_ITERATION[lam][r0]
            ax.axvline(end, color="0.5", ls=":", lw=1, label="thesis's panel ends")
            mark_thesis(ax, end, THESIS_SWEEP_END_R[lam][r0])
        ax.set_title(f"r0 = {r0:g}", fontsize=9)
        ax.tick_params(labelsize=7)
    shared_legend(fig, axes.flat)
    for ax in axes.flat[len(r0s):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("iteration", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("r", fontsize=8)
    fig.suptitle(title)
    return fig, r0s


def shared_legend(fig, axes) -> None:
    """One legend for all panels, below them (a legend inside a panel of five seeds hides its curves):
    every label any panel has, once."""
    entries = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    fig.legend(list(entries.values()), list(entries), loc="outside lower center", ncol=len(entries), fontsize=7,
               frameon=False)


def seeds_per_r0(recs) -> tuple[int, int]:
    """The fewest and the most seeds any r0 has among the records."""
    counts = {}
    for r in recs:
        counts.setdefault(r["job"]["config"]["r0"], set()).add(r["job"]["seed"])
    sizes = [len(s) for s in counts.values()]
    return min(sizes), max(sizes)


def plot_sweep(results, out, variant, protocol: str = STATED) -> list:
    """Figs. 4.17/4.18 for one variant under one protocol: every seed of every r0 drawn."""
    entries = []
    for lam, stem_thesis in ((0.0, "Fig. 4.17"), (10.0, "Fig. 4.18")):
        prefix = under(protocol, f"rsweep_{variant}_lam{lam:g}_")
        recs = longest_protocol(load_results(results, prefix))
        if not recs:
            continue
        fewest, most = seeds_per_r0(recs)
        count = f"{most}" if fewest == most else f"{fewest}–{most}"
        named = "" if protocol == STATED else f", {protocol} protocol"
        fig, r0s = sweep_figure(results, recs, f"r per iteration, LRP {variant}, λ = {lam:g}{named} "
                                               f"({count} seed(s) per r0)", lam)
        stem = under(protocol, f"rsweep_{variant}_lam{lam:g}")
        save(fig, out, stem)
        epochs = recs[0]["job"]["config"]["epochs"]
        full = (fewest, epochs, len(r0s)) == (THESIS_SWEEP_SEEDS, SWEEP_EPOCHS, len(THESIS_SWEEP_END_R[lam]))
        reduced = "" if full else f" ({SWEEP_REDUCTION})" if protocol == STATED else " (seeds still running)"
        entries.append(entry(stem, stem_thesis, f"r per iteration for r0 = {', '.join(f'{v:g}' for v in r0s)}, "
                             f"λ = {lam:g}, {variant} path{named}, {count} seed(s) per r0, {epochs} epochs, the "
                             f"thesis's read-off final r marked{reduced}",
                             f"{prefix}*", seconds=sum(r["seconds"] for r in recs)))
    return entries


def plot(results, out) -> list:
    """Every sweep figure (both variants, both protocols) and both tables."""
    entries = []
    for variant in VARIANTS:
        entries += plot_sweep(results, out, variant) + plot_sweep(results, out, variant, ADOPTED)
    return entries + write_sweep_table(results, out) + write_seed_sweep_table(results, out)
