"""Training: Algorithm 1 end to end for the dense baseline and both LRP variants (METHOD §4).

:func:`train` runs epochs of minibatch steps (:mod:`refprune.train.steps`), records
r, τ, t and the loss at every step and, every epoch, train and validation
loss and accuracy (R² for regression) under the soft and the hard mask with
the sparsity globally and per layer. At the end it prunes for real — weights
whose hard mask is 0 are set to zero — and evaluates on the test split.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from functools import partial

import numpy as np

from refprune.core.groups import GRANULARITIES, Grouping
from refprune.core.losses import LOSSES, accuracy, loss_and_grad, r2_score
from refprune.core.masks import TAU_STABLE_MAX, TAU_STABLE_MIN, hard_mask, sparsity
from refprune.core.mlp import check_layer_sizes, init_mlp
from refprune.core.threshold import empirical_threshold
from refprune.core.validation import check_choice
from refprune.data.dataset import Dataset
from refprune.density.config import THESIS_DENSITY, DensityConfig
from refprune.train.checkpoint import Checkpointer, load_checkpoint
from refprune.train.kernels import network_output, training_soft_mask
from refprune.train.protocol import (
    EARLY_STOP_MIN_DELTA,
    PROTOCOLS,
    EarlyStopOnR,
    epoch_batches,
    eval_shard,
    world_size,
)
from refprune.train.steps.common import (
    DEVIATIONS,
    StepConfig,
    TrainState,
    magnitudes,
    new_state,
    new_workspace,
)
from refprune.train.steps.published import PublishedPath
from refprune.train.steps.registry import STEPS, step_kind
from refprune.train.threads import training_threads
from refprune.util.options import NONNEGATIVE, POSITIVE, RATIO, Range, applied_dict, check_ranges, option

METHODS = ("dense", "lrp")
VARIANTS = ("exact", "published")
DENSITY_METHODS = ("direct", "fft")
EVAL_BATCH = 4096  # rows per forward pass when evaluating (bounds memory only)


def parse_deviations(text: str) -> tuple:
    """``"P1,P3"`` → ``("P1", "P3")``; ``"none"`` → ``()``."""
    if text.strip().lower() == "none":
        return ()
    return tuple(part.strip().upper() for part in text.split(",") if part.strip())


def parse_bool(text: str) -> bool:
    """``"true"``/``"yes"``/``"1"`` → True, ``"false"``/``"no"``/``"0"`` → False (any case)."""
    word = text.strip().lower()
    if word in ("true", "yes", "1"):
        return True
    if word in ("false", "no", "0"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


LRP = {"method": "lrp"}


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (defaults: thesis Table 4.1).

    Each field carries its command-line help (:func:`refprune.util.options.option`);
    ``applies`` says for which method and variant it is used.
    """

    method: str = option("lrp", "dense baseline or Learned Ratio Pruning (Algorithm 1)", choices=METHODS)
    variant: str = option("exact", "LRP gradient path: exact (METHOD §3) or the published code's (§6)",
                          choices=VARIANTS, applies=LRP)
    deviations: tuple = option(DEVIATIONS, "which of P1..P4 the published variant applies "
                               "(comma-separated, or 'none')", parse=parse_deviations,
                               applies={"method": "lrp", "variant": "published"})
    loss: str = option("ce", "loss (set by the task)", choices=LOSSES, cli=False)
    r0: float = option(0.5, "initial pruning ratio r", applies=LRP, range=RATIO)
    tau0: float = option(1e-2, "initial τ as a multiple of the std of the initial weights (τ itself must lie in "
                         f"[{TAU_STABLE_MIN:g}, {TAU_STABLE_MAX:g}], where the soft mask is stable; checked before "
                         "the first step)", applies=LRP, range=POSITIVE)
    lr: float = option(1e-3, "Adam learning rate of the weights and biases", range=POSITIVE)
    lr_r: float = option(1e-4, "Adam learning rate of r", applies=LRP, range=POSITIVE)
    lr_tau: float = option(1e-6, "Adam learning rate of τ", applies=LRP, range=POSITIVE)
    lam: float = option(0.0, "λ of the regulariser λ(1 − r)² (layer-wise: λ Σ_l (n_l/n)(1 − r_l)²)", applies=LRP,
                        range=NONNEGATIVE)
    learn_r: bool = option(True, "False: r stays at r0 — a fixed-ratio soft mask; τ is still learned "
                           "(exact variant, global granularity)", parse=parse_bool, show="true", applies=LRP)
    granularity: str = option("global", "one r, τ and threshold for all weights, or one per layer "
                              "(docs/derivations.md §9; exact variant only)", choices=GRANULARITIES, applies=LRP)
    epochs: int = option(25, "epochs", range=Range(1, integer=True))
    batch_size: int = option(32, "minibatch size, at most the training rows (of one process under ddp2)",
                             range=Range(1, integer=True))
    seed: int = option(0, "seed of the initialisation, the batch order and the MNIST split",
                       range=Range(0, integer=True))
    dtype: str = option("float32", "floating-point type of the training", choices=("float32", "float64"))
    protocol: str = option("single", "batch order: one process, or two data-parallel processes of "
                           "--batch-size each (ddp2: 2x the examples per step; docs/protocol.md)", choices=PROTOCOLS)
    early_stop_r: int = option(0, "stop after this many epochs without r rising by more than "
                               f"{EARLY_STOP_MIN_DELTA:g} (0: never; docs/protocol.md, H3)", applies=LRP,
                               range=Range(0, integer=True))
    density: str = option("direct", "density for dt/dr: the direct KDE sum at t reflected at 0 (exact) or "
                          "the thesis's binned FFT estimate", choices=DENSITY_METHODS,
                          applies={"method": "lrp", "variant": "exact"})

    def __post_init__(self):
        check_choice(self.method, "method", METHODS)
        check_choice(self.variant, "variant", VARIANTS)
        check_choice(self.loss, "loss", LOSSES)
        check_choice(self.dtype, "dtype", ("float32", "float64"))
        check_choice(self.density, "density", DENSITY_METHODS)
        check_choice(self.granularity, "granularity", GRANULARITIES)
        if self.layerwise and self.variant != "exact":
            raise ValueError("granularity 'layer' needs the exact variant: the published code has one global r and τ")
        if not isinstance(self.learn_r, (bool, np.bool_)):
            raise ValueError(f"learn_r must be True or False, got {self.learn_r!r}")
        if not self.learn_r and (self.variant != "exact" or self.granularity != "global"):
            raise ValueError("learn_r False (a fixed-ratio soft mask) needs the exact variant and global granularity")
        check_ranges(self)
        check_choice(self.protocol, "protocol", PROTOCOLS)
        object.__setattr__(self, "deviations", tuple(sorted(set(self.deviations))))
        PublishedPath(frozenset(self.deviations))

    @property
    def layerwise(self) -> bool:
        """Layer-wise LRP (one r_l, τ_l, t_l per layer)."""
        return self.method == "lrp" and self.granularity == "layer"


