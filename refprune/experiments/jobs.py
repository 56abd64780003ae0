"""The thesis's experiments as sweep jobs (METHOD §5): what each job runs and what it keeps.

Job kinds, registered in :data:`JOB_KINDS` (a plain dict, see :mod:`refprune.experiments.sweep`):

``train``
    One training run (dense or LRP, either variant) on ``synthetic``,
    ``mnist`` or ``tiny_mnist``; keeps the summary, the per-epoch history, the
    per-step r, τ, t and loss downsampled to at most ``MAX_TRACE`` points, and
    (``keep_masks``) the final hard masks bit-packed, for the heat maps.
``overfit``
    The practical example's fit (Figs. 4.1/4.2): a dense 1-32-32-32-1 network
    trained on one fixed subset (the first ``points`` points of the fixed
    training split, minibatches of ``batch_size``) for ``epochs`` epochs;
    keeps the final loss and R² on that subset.
``post_pruning``
    Train dense on the training split, then prune globally by magnitude at
    each ratio of a grid and evaluate train and validation (Figs. 4.4/4.5).
``pre_pruning``
    Prune the initial weights by magnitude, train with the mask fixed,
    evaluate (Figs. 4.6/4.7); ``ratio`` is one global ratio or a list with
    one ratio per weight matrix (layer by layer). On MNIST-shaped data also
    the test split, and the training's ``train_seconds``.
``finetune_pruning``
    Train dense on MNIST-shaped data, then for each ratio of a list prune
    globally by magnitude, evaluate validation and test, fine-tune
    ``finetune_epochs`` epochs with the mask fixed and evaluate again
    (:func:`refprune.train.baselines.fine_tuned_pruning`); ``sources`` (optional)
    names where each ratio came from, kept beside it.

``tiny_mnist`` is a stand-in for MNIST with the same shapes and classes but
random pixels, small enough for a smoke test (``refprune figures --quick``);
no figure of the index is made from it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from refprune.data.dataset import Dataset
from refprune.data.mnist import find_mnist_files
from refprune.data.tasks import DEFAULT_LAYERS, IDX_TASKS, LOSS_OF_TASK, load_task
from refprune.data.tiny import tiny_mnist
from refprune.experiments.jobs_data import run_data_samples_job
from refprune.train.baselines import (
    fine_tuned_pruning,
    per_ratio_network_pruning,
    post_training_pruning,
    pre_training_pruning,
)
from refprune.train.loop import TrainConfig, config_dict, train
from refprune.util.options import applies
from refprune.util.provenance import file_digests

MNIST_SHAPED = ("mnist", "fashion-mnist", "tiny_mnist")  # 784 inputs, 10 classes
MAX_TRACE = 2000  # per-step traces kept: enough to draw r and τ per backward pass


def job_data(job: dict) -> Dataset:
    """The job's data set: its ``data`` (with ``alpha``, ``data_dir``, ``split_seed``), or the tiny stand-in."""
    if job["data"] == "tiny_mnist":
        return tiny_mnist()
    return load_task(job["data"], alpha=job.get("alpha", 20), data_dir=job.get("data_dir"),
                     seed=job.get("split_seed", 0))


# Stand-ins in a recorded command for what depends on the machine that runs it.
DATA_DIR_PLACEHOLDER = "DATA_DIR"  # the directory holding the data files whose digests the result records
RESULTS_PLACEHOLDER = "RESULTS"


def cli_value(value) -> str:
    """A configuration value as the command line takes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value)) or "none"
    return repr(value) if isinstance(value, float) else str(value)


def train_command(job: dict) -> str | None:
    """The ``refprune train`` command that reproduces a train job bit for bit (None for ``tiny_mnist``).

    Every training option that differs from its default is given, the split seed always for
    MNIST-shaped data; the data directory is :data:`DATA_DIR_PLACEHOLDER`.
    """
    if job["data"] not in ("synthetic", *IDX_TASKS):
        return None
    cfg, default = job_config(job), TrainConfig(loss=LOSS_OF_TASK["mnist" if job["data"] in IDX_TASKS else "synthetic"])
    words = ["refprune", "train", "--data", job["data"]]
    if job["data"] in IDX_TASKS:
        words += ["--data-dir", DATA_DIR_PLACEHOLDER, "--split-seed", str(job.get("split_seed", 0))]
    else:
        words += ["--alpha", str(job.get("alpha", 20))]
    if job.get("layers"):
        words += ["--layers", ",".join(map(str, job["layers"]))]
    defaults = config_dict(default)
    for name, value in config_dict(cfg).items():
        if name != "loss" and value != defaults[name] and applies(cfg, name, cfg):
            words += ["--" + name.replace("_", "-"), cli_value(value)]
    return " ".join(words + ["--out", f"runs/{job['name']}"])


def job_origin(job: dict, group: str | None = None) -> dict:
    """What a stored result records of its inputs: its data files by SHA-256 and how to reproduce it.

    ``reproduce``: the ``refprune train`` command of a train job, else the figures command that
    computes the group's missing jobs (``group``, where known).
    """
    out = {}
    if job.get("data") in IDX_TASKS and job.get("data_dir"):
        out["data_sha256"] = file_digests(find_mnist_files(job["data_dir"], job["data"]).values())
    command = train_command(job) if job["kind"] == "train" else None
    if command is None and group is not None:
        command = (f"refprune figures --only {group} --recompute --results {RESULTS_PLACEHOLDER}"
                   + (f" --data-dir {DATA_DIR_PLACEHOLDER}" if job.get("data") in IDX_TASKS else ""))
    out["reproduce"] = command
    return out


def job_layers(job: dict) -> tuple:
    """The job's layer sizes: its ``layers``, or the default of its data set."""
    base = "mnist" if job["data"] in MNIST_SHAPED else "synthetic"
    return tuple(job.get("layers") or DEFAULT_LAYERS[base])


