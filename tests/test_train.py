"""Training: each method learns, λ drives r up, the published path deviates exactly as P1/P2 say,
runs are deterministic, and the fast routines equal their references."""

import json

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st

from refprune.cli.main import main
from refprune.core.gradients import grad_tau, grad_threshold, grad_weight
from refprune.core.masks import soft_mask_and_slope
from refprune.core.mlp import mlp_forward
from refprune.core.optim import BETA1, BETA2, EPS, adam_init, adam_update
from refprune.core.threshold import empirical_threshold
from refprune.data.tasks import load_task
from refprune.density.kde import bandwidth, direct_kde
from refprune.lrp.reference import LRPConfig, lrp_gradients
from refprune.oracle.case import Case, make_problem
from refprune.train.baselines import magnitude_prune, post_training_pruning, pre_training_pruning
from refprune.train.export import load_sparse, save_sparse
from refprune.train.kernels import bracketed_threshold, fused_gradients, kde_at_point, scott_bandwidth_fast
from refprune.train.loop import TrainConfig, train
from refprune.train.steps.published import PublishedPath, published_gradients

# Tolerances (none loosened; each says why it is as tight as it is).
# Same float64 formulas, terms summed in another order or fused: rounding only.
SAME_FORMULA_RTOL = 1e-12
# Adam written out by hand vs adam_update: the same float64 operations, reassociated.
ADAM_RTOL = 1e-14
# Absolute floors where a gradient entry is ~0 (masked-out weights, cancelling sums).
GRAD_ATOL_FLOAT64 = 1e-18
FUSED_ATOL_WEIGHTS = 1e-30
FUSED_ATOL_SCALARS = 1e-9
# float32 fused gradients: a few ulp of float32 per term.
FUSED_RTOL_FLOAT32 = 1e-4
# float32 point KDE: pairwise sums and float32 exp, ~1e-6 relative observed.
KDE_FLOAT32_RTOL = 1e-5
# The hot published density takes σ in float32 (~1e-7 relative, moving h, grid and f alike):
# 1e-5 leaves 100x room.
PUBLISHED_HOT_RTOL = 1e-5
# r may only rise under λ = 10: a step down by more than rounding would be a wrong sign.
R_MONOTONE_SLACK = 1e-12
# lr_r = 1e-4 and Adam's step is at most ~lr per step: 39 steps move r by < 4e-3.
R_DRIFT_BOUND = 4e-3
# Pre-training pruning at ratio 0.5 of 168 weights: ties and rounding of k = floor(r·n).
PRE_SPARSITY_ABS = 0.01
# The P3 test needs the runs' gradients to differ by more than this fraction to mean anything.
P3_DISTINCT_FRACTION = 1e-3

SMALL = (1, 12, 12, 1)


@pytest.fixture(scope="module")
def synthetic():
    return load_task("synthetic", alpha=2)


def run(data, **kw):
    cfg = TrainConfig(loss="mse", epochs=kw.pop("epochs", 15), batch_size=64, **kw)
    return train(data, SMALL, cfg, log=None)


@pytest.mark.parametrize("kw", [dict(method="dense"), dict(method="lrp"), dict(method="lrp", variant="published")],
                         ids=["dense", "lrp-exact", "lrp-published"])
def test_training_lowers_the_loss(synthetic, kw):
    loss = np.array(run(synthetic, **kw)["history"].steps["loss"])
    assert loss[-20:].mean() < 0.5 * loss[:20].mean()


def test_regulariser_raises_r_when_the_data_term_is_weak(synthetic):
    # λ = 10 pulls r towards 1 with force 2λ(1 − r) = 10 at r0 = 0.5; the data
    # term of a 1-12-12-1 regression is orders of magnitude weaker
    hist = run(synthetic, method="lrp", lam=10.0, lr_r=1e-2, epochs=3)["history"]
    r = np.array(hist.steps["r"])
    assert r[-1] > 0.5 + 0.05 and np.all(np.diff(r) >= -R_MONOTONE_SLACK)


def test_without_regulariser_r_stays_near_r0_at_the_thesis_rate(synthetic):
    r = np.array(run(synthetic, method="lrp", lam=0.0, epochs=3)["history"].steps["r"])
    assert abs(r[-1] - 0.5) < R_DRIFT_BOUND


