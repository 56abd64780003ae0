"""Panels and figures of MNIST runs drawn from one run or as the mean over seeds (thesis Figs. 4.8–4.16).

The thesis draws one run per figure. Over several seeds each curve here is the
mean with a band of ±1 sample standard deviation (ddof 1, as the tables' intervals);
τ, drawn on a log scale, is averaged in log space (geometric mean, band ×/÷ the
geometric standard deviation). From one run the band has no width. Bars of the
final sparsity per layer carry the mean, with ±1 std error bars over seeds.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

# Colour by split, line style and marker by mask: soft and hard curves often
# coincide, so the hard one is drawn thin and dashed with markers over the soft one.
SPLIT_COLOR = {"train": "tab:blue", "val": "tab:orange"}
MASK_STYLE = {"dense": {"ls": "-", "lw": 1.5}, "soft": {"ls": "-", "lw": 2.4, "alpha": 0.55},
              "hard": {"ls": "--", "lw": 1.0, "marker": "x", "ms": 4}}
BAND_ALPHA = 0.22  # fill of a ±1 std band: light enough that two overlapping bands stay readable
BANDED_MASKS = ("dense", "hard")  # the soft-mask curves are drawn as a mean line only (their band ≈ the hard one's)

# Accuracy and sparsity are drawn in %, as the thesis's tables give them (R² stays a fraction).
PERCENT = 100.0


def seed_stack(series: list) -> np.ndarray:
    """Per-seed sequences as a (seeds, length) array, cut to the shortest (a run that stopped early)."""
    length = min(len(s) for s in series)
    return np.array([np.asarray(s, np.float64)[:length] for s in series])


def mean_band(values: np.ndarray, log: bool = False) -> tuple:
    """(mean, low, high) over the rows of ``values``: ±1 sample std (in log space if ``log``); no width from one row."""
    v = np.log(values) if log else values
    mean = v.mean(axis=0)
    std = v.std(axis=0, ddof=1) if v.shape[0] > 1 else np.zeros_like(mean)
    if log:
        return np.exp(mean), np.exp(mean - std), np.exp(mean + std)
    return mean, mean - std, mean + std


def draw_band(ax, x, values, label, log=False, fill=True, **style):
    """Mean line (and with ``fill`` its ±1 std band) of ``values`` (rows: seeds) against ``x``."""
    mean, low, high = mean_band(values, log)
    x = np.asarray(x)[:mean.size]
    line, = ax.plot(x, mean, label=label, **style)
    if fill and values.shape[0] > 1:
        ax.fill_between(x, low, high, color=line.get_color(), alpha=BAND_ALPHA, lw=0)
    return line


def modes_of(recs) -> tuple:
    return ("dense",) if recs[0]["config"]["method"] == "dense" else ("soft", "hard")


def epoch_panel(ax, recs, quantity: str, legend: bool = False) -> None:
    """``quantity`` ('loss' or 'accuracy') per epoch, training and validation, each mask of the runs."""
    epochs = seed_stack([[e["epoch"] for e in rec["epochs"]] for rec in recs])[0]
    for mode in modes_of(recs):
        for split in ("train", "val"):
            values = seed_stack([[e[f"{split}_{quantity}_{mode}"] for e in rec["epochs"]] for rec in recs])
            values = values * PERCENT if quantity == "accuracy" else values
            name = "validation" if split == "val" else split
            label = name if mode == "dense" else f"{name} ({mode} mask)"
            style = {"color": SPLIT_COLOR[split], "markevery": max(1, epochs.size // 12), **MASK_STYLE[mode]}
            draw_band(ax, epochs, values, label, fill=mode in BANDED_MASKS, **style)
    ax.set(xlabel="epoch", ylabel="accuracy (%)" if quantity == "accuracy" else quantity,
           title=f"{quantity.capitalize()} per epoch")
    if legend:
        ax.legend(fontsize=7)


def step_panel(ax, arrays_list, key: str, ylabel: str, log: bool = False, **style) -> None:
    """r or τ (``key``) per backward pass over the runs' step traces."""
    values = seed_stack([a[f"step_{key}"] for a in arrays_list])
    draw_band(ax, arrays_list[0]["step_index"], values, style.pop("label", None), log=log, **style)
    ax.set(xlabel="backward pass", ylabel=ylabel, title=f"{ylabel} per backward pass",
           yscale="log" if log else "linear")


def layer_values(recs) -> np.ndarray:
    """Final sparsity per layer in %, (seeds, layers)."""
    return 100 * seed_stack([rec["summary"]["sparsity_per_layer"] for rec in recs])


