"""One optimisation step for each method: dense, LRP exact (METHOD §3–§4), LRP published (§6).

A step takes the training state and one batch, updates the state in place and
returns the batch's total loss. The state is an explicit object the caller
owns (:class:`TrainState`); nothing is hidden in a layer.

The exact LRP step is Algorithm 1, lines 6–16, with the gradients of
:mod:`refprune.gradients` (the same functions :mod:`refprune.lrp` uses and the
gradient oracle proves). For speed it computes the threshold by selection in a
bracket around the previous t and the density at t by a direct sum
(:func:`refprune.density.kde_at_point`) unless the config asks for the binned
FFT estimate; both give the same numbers as their reference routines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .density import (PUBLISHED_DENSITY, DensityConfig, density_at, kde_at_point, published_density_at,
                      scott_bandwidth_fast, scott_bandwidth_from_sums)
from .gradients import (fused_gradients, grad_ratio, grad_tau, grad_threshold, grad_weight,
                        regulariser, threshold_derivative)
from .losses import loss_and_grad
from .masks import soft_mask_and_slope
from .mlp import mlp_backward, mlp_forward
from .optim import AdamState, adam_init, adam_moments_step, adam_scalar, clamp_ratio, clamp_tau
from .parallel import halves, make_pool, split_run
from .threshold import Threshold, bracket_scan, empirical_threshold, select_in_bracket

DEVIATIONS = ("P1", "P2", "P3", "P4")
# Half-width of the selection bracket, relative to t, on the first try; it
# then follows how far t moved in the last step (×BRACKET_GROWTH, floored).
BRACKET_REL_MIN = 1e-3
BRACKET_GROWTH = 4.0


@dataclass
class TrainState:
    """Everything that changes during training (arrays updated in place).

    Attributes
    ----------
    weights : list of ndarray
        Per-layer weight matrices, views into ``flat_w`` (one buffer holds
        all n prunable weights, so elementwise work can be split evenly).
    biases : list of ndarray
    flat_w : ndarray, shape (n,)
    r, tau : float
        Trainable pruning ratio and temperature.
    t : float
        The threshold the last step used (nan for dense).
    adam_wb, adam_r, adam_tau : AdamState
        Optimiser state of the three groups; ``adam_wb`` holds the moments of
        ``[flat_w] + biases``.
    stale_t, stale_tau : float
        Published variant with P4: the t and τ the next forward pass masks with.
    forward_t : float
        Published variant: the t the last forward pass masked with.
    next_forward_masks : tuple or None
        Published variant under P4: (masks, slopes, logits) of the current
        weights with ``stale_t`` and ``stale_tau``, left by the last step for
        the next forward pass (computed once, not twice).
    bracket : float
        Half-width of the next threshold-selection bracket.
    scratch : dict
        Reusable buffers of the hot path (no state).
    pool : ThreadPoolExecutor or None
        Worker thread for elementwise work (:mod:`refprune.parallel`).
    """

    weights: list
    biases: list
    flat_w: np.ndarray
    r: float
    tau: float
    adam_wb: AdamState
    adam_r: AdamState
    adam_tau: AdamState
    t: float = float("nan")
    stale_t: float = float("nan")
    stale_tau: float = float("nan")
    forward_t: float = float("nan")
    next_forward_masks: tuple | None = None
    bracket: float = float("nan")
    step: int = 0
    scratch: dict = field(default_factory=dict)
    pool: object = None


def layer_views(flat: np.ndarray, shapes) -> list:
    """Views of a flat array shaped like each layer's weights (``shapes``: arrays or shapes)."""
    views, start = [], 0
    for shape in shapes:
        shape = getattr(shape, "shape", shape)
        size = int(np.prod(shape))
        views.append(flat[start:start + size].reshape(shape))
        start += size
    return views


def new_state(weights, biases, r0: float, tau: float, lr: float, lr_r: float, lr_tau: float,
              threads: int | None = None) -> TrainState:
    """Fresh training state with zero Adam moments; the weights are copied into one flat buffer.

    ``threads``: 1 runs everything in the calling thread; None or 2 lets the
    elementwise phases use a second core (refprune.parallel).
    """
    flat_w = np.concatenate([W.ravel() for W in weights])
    views = layer_views(flat_w, weights)
    biases = [b.copy() for b in biases]
    return TrainState(weights=views, biases=biases, flat_w=flat_w, r=float(r0), tau=float(tau),
                      adam_wb=adam_init([flat_w] + biases, lr),
                      adam_r=AdamState(lr=lr_r), adam_tau=AdamState(lr=lr_tau),
                      pool=make_pool(threads, flat_w.size))


