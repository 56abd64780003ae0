"""The LRP step on the published code's gradient path (METHOD §6, deviations P1–P4 switchable).

:func:`published_gradients` is one forward/backward pass and the first run
of the published gradient hook (:func:`published_hook`), usable on its own
(the P1/P2 tests, the derivations); :func:`published_step` is the whole
published sequence, with the state that sequence keeps between steps (P4's
stale t and τ) in its own :class:`PublishedState` (``TrainState.published``); the masks
it leaves for the next forward pass are scratch, kept in the workspace. The step's
masks use the training path's hard cutoff (:func:`refprune.train.kernels.mask_cutoff`):
masks of pruned weights are exactly 0, not subnormal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from refprune.core.gradients import grad_ratio, grad_tau, grad_threshold, grad_weight, regulariser
from refprune.core.losses import loss_and_grad
from refprune.core.masks import soft_mask_and_slope
from refprune.core.mlp import mlp_backward, mlp_forward
from refprune.core.threshold import Threshold, empirical_threshold
from refprune.density.config import (
    PUBLISHED_DENSITY,
    DensityConfig,
    fft_roundoff_level,
    inverse_density_at,
    inverse_of_density,
)
from refprune.train.kernels import mask_cutoff
from refprune.train.published_kernels import published_bandwidth_from_sums, published_density_near, rerun_sums
from refprune.train.steps.common import (
    DEVIATIONS,
    StepConfig,
    TrainState,
    adam_step,
    group_thresholds,
    magnitudes,
    phase_forward_backward,
    update_ratios_temperatures,
)
from refprune.train.steps.softband import band_half_width, part_gradients, part_masks
from refprune.train.steps.workspace import Workspace, buffers, on_halves


@dataclass
class PublishedState:
    """What the published sequence carries from one step to the next (METHOD §6 P4).

    Attributes
    ----------
    stale_t, stale_tau : float
        Under P4: the t and τ the next forward pass masks with.
    forward_t : float
        The t the last forward pass masked with.
    """

    stale_t: float = float("nan")
    stale_tau: float = float("nan")
    forward_t: float = float("nan")


@dataclass
class FlatMasks:
    """Masks of all weights at one (t, τ), flat: hard 0/1 outside the band, soft in it.

    Attributes
    ----------
    t, tau : float
    out : dict
        Flat arrays: ``masked`` (ŵ = m·w of the weights they were built from),
        ``hard`` (bool), ``m``, ``s``, ``z``, ``tmp`` (:func:`refprune.train.steps.softband.part_masks`).
    bands : dict
        {start of the half: PartBand}.
    """

    t: float
    tau: float
    out: dict
    bands: dict


def flat_masks(state: TrainState, ws: Workspace, a: np.ndarray, t: float, tau: float, out: dict,
               masked: bool = True) -> FlatMasks:
    """Masks m(w; t, τ) of the state's current weights (magnitudes ``a``), band-limited, into ``out``.

    With ``masked`` False, ŵ (``out['masked']``) is not formed: masks only a gradient uses.
    """
    cutoff = mask_cutoff(a.dtype, t, tau)
    reach = band_half_width(t, tau, cutoff)
    bands = dict(on_halves(ws, lambda sl: (sl.start, part_masks(sl, a, state.flat_w, t, tau, cutoff,
                                                                   reach, out, masked=masked))))
    return FlatMasks(t, tau, out, bands)


def mask_buffers(ws: Workspace, name: str) -> dict:
    """One set of flat mask buffers of the published step (``forward`` or ``hook``), allocated on first use."""
    if name not in ws.mask_sets:
        ws.mask_sets[name] = {k: np.empty(ws.size, ws.dtype) for k in ("masked", "m", "s", "z", "tmp")}
        ws.mask_sets[name]["hard"] = np.empty(ws.size, bool)
    return ws.mask_sets[name]


def masked_gradient(ws: Workspace, fm: FlatMasks, g: np.ndarray, out: np.ndarray) -> None:
    """``out`` = m·g for the masks ``fm`` (P1: what autograd leaves on the weights)."""
    def part(sl):
        band, out_s, g_s = fm.bands[sl.start], out[sl], g[sl]
        if band.full:
            np.multiply(g_s, band.m, out=out_s)
            return
        np.multiply(g_s, fm.out["hard"][sl], out=out_s)
        out_s[band.idx] = g_s[band.idx] * band.m
    on_halves(ws, part)


def flat_hook(state: TrainState, ws: Workspace, fm: FlatMasks, G: np.ndarray, dw: np.ndarray, q: np.ndarray):
    """Hook run 1 in flat form: ∂L/∂w of G into ``dw``, and the sums of ∂L/∂τ and ∂L/∂t (band only)."""
    bufs = {"dw": dw, "q": q, "hard": fm.out["hard"]}
    parts = on_halves(ws, lambda sl: part_gradients(sl, fm.bands[sl.start], G, state.flat_w, fm.t,
                                                       fm.tau, bufs))
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


def hook_runs_2_and_3(state: TrainState, ws: Workspace, fm: FlatMasks, dW: np.ndarray):
    """P3: runs 2 and 3 on the once- and twice-transformed gradient; only the band counts.

    Returns (∂L/∂t of run 2, ∂L/∂τ of run 3): outside the band s = 0, so
    neither sum has a term there and the transformed gradient is not needed.
    """
    w = state.flat_w

    def part(sl):
        band = fm.bands[sl.start]
        return rerun_sums(dW[sl][band.idx], w[sl][band.idx], band.m, band.s, band.z, fm.t, fm.tau)  # runs 2, 3

    parts = on_halves(ws, part)
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


def published_state(state: TrainState) -> PublishedState:
    """The published step's own state, kept in ``state.published`` (created on the first step)."""
    if state.grouping.n_groups != 1:
        raise ValueError("the published step has one global r and τ: it needs a grouping of one group")
    if state.published is None:
        state.published = PublishedState()
    return state.published


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
        """Whether deviation ``name`` (``"P1"`` … ``"P5"``) is applied."""
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


