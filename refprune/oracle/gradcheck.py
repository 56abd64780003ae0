"""The finite-difference oracle: the ground truth for every LRP gradient.

For one *case* (layer sizes, batch, loss, r, τ, λ, seed, threshold rule,
dtype) it compares each analytic gradient with a central difference of the
loss computed in float64, and reports per gradient the largest absolute and
relative error.

How it stays trustworthy
------------------------
- Stencil: the fourth-order central difference
  D(h) = [f(x−2h) − 8f(x−h) + 8f(x+h) − f(x+2h)] / (12h), extrapolated once,
  (16·D(h/2) − D(h))/15, for a truncation error O(h⁶); steps can then be
  large enough that round-off stays small.
- Error: ``|a − n| / max(|a|, |n|, FD_ABS_FLOOR)`` — relative, except that
  gradients below ``FD_ABS_FLOOR`` are judged on absolute error, where the
  round-off of a difference quotient dominates any relative measure.
- Mask-aware steps: a step in w, t, τ or r moves the mask logits
  z = (w² − t²)/τ. The step is chosen so that no weight whose mask is in its
  transition (|z| < Z_SATURATED) moves its z by more than DZ_MAX, and no
  saturated weight leaves saturation. A coordinate whose admissible step
  falls below STEP_ULPS ulps of the coordinate sits on a |w| = t tie at this
  τ and is skipped. The τ step is taken relative to τ, so no rate overflows at any τ.
- The transition band: if no weight has |z| < Z_SATURATED, ∂L/∂τ and ∂L/∂t
  are identically negligible and their rows say "vacuous" (they fail only if
  the analytic value is not negligible). At small τ0 the case populates the
  band by default (:mod:`refprune.oracle.placement`), so those rows check something.
- ReLU kinks: if any ReLU changes state between the stencil's points, the
  step is shrunk; if it still crosses at the smallest step the coordinate is skipped.
- t is a function of r only (stop-gradient): perturbing w or τ keeps t fixed;
  ∂L/∂t is checked by perturbing t directly; ∂L/∂r end to end only under the
  smoothed threshold, where t̃(r) is differentiable (METHOD §3).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from refprune.core.gradients import regulariser
from refprune.core.losses import loss_and_grad
from refprune.core.masks import FLOAT32_UNIT_ROUNDOFF, mask_logit, soft_mask
from refprune.core.mlp import mlp_forward, relu_pattern
from refprune.density.quantile import CDF_TOL, smoothed_threshold
from refprune.lrp.reference import lrp_gradients
from refprune.oracle.case import Case, Problem, analytic_gradients, band_count, make_problem

# Pass criterion for the worst relative error, per dtype of the analytic
# gradient. float64: the bound; the fourth-order stencil reaches
# ~1e-9 on the default cases. float32: ~100× float32's epsilon (1.2e-7),
# the round-off of sums over a few hundred float32 terms.
FD_RTOL = {"float64": 1e-6, "float32": 1e-4}
# Gradients smaller than the floor are judged on absolute error. The floor is
# the larger of FD_ABS_FLOOR and the round-off of the difference quotient itself,
# ROUNDOFF_FACTOR·eps·max(|L|, 1)/h, divided by FD_RTOL: a component the
# stencil cannot resolve to FD_RTOL is compared at the stencil's resolution.
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
MAX_COORDS = 60  # coordinates checked per tensor (all of them when smaller)


@dataclass(frozen=True)
class GradientRow:
    """The verdict on one gradient.

    ``status`` is "pass", "FAIL", "vacuous" (no weight within the band: the
    true value is negligible and the analytic one is too) or "unchecked" (no
    reliable step existed for any coordinate). ``passed`` is False only for
    "FAIL".
    """

    name: str
    shape: tuple
    max_abs_err: float
    max_rel_err: float
    checked: int
    skipped: int
    passed: bool
    status: str = ""
    note: str = ""


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


class Evaluator:
    """Total loss of a problem as a function of one perturbed quantity (float64).

    Also records whether the ReLU pattern changed anywhere on the stencil.
    """

    def __init__(self, problem: Problem, t: float, rtol: float):
        self.W = [np.asarray(W, np.float64) for W in problem.weights]
        self.b = [np.asarray(b, np.float64) for b in problem.biases]
        self.x = np.asarray(problem.x, np.float64)
        self.y = problem.y if problem.config.loss == "ce" else np.asarray(problem.y, np.float64)
        self.r, self.tau, self.t = float(problem.r), float(problem.tau), float(t)
        self.config = problem.config
        self.rtol = rtol
        self.base_pattern = self.pattern(self.W, self.b, self.t, self.tau)
        self.kink = False
        self.base_loss = self.loss()

    def forward(self, W, b, t, tau):
        masked = [soft_mask(Wl, t, tau) * Wl for Wl in W]
        return mlp_forward(self.x, masked, b)

    def pattern(self, W, b, t, tau) -> np.ndarray:
        _, cache = self.forward(W, b, t, tau)
        pats = relu_pattern(cache)
        return np.concatenate([p.ravel() for p in pats]) if pats else np.zeros(0, bool)

    def loss(self, W=None, b=None, t=None, tau=None, r=None) -> float:
        W = self.W if W is None else W
        b = self.b if b is None else b
        t = self.t if t is None else t
        tau = self.tau if tau is None else tau
        r = self.r if r is None else r
        out, cache = self.forward(W, b, t, tau)
        pats = relu_pattern(cache)
        pat = np.concatenate([p.ravel() for p in pats]) if pats else np.zeros(0, bool)
        if not np.array_equal(pat, self.base_pattern):
            self.kink = True
        data_loss = loss_and_grad(self.config.loss, out, self.y)[0]
        # the regulariser depends on r only: added only when r moves, so its
        # constant value adds no round-off to the other differences
        return data_loss if r == self.r else data_loss + regulariser(r, self.config.lam) - regulariser(self.r, self.config.lam)

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
        while h >= quantum and h > 0:
            h = np.floor(h / quantum) * quantum if quantum > 0 else h
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


def perturbed(arrays, layer: int, index, delta: float):
    """A copy of a list of arrays with one entry moved by delta."""
    out = list(arrays)
    arr = arrays[layer].copy()
    arr[index] += delta
    out[layer] = arr
    return out


def coordinate_numeric(ev: Evaluator, kind: str, layer: int, index) -> float | None:
    """Numerical ∂L/∂(one weight or bias), or None if no reliable step exists."""
    if kind == "W":
        w = ev.W[layer][index]
        with np.errstate(over="ignore"):
            h = admissible_step(mask_logit(np.array([w]), ev.t, ev.tau), np.array([2 * abs(w) / ev.tau]))
        return ev.derivative(lambda d: ev.loss(W=perturbed(ev.W, layer, index, d)), h, w)
    return ev.derivative(lambda d: ev.loss(b=perturbed(ev.b, layer, index, d)), H_MAX, ev.b[layer][index])


def all_logits(ev: Evaluator) -> np.ndarray:
    return np.concatenate([mask_logit(W, ev.t, ev.tau).ravel() for W in ev.W])


def scalar_numeric(ev: Evaluator, name: str, dt_dr: float):
    """Numerical derivative of the loss in τ, t or r (or of t̃ in r for "dt/dr")."""
    z = all_logits(ev)
    if name == "tau":
        # relative step ρ = d/τ: z(τ(1 + ρ)) = z/(1 + ρ) moves by ~|z| per unit ρ (no overflow)
        h = admissible_step(z, z, TAU_REL_STEP) * ev.tau
        f = lambda d: ev.loss(tau=ev.tau + d)
        return ev.derivative(f, h, ev.tau)
    if name == "t":
        with np.errstate(over="ignore"):
            h = admissible_step(z, np.full_like(z, 2 * ev.t / ev.tau), H_MAX)
        f = lambda d: ev.loss(t=ev.t + d)
    else:
        a = np.concatenate([np.abs(W).ravel() for W in ev.W])
        room = min(ev.r - R_MARGIN, 1 - R_MARGIN - ev.r) / 2
        with np.errstate(over="ignore"):
            h = admissible_step(z, np.full_like(z, 2 * ev.t * dt_dr / ev.tau), min(H_MAX, room))
        t_of = lambda d: smoothed_threshold(a, ev.r + d, ev.config.density.rule).t
        if name == "dt/dr":
            h = min(H_MAX, room)
            f = t_of
        else:
            if h < CDF_TOL / ev.rtol:
                return ("t̃(r) is solved to |F̂(t̃) − r| <= 1e-15, too coarse for the r step "
                        f"this τ allows ({h:.1g}); ∂L/∂t and dt/dr are checked separately")
            f = lambda d: ev.loss(t=t_of(d), r=ev.r + d)
    return ev.derivative(f, h, ev.t if name == "t" else ev.r)


def compare(name: str, analytic: np.ndarray, numeric: np.ndarray, floor: np.ndarray,
            rtol: float, skipped: int) -> GradientRow:
    """GradientRow for one gradient: max abs and max relative (with floor) error."""
    analytic = np.asarray(analytic, np.float64)
    if numeric.size == 0:
        return GradientRow(name, tuple(np.shape(analytic)), float("nan"), float("nan"), 0, skipped,
                           True, "unchecked", "no reliable finite-difference step")
    abs_err = np.abs(analytic - numeric)
    rel_err = abs_err / np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), floor)
    worst_rel = float(rel_err.max())
    ok = worst_rel <= rtol
    return GradientRow(name, tuple(np.shape(analytic)), float(abs_err.max()), worst_rel,
                       int(numeric.size), skipped, ok, "pass" if ok else "FAIL")


def vacuous_row(name: str, analytic: float) -> GradientRow:
    """The row of ∂L/∂τ or ∂L/∂t when no weight is within the band (|z| < Z_SATURATED).

    Every s = m(1 − m) is then below e^{-Z_SATURATED} ≈ 1e-26, so the true
    gradient is negligible: the row fails only if the analytic value is not
    (|value| > FD_ABS_FLOOR), and is otherwise reported as vacuous.
    """
    size = abs(float(analytic))
    ok = size <= FD_ABS_FLOOR
    note = (f"vacuous: no weight within the band (analytic value {size:.1e})" if ok else
            f"no weight within the band, yet the analytic value is {size:.3g} (> {FD_ABS_FLOOR:g})")
    return GradientRow(name, (), float("nan"), float("nan"), 0, 0, ok, "vacuous" if ok else "FAIL", note)


def band_size(ev: "Evaluator") -> int:
    """Number of weights within the transition band, |z| < Z_SATURATED."""
    return int(np.count_nonzero(np.abs(all_logits(ev)) < Z_SATURATED))


def check_tensor(ev: Evaluator, kind: str, layer: int, analytic: np.ndarray, rtol: float,
                 rng: np.random.Generator, max_coords: int, numeric=None) -> GradientRow:
    """Check sampled coordinates of one W or b tensor (``numeric``: the per-coordinate
    difference, :func:`coordinate_numeric` by default; the layer-wise oracle passes its own)."""
    numeric = coordinate_numeric if numeric is None else numeric
    shape = analytic.shape
    flat = np.arange(analytic.size)
    if flat.size > max_coords:
        flat = np.sort(rng.choice(flat, size=max_coords, replace=False))
    a_vals, n_vals, floors, skipped = [], [], [], 0
    for i in flat:
        index = np.unravel_index(i, shape)
        num = numeric(ev, kind, layer, index)
        if num is None:
            skipped += 1
            continue
        a_vals.append(analytic[index])
        n_vals.append(num[0])
        floors.append(num[1])
    return compare(f"{kind}{layer + 1}", np.array(a_vals), np.array(n_vals), np.array(floors), rtol, skipped)


def check_scalar(ev: Evaluator, name: str, analytic: float, dt_dr: float, rtol: float) -> GradientRow:
    """The row of one scalar gradient (τ, t, r or dt/dr); τ and t are vacuous with an empty band."""
    if name in ("tau", "t") and band_size(ev) == 0:
        return vacuous_row(name, analytic)
    num = scalar_numeric(ev, name, dt_dr)
    if isinstance(num, str):
        return GradientRow(name, (), float("nan"), float("nan"), 0, 1, True, "unchecked", num)
    if num is None:
        return compare(name, np.zeros(0), np.zeros(0), np.zeros(0), rtol, 1)
    row = compare(name, np.array([analytic]), np.array([num[0]]), np.array([num[1]]), rtol, 0)
    return replace(row, shape=())


def check_gradients(problem: Problem, grads: dict, t: float, dt_dr: float,
                    dtype: str = "float64", max_coords: int = MAX_COORDS,
                    seed: int = 0) -> list[GradientRow]:
    """Compare the gradients in ``grads`` with central differences.

    Parameters
    ----------
    problem : Problem
    grads : dict
        Row name → analytic gradient: ``W1``…, ``b1``…, ``tau``, ``t``, and under
        the smoothed threshold ``r`` and ``dt/dr``. Any subset may be given;
        a wrong gradient placed here is what the oracle must catch.
    t : float
        The threshold the analytic pass used (held fixed for w, b, τ).
    dt_dr : float
        dt/dr of the analytic pass (sets the r step size only).
    dtype : {"float64", "float32"}
        Selects the pass tolerance ``FD_RTOL[dtype]``.
    max_coords : int
        Coordinates sampled per tensor.
    seed : int
        Seed of the coordinate sampling.

    Returns
    -------
    list of GradientRow
    """
    rtol = FD_RTOL[dtype]
    rng = np.random.default_rng(seed)
    ev = Evaluator(problem, t, rtol)
    rows = []
    for name, analytic in grads.items():
        if name[0] in "Wb" and name[1:].isdigit():
            layer = int(name[1:]) - 1
            rows.append(check_tensor(ev, name[0], layer, np.asarray(analytic), rtol, rng, max_coords))
        elif name in ("tau", "t") or (name in ("r", "dt/dr") and problem.config.threshold == "smoothed"):
            rows.append(check_scalar(ev, name, float(analytic), dt_dr, rtol))
    return rows


@dataclass(frozen=True)
class Report:
    """Rows and verdict of a gradient check."""

    case: Case
    rows: list
    notes: list

    @property
    def passed(self) -> bool:
        """No row fails and at least one row checked something."""
        return any(row.status == "pass" for row in self.rows) and all(row.passed for row in self.rows)

    def as_dicts(self) -> list[dict]:
        return [{**asdict(row), "shape": list(row.shape)} for row in self.rows]


def check_float32_resolution(case: Case, result, tau: float) -> None:
    """Raise if a float32 pass cannot resolve the band: then it is not the function being differenced.

    Rounding w² and t² to float32 moves z = (w² − t²)/τ by up to
    2t²/τ·2⁻²⁴; where weights lie in the band (|z| < Z_SATURATED) that changes
    m, s and every gradient by about as much, relative. Above FD_RTOL["float32"]
    no float32 implementation can pass, so the check refuses instead of failing.
    """
    if case.dtype != "float32":
        return
    t = float(result.threshold.t)
    amplified = 2.0 * t * t / tau * FLOAT32_UNIT_ROUNDOFF
    in_band = any(np.any(np.abs(z) < Z_SATURATED) for z in result.logits)
    rtol = FD_RTOL["float32"]
    if in_band and amplified > rtol:
        raise ValueError(
            f"float32 cannot resolve the transition band at τ = {tau:.3g}: rounding w² and t² to "
            f"float32 moves z = (w² − t²)/τ by up to 2t²/τ·2⁻²⁴ = {amplified:.1e} > {rtol:g}, so a "
            f"float32 pass is not the function being differenced; use --dtype float64, tau0 >= "
            f"{case.tau0 * amplified / rtol:.1g}, or --band 0 (saturated masks only)")


def prepare(case: Case):
    """The case's problem and its analytic pass, checked to be one the oracle can judge.

    Raises ``ValueError`` for a case no verdict would be meaningful for (τ out of range,
    an unresolvable band, float32 at a τ it cannot resolve): these are the caller's input.

    Returns
    -------
    problem : Problem
    result : LRPResult
    """
    if case.granularity != "global":
        raise ValueError("granularity 'layer': use refprune.oracle.gradcheck_layer (prepare_layer, gradcheck_layer)")
    problem = make_problem(case)
    result = lrp_gradients(problem.weights, problem.biases, problem.x, problem.y,
                           problem.r, problem.tau, problem.config)
    check_float32_resolution(case, result, problem.tau)
    return problem, result


def gradcheck(case: Case = Case(), max_coords: int = MAX_COORDS, prepared=None) -> Report:
    """Check every LRP gradient of a case against finite differences.

    ``prepared``, optional, is what :func:`prepare` returned for this case.

    Returns
    -------
    Report
        One row per W and b of every layer, τ, t, and — under the smoothed
        threshold — dt/dr and r (end to end, regulariser included).
    """
    problem, result = prepared if prepared is not None else prepare(case)
    grads = analytic_gradients(result)
    notes = []
    if case.threshold == "empirical":
        notes.append("r: not checkable by finite differences under the empirical threshold "
                     "(t(r) is a step function); ∂L/∂t is checked directly — use "
                     "--threshold smoothed to check ∂L/∂r end to end")
    rows = check_gradients(problem, grads, result.threshold.t, result.dt_dr,
                           case.dtype, max_coords, case.seed)
    ev_band = int(np.count_nonzero(np.concatenate([np.abs(z).ravel() for z in result.logits]) < Z_SATURATED))
    count = band_count(case)
    if count:
        notes.append(f"band: {count} weights placed within |w² − t²| <= 3τ of t (--band)"
                     if ev_band else
                     f"band: τ = {problem.tau:.3g} is below what float64 resolves near t, so no "
                     f"weight could be placed within the band; ∂L/∂τ and ∂L/∂t are vacuous")
    elif not ev_band:
        notes.append("no weight within the band (every |z| >= 60): ∂L/∂τ and ∂L/∂t are "
                     "vacuous — use --band N to place N weights within it")
    return Report(case, rows, notes)