def buffers(state: TrainState) -> dict:
    """The state's scratch buffers (flat, length n), allocated on first use."""
    if not state.scratch:
        n, dtype = state.flat_w.size, state.flat_w.dtype
        names = ("a", "kde", "m", "s", "z", "tmp", "masked", "g", "dw", "q")
        state.scratch = {name: np.empty(n, dtype) for name in names}
    return state.scratch


def on_halves(state: TrainState, fn):
    """Run ``fn(first_half_slice)`` on the worker and ``fn(second_half_slice)`` here."""
    first, second = halves(state.flat_w.size)
    return split_run(state.pool, lambda: fn(first), lambda: fn(second))


def magnitudes(weights) -> np.ndarray:
    """|w| of all prunable weights, one flat array in the weights' dtype."""
    return np.abs(np.concatenate([W.ravel() for W in weights]))


def step_threshold(state: TrainState, a: np.ndarray) -> Threshold:
    """t(r) for this step: bracketed selection around the previous t, else full selection.

    Also fills ``a`` with |w| (each half on its own thread, with the scan).
    """
    thr = None
    w = state.flat_w
    if np.isfinite(state.bracket) and np.isfinite(state.t):
        lo, hi = state.t - state.bracket, state.t + state.bracket

        def scan(sl):
            np.abs(w[sl], out=a[sl])
            return bracket_scan(a[sl], lo, hi)

        (b1, in1), (b2, in2) = on_halves(state, scan)
        thr = select_in_bracket(state.r, a.size, b1 + b2, np.concatenate([in1, in2]))
    else:
        np.abs(w, out=a)
    if thr is None:
        thr = empirical_threshold(a, state.r)
    moved = abs(thr.t - state.t) if np.isfinite(state.t) else 0.0
    state.bracket = max(BRACKET_GROWTH * moved, BRACKET_REL_MIN * thr.t, 1e-12)
    return thr


def adam_step(state: TrainState, grad_flat_w: np.ndarray, grad_biases) -> None:
    """Adam on the weights (flat, two halves on two threads) and the biases."""
    st = state.adam_wb
    st.step += 1
    if not st.scratch:
        st.scratch = [np.empty_like(m) for m in st.m]
    p, m, v, tmp = state.flat_w, st.m[0], st.v[0], st.scratch[0]
    on_halves(state, lambda sl: adam_moments_step(p[sl], grad_flat_w[sl], m[sl], v[sl], tmp[sl],
                                                  st.step, st.lr))
    for b, g, mb, vb, tb in zip(state.biases, grad_biases, st.m[1:], st.v[1:], st.scratch[1:]):
        adam_moments_step(b, g, mb, vb, tb, st.step, st.lr)


def dense_step(state: TrainState, x, y, loss: str) -> float:
    """Plain training step: forward, backward, Adam on weights and biases."""
    g = buffers(state)["g"]
    out, cache = mlp_forward(x, state.weights, state.biases)
    value, dout = loss_and_grad(loss, out, y)
    _, db = mlp_backward(dout, cache, layer_views(g, state.weights))
    adam_step(state, g, db)
    state.step += 1
    return value


def split_kde(a: np.ndarray, x: float, h: float, scratch, pool) -> float:
    """:func:`kde_at_point` of the two halves of ``a``, combined (a KDE is a mean over samples)."""
    first, second = halves(a.size)
    f1, f2 = split_run(pool, lambda: kde_at_point(a[first], x, h, scratch[first], reflect=True),
                       lambda: kde_at_point(a[second], x, h, scratch[second], reflect=True))
    return (f1 * (first.stop - first.start) + f2 * (second.stop - second.start)) / a.size


def inverse_density(a: np.ndarray, points, density: DensityConfig | None, scratch=None,
                    pool=None) -> list[float]:
    """1/f at the points: direct reflected sum, the default DensityConfig (density None), or the configured estimate."""
    if density is None:
        h = scott_bandwidth_fast(a)
        scratch = np.empty_like(a) if scratch is None else scratch
        return [threshold_derivative(split_kde(a, p, h, scratch, pool)) for p in points]
    f = density_at(a, np.asarray(points, np.float64), density)
    return [threshold_derivative(float(v)) for v in f]


def update_r_tau(state: TrainState, d_r: float, d_tau: float) -> None:
    """Adam steps for r and τ, then the clamps τ >= 1e-6, r in [0, 0.9999]."""
    state.r = clamp_ratio(adam_scalar(state.r, d_r, state.adam_r))
    state.tau = clamp_tau(adam_scalar(state.tau, d_tau, state.adam_tau))