def job_config(job: dict) -> TrainConfig:
    """The job's :class:`~refprune.train.loop.TrainConfig`: its ``config`` fields, its ``seed``, the task's loss."""
    base = "mnist" if job["data"] in MNIST_SHAPED else "synthetic"
    fields = {k: v for k, v in job.get("config", {}).items()}
    fields.setdefault("loss", LOSS_OF_TASK[base])
    if "deviations" in fields:
        fields["deviations"] = tuple(fields["deviations"])
    return TrainConfig(seed=job.get("seed", 0), **fields)


def downsample(values, limit: int = MAX_TRACE) -> tuple[np.ndarray, np.ndarray]:
    """(step indices, values) keeping at most ``limit`` evenly spaced steps (the last included).

    ``values`` has one entry per step (a layer-wise run's per-layer traces: one row of L values per step).
    """
    values = np.asarray(values, np.float64)
    n = values.shape[0] if values.ndim else 0
    if n <= limit:
        idx = np.arange(n)
    else:
        idx = np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))
    return idx, values[idx]


# Set to a directory, ``train`` jobs checkpoint there every epoch (``<name>.npz``) and a
# job started again resumes from its checkpoint, bitwise as if uninterrupted
# (refprune.train.checkpoint); the checkpoint is removed once the job's result is computed.
# For long sweeps on one machine (a stopped session loses no epoch); unset, jobs write nothing.
JOB_CHECKPOINTS_ENV = "REFPRUNE_JOB_CHECKPOINTS"


def job_checkpoint(job: dict) -> Path | None:
    """Where a train job checkpoints (None unless REFPRUNE_JOB_CHECKPOINTS is set)."""
    where = os.environ.get(JOB_CHECKPOINTS_ENV)
    return Path(where) / f"{job['name']}.npz" if where else None


def run_train_job(job: dict):
    """Kind ``train``: one training run; (record, arrays) with the summary, per-epoch history and per-step traces."""
    data, layers, cfg = job_data(job), job_layers(job), job_config(job)
    log = (lambda line: print(f"    {job['name']}: {line}", flush=True)) if job.get("progress") else None
    checkpoint = job_checkpoint(job)
    if checkpoint is not None:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
    resume = checkpoint is not None and checkpoint.exists()
    result = train(data, layers, cfg, log=log, checkpoint=checkpoint, resume=resume)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    arrays = {}
    for key, values in result["history"].steps.items():
        idx, vals = downsample(values)
        arrays[f"step_{key}"], arrays["step_index"] = vals, idx
    arrays["n_steps"] = np.array(len(result["history"].steps["loss"]))
    if job.get("keep_masks"):
        for l, W in enumerate(result["weights"]):
            arrays[f"mask{l + 1}"] = np.packbits(W != 0, axis=None)
            arrays[f"mask{l + 1}_shape"] = np.array(W.shape)
    record = {"summary": result["summary"], "epochs": result["history"].epochs,
              "config": config_dict(cfg), "layers": list(layers)}
    return record, arrays


def unpack_mask(arrays: dict, layer: int) -> np.ndarray:
    """A kept hard mask (1-based layer) as a bool array of the weight's shape."""
    shape = tuple(arrays[f"mask{layer}_shape"])
    bits = np.unpackbits(arrays[f"mask{layer}"], count=int(np.prod(shape)))
    return bits.reshape(shape).astype(bool)


def task_loss(job: dict) -> str:
    """The loss of the job's task: cross-entropy for MNIST-shaped data, MSE for the synthetic task."""
    return LOSS_OF_TASK["mnist" if job["data"] in MNIST_SHAPED else "synthetic"]