def test_runs_are_bitwise_deterministic_and_independent_of_threads(synthetic, monkeypatch):
    import refprune.train.parallel as parallel

    class CountingPool(parallel.ThreadPoolExecutor):
        submitted = 0

        def submit(self, fn, *args, **kwargs):
            CountingPool.submitted += 1
            return super().submit(fn, *args, **kwargs)

    # the 1-12-12-1 network has 168 weights: lower the threshold so the worker thread really runs
    monkeypatch.setattr(parallel, "PARALLEL_MIN_SIZE", 1)
    monkeypatch.setattr(parallel, "ThreadPoolExecutor", CountingPool)
    runs = {}
    for threads in ("1", "2", "2"):
        monkeypatch.setenv("REFPRUNE_WORKER_THREADS", threads)
        before = CountingPool.submitted
        for variant in ("exact", "published"):
            runs.setdefault(threads, []).append(run(synthetic, method="lrp", variant=variant, epochs=3))
        assert (CountingPool.submitted > before) == (threads == "2")
    for a, b in zip(runs["1"], runs["2"]):  # runs["2"] holds the two 2-thread repeats after the 1-thread runs
        for key in ("r", "tau", "t", "loss"):
            np.testing.assert_array_equal(a["history"].steps[key], b["history"].steps[key])
        assert [{k: v for k, v in e.items() if k != "seconds"} for e in a["history"].epochs] == \
               [{k: v for k, v in e.items() if k != "seconds"} for e in b["history"].epochs]
    for a, b in zip(runs["2"][:2], runs["2"][2:]):  # and the two 2-thread repeats equal each other
        np.testing.assert_array_equal(a["history"].steps["loss"], b["history"].steps["loss"])


# --- the published path deviates exactly as METHOD §6 P1 and P2 predict -------

def exact_and_published(deviations, lam=1.0):
    p = make_problem(Case(layers=(5, 7, 4), batch=6, lam=lam, tau0=0.3))
    path = PublishedPath(frozenset(deviations))
    # P2 evaluates 1/f at the order statistics around t, the exact path (and no P2) at t
    cfg = LRPConfig(lam=lam, density=path.density, dt_dr_at="order_stats" if "P2" in deviations else "t")
    exact = lrp_gradients(p.weights, p.biases, p.x, p.y, p.r, p.tau, cfg)
    _, dW, db, d_tau, d_r, _, _ = published_gradients(p.weights, p.biases, p.x, p.y, p.r, p.tau,
                                                      exact.threshold.t, lam, "ce", path)
    return p, exact, dW, db, d_tau, d_r


def test_p1_scales_weight_gradients_by_the_mask():
    p, exact, dW, db, d_tau, d_r = exact_and_published({"P1"})
    for l in range(2):
        np.testing.assert_allclose(dW[l], exact.masks[l] * exact.grad_weights[l], rtol=SAME_FORMULA_RTOL, atol=GRAD_ATOL_FLOAT64)
        np.testing.assert_allclose(db[l], exact.grad_biases[l], rtol=SAME_FORMULA_RTOL)
    mg = [m * g for m, g in zip(exact.masks, exact.grad_masked)]  # an extra factor m per weight
    assert d_tau == pytest.approx(grad_tau(mg, p.weights, exact.slopes, exact.logits, p.tau), rel=SAME_FORMULA_RTOL)
    data_term = exact.dt_dr * grad_threshold(mg, p.weights, exact.slopes, exact.threshold.t, p.tau)
    assert d_r == pytest.approx(data_term + 2 * 1.0 * (p.r - 1), rel=SAME_FORMULA_RTOL)


def test_p2_flips_only_the_data_term_of_the_r_gradient():
    p, exact, dW, db, d_tau, d_r = exact_and_published({"P2"})
    reg = 2 * 1.0 * (p.r - 1)
    assert d_r - reg == pytest.approx(-(exact.grad_r - reg), rel=SAME_FORMULA_RTOL)
    assert d_tau == pytest.approx(exact.grad_tau, rel=SAME_FORMULA_RTOL)
    for l in range(2):
        np.testing.assert_allclose(dW[l], exact.grad_weights[l], rtol=SAME_FORMULA_RTOL)


def test_no_deviation_is_the_exact_path():
    p, exact, dW, db, d_tau, d_r = exact_and_published(set())
    assert d_tau == pytest.approx(exact.grad_tau, rel=SAME_FORMULA_RTOL)
    assert d_r == pytest.approx(exact.grad_r, rel=SAME_FORMULA_RTOL)
    for l in range(2):
        np.testing.assert_allclose(dW[l], exact.grad_weights[l], rtol=SAME_FORMULA_RTOL)


# --- the fast routines of the training step equal their references ----------

