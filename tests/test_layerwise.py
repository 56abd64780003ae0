"""Layer-wise LRP reference (refprune.lrp.reference with one group per layer): every gradient
against central finite differences in float64, the smoothed threshold end to end in each r_l,
and the global method recovered where the two must agree."""

import numpy as np
import pytest

from refprune.core.gradients import group_regulariser
from refprune.core.groups import Grouping
from refprune.core.mlp import init_mlp
from refprune.lrp.reference import LRPConfig, lrp_gradients, masked_loss

# Layer fractions n_l/n sum to 1 up to one rounding per layer.
FRACTION_SUM_RTOL = 1e-15
# Σ_l (n_l/n)·λ(1 − r)² at equal r against λ(1 − r)²: a few roundings in float64.
REGULARISER_RTOL = 1e-14

LAYERS = (5, 7, 6, 3)
FD_STEP = 1e-6  # central difference step: truncation ~ h² f''' ≈ 1e-12, round-off ~ eps·|L|/h ≈ 1e-10
FD_RTOL = 1e-6  # relative error allowed against the central difference (its error is ~1e-9 here)
FD_ABS_FLOOR = 1e-7  # gradients below this are compared absolutely (round-off of the difference quotient)
SAME_PATH_RTOL = 1e-13  # the layer-wise and global code evaluate the same float64 expressions


def problem(seed=0, n=16):
    rng = np.random.default_rng(seed)
    W, b = init_mlp(LAYERS, rng)
    x = rng.standard_normal((n, LAYERS[0]))
    y = rng.integers(0, LAYERS[-1], n)
    return W, b, x, y


def taus_for(W, scale=0.3):
    """τ_l wide enough that many weights of each layer sit in the mask's transition band."""
    return np.array([scale * float(np.mean(Wl ** 2)) for Wl in W])


def rel_err(a, n):
    return np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), FD_ABS_FLOOR)


def central(f, x0):
    return (f(x0 + FD_STEP) - f(x0 - FD_STEP)) / (2 * FD_STEP)


def layer_pass(W, b, x, y, rs, taus, cfg=LRPConfig()):
    """The reference pass with one group per layer."""
    return lrp_gradients(W, b, x, y, rs, taus, cfg, grouping=Grouping.of("layer", len(W)))


def layer_loss(W, b, x, y, ts, taus, loss):
    """The data loss at given per-layer thresholds."""
    return masked_loss(W, b, x, y, ts, taus, loss, Grouping.of("layer", len(W)))


def full_loss(W, b, x, y, rs, taus, cfg):
    return layer_pass(W, b, x, y, rs, taus, cfg).loss


@pytest.mark.parametrize("threshold", ["empirical", "smoothed"])
def test_weight_and_bias_gradients_match_finite_differences(threshold):
    W, b, x, y = problem()
    rs, taus = np.array([0.3, 0.5, 0.4]), taus_for(W)
    cfg = LRPConfig(threshold=threshold)
    res = layer_pass(W, b, x, y, rs, taus, cfg)
    ts = [thr.t for thr in res.threshold]
    rng = np.random.default_rng(1)
    for layer in range(len(W)):
        for _ in range(6):
            idx = tuple(rng.integers(0, s) for s in W[layer].shape)

            def f(v):  # t held fixed: the method's stop-gradient from t into w
                Wp = [Wl.copy() for Wl in W]
                Wp[layer][idx] = v
                return layer_loss(Wp, b, x, y, ts, taus, "ce")
            assert rel_err(res.grad_weights[layer][idx], central(f, W[layer][idx])) < FD_RTOL
        j = int(rng.integers(0, b[layer].size))

        def fb(v):
            bp = [bl.copy() for bl in b]
            bp[layer][j] = v
            return layer_loss(W, bp, x, y, ts, taus, "ce")
        assert rel_err(res.grad_biases[layer][j], central(fb, b[layer][j])) < FD_RTOL


def test_tau_and_threshold_gradients_of_every_layer_match_finite_differences():
    W, b, x, y = problem(2)
    rs, taus = np.array([0.2, 0.6, 0.5]), taus_for(W)
    res = layer_pass(W, b, x, y, rs, taus)
    ts = np.array([thr.t for thr in res.threshold])
    for layer in range(len(W)):
        def f_tau(v):
            tp = taus.copy()
            tp[layer] = v
            return layer_loss(W, b, x, y, ts, tp, "ce")

        def f_t(v):
            tp = ts.copy()
            tp[layer] = v
            return layer_loss(W, b, x, y, tp, taus, "ce")
        assert rel_err(res.grad_tau[layer], central(f_tau, taus[layer])) < FD_RTOL
        assert rel_err(res.grad_t[layer], central(f_t, ts[layer])) < FD_RTOL


