"""Study: the term the method ignores (stop-gradient from t into w) during a real MNIST run.

LRP treats t as a function of r only, so ∂L/∂w keeps g·(m + (2w²/τ)s) and drops
∂L/∂t · ∂t/∂w. This script trains the exact LRP path on MNIST and, every
``--every`` steps, measures on the current batch:

- kept      : ‖∂L/∂w‖ of the method (thesis eq. (2.3), corrected);
- empirical : ‖∂L/∂t · ∂t/∂w‖ for the empirical threshold t = (a_k + a_{k+1})/2:
              ∂t/∂w_i = ½ sign(w_i) for the two weights at a_k, a_{k+1}, 0 elsewhere;
- smoothed  : the same for the smoothed threshold t̃ = F̂⁻¹(r) (KDE reflected at
              0): from F̂(t̃; a, h) = r, ∂t̃/∂a_i = −(∂F̂/∂a_i + ∂F̂/∂h · ∂h/∂a_i)/f̂(t̃),
              Scott's h = σ̂ n^(−1/5) depending on every a_i;
- the relative gap |t − t̃|/t between the two thresholds.

Compute writes results/study_ignored_term.json; plot writes
figures/study_ignored_term.png/.pdf.

Usage:
  python scripts/study_ignored_term.py --data-dir ../shared/data/mnist [--epochs 2] [--every 50]
  python scripts/study_ignored_term.py --plot-only
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from refprune.data.tasks import load_task
from refprune.density.kde import bandwidth, direct_kde
from refprune.density.quantile import smoothed_threshold
from refprune.lrp.reference import LRPConfig, lrp_gradients
from refprune.train.loop import TrainConfig, init_state, make_step
from refprune.train.steps.common import new_workspace
from refprune.util.io import read_json, write_json
from refprune.util.provenance import code_version

RESULTS = ROOT / "results" / "study_ignored_term.json"
FIGURES = ROOT / "figures"


def phi(u):
    return np.exp(-0.5 * u * u) / np.sqrt(2 * np.pi)


def smoothed_dt_da(a: np.ndarray, t: float, h: float) -> np.ndarray:
    """∂t̃/∂a_i for t̃ = F̂⁻¹(r), F̂ the reflected Gaussian KDE CDF with Scott's h(a).

    F̂(t) = (1/n) Σ [Φ((t − a_j)/h) − Φ((−t − a_j)/h)].
    """
    n = a.size
    up, dn = (t - a) / h, (-t - a) / h
    f = float(np.sum(phi(up) + phi(dn))) / (n * h)                 # f̂(t̃), reflected
    dF_da = (-phi(up) + phi(dn)) / (n * h)                          # ∂F̂/∂a_i at fixed h
    dF_dh = float(np.sum(-phi(up) * up + phi(dn) * dn)) / (n * h)   # ∂F̂/∂h
    sigma = np.std(a, ddof=1)
    dh_da = n ** -0.2 * (a - a.mean()) / ((n - 1) * sigma)          # ∂h/∂a_i, h = σ̂ n^(-1/5)
    return -(dF_da + dF_dh * dh_da) / f


def measure(state, x, y, lam) -> dict:
    W = [np.asarray(w, np.float64) for w in state.weights]
    b = [np.asarray(v, np.float64) for v in state.biases]
    res = lrp_gradients(W, b, x.astype(np.float64), y, state.r, state.tau, LRPConfig(lam=lam))
    kept = np.sqrt(sum(float(np.sum(g * g)) for g in res.grad_weights))
    a = np.concatenate([np.abs(w).ravel() for w in W])
    sign = np.sign(np.concatenate([w.ravel() for w in W]))
    empirical = abs(res.grad_t) * np.sqrt(2) / 2          # two entries of size |∂L/∂t|/2
    h = bandwidth(a)
    t_s = smoothed_threshold(a, state.r).t
    smooth_res = lrp_gradients(W, b, x.astype(np.float64), y, state.r, state.tau,
                               LRPConfig(lam=lam, threshold="smoothed"))
    ignored_s = smooth_res.grad_t * sign * smoothed_dt_da(a, t_s, h)
    kept_s = np.sqrt(sum(float(np.sum(g * g)) for g in smooth_res.grad_weights))
    return {"step": state.step, "r": state.r, "tau": state.tau, "t": res.threshold.t, "t_smoothed": t_s,
            "t_gap_rel": abs(res.threshold.t - t_s) / res.threshold.t,
            "kept_norm": kept, "ignored_empirical_norm": float(empirical),
            "kept_norm_smoothed": kept_s, "ignored_smoothed_norm": float(np.linalg.norm(ignored_s)),
            "grad_t": res.grad_t, "density": float(direct_kde(a, [res.threshold.t], h, True)[0])}


def compute(data_dir: str, epochs: int, every: int, lam: float, r0: float, seed: int) -> dict:
    data = load_task("mnist", data_dir=data_dir, seed=seed)
    cfg = TrainConfig(method="lrp", r0=r0, lam=lam, epochs=epochs, seed=seed)
    state, rng = init_state((784, 512, 512, 10), cfg)
    step, ws = make_step(cfg), new_workspace(state)
    rows = []
    for epoch in range(epochs):
        order = rng.permutation(data.x_train.shape[0])
        for i in range(0, order.size, cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            x, y = data.x_train[idx], data.y_train[idx]
            if state.step % every == 0:
                rows.append(measure(state, x, y, lam))
                if len(rows) % 20 == 1:
                    row = rows[-1]
                    print(f"step {row['step']}: ignored/kept empirical {row['ignored_empirical_norm'] / row['kept_norm']:.2e}"
                          f", smoothed {row['ignored_smoothed_norm'] / row['kept_norm_smoothed']:.2e}, "
                          f"t gap {row['t_gap_rel']:.2e}", flush=True)
            step(state, ws, x, y)
    out = {"rows": rows, "epochs": epochs, "every": every, "lam": lam, "r0": r0, "seed": seed,
           "code": code_version(),
           "reproduce": (f"python scripts/study_ignored_term.py --data-dir DATA_DIR --epochs {epochs} --every {every} "
                         f"--lam {lam:g} --r0 {r0:g} --seed {seed}")}
    write_json(RESULTS, out)
    return out


def plot(data: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from refprune.experiments.figures.common import save

    rows = data["rows"]
    step = [r["step"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    axes[0].plot(step, [r["ignored_empirical_norm"] / r["kept_norm"] for r in rows], label="empirical t")
    axes[0].plot(step, [r["ignored_smoothed_norm"] / r["kept_norm_smoothed"] for r in rows], label="smoothed t̃")
    axes[0].set(yscale="log", xlabel="step", ylabel="‖∂L/∂t · ∂t/∂w‖ / ‖∂L/∂w kept‖",
                title="Size of the ignored term")
    axes[0].legend()
    axes[1].plot(step, [r["t_gap_rel"] for r in rows])
    axes[1].set(yscale="log", xlabel="step", ylabel="|t − t̃| / t", title="Empirical vs smoothed threshold")
    fig.suptitle(f"LRP exact on MNIST, r0 = {data['r0']}, λ = {data['lam']:g}, {data['epochs']} epoch(s)")
    save(fig, FIGURES, "study_ignored_term")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--every", type=int, default=50)
    p.add_argument("--lam", type=float, default=10.0)
    p.add_argument("--r0", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot-only", action="store_true")
    args = p.parse_args(argv)
    if args.plot_only:
        data = read_json(RESULTS)
    elif args.data_dir is None:
        p.error("--data-dir is required unless --plot-only")
    else:
        data = compute(args.data_dir, args.epochs, args.every, args.lam, args.r0, args.seed)
    plot(data)
    print(f"results: {RESULTS}\nfigure: {FIGURES}/study_ignored_term.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