def published_inverse_density(a: np.ndarray, points, path: PublishedPath) -> list[float]:
    """1/f at the points with the path's density (by default the published one, METHOD §6 P5)."""
    inv, _ = inverse_density_at(a, np.asarray(points, np.float64), path.density)  # the one route to dt/dr
    return [float(v) for v in inv]


def published_dt_dr(a: np.ndarray, thr: Threshold, path: PublishedPath) -> float:
    """dt/dr as published: −½(1/f(a_k) + 1/f(a_{k+1})) under P2, else +1/f(t)."""
    if path.has("P2"):
        inv = published_inverse_density(a, [thr.lower, thr.upper], path)
        return -0.5 * (inv[0] + inv[1])
    return published_inverse_density(a, [thr.t], path)[0]


def step_dt_dr(ws: Workspace, a: np.ndarray, thr: Threshold, path: PublishedPath) -> float:
    """:func:`published_dt_dr` on the training path: the same dt/dr, from the histogram near the points.

    Σa, Σa² (float64), min and max of the magnitudes are taken per half on the two threads;
    the bandwidth comes from the sums (:func:`refprune.train.published_kernels.published_bandwidth_from_sums`)
    and the density from :func:`refprune.train.published_kernels.published_density_near`. The inputs are
    the step's own magnitudes, so the route's input checks are not repeated; the density goes
    through the same round-off floor and gate as :func:`published_dt_dr`. Tested whole-step
    against the plain route by tests/test_step_equivalence.py.
    """
    density = path.density
    if density.method != "published":
        return published_dt_dr(a, thr, path)

    def sums(sl):
        x = a[sl].astype(np.float64)             # squares of float32 values are exact in float64
        return float(x.sum()), float(np.dot(x, x)), float(a[sl].min()), float(a[sl].max())

    (s1a, s2a, lo_a, hi_a), (s1b, s2b, lo_b, hi_b) = on_halves(ws, sums)
    h = published_bandwidth_from_sums(s1a + s1b, s2a + s2b, a.size, density.rule)
    if not h > 0:
        raise ValueError("samples must hold at least 2 distinct values for a bandwidth")
    points = [thr.lower, thr.upper] if path.has("P2") else [thr.t]
    f = published_density_near(a, points, h, min(lo_a, lo_b), max(hi_a, hi_b), density.grid_size,
                               split=lambda fn: on_halves(ws, fn))
    inv = inverse_of_density(np.where(f > fft_roundoff_level(h, density.grid_size), f, 0.0), points)
    return -0.5 * float(inv[0] + inv[1]) if path.has("P2") else float(inv[0])


