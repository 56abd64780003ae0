"""The oracle's loss evaluator: the total loss as a function of one perturbed quantity, and its
stencil derivative with mask-aware, ulp-snapped steps (:mod:`refprune.oracle.gradcheck` says
how the checks built on it stay trustworthy).

A problem's grouping (:class:`refprune.core.groups.Grouping`; one group of every layer for a
global problem) decides which logits a step moves: the mask of a layer depends on its group's
(t_g, τ_g) only, so a step in τ_g, t_g or r_g is bounded by that group's logits alone, and a
step in one weight by that weight's logit at its group's (t_g, τ_g).
"""

from __future__ import annotations

import numpy as np

from refprune.core.gradients import group_regulariser
from refprune.core.losses import loss_and_grad
from refprune.core.masks import mask_logit, soft_mask
from refprune.core.mlp import mlp_forward, relu_pattern
from refprune.density.quantile import CDF_TOL, smoothed_threshold
from refprune.lrp.reference import grouping_or_global, layer_values
from refprune.oracle.case import Problem

# Gradients smaller than the floor are judged on absolute error. The floor is
# the larger of FD_ABS_FLOOR and the round-off of the difference quotient itself,
# ROUNDOFF_FACTOR·eps·max(|L|, 1)/h, divided by the pass tolerance (FD_RTOL of
# refprune.oracle.gradcheck): a component the stencil cannot resolve to that
# tolerance is compared at the stencil's resolution.
# ROUNDOFF_FACTOR covers the stencil's coefficient sum (18/12 · 31/15 ≈ 3)
# times ~10 ulp of rounding accumulated in evaluating L.
FD_ABS_FLOOR = 1e-5
ROUNDOFF_FACTOR = 30.0
H_MAX = 1e-3  # largest step: the loss is smooth on this scale away from kinks
# Steps are snapped to whole multiples of STEP_ULPS ulps of the perturbed
# quantity x: then x ± h/2, x ± h and x ± 2h are exact in float64 (h/2 is a
# multiple of 2 ulp(x) = ulp(2x), even where x ± 2h crosses a power of two),
# so the stencil's steps carry no rounding at all and the smallest usable step
# is STEP_ULPS ulps. The loss's own round-off eps·|L|/h is covered by the
# noise floor, which grows as h shrinks.
STEP_ULPS = 4
DZ_MAX = 0.02  # largest logit change of a transitioning mask per step: (Δz)⁴ truncation ≈ 1.6e-7
Z_SATURATED = 60.0  # |z| above this: s = e^{-|z|} < 1e-26, the mask is constant to float64
TAU_REL_STEP = 1e-3  # cap on the τ step relative to τ, so τ − 2h stays > 0
R_MARGIN = 1e-6  # r ± 2h stays inside (R_MARGIN, 1 − R_MARGIN)


def central_difference(f, h: float) -> float:
    """Fourth-order central difference of f at 0 with step h (error O(h⁴))."""
    return (f(-2 * h) - 8 * f(-h) + 8 * f(h) - f(2 * h)) / (12 * h)


def stencil(f, h: float) -> float:
    """Sixth-order derivative estimate of f at 0.

    One Richardson extrapolation of :func:`central_difference`: with
    D(h) = f'(0) + c·h⁴ + O(h⁶), (16·D(h/2) − D(h))/15 = f'(0) + O(h⁶).
    """
    return (16 * central_difference(f, h / 2) - central_difference(f, h)) / 15


def admissible_step(z: np.ndarray, rate: np.ndarray, h_cap: float = H_MAX) -> float:
    """Largest step (<= h_cap) that keeps every mask logit well resolved.

    Parameters
    ----------
    z : ndarray
        Logits (w² − t²)/τ of the weights the perturbation moves.
    rate : ndarray, same shape
        |dz/dδ| of each of them per unit step δ.

    Returns
    -------
    float
        A step h; below STEP_ULPS ulps of the quantity means no reliable
        step exists. A saturated logit may move by half its excess over
        Z_SATURATED/2, so it stays saturated even where z is far from linear
        in the step (at tiny τ the nearest weight is then never reached).
    """
    az = np.abs(z).ravel()
    rate = np.abs(rate).ravel() * 2.0  # the stencil reaches ±2h
    allowance = np.where(az < Z_SATURATED, DZ_MAX, (az - Z_SATURATED / 2) / 2)
    moving = rate > 0
    if not np.any(moving):
        return h_cap
    return float(min(h_cap, np.min(allowance[moving] / rate[moving])))


