"""The term the stop-gradient drops (docs/derivations.md §4.1, results row R12).

If t were differentiated in w, the empirical threshold t = (a_k + a_{k+1})/2 would
give ∂t/∂w_i = sign(w_i)/2 for the two weights whose magnitudes are a_k and a_{k+1}
(only a_{k+1} = a_1 when k = 0, since a_0 := 0), and 0 for every other weight, so
the dropped part of dL/dw_i is (∂L/∂t)·sign(w_i)/2 on those weights alone.
"""

import numpy as np
import pytest

from refprune.core.threshold import empirical_threshold

# Central difference of a function that is exactly linear in w_i near a point of
# strict order (|δ| below the gaps to the neighbouring magnitudes): only rounding,
# ~eps·t/δ = 2e-16/1e-7 ≈ 2e-9, remains.
STEP = 1e-7
ATOL = 1e-7


def _dt_dw(w, r):
    a = np.abs(w)
    slopes = np.empty_like(w)
    for i in range(w.size):
        up, down = w.copy(), w.copy()
        up[i] += STEP
        down[i] -= STEP
        slopes[i] = (empirical_threshold(np.abs(up), r).t - empirical_threshold(np.abs(down), r).t) / (2 * STEP)
    return a, slopes


@pytest.mark.parametrize("r", [0.0, 0.3, 0.5, 0.97])
def test_threshold_moves_with_the_two_order_statistics_only(r):
    w = np.random.default_rng(3).normal(size=41)
    a, slopes = _dt_dw(w, r)
    thr = empirical_threshold(a, r)
    at_order_stats = np.isin(a, [thr.lower, thr.upper]) if thr.k > 0 else a == thr.upper
    expected = np.where(at_order_stats, np.sign(w) / 2, 0.0)
    np.testing.assert_allclose(slopes, expected, rtol=0, atol=ATOL)
    assert np.count_nonzero(at_order_stats) == (2 if thr.k > 0 else 1)
