"""A KDE-free cross-check of dt/dr: the difference quotient of the order statistics.

dt/dr = 1/f(t) (thesis eq. (2.16)) is the quantile density q(r) = 1/f(F⁻¹(r))
(Parzen 1979) of the magnitudes. Without any kernel, q(r) is estimated by the
symmetric difference quotient of the empirical quantile function over 2j steps
of 1/n:

    q̂_j(r) = n · (a_{k+j} − a_{k−j}) / (2j),      k = ⌊r·n⌋,  1 <= k − j,  k + j <= n,

with a_1 <= ... <= a_n the sorted magnitudes. Its mean is q(r) up to
O((j/n)²) (the quantile function's curvature); its relative standard error is
about 1/√(2j), because n·f·(a_{i+1} − a_i) is approximately Exp(1) and
independent across i (docs/derivations.md §5.3). Used by the tests as a check
on 1/f̂(t) that shares nothing with the density estimate.
"""

from __future__ import annotations

import numpy as np

from refprune.core.threshold import pruned_count
from refprune.core.validation import check_array, check_ratio


def quantile_difference_quotient(magnitudes, r: float, j: int) -> float:
    """n(a_{k+j} − a_{k−j})/(2j): the order-statistics estimate of dt/dr at r.

    Parameters
    ----------
    magnitudes : ndarray, shape (n,)
        The magnitudes |w| (any order; selection, not a sort, finds the two).
    r : float in [0, 1)
        Pruning ratio; k = ⌊r·n⌋.
    j : int >= 1
        Half-width in order statistics. Larger j: less noise (relative
        standard error ≈ 1/√(2j)) but more curvature bias (≈ (j/n)²).

    Returns
    -------
    float
        The difference quotient, >= 0.

    Raises
    ------
    ValueError
        If j is not a positive integer, or a_{k−j} or a_{k+j} does not exist
        (k − j < 1 or k + j > n).
    """
    a = check_array(magnitudes, "magnitudes", ndim=1)
    r = check_ratio(r)
    if isinstance(j, bool) or not isinstance(j, (int, np.integer)) or j < 1:
        raise ValueError(f"j must be a positive integer, got {j!r}")
    n = a.size
    k = pruned_count(r, n)
    if k - j < 1 or k + j > n:
        raise ValueError(f"a_(k−j) and a_(k+j) must exist: k = {k}, j = {j}, n = {n} "
                         f"needs 1 <= k − j and k + j <= n")
    lo, hi = k - j - 1, k + j - 1                       # 0-based positions of a_{k−j}, a_{k+j}
    part = np.partition(a, (lo, hi))
    return float(n * (part[hi] - part[lo]) / (2 * j))   # q̂_j(r) ≈ 1/f(F⁻¹(r)), thesis eq. (2.16)
