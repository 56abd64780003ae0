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
- Error: ``|a − n| / max(|a|, |n|, ABS_FLOOR)`` — relative, except that
  gradients below ``ABS_FLOOR`` are judged on absolute error, where the
  round-off of a difference quotient dominates any relative measure.
- Mask-aware steps: a step in w, t, τ or r moves the mask logits
  z = (w² − t²)/τ. The step is chosen so that no weight whose mask is in its
  transition (|z| < Z_SATURATED) moves its z by more than DZ_MAX, and no
  saturated weight leaves saturation. A coordinate whose admissible step
  falls below H_MIN sits on a |w| = t tie at this τ and is skipped.
- ReLU kinks: if any ReLU changes state between the stencil's points, the
  step is shrunk; if it still crosses at H_MIN the coordinate is skipped.
- t is a function of r only (stop-gradient): perturbing w or τ keeps t fixed;
  ∂L/∂t is checked by perturbing t directly; ∂L/∂r end to end only under the
  smoothed threshold, where t̃(r) is differentiable (METHOD §3).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from .gradients import regulariser
from .lrp import LRPConfig, LRPResult, lrp_gradients
from .masks import mask_logit, soft_mask
from .mlp import check_layer_sizes, init_mlp, mlp_forward, relu_pattern
from .losses import loss_and_grad
from .threshold import smoothed_threshold
from .validation import check_choice, check_positive, check_ratio

# Pass criterion for the worst relative error, per dtype of the analytic
# gradient. float64: the bound; the fourth-order stencil reaches
# ~1e-9 on the default cases. float32: ~100× float32's epsilon (1.2e-7),
# the round-off of sums over a few hundred float32 terms.
RTOL = {"float64": 1e-6, "float32": 1e-4}
# Gradients smaller than the floor are judged on absolute error. The floor is
# the larger of ABS_FLOOR and the round-off of the difference quotient itself,
# ROUNDOFF_FACTOR·eps·max(|L|, 1)/h, divided by RTOL: a component the
# stencil cannot resolve to RTOL is compared at the stencil's resolution.
# ROUNDOFF_FACTOR covers the stencil's coefficient sum (18/12 · 31/15 ≈ 3)
# times ~10 ulp of rounding accumulated in evaluating L.
ABS_FLOOR = 1e-5
ROUNDOFF_FACTOR = 30.0
H_MAX = 1e-3  # largest step: the loss is smooth on this scale away from kinks
H_MIN = 1e-8  # smaller steps lose more to round-off (eps·|L|/h ≈ 2e-8) than RTOL allows
DZ_MAX = 0.02  # largest logit change of a transitioning mask per step: (Δz)⁴ truncation ≈ 1.6e-7
Z_SATURATED = 60.0  # |z| above this: s = e^{-|z|} < 1e-26, the mask is constant to float64
TAU_REL_STEP = 1e-3  # cap on the τ step relative to τ, so τ − 2h stays > 0
R_MARGIN = 1e-6  # r ± 2h stays inside (R_MARGIN, 1 − R_MARGIN)
MAX_COORDS = 60  # coordinates checked per tensor (all of them when smaller)
THRESHOLD_RULES = ("empirical", "smoothed")
DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class Case:
    """One gradient-check case: everything needed to rebuild its inputs."""

    layers: tuple = (6, 5, 4, 3)
    batch: int = 8
    loss: str = "ce"
    r: float = 0.5
    tau0: float = 0.1
    lam: float = 0.0
    seed: int = 0
    threshold: str = "empirical"
    dtype: str = "float64"

    def __post_init__(self):
        object.__setattr__(self, "layers", check_layer_sizes(self.layers))
        if int(self.batch) < 1:
            raise ValueError(f"batch must be >= 1, got {self.batch}")
        check_ratio(self.r)
        check_positive(self.tau0, "tau0")
        check_choice(self.threshold, "threshold", THRESHOLD_RULES)
        check_choice(self.dtype, "dtype", DTYPES)
        LRPConfig(loss=self.loss, lam=self.lam, threshold=self.threshold)


