"""The composed LRP pass: input validation and consistency of its parts."""

import numpy as np
import pytest

from refprune.core.masks import soft_mask_derivatives
from refprune.lrp.reference import LRPConfig, lrp_gradients
from refprune.oracle.case import Case, make_problem

# lrp_gradients against the chain rule written out here: the same float64 products, summed
# in another order.
CHAIN_RULE_RTOL = 1e-13
CHAIN_RULE_ATOL = 1e-17  # entries that cancel to ~0
SUM_ORDER_RTOL = 1e-12
# a_k and a_{k+1} are within ~1/(n f) ≈ 1e-3 of t, where the KDE barely changes.
ORDER_STATS_VS_T_RTOL = 1e-2


def problem_args(**kw):
    p = make_problem(Case(**kw))
    return [p.weights, p.biases, p.x, p.y, p.r, p.tau], p.config


def test_gradients_are_consistent_with_mask_derivatives():
    (W, b, x, y, r, tau), cfg = problem_args()
    res = lrp_gradients(W, b, x, y, r, tau, cfg)
    t = res.threshold.t
    d_tau = d_t = 0.0
    for l in range(len(W)):
        dm_dw, dm_dt, dm_dtau = soft_mask_derivatives(W[l], t, tau)
        g = res.grad_masked[l]
        # chain rule through ŵ = m(w)·w, written independently of refprune.core.gradients
        np.testing.assert_allclose(res.grad_weights[l], g * (res.masks[l] + W[l] * dm_dw), rtol=CHAIN_RULE_RTOL, atol=CHAIN_RULE_ATOL)
        d_tau += np.sum(g * W[l] * dm_dtau)
        d_t += np.sum(g * W[l] * dm_dt)
    assert res.grad_tau == pytest.approx(d_tau, rel=SUM_ORDER_RTOL)
    assert res.grad_t == pytest.approx(d_t, rel=SUM_ORDER_RTOL)
    assert res.grad_r == pytest.approx(res.dt_dr * res.grad_t, rel=SUM_ORDER_RTOL)
    assert res.dt_dr > 0


def test_regulariser_enters_loss_and_r_gradient():
    (W, b, x, y, r, tau), _ = problem_args()
    base = lrp_gradients(W, b, x, y, r, tau, LRPConfig(lam=0.0))
    reg = lrp_gradients(W, b, x, y, r, tau, LRPConfig(lam=10.0))
    assert reg.loss - base.loss == pytest.approx(10 * (1 - r) ** 2, rel=SUM_ORDER_RTOL)  # thesis eq. (2.23)
    assert reg.grad_r - base.grad_r == pytest.approx(2 * 10 * (r - 1), rel=SUM_ORDER_RTOL)


def test_order_statistics_option_averages_two_inverse_densities():
    (W, b, x, y, r, tau), _ = problem_args(layers=(20, 30, 5))
    at_t = lrp_gradients(W, b, x, y, r, tau, LRPConfig(dt_dr_at="t"))
    at_os = lrp_gradients(W, b, x, y, r, tau, LRPConfig(dt_dr_at="order_stats"))
    assert at_os.density_points.shape == (2,)
    assert at_os.density_points[0] <= at_t.threshold.t <= at_os.density_points[1]
    assert at_os.dt_dr == pytest.approx(at_t.dt_dr, rel=ORDER_STATS_VS_T_RTOL)


@pytest.mark.parametrize("change, match", [
    (dict(r=1.0), "r must be in"), (dict(r=-0.1), "r must be in"), (dict(tau=0.0), "tau must be > 0"),
    (dict(tau=float("nan")), "tau must be finite"),
    (dict(x=np.zeros((8, 5))), "x has 5 features"), (dict(x=np.full((8, 6), np.nan)), "x contains"),
    (dict(y=np.zeros(7, int)), "y must have shape"), (dict(y=np.full(8, 3)), r"y labels must be in \[0, 3\)"),
    (dict(biases=[np.zeros(5), np.zeros(4), np.zeros(2)]), r"biases\[2\]"),
    (dict(weights=[]), "weights has 0 layers|at least one layer"),
])
def test_bad_input_is_a_clear_value_error(change, match):
    (W, b, x, y, r, tau), cfg = problem_args()
    args = dict(weights=W, biases=b, x=x, y=y, r=r, tau=tau)
    args.update(change)
    with pytest.raises(ValueError, match=match):
        lrp_gradients(config=cfg, **args)


def test_mse_targets_must_match_output_shape():
    (W, b, x, y, r, tau), _ = problem_args(loss="mse")
    with pytest.raises(ValueError, match="y must have shape"):
        lrp_gradients(W, b, x, y[:, :2], r, tau, LRPConfig(loss="mse"))


@pytest.mark.parametrize("kw, match", [(dict(loss="hinge"), "loss must be"), (dict(lam=-1), "lam must be"),
                                       (dict(threshold="x"), "threshold must be"), (dict(dt_dr_at="x"), "dt_dr_at")])
def test_bad_config(kw, match):
    with pytest.raises(ValueError, match=match):
        LRPConfig(**kw)
