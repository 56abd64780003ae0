"""Whole training steps of the fast path equal the plain reference path (float64).

The fast exact step (:func:`refprune.train.steps.exact.exact_step`: bracketed selection,
band-limited masks and KDE, fused passes on two threads) is run for several
whole steps next to the reference: :func:`refprune.lrp.reference.lrp_gradients`, then
Adam on weights and biases, Adam on r and τ, and the clamps. The published
step is run next to :func:`refprune.train.steps.published.published_gradients` and the
published hook composed by hand in the order METHOD §6 gives. Both with one
thread and with two (the worker really runs: its submissions are counted).
"""

import numpy as np
import pytest

import refprune.train.parallel as parallel
from refprune.core.optim import AdamState, adam_init, adam_scalar, adam_update, clamp_ratio, clamp_tau
from refprune.core.threshold import empirical_threshold
from refprune.density.config import THESIS_DENSITY, DensityConfig
from refprune.lrp.reference import LRPConfig, lrp_gradients
from refprune.oracle.case import Case, make_problem
from refprune.train.steps import softband as band_module
from refprune.train.steps.common import StepConfig, new_state, new_workspace
from refprune.train.steps.exact import exact_step
from refprune.train.steps.published import (
    PublishedPath,
    layer_masks,
    published_gradients,
    published_hook,
    published_step,
)

STEPS = 6
LR, LR_R, LR_TAU = 1e-2, 1e-3, 1e-5
# float64, the fast path against the reference: they differ by summation order (a few ulp of
# each sum), the mask cutoff (<= 1.25·(eps/2)² of each gradient, refprune.core.masks.mask_cutoff),
# the KDE truncation (eps of f(t)) and Adam's amplification of these by lr/ε (lr 1e-2,
# ε 1e-8: 1e6 × 1e-16 relative) over STEPS steps.
RTOL = 1e-9
ATOL_WEIGHTS = 1e-12  # absolute floor for weights that Adam moved by ~lr from a near-zero gradient


class CountingPool(parallel.ThreadPoolExecutor):
    """A worker pool that counts the work it is given."""

    submitted = 0

    def submit(self, fn, *args, **kwargs):
        CountingPool.submitted += 1
        return super().submit(fn, *args, **kwargs)


@pytest.fixture
def counting_pool(monkeypatch):
    """The worker pool counts submissions; the parallel threshold is lowered to tiny networks."""
    monkeypatch.setattr(parallel, "ThreadPoolExecutor", CountingPool)
    monkeypatch.setattr(parallel, "PARALLEL_MIN_SIZE", 1)
    CountingPool.submitted = 0
    return CountingPool


def problem(tau0):
    return make_problem(Case(layers=(12, 16, 5), batch=8, lam=1.0, tau0=tau0, seed=3))


def batches(p, count, seed=7):
    rng = np.random.default_rng(seed)
    return [(p.x[rng.permutation(p.x.shape[0])], p.y) for _ in range(count)]


def reference_exact(p, data, density):
    """The plain path: lrp_gradients, Adam on [W, b], Adam on r and τ, clamps."""
    W, b = [w.copy() for w in p.weights], [v.copy() for v in p.biases]
    r, tau = p.r, p.tau
    adam_wb, adam_r, adam_tau = adam_init(W + b, LR), AdamState(lr=LR_R), AdamState(lr=LR_TAU)
    losses, ts = [], []
    for x, y in data:
        res = lrp_gradients(W, b, x, y, r, tau, LRPConfig(loss="ce", lam=1.0, density=density))
        adam_update(W + b, res.grad_weights + res.grad_biases, adam_wb)
        r = clamp_ratio(adam_scalar(r, res.grad_r, adam_r))
        tau = clamp_tau(adam_scalar(tau, res.grad_tau, adam_tau))
        losses.append(res.loss)
        ts.append(res.threshold.t)
    return W, b, r, tau, losses, ts


def check_same(state, W, b, r, tau):
    for got, want in zip(state.weights + state.biases, W + b):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL_WEIGHTS)
    assert state.r == pytest.approx(r, rel=RTOL)
    assert state.tau == pytest.approx(tau, rel=RTOL)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("tau0", [0.05, 1e-3], ids=["wide-band", "narrow-band"])
