"""Gaussian kernel density estimate of the weight magnitudes, for dt/dr = 1/f(t).

The threshold t(r) is the r-quantile of the magnitudes a_i = |w_i|, so
F(t(r)) = r and dt/dr = 1/f(t) (thesis eq. (2.16)). The density f is estimated
with a Gaussian KDE (thesis eq. (2.17)), bandwidth by Scott's rule (eq. (2.19))
or Silverman's (eq. (2.18)).

Three ways to evaluate it, each paired with a slower obviously-correct one:

``direct_kde`` / ``direct_kde_cdf``
    The exact sum of n Gaussians (and of n normal CDFs), O(n) per point,
    evaluated in blocks so memory stays bounded. This is the reference.
``binned_kde`` (fast) / ``slow_binned_kde`` (reference)
    The thesis's way (Theorem 2.1, METHOD §3): bin the data on a uniform grid
    of m points, convolve the histogram with the sampled kernel by FFT.
    O(n + m log m). ``slow_binned_kde`` does the same binning and sums the
    kernel explicitly, O(m²).
``smoothed_quantile``
    t̃(r) = F̂⁻¹(r) for the KDE's own CDF (METHOD §3 "smoothed threshold"),
    so that dt̃/dr = 1/f̂(t̃) holds exactly and dL/dr can be checked by central
    differences in r.

Reflection at 0 (``reflect=True``): magnitudes are >= 0, but a plain Gaussian
KDE puts mass below 0. The reflected estimate
f̂_R(x) = (1/(nh)) Σ_i [φ((x − a_i)/h) + φ((x + a_i)/h)] for x >= 0 (0 below)
is the plain KDE of the sample {a_i} ∪ {−a_i}, folded onto [0, ∞); it
integrates to 1 over [0, ∞) and its CDF has F̂_R(0) = 0.

All densities are computed in float64, whatever the input dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from .validation import check_array, check_choice, check_positive, check_ratio

BANDWIDTH_RULES = ("scott", "silverman")
BINNINGS = ("linear", "nearest")
METHODS = ("fft", "direct")

# 1/sqrt(2π), the peak of the standard normal density φ.
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)

# The FFT grid needs at least a few points per bandwidth to be useful; 16 is
# the smallest size accepted (any power of two from there on).
MIN_GRID_SIZE = 16

# The binned grid spans [min − 3h, max + 3h] (METHOD §3, as published).
GRID_PAD = 3.0

# Direct sums are done in blocks of at most this many (point, sample) pairs,
# ~8 MB per float64 temporary, so n = 1e6 samples × 1e4 points never
# allocates an n × m array.
_BLOCK_ELEMENTS = 2**20

# The binning position (a − lo)/Δ loses eps·|a|/Δ bins to rounding. Require the
# grid spacing Δ to be at least 1e-9 of the largest |grid value|, so the
# position error stays below ~2e-7 of a bin; otherwise the data's spread is
# below what a float64 grid of that size can resolve.
_MIN_REL_SPACING = 1e-9

# The smoothed quantile is bracketed by [min − 10h, max + 10h] (or [0, ...]
# with reflection): Φ(−10) ≈ 7.6e-24 < eps/2, so F̂(max + 10h) rounds to
# exactly 1 > r, and without reflection F̂(min − 10h) < 1e-23 <= r for any r
# that is not absurdly small.
QUANTILE_BRACKET_PAD = 10.0

# |F̂(t) − r| <= 1e-15 is ~9 ulp of r near 1 and ~4 ulp near 0.25; a mean of
# n normal CDFs is accurate to a few ulp, so this is as tight as F̂ can be
# evaluated and keeps t̃ accurate to ~1e-15/f̂(t̃).
CDF_TOL = 1e-15

# Fallback stop: bracket [lo, hi] narrower than 1e-15·max(1, |t|) (brief's
# spec) — reached only if rounding noise in F̂ prevents |F̂ − r| <= CDF_TOL.
QUANTILE_XTOL = 1e-15

# Newton converges in ~5 steps and bisection from a width-1 bracket to 1e-15
# takes ~50; 200 leaves ample room before declaring failure.
MAX_QUANTILE_ITER = 200

# dt/dr = 1/f(t) is refused where f(t) <= 1e-10 × (density of a uniform spread
# over max − min + 6h). Below that the point is many bandwidths away from any
# sample (or in an empty gap): 1/f would be astronomically large and, on the
# FFT path, f would be dominated by round-off (~1e-16 of the peak density,
# and the peak is at most ~1e4 × that uniform level in practice).
DENSITY_FLOOR_REL = 1e-10


# --------------------------------------------------------------------------
# validation helpers


def _check_samples(samples, reflect: bool = False) -> np.ndarray:
    """Samples as a 1-D float64 array; non-negative when reflecting."""
    a = check_array(samples, "samples", ndim=1, dtype=np.float64)
    if reflect and a.min() < 0.0:
        raise ValueError(
            f"samples must be >= 0 when reflect=True (they are magnitudes), "
            f"got min {a.min()!r}")
    return a


def _check_points(points) -> np.ndarray:
    """Points as a float64 array of any shape (possibly empty)."""
    return check_array(points, "points", allow_empty=True, dtype=np.float64)


def _check_grid_size(grid_size) -> int:
    """``grid_size`` as an int, or raise unless it is a power of two >= 16."""
    ok_type = isinstance(grid_size, (int, np.integer)) and not isinstance(grid_size, bool)
    if not ok_type or grid_size < MIN_GRID_SIZE or grid_size & (grid_size - 1):
        raise ValueError(
            f"grid_size must be a power of two >= {MIN_GRID_SIZE}, got {grid_size!r}")
    return int(grid_size)


def _check_flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return bool(value)


# --------------------------------------------------------------------------
# bandwidth


def bandwidth(samples, rule: str = "scott") -> float:
    """Kernel bandwidth h by Scott's or Silverman's rule.

    Parameters
    ----------
    samples : array_like, shape (n,)
        The data (weight magnitudes), n >= 2, not all equal.
    rule : {"scott", "silverman"}
        Scott: h = σ̂·n^(−1/5) (thesis eq. (2.19), d = 1).
        Silverman: h = 0.9·min(σ̂, IQR/1.34)·n^(−1/5) (thesis eq. (2.18));
        σ̂ alone if the IQR is 0.

    Returns
    -------
    float
        h > 0.

    Notes
    -----
    σ̂ is the sample standard deviation with ddof = 1, which makes Scott's h
    equal to the bandwidth of ``scipy.stats.gaussian_kde``'s default
    (``factor * sqrt(cov)``). The IQR uses NumPy's default (linear)
    percentile interpolation.

    References
    ----------
    Thesis §2.4.2, eqs. (2.18)–(2.19).
    """
    check_choice(rule, "rule", BANDWIDTH_RULES)
    a = _check_samples(samples)
    n = a.size
    if n < 2:
        raise ValueError(f"samples must hold at least 2 values for a bandwidth, got {n}")
    sigma = float(np.std(a, ddof=1))
    if not sigma > 0.0:
        raise ValueError("samples have zero spread (all values equal): no bandwidth")
    if rule == "scott":
        return sigma * n ** (-0.2)  # thesis eq. (2.19)
    q25, q75 = np.percentile(a, [25.0, 75.0])
    iqr = float(q75 - q25)
    spread = min(sigma, iqr / 1.34) if iqr > 0.0 else sigma
    return 0.9 * spread * n ** (-0.2)  # thesis eq. (2.18)


# --------------------------------------------------------------------------
# direct (exact) KDE and its CDF


def _phi(u: np.ndarray) -> np.ndarray:
    """Standard normal density φ(u)."""
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
    """
    a = _check_samples(samples, reflect)
    x = _check_points(points)
    h = check_positive(h, "h")
    if not reflect:
        sums = _blocked_sum(a, x, lambda xb, ab: _phi((xb - ab) / h))
        return sums / (a.size * h)  # thesis eq. (2.17)
    sums = _blocked_sum(a, x, lambda xb, ab: _phi((xb - ab) / h) + _phi((xb + ab) / h))
    return np.where(x >= 0.0, sums / (a.size * h), 0.0)  # eq. (2.17), reflected at 0


