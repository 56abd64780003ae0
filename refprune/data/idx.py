"""Reading and writing IDX files, the format MNIST and Fashion-MNIST ship in.

Layout (LeCun et al., "THE MNIST DATABASE of handwritten digits")::

    bytes 0–1   0x00 0x00
    byte  2     dtype code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64
    byte  3     number of dimensions d
    4 · d bytes the size of each dimension, big-endian uint32
    the rest    the data, C order, big-endian, exactly prod(sizes) items

Files may be gzip-compressed; compression is recognised by the gzip magic
bytes 1f 8b, not by the file name, so a decompressed file that kept its
``.gz`` name (or the reverse) still reads. Every malformed input raises
:class:`IdxFormatError` whose message begins with the file path and says what
is wrong; a corrupt gzip stream is reported the same way.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib

import numpy as np

from refprune.util.io import UnreadableFile, read_bytes

GZIP_MAGIC = b"\x1f\x8b"

# dtype code -> (big-endian dtype, name used in messages)
IDX_DTYPES = {
    0x08: (np.dtype(">u1"), "unsigned byte"),
    0x09: (np.dtype(">i1"), "signed byte"),
    0x0B: (np.dtype(">i2"), "short (int16)"),
    0x0C: (np.dtype(">i4"), "int (int32)"),
    0x0D: (np.dtype(">f4"), "float (float32)"),
    0x0E: (np.dtype(">f8"), "double (float64)"),
}
_CODE_OF_KIND = {(dt.kind, dt.itemsize): code for code, (dt, _) in IDX_DTYPES.items()}


class IdxFormatError(UnreadableFile):
    """A file is not a well-formed IDX file (or has the wrong content for its role)."""


def idx_code(dtype) -> int:
    """IDX dtype code of a NumPy dtype (any byte order), or raise ``ValueError``."""
    dt = np.dtype(dtype)
    code = _CODE_OF_KIND.get((dt.kind, dt.itemsize))
    if code is None:
        supported = ", ".join(str(d.newbyteorder("=")) for d, _ in IDX_DTYPES.values())
        raise ValueError(f"array dtype {dt} has no IDX code; supported: {supported}")
    return code


def idx_dtype_name(code: int) -> str:
    """Human-readable name of an IDX dtype code, e.g. ``'0x08 (unsigned byte)'``."""
    name = IDX_DTYPES[code][1] if code in IDX_DTYPES else "unknown"
    return f"0x{code:02X} ({name})"


def _file_bytes(path) -> bytes:
    """Contents of ``path``, gunzipped if they start with the gzip magic bytes."""
    raw = read_bytes(path)
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise IdxFormatError(path, f"corrupt gzip stream ({type(exc).__name__}: {exc})") from None


def _parse_header(path, buf: bytes):
    """Return (big-endian dtype, shape, header length) after checking the header."""
    if len(buf) < 4:
        raise IdxFormatError(path, f"too short for an IDX header: {len(buf)} byte(s), need 4")
    if buf[0] != 0 or buf[1] != 0:
        raise IdxFormatError(
            path,
            f"bad magic number 0x{buf[:4].hex().upper()}: the first two bytes must be "
            "0x00 0x00 (is this an IDX file?)",
        )
    code, ndim = buf[2], buf[3]
    if code not in IDX_DTYPES:
        known = ", ".join(idx_dtype_name(c) for c in IDX_DTYPES)
        raise IdxFormatError(path, f"unknown dtype code 0x{code:02X}; known: {known}")
    if ndim == 0:
        raise IdxFormatError(path, "number of dimensions is 0")
    header_len = 4 + 4 * ndim
    if len(buf) < header_len:
        raise IdxFormatError(
            path,
            f"truncated header: {ndim} dimension(s) need {header_len} bytes, "
            f"file has {len(buf)}",
        )
    shape = tuple(int(s) for s in np.frombuffer(buf, dtype=">u4", count=ndim, offset=4))
    return IDX_DTYPES[code][0], shape, header_len


def read_idx(path) -> np.ndarray:
    """Read an IDX file, gzip-compressed or raw.

    Parameters
    ----------
    path : str or os.PathLike
        The file. Compression is detected from its first two bytes.

    Returns
    -------
    ndarray
        Shape as stored in the header, in native byte order, writable. The
        dtype is uint8, int8, int16, int32, float32 or float64 by the header's
        dtype code.

    Raises
    ------
    refprune.util.io.UnreadableFile
        If ``path`` does not exist or cannot be read (the message names it).
    IdxFormatError
        If the gzip stream is corrupt, the header is malformed (magic number,
        dtype code, dimensions), or the payload is not exactly
        prod(shape) · itemsize bytes (truncated or trailing data).
    """
    buf = _file_bytes(path)
    dtype, shape, header_len = _parse_header(path, buf)
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    found = len(buf) - header_len
    if found < expected:
        raise IdxFormatError(
            path,
            f"its header declares shape {shape} of {IDX_DTYPES[idx_code(dtype)][1]}, {expected} bytes of data, but "
            f"{found} bytes follow it: the file is truncated or its header is damaged",
        )
    if found > expected:
        raise IdxFormatError(
            path,
            f"trailing data: expected {expected} bytes of data for shape {shape}, "
            f"found {found} ({found - expected} extra)",
        )
    data = np.frombuffer(buf, dtype=dtype, offset=header_len).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def idx_bytes(array) -> bytes:
    """Encode ``array`` as uncompressed IDX bytes (see the module docstring)."""
    arr = np.asarray(array)
    code = idx_code(arr.dtype)
    if not 1 <= arr.ndim <= 255:
        raise ValueError(f"array must have 1 to 255 dimensions, got {arr.ndim}")
    if any(s >= 2**32 for s in arr.shape):
        raise ValueError(f"array dimensions must be < 2**32, got shape {arr.shape}")
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    big = IDX_DTYPES[code][0]
    return header + np.ascontiguousarray(arr, dtype=big).tobytes()


def write_idx(path, array) -> None:
    """Write ``array`` as an IDX file, gzip-compressed if ``path`` ends with ``.gz``.

    Parameters
    ----------
    path : str or os.PathLike
        Destination; overwritten if it exists.
    array : array_like
        Data of dtype uint8, int8, int16, int32, float32 or float64 (any byte
        order), 1 to 255 dimensions. Other dtypes (int64, bool, ...) raise
        ``ValueError`` rather than being cast silently.

    Notes
    -----
    The gzip header's timestamp is set to 0, so equal arrays give equal files.
    """
    data = idx_bytes(array)
    if os.fspath(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    with open(path, "wb") as fh:
        fh.write(data)
