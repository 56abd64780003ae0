"""Layer-wise LRP: a pruning ratio r_l and temperature τ_l per layer (thesis §5.3, future work).

The global method pools every weight into one set with one threshold t(r). The
layer-wise variant gives layer l its own threshold t_l(r_l), the r_l-quantile of that
layer's magnitudes, its own soft mask m_l(w) = σ((w² − t_l²)/τ_l), and its own
dt_l/dr_l = 1/f_l(t_l) from the density f_l of that layer's magnitudes. With n_l weights
in layer l and n = Σ n_l, the regulariser is

    L_R = λ Σ_l (n_l/n)(1 − r_l)²,

which equals the global λ(1 − r)² when every r_l = r, so λ means the same in both
methods (docs/derivations.md, "Layer-wise LRP", derives the gradients and the
alternative regulariser λ(1 − r̄)² with r̄ = Σ_l (n_l/n) r_l).

Per layer, with g_l = ∂L/∂ŵ_l, s_l = m_l(1 − m_l), z_l = (w² − t_l²)/τ_l and sums over
that layer's weights only:

    ∂L/∂w      = g_l · (m_l + (2w²/τ_l)·s_l)                 thesis eq. (2.3), per layer
    ∂L/∂τ_l    = −Σ_l g_l·w·s_l·z_l / τ_l                    thesis eq. (2.10), per layer
    ∂L/∂t_l    = −(2t_l/τ_l) Σ_l g_l·w·s_l                   thesis eq. (2.11), inner sum
    ∂L/∂r_l    = (dt_l/dr_l)·∂L/∂t_l + 2λ(n_l/n)(r_l − 1)

:func:`layerwise_gradients` is the plain reference: it reuses the global method's
functions layer by layer and is checked against finite differences in
``tests/test_layerwise.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refprune.core.gradients import grad_tau, grad_threshold, grad_weight, group_grad_ratio, group_regulariser
from refprune.core.losses import loss_and_grad
from refprune.core.masks import soft_mask_and_slope
from refprune.core.mlp import check_mlp, mlp_backward, mlp_forward
from refprune.core.threshold import Threshold
from refprune.core.validation import check_nonnegative, check_positive, check_ratio
from refprune.density.quantile import compute_threshold
from refprune.lrp.reference import LRPConfig, check_targets, density_for_dt_dr


@dataclass
class LayerwiseResult:
    """Everything one layer-wise LRP pass computes (lists hold one entry per layer).

    Attributes
    ----------
    loss, data_loss, reg_loss : float
    thresholds : list of Threshold
    masks, slopes, logits, grad_masked, grad_weights, grad_biases : list of ndarray
    grad_tau, grad_t, grad_r, dt_dr, density : ndarray, shape (L,)
    output : ndarray, shape (N, D_out)
    """

    loss: float
    data_loss: float
    reg_loss: float
    thresholds: list
    masks: list
    slopes: list
    logits: list
    grad_masked: list
    grad_weights: list
    grad_biases: list
    grad_tau: np.ndarray
    grad_t: np.ndarray
    grad_r: np.ndarray
    dt_dr: np.ndarray
    density: np.ndarray
    output: np.ndarray


def layer_fractions(weights) -> np.ndarray:
    """n_l / n for each layer: the regulariser's weights, shape (L,)."""
    sizes = np.array([W.size for W in weights], dtype=np.float64)
    return sizes / sizes.sum()


def check_per_layer(values, name: str, n_layers: int, check) -> np.ndarray:
    """One validated scalar per layer, shape (L,)."""
    values = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if values.shape != (n_layers,):
        raise ValueError(f"{name} must hold one value per layer ({n_layers}), got shape {values.shape}")
    return np.array([check(v, f"{name}[{i}]") for i, v in enumerate(values)])


def layer_thresholds(weights, rs, config: LRPConfig, ts=None) -> list:
    """t_l(r_l) of each layer under the configured rule; ``ts`` overrides the values of t."""
    thrs = [compute_threshold([W], r, config.threshold, config.density) for W, r in zip(weights, rs)]
    if ts is None:
        return thrs
    ts = check_per_layer(ts, "ts", len(weights), check_nonnegative)
    return [Threshold(t=float(t), k=thr.k, lower=thr.lower, upper=thr.upper) for thr, t in zip(thrs, ts)]


