"""Training: Algorithm 1 end to end for the dense baseline and both LRP variants (METHOD §4).

:func:`train` runs epochs of minibatch steps (:mod:`refprune.steps`), records
r, τ, t and the loss at every step and, every epoch, train and validation
loss and accuracy (R² for regression) under the soft and the hard mask with
the sparsity globally and per layer. At the end it prunes for real — weights
whose hard mask is 0 are set to zero — and evaluates on the test split.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .density import THESIS_DENSITY, DensityConfig
from .losses import LOSSES, accuracy, loss_and_grad, r2_score
from .masks import hard_mask, soft_mask, sparsity
from .mlp import check_layer_sizes, init_mlp, mlp_forward
from .steps import (DEVIATIONS, PublishedPath, TrainState, dense_step, exact_step,
                    magnitudes, new_state, published_step)
from .threads import training_threads
from .threshold import empirical_threshold
from .validation import check_choice, check_nonnegative, check_positive, check_ratio

METHODS = ("dense", "lrp")
VARIANTS = ("exact", "published")
DENSITY_METHODS = ("direct", "fft")
EVAL_BATCH = 4096  # rows per forward pass when evaluating (bounds memory only)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (defaults: thesis Table 4.1)."""

    method: str = "lrp"
    variant: str = "exact"
    deviations: tuple = DEVIATIONS
    loss: str = "ce"
    r0: float = 0.5
    tau0: float = 1e-2
    lr: float = 1e-3
    lr_r: float = 1e-4
    lr_tau: float = 1e-6
    lam: float = 0.0
    epochs: int = 25
    batch_size: int = 32
    seed: int = 0
    dtype: str = "float32"
    density: str = "direct"

    def __post_init__(self):
        check_choice(self.method, "method", METHODS)
        check_choice(self.variant, "variant", VARIANTS)
        check_choice(self.loss, "loss", LOSSES)
        check_choice(self.dtype, "dtype", ("float32", "float64"))
        check_choice(self.density, "density", DENSITY_METHODS)
        check_ratio(self.r0, "r0")
        for name in ("tau0", "lr", "lr_r", "lr_tau"):
            check_positive(getattr(self, name), name)
        check_nonnegative(self.lam, "lam")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        object.__setattr__(self, "deviations", tuple(sorted(set(self.deviations))))
        PublishedPath(frozenset(self.deviations))


@dataclass(frozen=True)
class Dataset:
    """Train/validation/test arrays of one task (y: int labels or (N, K) targets)."""

    name: str
    task: str  # "classification" or "regression"
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclass
class History:
    """What a run records: per step and per epoch."""

    steps: dict = field(default_factory=lambda: {"r": [], "tau": [], "t": [], "loss": []})
    epochs: list = field(default_factory=list)


def metric_name(task: str) -> str:
    return "accuracy" if task == "classification" else "r2"


def predict(x, weights, biases) -> np.ndarray:
    """Network output for many rows, in batches of EVAL_BATCH."""
    outs = [mlp_forward(x[i:i + EVAL_BATCH], weights, biases)[0] for i in range(0, x.shape[0], EVAL_BATCH)]
    return np.concatenate(outs)


def evaluate(x, y, weights, biases, task: str, loss: str) -> tuple[float, float]:
    """(mean loss, accuracy or R²) of the network on (x, y)."""
    out = predict(x, weights, biases)
    value = loss_and_grad(loss, out, y)[0]
    metric = accuracy(out, y) if task == "classification" else r2_score(out, y)
    return float(value), float(metric)


def masked_weights(weights, t: float, tau: float, mode: str) -> list:
    """ŵ under the soft mask m(w)·w or the hard mask 1[|w| >= t]·w."""
    if mode == "soft":
        return [soft_mask(W, t, tau) * W for W in weights]
    return [hard_mask(W, t) * W for W in weights]


def epoch_record(epoch: int, state: TrainState, data: Dataset, cfg: TrainConfig, seconds: float) -> dict:
    """Per-epoch metrics: train/val under soft and hard masks, sparsity, r, τ, t."""
    rec = {"epoch": epoch, "seconds": seconds, "r": state.r, "tau": state.tau}
    name = metric_name(data.task)
    if cfg.method == "dense":
        modes = {"dense": state.weights}
        rec.update(t=0.0, sparsity=0.0, sparsity_per_layer=[0.0] * len(state.weights))
    else:
        t = empirical_threshold(magnitudes(state.weights), state.r).t
        modes = {m: masked_weights(state.weights, t, state.tau, m) for m in ("soft", "hard")}
        total, per_layer = sparsity([hard_mask(W, t) for W in state.weights])
        rec.update(t=t, sparsity=total, sparsity_per_layer=per_layer)
    for mode, weights in modes.items():
        for split in ("train", "val"):
            x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
            value, metric = evaluate(x, y, weights, state.biases, data.task, cfg.loss)
            rec[f"{split}_loss_{mode}"], rec[f"{split}_{name}_{mode}"] = value, metric
    return rec


