"""Direct Gaussian KDE of the weight magnitudes, its CDF, and the bandwidth rules.

The density f of the magnitudes a_i = |w_i| gives dt/dr = 1/f(t) (thesis eq.
(2.16)); it is estimated with a Gaussian KDE (thesis eq. (2.17)), bandwidth
by Scott's rule (eq. (2.19)) or Silverman's (eq. (2.18)). ``direct_kde`` and
``direct_kde_cdf`` are the exact sums of n Gaussians (and of n normal CDFs),
O(n) per point, evaluated in blocks so memory stays bounded: the reference
every faster estimate is tested against (the training step's one-point sum in
the samples' own dtype is ``refprune.train.kernels.kde_at_point``).

Reflection at 0 (``reflect=True``): magnitudes are >= 0, but a plain Gaussian
KDE puts mass below 0. The reflected estimate
f̂_R(x) = (1/(nh)) Σ_i [φ((x − a_i)/h) + φ((x + a_i)/h)] for x >= 0 (0 below)
is the plain KDE of the sample {a_i} ∪ {−a_i}, folded onto [0, ∞); it
integrates to 1 over [0, ∞) and its CDF has F̂_R(0) = 0.

All densities here are computed in float64, whatever the input dtype.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from refprune.core.validation import check_array, check_choice, check_positive

# "scott": σ̂·n^(−1/5) (thesis eq. (2.19)); "silverman": 0.9·min(σ̂, IQR/1.34)·n^(−1/5)
# (eq. (2.18)); "normal_reference": 1.06·σ̂·n^(−1/5), what the published code calls
# "silverman" (METHOD §6 P5).
BANDWIDTH_RULES = ("scott", "silverman", "normal_reference")
# Degrees of freedom of σ̂: 1 (sample std, scipy's gaussian_kde) or 0 (NumPy's
# default np.std, the published code's, METHOD §6 P5).
DDOFS = (0, 1)

# 1/sqrt(2π), the peak of the standard normal density φ.
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


# Direct sums are done in blocks of at most this many (point, sample) pairs,
# ~8 MB per float64 temporary, so n = 1e6 samples × 1e4 points never
# allocates an n × m array.
_BLOCK_ELEMENTS = 2**20

# --------------------------------------------------------------------------
# validation helpers


def check_samples(samples, reflect: bool = False) -> np.ndarray:
    """Samples as a 1-D float64 array; non-negative when reflecting.

    Examples
    --------
    >>> from refprune.density.kde import check_samples
    >>> check_samples([0.5, 2], reflect=True).tolist()
    [0.5, 2.0]
    >>> check_samples([-0.5, 2], reflect=True)
    Traceback (most recent call last):
        ...
    ValueError: samples must be >= 0 when reflect=True (they are magnitudes), got min ...
    """
    a = check_array(samples, "samples", ndim=1, dtype=np.float64)
    if reflect and a.min() < 0.0:
        raise ValueError(
            f"samples must be >= 0 when reflect=True (they are magnitudes), "
            f"got min {a.min()!r}")
    return a


def check_points(points) -> np.ndarray:
    """Points as a float64 array of any shape (possibly empty).

    Examples
    --------
    >>> from refprune.density.kde import check_points
    >>> check_points(0.5).shape, check_points([]).shape, check_points([[1, 2]]).dtype.name
    ((), (0,), 'float64')
    """
    return check_array(points, "points", allow_empty=True, dtype=np.float64)


def check_ddof(ddof) -> int:
    """``ddof`` as an int, or raise unless it is 0 or 1.

    Examples
    --------
    >>> from refprune.density.kde import check_ddof
    >>> check_ddof(1)
    1
    >>> check_ddof(True)
    Traceback (most recent call last):
        ...
    ValueError: ddof must be 0 or 1, got True
    """
    if isinstance(ddof, bool) or not isinstance(ddof, (int, np.integer)) or int(ddof) not in DDOFS:
        raise ValueError(f"ddof must be 0 or 1, got {ddof!r}")
    return int(ddof)


def check_flag(value, name: str) -> bool:
    """``value`` as a bool, or raise unless it is a (NumPy) bool.

    Examples
    --------
    >>> from refprune.density.kde import check_flag
    >>> check_flag(True, "reflect")
    True
    >>> check_flag(1, "reflect")
    Traceback (most recent call last):
        ...
    ValueError: reflect must be a bool, got 1
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return bool(value)


