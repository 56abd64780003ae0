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

from refprune.data.dataset import Dataset
from refprune.data.tasks import LOSS_OF_TASK, TaskSpec, check_memory
from refprune.train.checkpoint import CHECKPOINT, check_resumable
from refprune.train.export import save_sparse
from refprune.train.loop import EVAL_BATCH, TrainConfig, applied_config, check_widths, train
from refprune.util.io import read_json, write_json, write_npz
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
    """(weights, biases) of a params.npz, numbered 1…L (or 0…L−1, as older run directories number them)."""
    with np.load(path) as f:
        first = 0 if "W0" in f.files else 1
        n = sum(1 for k in f.files if k.startswith("W"))
        return ([f[f"W{l}"] for l in range(first, first + n)], [f[f"b{l}"] for l in range(first, first + n)])


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
    old = read_json(out / CONFIG)
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
    plan = RunPlan(cfg, task, data, layers, out, resume)
    if resume:
        check_same_config(out, plan.config())
        check_resumable(out / CHECKPOINT)
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
    path = out / CHECKPOINT
    if not path.is_file():
        return 0
    with np.load(path) as f:
        return int(json.loads(str(f["meta"]))["epoch"])
