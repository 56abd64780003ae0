"""One LRP forward/backward pass: the exact gradient path of METHOD §3.

    threshold t from the weights and r      (refprune.core.threshold)
    soft masks m, masked weights ŵ = m·w    (refprune.core.masks)
    forward with ŵ, loss + λ(1 − r)²        (refprune.core.mlp, refprune.core.losses)
    backward: g = ∂L/∂ŵ, ∂L/∂b              (refprune.core.mlp)
    density f at t, dt/dr = 1/f(t)          (refprune.density.config)
    ∂L/∂w, ∂L/∂τ, ∂L/∂t, ∂L/∂r              (refprune.core.gradients)

:func:`lrp_gradients` is what the gradient oracle and the golden vectors
check; the training loop's exact step (:func:`refprune.train.steps.exact.exact_step`)
computes the same quantities by a fused, threaded route, tested equal piece
by piece against the functions used here. :func:`masked_loss` is the loss
alone with t given, which is what the oracle differentiates numerically.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from refprune.core.gradients import grad_ratio, grad_tau, grad_threshold, grad_weight, regulariser
from refprune.core.losses import LOSSES, loss_and_grad
from refprune.core.masks import soft_mask_and_slope
from refprune.core.mlp import check_mlp, mlp_backward, mlp_forward
from refprune.core.threshold import Threshold, all_magnitudes
from refprune.core.validation import check_array, check_choice, check_nonnegative, check_positive, check_ratio
from refprune.density.config import DensityConfig, threshold_dt_dr
from refprune.density.quantile import THRESHOLD_RULES, compute_threshold

DT_DR_POINTS = ("t", "order_stats")


@dataclass(frozen=True)
class LRPConfig:
    """Settings of the LRP objective that are not trained.

    Attributes
    ----------
    loss : {"ce", "mse"}
        Mean softmax cross-entropy or mean squared error.
    lam : float
        λ of the regulariser L_R = λ(1 − r)² (thesis eq. (2.23)); 0 disables it.
    threshold : {"empirical", "smoothed"}
        Threshold rule, see :mod:`refprune.core.threshold`.
    density : DensityConfig
        Density estimate used for dt/dr under the empirical rule.
    dt_dr_at : {"t", "order_stats"}
        Where 1/f is evaluated under the empirical rule: at t itself (the
        natural reading of thesis eq. (2.16)), or averaged over the two order
        statistics a_k, a_{k+1} around t (the published code, with the sign
        corrected). Under the smoothed rule dt/dr is always 1/f̂(t̃) with the
        exact reflected KDE, which is what makes it exact.
    """

    loss: str = "ce"
    lam: float = 0.0
    threshold: str = "empirical"
    density: DensityConfig = field(default_factory=DensityConfig)
    dt_dr_at: str = "t"

    def __post_init__(self):
        check_choice(self.loss, "loss", LOSSES)
        check_nonnegative(self.lam, "lam")
        check_choice(self.threshold, "threshold", THRESHOLD_RULES)
        check_choice(self.dt_dr_at, "dt_dr_at", DT_DR_POINTS)
        if not isinstance(self.density, DensityConfig):
            raise ValueError(f"density must be a DensityConfig, got {type(self.density).__name__}")


@dataclass
class LRPResult:
    """Everything one LRP pass computes (lists hold one array per layer).

    Attributes
    ----------
    loss : float
        Data loss + regulariser.
    data_loss, reg_loss : float
    threshold : Threshold
    masks, slopes, logits : list of ndarray, shapes of the weights
        m, s = m(1 − m) and z = (w² − t²)/τ.
    grad_masked : list of ndarray
        g = ∂L/∂ŵ.
    grad_weights, grad_biases : list of ndarray
        ∂L/∂w (thesis eq. (2.3), corrected) and ∂L/∂b.
    grad_tau, grad_t, grad_r : float
        Thesis eqs. (2.10), (2.11) inner sum, (2.11) + (2.23).
    dt_dr, density : float
        dt/dr and the density value(s) it came from (their mean for
        ``order_stats``; see ``density_points``).
    density_points : ndarray
        Where the density was evaluated.
    output : ndarray, shape (N, D_out)
        The network output.
    """

    loss: float
    data_loss: float
    reg_loss: float
    threshold: Threshold
    masks: list
    slopes: list
    logits: list
    grad_masked: list
    grad_weights: list
    grad_biases: list
    grad_tau: float
    grad_t: float
    grad_r: float
    dt_dr: float
    density: float
    density_points: np.ndarray
    output: np.ndarray


def check_targets(y, loss: str, n: int, n_out: int, dtype) -> np.ndarray:
    """Validate targets: integer labels in [0, n_out) for ``ce``, an (n, n_out) array for ``mse``."""
    if loss == "ce":
        y = np.asarray(y)
        if y.shape != (n,):
            raise ValueError(f"y must have shape ({n},) of class labels, got {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            if not np.all(np.isfinite(y)) or np.any(np.asarray(y) != np.round(y)):
                raise ValueError("y must hold integer class labels for loss 'ce'")
            y = y.astype(np.int64)
        if y.size and (y.min() < 0 or y.max() >= n_out):
            raise ValueError(f"y labels must be in [0, {n_out}), got range [{y.min()}, {y.max()}]")
        return y
    y = check_array(y, "y", ndim=2, dtype=dtype)
    if y.shape != (n, n_out):
        raise ValueError(f"y must have shape ({n}, {n_out}) for loss 'mse', got {y.shape}")
    return y


def check_inputs(weights, biases, x, y, r, tau, config: LRPConfig):
    """Validate everything :func:`lrp_gradients` takes; return converted arrays and scalars."""
    weights, biases, x = check_mlp(weights, biases, x)
    y = check_targets(y, config.loss, x.shape[0], weights[-1].shape[1], x.dtype)
    return weights, biases, x, y, check_ratio(r), check_positive(tau, "tau")


def masked_forward_backward(weights, biases, x, y, t: float, tau: float, loss: str):
    """Masks at a given threshold, forward with ŵ = m·w, loss, backward.

    Returns
    -------
    data_loss : float
    out : ndarray, shape (N, D_out)
    masks, slopes, logits : lists of ndarray
    g : list of ndarray
        ∂L/∂ŵ per layer.
    grad_biases : list of ndarray
    """
    masks, slopes, logits = zip(*(soft_mask_and_slope(W, t, tau) for W in weights))
    masked = [m * W for m, W in zip(masks, weights)]  # ŵ = m(w)·w
    out, cache = mlp_forward(x, masked, biases)
    data_loss, dout = loss_and_grad(loss, out, y)
    g, grad_biases = mlp_backward(dout, cache)
    return data_loss, out, list(masks), list(slopes), list(logits), g, grad_biases


def masked_loss(weights, biases, x, y, t: float, tau: float, loss: str) -> float:
    """The data loss alone at a given threshold t (no regulariser)."""
    masks = [soft_mask_and_slope(W, t, tau)[0] for W in weights]
    out, _ = mlp_forward(x, [m * W for m, W in zip(masks, weights)], biases)
    return loss_and_grad(loss, out, y)[0]


def density_for_dt_dr(weights, thr: Threshold, config: LRPConfig):
    """The density value f used in dt/dr, and where it was evaluated.

    The one route from a DensityConfig to dt/dr:
    :func:`refprune.density.config.threshold_dt_dr`.

    Returns
    -------
    dt_dr : float
    density : float
    points : ndarray
    """
    return threshold_dt_dr(all_magnitudes(weights), thr.t, thr.lower, thr.upper, config.density,
                           smoothed=config.threshold == "smoothed", at=config.dt_dr_at)


def lrp_gradients(weights, biases, x, y, r: float, tau: float,
                  config: LRPConfig = LRPConfig(), t: float | None = None) -> LRPResult:
    """Loss and all LRP gradients for one batch (METHOD §3, exact path).

    Parameters
    ----------
    weights : list of ndarray, ``weights[l]`` of shape (D_l, D_{l+1})
        Unmasked weights w.
    biases : list of ndarray, ``biases[l]`` of shape (D_{l+1},)
    x : ndarray, shape (N, D_0)
    y : ndarray
        Labels of shape (N,) for ``ce``; targets of shape (N, D_L) for ``mse``.
    r : float in [0, 1)
        Pruning ratio.
    tau : float > 0
        Temperature.
    config : LRPConfig
    t : float, optional
        Use this threshold instead of computing t(r) (the oracle perturbs t
        this way). dt/dr is still evaluated at the given t.

    Returns
    -------
    LRPResult
    """
    weights, biases, x, y, r, tau = check_inputs(weights, biases, x, y, r, tau, config)
    thr = compute_threshold(weights, r, config.threshold, config.density)
    if t is not None:
        t = check_nonnegative(t, "t")
        thr = Threshold(t=t, k=thr.k, lower=thr.lower, upper=thr.upper)
    data_loss, out, masks, slopes, logits, g, grad_b = masked_forward_backward(
        weights, biases, x, y, thr.t, tau, config.loss)
    reg = regulariser(r, config.lam)
    grad_w = [grad_weight(gl, W, m, s, tau) for gl, W, m, s in zip(g, weights, masks, slopes)]
    d_tau = grad_tau(g, weights, slopes, logits, tau)
    d_t = grad_threshold(g, weights, slopes, thr.t, tau)
    dt_dr, dens, points = density_for_dt_dr(weights, thr, config)
    d_r = grad_ratio(d_t, dt_dr, r, config.lam)
    return LRPResult(
        loss=data_loss + reg, data_loss=data_loss, reg_loss=reg, threshold=thr,
        masks=masks, slopes=slopes, logits=logits, grad_masked=g,
        grad_weights=grad_w, grad_biases=grad_b, grad_tau=d_tau, grad_t=d_t,
        grad_r=d_r, dt_dr=dt_dr, density=dens, density_points=points, output=out)
