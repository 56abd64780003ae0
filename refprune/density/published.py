"""The published code's density estimate for dt/dr (METHOD §6 P5), in full.

Every detail METHOD §6 lists, each of which moves dt/dr by 1e-4 to 1e-3
relative on the real code:

1. bandwidth h = σ·n^(−1/5) (Scott) or 1.06·σ·n^(−1/5) (its "silverman"),
   σ = NumPy's default ``np.std`` (ddof = 0, population std);
2. grid: m = 1024 points ``linspace(min − 3h, max + 3h, m)``, spacing dx;
3. histogram: each |w| counted at bin ``int((x − min_grid)/dx + 0.5)``
   (nearest bin, rounding half up);
4. kernel: the Gaussian sampled at ``arange(−3h, 3h + dx, dx)`` — the points
   −3h, −3h + dx, … while below 3h + dx — so truncated at about ±3h and not
   centred on 0 in general;
5. ``same``-mode convolution of histogram and kernel (by FFT), which keeps
   the m central outputs; with an uncentred kernel the result is shifted by
   up to half a grid step;
6. renormalised by its Riemann sum over the grid: divided by Σ_j f_j·dx
   (``density /= sum(density) * dx``), not by the trapezoid area — the two
   differ by about 1e-6 relative in dt/dr, beyond the float32 tolerance on
   small nets;
7. linear interpolation at the points (0 outside the grid).

dt/dr is then −½(1/f(a_k) + 1/f(a_{k+1})) (P2, the sign is applied by the
caller). :func:`published_density_at` is the one implementation;
:func:`published_grid_density` exposes the gridded estimate. The FFT 'same'
convolution is tested against ``np.convolve(..., mode="same")``.
"""

from __future__ import annotations

import numpy as np

from refprune.density.binned import GRID_PAD

# The published code's grid size m.
PUBLISHED_GRID_SIZE = 1024
# Its "silverman" option: 1.06·σ·n^(−1/5) (the normal-reference rule).
NORMAL_REFERENCE_FACTOR = 1.06


def published_bandwidth(a: np.ndarray, rule: str = "scott", ddof: int = 0) -> float:
    """h = σ·n^(−1/5) ("scott") or 1.06·σ·n^(−1/5) ("normal_reference"), σ with ``ddof``.

    Thesis eq. (2.19); METHOD §6 P5 (ddof = 0, NumPy's default).

    Parameters
    ----------
    a : ndarray, shape (n,)
        The magnitudes (unchecked).
    rule : {"scott", "normal_reference"}
    ddof : {0, 1}

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.density.published import published_bandwidth
    >>> a = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    >>> round(published_bandwidth(a), 6)                          # sqrt(2)·5^(−1/5)
    1.024993
    >>> round(published_bandwidth(a, "normal_reference") / published_bandwidth(a), 6)
    1.06
    """
    sigma = float(np.std(a, ddof=ddof))
    factor = NORMAL_REFERENCE_FACTOR if rule == "normal_reference" else 1.0
    return factor * sigma * a.size ** (-0.2)  # thesis eq. (2.19)


def published_kernel(h: float, dx: float) -> np.ndarray:
    """The Gaussian sampled at arange(−3h, 3h + dx, dx), normalised as φ(x/h)/h (P5 step 4).

    Parameters
    ----------
    h, dx : float
        Bandwidth and grid spacing, > 0.

    Returns
    -------
    ndarray, shape (k,)
        k = len(arange(−3h, 3h + dx, dx)); centred on 0 only when 3h is a multiple of dx.

    Examples
    --------
    >>> from refprune.density.published import published_kernel
    >>> k = published_kernel(1.0, 0.5)            # x = −3, −2.5, …, 3
    >>> len(k), round(float(k[6]), 6)             # the middle point is φ(0)/h
    (13, 0.398942)
    """
    x = np.arange(-GRID_PAD * h, GRID_PAD * h + dx, dx)
    return np.exp(-0.5 * (x / h) ** 2) / (h * np.sqrt(2.0 * np.pi))


