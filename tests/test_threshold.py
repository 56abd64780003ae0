"""Threshold invariants (open_lth style): exactly k pruned, kept >= pruned, edges at r = 0 and r → 1."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refprune.core.masks import hard_mask
from refprune.core.threshold import empirical_threshold, pruned_count
from refprune.density.quantile import compute_threshold, smoothed_threshold

# Smoothed vs empirical quantile of |N(0,1)|, n = 20000: KDE smoothing bias at Scott's
# h (= 0.05 here) plus sampling noise, observed < 5e-3; 2e-2 is the bound.
SMOOTHED_VS_EMPIRICAL_ABS = 2e-2

distinct_st = st.lists(st.floats(0, 1e3, allow_nan=False), min_size=1, max_size=200, unique=True).map(np.array)
ratio_st = st.floats(0, 1, exclude_max=True)


def slow_threshold(a, r):
    """Obviously-correct reference: full sort, a_0 := 0, midpoint; a_{k+1} itself where the
    midpoint rounds down to a_k (a_k = 0, a_{k+1} the smallest subnormal), so t still separates them."""
    s = np.concatenate([[0.0], np.sort(a)])
    k = min(int(np.floor(r * a.size)), a.size - 1)
    mid = (s[k] + s[k + 1]) / 2
    return s[k + 1] if mid <= s[k] < s[k + 1] else mid


def test_midpoint_that_rounds_to_the_lower_order_statistic_still_prunes_exactly_k():
    """Found by Hypothesis: [0, 1, 2, 5e-324] at r = 0.25 gave t = 0.5·(0 + 5e-324) = 0, pruning nothing."""
    a = np.array([0.0, 1.0, 2.0, 5e-324])
    thr = empirical_threshold(a, 0.25)
    assert np.count_nonzero(hard_mask(a, thr.t) == 0) == 1 and thr.t == 5e-324


@given(distinct_st, ratio_st)
def test_selection_matches_full_sort(a, r):
    assert empirical_threshold(a, r).t == slow_threshold(a, r)


@given(distinct_st, ratio_st)
def test_exactly_k_pruned_and_kept_exceed_pruned(a, r):
    thr = empirical_threshold(a, r)
    keep = hard_mask(a, thr.t).astype(bool)
    assert np.count_nonzero(~keep) == thr.k == pruned_count(r, a.size)
    if keep.any() and (~keep).any():
        assert a[keep].min() > a[~keep].max()


@given(distinct_st, ratio_st, st.randoms())
def test_permutation_invariant(a, r, random):
    perm = np.array(random.sample(range(a.size), a.size))
    assert empirical_threshold(a[perm], r).t == empirical_threshold(a, r).t


def test_r_zero_prunes_nothing_and_t_is_half_the_smallest():
    a = np.array([0.3, 0.1, 0.2])
    thr = empirical_threshold(a, 0.0)
    assert (thr.k, thr.t) == (0, 0.05)
    assert hard_mask(a, thr.t).all()


def test_r_close_to_one_prunes_all_but_the_largest():
    a = np.arange(1.0, 101.0)
    thr = empirical_threshold(a, 0.9999)
    assert thr.k == 99 and thr.t == 99.5
    assert hard_mask(a, thr.t).sum() == 1


@pytest.mark.parametrize("n", [2, 3, 1000, 2**20, 10**7 + 1])
def test_largest_ratio_below_one_prunes_all_but_one(n):
    r = np.nextafter(1.0, 0.0)  # the largest float64 below 1
    assert pruned_count(r, n) == n - 1


def test_ties_at_the_threshold_are_all_kept_deterministically():
    a = np.array([0.1, 0.2, 0.2, 0.2, 0.5])
    thr = empirical_threshold(a, 0.4)  # k = 2: a_2 = a_3 = 0.2
    assert thr.t == 0.2
    keep = hard_mask(a, thr.t)
    assert keep.tolist() == [0, 1, 1, 1, 1]  # only 1 pruned although k = 2


def test_global_over_layers_and_float32():
    layers = [np.array([[-0.4, 0.1]], np.float32), np.array([0.3, -0.2, 0.05], np.float32)]
    thr = compute_threshold(layers, 0.4)  # magnitudes .05 .1 .2 .3 .4, k = 2
    assert thr.t == pytest.approx(0.15)


@pytest.mark.parametrize("r", [-0.1, 1.0, 1.5, float("nan")])
def test_bad_ratio(r):
    with pytest.raises(ValueError, match="r must"):
        empirical_threshold(np.array([1.0, 2.0]), r)


@pytest.mark.parametrize("a, match", [(np.array([]), "empty"), (np.array([1.0, np.nan]), "non-finite"),
                                      (np.array([-1.0, 2.0]), "non-negative")])
def test_bad_magnitudes(a, match):
    with pytest.raises(ValueError, match=match):
        empirical_threshold(a, 0.5)


def test_unknown_rule():
    with pytest.raises(ValueError, match="threshold must be one of"):
        compute_threshold([np.ones((2, 2))], 0.5, "median")


# The smoothed threshold t̃(r) = F̂⁻¹(r) of the reflected KDE.
def test_smoothed_threshold_is_nonnegative_and_monotone_at_small_r():
    a = np.abs(np.random.default_rng(0).standard_normal(500))
    ts = [smoothed_threshold(a, r).t for r in (0.0, 1e-6, 1e-3, 0.1, 0.5, 0.9)]
    assert ts[0] == 0.0
    assert all(t >= 0 for t in ts) and np.all(np.diff(ts) > 0)


def test_smoothed_threshold_tracks_the_empirical_one():
    a = np.abs(np.random.default_rng(1).standard_normal(20000))
    for r in (0.1, 0.5, 0.9):
        assert smoothed_threshold(a, r).t == pytest.approx(empirical_threshold(a, r).t, abs=SMOOTHED_VS_EMPIRICAL_ABS)
