"""The binned Gaussian KDE of thesis Theorem 2.1: histogram on a grid, FFT convolution.

``binned_kde`` (fast) bins the data on a uniform grid of m points and
convolves the histogram with the sampled kernel by FFT, O(n + m log m);
``slow_binned_kde`` does the same binning and sums the kernel explicitly,
O(m²), as its reference. ``interpolate_density`` evaluates a gridded density
at any points. The published code's variant (kernel truncated at ±3h,
'same'-mode convolution) is :mod:`refprune.density.published`.
"""

from __future__ import annotations

import numpy as np

from refprune.core.validation import check_array, check_choice, check_positive
from refprune.density.kde import check_points, check_samples, phi

BINNINGS = ("linear", "nearest")
# The FFT grid needs at least a few points per bandwidth to be useful; 16 is
# the smallest size accepted (any power of two from there on).
MIN_GRID_SIZE = 16

# The binned grid spans [min − 3h, max + 3h] (METHOD §3, as published).
GRID_PAD = 3.0

# The binning position (a − lo)/Δ loses eps·|a|/Δ bins to rounding. Require the
# grid spacing Δ to be at least 1e-9 of the largest |grid value|, so the
# position error stays below ~2e-7 of a bin; otherwise the data's spread is
# below what a float64 grid of that size can resolve.
_MIN_REL_SPACING = 1e-9


def _check_grid_size(grid_size) -> int:
    """``grid_size`` as an int, or raise unless it is a power of two >= 16."""
    ok_type = isinstance(grid_size, (int, np.integer)) and not isinstance(grid_size, bool)
    if not ok_type or grid_size < MIN_GRID_SIZE or grid_size & (grid_size - 1):
        raise ValueError(
            f"grid_size must be a power of two >= {MIN_GRID_SIZE}, got {grid_size!r}")
    return int(grid_size)


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

    Examples
    --------
    Two samples, grid [0, 0.25 + 3h] with Δ = 1.75/15: 0 sits on x_0, and 0.25 lies a
    fraction θ = 1/7 of the way from x_2 to x_3, so its 1/2 splits as (6/7, 1/7)·1/2:

    >>> from refprune.density.binned import binned_histogram
    >>> grid, mass = binned_histogram([0.0, 0.25], h=0.5, grid_size=16, reflect=True)
    >>> round(float(grid[-1]), 6), [round(float(x), 6) for x in mass[:4]]
    (1.75, [0.5, 0.0, 0.428571, 0.071429])
    >>> grid, mass = binned_histogram([0.0, 0.25], h=0.5, grid_size=16, binning="nearest", reflect=True)
    >>> [round(float(x), 6) for x in mass[:4]]
    [0.5, 0.0, 0.5, 0.0]
    """
    a = check_samples(samples, reflect)
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
    return phi((offsets * delta) / h) / h


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
       with no truncation (unlike the published code, METHOD §6 P5);
    3. zero-padded linear convolution by ``numpy.fft.rfft``/``irfft`` with a
       power-of-two length (2m without reflection, 4m with), keeping the m
       outputs aligned with the grid. O(m log m).

    Reflection convolves the mirrored histogram (H_{m−1}, …, H_1, 2H_0, H_1, …,
    H_{m−1}) and keeps the non-negative half: out_k = Σ_j H_j [K_h((k − j)Δ) +
    K_h((k + j)Δ)], the binned f̂_R, with no mirrored copy of the data. Why that
    is exact, and why no term wraps around: docs/derivations.md §7.3–§7.4.

    Examples
    --------
    |w| uniform on [0, 2] has f = 1/2; the binned estimate is within O(Δ²) of the
    direct sum at the grid points:

    >>> import numpy as np
    >>> from refprune.density.binned import binned_kde, interpolate_density
    >>> from refprune.density.kde import bandwidth, direct_kde
    >>> a = np.linspace(0.0, 2.0, 201)
    >>> h = bandwidth(a)
    >>> grid, f = binned_kde(a, h, grid_size=256, reflect=True)
    >>> round(float(interpolate_density(grid, f, 1.0)), 2)
    0.5
    >>> f"{np.max(np.abs(f - direct_kde(a, grid, h, reflect=True))) / f.max():.0e}"
    '8e-05'
    """
    grid, mass = binned_histogram(samples, h, grid_size, binning, reflect)
    return grid, kde_from_histogram(grid, mass, float(h), reflect, renormalize)


def kde_from_histogram(grid, mass, h: float, reflect: bool = False, renormalize: bool = False) -> np.ndarray:
    """Steps 2–3 of :func:`binned_kde`: convolve binned masses with the sampled kernel by FFT.

    Parameters
    ----------
    grid, mass : ndarray, shape (m,)
        From :func:`binned_histogram` (with the same ``reflect``).
    h : float
    reflect, renormalize : bool
        As for :func:`binned_kde`.

    Returns
    -------
    ndarray, shape (m,)
        f̂ at the grid points.

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.density.binned import binned_histogram, binned_kde, kde_from_histogram
    >>> a = np.linspace(0.0, 2.0, 201)
    >>> grid, mass = binned_histogram(a, 0.2, grid_size=64)
    >>> np.array_equal(kde_from_histogram(grid, mass, 0.2), binned_kde(a, 0.2, grid_size=64)[1])
    True
    """
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

def slow_binned_kde(samples, h, grid_size: int = 1024, binning: str = "linear",
                    reflect: bool = False, renormalize: bool = False):
    """O(m²) reference for ``binned_kde``: same binning, kernel summed explicitly.

    Parameters and returns as ``binned_kde``. Computes
    out_k = Σ_j H_j K_h((k − j)Δ) (+ Σ_j H_j K_h((k + j)Δ) with reflection)
    as a dense (m, m) matrix–vector product, so it needs O(m²) memory too.

    Examples
    --------
    The FFT convolution equals the explicit sum up to round-off:

    >>> import numpy as np
    >>> from refprune.density.binned import binned_kde, slow_binned_kde
    >>> a = np.linspace(0.0, 2.0, 201)
    >>> grid, fast = binned_kde(a, 0.2, grid_size=64, reflect=True)
    >>> grid_slow, slow = slow_binned_kde(a, 0.2, grid_size=64, reflect=True)
    >>> np.array_equal(grid, grid_slow), bool(np.allclose(fast, slow))
    (True, True)
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

    Examples
    --------
    >>> from refprune.density.binned import interpolate_density
    >>> interpolate_density([0.0, 1.0, 2.0], [0.0, 1.0, 0.0], [0.5, 1.5, 3.0]).tolist()
    [0.5, 0.5, 0.0]
    """
    g = check_array(grid, "grid", ndim=1, dtype=np.float64)
    f = check_array(density, "density", ndim=1, dtype=np.float64)
    x = check_points(points)
    if f.shape != g.shape:
        raise ValueError(f"density must have the grid's shape {g.shape}, got {f.shape}")
    if g.size < 2 or np.any(np.diff(g) <= 0):
        raise ValueError("grid must hold at least 2 strictly increasing points")
    return np.interp(x, g, f, left=0.0, right=0.0)