def same_convolution(hist: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``np.convolve(hist, kernel, mode="same")`` computed by FFT (P5 step 5).

    The full linear convolution has length m + k − 1; 'same' keeps the m
    outputs starting at index (k − 1)//2, as NumPy and SciPy do.

    Parameters
    ----------
    hist : ndarray, shape (m,)
    kernel : ndarray, shape (k,)

    Returns
    -------
    ndarray, shape (m,)

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.density.published import same_convolution
    >>> hist, kernel = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 0.0]), np.array([1.0, 2.0, 3.0])
    >>> np.convolve(hist, kernel, mode="same").tolist()
    [0.0, 1.0, 2.0, 3.0, 0.0, 0.0]
    >>> bool(np.allclose(same_convolution(hist, kernel), np.convolve(hist, kernel, mode="same")))
    True
    """
    m, k = hist.size, kernel.size
    size = 1 << (m + k - 2).bit_length()  # power of two >= m + k − 1: no wrap-around
    full = np.fft.irfft(np.fft.rfft(hist, size) * np.fft.rfft(kernel, size), size)[:m + k - 1]
    start = (k - 1) // 2
    return full[start:start + m]


def published_grid_density(a: np.ndarray, h: float, grid_size: int = PUBLISHED_GRID_SIZE):
    """The published gridded density (METHOD §6 P5 steps 2–6), unit Riemann sum.

    Parameters
    ----------
    a : ndarray, shape (n,)
        The magnitudes |w| (float32 or float64; bin positions are computed in that dtype).
    h : float
        Bandwidth, > 0.
    grid_size : int
        m (1024 in the published code).

    Returns
    -------
    grid : ndarray, shape (m,)
    density : ndarray, shape (m,)
        Unit Riemann sum over the grid: Σ density · dx = 1.

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.density.published import published_bandwidth, published_grid_density
    >>> a = (np.arange(200) + 0.5) / 100                        # |w| evenly over [0, 2]
    >>> h = published_bandwidth(a)
    >>> grid, density = published_grid_density(a, h)
    >>> grid.size, bool(np.isclose(grid[0], a.min() - 3 * h))   # linspace(min − 3h, max + 3h, 1024)
    (1024, True)
    >>> round(float(np.sum(density) * (grid[1] - grid[0])), 12)   # Riemann, not trapezoid
    1.0
    """
    lo, hi = float(np.min(a)) - GRID_PAD * h, float(np.max(a)) + GRID_PAD * h
    grid = np.linspace(lo, hi, grid_size)
    dx = grid[1] - grid[0]
    # positions in the samples' own float dtype, in one buffer updated in place (training hot
    # path); float64 samples give P5 exactly, float32 ones may put a sample at a bin boundary
    # into the neighbouring bin, which moves f by at most ~1/(n·dx) (tests/test_train.py)
    kind = np.float32 if np.asarray(a).dtype == np.float32 else np.float64
    u = np.subtract(a, kind(grid[0]), dtype=kind)
    u /= kind(dx)
    u += kind(0.5)
    index = u.astype(np.intp)  # int((x − min_grid)/dx + 0.5): int() truncates, so nearest bin
    hist = np.bincount(np.minimum(index, grid_size - 1), minlength=grid_size).astype(np.float64)
    dens = np.maximum(same_convolution(hist, published_kernel(h, dx)), 0.0)  # FFT round-off below 0
    return grid, dens / (np.sum(dens) * dx)  # P5 step 6: the Riemann sum, as published


def published_density_at(samples: np.ndarray, points, rule: str = "scott", ddof: int = 0,
                         grid_size: int = PUBLISHED_GRID_SIZE, h: float | None = None) -> np.ndarray:
    """The published density (METHOD §6 P5, every step) at the points.

    Unchecked, for the training hot path: samples array + points → densities.

    Parameters
    ----------
    samples : ndarray, shape (n,)
        The magnitudes |w|.
    points : array_like
        Where to evaluate (t, or a_k and a_{k+1}).
    rule : {"scott", "normal_reference"}
    ddof : {0, 1}
        0 as published.
    grid_size : int
    h : float, optional
        The bandwidth :func:`published_bandwidth` gives for these samples, rule
        and ddof, if the caller has it already (one pass over the samples fewer).

    Returns
    -------
    ndarray, shape of ``points``, float64

    Examples
    --------
    The published dt/dr, −½(1/f(a_k) + 1/f(a_{k+1})) (METHOD §6 P2), for 200 magnitudes
    evenly spread over [0, 2]: −2 where eq. (2.16) gives +2.

    >>> import numpy as np
    >>> from refprune.density.published import published_density_at
    >>> a = (np.arange(200) + 0.5) / 100
    >>> f = published_density_at(a, [0.995, 1.005])              # a_100, a_101
    >>> np.round(f, 3).tolist(), round(float(-0.5 * np.sum(1.0 / f)), 2)
    ([0.5, 0.5], -2.0)
    """
    a = np.asarray(samples)
    h = published_bandwidth(a, rule, ddof) if h is None else h
    grid, dens = published_grid_density(a, h, grid_size)
    return np.interp(np.asarray(points, np.float64), grid, dens, left=0.0, right=0.0)  # P5 step 7
