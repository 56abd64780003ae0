"""The training path's fast kernels (refprune.train.kernels, refprune.train.published_kernels) equal the plain functions they stand for.

The kernels that other files already prove equal to their plain twins name those tests in their
docstrings (tests/test_train.py, tests/test_band.py); this file holds the rest: the buffered mask
without and with an unbound cutoff, the training soft mask, the bracket scan over parts of the
weights, Scott's bandwidth from the sums of parts, the flush, the full route's mask of magnitudes, the published density near the order statistics,
the hook's reruns and the evaluation's forward pass.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refprune.core.masks import soft_mask, soft_mask_and_slope
from refprune.core.mlp import init_mlp, mlp_forward
from refprune.core.threshold import empirical_threshold
from refprune.density.config import fft_roundoff_level
from refprune.density.kde import bandwidth
from refprune.density.published import published_bandwidth, published_density_at
from refprune.train.kernels import (
    CUTOFF_SIDE_SLACK,
    bracket_scan,
    cutoff_binds,
    cutoff_sides,
    flush_level,
    flush_subnormals,
    fused_gradients,
    mask_cutoff,
    network_output,
    scott_bandwidth_from_sums,
    select_in_bracket,
    soft_mask_and_slope_into,
    soft_mask_and_slope_of_magnitudes,
    training_soft_mask,
)
from refprune.train.published_kernels import published_bandwidth_from_sums, published_density_near, rerun_sums

DTYPES = [np.float32, np.float64]
# Scott's h from running sums against the two-pass standard deviation of bandwidth(): the same
# float64 formula up to the cancellation in Σa² − (Σa)²/n (|N(0, 1)| magnitudes: mean² ~ 2·var),
# a few ulp; as tests/test_train.py's SAME_FORMULA_RTOL.
SUMS_RTOL = 1e-12
# cutoff_binds decides in float64 from the extreme magnitudes, the logits z are rounded in the
# array's dtype (float32: 6e-8 relative per operation): a few ulp of slack when checking |z| >= C.
LOGIT_ROUNDING = 1e-6
# The full published estimate convolves by FFT, whose absolute error is about eps·log2(N) of the
# kernel's peak; the estimate near the points sums directly. They agree to that floor
# (fft_roundoff_level, the level the dt/dr route counts as 0) and to a few ulp relative.
NEAR_RTOL = 1e-12


def mask_case(seed: int, dtype, t: float, tau: float, size: int = 4000):
    """Weights around and far from t (some far below it, so the cap or the cutoff has work)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, 1.5 * t + 1e-3, size)
    w[: size // 4] *= 1e-3
    w[0] = 0.0  # the smallest magnitude cutoff_binds considers
    return w.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("t, tau", [(0.05, 1e-2), (0.05, 1e-6), (3.0, 1e-3), (0.0, 1.0)],
                         ids=["moderate", "tau-at-floor", "cap-binds", "t-zero"])
def test_mask_into_buffers_equals_the_plain_mask(dtype, t, tau):
    w = mask_case(0, dtype, t, tau)
    plain = soft_mask_and_slope(w, t, tau)
    fresh = soft_mask_and_slope_into(w, t, tau)
    buffers = tuple(np.full_like(w, np.nan) for _ in range(4))
    into = soft_mask_and_slope_into(w, t, tau, buffers)
    for got in (fresh, into):
        for a, b in zip(got, plain):
            np.testing.assert_array_equal(a, b)
    assert all(a is b for a, b in zip(into, buffers))  # written into the buffers given


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(4))
def test_an_unbound_cutoff_changes_nothing(dtype, seed):
    rng = np.random.default_rng(seed)
    t = float(rng.uniform(0.01, 0.1))
    w = mask_case(seed, dtype, t, 1.0)
    a_max = float(np.abs(w).max())
    for tau in np.geomspace(1e-6, 1.0, 13):
        C = mask_cutoff(dtype, t, tau)
        if cutoff_binds(a_max, t, tau, C):
            _, _, z = soft_mask_and_slope(w, t, tau)
            assert np.any(np.abs(z.astype(np.float64)) >= C * (1 - LOGIT_ROUNDING))  # some logit reaches C
            continue
        cut = soft_mask_and_slope_into(w, t, tau, cutoff=C)
        for a, b in zip(cut, soft_mask_and_slope(w, t, tau)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tau", [1e-6, 1e-5, 1e-4])
def test_training_soft_mask_is_the_plain_mask_cut_off(dtype, tau):
    t = 0.05
    w = mask_case(1, dtype, t, tau)
    C = mask_cutoff(dtype, t, tau)
    got, plain = training_soft_mask(w, t, tau), soft_mask(w, t, tau)
    z = soft_mask_and_slope(w, t, tau)[2]
    soft = np.abs(z) < C
    assert soft.any() and (~soft).any()
    np.testing.assert_array_equal(got[soft], plain[soft])                    # unchanged in the band
    np.testing.assert_array_equal(got[~soft], (z[~soft] > 0).astype(dtype))  # 0 or 1 outside it
    assert np.all(np.abs(got.astype(np.float64) - plain) <= math.exp(-C))   # mask_cutoff's bound


@given(st.lists(st.floats(0, 10), min_size=2, max_size=300), st.floats(0.01, 0.99), st.floats(0, 1),
       st.floats(0, 1))
def test_scans_of_parts_select_the_full_threshold(values, r, width, split):
    # as the training step does it: each part scanned on its own, the counts added, the
    # in-bracket values joined, then one selection
    a = np.array(values)
    full = empirical_threshold(a, r)
    mid = int(split * a.size)
    for lo, hi in ((full.t - width, full.t + width), (-1.0, float(a.max()) + 1.0)):
        (below1, inside1), (below2, inside2) = bracket_scan(a[:mid], lo, hi), bracket_scan(a[mid:], lo, hi)
        got = select_in_bracket(r, a.size, below1 + below2, np.concatenate([inside1, inside2]))
        if got is not None:  # None: the bracket missed a_k or a_{k+1}; the step then selects in full
            assert got == full
    if full.k > 0:  # a bracket around all the data always holds both order statistics
        assert got == full


@pytest.mark.parametrize("split", [0.0, 0.3, 0.5, 1.0])
def test_scott_bandwidth_from_the_sums_of_parts(split):
    a = np.abs(np.random.default_rng(4).standard_normal(5001))
    mid = int(split * a.size)
    parts = (a[:mid], a[mid:])
    h = scott_bandwidth_from_sums(sum(float(p.sum()) for p in parts), sum(float(np.dot(p, p)) for p in parts), a.size)
    assert h == pytest.approx(bandwidth(a, "scott"), rel=SUMS_RTOL)


@pytest.mark.parametrize("dtype", DTYPES)
def test_flush_sets_exactly_the_small_elements_to_zero(dtype):
    info = np.finfo(dtype)
    level = flush_level(dtype)
    rng = np.random.default_rng(5)
    mags = np.geomspace(float(info.smallest_subnormal), 1.0, 2000)  # subnormal, below and above the level
    x = (mags * rng.choice([-1.0, 1.0], mags.size)).astype(dtype)
    before = x.copy()
    flush_subnormals(x, level, np.empty_like(x))
    small = np.abs(before) < level
    assert small.any() and (~small).any()
    assert np.all(x[small] == 0)
    np.testing.assert_array_equal(x[~small], before[~small])


def magnitudes_mask(w, t, tau, cutoff):
    """soft_mask_and_slope_of_magnitudes of |w| into buffers of NaN (every element must be written)."""
    a = np.abs(w)
    out = (*(np.full_like(a, np.nan) for _ in range(4)), np.empty(a.size, bool))
    got = soft_mask_and_slope_of_magnitudes(a, t, tau, out, cutoff=cutoff)
    assert all(x is y for x, y in zip(got, out))
    return got


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(3))
def test_mask_of_magnitudes_equals_the_mask_into_buffers(dtype, seed):
    # against soft_mask_and_slope_into with the cutoff where it binds (None elsewhere), as the
    # full route called it; τ spans no side, the high side only, and both sides bound
    rng = np.random.default_rng(seed)
    t = float(rng.uniform(0.01, 0.1))
    w = mask_case(seed, dtype, t, 1.0)
    a_max = float(np.abs(w).max())
    seen = set()
    for tau in np.geomspace(1e-7, 1.0, 29):
        C = mask_cutoff(dtype, t, tau)
        binds = cutoff_binds(a_max, t, tau, C)
        seen.add(cutoff_sides(a_max, t, tau, C) if binds else None)
        want = soft_mask_and_slope_into(w, t, tau, cutoff=C if binds else None)
        for got in (magnitudes_mask(w, t, tau, C), magnitudes_mask(w, t, tau, None) if not binds else None):
            for x, y in zip(got or want, want):
                np.testing.assert_array_equal(x, y)
    assert seen == {None, (False, True), (True, True)}