# Beyond this many bandwidths the Gaussian kernel is below e^{-32} ≈ 1e-14 of
# its peak: the reflected term φ((x + a)/h) can be skipped once x >= REACH·h.
KERNEL_REACH = 8.0


def kde_at_point(samples: np.ndarray, x: float, h: float, out=None, reflect: bool = False) -> float:
    """Gaussian KDE at one point, in the samples' own dtype (training hot path).

    The same sum as :func:`direct_kde` (thesis eq. (2.17)), without validation,
    blocking or the float64 conversion, so a float32 training step stays in
    float32. At a single point the direct sum costs O(n) with no
    approximation; the binned FFT estimate pays off only when the density is
    wanted on a whole grid. Tested against :func:`direct_kde`.

    Parameters
    ----------
    samples : ndarray, shape (n,)
    x : float
    h : float > 0
    out : ndarray, shape (n,), optional
        Scratch buffer (the training loop's, to avoid allocating).
    reflect : bool
        Add the kernel reflected at 0, φ((x + a_i)/h) (samples >= 0, x >= 0);
        skipped when x >= KERNEL_REACH·h, where it is below 1e-14 of the sum.

    Returns
    -------
    float
    """
    total = _kernel_sum(samples, x, h, out)
    if reflect and x < KERNEL_REACH * h:
        total += _kernel_sum(samples, -x, h, out)  # φ((x + a)/h) = φ((a − (−x))/h)
    return total * _INV_SQRT_2PI / (samples.size * h)  # thesis eq. (2.17)


