"""Checkpoints of a training run: every number the next step depends on, in one atomic .npz.

:func:`save_checkpoint` walks the training state's dataclass fields (and
nested ones, such as the Adam states) and stores every array and scalar, plus
the NumPy Generator's ``bit_generator.state``, the history and the epoch.
:class:`Checkpointer` takes one at the end of every epoch and writes it to
disk at most every few seconds (and always on Ctrl-C, on divergence and at
the end).
:func:`load_checkpoint` writes them back, in place, into a freshly
initialised state of the same run, so views (each layer's weights are views
of one flat buffer) stay views. Continuing from a checkpoint gives results
bitwise identical to an uninterrupted run (tested).

Fields marked :data:`NOT_SAVED` (dataclass field metadata) are not saved: they are
derived from the run's configuration when the state is made (the per-layer weights are
views of ``flat_w``, the grouping and its fractions come from the config). The fast
path's scratch is not in the state at all (:mod:`refprune.train.steps.workspace`). A
field of a type the walker does not know raises TypeError, so a new kind of state cannot
be dropped silently.
"""

from __future__ import annotations

import importlib
import json
import math
import time
from dataclasses import fields, is_dataclass
from pathlib import Path

import numpy as np

from refprune.util.io import (
    UnreadableFile,
    check_dtype,
    json_type,
    read_npz,
    reading,
    require_keys,
    write_npz,
)

CHECKPOINT = "checkpoint.npz"
FORMAT_VERSION = 2  # 2: r, τ and t per group (rs, taus, ts); no selection bracket
NOT_SAVED = {"checkpoint": False}  # field metadata of what a fresh state of the same run already has


def saved(f) -> bool:
    """Whether a dataclass field is state to checkpoint (not marked :data:`NOT_SAVED`)."""
    return f.metadata.get("checkpoint", True)


def state_arrays(obj, prefix: str = "") -> tuple[dict, dict]:
    """(arrays by key, kind of each field by key) of a dataclass object's state."""
    arrays, kinds = {}, {}
    for f in fields(obj):
        if not saved(f):
            continue
        key, value = prefix + f.name, getattr(obj, f.name)
        if is_dataclass(value):
            sub_arrays, sub_kinds = state_arrays(value, key + ".")
            arrays.update(sub_arrays)
            kinds.update(sub_kinds)
            kinds[key] = f"dataclass:{type(value).__module__}:{type(value).__qualname__}"
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if not isinstance(item, (np.ndarray, float, int)):
                    raise TypeError(f"cannot checkpoint {key}[{i}] of type {type(item).__name__}")
                arrays[f"{key}.{i}"] = np.asarray(item)
            kinds[key] = ["array" if isinstance(item, np.ndarray) else type(item).__name__ for item in value]
        elif value is None:
            kinds[key] = "none"
        elif isinstance(value, (np.ndarray, bool, int, float, np.generic)):
            arrays[key] = np.asarray(value)
            kinds[key] = "array" if isinstance(value, np.ndarray) else type(value).__name__
        else:
            raise TypeError(f"cannot checkpoint field {key} of type {type(value).__name__}")
    return arrays, kinds


