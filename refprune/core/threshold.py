"""The global pruning threshold t(r): the r-quantile of all weight magnitudes.

Two rules (METHOD §2–§3):

``empirical`` (the method's own, thesis eq. (2.12) with the empirical CDF)
    Sort the n magnitudes ascending, a_1 <= ... <= a_n, let k = floor(r·n)
    and t = (a_k + a_{k+1})/2, the midpoint between the largest pruned and
    the smallest kept magnitude. Computed by selection (``numpy.partition``,
    O(n)), never a full sort.

    Edge cases, by definition here:
    - k = 0 (r < 1/n): nothing is to be pruned; a_0 is taken as 0, the lower
      bound of any magnitude, so t = a_1/2 and every weight is kept.
    - k >= n cannot happen for r < 1 (r·n < n, and IEEE round-to-nearest
      never rounds r·n up to n); k is still clamped to n − 1 as a guard. At
      r close to 1, all but the largest magnitude are pruned: r near 1 never
      silently means "no pruning". r >= 1 is rejected with ValueError.
    - Ties: t is a value, so which tied weight is "the k-th" does not matter.
      If a_k = a_{k+1}, t equals that value and the hard mask 1[|w| >= t] keeps
      all the tied weights: fewer than k weights are pruned, deterministically.

``smoothed`` (for checking ∂L/∂r by finite differences)
    t̃(r) = F̂⁻¹(r), F̂ the CDF of the Gaussian KDE of the magnitudes reflected
    at 0 (so F̂(0) = 0 and t̃ >= 0). Then dt̃/dr = 1/f̂(t̃) exactly
    (thesis eq. (2.16)), so the whole of eq. (2.11) can be checked end to end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refprune.core.validation import check_array, check_ratio


@dataclass(frozen=True)
class Threshold:
    """A threshold and what it was computed from.

    Attributes
    ----------
    t : float
        The threshold.
    k : int
        floor(r·n) clamped to [0, n − 1]: how many magnitudes lie below t when
        there are no ties (empirical rule).
    lower, upper : float
        a_k and a_{k+1}, the order statistics around t (a_0 = 0); for the
        smoothed rule both equal t.
    """

    t: float
    k: int
    lower: float
    upper: float


def all_magnitudes(weights) -> np.ndarray:
    """|w| of every prunable weight of every layer, as one flat array of length n."""
    return np.concatenate([np.abs(W).ravel() for W in weights])


def pruned_count(r: float, n: int) -> int:
    """k = floor(r·n), clamped to n − 1 as a guard (see module notes)."""
    return min(int(np.floor(r * n)), n - 1)


def midpoint(lower: float, upper: float) -> float:
    """(a_k + a_{k+1})/2, kept inside (a_k, a_{k+1}] so that 1[a >= t] prunes exactly k.

    In floating point the midpoint can round down to a_k (a_k = 0 and a_{k+1}
    the smallest subnormal: 0.5·(0 + 5e-324) = 0) — then t = a_{k+1}, the only
    representable value that separates them — or overflow (two magnitudes near
    the largest float) — then a_k + (a_{k+1} − a_k)/2. Otherwise the plain
    formula, so results are unchanged wherever it is right.
    """
    t = 0.5 * (lower + upper)
    if not np.isfinite(t):
        t = lower + 0.5 * (upper - lower)
    if t <= lower < upper:
        t = upper
    return t


def empirical_threshold(magnitudes: np.ndarray, r: float) -> Threshold:
    """Midpoint empirical r-quantile of the magnitudes, by O(n) selection.

    Parameters
    ----------
    magnitudes : ndarray, shape (n,)
        Non-negative magnitudes |w|.
    r : float
        Pruning ratio in [0, 1).

    Returns
    -------
    Threshold

    Notes
    -----
    ``numpy.partition`` places the order statistics a_k and a_{k+1}
    (0-based positions k − 1 and k) where a full sort would, in O(n).
    """
    r = check_ratio(r)
    a = check_array(magnitudes, "magnitudes", ndim=1)
    if np.any(a < 0):
        raise ValueError("magnitudes must be non-negative")
    k = pruned_count(r, a.size)
    if k == 0:
        upper = float(a.min())
        lower = 0.0  # a_0 := 0, the smallest possible magnitude
    else:
        part = np.partition(a, (k - 1, k))
        lower, upper = float(part[k - 1]), float(part[k])
    t = midpoint(lower, upper)  # METHOD §2: t = (a_k + a_{k+1})/2
    return Threshold(t=t, k=k, lower=lower, upper=upper)