def progress_line(rec: dict, task: str, method: str) -> str:
    name = "acc" if task == "classification" else "R2"
    key = "accuracy" if task == "classification" else "r2"
    mode = "dense" if method == "dense" else "hard"
    line = (f"epoch {rec['epoch']:3d}  train loss {rec[f'train_loss_{mode}']:.4f} {name} {rec[f'train_{key}_{mode}']:.4f}"
            f"  val loss {rec[f'val_loss_{mode}']:.4f} {name} {rec[f'val_{key}_{mode}']:.4f}")
    if method != "dense":  # hard-mask metrics, and the learned r and τ
        line += f"  r {rec['r']:.4f}  tau {rec['tau']:.3e}  sparsity {rec['sparsity']:.4f}"
    return line + f"  {rec['seconds']:.1f}s"


def init_state(layers, cfg: TrainConfig) -> tuple[TrainState, np.random.Generator]:
    """Weights (PyTorch init), r = r0, τ = τ0 × std(initial weights) (thesis §2.5)."""
    rng = np.random.default_rng(cfg.seed)
    weights, biases = init_mlp(layers, rng, np.dtype(cfg.dtype))
    tau = cfg.tau0 * float(np.std(np.concatenate([W.ravel() for W in weights]).astype(np.float64)))
    return new_state(weights, biases, cfg.r0, tau, cfg.lr, cfg.lr_r, cfg.lr_tau), rng


def make_step(cfg: TrainConfig):
    """The step function of the configured method and variant."""
    density = THESIS_DENSITY if cfg.density == "fft" else DensityConfig()
    if cfg.method == "dense":
        return lambda s, x, y: dense_step(s, x, y, cfg.loss)
    if cfg.variant == "exact":
        return lambda s, x, y: exact_step(s, x, y, cfg.loss, cfg.lam, density)
    path = PublishedPath(frozenset(cfg.deviations))
    return lambda s, x, y: published_step(s, x, y, cfg.loss, cfg.lam, path)


def prune_for_real(state: TrainState, method: str) -> tuple[list, float]:
    """Zero the weights whose hard mask is 0; returns the pruned weights and t."""
    if method == "dense":
        return [W.copy() for W in state.weights], 0.0
    t = empirical_threshold(magnitudes(state.weights), state.r).t
    return [hard_mask(W, t) * W for W in state.weights], t


def train(data: Dataset, layers, cfg: TrainConfig, log=print) -> dict:
    """Train one network; return history, final pruned parameters and a summary.

    Parameters
    ----------
    data : Dataset
    layers : sequence of int
        Layer sizes; the first must match the data's features.
    cfg : TrainConfig
    log : callable
        Receives one progress line per epoch (None: silent).

    Returns
    -------
    dict with keys ``history`` (History), ``weights``, ``biases`` (pruned),
    ``summary`` (dict).
    """
    layers = check_layer_sizes(layers)
    if layers[0] != data.x_train.shape[1]:
        raise ValueError(f"layers[0] = {layers[0]} does not match the {data.x_train.shape[1]} input features")
    dtype = np.dtype(cfg.dtype)
    x_train = data.x_train.astype(dtype, copy=False)
    y_train = data.y_train if data.task == "classification" else data.y_train.astype(dtype, copy=False)
    training_threads()  # the BLAS and worker threads the benchmarks measured (refprune.threads)
    state, rng = init_state(layers, cfg)
    step = make_step(cfg)
    history = History()
    start = time.perf_counter()
    n = x_train.shape[0]
    for epoch in range(1, cfg.epochs + 1):
        order = rng.permutation(n)
        for i in range(0, n, cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            value = step(state, x_train[idx], y_train[idx])
            for key, v in (("r", state.r), ("tau", state.tau), ("t", state.t), ("loss", value)):
                history.steps[key].append(float(v))
        rec = epoch_record(epoch, state, data, cfg, time.perf_counter() - start)
        history.epochs.append(rec)
        if log:
            log(progress_line(rec, data.task, cfg.method))
    weights, t = prune_for_real(state, cfg.method)
    summary = final_summary(data, weights, state, cfg, t, time.perf_counter() - start)
    return {"history": history, "weights": weights, "biases": state.biases, "summary": summary}


def final_summary(data: Dataset, weights, state: TrainState, cfg: TrainConfig, t: float, seconds: float) -> dict:
    """Test metrics of the pruned network, sparsity and compression."""
    value, metric = evaluate(data.x_test, data.y_test, weights, state.biases, data.task, cfg.loss)
    total, per_layer = sparsity([(W != 0).astype(np.float64) for W in weights]) if cfg.method != "dense" \
        else (0.0, [0.0] * len(weights))
    summary = {
        "data": data.name, "method": cfg.method, "variant": cfg.variant if cfg.method == "lrp" else None,
        f"test_{metric_name(data.task)}": metric, "test_loss": value,
        "sparsity": total, "sparsity_per_layer": per_layer,
        "compression": float("inf") if total >= 1 else 1.0 / (1.0 - total),
        "r": state.r, "tau": state.tau, "t": t, "epochs": cfg.epochs, "seconds": seconds,
        "steps": state.step,
    }
    return summary


def config_dict(cfg: TrainConfig) -> dict:
    d = asdict(cfg)
    d["deviations"] = list(cfg.deviations)
    return d
