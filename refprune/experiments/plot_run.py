"""``refprune plot RUN_DIR``: a picture of one training run, drawn into its directory as run.png.

Panels: loss and accuracy (or R²) per epoch, train and validation, under the
soft and the hard mask (dense runs: the dense network); r, τ and t per step;
sparsity per layer per epoch. Curves that can coincide (soft and hard mask,
train and validation, layers) get different line styles and markers, so a
curve hidden under another still shows.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from refprune.train.rundir import CONFIG, read_config, read_history, read_steps
from refprune.util.io import atomic_write

PLOT = "run.png"
STYLES = {("train", "soft"): ("-", "o"), ("val", "soft"): ("--", "s"),
          ("train", "hard"): (":", "^"), ("val", "hard"): ("-.", "v"),
          ("train", "dense"): ("-", "o"), ("val", "dense"): ("--", "s")}
LAYER_STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "v", "D", "x", "+", "*")
# PNG text chunks that would otherwise vary between library versions of the same picture
PNG_METADATA = {"Software": None}


def load_run(run_dir: Path) -> dict:
    """history.json, steps.npz and config.json of a run directory, each checked.

    Raises ValueError if it is not a finished run's directory, and
    :class:`refprune.util.io.UnreadableFile` naming the file that is damaged.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"run_dir {run_dir} is not a directory")
    for name in ("history.json", "steps.npz"):
        if not (run_dir / name).is_file():
            raise ValueError(f"run_dir {run_dir} has no {name}: not a finished run of 'refprune train'")
    config = read_config(run_dir / CONFIG) if (run_dir / CONFIG).is_file() else {}
    history = read_history(run_dir / "history.json")
    if not history:
        raise ValueError(f"run_dir {run_dir}: history.json holds no epoch")
    steps = read_steps(run_dir / "steps.npz")
    return {"history": history, "steps": steps, "config": config}


def curve(history, key) -> np.ndarray:
    """One key of every epoch record as floats (NaN where the record has none)."""
    return np.array([np.nan if rec.get(key) is None else rec[key] for rec in history], float)


def plot_epochs(ax, history, quantity: str, modes) -> None:
    """One quantity per epoch for train/val under each mode."""
    epochs = [rec["epoch"] for rec in history]
    for mode in modes:
        for split in ("train", "val"):
            key = f"{split}_{quantity}_{mode}"
            if key in history[0]:
                style, marker = STYLES[(split, mode)]
                ax.plot(epochs, curve(history, key), linestyle=style, marker=marker, markersize=4,
                        markevery=max(1, len(epochs) // 12), label=f"{split} ({mode} mask)" if mode != "dense"
                        else split, alpha=0.85)
    ax.set_xlabel("epoch")
    ax.legend(fontsize=7)


def plot_steps(ax, steps, key: str, label: str) -> None:
    """One per-step trace (r, τ or t) on ``ax``; τ on a log scale when it spans more than a decade."""
    values = np.asarray(steps.get(key, []), float)
    ax.plot(np.arange(1, values.size + 1), values, linewidth=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel(label)
    finite = values[np.isfinite(values)]
    if key == "tau" and finite.size and finite.min() > 0 and finite.max() > 10 * finite.min():
        ax.set_yscale("log")  # τ spans decades


def draw(run: dict):
    """The figure of a loaded run."""
    history, steps, config = run["history"], run["steps"], run["config"]
    dense = config.get("method") == "dense" or "train_loss_dense" in history[0]
    modes = ("dense",) if dense else ("soft", "hard")
    metric = "accuracy" if any(k.startswith("train_accuracy") for k in history[0]) else "r2"
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    plot_epochs(axes[0, 0], history, "loss", modes)
    axes[0, 0].set_ylabel("loss")
    plot_epochs(axes[0, 1], history, metric, modes)
    axes[0, 1].set_ylabel("accuracy" if metric == "accuracy" else "R²")
    epochs = [rec["epoch"] for rec in history]
    per_layer = np.array([rec.get("sparsity_per_layer") or [] for rec in history], float)
    ax = axes[0, 2]
    for l in range(per_layer.shape[1] if per_layer.ndim == 2 else 0):
        ax.plot(epochs, per_layer[:, l], linestyle=LAYER_STYLES[l % len(LAYER_STYLES)],
                marker=MARKERS[l % len(MARKERS)], markersize=4, markevery=max(1, len(epochs) // 12),
                label=f"layer {l + 1}")
    ax.plot(epochs, curve(history, "sparsity"), color="black", linewidth=1.5, alpha=0.5, label="global")
    ax.set_xlabel("epoch")
    ax.set_ylabel("sparsity (hard mask)")
    ax.legend(fontsize=7)
    for ax, (key, label) in zip(axes[1], (("r", "r"), ("tau", "τ"), ("t", "t"))):
        plot_steps(ax, steps, key, label)
    title = ", ".join(f"{k} {config[k]}" for k in ("data", "method", "variant", "r0", "lam", "seed") if k in config)
    fig.suptitle(title or "run", fontsize=10)
    fig.tight_layout()
    return fig


def plot_run(run_dir: Path, run: dict | None = None) -> Path:
    """Draw the run's curves into ``run_dir / run.png`` (atomically); returns the path."""
    run_dir = Path(run_dir)
    run = load_run(run_dir) if run is None else run
    fig = draw(run)
    path = atomic_write(run_dir / PLOT, lambda fh: fig.savefig(fh, format="png", dpi=110, metadata=PNG_METADATA))
    plt.close(fig)
    return path