@settings(max_examples=25)
@given(st.integers(0, 10**6), st.floats(1e-3, 1.0), st.sampled_from([np.float32, np.float64]))
def test_fused_gradients_equal_the_separate_formulas(seed, tau, dtype):
    rng = np.random.default_rng(seed)
    W, g = (rng.standard_normal((6, 5)) * 0.3).astype(dtype), rng.standard_normal((6, 5)).astype(dtype)
    t = 0.2
    m, s, z = soft_mask_and_slope(W, t, tau)
    dW, d_tau, d_t = fused_gradients(g, W, m, s, z, t, tau)
    rtol = SAME_FORMULA_RTOL if dtype == np.float64 else FUSED_RTOL_FLOAT32
    np.testing.assert_allclose(dW, grad_weight(g, W, m, s, tau), rtol=rtol, atol=FUSED_ATOL_WEIGHTS)
    assert d_tau == pytest.approx(grad_tau([g], [W], [s], [z], tau), rel=rtol, abs=FUSED_ATOL_SCALARS)
    assert d_t == pytest.approx(grad_threshold([g], [W], [s], t, tau), rel=rtol, abs=FUSED_ATOL_SCALARS)


def test_point_kde_and_fast_bandwidth_equal_the_references():
    a = np.abs(np.random.default_rng(0).standard_normal(5000))
    h = bandwidth(a)
    assert scott_bandwidth_fast(a) == pytest.approx(h, rel=SAME_FORMULA_RTOL)
    assert kde_at_point(a.copy(), 0.7, h) == pytest.approx(direct_kde(a, [0.7], h)[0], rel=SAME_FORMULA_RTOL)
    for x in (0.0, 0.05, 0.7):  # reflected: the extra term is included below KERNEL_REACH·h, negligible above
        assert kde_at_point(a.copy(), x, h, reflect=True) == pytest.approx(
            direct_kde(a, [x], h, reflect=True)[0], rel=SAME_FORMULA_RTOL)
    a32 = a.astype(np.float32)
    assert kde_at_point(a32, 0.7, h) == pytest.approx(direct_kde(a, [0.7], h)[0], rel=KDE_FLOAT32_RTOL)


@given(st.lists(st.floats(0, 10), min_size=2, max_size=300), st.floats(0.01, 0.99), st.floats(0, 1))
def test_bracketed_selection_equals_full_selection(values, r, width):
    a = np.array(values)
    full = empirical_threshold(a, r)
    got = bracketed_threshold(a, r, full.t - width, full.t + width)
    if got is not None:  # None means the bracket missed; the caller falls back
        assert got == full
    if full.k > 0:  # a bracket around all the data always holds both order statistics
        assert bracketed_threshold(a, r, -1.0, a.max() + 1.0) == full


def test_adam_matches_the_written_out_pytorch_update():
    rng = np.random.default_rng(0)
    p = rng.standard_normal(4)
    state = adam_init([p], lr=0.01)
    ref, m, v = p.copy(), np.zeros(4), np.zeros(4)
    for k in range(1, 6):
        g = rng.standard_normal(4)
        adam_update([p], [g], state)
        m = BETA1 * m + (1 - BETA1) * g
        v = BETA2 * v + (1 - BETA2) * g * g
        ref = ref - 0.01 / (1 - BETA1**k) * m / (np.sqrt(v) / np.sqrt(1 - BETA2**k) + EPS)
        np.testing.assert_allclose(p, ref, rtol=ADAM_RTOL)


# --- export, baselines, CLI --------------------------------------------------

def test_sparse_export_round_trip_and_size(tmp_path):
    rng = np.random.default_rng(0)
    weights = magnitude_prune([rng.standard_normal((50, 40)).astype(np.float32),
                               rng.standard_normal((40, 3)).astype(np.float32)], 0.9)
    biases = [rng.standard_normal(40).astype(np.float32), rng.standard_normal(3).astype(np.float32)]
    sizes = save_sparse(tmp_path / "m.npz", weights, biases)
    W2, b2 = load_sparse(tmp_path / "m.npz")
    x = rng.standard_normal((7, 50)).astype(np.float32)
    np.testing.assert_array_equal(mlp_forward(x, W2, b2)[0], mlp_forward(x, weights, biases)[0])
    # independent check of the CSR layout with scipy.sparse
    with np.load(tmp_path / "m.npz") as f:
        csr = scipy.sparse.csr_matrix((f["W1_data"], f["W1_indices"], f["W1_indptr"]), shape=(50, 40))
    np.testing.assert_array_equal(csr.toarray(), weights[0])
    assert sizes["sparse_bytes"] < 0.25 * sizes["dense_bytes"]  # 10% kept, 1-byte column indices


