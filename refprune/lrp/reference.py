"""One LRP forward/backward pass: the exact gradient path of METHOD §3, for any grouping.

    threshold t_g from group g's weights and r_g   (refprune.density.quantile)
    soft masks m, masked weights ŵ = m·w           (refprune.core.masks)
    forward with ŵ, loss + regulariser             (refprune.core.mlp, refprune.core.losses)
    backward: g = ∂L/∂ŵ, ∂L/∂b                     (refprune.core.mlp)
    density f_g at t_g, dt_g/dr_g = 1/f_g(t_g)     (refprune.density.config)
    ∂L/∂w, ∂L/∂τ_g, ∂L/∂t_g, ∂L/∂r_g               (refprune.core.gradients)

A :class:`refprune.core.groups.Grouping` says which layers share r, τ and t. Group g has
its own r_g, τ_g, threshold t_g(r_g) (the r_g-quantile of the group's magnitudes), soft
mask m_g(w) = σ((w² − t_g²)/τ_g) on its layers and dt_g/dr_g from the density of its
magnitudes; sums run over the group's weights, layer by layer. With n_g weights in group g
and n = Σ n_g the regulariser is L_R = λ Σ_g (n_g/n)(1 − r_g)², which is λ(1 − r)² (thesis
eq. (2.23)) for one group (docs/derivations.md §9 derives the layer-wise gradients):

    ∂L/∂w    = g · (m_g + (2w²/τ_g)·s_g)                 thesis eq. (2.3), corrected
    ∂L/∂τ_g  = −Σ_g g·w·s_g·z_g / τ_g                    thesis eq. (2.10)
    ∂L/∂t_g  = −(2t_g/τ_g) Σ_g g·w·s_g                   thesis eq. (2.11), inner sum
    ∂L/∂r_g  = (dt_g/dr_g)·∂L/∂t_g + 2λ(n_g/n)(r_g − 1)

The thesis's global method is one group holding every layer; layer-wise LRP (thesis §5.3,
future work) is one group per layer. :func:`lrp_gradients` is the pass the gradient oracle
and the golden vectors check; without a grouping it is the global method with scalar r, τ
and t. The training loop's exact step (:func:`refprune.train.steps.exact.exact_step`)
computes the same quantities by a fused, threaded route, tested equal piece by piece
against the functions used here. :func:`masked_loss` is the loss alone with the
thresholds given, which is what finite differences perturb.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from refprune.core.gradients import (
    grad_tau,
    grad_threshold,
    grad_weight,
    group_grad_ratio,
    group_regulariser,
)
from refprune.core.groups import Grouping
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
        λ of the regulariser L_R = λ(1 − r)² (thesis eq. (2.23)), λ Σ_g (n_g/n)(1 − r_g)²
        over the groups of a grouping; 0 disables it.
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
    """Everything one LRP pass computes (lists over layers hold one array per layer).

    The per-group fields (``threshold`` to ``density_points``) take the form of the
    pass's r: for the global method without a grouping they hold the one group's value
    (a Threshold, floats, an ndarray of points); with a grouping they hold one entry per
    group (a list of Threshold, arrays of shape (G,), a list of point arrays).

    Attributes
    ----------
    loss : float
        Data loss + regulariser.
    data_loss, reg_loss : float
    threshold : Threshold, or list of Threshold
    masks, slopes, logits : list of ndarray, shapes of the weights
        m, s = m(1 − m) and z = (w² − t²)/τ, each layer at its group's t and τ.
    grad_masked : list of ndarray
        g = ∂L/∂ŵ.
    grad_weights, grad_biases : list of ndarray
        ∂L/∂w (thesis eq. (2.3), corrected) and ∂L/∂b.
    grad_tau, grad_t, grad_r : float, or ndarray of shape (G,)
        Thesis eqs. (2.10), (2.11) inner sum, (2.11) + (2.23).
    dt_dr, density : float, or ndarray of shape (G,)
        dt/dr and the density value(s) it came from (their mean for
        ``order_stats``; see ``density_points``).
    density_points : ndarray, or list of ndarray
        Where the density was evaluated.
    output : ndarray, shape (N, D_out)
        The network output.
    grouping : Grouping or None
        The pass's grouping; None for the global method with scalar r.
    """

    loss: float
    data_loss: float
    reg_loss: float
    threshold: Threshold | list
    masks: list
    slopes: list
    logits: list
    grad_masked: list
    grad_weights: list
    grad_biases: list
    grad_tau: float | np.ndarray
    grad_t: float | np.ndarray
    grad_r: float | np.ndarray
    dt_dr: float | np.ndarray
    density: float | np.ndarray
    density_points: np.ndarray | list
    output: np.ndarray
    grouping: Grouping | None = None


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


def check_per_group(values, name: str, grouping: Grouping, check) -> np.ndarray:
    """One validated scalar per group of ``grouping``, shape (G,) (``check`` names entry i ``name[i]``)."""
    values = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if values.shape != (grouping.n_groups,):
        raise ValueError(f"{name} must hold one value per group ({grouping.n_groups}), "
                         f"got shape {values.shape}")
    return np.array([check(v, f"{name}[{i}]") for i, v in enumerate(values)])


def check_inputs(weights, biases, x, y, r, tau, config: LRPConfig, grouping: Grouping | None = None, t=None):
    """Validate everything :func:`lrp_gradients` takes.

    Returns
    -------
    weights, biases, x, y
        Converted arrays.
    rs, taus, ts : sequences of float, one per group
        r, τ and the given thresholds (``ts`` None when ``t`` is); for the global method
        without a grouping, the scalars r, tau, t as one-element lists.
    """
    weights, biases, x = check_mlp(weights, biases, x)
    y = check_targets(y, config.loss, x.shape[0], weights[-1].shape[1], x.dtype)
    if grouping is None:
        rs, taus = [check_ratio(r)], [check_positive(tau, "tau")]
        ts = None if t is None else [check_nonnegative(t, "t")]
        return weights, biases, x, y, rs, taus, ts
    if grouping.n_layers != len(weights):
        raise ValueError(f"grouping covers {grouping.n_layers} layers, the network has {len(weights)}")
    rs = check_per_group(r, "r", grouping, check_ratio)
    taus = check_per_group(tau, "tau", grouping, check_positive)
    ts = None if t is None else check_per_group(t, "t", grouping, check_nonnegative)
    return weights, biases, x, y, rs, taus, ts


def grouping_or_global(grouping: Grouping | None, n_layers: int) -> Grouping:
    """``grouping``, or for None the global method's one group of every layer."""
    return Grouping.of("global", n_layers) if grouping is None else grouping


