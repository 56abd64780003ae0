"""The published step's fast routines, each beside the plain function it must equal.

The published density estimate (METHOD §6 P5) at the two order statistics from the histogram near
them, its bandwidth from float64 sums, and the two sums the hook's reruns use (P3). Like
:mod:`refprune.train.kernels`, each docstring names the plain function it equals and the test
that proves it (tests/test_kernels.py); the argument for the density is in docs/derivations.md,
"P5. The published density estimate".
"""

from __future__ import annotations

import numpy as np

from refprune.density.binned import GRID_PAD
from refprune.density.published import NORMAL_REFERENCE_FACTOR, PUBLISHED_GRID_SIZE, published_kernel


def published_bandwidth_from_sums(sum_a: float, sum_a2: float, n: int, rule: str = "scott") -> float:
    """The published bandwidth σ·n^(−1/5) (σ with ddof 0) from Σa and Σa² taken in float64.

    Equal to :func:`refprune.density.published.published_bandwidth` (NumPy's two-pass
    ``np.std``) up to rounding: the sums of float32 magnitudes squared are exact in float64,
    and for magnitudes Σa²/n − (Σa/n)² loses at most a few bits to cancellation
    (tests/test_kernels.py::test_published_density_near_the_points_equals_the_full_estimate).
    """
    var = max(sum_a2 / n - (sum_a / n) ** 2, 0.0)                    # population variance, ddof 0
    factor = NORMAL_REFERENCE_FACTOR if rule == "normal_reference" else 1.0
    return factor * float(np.sqrt(var)) * n ** (-0.2)                # thesis eq. (2.19)


def published_density_near(a: np.ndarray, points, h: float, a_min: float, a_max: float,
                           grid_size: int = PUBLISHED_GRID_SIZE, split=None) -> np.ndarray:
    """:func:`refprune.density.published.published_density_at` at points close together, without the full grid.

    The published estimate at a point interpolates two grid values of the 'same' convolution
    of the nearest-bin histogram with the sampled kernel (METHOD §6 P5); each grid value needs
    the histogram only within the kernel's length of it. The Riemann renormalisation needs the
    sum of all grid values: every bin whose whole kernel lands on the grid contributes its
    count times the kernel's sum, so only the bins within a kernel length of the grid's ends
    (magnitudes within 3h of the smallest and largest) are counted one by one. So the
    magnitudes are binned only near the points and near both ends, and the convolution is a
    direct sum over about 6h/dx bins. Bin positions are computed in float64, as the dt/dr
    route (:func:`refprune.density.config.inverse_density_at`) computes them. Equals the full
    estimate up to the FFT's round-off
    (tests/test_kernels.py::test_published_density_near_the_points_equals_the_full_estimate).

    Parameters
    ----------
    a : ndarray, shape (n,)
        The magnitudes (float32 or float64; not checked).
    points : array_like, shape (p,)
        Where to evaluate, within a few grid steps of each other (t, or a_k and a_{k+1}).
    h : float
        The published bandwidth of ``a`` (> 0).
    a_min, a_max : float
        The smallest and largest of ``a``.
    grid_size : int
    split : callable, optional
        ``split(fn)`` returns ``[fn(sl) for sl in parts]`` for slices covering ``a`` (the training
        step's two halves on two threads); by default the whole of ``a`` is one part.

    Returns
    -------
    ndarray, shape (p,), float64
    """
    lo, hi = a_min - GRID_PAD * h, a_max + GRID_PAD * h
    grid = np.linspace(lo, hi, grid_size)
    dx = grid[1] - grid[0]
    kernel = published_kernel(h, dx)
    k, m = kernel.size, grid_size
    half = (k - 1) // 2                                  # 'same' keeps full[half:half + m]
    x = np.asarray(points, np.float64)
    j0 = int(np.clip(np.floor((x.min() - lo) / dx) - 1, 0, m - 1))   # the grid values interpolated
    j1 = int(np.clip(np.ceil((x.max() - lo) / dx) + 1, 0, m - 1))
    i0, i1 = max(j0 + half - k + 1, 0), min(j1 + half, m - 1)        # the bins that reach them
    cast = a.dtype.type  # window bounds in the magnitudes' dtype (a float64 bound would convert all of a);
    low, high = half - 1, m + half - k + 1   # their margin of 1.5 bins is far wider than that rounding
    bounds = (cast(lo + (i0 - 1.5) * dx), cast(lo + (i1 + 1.5) * dx),     # near the points
              cast(lo + (low + 1.5) * dx), cast(lo + (high - 1.5) * dx))  # near the grid's ends

    def gather(sl):
        part = a[sl]
        near = np.compress((part >= bounds[0]) & (part < bounds[1]), part)   # compress: faster than part[mask]
        return _bin_counts(near, lo, dx, m, i0, i1), np.compress((part < bounds[2]) | (part >= bounds[3]), part)

    gathered = [gather(slice(None))] if split is None else split(gather)
    counts = sum(c for c, _ in gathered)
    ends = np.concatenate([e for _, e in gathered])
    dens = np.convolve(counts, kernel)[j0 + half - i0:j1 + half - i0 + 1]
    # Σ_j of the 'same' convolution: bin i contributes count_i · Σ kernel[max(0, half − i) : min(k, m + half − i)],
    # the whole kernel's sum except for the bins within a kernel length of the grid's ends (0..low, high..m−1)
    total = kernel.sum() * a.size
    ranges = ((0, low), (high, m - 1)) if high > low else ((0, m - 1),)  # short grids: one range
    for first, last in ranges:
        if first > last:
            continue
        edge = _bin_counts(ends, lo, dx, m, first, last)
        for i in np.flatnonzero(edge):
            i_bin = first + int(i)
            total -= edge[i] * (kernel.sum() - kernel[max(0, half - i_bin):min(k, m + half - i_bin)].sum())
    f = np.interp(x, grid[j0:j1 + 1], dens, left=0.0, right=0.0)     # P5 step 7
    f[(x < grid[0]) | (x > grid[-1])] = 0.0
    return f / (total * dx)                                          # P5 step 6: the Riemann sum


