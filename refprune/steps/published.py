"""The LRP step on the published code's gradient path (METHOD §6, deviations P1–P4 switchable).

:func:`published_gradients` is one forward/backward pass and the first run
of the published gradient hook (:func:`published_hook`), usable on its own
(the P1/P2 tests, the derivations); :func:`published_step` is the whole
published sequence, with the state that sequence keeps between steps (P4's
stale t and τ and the masks left for the next forward pass) in its own
:class:`PublishedState`, not in the shared :class:`TrainState`. The step's
masks use the training path's hard cutoff (:func:`refprune.masks.mask_cutoff`):
masks of pruned weights are exactly 0, not subnormal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..density import PUBLISHED_DENSITY, DensityConfig, density_at, fast_nearest_binned_density_at
from ..gradients import grad_ratio, grad_tau, grad_threshold, grad_weight, regulariser, threshold_derivative
from ..losses import loss_and_grad
from ..masks import cutoff_binds, mask_cutoff, soft_mask_and_slope
from ..mlp import mlp_backward, mlp_forward
from ..optim import flush_subnormals, gradient_flush_level
from ..threshold import Threshold, empirical_threshold
from .common import TrainState, adam_step, buffers, layer_views, magnitudes, on_halves, step_threshold, update_r_tau

DEVIATIONS = ("P1", "P2", "P3", "P4")


@dataclass
class PublishedState:
    """What the published sequence carries from one step to the next (METHOD §6 P4).

    Attributes
    ----------
    stale_t, stale_tau : float
        Under P4: the t and τ the next forward pass masks with.
    forward_t : float
        The t the last forward pass masked with.
    next_forward_masks : tuple or None
        Under P4: (masks, slopes, logits) of the current weights with
        ``stale_t`` and ``stale_tau``, left by the last step for the next
        forward pass (computed once, not twice).
    """

    stale_t: float = float("nan")
    stale_tau: float = float("nan")
    forward_t: float = float("nan")
    next_forward_masks: tuple | None = None


def published_state(state: TrainState) -> PublishedState:
    """The published step's own state, kept in ``state.variant`` (created on the first step)."""
    if state.variant is None:
        state.variant = PublishedState()
    if not isinstance(state.variant, PublishedState):
        raise ValueError(f"state.variant holds a {type(state.variant).__name__}, not a PublishedState")
    return state.variant


@dataclass(frozen=True)
class PublishedPath:
    """Which deviations of the published code (METHOD §6) a published step applies."""

    deviations: frozenset = field(default_factory=lambda: frozenset(DEVIATIONS))
    density: DensityConfig = field(default_factory=lambda: PUBLISHED_DENSITY)

    def __post_init__(self):
        unknown = set(self.deviations) - set(DEVIATIONS)
        if unknown:
            raise ValueError(f"deviations must be a subset of {list(DEVIATIONS)}, got {sorted(unknown)}")

    def has(self, name: str) -> bool:
        return name in self.deviations


def published_hook(G, W, t: float, tau: float, dt_dr: float, r: float, lam: float, mask_parts=None):
    """The published code's gradient hook: its formulas applied to whatever .grad holds.

    Parameters
    ----------
    G : list of ndarray
        The weight gradient the hook receives (m·g under P1; g otherwise; an
        already-transformed gradient on the second and third runs under P3).
    W : list of ndarray
        Weights the masks are rebuilt from.
    mask_parts : tuple of lists, optional
        (masks, slopes, logits) already computed for these W, t and τ.

    Returns
    -------
    dW, d_tau, d_r
    """
    masks, slopes, logits = mask_parts or layer_masks(W, t, tau)
    dW = [grad_weight(Gl, Wl, m, s, tau) for Gl, Wl, m, s in zip(G, W, masks, slopes)]
    d_tau = grad_tau(G, W, slopes, logits, tau)
    d_r = grad_ratio(grad_threshold(G, W, slopes, t, tau), dt_dr, r, lam)
    return dW, d_tau, d_r


def layer_masks(W, t: float, tau: float):
    """(masks, slopes, logits) of every layer, as lists."""
    return tuple(list(part) for part in zip(*(soft_mask_and_slope(Wl, t, tau) for Wl in W)))