def test_magnitude_prune_fraction_and_order():
    W = [np.arange(1.0, 11.0).reshape(2, 5), -np.arange(11.0, 21.0).reshape(5, 2)]
    pruned = magnitude_prune(W, 0.35)  # 20 weights, k = 7 smallest magnitudes
    flat = np.concatenate([p.ravel() for p in pruned])
    assert np.count_nonzero(flat == 0) == 7
    assert np.abs(flat[flat != 0]).min() > 7


def test_baselines_run_and_pre_training_mask_stays(synthetic):
    cfg = TrainConfig(method="dense", loss="mse", epochs=2, batch_size=64)
    recs = post_training_pruning(synthetic, SMALL, cfg, [0.0, 0.5, 0.99])
    assert [r["ratio"] for r in recs] == [0.0, 0.5, 0.99] and "val_r2" in recs[0]
    pre = pre_training_pruning(synthetic, SMALL, cfg, 0.5)
    assert pre["sparsity"] == pytest.approx(0.5, abs=PRE_SPARSITY_ABS)


def test_cli_train_writes_a_complete_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "epoch   2" in text and f"results in {out}" in text
    for name in ("config.json", "history.json", "steps.npz", "params.npz", "model_sparse.npz", "summary.json"):
        assert (out / name).stat().st_size > 0
    summary = json.loads((out / "summary.json").read_text())
    for key in ("test_r2", "sparsity", "sparsity_per_layer", "compression", "r", "tau", "epochs", "seconds"):
        assert key in summary
    assert summary["compression"] == pytest.approx(1 / (1 - summary["sparsity"]))
    assert not list(out.glob(".*.tmp"))  # no temporary files left behind