def restore_state(obj, arrays, kinds: dict, prefix: str = "") -> None:
    """Write saved state back into ``obj`` (a fresh state of the same run), arrays in place."""
    for f in fields(obj):
        if not saved(f):
            continue
        key, current = prefix + f.name, getattr(obj, f.name)
        kind = kinds.get(key)
        if kind is None:
            raise ValueError(f"it has no value for {key}: it was written by another version")
        if isinstance(kind, str) and kind.split(":")[0] == "dataclass":
            if current is None:  # state a step creates on first use (e.g. the published step's PublishedState)
                current = new_dataclass(kind, key)
                setattr(obj, f.name, current)
            restore_state(current, arrays, kinds, key + ".")
        elif isinstance(kind, list):
            items = [arrays[f"{key}.{i}"] for i in range(len(kind))]
            if isinstance(current, list) and len(current) == len(items) and all(
                    isinstance(c, np.ndarray) and c.shape == a.shape for c, a in zip(current, items)):
                for c, a in zip(current, items):
                    np.copyto(c, a)
            else:
                setattr(obj, f.name, [a.copy() if k == "array" else _scalar(a, k) for a, k in zip(items, kind)])
        elif kind == "none":
            setattr(obj, f.name, None)
        elif kind == "array":
            if isinstance(current, np.ndarray) and current.shape != arrays[key].shape:
                raise ValueError(f"{key} has shape {arrays[key].shape}, the run's is {current.shape}")
            if isinstance(current, np.ndarray):
                np.copyto(current, arrays[key])
            else:
                setattr(obj, f.name, arrays[key].copy())
        else:
            setattr(obj, f.name, _scalar(arrays[key], kind))


def new_dataclass(kind: str, key: str):
    """A default instance of the dataclass a checkpoint names as ``dataclass:module:qualname``."""
    parts = kind.split(":")
    if len(parts) != 3 or not parts[1].startswith("refprune."):
        raise ValueError(f"checkpoint field {key}: cannot rebuild {kind!r}")
    cls = getattr(importlib.import_module(parts[1]), parts[2])
    return cls()


def _scalar(a: np.ndarray, kind: str):
    value = a.item()
    return {"bool": bool, "int": int, "float": float}.get(kind, lambda v: a[()])(value)


def save_checkpoint(path, state, rng: np.random.Generator, history, epoch: int, seconds: float) -> Path:
    """Write the state after ``epoch`` epochs now (atomically: the old checkpoint survives a crash).

    Parameters
    ----------
    path : path
        The .npz to write.
    state : dataclass
        The training state (:class:`refprune.train.steps.common.TrainState`).
    rng : numpy.random.Generator
        The run's generator (its bit generator's state is saved).
    history : refprune.train.loop.History
    epoch : int
        Completed epochs.
    seconds : float
        Training time so far.
    """
    Checkpointer(path).epoch_end(state, rng, history, epoch, seconds, last=True)
    return Path(path)


CHECKPOINT_FILE = "a refprune training checkpoint"
# The metadata every checkpoint holds, with its JSON type.
META_TYPES = {"format": int, "epoch": int, "seconds": (int, float), "kinds": dict, "rng": dict, "epochs": list}


def checkpoint_meta(path, arrays: dict) -> dict:
    """The checked metadata of a checkpoint's arrays (its ``meta`` key): format, epoch, kinds…"""
    require_keys(arrays, ["meta"], path, CHECKPOINT_FILE)
    text = check_dtype(path, "meta", arrays["meta"], "U", "a JSON string")
    try:
        meta = json.loads(str(text))
    except json.JSONDecodeError:
        raise UnreadableFile(path, "its metadata ('meta') is not valid JSON: the checkpoint is damaged") from None
    if not isinstance(meta, dict):
        raise UnreadableFile(path, f"its metadata ('meta') is a JSON {json_type(meta)}, not an object: "
                                   f"not {CHECKPOINT_FILE}")
    check_format(meta, path)
    for key, kind in META_TYPES.items():
        if key not in meta:
            raise UnreadableFile(path, f"its metadata lacks {key!r}: not {CHECKPOINT_FILE}")
        if isinstance(meta[key], bool) or not isinstance(meta[key], kind):
            raise UnreadableFile(path, f"its metadata's {key!r} is a JSON {json_type(meta[key])}: "
                                       f"not {CHECKPOINT_FILE}")
    return meta


def read_checkpoint(path) -> tuple[dict, dict]:
    """(metadata, arrays by key) of a checkpoint, every array read and checked to hold numbers.

    Raises
    ------
    refprune.util.io.UnreadableFile
        Missing, damaged, truncated, of another format, or holding non-numeric arrays.
    """
    arrays = read_npz(path, f"{CHECKPOINT_FILE} (.npz)")
    meta = checkpoint_meta(path, arrays)
    del arrays["meta"]
    for key, value in arrays.items():
        check_dtype(path, key, value)
    return meta, arrays