def phase_threshold(state: TrainState) -> tuple[np.ndarray, Threshold]:
    """Magnitudes of all weights and t(r) (stop-gradient: t depends on r only)."""
    a = buffers(state)["a"]
    return a, step_threshold(state, a)


def phase_masks(state: TrainState, a: np.ndarray, t: float):
    """Soft masks m, slopes s, logits z and masked weights ŵ = m·w (flat arrays).

    The masks are computed from |w| (``a``, already at hand), which gives the
    same m, s and z since the mask is even in w. While each half is in cache,
    the sums Σa and Σa² for the bandwidth are taken too.

    Returns
    -------
    m, s, z, masked : ndarray, shape (n,)
    h : float
        Scott's bandwidth of the magnitudes (thesis eq. (2.19)).
    """
    buf = buffers(state)
    m, s, z, tmp, masked = buf["m"], buf["s"], buf["z"], buf["tmp"], buf["masked"]

    def part(sl):
        soft_mask_and_slope(a[sl], t, state.tau, (m[sl], s[sl], z[sl], tmp[sl]))
        np.multiply(m[sl], state.flat_w[sl], out=masked[sl])  # ŵ = m(w)·w
        return float(a[sl].sum()), float(np.dot(a[sl], a[sl]))

    (s1a, s2a), (s1b, s2b) = on_halves(state, part)
    return m, s, z, masked, scott_bandwidth_from_sums(s1a + s1b, s2a + s2b, a.size)


def phase_forward_backward(state: TrainState, masked, x, y, loss: str):
    """Forward with ŵ, loss, backward: (loss value, flat g = ∂L/∂ŵ, ∂L/∂b)."""
    g = buffers(state)["g"]
    out, cache = mlp_forward(x, layer_views(masked, state.weights), state.biases)
    value, dout = loss_and_grad(loss, out, y)
    _, db = mlp_backward(dout, cache, layer_views(g, state.weights))
    return value, g, db


def phase_gradients_density_adam(state: TrainState, a, g, m, s, z, t: float, h: float, db):
    """Everything after the backward pass that acts elementwise, one pass per half.

    For each half of the flat arrays: ∂L/∂w (eq. (2.3) corrected) and its
    terms of ∂L/∂τ (eq. (2.10)) and ∂L/∂t (eq. (2.11)); its part of the KDE
    sum at t (eq. (2.17)); and the Adam update of its weights (the
    weights' gradient is final, and ``a`` — the pre-update magnitudes — is a
    separate buffer). Then Adam on the biases.

    Returns
    -------
    d_tau, d_t, f_t : float
        ∂L/∂τ, ∂L/∂t, and the density f(t) for dt/dr.
    """
    buf = buffers(state)
    dw, q, kde = buf["dw"], buf["q"], buf["kde"]
    st = state.adam_wb
    st.step += 1
    if not st.scratch:
        st.scratch = [np.empty_like(mm) for mm in st.m]
    p, mw, vw, tw = state.flat_w, st.m[0], st.v[0], st.scratch[0]

    def part(sl):
        _, d_tau, d_t = fused_gradients(g[sl], p[sl], m[sl], s[sl], z[sl], t, state.tau, (dw[sl], q[sl]))
        f_part = kde_at_point(a[sl], t, h, kde[sl], reflect=True) * (sl.stop - sl.start)
        adam_moments_step(p[sl], dw[sl], mw[sl], vw[sl], tw[sl], st.step, st.lr)
        return d_tau, d_t, f_part

    (tau1, t1, f1), (tau2, t2, f2) = on_halves(state, part)
    for b, gb, mb, vb, tb in zip(state.biases, db, st.m[1:], st.v[1:], st.scratch[1:]):
        adam_moments_step(b, gb, mb, vb, tb, st.step, st.lr)
    return tau1 + tau2, t1 + t2, (f1 + f2) / a.size


