"""Which deviation of the published code makes r collapse without λ (thesis Fig. 4.17).

The thesis's λ = 0 sweep ends with r near 0 for small r0; the exact path keeps r near 0.3 there.
The published path applies five deviations (METHOD §6): P1–P4 in the gradient path and P5, its
density. This group runs the published path with each deviation alone (P5 alone is the
published density with the exact gradient path) and with each of P1–P4 left out (P5 always
on), λ = 0, r0 ∈ {0.1, 0.5, 0.9}, under the adopted protocol, 15 epochs, three seeds. The
exact path (none of them) and the published path (all five) come from the r0 sweep's runs of the
same seeds. A table and a figure give r at the end of each run per configuration.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from refprune.core.optim import R_MAX
from refprune.experiments.figures.common import entry, prediction_interval, save, write_md_csv
from refprune.experiments.figures.mnist_sweep import SWEEP_EPOCHS, THESIS_SWEEP_END_R, finished_runs, r_at
from refprune.experiments.figures.protocol_settings import ADOPTED, protocol_config, sweep_name, under

NAME = "collapse"
COLLAPSE_R0 = (0.1, 0.5, 0.9)
COLLAPSE_SEEDS = (0, 1, 2)
LAM = 0.0
# label -> the deviations of P1–P4 the published path applies (P5, its density, always; "P5" alone:
# none of P1–P4). "exact" and "published" are the r0 sweep's own runs.
CONFIGS = {"P1": ("P1",), "P2": ("P2",), "P3": ("P3",), "P4": ("P4",), "P5": (),
           "no P1": ("P2", "P3", "P4"), "no P2": ("P1", "P3", "P4"), "no P3": ("P1", "P2", "P4"),
           "no P4": ("P1", "P2", "P3")}
ORDER = ("exact", "P1", "P2", "P3", "P4", "P5", "no P1", "no P2", "no P3", "no P4", "published")
PROTOCOL = (f"MNIST, Table 4.1 but λ = 0, r0 ∈ {{{', '.join(f'{r:g}' for r in COLLAPSE_R0)}}}, the adopted '{ADOPTED}' "
            f"protocol, {SWEEP_EPOCHS} epochs, seeds {', '.join(map(str, COLLAPSE_SEEDS))}; the published path with one "
            "deviation of METHOD §6 alone or one of P1–P4 left out; 'exact' and 'published' are the r0 sweep's runs")


def job_name(label: str, r0: float, seed: int, epochs: int = SWEEP_EPOCHS) -> str:
    """The run of one configuration (a label of :data:`CONFIGS`)."""
    return under(ADOPTED, f"devr_{label.replace(' ', '')}_lam{LAM:g}_r0{r0:.1f}_e{epochs}_s{seed}")


def run_name(label: str, r0: float, seed: int) -> str:
    """The result name of any configuration, the sweep's exact and published runs included."""
    if label in ("exact", "published"):
        return under(ADOPTED, sweep_name(label, LAM, r0, SWEEP_EPOCHS, seed))
    return job_name(label, r0, seed)


def jobs(quick: bool, data_dir=None) -> list:
    epochs = 1 if quick else SWEEP_EPOCHS
    out = []
    for seed in COLLAPSE_SEEDS[:1] if quick else COLLAPSE_SEEDS:
        for r0 in COLLAPSE_R0:
            for label, devs in CONFIGS.items():
                config = {"method": "lrp", "variant": "published", "deviations": list(devs), "r0": r0,
                          "lam": LAM, "epochs": epochs, **protocol_config(ADOPTED)}
                out.append({"kind": "train", "data": "tiny_mnist" if quick else "mnist",
                            "data_dir": None if quick else data_dir, "name": job_name(label, r0, seed, epochs),
                            "seed": seed, "config": config})
    return out


def final_r(results) -> dict:
    """{(label, r0): array of r at the end of each finished seed's run}."""
    out = {}
    for label in ORDER:
        for r0 in COLLAPSE_R0:
            names = finished_runs(results, [run_name(label, r0, s) for s in COLLAPSE_SEEDS])
            out[label, r0] = np.array([r_at(results, n, np.inf) for n in names])
    return out


def fmt_r(r: float) -> str:
    """r to 3 decimals; to 4 near the clamp R_MAX = 0.9999, which 3 decimals would show as 1.000."""
    return f"{r:.4f}" if r > 0.999 else f"{r:.3f}"


