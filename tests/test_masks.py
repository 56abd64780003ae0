"""Soft and hard masks: range, symmetry, the t crossing, stability at extreme τ and |w|."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import expit

from refprune.core.masks import hard_mask, soft_mask, soft_mask_and_slope, soft_mask_derivatives, sparsity

# Logits this close to 0 are left out of the hard/soft agreement: rounding of z itself decides.
LOGIT_CLEAR = 1e-12
# Masks underflow towards 0 (far below 1e-300 is subnormal): an absolute floor there only.
MASK_ATOL = 1e-300
# Central differences with h = 1e-6 of a function with |f'''| up to ~1e6 at τ = 1e-2:
# error h²|f'''|/6 + 1e-16/h ≈ 2e-7 absolute.
FD_STEP = 1e-6
FD_ATOL = 1e-6
# s = e^{-z}/(1 + e^{-z})² at z = 99 in float64, against exp(-99): rounding only.
SLOPE_TAIL_RTOL = 1e-13

weights_st = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=50).map(np.array)
t_st = st.floats(0, 1e3)
tau_st = st.floats(1e-12, 1e3)

# Comparing two float64 evaluations of the same sigmoid: they may differ in the
# last bits of z = (w² − t²)/τ and of exp; 1e-12 relative covers it (observed
# ~2e-16 on moderate z).
MASK_RTOL = 1e-12


@given(weights_st, t_st, tau_st)
def test_mask_in_unit_interval_and_finite_everywhere(w, t, tau):
    m, s, z = soft_mask_and_slope(w, t, tau)
    assert np.all((m >= 0) & (m <= 1))
    # s = e/(1 + e)² <= 1/4 exactly; its rounded product may exceed 1/4 by an ulp
    assert np.all((s >= 0) & (s <= 0.25 * (1 + 2 * np.finfo(float).eps)))
    for d in soft_mask_derivatives(w, t, tau):
        assert np.all(np.isfinite(d))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tau", [1e-12, 1e-6, 1.0, 1e3])
def test_extreme_tau_and_weights_give_no_overflow(dtype, tau):
    w = np.array([-1e3, -1.0, -1e-30, 0.0, 0.5, 1e3], dtype=dtype)
    # any overflow, 0/0 or division by zero fails the test; underflow of e^{-|z|} to 0 is by design
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        m, s, z = soft_mask_and_slope(w, dtype(0.5), tau)
        derivs = soft_mask_derivatives(w, dtype(0.5), tau)
    assert m.dtype == dtype
    for arr in (m, s, *derivs):
        assert np.all(np.isfinite(arr))


@given(weights_st, t_st, tau_st)
def test_mask_is_even_in_w(w, t, tau):
    np.testing.assert_array_equal(soft_mask(w, t, tau), soft_mask(-w, t, tau))


@given(st.floats(1e-6, 1e3), tau_st)
def test_mask_is_one_half_at_the_threshold(t, tau):
    assert soft_mask(np.array([t, -t]), t, tau).tolist() == [0.5, 0.5]


@given(weights_st, t_st, tau_st)
def test_hard_mask_is_indicator_and_agrees_with_soft_mask(w, t, tau):
    hard = hard_mask(w, t)
    np.testing.assert_array_equal(hard, (np.abs(w) >= t).astype(float))
    m, _, z = soft_mask_and_slope(w, t, tau)
    clear = np.abs(z) > LOGIT_CLEAR  # m >= 1/2 exactly when kept
    np.testing.assert_array_equal((m >= 0.5)[clear], hard[clear].astype(bool))


@given(st.lists(st.floats(-3, 3), min_size=1, max_size=30).map(np.array), st.floats(0, 3), st.floats(1e-2, 10))
def test_mask_matches_the_shifted_exponential_form_and_scipy(w, t, tau):
    # thesis eqs. (2.21)–(2.22), written out directly: the slow, obviously-correct form
    theta = np.maximum(w**2 / tau, t**2 / tau)
    ew, et = np.exp(w**2 / tau - theta), np.exp(t**2 / tau - theta)
    direct = ew / (ew + et)
    m = soft_mask(w, t, tau)
    np.testing.assert_allclose(m, direct, rtol=MASK_RTOL, atol=MASK_ATOL)
    np.testing.assert_allclose(m, expit((w**2 - t**2) / tau), rtol=MASK_RTOL, atol=MASK_ATOL)


@given(st.lists(st.floats(-3, 3), min_size=1, max_size=30).map(np.array), st.floats(0, 3), st.floats(1e-2, 10))
def test_derivatives_match_finite_differences(w, t, tau):
    dm_dw, dm_dt, dm_dtau = soft_mask_derivatives(w, t, tau)
    h = FD_STEP
    atol = FD_ATOL
    np.testing.assert_allclose(dm_dw, (soft_mask(w + h, t, tau) - soft_mask(w - h, t, tau)) / (2 * h), atol=atol)
    np.testing.assert_allclose(dm_dt, (soft_mask(w, t + h, tau) - soft_mask(w, t - h, tau)) / (2 * h), atol=atol)
    rel = h * tau
    np.testing.assert_allclose(dm_dtau * tau, (soft_mask(w, t, tau + rel) - soft_mask(w, t, tau - rel)) / (2 * h),
                               atol=atol)


def test_slope_stays_accurate_where_mask_rounds_to_one():
    _, s, _ = soft_mask_and_slope(np.array([10.0]), 1.0, 1.0)  # z = 99
    assert s[0] == pytest.approx(np.exp(-99.0), rel=SLOPE_TAIL_RTOL)  # m(1 − m) would give exactly 0


def test_sparsity_global_and_per_layer():
    masks = [np.array([[1.0, 0.0], [0.0, 0.0]]), np.ones(6)]
    total, per_layer = sparsity(masks)
    assert total == pytest.approx(3 / 10)
    assert per_layer == [0.75, 0.0]
