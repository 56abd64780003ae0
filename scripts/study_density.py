"""Study: how good is dt/dr = 1/f(t)?

Compute (writes results/study_density.json):
  1. Known distributions — |N(0,1)|, |Laplace(0,1)| = Exp(1), Uniform(0,1) — at
     n in {1e4, 1e5, 1e6} and r in {0.05, 0.1, 0.5, 0.9}: relative error of the
     estimated 1/f at the sample's empirical t against the true 1/f at that t,
     for each density setting (direct sum; binned FFT with nearest or linear
     binning and m in {256, 1024, 4096}; Scott or Silverman bandwidth; with and
     without reflection at 0; the published renormalised nearest-bin variant).
     Median over SEEDS samples.
  2. Real weights — |w| of a trained network (``--weights``, a params.npz
     written by ``refprune train``): error of each setting against the exact
     direct KDE with the same bandwidth (what binning and the grid cost) at
     r in {0.1, 0.5, 0.9}.
  3. Cost — median seconds per evaluation at n = number of real weights.
Plot (reads the JSON, writes figures/study_density_*.png and .pdf).

Usage:
  python scripts/study_density.py --weights runs/mnist-dense/params.npz   # compute + plot
  python scripts/study_density.py --plot-only
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from refprune.core.threshold import empirical_threshold
from refprune.density.config import DensityConfig, density_at
from refprune.density.kde import bandwidth, direct_kde
from refprune.train.kernels import kde_at_point
from refprune.util.io import read_json, write_json
from refprune.util.provenance import code_version

RESULTS = ROOT / "results" / "study_density.json"
FIGURES = ROOT / "figures"
SEEDS = (0, 1, 2)
SIZES = (10_000, 100_000, 1_000_000)
RATIOS = (0.05, 0.1, 0.5, 0.9)
DISTRIBUTIONS = {
    "|N(0,1)|": stats.halfnorm(),
    "Exp(1) = |Laplace(0,1)|": stats.expon(),
    "Uniform(0,1)": stats.uniform(),
}


def settings() -> dict:
    """Density settings compared, by label."""
    out = {"direct (exact KDE)": DensityConfig(method="direct"),
           "direct, reflected": DensityConfig(method="direct", reflect=True),
           "direct, Silverman": DensityConfig(method="direct", rule="silverman")}
    for m in (256, 1024, 4096):
        for binning in ("linear", "nearest"):
            out[f"fft {binning}, m={m}"] = DensityConfig(grid_size=m, binning=binning)
    out["fft linear, m=1024, reflected"] = DensityConfig(reflect=True)
    out["published: fft nearest, m=1024, renormalised"] = DensityConfig(binning="nearest", renormalize=True)
    return out


def known_distributions() -> list[dict]:
    rows = []
    for dist_name, dist in DISTRIBUTIONS.items():
        for n in SIZES:
            samples = [dist.rvs(size=n, random_state=np.random.default_rng(seed)) for seed in SEEDS]
            for r in RATIOS:
                ts = [empirical_threshold(a, r).t for a in samples]
                truth = [1.0 / dist.pdf(t) for t in ts]
                for label, cfg in settings().items():
                    errs = [abs(1.0 / density_at(a, [t], cfg)[0] - tr) / tr for a, t, tr in zip(samples, ts, truth)]
                    rows.append({"distribution": dist_name, "n": n, "r": r, "setting": label,
                                 "rel_error": float(np.median(errs))})
        print(f"  {dist_name}: done", flush=True)
    return rows


def real_weights(path: Path) -> tuple[list[dict], list[dict]]:
    with np.load(path) as f:
        a = np.concatenate([np.abs(f[k]).ravel() for k in sorted(f.files) if k.startswith("W")])
    a = a[a > 0]  # a pruned network's zeros are not weights the density describes
    rows, costs = [], []
    for r in (0.1, 0.5, 0.9):
        t = empirical_threshold(a, r).t
        for label, cfg in settings().items():
            ref = direct_kde(a, [t], bandwidth(a, cfg.rule), cfg.reflect)[0]
            est = density_at(a, [t], cfg)[0]
            rows.append({"r": r, "setting": label, "rel_error": float(abs(1 / est - 1 / ref) * ref)})
    t = empirical_threshold(a, 0.5).t
    for label, cfg in settings().items():
        costs.append({"setting": label, "seconds": timed(lambda: density_at(a, [t], cfg))})
    a32 = a.astype(np.float32)
    h = bandwidth(a)
    costs.append({"setting": "training path: kde_at_point, float32", "seconds": timed(lambda: kde_at_point(a32, t, h))})
    return rows, costs + [{"setting": "n", "seconds": float(a.size)}]


def timed(fn, repeats: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def compute(weights: Path | None) -> dict:
    print("known distributions ...", flush=True)
    out = {"known": known_distributions(), "seeds": list(SEEDS)}
    if weights is not None:
        print(f"real weights from {weights} ...", flush=True)
        out["real"], out["cost"] = real_weights(weights)
        out["weights_file"] = str(weights)
    out["code"] = code_version()
    out["reproduce"] = "python scripts/study_density.py" + (f" --weights {weights}" if weights is not None else "")
    write_json(RESULTS, out)
    return out


def plot(data: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from refprune.experiments.figures.common import save

    known = data["known"]
    labels = list(dict.fromkeys(row["setting"] for row in known))
    fig, axes = plt.subplots(len(DISTRIBUTIONS), len(RATIOS), figsize=(16, 10), sharey=True)
    for i, dist in enumerate(DISTRIBUTIONS):
        for j, r in enumerate(RATIOS):
            ax = axes[i][j]
            for label in labels:
                pts = sorted((row["n"], row["rel_error"]) for row in known
                             if row["distribution"] == dist and row["r"] == r and row["setting"] == label)
                ax.plot(*zip(*pts), marker="o", ms=3, label=label)
            ax.set(xscale="log", yscale="log", title=f"{dist}, r = {r}")
            if j == 0:
                ax.set_ylabel("relative error of 1/f(t)")
            if i == len(DISTRIBUTIONS) - 1:
                ax.set_xlabel("n")
    axes[0][-1].legend(fontsize=6, loc="upper right")
    fig.suptitle("dt/dr = 1/f(t) against the true density (median over seeds)")
    save(fig, FIGURES, "study_density_known")
    if "real" in data:
        fig, axes = plt.subplots(1, 2, figsize=(15, 4.5))
        for r in (0.1, 0.5, 0.9):
            rows = [row for row in data["real"] if row["r"] == r]
            axes[0].plot([row["setting"] for row in rows], [max(row["rel_error"], 1e-17) for row in rows],
                         marker="o", label=f"r = {r}")
        axes[0].set(yscale="log", ylabel="relative error vs exact KDE", title="Real trained weights")
        axes[0].tick_params(axis="x", rotation=75, labelsize=7)
        axes[0].legend()
        cost = [c for c in data["cost"] if c["setting"] != "n"]
        axes[1].barh([c["setting"] for c in cost], [1e3 * c["seconds"] for c in cost])
        n = next(c["seconds"] for c in data["cost"] if c["setting"] == "n")
        axes[1].set(xlabel="ms per evaluation", title=f"Cost at n = {int(n)}")
        axes[1].tick_params(axis="y", labelsize=7)
        save(fig, FIGURES, "study_density_real")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", type=Path, help="params.npz of a trained network (for parts 2 and 3)")
    p.add_argument("--plot-only", action="store_true")
    args = p.parse_args(argv)
    data = read_json(RESULTS) if args.plot_only else compute(args.weights)
    plot(data)
    print(f"results: {RESULTS}\nfigures: {FIGURES}/study_density_*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
