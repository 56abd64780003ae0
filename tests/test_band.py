"""The training path's hard cutoff, the band-limited step and the flush: no subnormals, within the stated bounds."""

import math

import numpy as np
import pytest

from refprune.core.groups import Grouping
from refprune.core.masks import soft_mask, soft_mask_and_slope
from refprune.core.mlp import init_mlp
from refprune.density.config import DensityConfig
from refprune.density.kde import bandwidth
from refprune.lrp.reference import LRPConfig, lrp_gradients
from refprune.oracle.case import Case, make_problem
from refprune.train.kernels import flush_level, kde_at_point, mask_cutoff, soft_mask_and_slope_into
from refprune.train.loop import masked_weights
from refprune.train.steps import softband as band_module
from refprune.train.steps.common import StepConfig, dense_step, magnitudes, new_state, new_workspace
from refprune.train.steps.exact import exact_step, phase_masks, phase_threshold
from refprune.train.steps.published import published_step
from refprune.train.steps.softband import PartBand, band_half_width, kde_reach, part_density_sum
from refprune.train.steps.workspace import buffers

# Absolute floor for weights that are ~0 after four float64 steps (route_rtol alone fails at 0).
ROUTE_ATOL_WEIGHTS = 1e-15
# The pathological state's τ must have reached its floor 1e-6 region (lr_tau 1e-6 moves it little).
TAU_NEAR_FLOOR = 1e-5

DTYPES = [np.float32, np.float64]


def subnormal_count(arr) -> int:
    arr = np.asarray(arr)
    return int(np.count_nonzero((arr != 0) & (np.abs(arr) < np.finfo(arr.dtype).tiny)))


# --- the cutoff's bound against the exact sigmoid -----------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tau", [1e-6, 1e-3, 1.0])
def test_cutoff_changes_mask_slope_and_weight_factor_within_the_stated_bound(dtype, tau):
    t = 0.03
    C = mask_cutoff(dtype, t, tau)
    z = np.linspace(-3 * C, 3 * C, 20001)
    a = np.sqrt(np.maximum(t * t + z * tau, 0.0)).astype(dtype)
    exact = soft_mask_and_slope(a, t, tau)                                # no cutoff, same dtype
    m, s, zc = soft_mask_and_slope_into(a, t, tau, cutoff=C)
    bound = math.exp(-C)                                                  # |Δm|, |Δs| <= e^{−C}
    hard = np.abs(zc) >= C
    assert hard.any() and (~hard).any()
    assert np.all(np.abs(m[hard] - exact[0][hard]) <= bound)
    assert np.all(s[hard] == 0) and np.all(exact[1][hard] <= bound)
    np.testing.assert_array_equal(m[~hard], exact[0][~hard])             # inside the band: unchanged
    np.testing.assert_array_equal(s[~hard], exact[1][~hard])
    # the factor dŵ/dw = m + (2w²/τ)·s changes by at most 1.25·δ, δ = (eps/2)²
    w2 = a.astype(np.float64) ** 2
    factor_exact = exact[0].astype(np.float64) + 2 * w2 / tau * exact[1]
    factor_cut = m.astype(np.float64) + 2 * w2 / tau * s
    delta = (np.finfo(dtype).eps / 2) ** 2
    assert np.max(np.abs(factor_cut - factor_exact)[hard]) <= 1.25 * delta
    assert subnormal_count(m) == 0 and subnormal_count(s) == 0


# --- band-limited and full computations ----------------------------------------

def step_problem(tau0, dtype="float64"):
    return make_problem(Case(layers=(30, 40, 10), batch=16, lam=1.0, tau0=tau0, seed=5, dtype=dtype))


@pytest.mark.parametrize("tau0, expect_full", [(1e-4, False), (1.0, True)], ids=["narrow-band", "fallback"])
def test_band_route_is_taken_at_small_tau_and_the_fallback_at_large_tau(tau0, expect_full):
    p = step_problem(tau0)
    density = DensityConfig(method="fft")  # the band alone decides (no KDE window)
    st = new_state(p.weights, p.biases, p.r, p.tau, 1e-3, 1e-4, 1e-6)
    ws = new_workspace(st, threads=1)
    groups = phase_threshold(st, ws, density)
    bands = phase_masks(st, ws, groups, density)
    a, thr = buffers(ws)["a"], groups[0].thr
    assert all(b.full == expect_full for b in bands)
    if not expect_full:  # the band holds few weights, and every weight outside it is hard
        C = mask_cutoff(a.dtype, thr.t, st.tau)
        assert sum(b.a.size for b in bands) < 0.5 * a.size
        outside = np.abs(a - thr.t) >= band_half_width(thr.t, st.tau, C)
        np.testing.assert_array_equal(buffers(ws)["masked"][outside], st.flat_w[outside] * (a[outside] >= thr.t))