def _kernel_sum(samples: np.ndarray, x: float, h: float, out=None) -> float:
    """Σ_i exp(−(x − a_i)²/(2h²)) in the samples' dtype (pairwise summation, error ~eps·log2 n)."""
    dtype = samples.dtype.type
    u = np.subtract(samples, dtype(x), out=out)
    u *= u
    u *= dtype(-0.5 / (h * h))
    np.exp(u, out=u)
    return float(u.sum())


def scott_bandwidth_fast(samples: np.ndarray) -> float:
    """Scott's h = σ̂·n^(−1/5) (thesis eq. (2.19)) from two sums, unchecked.

    Equal to :func:`bandwidth` with ``rule="scott"`` up to rounding; used by
    the training loop.
    """
    # pairwise summation and a BLAS dot: rounding ~1e-6 relative in float32, far below h's
    return scott_bandwidth_from_sums(float(samples.sum()), float(np.dot(samples, samples)), samples.size)


def scott_bandwidth_from_sums(sum_a: float, sum_a2: float, n: int) -> float:
    """Scott's h from Σa and Σa² (so the sums can be taken over parts of the data)."""
    var = max(sum_a2 - sum_a * sum_a / n, 0.0) / (n - 1)  # sample variance, ddof = 1
    return float(np.sqrt(var)) * n ** (-0.2)  # thesis eq. (2.19)


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
    """
    a = _check_samples(samples, reflect)
    x = _check_points(points)
    h = check_positive(h, "h")
    if not reflect:
        return _blocked_sum(a, x, lambda xb, ab: ndtr((xb - ab) / h)) / a.size
    sums = _blocked_sum(a, x, lambda xb, ab: ndtr((xb - ab) / h) - ndtr((-xb - ab) / h))
    return np.where(x >= 0.0, sums / a.size, 0.0)


# --------------------------------------------------------------------------
# binned KDE (thesis Theorem 2.1)


def binned_histogram(samples, h, grid_size: int = 1024, binning: str = "linear",
                     reflect: bool = False):
    """The grid and binned probability masses the binned KDE convolves.

    Parameters
    ----------
    samples : array_like, shape (n,)
        The data a_i (>= 0 if ``reflect``).
    h : float
        Bandwidth, > 0.
    grid_size : int
        m, a power of two >= 16.
    binning : {"linear", "nearest"}
        "nearest": each a_i adds 1/n to its nearest grid point.
        "linear" (cloud-in-cell): a_i between x_j and x_{j+1} at fraction
        θ = (a_i − x_j)/Δ adds (1 − θ)/n to x_j and θ/n to x_{j+1}.
    reflect : bool
        Grid on [0, max + 3h] instead of [min − 3h, max + 3h].

    Returns
    -------
    grid : ndarray, shape (m,)
        x_j = lo + j·Δ, Δ = (hi − lo)/(m − 1).
    mass : ndarray, shape (m,)
        Binned probability masses, non-negative, summing to 1 (rescaled by
        their sum so rounding in the linear weights cannot change the total).
    """
    a = _check_samples(samples, reflect)
    h = check_positive(h, "h")
    m = _check_grid_size(grid_size)
    check_choice(binning, "binning", BINNINGS)
    # 1. the grid
    lo = 0.0 if reflect else a.min() - GRID_PAD * h
    hi = a.max() + GRID_PAD * h
    delta = (hi - lo) / (m - 1)
    if not delta > _MIN_REL_SPACING * max(abs(lo), abs(hi)):
        raise ValueError(
            f"samples spread ({np.ptp(a)!r}) is too small relative to their magnitude "
            f"for a float64 grid of {m} points")
    grid = lo + delta * np.arange(m)
    # 2. fractional grid positions of the data
    u = (a - lo) / delta
    if binning == "nearest":
        j = np.clip(np.rint(u), 0, m - 1).astype(np.intp)
        mass = np.bincount(j, minlength=m).astype(np.float64)
    else:
        j = np.clip(np.floor(u), 0, m - 2).astype(np.intp)
        theta = np.clip(u - j, 0.0, 1.0)
        mass = (np.bincount(j, weights=1.0 - theta, minlength=m)
                + np.bincount(j + 1, weights=theta, minlength=m))
    # 3. probability masses summing to 1
    return grid, mass / mass.sum()


def _sampled_kernel(offsets: np.ndarray, delta: float, h: float) -> np.ndarray:
    """K_h(d·Δ) = φ(d·Δ/h)/h at integer grid offsets d (no truncation)."""
    return _phi((offsets * delta) / h) / h


def _next_pow2(k: int) -> int:
    return 1 << (int(k) - 1).bit_length()


def _fft_correlate(hist: np.ndarray, d_min: int, d_max: int, out_start: int, m: int,
                   delta: float, h: float) -> np.ndarray:
    """out[o] = Σ_q hist[q]·K_h((o − q)Δ) for o = out_start … out_start + m − 1.

    Exact (no wrap-around) provided every o − q with hist[q] != 0 lies in
    [d_min, d_max]: the kernel is laid out circularly at d mod P, and
    P >= d_max − d_min + 1 makes those residues distinct, so each circular
    term is the intended linear one.
    """
    # 1. FFT length: a power of two holding the kernel span, data and outputs
    size = _next_pow2(max(d_max - d_min + 1, hist.size, out_start + m))
    # 2. kernel sampled at every offset needed, laid out at d mod size
    d = np.arange(d_min, d_max + 1)
    kernel = np.zeros(size)
    kernel[d % size] = _sampled_kernel(d, delta, h)
    # 3. zero-padded histogram ⊛ kernel by rfft/irfft (thesis Theorem 2.1)
    spectrum = np.fft.rfft(hist, size) * np.fft.rfft(kernel)
    return np.fft.irfft(spectrum, size)[out_start:out_start + m]


def _renormalized(grid: np.ndarray, density: np.ndarray) -> np.ndarray:
    """Density scaled to unit trapezoid area over the grid (as published)."""
    return density / np.trapezoid(density, grid)


def binned_kde(samples, h, grid_size: int = 1024, binning: str = "linear",
               reflect: bool = False, renormalize: bool = False):
    """Gaussian KDE on a uniform grid by binning and FFT convolution.

    Parameters
    ----------
    samples : array_like, shape (n,)
        The data a_i (>= 0 if ``reflect``).
    h : float
        Bandwidth, > 0.
    grid_size : int
        m, a power of two >= 16 (default 1024, as in the thesis).
    binning : {"linear", "nearest"}
        See ``binned_histogram``. Linear binning is second order in Δ/h,
        nearest-bin first order.
    reflect : bool
        Estimate reflected at 0, on a grid spanning [0, max + 3h].
    renormalize : bool
        Rescale to unit trapezoid area over the grid (what the published code
        did). Off by default: the grid cuts the kernel tails 3h beyond the
        extreme samples, so the area is slightly below 1.

    Returns
    -------
    grid : ndarray, shape (m,)
        Grid points, from ``binned_histogram``.
    density : ndarray, shape (m,)
        f̂ at the grid points: out_k = Σ_j H_j K_h((k − j)Δ) with H the binned
        masses (sum 1) and K_h(x) = φ(x/h)/h, so it is a density (the 1/(n h)
        of thesis eq. (2.17) is carried by H and K_h). Clipped at 0: FFT
        round-off can leave values ~1e-17·max slightly negative in the tails.

    Notes
    -----
    Thesis Theorem 2.1, METHOD §3. Steps:

    1. bin the data (``binned_histogram``), O(n);
    2. sample the Gaussian kernel at every grid offset d·Δ the convolution
       needs — |d| <= m − 1, or −(m − 1) <= d <= 2m − 2 with reflection —
       with no truncation (the published code, METHOD §6 P5, truncated it at
       ±3h, used nearest-bin binning and a 'same'-mode convolution, and
       renormalised to unit area);
    3. zero-padded linear convolution by ``numpy.fft.rfft``/``irfft`` with a
       power-of-two length (2m without reflection, 4m with), keeping the m
       outputs aligned with the grid. O(m log m).

    Reflection: the grid [0, L] with Δ = L/(m − 1) extends to the symmetric
    grid {jΔ : |j| <= m − 1}, and both binning rules are odd-symmetric
    (floor/rint of −u mirror those of u), so binning the mirrored data −a_i
    gives exactly the mirror image of the histogram H of the a_i. The binned
    augmented sample is therefore H_full = (H_{m−1}, …, H_1, 2H_0, H_1, …,
    H_{m−1}) on that grid; convolving it with K_h and keeping the
    non-negative half gives out_k = Σ_j H_j [K_h((k − j)Δ) + K_h((k + j)Δ)],
    the binned version of f̂_R. No mirrored copy of the data is made.
    """
    grid, mass = binned_histogram(samples, h, grid_size, binning, reflect)
    return grid, kde_from_histogram(grid, mass, float(h), reflect, renormalize)


def kde_from_histogram(grid, mass, h: float, reflect: bool = False, renormalize: bool = False) -> np.ndarray:
    """Steps 2–3 of :func:`binned_kde`: convolve binned masses with the sampled kernel by FFT."""
    m = grid.size
    delta = grid[1] - grid[0]
    if not reflect:
        density = _fft_correlate(mass, -(m - 1), m - 1, 0, m, delta, h)
    else:
        full = np.concatenate([mass[:0:-1], [2.0 * mass[0]], mass[1:]])
        density = _fft_correlate(full, -(m - 1), 2 * m - 2, m - 1, m, delta, h)
    density = np.maximum(density, 0.0)
    if renormalize:
        density = _renormalized(grid, density)
    return density


def fast_nearest_binned_density_at(samples: np.ndarray, points, renormalize: bool = True,
                                   grid_size: int = 1024) -> np.ndarray:
    """The published density (METHOD §6 P5) at a few points, unchecked (training hot path).

    Scott's bandwidth, nearest-bin histogram on [min − 3h, max + 3h], FFT
    convolution, optional renormalisation, linear interpolation: the same as
    ``density_at(samples, points, DensityConfig(binning="nearest",
    renormalize=renormalize))``, but the binning positions are computed in the
    samples' own dtype without validation. A float32 position can round a
    sample into the neighbouring bin, which moves f by at most ~1/(n·Δ)
    (tested).
    """
    a = samples
    dtype = a.dtype.type
    h = scott_bandwidth_fast(a)
    lo, hi = float(a.min()) - GRID_PAD * h, float(a.max()) + GRID_PAD * h
    m = grid_size
    delta = (hi - lo) / (m - 1)
    u = np.subtract(a, dtype(lo))
    u *= dtype(1.0 / delta)
    np.rint(u, out=u)
    j = np.clip(u.astype(np.intp), 0, m - 1)
    mass = np.bincount(j, minlength=m) / a.size
    grid = lo + delta * np.arange(m)
    return interpolate_density(grid, kde_from_histogram(grid, mass, h, False, renormalize), points)


def slow_binned_kde(samples, h, grid_size: int = 1024, binning: str = "linear",
                    reflect: bool = False, renormalize: bool = False):
    """O(m²) reference for ``binned_kde``: same binning, kernel summed explicitly.

    Parameters and returns as ``binned_kde``. Computes
    out_k = Σ_j H_j K_h((k − j)Δ) (+ Σ_j H_j K_h((k + j)Δ) with reflection)
    as a dense (m, m) matrix–vector product, so it needs O(m²) memory too.
    """
    grid, mass = binned_histogram(samples, h, grid_size, binning, reflect)
    h = float(h)
    k = np.arange(grid.size)
    delta = grid[1] - grid[0]
    density = _sampled_kernel(k[:, None] - k[None, :], delta, h) @ mass
    if reflect:
        density += _sampled_kernel(k[:, None] + k[None, :], delta, h) @ mass
    if renormalize:
        density = _renormalized(grid, density)
    return grid, density


def interpolate_density(grid, density, points) -> np.ndarray:
    """Linear interpolation of a gridded density, 0 outside the grid.

    Parameters
    ----------
    grid : array_like, shape (m,)
        Strictly increasing grid points.
    density : array_like, shape (m,)
        Density values at the grid points.
    points : array_like, any shape
        Where to evaluate.

    Returns
    -------
    ndarray, same shape as ``points``, float64
    """
    g = check_array(grid, "grid", ndim=1, dtype=np.float64)
    f = check_array(density, "density", ndim=1, dtype=np.float64)
    x = _check_points(points)
    if f.shape != g.shape:
        raise ValueError(f"density must have the grid's shape {g.shape}, got {f.shape}")
    if g.size < 2 or np.any(np.diff(g) <= 0):
        raise ValueError("grid must hold at least 2 strictly increasing points")
    return np.interp(x, g, f, left=0.0, right=0.0)


# --------------------------------------------------------------------------
# configured evaluation and dt/dr


@dataclass(frozen=True)
class DensityConfig:
    """How the density of the magnitudes is estimated.

    Attributes
    ----------
    rule : {"scott", "silverman"}
        Bandwidth rule (thesis eqs. (2.19), (2.18)).
    grid_size : int
        FFT grid size m, a power of two >= 16 (method "fft" only).
    binning : {"linear", "nearest"}
        Binning rule (method "fft" only). The published code used "nearest".
    reflect : bool
        Reflect the kernel at 0.
    method : {"fft", "direct"}
        Binned FFT KDE interpolated at the points, or the exact sum.
    renormalize : bool
        Rescale the binned estimate to unit area (method "fft" only).

    Notes
    -----
    The defaults — the exact (direct) Gaussian sum, Scott's bandwidth,
    reflected at 0 — come from the study of dt/dr's accuracy
    (``scripts/study_density.py``, docs/studies.md): without reflection the
    estimate of 1/f(t) is biased by up to 29% at r = 0.05 (Exp(1) data,
    n = 1e6) and 5% (|N(0,1)|), with reflection by at most 1.2%; the binned
    FFT estimate adds up to 1.3e-3 (linear) relative error on trained MNIST
    weights at m = 1024 and is no faster at one point. ``THESIS_DENSITY``
    is the thesis's binned FFT estimate (Theorem 2.1), ``PUBLISHED_DENSITY``
    the published code's (METHOD §6 P5).
    """

    rule: str = "scott"
    grid_size: int = 1024
    binning: str = "linear"
    reflect: bool = True
    method: str = "direct"
    renormalize: bool = False

    def __post_init__(self):
        check_choice(self.rule, "rule", BANDWIDTH_RULES)
        _check_grid_size(self.grid_size)
        check_choice(self.binning, "binning", BINNINGS)
        _check_flag(self.reflect, "reflect")
        check_choice(self.method, "method", METHODS)
        _check_flag(self.renormalize, "renormalize")


# The thesis's estimate: binned (linear), FFT convolution, m = 1024, Scott, no reflection.
THESIS_DENSITY = DensityConfig(method="fft", binning="linear", reflect=False)
# The published code's (METHOD §6 P5): nearest-bin, FFT, renormalised to unit area.
PUBLISHED_DENSITY = DensityConfig(method="fft", binning="nearest", reflect=False, renormalize=True)


def _estimate(samples, points, config: DensityConfig):
    """(f̂ at points, h, samples as float64)."""
    if not isinstance(config, DensityConfig):
        raise ValueError(f"config must be a DensityConfig, got {type(config).__name__}")
    a = _check_samples(samples, config.reflect)
    x = _check_points(points)
    h = bandwidth(a, config.rule)
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
        The bandwidth comes from ``config.rule``; method "fft" interpolates
        ``binned_kde`` linearly (outside its grid, where the binned estimate
        is undefined, ``direct_kde`` is used), method "direct" is
        ``direct_kde``.
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
        If f̂ <= DENSITY_FLOOR_REL / (max − min + 6h) at some point — e.g. a
        point far outside the data, below 0 with reflection, or outside the
        FFT grid. dt/dr is undefined (or meaningless) there; no inf or NaN is
        ever returned.
    """
    f, h, a = _estimate(samples, points, config)
    floor = DENSITY_FLOOR_REL / (np.ptp(a) + 2.0 * GRID_PAD * h)
    bad = ~(f > floor)
    if np.any(bad):
        where = np.asarray(_check_points(points))[bad].ravel()[0]
        raise ValueError(
            f"density of the magnitudes is {f[bad].ravel()[0]!r} (<= floor {floor:.3g}) at "
            f"point {where!r}: dt/dr = 1/f(t) is undefined there")
    return 1.0 / f, f  # thesis eq. (2.16)