@dataclass
class History:
    """What a run records: per step and per epoch."""

    steps: dict = field(default_factory=lambda: {"r": [], "tau": [], "t": [], "loss": []})
    epochs: list = field(default_factory=list)


PER_LAYER_KEYS = ("r_per_layer", "tau_per_layer", "t_per_layer")


def new_history(cfg: "TrainConfig") -> History:
    """An empty history; a layer-wise run also records r_l, τ_l, t_l per step (lists of L values)."""
    history = History()
    if cfg.layerwise:
        history.steps.update({key: [] for key in PER_LAYER_KEYS})
    return history


def metric_name(task: str) -> str:
    """The quality metric of a task: ``accuracy`` (classification) or ``r2`` (regression)."""
    return "accuracy" if task == "classification" else "r2"


def predict(x, weights, biases) -> np.ndarray:
    """Network output for many rows, in batches of EVAL_BATCH."""
    outs = [network_output(x[i:i + EVAL_BATCH], weights, biases) for i in range(0, x.shape[0], EVAL_BATCH)]
    return np.concatenate(outs)


def evaluate(x, y, weights, biases, task: str, loss: str) -> tuple[float, float]:
    """(mean loss, accuracy or R²) of the network on (x, y)."""
    out = predict(x, weights, biases)
    value = loss_and_grad(loss, out, y)[0]
    metric = accuracy(out, y) if task == "classification" else r2_score(out, y)
    return float(value), float(metric)


def masked_weights(weights, ts, taus, mode: str) -> list:
    """ŵ_l under the soft mask m_l(w)·w or the hard mask 1[|w| >= t_l]·w (one t_l, τ_l per layer)."""
    if mode == "soft":
        return [training_soft_mask(W, t, tau) * W for W, t, tau in zip(weights, ts, taus)]  # no subnormal ŵ
    return [hard_mask(W, t) * W for W, t in zip(weights, ts)]