def layer_values(values, grouping: Grouping | None, n_layers: int) -> list:
    """Each layer's entry of a per-group quantity: ``values`` itself for every layer when
    ``grouping`` is None (the global method's scalar), else the entry of the layer's group."""
    if grouping is None:
        return [values] * n_layers
    return [values[grouping.group_of(l)] for l in range(n_layers)]


def group_thresholds(weights, rs, config: LRPConfig, grouping: Grouping, ts=None) -> list:
    """t_g(r_g) of each group under the configured rule; ``ts`` overrides the values of t."""
    thrs = [compute_threshold(grouping.members(weights, g), r, config.threshold, config.density)
            for g, r in enumerate(rs)]
    if ts is None:
        return thrs
    return [Threshold(t=float(t), k=thr.k, lower=thr.lower, upper=thr.upper) for thr, t in zip(thrs, ts)]


def masked_forward_backward(weights, biases, x, y, t, tau, loss: str, grouping: Grouping | None = None):
    """Masks at given thresholds, forward with ŵ = m·w, loss, backward.

    Parameters
    ----------
    weights, biases, x, y
        As for :func:`lrp_gradients`.
    t, tau : float, or sequence of float (one per group)
        Threshold(s) and temperature(s): scalars for every layer when ``grouping`` is None.
    loss : {"ce", "mse"}
    grouping : Grouping, optional

    Returns
    -------
    data_loss : float
    out : ndarray, shape (N, D_out)
    masks, slopes, logits : lists of ndarray
    g : list of ndarray
        ∂L/∂ŵ per layer.
    grad_biases : list of ndarray
    """
    n_layers = len(weights)
    parts = [soft_mask_and_slope(W, tl, taul) for W, tl, taul in
             zip(weights, layer_values(t, grouping, n_layers), layer_values(tau, grouping, n_layers))]
    masks, slopes, logits = (list(p) for p in zip(*parts))
    out, cache = mlp_forward(x, [m * W for m, W in zip(masks, weights)], biases)  # ŵ = m(w)·w
    data_loss, dout = loss_and_grad(loss, out, y)
    g, grad_biases = mlp_backward(dout, cache)
    return data_loss, out, masks, slopes, logits, g, grad_biases


def masked_loss(weights, biases, x, y, t, tau, loss: str, grouping: Grouping | None = None) -> float:
    """The data loss alone at given thresholds (no regulariser); arguments as for
    :func:`masked_forward_backward`."""
    return masked_forward_backward(weights, biases, x, y, t, tau, loss, grouping)[0]


def density_for_dt_dr(weights, thr: Threshold, config: LRPConfig):
    """The density value f used in dt/dr, and where it was evaluated.

    The one route from a DensityConfig to dt/dr:
    :func:`refprune.density.config.threshold_dt_dr`, on the magnitudes of ``weights``
    (one group's layers).

    Returns
    -------
    dt_dr : float
    density : float
    points : ndarray
    """
    return threshold_dt_dr(all_magnitudes(weights), thr.t, thr.lower, thr.upper, config.density,
                           smoothed=config.threshold == "smoothed", at=config.dt_dr_at)