def saved_epoch(path) -> int:
    """Completed epochs in the checkpoint at ``path`` (0 if there is none yet)."""
    if not Path(path).exists():
        return 0
    return int(read_checkpoint(path)[0]["epoch"])


def check_format(meta: dict, path) -> None:
    """Raise UnreadableFile unless a checkpoint's metadata says it is of this version's format."""
    found = meta.get("format")
    if found != FORMAT_VERSION:
        older = isinstance(found, int) and found < FORMAT_VERSION
        raise UnreadableFile(path, f"checkpoint format {found}, expected {FORMAT_VERSION}"
                             + ("; it was written by an earlier refprune and cannot be resumed: start the run "
                                "again with --overwrite" if older else ""))


def load_checkpoint(path, state, rng: np.random.Generator, history) -> tuple[int, float]:
    """Restore ``state``, ``rng`` and ``history`` in place; returns (completed epochs, seconds).

    ``state`` is a fresh state of the same run: a checkpoint whose arrays do not
    fit it (another shape, a missing key) raises UnreadableFile naming the file.
    """
    meta, arrays = read_checkpoint(path)
    with reading(path, f"{CHECKPOINT_FILE} of this run"):
        restore_state(state, arrays, meta["kinds"], "state.")
        rng.bit_generator.state = meta["rng"]
        history.epochs[:] = meta["epochs"]
        for key in history.steps:  # scalars per step, or (layer-wise) a list of L values per step
            history.steps[key][:] = [float(v) if np.ndim(v) == 0 else [float(u) for u in v]
                                     for v in arrays[f"steps.{key}"]]
    if any(not isinstance(rec, dict) for rec in history.epochs):
        raise UnreadableFile(path, f"its epoch records are not JSON objects: not {CHECKPOINT_FILE}")
    return int(meta["epoch"]), float(meta["seconds"])


class Checkpointer:
    """Takes a checkpoint at the end of every epoch; writes it at most every ``every`` seconds.

    Taking one copies the state in memory (cheap); writing compresses and
    fsyncs it. Epochs of the synthetic task last milliseconds, and writing each
    would cost more than training, so the checkpoint of the last completed
    epoch is written when ``every`` seconds have passed since the last write,
    at the last epoch, and by :meth:`flush` (on Ctrl-C and on divergence).
    The first epoch is always written.
    """

    def __init__(self, path, every: float = 10.0, clock=time.perf_counter):
        self.path, self.every, self.clock = Path(path), every, clock
        self.written_at = -math.inf
        self.pending = None

    def epoch_end(self, state, rng, history, epoch: int, seconds: float, last: bool = False) -> None:
        """Take the checkpoint of a completed epoch (and write it if due)."""
        arrays, kinds = state_arrays(state, "state.")
        self.pending = ({k: np.array(v, copy=True) for k, v in arrays.items()}, kinds, rng.bit_generator.state,
                        history, len(history.epochs), {k: len(v) for k, v in history.steps.items()}, epoch, seconds)
        if last or self.clock() - self.written_at >= self.every:
            self.flush()

    def flush(self) -> None:
        """Write the last checkpoint taken, if it is not on disk yet."""
        if self.pending is None:
            return
        arrays, kinds, rng_state, history, n_epochs, n_steps, epoch, seconds = self.pending
        meta = {"format": FORMAT_VERSION, "epoch": epoch, "seconds": seconds, "kinds": kinds,
                "rng": rng_state, "epochs": history.epochs[:n_epochs]}
        steps = {f"steps.{k}": np.asarray(v[:n_steps[k]], dtype=np.float64) for k, v in history.steps.items()}
        write_npz(self.path, meta=np.array(json.dumps(meta)), **arrays, **steps)
        self.pending, self.written_at = None, self.clock()