def per_layer(state: TrainState, cfg: TrainConfig) -> tuple[list, list, list]:
    """(r_l, τ_l, t_l) of every layer now: those of the group that holds it.

    t_g is the empirical threshold of the group's current weights (the one the next step selects).
    """
    grouping = state.grouping
    ts = [empirical_threshold(magnitudes(grouping.members(state.weights, g)), float(r)).t
          for g, r in enumerate(state.rs)]
    groups = [grouping.group_of(l) for l in range(len(state.weights))]
    return ([float(state.rs[g]) for g in groups], [float(state.taus[g]) for g in groups], [ts[g] for g in groups])


def layer_record(state: TrainState, cfg: TrainConfig) -> dict:
    """r, τ, t of a layer-wise run per layer (empty for a global run)."""
    if not cfg.layerwise:
        return {}
    rs, taus, ts = per_layer(state, cfg)
    return {"r_per_layer": rs, "tau_per_layer": taus, "t_per_layer": ts}


def epoch_record(epoch: int, state: TrainState, data: Dataset, cfg: TrainConfig, seconds: float) -> dict:
    """Per-epoch metrics: train/val under soft and hard masks, sparsity, r, τ, t."""
    rec = {"epoch": epoch, "seconds": seconds, "r": state.r, "tau": state.tau}
    name = metric_name(data.task)
    if cfg.method == "dense":
        modes = {"dense": state.weights}
        rec.update(t=0.0, sparsity=0.0, sparsity_per_layer=[0.0] * len(state.weights))
    else:
        _, taus, ts = per_layer(state, cfg)
        modes = {m: masked_weights(state.weights, ts, taus, m) for m in ("soft", "hard")}
        total, layers = sparsity([hard_mask(W, t) for W, t in zip(state.weights, ts)])
        rec.update(t=None if cfg.layerwise else ts[0], sparsity=total, sparsity_per_layer=layers,
                   **layer_record(state, cfg))
    for mode, weights in modes.items():
        for split in ("train", "val"):
            x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
            if split == "val":  # rank 0's share under ddp2 (refprune.train.protocol.eval_shard)
                x, y = eval_shard(x, y, cfg.protocol)
            value, metric = evaluate(x, y, weights, state.biases, data.task, cfg.loss)
            rec[f"{split}_loss_{mode}"], rec[f"{split}_{name}_{mode}"] = value, metric
    return rec


def progress_line(rec: dict, task: str, method: str) -> str:
    """The one line an epoch prints: loss and metric (hard mask for LRP), r, τ, sparsity, seconds."""
    name = "acc" if task == "classification" else "R2"
    key = "accuracy" if task == "classification" else "r2"
    mode = "dense" if method == "dense" else "hard"
    line = (f"epoch {rec['epoch']:3d}  train loss {rec[f'train_loss_{mode}']:.4f} {name} {rec[f'train_{key}_{mode}']:.4f}"
            f"  val loss {rec[f'val_loss_{mode}']:.4f} {name} {rec[f'val_{key}_{mode}']:.4f}")
    if method != "dense":  # hard-mask metrics, and the learned r and τ
        line += f"  r {rec['r']:.4f}  tau {rec['tau']:.3e}  sparsity {rec['sparsity']:.4f}"
    return line + f"  {rec['seconds']:.1f}s"


def init_state(layers, cfg: TrainConfig) -> tuple[TrainState, np.random.Generator]:
    """Weights (PyTorch init), every r_g = r0, τ_g = τ0 × std(group g's initial weights) (thesis §2.5).

    The grouping is one group of all layers, or one per layer for a layer-wise run.
    """
    rng = np.random.default_rng(cfg.seed)
    weights, biases = init_mlp(layers, rng, np.dtype(cfg.dtype))
    grouping = Grouping.of(cfg.granularity if cfg.layerwise else "global", len(weights))
    taus = [cfg.tau0 * float(np.std(np.concatenate([W.ravel() for W in members]).astype(np.float64)))
            for members in (grouping.members(weights, g) for g in range(grouping.n_groups))]
    return new_state(weights, biases, cfg.r0, taus, cfg.lr, cfg.lr_r, cfg.lr_tau, grouping), rng


def step_config(cfg: TrainConfig) -> StepConfig:
    """What the configured step needs of the run's configuration."""
    return StepConfig(loss=cfg.loss, lam=cfg.lam, density=THESIS_DENSITY if cfg.density == "fft" else DensityConfig(),
                      learn_r=cfg.learn_r, deviations=frozenset(cfg.deviations))


def make_step(cfg: TrainConfig):
    """The configured step (:data:`refprune.train.steps.registry.STEPS`) as ``step(state, ws, x, y) -> loss``."""
    return partial(STEPS[step_kind(cfg.method, cfg.variant)], cfg=step_config(cfg))