@pytest.mark.parametrize("args, match", [
    (["--r0", "1.5"], "r0 must be in"), (["--epochs", "0"], "epochs must be >= 1"),
    (["--data", "mnist"], "--data-dir is required"), (["--data", "mnist", "--data-dir", "/nonexistent"], "nonexistent"),
    (["--deviations", "P9", "--variant", "published"], "deviations must be a subset"),
])
def test_cli_train_bad_arguments(args, match, tmp_path, capsys):
    assert main(["train", *args, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1


def test_fast_published_density_equals_the_reference():
    from refprune.density.config import PUBLISHED_DENSITY, density_at
    from refprune.density.published import published_density_at
    a = np.abs(np.random.default_rng(3).standard_normal(200_000)).astype(np.float32) * 0.05
    points = np.array([0.01, 0.03, 0.05])
    ref = density_at(a.astype(np.float64), points, PUBLISHED_DENSITY)
    np.testing.assert_allclose(published_density_at(a, points), ref, rtol=PUBLISHED_HOT_RTOL)


def test_p4_masks_the_forward_pass_with_the_previous_step_and_the_hook_with_the_fresh_t():
    from refprune.train.steps.common import StepConfig, new_state, new_workspace
    from refprune.train.steps.published import published_step
    p = make_problem(Case(layers=(5, 7, 4), batch=6))
    states = {d: new_state(p.weights, p.biases, p.r, p.tau, 1e-2, 1e-4, 1e-6) for d in ("P4", "none")}
    workspaces = {d: new_workspace(state, threads=1) for d, state in states.items()}
    ts = {d: [] for d in states}
    for _ in range(3):
        for d, state in states.items():
            published_step(state, workspaces[d], p.x, p.y,
                           StepConfig(deviations=frozenset({"P4"} if d == "P4" else set())))
            ts[d].append((state.published.forward_t, state.t))
    # without P4 the forward uses this step's t; with P4 the previous step's (the first step has none)
    assert all(fwd == t for fwd, t in ts["none"])
    assert ts["P4"][0][0] == ts["P4"][0][1]
    assert [fwd for fwd, _ in ts["P4"][1:]] == [t for _, t in ts["P4"][:-1]]
    assert ts["P4"][1][0] != ts["P4"][1][1]  # lr 1e-2 moves t within one step


def test_p3_runs_two_and_three_follow_the_published_sequence():
    from refprune.train.steps.common import StepConfig, new_state, new_workspace
    from refprune.train.steps.published import layer_masks, published_hook, published_step
    p = make_problem(Case(layers=(5, 7, 4), batch=6, lam=1.0))
    path = PublishedPath(frozenset({"P3"}))
    st = new_state(p.weights, p.biases, p.r, p.tau, 1e-2, 1e-2, 1e-2)
    w0 = [W.copy() for W in st.weights]
    _, dW, db, d_tau1, d_r1, _, dt_dr = published_gradients(w0, p.biases, p.x, p.y, p.r, p.tau,
                                                    empirical_threshold(np.abs(np.concatenate([w.ravel() for w in w0])), p.r).t,
                                                    1.0, "ce", path)
    r0, tau0 = st.r, st.tau
    published_step(st, new_workspace(st, threads=1), p.x, p.y, StepConfig(lam=1.0, deviations=path.deviations))
    t = st.t
    parts = layer_masks(st.weights, t, tau0)  # masks from the updated weights, t and τ of this step
    dW2, _, d_r2 = published_hook(dW, st.weights, t, tau0, dt_dr, r0, 1.0, parts)
    _, d_tau3, _ = published_hook(dW2, st.weights, t, tau0, dt_dr, r0, 1.0, parts)
    # after one step Adam's first moment is exactly (1 − β1)·grad: the r step used run 2's
    # gradient and the τ step run 3's, not run 1's
    assert st.adam_r.m[0] == pytest.approx((1 - BETA1) * d_r2, rel=SAME_FORMULA_RTOL)
    assert st.adam_tau.m[0] == pytest.approx((1 - BETA1) * d_tau3, rel=SAME_FORMULA_RTOL)
    assert abs(d_r2 - d_r1) > P3_DISTINCT_FRACTION * abs(d_r1) and abs(d_tau3 - d_tau1) > P3_DISTINCT_FRACTION * abs(d_tau1)


def test_published_step_reusing_the_p4_forward_masks_equals_recomputing_them():
    # the step keeps m(W_{k+1}; t_k, τ_k) for the next forward pass instead of
    # recomputing it; dropping the kept masks before each step must change nothing
    from refprune.train.steps.common import StepConfig, new_state, new_workspace
    from refprune.train.steps.published import published_step
    p = make_problem(Case(layers=(5, 7, 4), batch=6, lam=1.0))
    cfg = StepConfig(lam=1.0)  # all of P1-P4
    kept, fresh = (new_state(p.weights, p.biases, p.r, p.tau, 1e-2, 1e-2, 1e-4) for _ in range(2))
    kept_ws, fresh_ws = new_workspace(kept, threads=1), new_workspace(fresh, threads=1)
    for _ in range(4):
        fresh_ws.next_forward_masks = None
        published_step(kept, kept_ws, p.x, p.y, cfg)
        published_step(fresh, fresh_ws, p.x, p.y, cfg)
        assert kept_ws.next_forward_masks is not None
    np.testing.assert_array_equal(kept.flat_w, fresh.flat_w)
    assert (kept.r, kept.tau, kept.published.forward_t) == (fresh.r, fresh.tau, fresh.published.forward_t)


@pytest.mark.parametrize("kind, granularity", [("dense", "global"), ("exact", "global"), ("exact", "layer"),
                                               ("published", "global")])
def test_a_fresh_workspace_at_every_step_changes_nothing(kind, granularity):
    # the workspace is scratch: selection brackets, kept masks and buffers made anew before
    # every step give bitwise the same training as one workspace kept for the whole run
    from refprune.core.groups import Grouping
    from refprune.train.steps.common import StepConfig, new_state, new_workspace
    from refprune.train.steps.registry import STEPS
    p = make_problem(Case(layers=(5, 7, 4), batch=6, lam=1.0))
    cfg, step = StepConfig(lam=1.0), STEPS[kind]
    kept, fresh = (new_state(p.weights, p.biases, p.r, p.tau, 1e-2, 1e-2, 1e-4,
                             Grouping.of(granularity, len(p.weights))) for _ in range(2))
    kept_ws = new_workspace(kept, threads=1)
    kept_losses = [step(kept, kept_ws, p.x, p.y, cfg) for _ in range(5)]
    fresh_losses = [step(fresh, new_workspace(fresh, threads=1), p.x, p.y, cfg) for _ in range(5)]
    assert kept_losses == fresh_losses
    np.testing.assert_array_equal(kept.flat_w, fresh.flat_w)
    for name in ("rs", "taus", "ts"):
        np.testing.assert_array_equal(getattr(kept, name), getattr(fresh, name))
    if kind == "exact":  # the kept workspace really selected in brackets
        assert np.all(np.isfinite(kept_ws.brackets))
