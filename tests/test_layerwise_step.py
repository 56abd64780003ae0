"""The exact training step on a grouping of one group per layer (refprune.train.steps.exact) equals the plain
reference (refprune.lrp.reference.lrp_gradients with one group per layer, Adam, clamps) for whole steps in
float64, on the band route, the full route and with two threads; and `refprune train --granularity layer`
records r_l, τ_l, t_l in the summary, the history and the checkpoint."""

import json

import numpy as np
import pytest

import refprune.train.parallel as parallel
from refprune.core.groups import Grouping
from refprune.core.optim import adam_init, adam_update, clamp_ratio, clamp_tau
from refprune.data.tasks import load_task
from refprune.density.config import THESIS_DENSITY, DensityConfig
from refprune.lrp.reference import LRPConfig, lrp_gradients
from refprune.oracle.case import Case, make_problem
from refprune.train.loop import TrainConfig, train
from refprune.train.steps import softband as band_module
from refprune.train.steps.common import StepConfig, new_state, new_workspace
from refprune.train.steps.exact import exact_step

STEPS = 6
LR, LR_R, LR_TAU, LAM = 1e-2, 1e-3, 1e-5, 1.0
# As in tests/test_step_equivalence.py: summation order, the mask cutoff (<= 1.25·(eps/2)²
# relative), the KDE truncation (eps of f(t)) and Adam's lr/ε amplification over STEPS steps.
RTOL = 1e-9
ATOL_WEIGHTS = 1e-12  # weights Adam moved by ~lr from a near-zero gradient
SMALL = (1, 12, 12, 1)  # the synthetic task's input and output widths


def problem(tau0):
    return make_problem(Case(layers=(12, 16, 9, 5), batch=8, tau0=tau0, seed=3))


def taus_of(p):
    """τ_l = τ0-scaled std of each layer (as training initialises them), here from the case's τ."""
    return np.array([p.tau * float(np.std(W)) / float(np.std(np.concatenate([w.ravel() for w in p.weights])))
                     for W in p.weights])


def batches(p, count, seed=7):
    rng = np.random.default_rng(seed)
    return [(p.x[rng.permutation(p.x.shape[0])], p.y) for _ in range(count)]


def reference(p, data, taus, density):
    """The plain path: lrp_gradients per layer, Adam on [W, b], Adam on the vectors r and τ, clamps."""
    W, b = [w.copy() for w in p.weights], [v.copy() for v in p.biases]
    rs, taus = np.full(len(W), p.r), taus.copy()
    adam_wb, adam_r, adam_tau = adam_init(W + b, LR), adam_init([rs], LR_R), adam_init([taus], LR_TAU)
    losses, ts = [], []
    for x, y in data:
        res = lrp_gradients(W, b, x, y, rs, taus, LRPConfig(lam=LAM, density=density),
                            grouping=Grouping.of("layer", len(W)))
        adam_update(W + b, res.grad_weights + res.grad_biases, adam_wb)
        adam_update([rs], [res.grad_r], adam_r)
        adam_update([taus], [res.grad_tau], adam_tau)
        rs[:] = [clamp_ratio(v) for v in rs]
        taus[:] = [clamp_tau(v) for v in taus]
        losses.append(res.loss)
        ts.append([thr.t for thr in res.threshold])
    return W, b, rs, taus, losses, ts


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("tau0", [0.05, 1e-3], ids=["wide-band", "narrow-band"])
@pytest.mark.parametrize("route", ["auto", "band", "full"])
@pytest.mark.parametrize("density", [DensityConfig(), THESIS_DENSITY], ids=["direct-reflected", "thesis-fft"])
def test_layerwise_step_equals_the_reference_for_whole_steps(monkeypatch, threads, tau0, route, density):
    monkeypatch.setattr(parallel, "PARALLEL_MIN_SIZE", 1)
    if route != "auto":  # force the band route (never fall back) or the full one (always)
        monkeypatch.setattr(band_module, "FALLBACK_FRACTION", 2.0 if route == "band" else -1.0)
    p = problem(tau0)
    taus = taus_of(p)
    data = batches(p, STEPS)
    state = new_state(p.weights, p.biases, p.r, taus, LR, LR_R, LR_TAU, Grouping.of("layer", len(p.weights)))
    ws = new_workspace(state, threads=threads)
    losses, ts = [], []
    for x, y in data:
        losses.append(exact_step(state, ws, x, y, StepConfig(lam=LAM, density=density)))
        ts.append(state.ts.copy())
    W, b, rs, ref_taus, ref_losses, ref_ts = reference(p, data, taus, density)
    for got, want in zip(state.weights + state.biases, W + b):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL_WEIGHTS)
    np.testing.assert_allclose(state.rs, rs, rtol=RTOL)
    np.testing.assert_allclose(state.taus, ref_taus, rtol=RTOL)
    np.testing.assert_allclose(losses, ref_losses, rtol=RTOL)
    np.testing.assert_allclose(ts, ref_ts, rtol=RTOL)  # bracketed selection per layer from step 2 on
    assert not np.allclose(state.rs, state.rs[0])  # the layers really learn their own ratios
    assert state.r == pytest.approx(float(np.dot(state.fractions, state.rs)), rel=RTOL)