def dense_config(job: dict) -> TrainConfig:
    """Dense, the task's loss, Adam at the job's ``lr`` (default 1e-3): ``epochs`` epochs of batch ``batch_size`` (thesis §4.1)."""
    return TrainConfig(method="dense", loss=task_loss(job), epochs=job["epochs"], lr=job.get("lr", TrainConfig.lr),
                       batch_size=job["batch_size"], seed=job["seed"])


def first_batch(data: Dataset, size: int) -> Dataset:
    """The first ``size`` training points as a data set of their own (the overfitted batch)."""
    x, y = data.x_train[:size], data.y_train[:size]
    return Dataset(f"{data.name}[batch {size}]", data.task, x, y, x, y, x, y)


def run_overfit_job(job: dict):
    """Kind ``overfit``: a dense network trained on the first batch alone; (record with final loss and R², {})."""
    data = first_batch(job_data(job), job.get("points", job["batch_size"]))
    result = train(data, job_layers(job), dense_config(job), log=None)
    last = result["history"].epochs[-1]
    record = {"alpha": job["alpha"], "seed": job["seed"],
              "loss": last["train_loss_dense"], "r2": last["train_r2_dense"]}
    return record, {}


POST_PRUNING_HYPOTHESES = ("shared", "per_ratio_network", "finetune")


def run_post_pruning_job(job: dict):
    """Post-training pruning as ``job["hypothesis"]`` says (default "shared": one network, pruned at every ratio).

    "per_ratio_network": a fresh dense network per ratio
    (:func:`refprune.train.baselines.per_ratio_network_pruning`; fine-tuned after pruning if
    the job has ``finetune_epochs``); "finetune": one network,
    pruned at each ratio and fine-tuned ``finetune_epochs`` epochs with the mask
    fixed (:func:`refprune.train.baselines.fine_tuned_pruning`; the scores after fine-tuning).
    """
    data, layers, cfg = job_data(job), job_layers(job), dense_config(job)
    hypothesis = job.get("hypothesis", "shared")
    if hypothesis == "per_ratio_network":
        records = per_ratio_network_pruning(data, layers, cfg, job["ratios"], job.get("finetune_epochs", 0))
    elif hypothesis == "finetune":
        rec = fine_tuned_pruning(data, layers, cfg, job["ratios"], job["finetune_epochs"], splits=("train", "val"))
        records = [{"ratio": r["ratio"], **r["finetuned"]} for r in rec["by_ratio"]]
    elif hypothesis == "shared":
        records = post_training_pruning(data, layers, cfg, job["ratios"])
    else:
        raise ValueError(f"post_pruning hypothesis must be one of {POST_PRUNING_HYPOTHESES}, got {hypothesis!r}")
    return {"alpha": job["alpha"], "seed": job["seed"], "hypothesis": hypothesis, "by_ratio": records}, {}


def run_pre_pruning_job(job: dict):
    """Kind ``pre_pruning``: pruning at initialisation at ``job["ratio"]``, then training with the mask fixed."""
    data = job_data(job)
    splits = ("train", "val", "test") if job["data"] in MNIST_SHAPED else ("train", "val")
    start = time.perf_counter()
    rec = pre_training_pruning(data, job_layers(job), dense_config(job), job["ratio"], splits)
    head = {"alpha": job["alpha"]} if "alpha" in job else {"data": job["data"], "train_seconds": time.perf_counter() - start}
    return {**head, "seed": job["seed"], **rec}, {}


def run_finetune_pruning_job(job: dict):
    """Kind ``finetune_pruning`` (MNIST-shaped data): prune a trained network at each ratio, then fine-tune."""
    if job["data"] not in MNIST_SHAPED:
        raise ValueError(f"finetune_pruning is for MNIST-shaped data {list(MNIST_SHAPED)}, got {job['data']!r}")
    rec = fine_tuned_pruning(job_data(job), job_layers(job), dense_config(job), job["ratios"],
                             job["finetune_epochs"])
    for r, source in zip(rec["by_ratio"], job.get("sources") or [None] * len(rec["by_ratio"])):
        r["source"] = source
    return {"data": job["data"], "seed": job["seed"], **rec}, {}


# The job registry: kind → function(job) -> (record, arrays). A plain dict, so a
# worker of any start method or machine finds every kind by importing this
# module; job dicts name their kind, and results depend on nothing else.
JOB_KINDS = {
    "train": run_train_job,
    "overfit": run_overfit_job,
    "post_pruning": run_post_pruning_job,
    "pre_pruning": run_pre_pruning_job,
    "finetune_pruning": run_finetune_pruning_job,
    "data_samples": run_data_samples_job,
}
