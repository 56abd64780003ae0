"""Atomic result files: a file is either absent or complete, never half-written.

Each writer writes to a temporary file in the destination's directory, flushes
and fsyncs it, then renames it over the destination (``os.replace`` is atomic
on POSIX and Windows within one file system). The file gets the permissions
a plain ``open`` would give it (0o666 minus the umask), not mkstemp's 0o600.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np


def current_umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path, write) -> Path:
    """Write a file atomically: ``write(fh)`` fills a binary temporary file, renamed over ``path``.

    Parameters
    ----------
    path : path
        Destination; its directory is created if missing.
    write : callable
        Receives the open binary file handle.

    Returns
    -------
    Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())  # as open() would create it
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path




def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def write_json(path, obj) -> Path:
    """Write ``obj`` as indented JSON, atomically (inf/nan written as JSON null)."""
    text = json.dumps(_finite(obj), indent=2, default=_json_default) + "\n"
    return atomic_write(path, lambda fh: fh.write(text.encode()))


def _finite(obj):
    """Replace non-finite floats by None, so the file is strict JSON."""
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


# Every .npz member gets this zip timestamp (the earliest zip can hold), not the
# wall clock as numpy.savez_compressed gives it: the same arrays give the same bytes.
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)


def write_npz(path, **arrays) -> Path:
    """Write arrays to a compressed .npz, atomically and byte-for-byte deterministically."""
    def write(fh):
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for key, value in arrays.items():
                info = zipfile.ZipInfo(f"{key}.npy", date_time=ZIP_TIMESTAMP)
                info.compress_type = zipfile.ZIP_DEFLATED
                with zf.open(info, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(value))
    return atomic_write(path, write)


def read_json(path):
    """The JSON value of a UTF-8 file."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)
