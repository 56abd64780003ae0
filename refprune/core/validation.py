"""Input checks that raise a clear ``ValueError`` naming the offending argument.

Every public function of refprune validates its inputs with these helpers, so a
user sees ``ValueError: r must be in [0, 1), got 1.5`` rather than a traceback
from deep inside NumPy or a silent NaN. ``assert`` is never used for this:
it disappears under ``python -O``.
"""

from __future__ import annotations

import math

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def check_ratio(r: float, name: str = "r") -> float:
    """Return ``r`` as a float, or raise if it is not a pruning ratio in [0, 1).

    Examples
    --------
    >>> from refprune.core.validation import check_ratio
    >>> check_ratio(0.5)
    0.5
    >>> check_ratio(1.5)
    Traceback (most recent call last):
        ...
    ValueError: r must be in [0, 1), got 1.5
    """
    r = check_finite_scalar(r, name)
    if not 0.0 <= r < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {r!r}")
    return r


def check_positive(value: float, name: str) -> float:
    """Return ``value`` as a float, or raise if it is not finite and > 0.

    Examples
    --------
    >>> from refprune.core.validation import check_positive
    >>> check_positive(2, "lr")
    2.0
    >>> check_positive(0, "lr")
    Traceback (most recent call last):
        ...
    ValueError: lr must be > 0, got 0.0
    """
    value = check_finite_scalar(value, name)
    if not value > 0.0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def check_nonnegative(value: float, name: str) -> float:
    """Return ``value`` as a float, or raise if it is not finite and >= 0.

    Examples
    --------
    >>> from refprune.core.validation import check_nonnegative
    >>> check_nonnegative(0, "lam")
    0.0
    >>> check_nonnegative(-1.0, "lam")
    Traceback (most recent call last):
        ...
    ValueError: lam must be >= 0, got -1.0
    """
    value = check_finite_scalar(value, name)
    if not value >= 0.0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def check_finite_scalar(value, name: str) -> float:
    """Return ``value`` as a Python float, or raise if it is not a finite real scalar.

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.core.validation import check_finite_scalar
    >>> check_finite_scalar(np.float32(0.5), "tau")
    0.5
    >>> check_finite_scalar(float("nan"), "tau")
    Traceback (most recent call last):
        ...
    ValueError: tau must be finite, got nan
    """
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if isinstance(value, bool) or np.ndim(value) != 0:
        raise ValueError(f"{name} must be a real scalar, got {value!r}")
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out!r}")
    return out


def check_array(
    a,
    name: str,
    *,
    ndim: int | None = None,
    allow_empty: bool = False,
    dtype=None,
) -> np.ndarray:
    """Return ``a`` as a floating NumPy array after checking shape and finiteness.

    Parameters
    ----------
    a : array_like
        The input.
    name : str
        Argument name used in the error message.
    ndim : int, optional
        Required number of dimensions.
    allow_empty : bool
        Whether a zero-size array is acceptable.
    dtype : numpy dtype, optional
        Convert to this dtype. By default float32 and float64 inputs keep their
        dtype and every other input is converted to float64.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.core.validation import check_array
    >>> check_array([1, 2], "x").dtype.name, check_array(np.ones(2, np.float32), "x").dtype.name
    ('float64', 'float32')
    >>> check_array([1.0, np.inf], "x")
    Traceback (most recent call last):
        ...
    ValueError: x contains 1 non-finite value(s) (NaN or inf)
    """
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be converted to an array: {exc}") from None
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
    ):
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise ValueError(f"{name} must be real, got a complex array")
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    elif arr.dtype.type not in FLOAT_DTYPES:
        arr = arr.astype(np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
    return arr


def check_choice(value: str, name: str, choices) -> str:
    """Return ``value`` if it is one of ``choices``, else raise naming them.

    Examples
    --------
    >>> from refprune.core.validation import check_choice
    >>> check_choice("ce", "loss", ("ce", "mse"))
    'ce'
    >>> check_choice("l1", "loss", ("ce", "mse"))
    Traceback (most recent call last):
        ...
    ValueError: loss must be one of ['ce', 'mse'], got 'l1'
    """
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value