@dataclass(frozen=True)
class Problem:
    """The concrete inputs of a case (arrays in the case's dtype)."""

    weights: list
    biases: list
    x: np.ndarray
    y: np.ndarray
    r: float
    tau: float
    config: LRPConfig


@dataclass(frozen=True)
class Row:
    """The verdict on one gradient."""

    name: str
    shape: tuple
    max_abs_err: float
    max_rel_err: float
    checked: int
    skipped: int
    passed: bool


def make_problem(case: Case) -> Problem:
    """Build weights (PyTorch init), a batch and targets from the case's seed.

    τ = τ0 × std(all initial weights), as in training (thesis §2.5).
    """
    rng = np.random.default_rng(case.seed)
    dtype = np.dtype(case.dtype)
    weights, biases = init_mlp(case.layers, rng, dtype)
    x = rng.standard_normal((case.batch, case.layers[0])).astype(dtype)
    if case.loss == "ce":
        y = rng.integers(0, case.layers[-1], size=case.batch)
    else:
        y = rng.standard_normal((case.batch, case.layers[-1])).astype(dtype)
    tau = case.tau0 * float(np.std(np.concatenate([W.ravel() for W in weights])))
    config = LRPConfig(loss=case.loss, lam=case.lam, threshold=case.threshold)
    return Problem(weights, biases, x, y, case.r, tau, config)