def group_floats(values) -> list:
    """A per-group quantity as a list of floats: a scalar (one group) or one value per group."""
    return [float(v) for v in np.atleast_1d(values)]


def relu_state(cache) -> np.ndarray:
    """Every ReLU's on/off state in one flat array."""
    pats = relu_pattern(cache)
    return np.concatenate([p.ravel() for p in pats]) if pats else np.zeros(0, bool)


class Evaluator:
    """Total loss of a problem as a function of one perturbed quantity (float64).

    ``rs``, ``taus`` and ``ts`` hold r, τ and t of each group (one group for a global
    problem); the regulariser enters only when some r moves. Also records whether the
    ReLU pattern changed anywhere on the stencil.
    """

    def __init__(self, problem: Problem, t, rtol: float):
        self.W = [np.asarray(W, np.float64) for W in problem.weights]
        self.b = [np.asarray(b, np.float64) for b in problem.biases]
        self.x = np.asarray(problem.x, np.float64)
        self.y = problem.y if problem.config.loss == "ce" else np.asarray(problem.y, np.float64)
        self.grouping = grouping_or_global(problem.grouping, len(problem.weights))
        self.rs, self.taus, self.ts = group_floats(problem.r), group_floats(problem.tau), group_floats(t)
        self.fractions = self.grouping.fractions(self.W)
        self.config = problem.config
        self.rtol = rtol
        self.base_pattern = relu_state(self.forward(self.W, self.b, self.ts, self.taus)[1])
        self.kink = False
        self.base_loss = self.loss()

    def forward(self, W, b, ts, taus):
        """Network output and cache with each layer masked at its group's (t, τ)."""
        t_of, tau_of = (layer_values(v, self.grouping, len(W)) for v in (ts, taus))
        masked = [soft_mask(Wl, tl, taul) * Wl for Wl, tl, taul in zip(W, t_of, tau_of)]  # ŵ = m(w)·w
        return mlp_forward(self.x, masked, b)

    def loss(self, W=None, b=None, ts=None, taus=None, rs=None) -> float:
        """The loss with the given quantities in place of the base ones (``ts``, ``taus``, ``rs``: lists
        with one value per group)."""
        W = self.W if W is None else W
        b = self.b if b is None else b
        out, cache = self.forward(W, b, self.ts if ts is None else ts, self.taus if taus is None else taus)
        if not np.array_equal(relu_state(cache), self.base_pattern):
            self.kink = True
        data_loss = loss_and_grad(self.config.loss, out, self.y)[0]
        if rs is None:
            return data_loss
        # the regulariser depends on r only: added only when r moves, so its
        # constant value adds no round-off to the other differences
        lam, fractions = self.config.lam, self.fractions
        return data_loss + group_regulariser(rs, lam, fractions) - group_regulariser(self.rs, lam, fractions)

    def derivative(self, f, h: float, x: float):
        """Stencil derivative and the noise floor of it, shrinking h while a ReLU kink is crossed.

        Parameters
        ----------
        f : callable
            Loss as a function of the step d.
        h : float
            The admissible step.
        x : float
            The perturbed quantity's value: h is snapped to a multiple of
            STEP_ULPS ulps of it, so every stencil point is exact.

        Returns
        -------
        (value, floor) or None
            None if no step of at least STEP_ULPS ulps avoids the kink.
        """
        quantum = STEP_ULPS * float(np.spacing(abs(float(x))))
        if not np.isfinite(h):
            return None
        while h >= quantum and 0 < h < np.inf:
            snapped = np.floor(h / quantum) * quantum if quantum > 0 else h
            h = snapped if np.isfinite(snapped) else h  # x near 0: h/quantum overflows, and x ± h is exact anyway
            self.kink = False
            d = stencil(f, h)
            if not self.kink:
                return d, self.noise_floor(h)
            h /= 10.0
        return None

    def noise_floor(self, h: float) -> float:
        """Gradient size below which a difference with step h is judged on absolute error."""
        roundoff = ROUNDOFF_FACTOR * np.finfo(np.float64).eps * max(abs(self.base_loss), 1.0) / h
        return max(FD_ABS_FLOOR, roundoff / self.rtol)