def flat_layer_masks(state: TrainState, a: np.ndarray, t: float, tau: float):
    """:func:`layer_masks` of the state's weights from their flat magnitudes ``a``, each half on its own thread.

    The mask is even in w, so |w| gives the same m, s and z bit for bit;
    the training path's cutoff applies (:func:`refprune.masks.mask_cutoff`). Fresh arrays each call (the published step keeps some of them for the
    next step).
    """
    m, s, z, tmp = (np.empty_like(a) for _ in range(4))
    cutoff = mask_cutoff(a.dtype, t, tau)

    def part(sl):
        binds = cutoff_binds(float(a[sl].max()) if a[sl].size else 0.0, t, tau, cutoff)
        soft_mask_and_slope(a[sl], t, tau, (m[sl], s[sl], z[sl], tmp[sl]), cutoff=cutoff if binds else None)

    on_halves(state, part)
    return tuple(layer_views(v, state.weights) for v in (m, s, z))


def published_inverse_density(a: np.ndarray, points, path: PublishedPath) -> list[float]:
    """1/f at the points with the path's density; the published one (P5) by its fast route."""
    d = path.density
    if d == PUBLISHED_DENSITY:
        f = fast_nearest_binned_density_at(a, np.asarray(points, np.float64), d.renormalize, d.grid_size)
        return [threshold_derivative(float(v)) for v in f]
    f = density_at(a, np.asarray(points, np.float64), d)
    return [threshold_derivative(float(v)) for v in f]


def published_dt_dr(a: np.ndarray, thr: Threshold, path: PublishedPath) -> float:
    """dt/dr as published: −½(1/f(a_k) + 1/f(a_{k+1})) under P2, else +1/f(t)."""
    if path.has("P2"):
        inv = published_inverse_density(a, [thr.lower, thr.upper], path)
        return -0.5 * (inv[0] + inv[1])
    return published_inverse_density(a, [thr.t], path)[0]


def published_gradients(weights, biases, x, y, r: float, tau: float, t: float,
                        lam: float, loss: str, path: PublishedPath, thr: Threshold | None = None,
                        t_forward: float | None = None, tau_forward: float | None = None,
                        forward_parts=None, hook_parts=None, magnitudes_flat=None):
    """One forward/backward pass and the first run of the published hook, without updating.

    Parameters
    ----------
    weights, biases, x, y, r, tau, lam, loss
        As for :func:`refprune.lrp.lrp_gradients`.
    t : float
        The threshold the hook's formulas and masks use (the published code's
        t, recomputed after the backward pass from the current weights).
    path : PublishedPath
        Which deviations apply (P1 and P2 act here; P3 and P4 concern the step).
    thr : Threshold, optional
        Order statistics for P2's dt/dr (default: computed from the weights and r).
    t_forward, tau_forward : float, optional
        The t and τ the forward pass's masks use (P4: the previous step's);
        default ``t`` and ``tau``.
    forward_parts, hook_parts : tuple of lists, optional
        (masks, slopes, logits) already computed for the forward pass's and
        the hook's t and τ (the fast step passes them; default: computed here).
    magnitudes_flat : ndarray, optional
        |w| of all weights, flat, if already at hand.

    Returns
    -------
    value : float
        The batch's data loss.
    dW : list of ndarray
        Weight gradients (under P1, computed from m_forward·g).
    db : list of ndarray
    d_tau, d_r : float
    G : list of ndarray
        The weight gradient the hook received (m_forward·g under P1, else g).
    dt_dr : float
    """
    t_forward = t if t_forward is None else t_forward
    tau_forward = tau if tau_forward is None else tau_forward
    if forward_parts is None:
        forward_parts = layer_masks(weights, t_forward, tau_forward)
    m_forward = forward_parts[0]
    out, cache = mlp_forward(x, [m * W for m, W in zip(m_forward, weights)], biases)
    value, dout = loss_and_grad(loss, out, y)
    g, db = mlp_backward(dout, cache)
    G = [m * gl for m, gl in zip(m_forward, g)] if path.has("P1") else g  # P1: autograd through a constant mask
    if hook_parts is None:
        hook_parts = forward_parts if (t_forward, tau_forward) == (t, tau) else layer_masks(weights, t, tau)
    a = magnitudes(weights) if magnitudes_flat is None else magnitudes_flat
    thr = thr if thr is not None else empirical_threshold(a, r)
    dt_dr = published_dt_dr(a, thr, path)
    dW, d_tau, d_r = published_hook(G, weights, t, tau, dt_dr, r, lam, hook_parts)
    return value, dW, db, d_tau, d_r, G, dt_dr


