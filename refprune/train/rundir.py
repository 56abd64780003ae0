"""A training run's directory: what ``refprune train`` writes, each file atomically.

    config.json      the configuration that applies (and the data set and layer sizes)
    checkpoint.npz   the state after the last completed epoch (refprune.train.checkpoint)
    history.json     one record per epoch (losses, accuracy or R², sparsity, r, τ, t)
    steps.npz        r, tau, t and loss at every step
    params.npz       the final pruned parameters, dense (W1, b1, ..., WL, bL)
    model_sparse.npz the same weights in CSR form (refprune.train.export)
    summary.json     test metric, sparsity, compression, r, τ, epochs, seconds, bytes

Everything that can be checked is checked before the first step
(:func:`prepare_run`): the configuration, the output location, the data and
the layer sizes against the data.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from refprune.core.masks import TAU_STABLE_MAX, TAU_STABLE_MIN
from refprune.data.dataset import Dataset
from refprune.data.tasks import LOSS_OF_TASK, TaskSpec, check_memory
from refprune.train.checkpoint import CHECKPOINT, load_checkpoint, saved_epoch
from refprune.train.export import save_sparse
from refprune.train.loop import (
    EVAL_BATCH,
    TrainConfig,
    applied_config,
    check_widths,
    init_state,
    new_history,
    train,
)
from refprune.train.protocol import world_size
from refprune.util.io import (
    UnreadableFile,
    check_dtype,
    json_type,
    read_json,
    read_npz,
    require_keys,
    write_json,
    write_npz,
)
from refprune.util.options import applied_dict

CONFIG = "config.json"


@dataclass(frozen=True)
class RunPlan:
    """A checked run: its configuration, data, layer sizes and directory."""

    cfg: TrainConfig
    task: TaskSpec
    data: Dataset
    layers: tuple
    out: Path
    resume: bool

    def config(self) -> dict:
        """What config.json records: only the options that apply."""
        return {**applied_config(self.cfg), **applied_dict(self.task), "layers": list(self.layers)}


def params_arrays(weights, biases) -> dict:
    """The arrays of params.npz: ``W1, b1, ..., WL, bL`` (numbered 1…L like the golden vectors)."""
    params = {f"W{l}": W for l, W in enumerate(weights, start=1)}
    params.update({f"b{l}": b for l, b in enumerate(biases, start=1)})
    return params


def load_params(path) -> tuple[list, list]:
    """(weights, biases) of a params.npz, numbered 1…L (or 0…L−1, as older run directories number them).

    Raises :class:`refprune.util.io.UnreadableFile` naming the file if it is damaged, lacks a
    layer, holds non-float arrays or shapes that do not chain (W_l (D_{l−1}, D_l), b_l (D_l,)).
    """
    what = "a run's pruned parameters (W1, b1, …, WL, bL)"
    f = read_npz(path, what)
    first = 0 if "W0" in f else 1
    n = sum(1 for k in f if k.startswith("W"))
    keys = [f"{p}{l}" for l in range(first, first + n) for p in "Wb"]
    require_keys(f, keys or ["W1", "b1"], path, what)
    weights = [check_dtype(path, f"W{l}", f[f"W{l}"], "f", "floats") for l in range(first, first + n)]
    biases = [check_dtype(path, f"b{l}", f[f"b{l}"], "f", "floats") for l in range(first, first + n)]
    for l, (W, b) in enumerate(zip(weights, biases), start=first):
        prev = weights[l - first - 1].shape[1] if l > first and weights[l - first - 1].ndim == 2 else None
        if W.ndim != 2 or b.shape != W.shape[1:] or (prev is not None and W.shape[0] != prev):
            raise UnreadableFile(path, f"W{l} of shape {W.shape} and b{l} of shape {b.shape} do not chain as the "
                                       "layers of one network")
    return weights, biases


def read_config(path) -> dict:
    """A run's config.json, checked: a JSON object with the task, the method and the layer sizes."""
    what = "a run's configuration (config.json of 'refprune train')"
    config = read_json(path, dict, what)
    require_keys(config, ("data", "method", "layers"), path, what)
    for key in ("data", "method"):
        if not isinstance(config[key], str):
            raise UnreadableFile(path, f"{key!r} is a JSON {json_type(config[key])} where a string is expected")
    layers = config["layers"]
    if not (isinstance(layers, list) and len(layers) >= 2
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in layers)):
        raise UnreadableFile(path, f"'layers' is {json.dumps(layers)} where a list of at least two sizes >= 1 "
                                   "is expected")
    return config