def replaced(values, g: int, value: float) -> list:
    """A copy of a per-group list with entry ``g`` set to ``value``."""
    out = list(values)
    out[g] = value
    return out


def perturbed(arrays, layer: int, index, delta: float):
    """A copy of a list of arrays with one entry moved by delta."""
    out = list(arrays)
    arr = arrays[layer].copy()
    arr[index] += delta
    out[layer] = arr
    return out


def coordinate_numeric(ev: Evaluator, kind: str, layer: int, index) -> float | None:
    """Numerical ∂L/∂(one weight or bias), or None if no reliable step exists.

    A weight's step is bounded at its own group's (t, τ)."""
    if kind == "W":
        g = ev.grouping.group_of(layer)
        w, t, tau = ev.W[layer][index], ev.ts[g], ev.taus[g]
        with np.errstate(over="ignore"):
            h = admissible_step(mask_logit(np.array([w]), t, tau), np.array([2 * abs(w) / tau]))
        return ev.derivative(lambda d: ev.loss(W=perturbed(ev.W, layer, index, d)), h, w)
    return ev.derivative(lambda d: ev.loss(b=perturbed(ev.b, layer, index, d)), H_MAX, ev.b[layer][index])


def group_logits(ev: Evaluator, g: int) -> np.ndarray:
    """z = (w² − t_g²)/τ_g of group g's weights, flat."""
    return np.concatenate([mask_logit(W, ev.ts[g], ev.taus[g]).ravel() for W in ev.grouping.members(ev.W, g)])


def scalar_numeric(ev: Evaluator, name: str, g: int, dt_dr: float, suffix: str = ""):
    """Numerical derivative of the loss in τ_g, t_g or r_g (or of t̃_g in r_g for "dt/dr").

    Only group g's logits move, so only they bound the step; ``suffix`` names the group
    in the note of an unchecked r row ("" for a global problem, "_2" for group 2).
    """
    z, t, tau, r = group_logits(ev, g), ev.ts[g], ev.taus[g], ev.rs[g]
    if name == "tau":
        # relative step ρ = d/τ: z(τ(1 + ρ)) = z/(1 + ρ) moves by ~|z| per unit ρ (no overflow)
        h = admissible_step(z, z, TAU_REL_STEP) * tau
        return ev.derivative(lambda d: ev.loss(taus=replaced(ev.taus, g, tau + d)), h, tau)
    if name == "t":
        with np.errstate(over="ignore"):
            h = admissible_step(z, np.full_like(z, 2 * t / tau), H_MAX)
        return ev.derivative(lambda d: ev.loss(ts=replaced(ev.ts, g, t + d)), h, t)
    a = np.concatenate([np.abs(W).ravel() for W in ev.grouping.members(ev.W, g)])
    room = min(r - R_MARGIN, 1 - R_MARGIN - r) / 2
    if room <= 0:
        return (f"r{suffix} = {r:g} is within {R_MARGIN:g} of an end of [0, 1): no central difference in "
                f"r{suffix} fits there; ∂L/∂t is checked directly")
    t_of = lambda d: smoothed_threshold(a, r + d, ev.config.density.rule).t  # t̃_g(r_g), group g alone
    if name == "dt/dr":
        return ev.derivative(t_of, min(H_MAX, room), r)
    with np.errstate(over="ignore"):
        h = admissible_step(z, np.full_like(z, 2 * t * dt_dr / tau), min(H_MAX, room))
    if h < CDF_TOL / ev.rtol:
        return (f"t̃{suffix}(r{suffix}) is solved to |F̂(t̃) − r| <= 1e-15, too coarse for the r step "
                f"this τ allows ({h:.1g}); ∂L/∂t and dt/dr are checked separately")
    f = lambda d: ev.loss(ts=replaced(ev.ts, g, t_of(d)), rs=replaced(ev.rs, g, r + d))
    return ev.derivative(f, h, r)