def published_gradients(weights, biases, x, y, r: float, tau: float, t: float,
                        lam: float, loss: str, path: PublishedPath, thr: Threshold | None = None,
                        t_forward: float | None = None, tau_forward: float | None = None,
                        forward_parts=None, hook_parts=None, magnitudes_flat=None):
    """One forward/backward pass and the first run of the published hook, without updating.

    Parameters
    ----------
    weights, biases, x, y, r, tau, lam, loss
        As for :func:`refprune.lrp.reference.lrp_gradients`.
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


def published_step(state: TrainState, ws: Workspace, x, y, cfg: StepConfig) -> float:
    """One LRP step on the published code's gradient path (METHOD §6, P1–P4 switchable).

    ``cfg.deviations`` says which of P1–P4 apply (:class:`PublishedPath`); ``cfg.density``
    is not used (the density is the published one). The published sequence, step k
    (weights W_k, ratio r_k, temperature τ_k):

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

    The density is the published one (P5: nearest-bin KDE, Riemann-renormalised), computed
    from the histogram near a_k, a_{k+1} (:func:`step_dt_dr`, equal to the FFT route);
    t comes from the same bracketed selection as the exact step (the published
    code re-sorts all |w|, P6: the same t). ``state.t`` records t_k (what the
    published code logs), ``state.published.forward_t`` (:class:`PublishedState`)
    the t the forward pass used.
    """
    path = PublishedPath(frozenset(cfg.deviations))
    pub = published_state(state)
    tau, r, lam = state.tau, state.r, cfg.lam
    buf = buffers(ws)
    a, g, grad, q = buf["a"], buf["g"], buf["dw"], buf["q"]
    thr = group_thresholds(state, ws)[0][0]                          # t_k from W_k, r_k; a = |W_k|
    stale = path.has("P4") and np.isfinite(pub.stale_t)              # the forward pass masks with t_{k−1}
    hook = flat_masks(state, ws, a, thr.t, tau, mask_buffers(ws, "hook"), masked=not stale)  # m(W_k; t_k, τ_k)
    forward = hook
    if stale:                                                        # m(W_k; t_{k−1}, τ_{k−1})
        forward = ws.next_forward_masks or flat_masks(state, ws, a, pub.stale_t, pub.stale_tau,
                                                      mask_buffers(ws, "forward"))
    value, g, db = phase_forward_backward(state, ws, forward.out["masked"], x, y, cfg.loss)
    G = g
    if path.has("P1"):                                               # P1: autograd through a constant mask
        masked_gradient(ws, forward, g, buf["masked"])
        G = buf["masked"]
    dt_dr = step_dt_dr(ws, a, thr, path)                             # a = |W_k|, P2, P5
    d_tau, d_t = flat_hook(state, ws, hook, G, grad, q)              # hook run 1
    d_r = grad_ratio(d_t, dt_dr, r, lam)
    adam_step(state, ws, grad, db)
    next_forward = None
    if path.has("P3") or path.has("P4"):                             # m(W_{k+1}; t_k, τ_k)
        np.abs(state.flat_w, out=a)
        next_forward = flat_masks(state, ws, a, thr.t, tau, mask_buffers(ws, "forward"))
    if path.has("P3"):                                               # runs 2, 3 share the masks
        d_t2, d_tau = hook_runs_2_and_3(state, ws, next_forward, grad)
        d_r = grad_ratio(d_t2, dt_dr, r, lam)
    ws.next_forward_masks = next_forward if path.has("P4") else None  # the next forward's masks (P4)
    update_ratios_temperatures(state, [d_r], [d_tau])
    pub.stale_t, pub.stale_tau = thr.t, tau
    state.ts[0], pub.forward_t = thr.t, forward.t
    state.step += 1
    return value + regulariser(r, lam)