def published_step(state: TrainState, x, y, loss: str, lam: float, path: PublishedPath) -> float:
    """One LRP step on the published code's gradient path (METHOD §6, P1–P4 switchable).

    The published sequence, step k (weights W_k, ratio r_k, temperature τ_k):

    1. forward with masks m(W_k; t, τ) — under P4 the t and τ of step k − 1
       (masks built at the end of the previous step), else t_k and τ_k;
       loss and backward give g = ∂L/∂ŵ, and under P1 autograd leaves
       m_forward·g on the weights;
    2. t_k = t(W_k, r_k) is recomputed from the pre-update weights;
    3. hook run 1, with masks m(W_k; t_k, τ_k): ∂L/∂w, ∂L/∂τ, ∂L/∂r (under P2
       with dt/dr = −½(1/f(a_k) + 1/f(a_{k+1}))); the weights step uses it;
    4. under P3, hook run 2 — masks from the updated weights W_{k+1} with t_k,
       τ_k, on the once-transformed weight gradient, dt/dr of run 1 (the
       sorted weights are not refreshed between the optimiser steps) — gives
       the r step's gradient, and run 3 (weight gradient transformed twice)
       the τ step's; without P3, run 1 gives all three;
    5. clamps. The masks left for the next forward pass are m(W_{k+1}; t_k, τ_k).

    The density is the published one (P5: nearest-bin FFT KDE, renormalised);
    t comes from the same bracketed selection as the exact step (the published
    code re-sorts all |w|, P6: the same t). ``state.t`` records t_k (what the
    published code logs), ``state.variant.forward_t`` (:class:`PublishedState`)
    the t the forward pass used.
    """
    W, b, tau, r = state.weights, state.biases, state.tau, state.r
    pub = published_state(state)
    a = buffers(state)["a"]
    thr = step_threshold(state, a)                                   # t_k from W_k, r_k; a = |W_k|
    hook_parts = flat_layer_masks(state, a, thr.t, tau)
    t_fwd, tau_fwd, forward_parts = thr.t, tau, hook_parts
    if path.has("P4") and np.isfinite(pub.stale_t):
        t_fwd, tau_fwd = pub.stale_t, pub.stale_tau
        forward_parts = pub.next_forward_masks                     # m(W_k; t_{k−1}, τ_{k−1}), or None
    value, dW, db, d_tau, d_r, _, dt_dr = published_gradients(
        W, b, x, y, r, tau, thr.t, lam, loss, path, thr, t_forward=t_fwd, tau_forward=tau_fwd,
        forward_parts=forward_parts, hook_parts=hook_parts, magnitudes_flat=a)
    grad = np.concatenate([d.ravel() for d in dW])
    flush_subnormals(grad, gradient_flush_level(grad.dtype), buffers(state)["tmp"])  # P1: ∝ m², may be tiny
    adam_step(state, grad, db)
    parts2 = None
    if path.has("P3") or path.has("P4"):
        parts2 = flat_layer_masks(state, np.abs(state.flat_w), thr.t, tau)  # m(W_{k+1}; t_k, τ_k)
    if path.has("P3"):                                               # runs 2, 3 share the masks
        dW2, _, d_r = published_hook(dW, W, thr.t, tau, dt_dr, r, lam, parts2)
        _, d_tau, _ = published_hook(dW2, W, thr.t, tau, dt_dr, r, lam, parts2)
    pub.next_forward_masks = parts2 if path.has("P4") else None      # the next forward's masks (P4)
    update_r_tau(state, d_r, d_tau)
    pub.stale_t, pub.stale_tau = thr.t, tau                          # the next forward's masks (P4)
    state.t, pub.forward_t = thr.t, t_fwd
    state.step += 1
    return value + regulariser(r, lam)