def prune_for_real(state: TrainState, cfg: TrainConfig) -> tuple[list, float | None]:
    """Zero the weights whose hard mask is 0; returns the pruned weights and t (None: one t_l per layer)."""
    if cfg.method == "dense":
        return [W.copy() for W in state.weights], 0.0
    _, _, ts = per_layer(state, cfg)
    return [hard_mask(W, t) * W for W, t in zip(state.weights, ts)], None if cfg.layerwise else ts[0]


class Diverged(RuntimeError):
    """Training produced a non-finite loss, r or τ; ``step`` and ``quantity`` say where."""

    def __init__(self, step: int, quantity: str, value):
        self.step, self.quantity, self.value = step, quantity, value
        super().__init__(f"training diverged at step {step}: {quantity} is {value}")


def check_widths(data: Dataset, layers) -> tuple:
    """The layer sizes, checked against the task's inputs and outputs (before any work)."""
    layers = check_layer_sizes(layers)
    if layers[0] != data.x_train.shape[1]:
        raise ValueError(f"layers: the input width {layers[0]} does not match the task's "
                         f"{data.x_train.shape[1]} input feature(s)")
    want = data.n_outputs()
    if layers[-1] != want:
        kind = "classes" if data.task == "classification" else "regression target(s)"
        raise ValueError(f"layers: the output width {layers[-1]} does not fit the task's {want} {kind}")
    return layers


def guarded_step(step, state: TrainState, ws, x, y) -> float:
    """One step; raises :class:`Diverged` if the loss, r or τ is not finite afterwards."""
    try:
        value = step(state, ws, x, y)
    except (ValueError, FloatingPointError, OverflowError):
        for name, v in (("r", state.r), ("tau", state.tau), ("a weight", np.sum(state.flat_w))):
            if not np.isfinite(v):
                raise Diverged(state.step + 1, name, v) from None
        raise
    for name, v in (("loss", value), ("r", state.r), ("tau", state.tau)):
        if not math.isfinite(v):
            raise Diverged(state.step, name, v)
    return value


def check_record(rec: dict, step: int) -> None:
    """Raise :class:`Diverged` if an epoch's validation loss is not finite (non-finite weights)."""
    for key, value in rec.items():
        if key.startswith("val_loss") and not math.isfinite(value):
            raise Diverged(step, key.replace("_", " "), value)


class EarlyStopper(EarlyStopOnR):
    """:class:`refprune.train.protocol.EarlyStopOnR` that remembers whether it has fired."""

    stopped: bool = False

    def update(self, value: float) -> bool:
        """Record this epoch's r; True once the rule has stopped the run (it stays stopped)."""
        self.stopped = super().update(value) or self.stopped
        return self.stopped


def early_stopper(cfg: TrainConfig, history) -> EarlyStopper | None:
    """The early-stopping rule of the run (None when off), replayed over the epochs already in ``history``."""
    if cfg.method != "lrp" or not cfg.early_stop_r:
        return None
    stopper = EarlyStopper(patience=cfg.early_stop_r, min_delta=EARLY_STOP_MIN_DELTA)
    for rec in history.epochs:  # a resumed run continues the rule exactly
        stopper.update(rec["r"])
    return stopper


def run_epoch(step, state: TrainState, ws, x, y, batches, history, epoch: int, shown) -> None:
    """The minibatch steps of one epoch (``batches``: index arrays, in order); records r, τ, t and the loss per step.

    A layer-wise run also records r_l, τ_l and the t_l its step used.
    """
    steps = history.steps
    layerwise = "r_per_layer" in steps
    for k, idx in enumerate(batches, start=1):
        value = guarded_step(step, state, ws, x[idx], y[idx])
        for key, v in (("r", state.r), ("tau", state.tau), ("t", state.t), ("loss", value)):
            steps[key].append(float(v))
        if layerwise:
            for key, v in zip(PER_LAYER_KEYS, (state.rs, state.taus, state.ts)):
                steps[key].append([float(u) for u in v])
        if shown:
            shown.step(epoch, k)