@pytest.mark.parametrize("dtype", DTYPES)
def test_mask_of_magnitudes_low_side_only_and_cap(dtype):
    # all magnitudes far below t (only the low side binds), and t²/τ beyond the exponent cap
    t = 0.05
    w = (np.random.default_rng(7).uniform(-1, 1, 3000) * t * 0.9).astype(dtype)
    a_max = float(np.abs(w).max())
    for tau in (1e-5, 1e-6):  # t²/τ = 250, 2500: z <= −C for the smallest magnitudes
        C = mask_cutoff(dtype, t, tau)
        assert cutoff_sides(a_max, t, tau, C) == (True, False)
        for x, y in zip(magnitudes_mask(w, t, tau, C), soft_mask_and_slope_into(w, t, tau, cutoff=C)):
            np.testing.assert_array_equal(x, y)
    for x, y in zip(magnitudes_mask(w, 3.0, 1e-3, None), soft_mask_and_slope(w, 3.0, 1e-3)):  # the cap binds
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rel", [-3.0, -1.0, -0.25, 0.0, 0.25])
def test_a_side_cutoff_sides_leaves_out_has_no_logit_at_the_cutoff(dtype, rel):
    # τ chosen so that the float64 logit of the largest magnitude (high side) or of 0 (low side)
    # lies within a few slacks of C: the side is reported False only if no rounded logit reaches C
    rng = np.random.default_rng(3)
    t = 0.03
    a = np.abs(rng.normal(0, 0.05, 20000)).astype(dtype)
    a[0] = 0.0
    a_max = float(a.max())
    for side in ("low", "high"):
        tau = 1e-3
        for _ in range(50):  # fixed point: τ with (a_max² − t²)/τ (or t²/τ) = C·(1 + rel·slack)
            C = mask_cutoff(dtype, t, tau)
            extreme = t * t if side == "low" else (a_max - t) * (a_max + t)
            tau = extreme / (C * (1.0 + rel * CUTOFF_SIDE_SLACK))
        C = mask_cutoff(dtype, t, tau)
        low, high = cutoff_sides(a_max, t, tau, C)
        z = soft_mask_and_slope(a, t, tau)[2]
        if not low:
            assert not np.any(z <= -C)
        if not high:
            assert not np.any(z >= C)
        assert (low if side == "low" else high) == (rel >= -1.0)


