"""Shared plotting helpers: where things go, how figures are saved, band plots."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def repo_root() -> Path:
    """The checkout this package runs from (an editable install), where results/ and figures/ live."""
    if (PACKAGE_ROOT / "pyproject.toml").exists():
        return PACKAGE_ROOT
    raise ValueError("refprune is not running from a checkout: pass --results and --out explicitly")


def save(fig, out: Path, stem: str) -> list[str]:
    """Save a figure as PNG and PDF, each atomically; returns the file names."""
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for ext in ("png", "pdf"):
        fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{stem}.", suffix=f".{ext}")
        os.close(fd)
        fig.savefig(tmp, dpi=130 if ext == "png" else None, bbox_inches="tight", format=ext)
        os.replace(tmp, out / f"{stem}.{ext}")
        names.append(f"{stem}.{ext}")
    plt.close(fig)
    return names


def band(ax, x, runs, label, color=None):
    """Mean line with a ±1 std band over runs (rows: seeds)."""
    runs = np.asarray(runs, float)
    mean, std = runs.mean(axis=0), runs.std(axis=0)
    line, = ax.plot(x, mean, label=label, color=color)
    ax.fill_between(x, mean - std, mean + std, alpha=0.25, color=line.get_color())


def minmax(ax, x, runs, label, color=None):
    """Min and max over runs (rows: seeds), filled between."""
    runs = np.asarray(runs, float)
    line, = ax.plot(x, runs.max(axis=0), label=f"{label} max", color=color)
    ax.plot(x, runs.min(axis=0), label=f"{label} min", color=line.get_color(), linestyle="--")
    ax.fill_between(x, runs.min(axis=0), runs.max(axis=0), alpha=0.15, color=line.get_color())


def entry(stem: str, thesis: str, caption: str, jobs: str, **extra) -> dict:
    """One row of the figure index."""
    return {"stem": stem, "thesis": thesis, "caption": caption, "jobs": jobs, **extra}