def layerwise_masked_pass(weights, biases, x, y, ts, taus, loss: str):
    """Per-layer masks, forward with ŵ_l = m_l·w, loss, backward.

    Returns
    -------
    data_loss : float
    out : ndarray, shape (N, D_out)
    masks, slopes, logits, g, grad_biases : lists of ndarray
    """
    parts = [soft_mask_and_slope(W, t, tau) for W, t, tau in zip(weights, ts, taus)]
    masks, slopes, logits = (list(p) for p in zip(*parts))
    out, cache = mlp_forward(x, [m * W for m, W in zip(masks, weights)], biases)  # ŵ_l = m_l(w)·w
    data_loss, dout = loss_and_grad(loss, out, y)
    g, grad_biases = mlp_backward(dout, cache)
    return data_loss, out, masks, slopes, logits, g, grad_biases


def layerwise_masked_loss(weights, biases, x, y, ts, taus, loss: str) -> float:
    """The data loss alone at given per-layer thresholds (what finite differences perturb)."""
    return layerwise_masked_pass(weights, biases, x, y, ts, taus, loss)[0]


def layerwise_gradients(weights, biases, x, y, rs, taus, config: LRPConfig = LRPConfig(),
                        ts=None) -> LayerwiseResult:
    """Loss and all layer-wise LRP gradients for one batch (plain reference).

    Parameters
    ----------
    weights : list of ndarray, ``weights[l]`` of shape (D_l, D_{l+1})
    biases : list of ndarray, ``biases[l]`` of shape (D_{l+1},)
    x : ndarray, shape (N, D_0)
    y : ndarray
        Labels of shape (N,) for ``ce``; targets of shape (N, D_L) for ``mse``.
    rs : array_like, shape (L,)
        r_l in [0, 1) per layer.
    taus : array_like, shape (L,)
        τ_l > 0 per layer.
    config : LRPConfig
        Loss, λ, threshold rule and density, as for the global method (applied per layer).
    ts : array_like, shape (L,), optional
        Use these thresholds instead of t_l(r_l); dt_l/dr_l is still evaluated at them.

    Returns
    -------
    LayerwiseResult
    """
    weights, biases, x = check_mlp(weights, biases, x)
    y = check_targets(y, config.loss, x.shape[0], weights[-1].shape[1], x.dtype)
    n_layers = len(weights)
    rs = check_per_layer(rs, "rs", n_layers, check_ratio)
    taus = check_per_layer(taus, "taus", n_layers, check_positive)
    fractions = layer_fractions(weights)
    thrs = layer_thresholds(weights, rs, config, ts)
    ts = [thr.t for thr in thrs]
    data_loss, out, masks, slopes, logits, g, grad_b = layerwise_masked_pass(
        weights, biases, x, y, ts, taus, config.loss)
    grad_w = [grad_weight(*parts) for parts in zip(g, weights, masks, slopes, taus)]
    d_tau = np.array([grad_tau([gl], [W], [s], [z], tau) for gl, W, s, z, tau in zip(g, weights, slopes, logits, taus)])
    d_t = np.array([grad_threshold([gl], [W], [s], t, tau) for gl, W, s, t, tau in zip(g, weights, slopes, ts, taus)])
    dens = [density_for_dt_dr([W], thr, config) for W, thr in zip(weights, thrs)]  # dt_l/dr_l = 1/f_l(t_l)
    dt_dr = np.array([d[0] for d in dens])
    reg = group_regulariser(rs, config.lam, fractions)
    return LayerwiseResult(
        loss=data_loss + reg, data_loss=data_loss, reg_loss=reg, thresholds=thrs,
        masks=masks, slopes=slopes, logits=logits, grad_masked=g, grad_weights=grad_w,
        grad_biases=grad_b, grad_tau=d_tau, grad_t=d_t,
        grad_r=group_grad_ratio(d_t, dt_dr, rs, config.lam, fractions),
        dt_dr=dt_dr, density=np.array([d[1] for d in dens]), output=out)