# float64 steps, band against full route: the same elementwise values, sums in another order
ROUTE_RTOL = 1e-12


@pytest.mark.parametrize("tau0", [1e-4, 1.0], ids=["narrow-band", "fallback"])
def test_band_limited_steps_equal_full_steps(monkeypatch, tau0):
    p = step_problem(tau0)
    results = {}
    for route, fraction in (("band", 2.0), ("full", -1.0)):
        monkeypatch.setattr(band_module, "FALLBACK_FRACTION", fraction)
        st = new_state(p.weights, p.biases, p.r, p.tau, 1e-3, 1e-3, 1e-5)
        ws = new_workspace(st, threads=1)
        losses = [exact_step(st, ws, p.x, p.y, StepConfig(lam=1.0)) for _ in range(4)]
        results[route] = (st.flat_w.copy(), st.r, st.tau, losses)
    np.testing.assert_allclose(results["band"][0], results["full"][0], rtol=ROUTE_RTOL, atol=ROUTE_ATOL_WEIGHTS)
    for i in (1, 2, 3):
        np.testing.assert_allclose(results["band"][i], results["full"][i], rtol=ROUTE_RTOL)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("t_quantile", [0.02, 0.5, 0.95])
def test_windowed_kde_is_within_its_truncation_bound(dtype, t_quantile):
    a = np.abs(np.random.default_rng(2).laplace(size=200_000)).astype(dtype)
    h = bandwidth(a)
    t = float(np.quantile(a, t_quantile))
    c = kde_reach(dtype)
    idx = np.flatnonzero(np.abs(a - t) < c * h)
    window = PartBand(idx, *(np.empty(0),) * 3, a[idx])
    f_window = part_density_sum(window, t, h, reflect=True) / a.size
    f_full = kde_at_point(a.astype(np.float64), t, h, reflect=True)
    n_out = a.size - idx.size
    bound = np.finfo(dtype).eps * (n_out / a.size) / (math.sqrt(2 * math.pi) * h)
    rounding = 1e-5 if dtype == np.float32 else 1e-12  # float32 exp and pairwise sums (kde_at_point's own test)
    assert abs(f_window - f_full) <= bound + rounding * f_full
    assert idx.size < a.size  # the window really leaves weights out


@pytest.mark.parametrize("dtype", DTYPES)
def test_full_route_gathers_the_kde_window(dtype):
    # τ large: the band holds every weight and the part is computed in full; its density sum
    # runs over the window |a − t| < c·h only, or over the whole part when that is wider than
    # FALLBACK_FRACTION of it
    w = np.random.default_rng(6).laplace(size=50_000).astype(dtype)
    a = np.abs(w)
    t, tau = float(np.median(a)), 1.0
    C = mask_cutoff(a.dtype, t, tau)
    buf = {k: np.empty_like(a) for k in ("masked", "m", "s", "z", "tmp")}
    buf["hard"] = np.empty(a.size, bool)
    sl = slice(0, a.size)
    for reach, whole in ((0.2, False), (10.0 * float(a.max()), True)):  # c·h of a smaller or a larger h
        band = band_module.part_masks(sl, a, w, t, tau, C, band_half_width(t, tau, C), buf, reach)
        assert band.full
        if whole:
            assert band.a.size == a.size and np.shares_memory(band.a, a)
        else:
            want = a[np.abs(a - a.dtype.type(t)) < reach]
            assert 0 < want.size < band_module.FALLBACK_FRACTION * a.size
            np.testing.assert_array_equal(band.a, want)
        np.testing.assert_array_equal(buf["masked"], soft_mask_and_slope_into(w, t, tau)[0] * w)


# --- no subnormal on the training path -----------------------------------------

ZERO_FEATURES = 8   # inputs that are always 0 (MNIST's border pixels): their weights get gradient 0
SEED_MOMENT = 1e-37  # Adam moments a few steps above float32's smallest normal (1.18e-38)
N_STEPS = 40         # 1e-37·0.9^k is subnormal from k = 21 on without the flush


def pathological_state(dtype=np.float32, granularity="global"):
    """Weights far below t, τ at its floor, always-zero inputs, moments near the subnormal range."""
    rng = np.random.default_rng(0)
    W, b = init_mlp((24, 16, 4), rng, np.dtype(dtype))
    for Wl in W:
        Wl[rng.random(Wl.shape) < 0.3] *= 1e-3  # far below t: m ≈ e^z with z ≪ 0
    grouping = Grouping.of(granularity, len(W))
    st = new_state(W, b, 0.5, 1e-6, 1e-3, 1e-4, 1e-6, grouping)
    for arr in st.adam_wb.m + st.adam_wb.v:
        arr[...] = SEED_MOMENT
    x = rng.random((32, 24)).astype(dtype)
    x[:, :ZERO_FEATURES] = 0
    return st, new_workspace(st, threads=1), x, rng.integers(0, 4, size=32)