def analytic_gradients(result: LRPResult) -> dict:
    """The gradients the oracle checks, by row name, from an LRP pass."""
    grads = {}
    for l, (dW, db) in enumerate(zip(result.grad_weights, result.grad_biases), start=1):
        grads[f"W{l}"] = dW
        grads[f"b{l}"] = db
    grads["tau"] = np.array(result.grad_tau)
    grads["t"] = np.array(result.grad_t)
    grads["r"] = np.array(result.grad_r)
    grads["dt/dr"] = np.array(result.dt_dr)
    return grads


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
        A step h; below ``H_MIN`` means no reliable step exists.
    """
    az = np.abs(z).ravel()
    rate = np.abs(rate).ravel() * 2.0  # the stencil reaches ±2h
    allowance = np.where(az < Z_SATURATED, DZ_MAX, az - Z_SATURATED / 2)
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

    def derivative(self, f, h: float):
        """Stencil derivative and the noise floor of it, shrinking h while a ReLU kink is crossed.

        Returns
        -------
        (value, floor) or None
            None if no step >= H_MIN avoids the kink.
        """
        while h >= H_MIN:
            self.kink = False
            d = stencil(f, h)
            if not self.kink:
                return d, self.noise_floor(h)
            h /= 10.0
        return None

    def noise_floor(self, h: float) -> float:
        """Gradient size below which a difference with step h is judged on absolute error."""
        roundoff = ROUNDOFF_FACTOR * np.finfo(np.float64).eps * max(abs(self.base_loss), 1.0) / h
        return max(ABS_FLOOR, roundoff / self.rtol)


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
        h = admissible_step(mask_logit(np.array([w]), ev.t, ev.tau), np.array([2 * abs(w) / ev.tau]))
        if h < H_MIN:
            return None
        return ev.derivative(lambda d: ev.loss(W=perturbed(ev.W, layer, index, d)), h)
    return ev.derivative(lambda d: ev.loss(b=perturbed(ev.b, layer, index, d)), H_MAX)


def all_logits(ev: Evaluator) -> np.ndarray:
    return np.concatenate([mask_logit(W, ev.t, ev.tau).ravel() for W in ev.W])


def scalar_numeric(ev: Evaluator, name: str, dt_dr: float):
    """Numerical derivative of the loss in τ, t or r (or of t̃ in r for "dt/dr")."""
    z = all_logits(ev)
    if name == "tau":
        h = admissible_step(z, z / ev.tau, TAU_REL_STEP * ev.tau)
        f = lambda d: ev.loss(tau=ev.tau + d)
    elif name == "t":
        h = admissible_step(z, np.full_like(z, 2 * ev.t / ev.tau), H_MAX)
        f = lambda d: ev.loss(t=ev.t + d)
    else:
        a = np.concatenate([np.abs(W).ravel() for W in ev.W])
        room = min(ev.r - R_MARGIN, 1 - R_MARGIN - ev.r) / 2
        h = admissible_step(z, np.full_like(z, 2 * ev.t * dt_dr / ev.tau), min(H_MAX, room))
        t_of = lambda d: smoothed_threshold(a, ev.r + d, ev.config.density.rule).t
        if name == "dt/dr":
            h = min(H_MAX, room)
            f = t_of
        else:
            f = lambda d: ev.loss(t=t_of(d), r=ev.r + d)
    if h < H_MIN:
        return None
    return ev.derivative(f, h)


def compare(name: str, analytic: np.ndarray, numeric: np.ndarray, floor: np.ndarray,
            rtol: float, skipped: int) -> Row:
    """Row for one gradient: max abs and max relative (with floor) error."""
    analytic = np.asarray(analytic, np.float64)
    if numeric.size == 0:
        return Row(name, tuple(np.shape(analytic)), float("nan"), float("nan"), 0, skipped, False)
    abs_err = np.abs(analytic - numeric)
    rel_err = abs_err / np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), floor)
    worst_rel = float(rel_err.max())
    return Row(name, tuple(np.shape(analytic)), float(abs_err.max()), worst_rel,
               int(numeric.size), skipped, worst_rel <= rtol)


def check_tensor(ev: Evaluator, kind: str, layer: int, analytic: np.ndarray, rtol: float,
                 rng: np.random.Generator, max_coords: int) -> Row:
    """Check sampled coordinates of one W or b tensor."""
    shape = analytic.shape
    flat = np.arange(analytic.size)
    if flat.size > max_coords:
        flat = np.sort(rng.choice(flat, size=max_coords, replace=False))
    a_vals, n_vals, floors, skipped = [], [], [], 0
    for i in flat:
        index = np.unravel_index(i, shape)
        num = coordinate_numeric(ev, kind, layer, index)
        if num is None:
            skipped += 1
            continue
        a_vals.append(analytic[index])
        n_vals.append(num[0])
        floors.append(num[1])
    return compare(f"{kind}{layer + 1}", np.array(a_vals), np.array(n_vals), np.array(floors), rtol, skipped)


def check_scalar(ev: Evaluator, name: str, analytic: float, dt_dr: float, rtol: float) -> Row:
    num = scalar_numeric(ev, name, dt_dr)
    if num is None:
        return compare(name, np.zeros(0), np.zeros(0), np.zeros(0), rtol, 1)
    row = compare(name, np.array([analytic]), np.array([num[0]]), np.array([num[1]]), rtol, 0)
    return replace(row, shape=())


def check_gradients(problem: Problem, grads: dict, t: float, dt_dr: float,
                    dtype: str = "float64", max_coords: int = MAX_COORDS,
                    seed: int = 0) -> list[Row]:
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
        Selects the pass tolerance ``RTOL[dtype]``.
    max_coords : int
        Coordinates sampled per tensor.
    seed : int
        Seed of the coordinate sampling.

    Returns
    -------
    list of Row
    """
    rtol = RTOL[dtype]
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
        return bool(self.rows) and all(row.passed for row in self.rows)

    def as_dicts(self) -> list[dict]:
        return [{**asdict(row), "shape": list(row.shape)} for row in self.rows]


def gradcheck(case: Case = Case(), max_coords: int = MAX_COORDS) -> Report:
    """Check every LRP gradient of a case against finite differences.

    Returns
    -------
    Report
        One row per W and b of every layer, τ, t, and — under the smoothed
        threshold — dt/dr and r (end to end, regulariser included).
    """
    problem = make_problem(case)
    result = lrp_gradients(problem.weights, problem.biases, problem.x, problem.y,
                           problem.r, problem.tau, problem.config)
    grads = analytic_gradients(result)
    notes = []
    if case.threshold == "empirical":
        notes.append("r: not checkable by finite differences under the empirical threshold "
                     "(t(r) is a step function); ∂L/∂t is checked directly — use "
                     "--threshold smoothed to check ∂L/∂r end to end")
    rows = check_gradients(problem, grads, result.threshold.t, result.dt_dr,
                           case.dtype, max_coords, case.seed)
    return Report(case, rows, notes)