def read_history(path) -> list:
    """A run's history.json, checked: a list of epoch records, each a JSON object with its ``epoch``
    whose values are numbers, null (not finite) or lists of them (per layer)."""
    what = "a run's per-epoch history (history.json of 'refprune train')"
    history = read_json(path, list, what)
    for i, rec in enumerate(history, start=1):
        if not isinstance(rec, dict):
            raise UnreadableFile(path, f"record {i} is a JSON {json_type(rec)} where an object is expected")
        require_keys(rec, ["epoch"], path, f"{what}: record {i}")
        for key, value in rec.items():
            items = value if isinstance(value, list) else [value]
            if not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in items):
                raise UnreadableFile(path, f"record {i}: {key!r} is a JSON {json_type(value)} where a number "
                                           "(or a list of numbers) is expected")
    return history


STEP_KEYS = ("r", "tau", "t", "loss")


def read_steps(path) -> dict:
    """A run's steps.npz, checked: r, τ, t and the loss at every step, as numbers."""
    what = "a run's per-step trace (steps.npz of 'refprune train')"
    steps = read_npz(path, what)
    require_keys(steps, STEP_KEYS, path, what)
    for key, value in steps.items():
        check_dtype(path, key, value, "biuf")
        if np.ndim(value) not in (1, 2):
            raise UnreadableFile(path, f"key {key!r} has shape {np.shape(value)} where one value (or one per "
                                       "layer) per step is expected")
    return steps


def write_run(out: Path, result: dict, config: dict) -> dict:
    """Write every file of a finished run; returns the summary with sizes added."""
    out.mkdir(parents=True, exist_ok=True)
    history = result["history"]
    write_json(out / CONFIG, config)
    write_json(out / "history.json", history.epochs)
    write_npz(out / "steps.npz", **{k: np.asarray(v) for k, v in history.steps.items()})
    write_npz(out / "params.npz", **params_arrays(result["weights"], result["biases"]))
    sizes = save_sparse(out / "model_sparse.npz", result["weights"], result["biases"])
    summary = {**result["summary"], **sizes}
    write_json(out / "summary.json", summary)
    return summary


