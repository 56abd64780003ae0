"""One figure per Table 4.6 run overlaying the exact and the published variant (thesis Figs. 4.9–4.14).

Panels: loss and accuracy per epoch (training and validation, hard mask),
sparsity per epoch; τ and r per backward pass; sparsity per layer. The
exact variant is drawn solid, the published one dashed with markers, so the
two stay apart where they coincide.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from refprune.experiments.figures.common import entry, save
from refprune.experiments.sweep import load_arrays

STYLE = {"exact": {"ls": "-", "lw": 1.6, "color": "tab:blue"},
         "published": {"ls": "--", "lw": 1.2, "color": "tab:red", "marker": "o", "ms": 3}}
SPLIT_ALPHA = {"train": 1.0, "val": 0.55}


def per_epoch(ax, runs, key, ylabel, title):
    for variant, (rec, _) in runs.items():
        ep = [e["epoch"] for e in rec["epochs"]]
        for split in ("train", "val") if "{split}" in key else ("",):
            values = [e[key.format(split=split)] for e in rec["epochs"]]
            label = f"{variant}, {split}" if split else variant
            ax.plot(ep, values, label=label, alpha=SPLIT_ALPHA.get(split, 1.0),
                    markevery=max(1, len(ep) // 12), **STYLE[variant])
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)


def per_step(ax, runs, key, ylabel, title, log=False):
    for variant, (_, arrays) in runs.items():
        style = {**STYLE[variant], "marker": None}
        ax.plot(arrays["step_index"], arrays[f"step_{key}"], label=variant, **style)
    ax.set(xlabel="backward pass", ylabel=ylabel, title=title, yscale="log" if log else "linear")


def per_layer(ax, runs):
    width = 0.8 / len(runs)
    for i, (variant, (rec, _)) in enumerate(runs.items()):
        values = 100 * np.asarray(rec["summary"]["sparsity_per_layer"], float)
        x = np.arange(values.size) + (i - (len(runs) - 1) / 2) * width
        bars = ax.bar(x, values, width, label=variant, color=STYLE[variant]["color"],
                      hatch="//" if variant == "published" else None, edgecolor="white")
        ax.bar_label(bars, labels=[f"{v:.1f}%" for v in values], fontsize=6, padding=1)
    n = len(next(iter(runs.values()))[0]["summary"]["sparsity_per_layer"])
    ax.set_xticks(range(n), [f"layer {l + 1}" for l in range(n)])
    ax.set(ylabel="sparsity (%)", ylim=(0, 130), yticks=range(0, 101, 20), title="Final sparsity per layer")


def overlay_figure(runs: dict, label: str):
    """``runs``: {variant: (record, arrays)} of one Table 4.6 run."""
    fig, axes = plt.subplots(2, 3, figsize=(14, 6.6), layout="constrained")
    per_epoch(axes[0, 0], runs, "{split}_loss_hard", "loss", "Loss per epoch (hard mask)")
    per_epoch(axes[0, 1], runs, "{split}_accuracy_hard", "accuracy", "Accuracy per epoch (hard mask)")
    per_epoch(axes[0, 2], runs, "sparsity", "sparsity (hard mask)", "Sparsity per epoch")
    per_step(axes[1, 0], runs, "tau", "τ", "τ per backward pass", log=True)
    per_step(axes[1, 1], runs, "r", "r", "r per backward pass")
    per_layer(axes[1, 2], runs)
    for ax in axes.flat[:-1]:
        ax.legend(fontsize=7)
    axes[1, 2].legend(fontsize=7, loc="upper center", ncol=2)
    fig.suptitle(f"{label}: exact (solid) and published (dashed, markers) variants")
    return fig


def plot_overlay(records_of, results, out, r0, lam, thesis: str) -> list:
    """The overlay figure of one run if both variants have results; ``records_of(variant, r0, lam)``."""
    runs = {}
    for variant in STYLE:
        rec = records_of(variant, r0, lam)
        if rec is None:
            return []
        runs[variant] = (rec, load_arrays(results, rec["job"]["name"]))
    stem = f"lrp_r0{r0:.2f}_lam{lam:g}_exact_vs_published"
    save(overlay_figure(runs, f"LRP r0 = {r0:g}, λ = {lam:g}"), out, stem)
    acc = ", ".join(f"{v} test acc {rec['summary']['test_accuracy']:.4f}, sparsity {rec['summary']['sparsity']:.4f}"
                    for v, (rec, _) in runs.items())
    return [entry(stem, f"{thesis} (both variants)", f"r0 = {r0:g}, λ = {lam:g}: loss, accuracy, sparsity per epoch, "
                  f"τ and r per backward pass, sparsity per layer, exact and published overlaid; {acc}",
                  f"t46_*_r0{r0:.2f}_lam{lam:g}_")]