def layer_panel(ax, recs, offset: float = 0.0, width: float = 0.8, label_size: float = 8, **style) -> None:
    """Bars of the mean final sparsity per layer, ±1 std error bars over seeds, each labelled with its mean."""
    values = layer_values(recs)
    mean = values.mean(axis=0)
    err = values.std(axis=0, ddof=1) if values.shape[0] > 1 else None
    x = np.arange(mean.size) + offset
    ax.bar(x, mean, width, yerr=err, capsize=3 if err is not None else 0, **style)
    top = mean + (err if err is not None else 0.0)  # each label above its error bar
    for xi, yi, v in zip(x, top, mean):
        ax.annotate(f"{v:.1f}%", (xi, yi), xytext=(0, 2), textcoords="offset points", ha="center", va="bottom",
                    fontsize=label_size)
    ax.set_xticks(range(mean.size), [f"layer {i + 1}" for i in range(mean.size)])
    ax.set(ylabel="sparsity (%)", ylim=(0, 115), yticks=range(0, 101, 20), title="Final sparsity per layer")


def seeds_note(n: int) -> str:
    """How a figure's curves were drawn, for its title and caption."""
    return "one run" if n == 1 else f"mean ± std over {n} seeds"


def bands_note(recs) -> str:
    """Which curves carry a band, for a title: '' from one run or for a dense run."""
    return "; bands on the hard-mask curves" if len(recs) > 1 and "soft" in modes_of(recs) else ""


def curves_figure(recs, title: str):
    """Loss and accuracy per epoch (thesis Figs. 4.8, 4.9): one run, or the mean with a band over seeds."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    epoch_panel(axes[0], recs, "loss")
    epoch_panel(axes[1], recs, "accuracy", legend=True)
    fig.suptitle(title if len(recs) == 1 else f"{title} ({seeds_note(len(recs))}{bands_note(recs)})")
    return fig


def sparsity_figure(recs, label: str):
    """Bars of the final sparsity per layer, each labelled with its value; all zero says "0%" in words."""
    fig, ax = plt.subplots(figsize=(5.4, 3.6), layout="constrained")
    layer_panel(ax, recs, color="tab:blue")
    if not layer_values(recs).mean(axis=0).any():
        ax.text(0.5, 0.5, "0% sparsity in every layer\n(nothing pruned)", transform=ax.transAxes,
                ha="center", va="center", fontsize=11)
    fig.suptitle(label if len(recs) == 1 else f"{label} ({seeds_note(len(recs))})")
    return fig


def r_tau_figure(arrays_list, label: str):
    """τ and r per backward pass (thesis Fig. 4.10): one run, or the mean with a band over seeds."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    step_panel(axes[0], arrays_list, "tau", "τ", log=True)
    step_panel(axes[1], arrays_list, "r", "r")
    n = len(arrays_list)
    fig.suptitle(label if n == 1 else f"{label} ({seeds_note(n)}; τ: geometric mean ×/÷ geometric std)")
    return fig


def run_figure(recs, arrays_list, label: str):
    """One Table 4.6 run in the layout of thesis Fig. 4.12: (a) loss, (b) accuracy per epoch, (c) τ and
    (d) r per backward pass, (e) final sparsity per layer."""
    fig = plt.figure(figsize=(12, 10.5), layout="constrained")
    grid = fig.add_gridspec(3, 2)
    axes = [fig.add_subplot(grid[i // 2, i % 2]) for i in range(4)] + [fig.add_subplot(grid[2, :])]
    epoch_panel(axes[0], recs, "loss")
    epoch_panel(axes[1], recs, "accuracy", legend=True)
    step_panel(axes[2], arrays_list, "tau", "τ", log=True)
    step_panel(axes[3], arrays_list, "r", "r")
    layer_panel(axes[4], recs, width=0.5, color="tab:blue")
    for ax, letter in zip(axes, "abcde"):
        ax.set_title(f"({letter}) {ax.get_title()}")
    note = seeds_note(len(recs)) + bands_note(recs)
    note += "; τ: geometric mean ×/÷ geometric std" if len(recs) > 1 else ""
    fig.suptitle(f"{label}\n({note})")
    return fig


def masks_figure(masks: list, label: str):
    """Hard masks of every layer as heat maps (thesis Figs. 4.15/4.16, App. A): rows output neurons."""
    fig, axes = plt.subplots(1, len(masks), figsize=(15, 4.3), layout="constrained",
                             gridspec_kw={"width_ratios": [m.shape[0] for m in masks]})
    for l, (ax, m) in enumerate(zip(axes, masks), 1):
        ax.imshow(m.T, aspect="auto", interpolation="nearest", cmap="viridis")
        ax.set(title=f"layer {l} ({m.shape[1]}×{m.shape[0]})", xlabel="input feature", ylabel="output neuron")
    fig.suptitle(f"Hard masks (yellow kept, purple pruned), {label}")
    return fig