@pytest.mark.parametrize("lam", [0.0, 10.0])
def test_ratio_gradients_end_to_end_under_the_smoothed_threshold(lam):
    """t̃_l(r_l) = F̂_l⁻¹(r_l) is differentiable: ∂L/∂r_l, regulariser included, by a central difference in r_l."""
    W, b, x, y = problem(3)
    rs, taus = np.array([0.35, 0.55, 0.45]), taus_for(W)
    cfg = LRPConfig(threshold="smoothed", lam=lam)
    res = layer_pass(W, b, x, y, rs, taus, cfg)
    for layer in range(len(W)):
        def f(v):
            rp = rs.copy()
            rp[layer] = v
            return full_loss(W, b, x, y, rp, taus, cfg)
        assert rel_err(res.grad_r[layer], central(f, rs[layer])) < FD_RTOL


def test_a_wrong_per_layer_dt_dr_is_caught_by_finite_differences():
    """The check above can fail: scaling one layer's dt/dr by 1.01 moves ∂L/∂r_l past the tolerance."""
    W, b, x, y = problem(3)
    rs, taus = np.array([0.35, 0.55, 0.45]), taus_for(W)
    cfg = LRPConfig(threshold="smoothed")
    res = layer_pass(W, b, x, y, rs, taus, cfg)
    wrong = 1.01 * res.dt_dr[1] * res.grad_t[1]

    def f(v):
        rp = rs.copy()
        rp[1] = v
        return full_loss(W, b, x, y, rp, taus, cfg)
    assert rel_err(wrong, central(f, rs[1])) > FD_RTOL


def test_one_layer_network_is_the_global_method():
    rng = np.random.default_rng(4)
    W, b = init_mlp((6, 4), rng)
    x, y = rng.standard_normal((10, 6)), rng.integers(0, 4, 10)
    for cfg in (LRPConfig(lam=3.0), LRPConfig(threshold="smoothed", lam=3.0)):
        lw = layer_pass(W, b, x, y, [0.4], [0.02], cfg)
        gl = lrp_gradients(W, b, x, y, 0.4, 0.02, cfg)
        np.testing.assert_allclose(lw.grad_weights[0], gl.grad_weights[0], rtol=SAME_PATH_RTOL, atol=0)
        for lw_v, gl_v in ((lw.grad_tau[0], gl.grad_tau), (lw.grad_t[0], gl.grad_t),
                           (lw.grad_r[0], gl.grad_r), (lw.loss, gl.loss)):
            np.testing.assert_allclose(lw_v, gl_v, rtol=SAME_PATH_RTOL, atol=0)


def test_size_weighted_regulariser_equals_the_global_one_at_equal_ratios():
    W, _, _, _ = problem()
    fr = Grouping.of("layer", len(W)).fractions(W)
    assert fr.sum() == pytest.approx(1.0, rel=FRACTION_SUM_RTOL)
    assert group_regulariser([0.3] * len(W), 10.0, fr) == pytest.approx(10.0 * 0.7 ** 2, rel=REGULARISER_RTOL)


def test_per_layer_thresholds_prune_each_layer_at_its_own_ratio():
    W, b, x, y = problem(5)
    rs = np.array([0.1, 0.5, 0.9])
    res = layer_pass(W, b, x, y, rs, taus_for(W))
    for Wl, r, thr in zip(W, rs, res.threshold):
        pruned = np.abs(Wl) < thr.t
        assert pruned.sum() == int(np.floor(r * Wl.size))  # no ties in random float64 weights
        assert np.abs(Wl[pruned]).max(initial=0) < np.abs(Wl[~pruned]).min()


@pytest.mark.parametrize("kw, match", [(dict(rs=[0.5, 0.5]), r"r must hold one value per group \(3\)"),
                                       (dict(rs=[0.5, 1.2, 0.5]), r"r\[1\] must be in"),
                                       (dict(taus=[1e-2, -1.0, 1e-2]), r"tau\[1\] must be > 0")])
def test_bad_per_layer_inputs_name_themselves(kw, match):
    W, b, x, y = problem()
    args = dict(rs=[0.5, 0.5, 0.5], taus=[1e-2] * 3) | kw
    with pytest.raises(ValueError, match=match):
        layer_pass(W, b, x, y, args["rs"], args["taus"])