# --------------------------------------------------------------------------
# bandwidth


def bandwidth(samples, rule: str = "scott", ddof: int = 1) -> float:
    """Kernel bandwidth h by Scott's or Silverman's rule.

    Parameters
    ----------
    samples : array_like, shape (n,)
        The data (weight magnitudes), n >= 2, not all equal.
    rule : {"scott", "silverman", "normal_reference"}
        Scott: h = σ̂·n^(−1/5) (thesis eq. (2.19), d = 1).
        Silverman: h = 0.9·min(σ̂, IQR/1.34)·n^(−1/5) (thesis eq. (2.18));
        σ̂ alone if the IQR is 0.
        Normal reference: h = 1.06·σ̂·n^(−1/5), the published code's
        "silverman" (METHOD §6 P5).
    ddof : {0, 1}
        Degrees of freedom of σ̂: 1 (default) or NumPy's default 0, as the
        published code (METHOD §6 P5).

    Returns
    -------
    float
        h > 0.

    Notes
    -----
    By default σ̂ is the sample standard deviation with ddof = 1, which makes Scott's h
    equal to the bandwidth of ``scipy.stats.gaussian_kde``'s default
    (``factor * sqrt(cov)``). The IQR uses NumPy's default (linear)
    percentile interpolation.

    References
    ----------
    Thesis §2.4.2, eqs. (2.18)–(2.19).

    Examples
    --------
    Scott's h on five numbers, and scipy's ``gaussian_kde`` bandwidth, which it equals:

    >>> import numpy as np
    >>> from scipy.stats import gaussian_kde
    >>> from refprune.density.kde import bandwidth
    >>> a = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    >>> h = bandwidth(a)                       # sqrt(2.5)·5^(−1/5)
    >>> round(h, 6)
    1.145977
    >>> bool(np.isclose(h, gaussian_kde(a).factor * np.std(a, ddof=1)))
    True
    """
    check_choice(rule, "rule", BANDWIDTH_RULES)
    ddof = check_ddof(ddof)
    a = check_samples(samples)
    n = a.size
    if n < 2:
        raise ValueError(f"samples must hold at least 2 values for a bandwidth, got {n}")
    sigma = float(np.std(a, ddof=ddof))
    if not sigma > 0.0:
        raise ValueError("samples have zero spread (all values equal): no bandwidth")
    if rule == "scott":
        return sigma * n ** (-0.2)  # thesis eq. (2.19)
    if rule == "normal_reference":
        return 1.06 * sigma * n ** (-0.2)  # the published "silverman" (METHOD §6 P5)
    q25, q75 = np.percentile(a, [25.0, 75.0])
    iqr = float(q75 - q25)
    spread = min(sigma, iqr / 1.34) if iqr > 0.0 else sigma
    return 0.9 * spread * n ** (-0.2)  # thesis eq. (2.18)


# --------------------------------------------------------------------------
# direct (exact) KDE and its CDF


def phi(u: np.ndarray) -> np.ndarray:
    """Standard normal density φ(u) = e^{−u²/2}/sqrt(2π).

    Examples
    --------
    >>> from refprune.density.kde import phi
    >>> round(float(phi(0.0)), 6), round(float(phi(1.0)), 6)
    (0.398942, 0.241971)
    """
    return _INV_SQRT_2PI * np.exp(-0.5 * u * u)


