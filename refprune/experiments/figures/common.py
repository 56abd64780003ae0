"""Shared plotting helpers: where things go, how figures are saved, band plots."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from refprune.util.io import atomic_write

CHECKOUT_ROOT = Path(__file__).resolve().parents[3]  # refprune/experiments/figures/common.py → the checkout


def repo_root() -> Path:
    """The checkout this package runs from (an editable install), where results/ and figures/ live."""
    if (CHECKOUT_ROOT / "pyproject.toml").exists():
        return CHECKOUT_ROOT
    raise ValueError("refprune is not running from a checkout: pass --results and --out explicitly")


# What each format would otherwise stamp into the file that changes between redraws: the
# PDF's creation date (PNG carries only the Matplotlib version, stable for the same versions).
STABLE_METADATA = {"png": {}, "pdf": {"CreationDate": None}}


def save(fig, out: Path, stem: str) -> list[str]:
    """Save a figure as PNG and PDF, each atomically and byte-stable; returns the file names.

    The same figure drawn with the same library versions gives the same bytes
    (no timestamps), so a redraw of unchanged results leaves ``git status``
    clean. Files follow the umask (:func:`refprune.util.io.atomic_write`).
    """
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for ext in ("png", "pdf"):
        atomic_write(out / f"{stem}.{ext}",
                     lambda fh, ext=ext: fig.savefig(fh, dpi=130 if ext == "png" else None, bbox_inches="tight",
                                                     format=ext, metadata=STABLE_METADATA[ext]))
        names.append(f"{stem}.{ext}")
    plt.close(fig)
    return names


# The prediction intervals of the tables: two-sided, for one new run.
PREDICTION_LEVEL = 0.95
# The range of a percentage (accuracy, sparsity): no run leaves it.
PERCENT_RANGE = (0.0, 100.0)


def prediction_interval(values, level: float = PREDICTION_LEVEL, new_runs: int = 1,
                        bounds: tuple[float, float] = (-np.inf, np.inf)) -> tuple[float, float]:
    """The interval that holds one new run's value with probability ``level``, from n >= 2 runs.

    mean ± t_{n−1, (1+level)/2} · s · sqrt(1/m + 1/n), s the sample standard deviation (ddof 1),
    m = ``new_runs``: the right test for a thesis number, which is itself one run (m = 1), or,
    for a thesis value that is the mean of m runs (Fig. 4.4's mean curves), for the mean of m new runs.
    ``bounds``: the range no run can leave (a percentage's [0, 100], r's [0, 0.9999]); the interval is
    cut to it, which changes no verdict on a value inside the range.

    >>> lo, hi = prediction_interval([99.6, 99.8, 99.9], bounds=PERCENT_RANGE)
    >>> round(lo, 2), hi
    (99.01, 100.0)
    """
    from scipy.stats import t as student_t

    values = np.asarray(values, dtype=np.float64)
    n = values.size
    if n < 2:
        raise ValueError(f"a prediction interval needs at least 2 runs, got {n}")
    if new_runs < 1:
        raise ValueError(f"new_runs must be >= 1, got {new_runs}")
    half = float(student_t.ppf(0.5 + level / 2, n - 1)) * values.std(ddof=1) * np.sqrt(1.0 / new_runs + 1.0 / n)
    return float(max(values.mean() - half, bounds[0])), float(min(values.mean() + half, bounds[1]))


# The interval of a difference of two methods' means over seeds: two-sided.
DIFFERENCE_LEVEL = 0.95


def welch_interval(a, b, level: float = DIFFERENCE_LEVEL) -> tuple[float, float]:
    """Welch's ``level`` t-interval of mean(a) − mean(b), from n >= 2 runs on each side.

    The variances are not assumed equal: half width t_{ν, (1+level)/2} · se, se² = s_a²/n_a + s_b²/n_b
    (ddof 1), ν the Welch–Satterthwaite degrees of freedom (scipy's ``ttest_ind(equal_var=False)``
    gives the same interval; a test checks it). Where neither side varies (se = 0), the interval is
    the difference itself.
    """
    from scipy.stats import t as student_t

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if min(a.size, b.size) < 2:
        raise ValueError(f"a difference interval needs at least 2 runs on each side, got {a.size} and {b.size}")
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    diff, se = float(a.mean() - b.mean()), float(np.sqrt(va + vb))
    if se == 0:
        return diff, diff
    dof = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
    half = float(student_t.ppf(0.5 + level / 2, dof)) * se
    return diff - half, diff + half


def seeds_text(n: int) -> str:
    """"1 seed", "3 seeds"."""
    return f"{n} seed" if n == 1 else f"{n} seeds"


def band(ax, x, runs, label, color=None):
    """Mean line with a ±1 std band over runs (rows: seeds)."""
    runs = np.asarray(runs, float)
    mean, std = runs.mean(axis=0), runs.std(axis=0)
    line, = ax.plot(x, mean, label=label, color=color)
    ax.fill_between(x, mean - std, mean + std, alpha=0.25, color=line.get_color())
    return line


def minmax(ax, x, runs, label, color=None):
    """Min and max over runs (rows: seeds), filled between."""
    runs = np.asarray(runs, float)
    line, = ax.plot(x, runs.max(axis=0), label=f"{label} max", color=color)
    ax.plot(x, runs.min(axis=0), label=f"{label} min", color=line.get_color(), linestyle="--")
    ax.fill_between(x, runs.min(axis=0), runs.max(axis=0), alpha=0.15, color=line.get_color())


def median_iqr(ax, x, runs, label, color=None):
    """Median line with the interquartile range (25th–75th percentile) filled, over runs (rows: seeds)."""
    runs = np.asarray(runs, float)
    q25, q50, q75 = np.percentile(runs, [25, 50, 75], axis=0)
    line, = ax.plot(x, q50, label=f"{label} median", color=color, marker=".", ms=4)
    ax.fill_between(x, q25, q75, alpha=0.25, color=line.get_color(), label=f"{label} IQR")
    return line


def mark_clipped(ax, x, runs, floor: float, color=None) -> int:
    """Draw ▼ at ``floor`` wherever any run is below it (the axis is clipped there); returns how many x."""
    runs = np.atleast_2d(np.asarray(runs, float))
    below = (runs < floor).any(axis=0)
    if below.any():
        ax.plot(np.asarray(x, float)[below], np.full(below.sum(), floor), "v", color=color, ms=5,
                clip_on=False, zorder=5)
    return int(below.sum())


def entry(stem: str, thesis: str, caption: str, jobs: str, **extra) -> dict:
    """One row of the figure index."""
    return {"stem": stem, "thesis": thesis, "caption": caption, "jobs": jobs, **extra}


def md_cell(value) -> str:
    """A Markdown table cell: a '|' inside it (as in "mean |error|") escaped, so it does not split the cell."""
    return str(value).replace("|", "\\|")


def write_md_csv(out: Path, stem: str, keys: list, rows: list) -> list:
    """Write rows (dicts) as ``stem.md`` (a Markdown table) and ``stem.csv``, atomically; returns the Markdown lines."""
    md = ["| " + " | ".join(md_cell(k) for k in keys) + " |", "|---" * len(keys) + "|"]
    md += ["| " + " | ".join(md_cell(r.get(k, "—")) for k in keys) + " |" for r in rows]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / f"{stem}.md", lambda fh: fh.write(("\n".join(md) + "\n").encode()))
    atomic_write(out / f"{stem}.csv", lambda fh: fh.write(buf.getvalue().encode()))
    return md