def hot_arrays(method, st, ws):
    buf = buffers(ws)
    arrays = {"adam_m": st.adam_wb.m, "adam_v": st.adam_wb.v, "weights": [st.flat_w]}
    if method in ("exact", "layerwise"):
        arrays.update(masked=[buf["masked"]], grad_w=[buf["dw"]])
    elif method == "dense":
        arrays.update(grad_w=[buf["g"]])
    elif ws.next_forward_masks is not None:
        fm = ws.next_forward_masks
        arrays.update(masked=[fm.out["masked"]], grad_w=[buf["dw"]],
                      masks=[b.m for b in fm.bands.values()], slopes=[b.s for b in fm.bands.values()])
    return arrays


@pytest.mark.parametrize("method", ["dense", "exact", "published", "layerwise"])
def test_no_hot_path_array_holds_a_subnormal(method):
    st, ws, x, y = pathological_state(granularity="layer" if method == "layerwise" else "global")
    step = {"dense": dense_step, "exact": exact_step, "layerwise": exact_step, "published": published_step}[method]
    for k in range(N_STEPS):
        step(st, ws, x, y, StepConfig(lam=10.0))
        found = {name: sum(subnormal_count(a) for a in arrs) for name, arrs in hot_arrays(method, st, ws).items()}
        assert not any(found.values()), f"step {k + 1}: subnormals in {found}"
    # the state really is pathological: pruned weights' masks underflow, zero-feature moments decay
    assert st.tau < TAU_NEAR_FLOOR
    assert np.all(st.adam_wb.m[0][:ZERO_FEATURES * 16] == 0)  # flushed, not left to decay


# float32 against the unflushed float64 reference on the same state: the cutoff moves each
# output by <= 1.25·(eps/2)² relative (mask_cutoff), far below float32's own rounding of a
# step (rtol 1e-4, the golden vectors' float32 tier).
F32_RTOL = 1e-4


def test_one_step_stays_within_the_bound_of_the_unflushed_computation():
    st, ws, x, y = pathological_state()
    W0 = [W.astype(np.float64) for W in st.weights]
    b0 = [v.astype(np.float64) for v in st.biases]
    ref = lrp_gradients(W0, b0, x.astype(np.float64), y, st.r, st.tau, LRPConfig(loss="ce", lam=10.0))
    phase_masks(st, ws, phase_threshold(st, ws, DensityConfig()), DensityConfig())
    masked_ref = np.concatenate([(m * W).ravel() for m, W in zip(ref.masks, W0)])
    np.testing.assert_allclose(buffers(ws)["masked"], masked_ref, rtol=F32_RTOL,
                               atol=float(np.finfo(np.float32).tiny))  # ref's subnormal-range values
    assert subnormal_count(buffers(ws)["masked"]) == 0
    assert np.count_nonzero((np.abs(masked_ref) < np.finfo(np.float32).tiny) & (masked_ref != 0)) > 0
    st2, ws2, x, y = pathological_state()
    exact_step(st2, ws2, x, y, StepConfig(lam=10.0))
    grad = buffers(ws2)["dw"]
    grad_ref = np.concatenate([g.ravel() for g in ref.grad_weights])
    scale = np.max(np.abs(grad_ref))
    np.testing.assert_allclose(grad, grad_ref, rtol=F32_RTOL, atol=F32_RTOL * scale)
    assert flush_level(np.float32) == pytest.approx(np.finfo(np.float32).tiny / np.finfo(np.float32).eps)


def test_per_epoch_soft_mask_metrics_use_no_subnormal_weights():
    """The epoch record's soft-mask ŵ (refprune.train.loop.masked_weights) has no subnormal, and is
    within the cutoff's bound of the exact sigmoid's (a product with them ran ~18× slower)."""
    st, _, _, _ = pathological_state()
    t = float(np.quantile(magnitudes(st.weights), st.r))
    exact = [soft_mask(W, t, st.tau) * W for W in st.weights]
    assert sum(subnormal_count(w) for w in exact) > 0  # the state really produces them
    got = masked_weights(st.weights, [t] * len(st.weights), [st.tau] * len(st.weights), "soft")
    assert sum(subnormal_count(w) for w in got) == 0
    delta = (np.finfo(np.float32).eps / 2) ** 2  # mask_cutoff's bound on |Δm|, so |Δŵ| <= δ·|w|
    for g, e, W in zip(got, exact, st.weights):
        assert np.all(np.abs(g.astype(np.float64) - e) <= delta * np.abs(W.astype(np.float64)))