def lrp_gradients(weights, biases, x, y, r, tau, config: LRPConfig = LRPConfig(), t=None,
                  grouping: Grouping | None = None) -> LRPResult:
    """Loss and all LRP gradients for one batch (METHOD §3, exact path).

    Parameters
    ----------
    weights : list of ndarray, ``weights[l]`` of shape (D_l, D_{l+1})
        Unmasked weights w.
    biases : list of ndarray, ``biases[l]`` of shape (D_{l+1},)
    x : ndarray, shape (N, D_0)
    y : ndarray
        Labels of shape (N,) for ``ce``; targets of shape (N, D_L) for ``mse``.
    r : float in [0, 1), or array_like of shape (G,)
        Pruning ratio(s).
    tau : float > 0, or array_like of shape (G,)
        Temperature(s).
    config : LRPConfig
        Loss, λ, threshold rule and density (applied per group).
    t : float, or array_like of shape (G,), optional
        Use these thresholds instead of t(r) (the oracle perturbs t this way); dt/dr is
        still evaluated at them.
    grouping : Grouping, optional
        Which layers share r, τ and t; r, tau, t and the per-group results then hold one
        value per group. None: the global method (one group of every layer) with scalar
        r, tau, t and scalar results.

    Returns
    -------
    LRPResult

    Examples
    --------
    A 6-5-4-3 network, a batch of 8, r = 0.5 (the oracle's default case):

    >>> from refprune.lrp.reference import lrp_gradients
    >>> from refprune.oracle.case import Case, make_problem
    >>> p = make_problem(Case())
    >>> res = lrp_gradients(p.weights, p.biases, p.x, p.y, p.r, p.tau, p.config)
    >>> res.threshold.k, [g.shape for g in res.grad_weights]        # k = floor(r·n) of n = 62 weights
    (31, [(6, 5), (5, 4), (4, 3)])
    >>> bool(res.dt_dr > 0), bool(res.grad_r == res.dt_dr * res.grad_t)   # eq. (2.11) with λ = 0
    (True, True)
    """
    weights, biases, x, y, rs, taus, ts = check_inputs(weights, biases, x, y, r, tau, config, grouping, t)
    groups = grouping_or_global(grouping, len(weights))
    thrs = group_thresholds(weights, rs, config, groups, ts)
    ts = [thr.t for thr in thrs]
    data_loss, out, masks, slopes, logits, g, grad_b = masked_forward_backward(
        weights, biases, x, y, ts, taus, config.loss, groups)
    tau_of_layer = layer_values(taus, groups, len(weights))
    grad_w = [grad_weight(*parts) for parts in zip(g, weights, masks, slopes, tau_of_layer)]  # eq. (2.3)
    d_tau, d_t, dens = [], [], []
    for k in range(groups.n_groups):
        gk, Wk, sk, zk = (groups.members(arrays, k) for arrays in (g, weights, slopes, logits))
        d_tau.append(grad_tau(gk, Wk, sk, zk, taus[k]))  # eq. (2.10) over group k
        d_t.append(grad_threshold(gk, Wk, sk, ts[k], taus[k]))  # eq. (2.11), inner sum over group k
        dens.append(density_for_dt_dr(Wk, thrs[k], config))  # dt_k/dr_k = 1/f_k(t_k), eq. (2.16)
    dt_dr = np.array([d[0] for d in dens])
    fractions = groups.fractions(weights)
    reg = group_regulariser(rs, config.lam, fractions)  # eq. (2.23)
    d_r = group_grad_ratio(d_t, dt_dr, rs, config.lam, fractions)  # eqs. (2.11), (2.23)
    if grouping is None:  # the global method: the one group's values as scalars
        per_group = dict(threshold=thrs[0], grad_tau=d_tau[0], grad_t=d_t[0], grad_r=float(d_r[0]),
                         dt_dr=dens[0][0], density=dens[0][1], density_points=dens[0][2])
    else:
        per_group = dict(threshold=thrs, grad_tau=np.array(d_tau), grad_t=np.array(d_t), grad_r=d_r,
                         dt_dr=dt_dr, density=np.array([d[1] for d in dens]),
                         density_points=[d[2] for d in dens])
    return LRPResult(loss=data_loss + reg, data_loss=data_loss, reg_loss=reg, masks=masks, slopes=slopes,
                     logits=logits, grad_masked=g, grad_weights=grad_w, grad_biases=grad_b, output=out,
                     grouping=grouping, **per_group)