# --------------------------------------------------------------------------
# smoothed threshold t̃(r) = F̂⁻¹(r)


def _quantile_bracket(a: np.ndarray, h: float, r: float, reflect: bool):
    """[lo, hi] with F̂(lo) <= r < F̂(hi)."""
    hi = a.max() + QUANTILE_BRACKET_PAD * h
    if reflect:
        return 0.0, hi  # F̂_R(0) = 0 <= r
    lo = a.min() - QUANTILE_BRACKET_PAD * h
    if direct_kde_cdf(a, lo, h) > r:
        raise ValueError(
            f"r={r!r} is below the unreflected KDE's mass {QUANTILE_BRACKET_PAD:g}h under "
            f"the data (r = 0 would give t = −inf); use reflect=True")
    return lo, hi


def smoothed_quantile(samples, r, h, reflect: bool = True) -> float:
    """Smoothed threshold t̃(r) = F̂⁻¹(r), F̂ the CDF of the Gaussian KDE.

    Parameters
    ----------
    samples : array_like, shape (n,)
        The magnitudes a_i (>= 0 if ``reflect``).
    r : float
        Pruning ratio in [0, 1).
    h : float
        Bandwidth, > 0.
    reflect : bool
        Use the KDE reflected at 0 (default).

    Returns
    -------
    float
        t̃ with |F̂(t̃) − r| <= 1e-15 (or bracketed to 1e-15·max(1, |t̃|)).
        With reflection t̃(0) = 0.0 exactly and t̃ >= 0 always.

    Raises
    ------
    RuntimeError
        If the iteration has not converged after MAX_QUANTILE_ITER steps.

    Notes
    -----
    dt̃/dr = 1/f̂(t̃) exactly (thesis eq. (2.16) with the KDE in place of f,
    f̂ = ``direct_kde``), because F̂ is smooth and strictly increasing. That is
    what makes dL/dr checkable by central differences in r (METHOD §3); it is
    why t̃ is solved to ulp level, since finite differences are taken through
    it. Without reflection a Gaussian KDE of magnitudes puts mass below 0, so
    F̂(0) > 0 and t̃ is negative for r < F̂(0); reflection (F̂_R(0) = 0) avoids
    that, hence the default.

    Algorithm (safeguarded Newton):

    1. bracket [lo, hi] = [0 or min − 10h, max + 10h], F̂(lo) <= r < F̂(hi);
    2. start from the empirical r-quantile, clipped into the bracket;
    3. at each step evaluate F̂(t) − r, shrink the bracket by its sign, stop if
       it is within CDF_TOL or the bracket is narrower than QUANTILE_XTOL;
    4. take the Newton step t − (F̂(t) − r)/f̂(t); bisect instead if it leaves
       the bracket or the previous step did not halve |F̂ − r|.
    """
    r = check_ratio(r)
    a = _check_samples(samples, reflect)
    h = check_positive(h, "h")
    if reflect and r == 0.0:
        return 0.0  # F̂_R(0) = 0 exactly and F̂_R is strictly increasing on [0, ∞)
    lo, hi = _quantile_bracket(a, h, r, reflect)
    t = float(np.clip(np.quantile(a, r), lo, hi))
    prev_resid = np.inf
    for _ in range(MAX_QUANTILE_ITER):
        resid = float(direct_kde_cdf(a, t, h, reflect)) - r
        if abs(resid) <= CDF_TOL:
            return t
        lo, hi = (t, hi) if resid < 0 else (lo, t)
        if hi - lo <= QUANTILE_XTOL * max(1.0, abs(t)):
            return 0.5 * (lo + hi)
        f = float(direct_kde(a, t, h, reflect))
        newton = t - resid / f if f > 0 else np.nan
        stalled = abs(resid) > 0.5 * prev_resid
        t = newton if (lo < newton < hi and not stalled) else 0.5 * (lo + hi)
        prev_resid = abs(resid)
    raise RuntimeError(
        f"smoothed_quantile did not converge in {MAX_QUANTILE_ITER} iterations "
        f"(r={r!r}, bracket [{lo!r}, {hi!r}])")
