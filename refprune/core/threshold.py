"""The global pruning threshold t(r): the r-quantile of all weight magnitudes.

The method's rule (thesis eq. (2.12) with the empirical CDF; METHOD §2): sort the n
magnitudes ascending, a_1 <= ... <= a_n, let k = floor(r·n) and t = (a_k + a_{k+1})/2,
the midpoint between the largest pruned and the smallest kept magnitude. Computed by
selection (``numpy.partition``, O(n)), never a full sort.

Edge cases, by definition here (docs/derivations.md §1.2):

- k = 0 (r < 1/n): a_0 is taken as 0, the lower bound of any magnitude, so
  t = a_1/2 and every weight is kept.
- k <= n − 1 for every r < 1 (still clamped as a guard): r close to 1 prunes all
  but the largest magnitude, never silently nothing. r >= 1 raises ValueError.
- Ties: if a_k = a_{k+1}, t is that value and the hard mask 1[|w| >= t] keeps every
  tied weight, so fewer than k weights are pruned, deterministically.

The smoothed threshold t̃(r) = F̂⁻¹(r), which makes ∂L/∂r checkable by finite
differences, needs the density estimate: :mod:`refprune.density.quantile`.
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

    Examples
    --------
    >>> from refprune.core.threshold import Threshold
    >>> Threshold(t=0.25, k=2, lower=0.2, upper=0.3)
    Threshold(t=0.25, k=2, lower=0.2, upper=0.3)
    """

    t: float
    k: int
    lower: float
    upper: float


def all_magnitudes(weights) -> np.ndarray:
    """|w| of every prunable weight of every layer, as one flat array of length n.

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.core.threshold import all_magnitudes
    >>> all_magnitudes([np.array([[-1.0, 2.0]]), np.array([[-3.0], [0.5]])]).tolist()
    [1.0, 2.0, 3.0, 0.5]
    """
    return np.concatenate([np.abs(W).ravel() for W in weights])


def pruned_count(r: float, n: int) -> int:
    """k = floor(r·n), clamped to n − 1 as a guard (see module notes).

    Examples
    --------
    >>> from refprune.core.threshold import pruned_count
    >>> pruned_count(0.1, 5), pruned_count(0.5, 5), pruned_count(0.9999, 5)
    (0, 2, 4)
    """
    return min(int(np.floor(r * n)), n - 1)


def midpoint(lower: float, upper: float) -> float:
    """(a_k + a_{k+1})/2, kept inside (a_k, a_{k+1}] so that 1[a >= t] prunes exactly k.

    Where the midpoint rounds down to a_k, t = a_{k+1} (the only value that
    separates them); where the sum overflows, a_k + (a_{k+1} − a_k)/2; otherwise
    the plain formula (docs/derivations.md §1.2).

    Examples
    --------
    >>> from refprune.core.threshold import midpoint
    >>> midpoint(0.2, 0.4)
    0.30000000000000004
    >>> midpoint(0.0, 5e-324)          # 0.5·(0 + 5e-324) rounds to 0
    5e-324
    >>> midpoint(1.5e308, 1.7e308)     # the sum overflows
    1.6e+308
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

    Examples
    --------
    Five magnitudes, r = 0.5: k = 2, so t is midway between a_2 = 0.2 and a_3 = 0.3.

    >>> import numpy as np
    >>> from refprune.core.threshold import empirical_threshold
    >>> th = empirical_threshold(np.array([0.5, 0.1, 0.4, 0.2, 0.3]), r=0.5)
    >>> th.k, th.lower, th.upper, round(th.t, 6)
    (2, 0.2, 0.3, 0.25)
    >>> empirical_threshold(np.array([0.5, 0.1, 0.4, 0.2, 0.3]), r=0.1).t   # k = 0: a_1/2
    0.05
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


