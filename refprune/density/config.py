"""The density estimate for dt/dr = 1/f(t): one config, one route.

The threshold t(r) is the r-quantile of the magnitudes a_i = |w_i|, so
F(t(r)) = r and dt/dr = 1/f(t) (thesis eq. (2.16)). :class:`DensityConfig`
is the single way to say how f is estimated; :func:`inverse_density_at` (and
:func:`threshold_dt_dr`, which picks the points) is the single route from a
config to dt/dr. The estimates themselves live in one module each:

:mod:`refprune.density.kde`
    The exact (direct) Gaussian KDE, its CDF, the bandwidth rules (thesis
    eqs. (2.17)–(2.19)) and the one-point hot-path sum.
:mod:`refprune.density.binned`
    The binned FFT KDE of Theorem 2.1 and its O(m²) reference.
:mod:`refprune.density.published`
    The published code's estimate, METHOD §6 P5 in full.
:mod:`refprune.density.quantile`
    The smoothed threshold t̃(r) = F̂⁻¹(r).

Import each name from the module that defines it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refprune.core.gradients import threshold_derivative
from refprune.core.validation import check_choice
from refprune.density.binned import BINNINGS, _check_grid_size, binned_kde, interpolate_density
from refprune.density.kde import (
    BANDWIDTH_RULES,
    bandwidth,
    check_ddof,
    check_flag,
    check_points,
    check_samples,
    direct_kde,
)
from refprune.density.published import published_bandwidth, published_density_at

# "direct": the exact sum; "fft": the binned FFT KDE (Theorem 2.1); "published":
# the published code's estimate, every detail of METHOD §6 P5.
DENSITY_ESTIMATES = ("fft", "direct", "published")

# FFT-based estimates ("fft", "published") carry an absolute round-off of about
# ε_m·log₂(N_F) times the largest density on the grid (N_F the FFT length, at most
# 4·grid_size here). The largest density is at most the kernel's own peak φ(0)/h,
# so values below FFT_ROUNDOFF_FACTOR·ε_m·log₂(4·grid_size)·φ(0)/h are round-off,
# not density, and are reported as 0 (then refused by threshold_derivative).
FFT_ROUNDOFF_FACTOR = 10.0
FFT_METHODS = ("fft", "published")


@dataclass(frozen=True)
class DensityConfig:
    """How the density of the magnitudes is estimated.

    Attributes
    ----------
    rule : {"scott", "silverman", "normal_reference"}
        Bandwidth rule (thesis eqs. (2.19), (2.18); "normal_reference" is
        1.06·σ̂·n^(−1/5), the published code's "silverman").
    grid_size : int
        Grid size m, a power of two >= 16 (methods "fft" and "published").
    binning : {"linear", "nearest"}
        Binning rule (method "fft" only; "published" bins to the nearest
        point, as METHOD §6 P5 says).
    reflect : bool
        Reflect the kernel at 0 (not with "published").
    method : {"fft", "direct", "published"}
        Binned FFT KDE interpolated at the points, the exact sum, or the
        published estimate (METHOD §6 P5 in full: nearest bins by
        int((x − min_grid)/dx + 0.5), kernel sampled on arange(−3h, 3h + dx,
        dx), 'same'-mode FFT convolution, divided by its Riemann sum,
        linear interpolation, σ with ddof 0).
    renormalize : bool
        Rescale the binned estimate to unit area (method "fft"; "published"
        always does, by its Riemann sum).
    ddof : {0, 1}, optional
        Degrees of freedom of σ̂ in the bandwidth: 1 (the sample std, as
        ``scipy.stats.gaussian_kde``) or 0 (NumPy's default, as published).
        Default: 0 for method "published" (P5 uses ``np.std``; any other
        value is refused there), 1 otherwise.

    Notes
    -----
    The defaults — the exact (direct) Gaussian sum, Scott's bandwidth,
    reflected at 0 — come from the study of dt/dr's accuracy (docs/studies.md,
    study 1; docs/derivations.md §7.3 and appendix A7): reflection removes a
    boundary bias of 1/f(t) of up to 29%, and the binned FFT estimate adds
    error and is no faster at one point. ``THESIS_DENSITY`` is the thesis's
    binned FFT estimate (Theorem 2.1), ``PUBLISHED_DENSITY`` the published
    code's (METHOD §6 P5).

    Examples
    --------
    >>> from refprune.density.config import PUBLISHED_DENSITY, THESIS_DENSITY, DensityConfig
    >>> DensityConfig().method, THESIS_DENSITY.method, PUBLISHED_DENSITY.method
    ('direct', 'fft', 'published')
    >>> DensityConfig(method="published")       # P5 bins to the nearest point, unreflected
    Traceback (most recent call last):
        ...
    ValueError: method 'published' is METHOD §6 P5: binning 'nearest', renormalize True, ...
    >>> DensityConfig().ddof, PUBLISHED_DENSITY.ddof       # P5's σ is np.std's: ddof 0
    (1, 0)
    >>> DensityConfig(method="published", binning="nearest", reflect=False, renormalize=True).ddof
    0
    """

    rule: str = "scott"
    grid_size: int = 1024
    binning: str = "linear"
    reflect: bool = True
    method: str = "direct"
    renormalize: bool = False
    ddof: int | None = None

    def __post_init__(self):
        if self.ddof is None:  # the method's own default: P5's np.std has ddof 0
            object.__setattr__(self, "ddof", 0 if self.method == "published" else 1)
        check_choice(self.rule, "rule", BANDWIDTH_RULES)
        _check_grid_size(self.grid_size)
        check_choice(self.binning, "binning", BINNINGS)
        check_flag(self.reflect, "reflect")
        check_choice(self.method, "method", DENSITY_ESTIMATES)
        check_flag(self.renormalize, "renormalize")
        check_ddof(self.ddof)
        if self.method == "published" and (self.reflect or self.binning != "nearest"
                                           or not self.renormalize or self.rule == "silverman"):
            raise ValueError("method 'published' is METHOD §6 P5: binning 'nearest', renormalize "
                             "True, reflect False, rule 'scott' or 'normal_reference'")
        if self.method == "published" and self.ddof != 0:
            raise ValueError(f"method 'published' is METHOD §6 P5, whose σ is np.std's (ddof 0); "
                             f"got ddof {self.ddof} (omit it, or use method 'fft' or 'direct')")


# The thesis's estimate: binned (linear), FFT convolution, m = 1024, Scott, no reflection.
THESIS_DENSITY = DensityConfig(method="fft", binning="linear", reflect=False)
# The published code's (METHOD §6 P5, every detail): Scott with ddof 0 (the method's default).
PUBLISHED_DENSITY = DensityConfig(method="published", binning="nearest", reflect=False,
                                  renormalize=True)


def _estimate(samples, points, config: DensityConfig):
    """(f̂ at points, h, samples as float64)."""
    if not isinstance(config, DensityConfig):
        raise ValueError(f"config must be a DensityConfig, got {type(config).__name__}")
    a = check_samples(samples, config.reflect)
    x = check_points(points)
    if config.method == "published":
        if a.size < 2 or not np.ptp(a) > 0:
            raise ValueError("samples must hold at least 2 distinct values for a bandwidth")
        h = published_bandwidth(a, config.rule, config.ddof)
        return published_density_at(a, x, config.rule, config.ddof, config.grid_size, h), h, a
    h = bandwidth(a, config.rule, config.ddof)
    if config.method == "direct":
        return direct_kde(a, x, h, config.reflect), h, a
    grid, dens = binned_kde(a, h, config.grid_size, config.binning,
                            config.reflect, config.renormalize)
    f = interpolate_density(grid, dens, x)
    # the binned estimate is defined on its grid only; a point outside it
    # (e.g. t = a_1/2 at k = 0) gets the exact direct sum instead
    outside = (x < grid[0]) | (x > grid[-1])
    if np.any(outside):
        f = np.where(outside, direct_kde(a, x, h, config.reflect), f)
    return f, h, a


def density_at(samples, points, config: DensityConfig = DensityConfig()) -> np.ndarray:
    """KDE of ``samples`` evaluated at ``points`` as ``config`` says.

    Parameters
    ----------
    samples : array_like, shape (n,)
        The magnitudes a_i.
    points : array_like, any shape
        Where to evaluate (e.g. the threshold t).
    config : DensityConfig

    Returns
    -------
    ndarray, same shape as ``points``, float64
        The bandwidth comes from ``config.rule`` and ``config.ddof``; method
        "fft" interpolates ``binned_kde`` linearly (outside its grid, where
        the binned estimate is undefined, ``direct_kde`` is used), method
        "direct" is ``direct_kde``, method "published" is
        :func:`refprune.density.published.published_density_at`.

    Examples
    --------
    200 magnitudes evenly spread over [0, 2]: f = 1/2 by every estimate.

    >>> import numpy as np
    >>> from refprune.density.config import PUBLISHED_DENSITY, THESIS_DENSITY, DensityConfig, density_at
    >>> a = (np.arange(200) + 0.5) / 100
    >>> configs = (DensityConfig(), THESIS_DENSITY, PUBLISHED_DENSITY)   # direct, fft, published
    >>> [round(float(density_at(a, 1.0, c)), 3) for c in configs]
    [0.5, 0.5, 0.5]
    """
    return _estimate(samples, points, config)[0]


def inverse_density_at(samples, points, config: DensityConfig = DensityConfig()):
    """dt/dr = 1/f̂ at ``points`` (thesis eq. (2.16)), and f̂ itself.

    Parameters
    ----------
    samples, points, config
        As for ``density_at``.

    Returns
    -------
    inv : ndarray, same shape as ``points``
        1/f̂(x).
    f : ndarray, same shape as ``points``
        f̂(x).

    Raises
    ------
    ValueError
        Where :func:`refprune.core.gradients.threshold_derivative` refuses f̂: not a
        finite, positive, normal float (e.g. a point far outside the data, below 0
        with reflection). For the FFT-based methods, values at or below the FFT's
        round-off level (``FFT_ROUNDOFF_FACTOR``) count as 0. No inf or NaN is ever
        returned.

    Examples
    --------
    |w| uniform on [0, 2] (f = 1/2): raising r by δ raises t by 2δ.

    >>> import numpy as np
    >>> from refprune.density.config import inverse_density_at
    >>> a = (np.arange(200) + 0.5) / 100
    >>> inv, f = inverse_density_at(a, [0.5, 1.0])
    >>> np.round(inv, 4).tolist(), np.round(f, 4).tolist()
    ([2.0, 2.0], [0.5, 0.5])
    >>> inverse_density_at(a, 100.0)       # f̂ underflows to 0 far from the data
    Traceback (most recent call last):
        ...
    ValueError: density of the magnitudes is ... at point ...: dt/dr = 1/f(t) is undefined there
    """
    f, h, a = _estimate(samples, points, config)
    if config.method in FFT_METHODS:
        f = np.where(f > fft_roundoff_level(h, config.grid_size), f, 0.0)
    return inverse_of_density(f, check_points(points)), f


def fft_roundoff_level(h: float, grid_size: int) -> float:
    """The level at or below which an FFT-convolved density counts as 0 (round-off, not density).

    The FFT's absolute error is about eps·log2(N) of the kernel's peak 1/(sqrt(2π)·h), N = 4·m
    points; ``FFT_ROUNDOFF_FACTOR`` times that.

    Examples
    --------
    >>> from refprune.density.config import fft_roundoff_level
    >>> f"{fft_roundoff_level(1.0, 1024):.2e}"
    '1.06e-14'
    """
    return FFT_ROUNDOFF_FACTOR * np.finfo(np.float64).eps * np.log2(4 * grid_size) / (h * np.sqrt(2 * np.pi))


def inverse_of_density(f: np.ndarray, points) -> np.ndarray:
    """1/f at each point (thesis eq. (2.16)), through the one gate :func:`threshold_derivative`.

    Raises ValueError naming the first point where f is not a finite, positive, normal float.

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.density.config import inverse_of_density
    >>> inverse_of_density(np.array([0.5, 0.25]), [1.0, 2.0]).tolist()
    [2.0, 4.0]
    """
    inv = np.empty_like(f)
    for i, fi in np.ndenumerate(f):
        try:
            inv[i] = threshold_derivative(fi)  # thesis eq. (2.16)
        except ValueError:
            where = np.asarray(points).reshape(f.shape)[i]
            raise ValueError(f"density of the magnitudes is {fi!r} at point {where!r}: "
                             f"dt/dr = 1/f(t) is undefined there") from None
    return inv


def threshold_dt_dr(samples, t: float, lower: float, upper: float, config: DensityConfig,
                    smoothed: bool = False, at: str = "t"):
    """dt/dr of a threshold: 1/f at t, or the mean of 1/f at a_k and a_{k+1}.

    Parameters
    ----------
    samples : array_like, shape (n,)
        The magnitudes.
    t, lower, upper : float
        The threshold and the order statistics a_k <= t <= a_{k+1} around it.
    config : DensityConfig
    smoothed : bool
        The smoothed threshold t̃: dt̃/dr = 1/f̂(t̃) exactly for the direct KDE
        reflected at 0 with the config's bandwidth rule (ddof 1, as
        :func:`refprune.density.quantile.smoothed_threshold` solves t̃ with), whatever
        the config's method (METHOD §3).
    at : {"t", "order_stats"}
        Where 1/f is evaluated (empirical rule); a given t outside
        [a_k, a_{k+1}] is evaluated at t itself.

    Returns
    -------
    dt_dr : float
        Thesis eq. (2.16), positive.
    density : float
        f at the point(s) (their mean for ``order_stats``).
    points : ndarray
        Shape (1,) (t) or (2,) (a_k, a_{k+1}).

    Examples
    --------
    The median of 200 magnitudes evenly spread over [0, 2], and dt/dr = 1/f = 2 there:

    >>> import numpy as np
    >>> from refprune.core.threshold import empirical_threshold
    >>> from refprune.density.config import DensityConfig, threshold_dt_dr
    >>> a = (np.arange(200) + 0.5) / 100
    >>> th = empirical_threshold(a, 0.5)                     # t = (0.995 + 1.005)/2
    >>> dt_dr, f, points = threshold_dt_dr(a, th.t, th.lower, th.upper, DensityConfig())
    >>> round(dt_dr, 4), points.tolist()
    (2.0, [1.0])
    >>> dt_dr, f, points = threshold_dt_dr(a, th.t, th.lower, th.upper, DensityConfig(), at="order_stats")
    >>> round(dt_dr, 4), points.tolist()
    (2.0, [0.995, 1.005])
    """
    if smoothed:
        config = DensityConfig(rule=config.rule, method="direct", reflect=True)
    if smoothed or at == "t" or lower > t or upper < t:
        points = np.array([t])
    else:
        points = np.array([lower, upper])
    inv, f = inverse_density_at(samples, points, config)
    return float(np.mean(inv)), float(np.mean(f)), points  # thesis eq. (2.16)