def _bin_counts(values: np.ndarray, lo: float, dx: float, m: int, first: int, last: int) -> np.ndarray:
    """Counts of the nearest-bin histogram (P5 step 3, in float64) of ``values`` in bins first..last.

    Positions outside first..last are clipped into one bin on each side, which is dropped; the top
    bin m − 1 also takes every position beyond it, as P5's histogram does.
    """
    u = np.subtract(values, lo, dtype=np.float64)
    u /= dx
    u += 0.5
    index = u.astype(np.intp)                                          # int((x − min_grid)/dx + 0.5)
    np.clip(index, first - 1, last + 1 if last < m - 1 else m - 1, out=index)
    index -= first - 1
    return np.bincount(index, minlength=last - first + 3)[1:last - first + 2].astype(np.float64)


def rerun_sums(G, W, m, s, z, t: float, tau: float) -> tuple[float, float]:
    """The two sums the published hook's runs 2 and 3 use (METHOD §6 P3), without run 3's weight gradient.

    Run 2 applies the hook to the once-transformed gradient G: its ∂L/∂t sum, and its weight
    gradient G2 (eq. (2.3) corrected); run 3 applies it to G2 and only its ∂L/∂τ sum is used.
    Equals ``fused_gradients(G, ...)[2]`` and ``fused_gradients(fused_gradients(G, ...)[0], ...)[1]``
    (tests/test_kernels.py::test_rerun_sums_equal_two_runs_of_the_fused_gradients).

    Returns
    -------
    d_t2, d_tau3 : float
    """
    q = np.multiply(G, W)
    q *= s
    d_t2 = float(q.sum()) * (-2.0 * t / tau)                        # thesis eq. (2.11), run 2
    q *= W
    q *= 2.0 / tau
    g2 = np.multiply(G, m)
    g2 += q                                                          # run 2's weight gradient, eq. (2.3)
    np.multiply(g2, W, out=q)
    q *= s
    d_tau3 = -float(np.dot(q.ravel(), z.ravel())) / tau             # thesis eq. (2.10), run 3
    return d_t2, d_tau3