@pytest.mark.parametrize("route", ["auto", "band", "full"])
@pytest.mark.parametrize("density", [DensityConfig(), THESIS_DENSITY, DensityConfig(rule="silverman", reflect=False)],
                         ids=["direct-reflected", "thesis-fft", "silverman-unreflected"])
def test_exact_step_equals_the_reference_for_whole_steps(counting_pool, monkeypatch, threads, tau0, route, density):
    if route != "auto":  # force the band route (never fall back) or the full one (always)
        monkeypatch.setattr(band_module, "FALLBACK_FRACTION", 2.0 if route == "band" else -1.0)
    p = problem(tau0=tau0)
    data = batches(p, STEPS)
    state = new_state(p.weights, p.biases, p.r, p.tau, LR, LR_R, LR_TAU)
    ws = new_workspace(state, threads=threads)
    losses, ts = [], []
    for x, y in data:
        losses.append(exact_step(state, ws, x, y, StepConfig(lam=1.0, density=density)))
        ts.append(state.t)
    W, b, r, tau, ref_losses, ref_ts = reference_exact(p, data, density)
    check_same(state, W, b, r, tau)
    np.testing.assert_allclose(losses, ref_losses, rtol=RTOL)
    np.testing.assert_allclose(ts, ref_ts, rtol=RTOL)  # bracketed selection from step 2 on
    assert np.all(np.isfinite(ws.brackets))
    assert (counting_pool.submitted > 0) == (threads == 2)


def test_exact_step_rejects_a_missing_density():
    p = problem(tau0=0.05)
    state = new_state(p.weights, p.biases, p.r, p.tau, LR, LR_R, LR_TAU)
    with pytest.raises(ValueError, match="density must be a DensityConfig"):
        exact_step(state, new_workspace(state, threads=1), p.x, p.y, StepConfig(lam=1.0, density=None))


def reference_published(p, data, path):
    """The published sequence composed by hand (METHOD §6), from published_gradients and published_hook."""
    W, b = [w.copy() for w in p.weights], [v.copy() for v in p.biases]
    r, tau = p.r, p.tau
    adam_wb, adam_r, adam_tau = adam_init(W + b, LR), AdamState(lr=LR_R), AdamState(lr=LR_TAU)
    prev = None  # (t, τ) of the previous step, for P4
    losses = []
    for x, y in data:
        a = np.abs(np.concatenate([w.ravel() for w in W]))
        thr = empirical_threshold(a, r)
        t_fwd, tau_fwd = prev if (path.has("P4") and prev is not None) else (thr.t, tau)
        value, dW, db, d_tau, d_r, _, dt_dr = published_gradients(
            W, b, x, y, r, tau, thr.t, 1.0, "ce", path, thr, t_forward=t_fwd, tau_forward=tau_fwd)
        adam_update(W + b, dW + db, adam_wb)
        if path.has("P3"):  # runs 2 and 3: masks from the updated weights, t and τ of this step
            parts = layer_masks(W, thr.t, tau)
            dW2, _, d_r = published_hook(dW, W, thr.t, tau, dt_dr, r, 1.0, parts)
            _, d_tau, _ = published_hook(dW2, W, thr.t, tau, dt_dr, r, 1.0, parts)
        losses.append(value + 1.0 * (1 - r) ** 2)
        prev = (thr.t, tau)
        r = clamp_ratio(adam_scalar(r, d_r, adam_r))
        tau = clamp_tau(adam_scalar(tau, d_tau, adam_tau))
    return W, b, r, tau, losses


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("deviations", [frozenset({"P1", "P2", "P3", "P4"}), frozenset()], ids=["all", "none"])
def test_published_step_equals_the_hand_composed_sequence(counting_pool, threads, deviations):
    p = problem(tau0=0.05)
    data = batches(p, STEPS)
    path = PublishedPath(deviations)
    state = new_state(p.weights, p.biases, p.r, p.tau, LR, LR_R, LR_TAU)
    ws = new_workspace(state, threads=threads)
    losses = [published_step(state, ws, x, y, StepConfig(lam=1.0, deviations=deviations)) for x, y in data]
    W, b, r, tau, ref_losses = reference_published(p, data, path)
    check_same(state, W, b, r, tau)
    np.testing.assert_allclose(losses, ref_losses, rtol=RTOL)
    assert (counting_pool.submitted > 0) == (threads == 2)
