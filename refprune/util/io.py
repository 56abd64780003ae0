"""Result files: written atomically, read back with every problem named.

Writing: a file is either absent or complete, never half-written. Each writer
writes to a temporary file in the destination's directory, flushes and fsyncs
it, then renames it over the destination (``os.replace`` is atomic on POSIX and
Windows within one file system). The file gets the permissions a plain
``open`` would give it (0o666 minus the umask), not mkstemp's 0o600.

Reading: :func:`read_bytes`, :func:`read_json` and :func:`read_npz` are the one
way refprune reads a file back. A missing, empty, truncated or damaged file, or
one holding the wrong kind of data, raises :class:`UnreadableFile` (a
ValueError, so the command line reports it as one line with exit status 2)
whose message begins with the file's path and says what is wrong with it.
Readers of a particular file kind check its keys and dtypes with
:func:`require_keys`, :func:`check_dtype` and :func:`reading`.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
import zlib
from contextlib import contextmanager
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


# --------------------------------------------------------------------------
# reading back

ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive's first member, or an empty archive
NPY_SIGNATURE = b"\x93NUMPY"
JSON_TYPES = {dict: "object", list: "list", str: "string", bool: "true/false", int: "number", float: "number",
              type(None): "null"}
NUMBER_KINDS = "biuf"  # NumPy dtype kinds of numbers: bool, signed and unsigned integers, floats


class UnreadableFile(ValueError):
    """A file refprune reads back is missing, damaged, truncated or holds the wrong data.

    The message is ``"<path>: <what is wrong>"``.
    """

    def __init__(self, path, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def read_bytes(path) -> bytes:
    """The bytes of a file; :class:`UnreadableFile` if it is missing or cannot be read."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise UnreadableFile(path, "no such file") from None
    except IsADirectoryError:
        raise UnreadableFile(path, "is a folder, not a file") from None
    except OSError as exc:
        raise UnreadableFile(path, f"cannot be read ({exc.strerror or exc})") from None


def looks_like_text(raw: bytes) -> bool:
    """True if the bytes decode as UTF-8 text without control characters other than whitespace."""
    try:
        head = raw[:512].decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\t\r\n" for c in head)


def json_type(value) -> str:
    """The JSON name of a parsed value's type: object, list, string, number, true/false, null."""
    return JSON_TYPES.get(type(value), type(value).__name__)


def read_json(path, kind: type | None = None, what: str = "a JSON file"):
    """The parsed JSON of a file, checked to be a ``kind`` (``dict`` or ``list``) when given.

    Parameters
    ----------
    path : path
    kind : type, optional
        ``dict`` (a JSON object) or ``list``.
    what : str
        What the file should be, for the messages (``"a run's configuration"``).

    Raises
    ------
    UnreadableFile
        Missing, empty, not UTF-8 text, not valid JSON (damaged or truncated), or not a ``kind``.
    """
    raw = read_bytes(path)
    if not raw.strip():
        raise UnreadableFile(path, f"is empty: expected {what}")
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise UnreadableFile(path, f"is not text: expected {what} (JSON)") from None
    except json.JSONDecodeError as exc:
        raise UnreadableFile(path, f"is damaged or truncated: not valid JSON ({exc.msg} at line {exc.lineno}, "
                                   f"column {exc.colno})") from None
    if kind is not None and not isinstance(value, kind):
        raise UnreadableFile(path, f"holds a JSON {json_type(value)} where a JSON {JSON_TYPES[kind]} is expected: "
                                   f"not {what}")
    return value


def read_npz(path, what: str = "an .npz archive of named arrays") -> dict:
    """Every array of an ``.npz`` file, by key, read in full (no pickled objects).

    Raises
    ------
    UnreadableFile
        Missing, empty, a text file or a single ``.npy`` array, not a zip archive,
        damaged or truncated (a member that cannot be decompressed), or a member
        holding Python objects.
    """
    raw = read_bytes(path)
    if not raw:
        raise UnreadableFile(path, f"is empty (0 bytes): expected {what}")
    if raw.startswith(NPY_SIGNATURE):
        raise UnreadableFile(path, f"holds a single array (.npy): expected {what}")
    if not raw.startswith(ZIP_SIGNATURES):
        kind = "is a text file, not" if looks_like_text(raw) else "is not"
        raise UnreadableFile(path, f"{kind} a readable .npz archive: expected {what}")
    arrays, key = {}, None
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            for key in npz.files:
                arrays[key] = npz[key]
    except ValueError as exc:
        if key is not None and "allow_pickle" in str(exc):
            raise UnreadableFile(path, f"key {key!r} holds Python objects (pickled); only numeric arrays and "
                                       "plain strings are read") from None
        raise UnreadableFile(path, damage(key, exc)) from None
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError, KeyError, NotImplementedError) as exc:
        raise UnreadableFile(path, damage(key, exc)) from None
    return arrays


def damage(key, exc: BaseException) -> str:
    """What is wrong with an archive that np.load could not read (``key``: the member being read)."""
    why = str(exc) or type(exc).__name__
    if key is None:
        return f"is damaged or truncated: not a complete .npz (zip) archive ({why})"
    return f"is damaged or truncated: key {key!r} cannot be read ({why})"


def require_keys(data: dict, keys, path, what: str) -> None:
    """Raise :class:`UnreadableFile` naming the keys of ``keys`` that ``data`` lacks."""
    missing = [key for key in keys if key not in data]
    if missing:
        raise UnreadableFile(path, f"lacks {', '.join(repr(k) for k in missing)}: not {what}")


def check_dtype(path, key: str, value, kinds: str = NUMBER_KINDS, expected: str = "numbers") -> np.ndarray:
    """``value`` as an array, or :class:`UnreadableFile` if its dtype kind is not one of ``kinds``."""
    arr = np.asarray(value)
    if arr.dtype.kind not in kinds:
        raise UnreadableFile(path, f"key {key!r} holds {arr.dtype} data where {expected} are expected")
    return arr


@contextmanager
def reading(path, what: str):
    """Inside: a problem with the content of ``path`` is an :class:`UnreadableFile` naming it.

    A KeyError is a missing key; a ValueError, TypeError, IndexError or
    AttributeError is content of the wrong shape or type (``what`` says what
    the file should be).
    """
    try:
        yield
    except UnreadableFile:
        raise
    except KeyError as exc:
        raise UnreadableFile(path, f"lacks {exc.args[0]!r}: not {what}") from None
    except (ValueError, TypeError, IndexError, AttributeError) as exc:
        raise UnreadableFile(path, f"not {what}: {exc}") from None