def test_layerwise_state_needs_one_tau_per_layer():
    p = problem(0.05)
    with pytest.raises(ValueError, match="one value per group"):
        new_state(p.weights, p.biases, p.r, taus_of(p)[:-1], LR, LR_R, LR_TAU, Grouping.of("layer", len(p.weights)))


def test_layer_granularity_needs_the_exact_variant():
    with pytest.raises(ValueError, match="exact variant"):
        TrainConfig(granularity="layer", variant="published")


def test_layerwise_training_records_every_layer(tmp_path):
    data, layers = load_task("synthetic", alpha=2), SMALL
    cfg = TrainConfig(granularity="layer", loss="mse", epochs=3, lam=10.0, dtype="float64", batch_size=64)
    out = train(data, layers, cfg, log=None, checkpoint=tmp_path / "ck.npz")
    summary, history = out["summary"], out["history"]
    n_layers = len(layers) - 1
    for key in ("r_per_layer", "tau_per_layer", "t_per_layer"):
        assert len(summary[key]) == n_layers
        assert all(len(rec[key]) == n_layers for rec in history.epochs)
        assert np.shape(history.steps[key]) == (summary["steps"], n_layers)
    assert summary["r"] == pytest.approx(np.average(summary["r_per_layer"], weights=[
        a * b for a, b in zip(layers[:-1], layers[1:])]), rel=RTOL)
    # each layer is pruned at its own threshold: its realised sparsity is its own r_l (up to one weight)
    for (a, b), r, s in zip(zip(layers[:-1], layers[1:]), summary["r_per_layer"], summary["sparsity_per_layer"]):
        assert abs(s - r) <= 1.0 / (a * b)
    json.dumps(summary)  # JSON-safe (t is None: one threshold per layer)


def test_layerwise_training_resumes_bitwise(tmp_path):
    data, layers = load_task("synthetic", alpha=2), SMALL
    kw = dict(granularity="layer", loss="mse", lam=10.0, batch_size=64)
    cfg = TrainConfig(epochs=4, **kw)
    whole = train(data, layers, cfg, log=None)
    ck = tmp_path / "ck.npz"
    train(data, layers, TrainConfig(epochs=2, **kw), log=None, checkpoint=ck)
    resumed = train(data, layers, cfg, log=None, checkpoint=ck, resume=True)
    for got, want in zip(resumed["weights"], whole["weights"]):
        np.testing.assert_array_equal(got, want)
    assert resumed["summary"]["r_per_layer"] == whole["summary"]["r_per_layer"]
    assert resumed["history"].steps["tau_per_layer"] == whole["history"].steps["tau_per_layer"]