def exact_step(state: TrainState, x, y, loss: str, lam: float,
               density: DensityConfig | None = None) -> float:
    """One LRP step on the exact gradient path (METHOD §3, Algorithm 1).

    Parameters
    ----------
    state : TrainState
        Updated in place.
    x : ndarray, shape (N, D_in)
    y : ndarray
        Labels (N,) or targets (N, D_out).
    loss : {"ce", "mse"}
    lam : float
        λ of the regulariser (thesis eq. (2.23)).
    density : DensityConfig or None
        None: dt/dr from the direct KDE sum at t, reflected at 0 — the
        default ``DensityConfig()`` computed on the training path (exact,
        O(n)); otherwise the configured estimate (e.g. the thesis's binned FFT,
        ``THESIS_DENSITY``).

    Returns
    -------
    float
        Data loss + λ(1 − r)² of this batch.
    """
    r = state.r
    a, thr = phase_threshold(state)                                  # Algorithm 1, line 16
    m, s, z, masked, h = phase_masks(state, a, thr.t)                # line 6
    value, g, db = phase_forward_backward(state, masked, x, y, loss)  # lines 7-12
    d_tau, d_t, f_t = phase_gradients_density_adam(state, a, g, m, s, z, thr.t, h, db)  # 13-15
    if density is not None:  # the configured estimate (e.g. the binned FFT) instead of the direct sum
        f_t = 1.0 / inverse_density(a, [thr.t], density)[0]
    dt_dr = threshold_derivative(f_t)                                # eq. (2.16)
    d_r = grad_ratio(d_t, dt_dr, r, lam)                             # eqs. (2.11), (2.23)
    update_r_tau(state, d_r, d_tau)                                  # line 15
    state.t = thr.t
    state.step += 1
    return value + regulariser(r, lam)


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

    The mask is even in w, so |w| gives the same m, s and z bit for bit.
    Fresh arrays each call (the published step keeps some of them for the
    next step).
    """
    m, s, z, tmp = (np.empty_like(a) for _ in range(4))
    on_halves(state, lambda sl: soft_mask_and_slope(a[sl], t, tau, (m[sl], s[sl], z[sl], tmp[sl])))
    return tuple(layer_views(v, state.weights) for v in (m, s, z))


def published_inverse_density(a: np.ndarray, points, path: PublishedPath) -> list[float]:
    """1/f at the points with the path's density; the published one (P5) by its fast route."""
    d = path.density
    if d == PUBLISHED_DENSITY:
        f = published_density_at(a, points, d.rule, d.ddof, d.grid_size)
        return [threshold_derivative(float(v)) for v in f]
    return inverse_density(a, points, d)


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
    published code logs), ``state.forward_t`` the t the forward pass used.
    """
    W, b, tau, r = state.weights, state.biases, state.tau, state.r
    a = buffers(state)["a"]
    thr = step_threshold(state, a)                                   # t_k from W_k, r_k; a = |W_k|
    hook_parts = flat_layer_masks(state, a, thr.t, tau)
    t_fwd, tau_fwd, forward_parts = thr.t, tau, hook_parts
    if path.has("P4") and np.isfinite(state.stale_t):
        t_fwd, tau_fwd = state.stale_t, state.stale_tau
        forward_parts = state.next_forward_masks                     # m(W_k; t_{k−1}, τ_{k−1}), or None
    value, dW, db, d_tau, d_r, _, dt_dr = published_gradients(
        W, b, x, y, r, tau, thr.t, lam, loss, path, thr, t_forward=t_fwd, tau_forward=tau_fwd,
        forward_parts=forward_parts, hook_parts=hook_parts, magnitudes_flat=a)
    adam_step(state, np.concatenate([d.ravel() for d in dW]), db)
    parts2 = None
    if path.has("P3") or path.has("P4"):
        parts2 = flat_layer_masks(state, np.abs(state.flat_w), thr.t, tau)  # m(W_{k+1}; t_k, τ_k)
    if path.has("P3"):                                               # runs 2, 3 share the masks
        dW2, _, d_r = published_hook(dW, W, thr.t, tau, dt_dr, r, lam, parts2)
        _, d_tau, _ = published_hook(dW2, W, thr.t, tau, dt_dr, r, lam, parts2)
    state.next_forward_masks = parts2 if path.has("P4") else None    # the next forward's masks (P4)
    update_r_tau(state, d_r, d_tau)
    state.stale_t, state.stale_tau = thr.t, tau                      # the next forward's masks (P4)
    state.t, state.forward_t = thr.t, t_fwd
    state.step += 1
    return value + regulariser(r, lam)


def masked_dense_step(state: TrainState, x, y, loss: str, mask_flat: np.ndarray) -> float:
    """Training step with a fixed 0/1 mask on the weights (pruning before training).

    The forward pass uses W·M, the weight gradient is masked, and after the
    Adam update the pruned weights are set back to zero, so they stay zero.
    """
    g = buffers(state)["g"]
    masked = layer_views(state.flat_w * mask_flat, state.weights)
    out, cache = mlp_forward(x, masked, state.biases)
    value, dout = loss_and_grad(loss, out, y)
    _, db = mlp_backward(dout, cache, layer_views(g, state.weights))
    g *= mask_flat
    adam_step(state, g, db)
    state.flat_w *= mask_flat
    state.step += 1
    return value