def rows(values: dict) -> list:
    table = []
    for label in ORDER:
        row = {"configuration": label}
        for r0 in COLLAPSE_R0:
            v = values[label, r0]
            if v.size == 0:
                row[f"r0 = {r0:g}"] = "—"
                continue
            text = fmt_r(v.mean())
            if v.size > 1:
                lo, hi = prediction_interval(v, bounds=(0.0, R_MAX))
                text += f" [{fmt_r(lo)}, {fmt_r(hi)}]"
            row[f"r0 = {r0:g}"] = text + f" ({fmt_r(v.min())}–{fmt_r(v.max())}, n = {v.size})"
        table.append(row)
    table.append({"configuration": "thesis (Fig. 4.17, read off)",
                  **{f"r0 = {r0:g}": THESIS_SWEEP_END_R[LAM][r0] for r0 in COLLAPSE_R0}})
    return table


COLLAPSE_NOTE = ("r at the end of each run (15 epochs): the mean over the seeds, the 95% prediction interval for one new "
        f"run (t with n − 1 degrees of freedom) in brackets, cut to r's range [0, {R_MAX:g}] where it "
        "reaches past it, then the seeds' range and count. 'P1'…'P4': the "
        "published path with that deviation and P5 only; 'P5': the published density with the exact gradient "
        "path; 'no Pk': all of P1–P4 but Pk (P5 on). The thesis row is r where its panels end, read off its "
        "figure; the thesis's traces end before 15 epochs (docs/protocol.md).")


# The colour of each kind of configuration in the figure.
KIND_COLORS = {"exact or published path": "C2", "one deviation alone": "C1", "one of P1–P4 left out": "C0"}


def kind_of(label: str) -> str:
    """The key of :data:`KIND_COLORS` a configuration label belongs to."""
    return list(KIND_COLORS)[2 if label.startswith("no") else 1 if label.startswith("P") else 0]


def plot(results, out) -> list:
    values = final_r(results)
    present = [label for label in ORDER if any(values[label, r0].size for r0 in COLLAPSE_R0)]
    if not any(values[label, r0].size for label in CONFIGS for r0 in COLLAPSE_R0):
        return []
    md = write_md_csv(out, "collapse_deviations", ["configuration"] + [f"r0 = {r0:g}" for r0 in COLLAPSE_R0],
                      rows(values))
    fig, axes = plt.subplots(1, len(COLLAPSE_R0), figsize=(5.2 * len(COLLAPSE_R0), 4.2), sharey=True, layout="constrained")
    x = np.arange(len(present))
    for ax, r0 in zip(axes, COLLAPSE_R0):
        for i, label in enumerate(present):
            v = values[label, r0]
            if v.size:
                ax.plot(np.full(v.size, i), v, "o", color=KIND_COLORS[kind_of(label)], ms=5, alpha=0.8)
                ax.plot([i - 0.3, i + 0.3], [v.mean()] * 2, "-", color="k", lw=1.2)
        lo, hi = (float(p) for p in THESIS_SWEEP_END_R[LAM][r0].replace("–", "-").split("-")) \
            if "–" in THESIS_SWEEP_END_R[LAM][r0] else (float(THESIS_SWEEP_END_R[LAM][r0]),) * 2
        ax.axhspan(lo - 0.01, hi + 0.01, color="0.8", zorder=0, label="thesis (read off, ±0.01)")
        ax.set_xticks(x, present, rotation=60, ha="right")
        ax.set(title=f"r0 = {r0:g}", ylim=(-0.03, 1.03))  # r at 0 and at the clamp 0.9999 fully drawn
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("r at the end of the run")
    kinds = [plt.Line2D([], [], ls="", marker="o", color=color, label=kind) for kind, color in KIND_COLORS.items()]
    axes[0].legend(handles=axes[0].get_legend_handles_labels()[0] + kinds, loc="upper left", fontsize=8)
    sizes = {values[label, r0].size for label in present for r0 in COLLAPSE_R0} - {0}
    seeds = f"{max(sizes)}" if len(sizes) == 1 else f"{min(sizes)}–{max(sizes)}"
    fig.suptitle(f"Which deviation collapses r without λ (MNIST, {ADOPTED}, {SWEEP_EPOCHS} epochs, {seeds} "
                 "seeds per cell; dots: seeds, bars: mean)")
    save(fig, out, "collapse_deviations")
    counts = [values[label, r0].size for label in ORDER for r0 in COLLAPSE_R0]
    return [entry("collapse_deviations", "Fig. 4.17 (which deviation)",
                  "r at the end of the λ = 0 run under each deviation of the published code alone and with each "
                  f"left out, r0 ∈ {{0.1, 0.5, 0.9}}, beside the exact and published paths; runs per cell: "
                  f"{min(counts)}{'' if min(counts) == max(counts) else f'–{max(counts)}'} of {len(COLLAPSE_SEEDS)}", under(ADOPTED, "devr_*"),
                  files=["collapse_deviations.png", "collapse_deviations.pdf", "collapse_deviations.md",
                         "collapse_deviations.csv"],
                  section=("Which deviation collapses r without λ", md + ["", COLLAPSE_NOTE]))]