def magnitude_samples(seed: int, n: int, shape: str, dtype) -> np.ndarray:
    """|w| of one of three shapes: normal, heavy-tailed (t with 3 dof), or two scales mixed."""
    rng = np.random.default_rng(seed)
    w = {"normal": lambda: rng.standard_normal(n), "heavy": lambda: rng.standard_t(3, n),
         "mixed": lambda: np.concatenate([0.01 * rng.standard_normal(n // 2), rng.standard_normal(n - n // 2)])}[shape]()
    return np.abs(w).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ["normal", "heavy", "mixed"])
@pytest.mark.parametrize("n", [3, 40, 2000])
@pytest.mark.parametrize("r", [0.0, 0.3, 0.9, 0.999])
def test_published_density_near_the_points_equals_the_full_estimate(dtype, shape, n, r):
    a = magnitude_samples(n + int(1000 * r), n, shape, dtype)
    a64 = a.astype(np.float64)          # the dt/dr route bins in float64
    h = published_bandwidth(a64)
    x = a64
    assert published_bandwidth_from_sums(float(x.sum()), float(np.dot(x, x)), n) == pytest.approx(h, rel=SUMS_RTOL)
    thr = empirical_threshold(a, r)
    halves = lambda fn: [fn(slice(0, n // 2)), fn(slice(n // 2, n))]  # noqa: E731
    for points in ([thr.lower, thr.upper], [thr.t]):
        want = published_density_at(a64, points, h=h)
        for split in (None, halves):
            got = published_density_near(a, points, h, float(a.min()), float(a.max()), split=split)
            np.testing.assert_allclose(got, want, rtol=NEAR_RTOL, atol=fft_roundoff_level(h, 1024))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layers", [(5, 3), (12, 16, 8, 4)])
def test_network_output_equals_the_plain_forward(dtype, layers):
    rng = np.random.default_rng(len(layers))
    weights, biases = init_mlp(layers, rng, np.dtype(dtype))
    weights[0][0] = 0.0                                   # a pruned input row: exact zeros downstream
    x = rng.standard_normal((64, layers[0])).astype(dtype)
    np.testing.assert_array_equal(network_output(x, weights, biases), mlp_forward(x, weights, biases)[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_rerun_sums_equal_two_runs_of_the_fused_gradients(dtype):
    rng = np.random.default_rng(5)
    W, G = (rng.standard_normal((30, 20)).astype(dtype) for _ in range(2))
    t, tau = 0.6, 0.2
    m, s, z = soft_mask_and_slope(W, t, tau)
    dw2, _, d_t2 = fused_gradients(G, W, m, s, z, t, tau)
    _, d_tau3, _ = fused_gradients(dw2, W, m, s, z, t, tau)
    assert rerun_sums(G, W, m, s, z, t, tau) == (d_t2, d_tau3)