def _blocked_sum(samples: np.ndarray, points: np.ndarray, term) -> np.ndarray:
    """Σ_i term(x_p, a_i) for every point x_p, in bounded-memory blocks.

    ``term(x, a)`` gets x of shape (p, 1) and a of shape (1, s) and returns a
    (p, s) array; at most ``_BLOCK_ELEMENTS`` pairs are formed at once.
    """
    x_all = points.ravel()
    out = np.zeros(x_all.size)
    step_a = min(samples.size, _BLOCK_ELEMENTS)
    step_x = max(1, _BLOCK_ELEMENTS // step_a)
    for p0 in range(0, x_all.size, step_x):
        x = x_all[p0:p0 + step_x, None]
        acc = np.zeros(x.shape[0])
        for i0 in range(0, samples.size, step_a):
            acc += term(x, samples[None, i0:i0 + step_a]).sum(axis=1)
        out[p0:p0 + step_x] = acc
    return out.reshape(points.shape)


def direct_kde(samples, points, h, reflect: bool = False) -> np.ndarray:
    """Exact Gaussian KDE f̂ at the given points.

    Parameters
    ----------
    samples : array_like, shape (n,)
        The data a_i (>= 0 if ``reflect``).
    points : array_like, any shape
        Where to evaluate.
    h : float
        Bandwidth, > 0.
    reflect : bool
        Reflect the kernel at 0 (see Notes).

    Returns
    -------
    ndarray, same shape as ``points``, float64
        f̂(x) = (1/(n h)) Σ_i φ((x − a_i)/h)  (thesis eq. (2.17)); with
        ``reflect``, f̂_R(x) = (1/(n h)) Σ_i [φ((x − a_i)/h) + φ((x + a_i)/h)]
        for x >= 0 and 0 for x < 0, which integrates to 1 over [0, ∞).

    Notes
    -----
    O(n) per point, computed in blocks of at most 2**20 (point, sample) pairs.

    References
    ----------
    Thesis eq. (2.17).

    Examples
    --------
    One sample at 0 with h = 1: f̂(0) = φ(0); reflected at 0 the kernel's lower
    half folds back and f̂_R(0) = 2φ(0):

    >>> from refprune.density.kde import direct_kde
    >>> round(float(direct_kde([0.0], 0.0, h=1.0)), 6)
    0.398942
    >>> round(float(direct_kde([0.0], 0.0, h=1.0, reflect=True)), 6)
    0.797885
    """
    a = check_samples(samples, reflect)
    x = check_points(points)
    h = check_positive(h, "h")
    if not reflect:
        sums = _blocked_sum(a, x, lambda xb, ab: phi((xb - ab) / h))
        return sums / (a.size * h)  # thesis eq. (2.17)
    sums = _blocked_sum(a, x, lambda xb, ab: phi((xb - ab) / h) + phi((xb + ab) / h))
    return np.where(x >= 0.0, sums / (a.size * h), 0.0)  # eq. (2.17), reflected at 0


# Beyond this many bandwidths the Gaussian kernel is below e^{-32} ≈ 1e-14 of
# its peak: the reflected term φ((x + a)/h) can be skipped once x >= REACH·h.
KERNEL_REACH = 8.0


def direct_kde_cdf(samples, points, h, reflect: bool = False) -> np.ndarray:
    """Exact CDF F̂ of the Gaussian KDE at the given points.

    Parameters
    ----------
    samples : array_like, shape (n,)
        The data a_i (>= 0 if ``reflect``).
    points : array_like, any shape
        Where to evaluate.
    h : float
        Bandwidth, > 0.
    reflect : bool
        CDF of the estimate reflected at 0.

    Returns
    -------
    ndarray, same shape as ``points``, float64
        F̂(x) = (1/n) Σ_i Φ((x − a_i)/h); with ``reflect``,
        F̂_R(x) = (1/n) Σ_i [Φ((x − a_i)/h) − Φ((−x − a_i)/h)] for x >= 0 and
        0 below, so F̂_R(0) = 0 exactly.

    Notes
    -----
    Φ is ``scipy.special.ndtr``. In the reflected form the subtracted term has
    a non-positive argument, so it is <= 1/2 and no catastrophic cancellation
    occurs.

    Examples
    --------
    One sample at 0: half the plain estimate's mass lies below 0; the reflected
    estimate has none there.

    >>> from refprune.density.kde import direct_kde_cdf
    >>> float(direct_kde_cdf([0.0], 0.0, h=1.0)), float(direct_kde_cdf([0.0], 0.0, h=1.0, reflect=True))
    (0.5, 0.0)
    """
    a = check_samples(samples, reflect)
    x = check_points(points)
    h = check_positive(h, "h")
    if not reflect:
        return _blocked_sum(a, x, lambda xb, ab: ndtr((xb - ab) / h)) / a.size
    sums = _blocked_sum(a, x, lambda xb, ab: ndtr((xb - ab) / h) - ndtr((-xb - ab) / h))
    return np.where(x >= 0.0, sums / a.size, 0.0)