def check_batch_size(data: Dataset, cfg: TrainConfig) -> None:
    """Raise unless a batch fits in the training rows (of one process, under a data-parallel protocol)."""
    n, world = data.x_train.shape[0], world_size(cfg.protocol)
    rows = -(-n // world)
    if cfg.batch_size > rows:
        each = f" that each of the {world} {cfg.protocol} processes gets ({n} in all)" if world > 1 else ""
        raise ValueError(f"batch_size {cfg.batch_size} is larger than the {rows} training rows of {data.name}"
                         f"{each}: choose at most {rows}")


def check_tau0(layers, cfg: TrainConfig) -> None:
    """Before any work: raise unless every initial τ = τ0 × std(initial weights) is where the soft mask is stable.

    The range is [TAU_STABLE_MIN, TAU_STABLE_MAX] (:mod:`refprune.core.masks`); a dense run has no τ.
    """
    if cfg.method != "lrp":
        return
    taus = init_state(layers, cfg)[0].taus
    stds = [tau / cfg.tau0 for tau in taus]
    for g, tau in enumerate(taus):
        if not TAU_STABLE_MIN <= tau <= TAU_STABLE_MAX:
            which = f"τ_{g + 1}" if len(taus) > 1 else "τ"
            low, high = max(TAU_STABLE_MIN / s for s in stds), min(TAU_STABLE_MAX / s for s in stds)
            raise ValueError(f"tau0 {cfg.tau0:g} gives the initial {which} = {tau:.3g} (tau0 × {stds[g]:.3g}, the std "
                             f"of the initial weights), outside [{TAU_STABLE_MIN:g}, {TAU_STABLE_MAX:g}] where the "
                             f"soft mask is stable: for these layers choose tau0 in [{low:.3g}, {high:.3g}]")


def check_resumable(path, layers, cfg: TrainConfig) -> int:
    """Before any work: restore the checkpoint at ``path`` into a fresh state of this run; its epochs.

    Raises :class:`refprune.util.io.UnreadableFile` naming the file if it is damaged, truncated, of
    another format or does not fit the run; nothing is written.
    """
    state, rng = init_state(layers, cfg)
    try:
        return load_checkpoint(path, state, rng, new_history(cfg))[0]
    except UnreadableFile as exc:
        if "--overwrite" in exc.problem:
            raise
        raise UnreadableFile(exc.path, f"{exc.problem}; the run cannot be resumed from it: start it again "
                                       "with --overwrite") from None


def check_out(out: Path, *, overwrite: bool, resume: bool) -> None:
    """Raise unless ``out`` can become this run's directory (nothing is changed here)."""
    if overwrite and resume:
        raise ValueError("overwrite and resume exclude each other")
    if out.exists() and not out.is_dir():
        raise ValueError(f"out {out} is an existing file, not a directory")
    if resume:
        if not (out / CHECKPOINT).is_file():
            raise ValueError(f"resume: {out} has no {CHECKPOINT} to resume from")
        return
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ValueError(f"out {out} already exists: pass --overwrite to replace it or --resume to continue it")
        if not (out / CONFIG).is_file():
            raise ValueError(f"out {out} is not a run directory (no {CONFIG}): refusing to replace it")
    parent = next(p for p in (out, *out.parents) if p.exists())
    try:
        tempfile.TemporaryFile(dir=parent).close()
    except OSError as exc:
        raise ValueError(f"out {out} cannot be written ({parent}: {exc.strerror})") from None


def check_same_config(out: Path, config: dict) -> None:
    """For a resume: raise unless the run in ``out`` was started with this configuration."""
    old = read_config(out / CONFIG)
    if "split_seed" in config and "split_seed" not in old:
        old["split_seed"] = old.get("seed")  # a run made when the training seed also split the data
    diff = [k for k in sorted(set(old) | set(config)) if old.get(k) != config.get(k)]
    if diff:
        k = diff[0]
        raise ValueError(f"resume: the run in {out} was started with {k} = {old.get(k)!r}, not {config.get(k)!r}")


def prepare_run(cfg: TrainConfig, task: TaskSpec, out: Path, *, overwrite: bool = False,
                resume: bool = False) -> RunPlan:
    """Check everything before any work: the output location, the data, the layer sizes.

    Raises ValueError (naming the option) on any problem; changes nothing on disk.
    """
    out = Path(out)
    check_out(out, overwrite=overwrite, resume=resume)
    if cfg.loss != LOSS_OF_TASK[task.data]:
        raise ValueError(f"loss {cfg.loss!r} does not fit --data {task.data} (it needs {LOSS_OF_TASK[task.data]!r})")
    layers = tuple(task.layer_sizes())
    check_memory(layers, np.dtype(cfg.dtype).itemsize, EVAL_BATCH)
    data = task.load()
    check_widths(data, layers)
    check_batch_size(data, cfg)
    check_tau0(layers, cfg)
    plan = RunPlan(cfg, task, data, layers, out, resume)
    if resume:
        check_same_config(out, plan.config())
        check_resumable(out / CHECKPOINT, layers, cfg)
    return plan


def start_run(plan: RunPlan) -> None:
    """Create (or, with overwrite, replace) the run directory and write its config.json."""
    if not plan.resume:
        if plan.out.is_dir():
            shutil.rmtree(plan.out)
        write_json(plan.out / CONFIG, plan.config())


def run_training(plan: RunPlan, log=print, progress=None) -> dict:
    """Train a prepared run with a checkpoint every epoch; write the run directory.

    Parameters
    ----------
    plan : RunPlan
        From :func:`prepare_run`.
    log : callable or None
        Receives the header, one line per epoch and the result lines.
    progress : callable, optional
        Passed to :func:`refprune.train.loop.train`.

    Returns
    -------
    dict
        The summary (summary.json).
    """
    cfg, data, out = plan.cfg, plan.data, plan.out
    start_run(plan)
    say = log or (lambda line: None)
    say(f"{'resuming' if plan.resume else 'training'} {cfg.method}"
        f"{' (' + cfg.variant + ')' if cfg.method == 'lrp' else ''} on {data.name}, "
        f"layers {','.join(map(str, plan.layers))}, {data.x_train.shape[0]} training rows, "
        f"{cfg.epochs} epochs of batch {cfg.batch_size}")
    result = train(data, plan.layers, cfg, log=log, checkpoint=out / CHECKPOINT, resume=plan.resume,
                   progress=progress)
    summary = write_run(out, result, plan.config())
    metric = "test_accuracy" if "test_accuracy" in summary else "test_r2"
    say(f"done in {summary['seconds']:.1f}s: {metric} {summary[metric]:.4f}, sparsity {summary['sparsity']:.4f} "
        f"(compression {summary['compression']:.2f}x), r {summary['r']:.4f}, tau {summary['tau']:.3e}; "
        f"weights {summary['dense_bytes']} bytes dense, {summary['sparse_bytes']} bytes sparse")
    say(f"results in {out}")
    return summary


def completed_epochs(out: Path) -> int:
    """Epochs saved in the run directory's checkpoint (0 if none)."""
    return saved_epoch(out / CHECKPOINT)
