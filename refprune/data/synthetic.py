"""The synthetic regression task of the thesis's practical example (§2.3, §3.1).

The target is

    h(x; α) = sin(αx) · [σ((x + 0.2)/τ_w) − σ((x − 0.2)/τ_w)] · e^(−x²)
              + x³ · cos(αx)                                    thesis eq. (3.1)

with σ the logistic function and τ_w = 0.05 (the thesis writes τ; it is
unrelated to the LRP temperature τ). The first term is a high-frequency burst
inside a smooth window around the origin, the second a polynomial drift that
keeps the signal from being periodic. α, an integer, sets the frequency and so
the difficulty; the thesis sees a 1-32-32-32-1 ReLU network stop fitting a
single batch just after α = 20 (§4.1).

What the thesis states (§3.1, p. 32–33) and is followed here:

- x is evaluated on [−1, 1]; the stored inputs are the same points rescaled
  to [0, 1] ("the points were assigned to a set of inputs with the same size
  but range [0, 1]").
- The outputs are min–max normalised to [0, 1] over the whole data set and
  then multiplied by 10 ("the output was multiplied by 10 for good measure").
- τ_w = 0.05 throughout; only integer α.
- The data are a "direct and noiseless evaluation" of a deterministic
  function, so a single fixed train/validation split is kept for every
  training seed (§2.3, p. 17–18).

Choices
-------
The thesis does not state the number of points, how they are placed, the
split fraction or the batch size. This module fixes them, once, as named
constants:

``N_POINTS = 1000``
    Points on an evenly spaced grid over [−1, 1] (``numpy.linspace``, both
    ends included): deterministic and noiseless, as the thesis describes the
    data set. At α = 25 one period 2π/α ≈ 0.25 spans about 125 grid points,
    so even the highest frequency the thesis studies is finely resolved.
``VAL_FRACTION = 0.2``
    An 80/20 train/validation split (800/200 points), the proportion the
    thesis uses for MNIST (§3.2).
``SPLIT_SEED = 2718``
    The split is a random permutation of the grid drawn from
    ``numpy.random.default_rng(SPLIT_SEED)``. It depends only on
    ``n_points``, ``val_fraction`` and this seed, never on α or on the
    training seed, so every α and every training seed sees the same points in
    the same roles. The value is arbitrary; it is deliberately not one of the
    small integers (0–4) used as training seeds, so that the split and the
    initialisation never come from the same random stream.
``DEFAULT_BATCH_SIZE = 64``
    A mini-batch size for ad hoc training on this task. The figures'
    protocol (:mod:`refprune.experiments.figures.synthetic`) sets its own: batches of 32,
    and a subset of the first 256 training points overfitted in Figs. 4.1/4.2.

Training and validation points are stored in permutation order (not sorted
by x), so the first training points, however many, are spread over the
whole interval. The full sorted grid is kept as ``x_all``/``y_all`` for plots.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from refprune.core.validation import check_array, check_finite_scalar, check_positive

N_POINTS = 1000
VAL_FRACTION = 0.2
SPLIT_SEED = 2718
DEFAULT_BATCH_SIZE = 64
TAU_W = 0.05
WINDOW_HALF_WIDTH = 0.2
X_MIN, X_MAX = -1.0, 1.0
OUTPUT_SCALE = 10.0


@dataclass(frozen=True)
class SyntheticData:
    """One synthetic data set and the settings that produced it.

    All arrays are float64 (the index arrays int64) and read-only.

    Attributes
    ----------
    x_train, y_train : ndarray, shape (n_train, 1)
        Training inputs in [0, 1] and targets in [0, 10].
    x_val, y_val : ndarray, shape (n_val, 1)
        Validation inputs and targets.
    x_all, y_all : ndarray, shape (n_points, 1)
        The whole data set on the sorted grid (for plots, Fig. 3.1/4.3).
    train_index, val_index : ndarray of int64, shapes (n_train,), (n_val,)
        Positions of the training and validation points in ``x_all``.
    alpha : int
        Frequency α of eq. (3.1).
    n_points, val_fraction, seed, tau_w :
        The settings used (see the module's Choices).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_all: np.ndarray
    y_all: np.ndarray
    train_index: np.ndarray
    val_index: np.ndarray
    alpha: int
    n_points: int
    val_fraction: float
    seed: int
    tau_w: float


def target_function(x, alpha: float, tau_w: float = TAU_W) -> np.ndarray:
    """Evaluate h(x; α) of thesis eq. (3.1).

    Parameters
    ----------
    x : array_like, any shape
        Points in the function's own domain (the thesis uses [−1, 1]).
    alpha : float
        Frequency α. Any finite real is accepted here; the data set restricts
        it to integers (:func:`make_synthetic`).
    tau_w : float, optional
        Smoothness τ_w > 0 of the sigmoidal window (thesis: 0.05).

    Returns
    -------
    h : ndarray of float64, same shape as ``x``

    Notes
    -----
    σ is evaluated with ``scipy.special.expit``, which neither overflows nor
    warns for large |z|. h is odd in x: h(−x; α) = −h(x; α).

    References
    ----------
    Thesis §3.1, eq. (3.1).
    """
    x = check_array(x, "x", allow_empty=True, dtype=np.float64)
    alpha = check_finite_scalar(alpha, "alpha")
    tau_w = check_positive(tau_w, "tau_w")
    c = WINDOW_HALF_WIDTH
    window = expit((x + c) / tau_w) - expit((x - c) / tau_w)  # thesis eq. (3.1)
    burst = np.sin(alpha * x) * window * np.exp(-(x * x))  # thesis eq. (3.1), 1st term
    drift = x**3 * np.cos(alpha * x)  # thesis eq. (3.1), 2nd term
    return burst + drift


def check_integer(value, name: str, minimum: int) -> int:
    """Return ``value`` as an int, or raise naming ``name``.

    Integral floats (``20.0``) are accepted; booleans and fractions are not.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not isinstance(value, numbers.Integral):
        if not (math.isfinite(value) and float(value).is_integer()):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    out = int(value)
    if out < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {out}")
    return out


def check_fraction(value, name: str) -> float:
    """Return ``value`` as a float, or raise if it is not in the open interval (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = check_finite_scalar(value, name)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return value


def validation_count(n: int, val_fraction: float, n_name: str = "n") -> int:
    """Number of validation items, round(val_fraction · n) rounding halves up.

    Raises ``ValueError`` naming both arguments if either part would be empty.
    """
    n_val = int(math.floor(val_fraction * n + 0.5))
    if not 1 <= n_val <= n - 1:
        raise ValueError(
            f"val_fraction={val_fraction!r} of {n_name}={n} gives {n_val} validation "
            f"and {n - n_val} training items; both must be at least 1"
        )
    return n_val


def split_indices(n: int, val_fraction: float, rng: np.random.Generator, n_name: str = "n"):
    """Random train/validation split of ``range(n)``.

    Parameters
    ----------
    n : int
        Number of items.
    val_fraction : float
        Fraction in (0, 1) that goes to validation; the count is
        :func:`validation_count`.
    rng : numpy.random.Generator
        Source of the permutation (the only random draw).
    n_name : str
        Name of ``n`` in error messages.

    Returns
    -------
    train_index : ndarray of int64, shape (n − n_val,)
    val_index : ndarray of int64, shape (n_val,)
        Disjoint, together covering ``range(n)``, each in permutation order.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    val_fraction = check_fraction(val_fraction, "val_fraction")
    n_val = validation_count(n, val_fraction, n_name)
    perm = rng.permutation(n).astype(np.int64)
    return perm[n_val:], perm[:n_val]


def min_max_scale(values: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Map ``values`` affinely onto [0, scale]: min → exactly 0, max → exactly ``scale``."""
    lo, hi = values.min(), values.max()
    if not hi > lo:
        raise ValueError("cannot min-max normalise a constant array")
    return scale * ((values - lo) / (hi - lo))


def grid(n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """The evaluation grid on [−1, 1] and the stored inputs on [0, 1], both shape (n_points,)."""
    x = np.linspace(X_MIN, X_MAX, n_points)
    u = (x - X_MIN) / (X_MAX - X_MIN)  # thesis §3.1: inputs rescaled to [0, 1]
    return x, u


def _read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def make_synthetic(
    alpha: int,
    n_points: int = N_POINTS,
    val_fraction: float = VAL_FRACTION,
    seed: int = SPLIT_SEED,
) -> SyntheticData:
    """Build the synthetic data set for frequency α.

    Parameters
    ----------
    alpha : int
        Frequency α >= 0 of eq. (3.1); integral floats such as ``20.0`` are
        accepted, fractions are not (the thesis uses integer α only).
    n_points : int, optional
        Number of grid points on [−1, 1] (>= 2). Default ``N_POINTS``.
    val_fraction : float, optional
        Validation fraction in (0, 1). Default ``VAL_FRACTION``.
    seed : int, optional
        Seed of the *split* (not of training). Default ``SPLIT_SEED``; keep
        it fixed across training seeds, as the thesis does.

    Returns
    -------
    SyntheticData
        Inputs u = (x + 1)/2 in [0, 1] and targets
        y = 10 · (h − min h)/(max h − min h) in [0, 10], min and max taken
        over all ``n_points`` points, so min y = 0 and max y = 10 exactly.

    References
    ----------
    Thesis §2.3 (fixed split), §3.1 (eq. (3.1), normalisation, × 10).
    """
    alpha = check_integer(alpha, "alpha", minimum=0)
    n_points = check_integer(n_points, "n_points", minimum=2)
    seed = check_integer(seed, "seed", minimum=0)
    val_fraction = check_fraction(val_fraction, "val_fraction")
    train_index, val_index = split_indices(
        n_points, val_fraction, np.random.default_rng(seed), n_name="n_points"
    )
    x, u = grid(n_points)
    h = target_function(x, alpha, TAU_W)  # thesis eq. (3.1)
    y = min_max_scale(h, OUTPUT_SCALE)  # thesis §3.1: min-max to [0, 1], then × 10
    x_all, y_all = u[:, None], y[:, None]
    return SyntheticData(
        x_train=_read_only(x_all[train_index]),
        y_train=_read_only(y_all[train_index]),
        x_val=_read_only(x_all[val_index]),
        y_val=_read_only(y_all[val_index]),
        x_all=_read_only(x_all),
        y_all=_read_only(y_all),
        train_index=_read_only(train_index),
        val_index=_read_only(val_index),
        alpha=alpha,
        n_points=n_points,
        val_fraction=val_fraction,
        seed=seed,
        tau_w=TAU_W,
    )