def train(data: Dataset, layers, cfg: TrainConfig, log=print, *, checkpoint=None, resume: bool = False,
          progress=None) -> dict:
    """Train one network; return history, final pruned parameters and a summary.

    Parameters
    ----------
    data : Dataset
    layers : sequence of int
        Layer sizes; the first must match the data's features, the last its outputs.
    cfg : TrainConfig
    log : callable
        Receives one progress line per epoch (None: silent).
    checkpoint : path, optional
        Where to save the state after every epoch (:class:`refprune.train.checkpoint.Checkpointer`:
        taken every epoch, written at most every 10 s, on Ctrl-C, on divergence and at the end).
    resume : bool
        Continue from ``checkpoint`` (the result is bitwise that of an uninterrupted run).
    progress : callable, optional
        ``progress(epochs, steps_per_epoch)`` → an object with ``step(epoch, k)`` and
        ``clear()`` (:class:`refprune.train.progress.Progress`).

    Returns
    -------
    dict with keys ``history`` (History), ``weights``, ``biases`` (pruned),
    ``summary`` (dict).

    Raises
    ------
    Diverged
        On a non-finite loss, r or τ; the last checkpoint is the last good epoch.
    """
    layers = check_widths(data, layers)
    dtype = np.dtype(cfg.dtype)
    x_train = data.x_train.astype(dtype, copy=False)
    y_train = data.y_train if data.task == "classification" else data.y_train.astype(dtype, copy=False)
    training_threads()  # the BLAS and worker threads the benchmarks measured (refprune.train.threads)
    state, rng = init_state(layers, cfg)
    step, ws = make_step(cfg), new_workspace(state)
    history = new_history(cfg)
    done, before = load_checkpoint(checkpoint, state, rng, history) if resume else (0, 0.0)
    start = time.perf_counter() - before
    n = x_train.shape[0]
    steps_per_epoch = math.ceil(math.ceil(n / world_size(cfg.protocol)) / cfg.batch_size)
    stopper = early_stopper(cfg, history)
    shown = progress(cfg.epochs, steps_per_epoch) if progress else None
    saver = Checkpointer(checkpoint) if checkpoint is not None else None
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # divergence is checked, not warned
            for epoch in range(done + 1, cfg.epochs + 1):
                if stopper and stopper.stopped:
                    break
                batches = epoch_batches(rng, n, cfg.batch_size, cfg.protocol)
                run_epoch(step, state, ws, x_train, y_train, batches, history, epoch, shown)
                rec = epoch_record(epoch, state, data, cfg, time.perf_counter() - start)
                check_record(rec, state.step)
                history.epochs.append(rec)
                stop = stopper.update(rec["r"]) if stopper else False
                if saver:
                    saver.epoch_end(state, rng, history, epoch, rec["seconds"], last=stop or epoch == cfg.epochs)
                if shown:
                    shown.clear()
                if log:
                    log(progress_line(rec, data.task, cfg.method))
                    if stop:
                        log(f"early stop: r has not risen by more than {EARLY_STOP_MIN_DELTA:g} "
                            f"for {cfg.early_stop_r} epochs")
    except (KeyboardInterrupt, Diverged):
        if shown:
            shown.clear()
        if saver:
            saver.flush()  # the last completed epoch
        raise
    weights, t = prune_for_real(state, cfg)
    summary = final_summary(data, weights, state, cfg, t, time.perf_counter() - start)
    summary.update(epochs_run=len(history.epochs), stopped_early=bool(stopper and stopper.stopped))
    return {"history": history, "weights": weights, "biases": state.biases, "summary": summary}


def final_summary(data: Dataset, weights, state: TrainState, cfg: TrainConfig, t: float, seconds: float) -> dict:
    """Test metrics of the pruned network, sparsity and compression."""
    x_test, y_test = eval_shard(data.x_test, data.y_test, cfg.protocol)  # rank 0's share under ddp2
    value, metric = evaluate(x_test, y_test, weights, state.biases, data.task, cfg.loss)
    total, per_layer = sparsity([(W != 0).astype(np.float64) for W in weights]) if cfg.method != "dense" \
        else (0.0, [0.0] * len(weights))
    summary = {
        "data": data.name, "method": cfg.method, "variant": cfg.variant if cfg.method == "lrp" else None,
        f"test_{metric_name(data.task)}": metric, "test_loss": value,
        "sparsity": total, "sparsity_per_layer": per_layer,
        "compression": float("inf") if total >= 1 else 1.0 / (1.0 - total),
        "r": state.r, "tau": state.tau, "t": t, "epochs": cfg.epochs, "seconds": seconds,
        "steps": state.step, **layer_record(state, cfg),
    }
    if cfg.layerwise:
        summary["granularity"] = "layer"
    return summary


def config_dict(cfg: TrainConfig) -> dict:
    """Every field of the configuration (tuples as lists)."""
    d = asdict(cfg)
    d["deviations"] = list(cfg.deviations)
    return d


def applied_config(cfg: TrainConfig) -> dict:
    """The fields of the configuration that its method and variant use (what config.json records)."""
    return applied_dict(cfg)
