"""One figure per Table 4.6 run overlaying the exact and the published variant (thesis Figs. 4.9–4.14).

Panels: loss and accuracy per epoch (training and validation, hard mask),
sparsity per epoch; τ and r per backward pass; sparsity per layer. The
exact variant is drawn solid, the published one dashed with markers, so the
two stay apart where they coincide. From one run per variant (the stated
protocol) the curves are that run; from several seeds (the adopted protocol)
each is the mean with a ±1 std band (:mod:`.mnist_seeds`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from refprune.experiments.figures.common import entry, save
from refprune.experiments.figures.mnist_seeds import (
    PERCENT,
    draw_band,
    layer_panel,
    seed_stack,
    seeds_note,
    step_panel,
)
from refprune.experiments.sweep import load_arrays

STYLE = {"exact": {"ls": "-", "lw": 1.6, "color": "tab:blue"},
         "published": {"ls": "--", "lw": 1.2, "color": "tab:red", "marker": "o", "ms": 3}}
SPLIT_ALPHA = {"train": 1.0, "val": 0.55}


def per_epoch(ax, runs, key, ylabel, title, scale: float = 1.0):
    for variant, pairs in runs.items():
        recs = [rec for rec, _ in pairs]
        ep = seed_stack([[e["epoch"] for e in rec["epochs"]] for rec in recs])[0]
        for split in ("train", "val") if "{split}" in key else ("",):
            values = scale * seed_stack([[e[key.format(split=split)] for e in rec["epochs"]] for rec in recs])
            label = f"{variant}, {split}" if split else variant
            draw_band(ax, ep, values, label, alpha=SPLIT_ALPHA.get(split, 1.0),
                      markevery=max(1, ep.size // 12), **STYLE[variant])
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)


def per_step(ax, runs, key, ylabel, log=False):
    for variant, pairs in runs.items():
        step_panel(ax, [arrays for _, arrays in pairs], key, ylabel, log=log, label=variant,
                   **{**STYLE[variant], "marker": None})


def per_layer(ax, runs):
    width = 0.8 / len(runs)
    for i, (variant, pairs) in enumerate(runs.items()):
        layer_panel(ax, [rec for rec, _ in pairs], offset=(i - (len(runs) - 1) / 2) * width, width=width,
                    label_size=6, label=variant, color=STYLE[variant]["color"],
                    hatch="//" if variant == "published" else None, edgecolor="white")
    ax.set(ylim=(0, 130))


def percent(pairs, key: str) -> str:
    """A summary value in %: the one run's, or 'mean ± std' over the seeds (ddof 1)."""
    v = 100 * np.array([rec["summary"][key] for rec, _ in pairs])
    return f"{v[0]:.2f}" if v.size == 1 else f"{v.mean():.2f} ± {v.std(ddof=1):.2f}"


def overlay_figure(runs: dict, label: str):
    """``runs``: {variant: [(record, arrays), ...]} of one Table 4.6 run, one pair per seed."""
    fig, axes = plt.subplots(2, 3, figsize=(14, 6.6), layout="constrained")
    per_epoch(axes[0, 0], runs, "{split}_loss_hard", "loss", "Loss per epoch (hard mask)")
    per_epoch(axes[0, 1], runs, "{split}_accuracy_hard", "accuracy (%)", "Accuracy per epoch (hard mask)", PERCENT)
    per_epoch(axes[0, 2], runs, "sparsity", "sparsity (%, hard mask)", "Sparsity per epoch", PERCENT)
    per_step(axes[1, 0], runs, "tau", "τ", log=True)
    per_step(axes[1, 1], runs, "r", "r")
    per_layer(axes[1, 2], runs)
    for ax in axes.flat[:-1]:
        ax.legend(fontsize=7)
    axes[1, 2].legend(fontsize=7, loc="upper center", ncol=2)
    n = min(len(pairs) for pairs in runs.values())
    note = "" if n == 1 else f"; {seeds_note(n)}, τ: geometric mean ×/÷ geometric std"
    fig.suptitle(f"{label}: exact (solid) and published (dashed, markers) variants{note}")
    return fig


def plot_overlay(records_of, results, out, r0, lam, thesis: str, stem_prefix: str = "", jobs: str = "",
                 protocol: str = "") -> list:
    """The overlay figure of one run if both variants have results.

    ``records_of(variant, r0, lam)`` gives the run's records (one per seed; empty if none exists);
    ``stem_prefix`` and ``protocol`` name the protocol in the file name and caption, ``jobs`` the runs'
    name pattern for the index.
    """
    runs = {}
    for variant in STYLE:
        recs = records_of(variant, r0, lam)
        if not recs:
            return []
        runs[variant] = [(rec, load_arrays(results, rec["job"]["name"])) for rec in recs]
    stem = f"{stem_prefix}lrp_r0{r0:.2f}_lam{lam:g}_exact_vs_published"
    n = min(len(pairs) for pairs in runs.values())
    save(overlay_figure(runs, f"LRP r0 = {r0:g}, λ = {lam:g}"), out, stem)
    acc = ", ".join(f"{v} test acc {percent(p, 'test_accuracy')}%, sparsity {percent(p, 'sparsity')}%"
                    for v, p in runs.items())
    where = f"{protocol}, {seeds_note(n)}: " if protocol else ""
    return [entry(stem, f"{thesis} (both variants)", f"{where}r0 = {r0:g}, λ = {lam:g}: loss, accuracy, sparsity "
                  f"per epoch, τ and r per backward pass, sparsity per layer, exact and published overlaid; {acc}",
                  jobs or f"t46_*_r0{r0:.2f}_lam{lam:g}_")]
