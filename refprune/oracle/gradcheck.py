"""The finite-difference oracle: the ground truth for every LRP gradient.

For one *case* (layer sizes, batch, loss, r, τ, λ, seed, threshold rule,
dtype, granularity) it compares each analytic gradient with a central difference of the
loss computed in float64, and reports per gradient the largest absolute and
relative error.

Rows: ``W1``…, ``b1``… of every layer, then τ, t and, under the smoothed threshold,
dt/dr and r (end to end, regulariser included) of each group of the case's grouping. A
global case is one group of every layer, with rows ``tau``, ``t``, ``dt/dr``, ``r``; a
layer-wise case (docs/derivations.md §9) has one group per layer and the rows ``tau_l``,
``t_l``, ``dt/dr_l``, ``r_l`` of each (r_l moved, t̃_l recomputed from that layer alone).
The losses and their differences come from one evaluator for every grouping
(:mod:`refprune.oracle.evaluator`).

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
- The transition band: if no weight of a group has |z| < Z_SATURATED, its ∂L/∂τ
  and ∂L/∂t are identically negligible and their rows say "vacuous" (they fail only if
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

from refprune.core.groups import Grouping
from refprune.core.masks import FLOAT32_UNIT_ROUNDOFF
from refprune.lrp.reference import LRPResult, grouping_or_global, lrp_gradients
from refprune.oracle.case import Case, Problem, band_count, make_problem
from refprune.oracle.evaluator import (
    FD_ABS_FLOOR,
    Z_SATURATED,
    Evaluator,
    coordinate_numeric,
    group_floats,
    group_logits,
    scalar_numeric,
)

# Pass criterion for the worst relative error, per dtype of the analytic
# gradient. float64: 1e-6, the accuracy asked of every float64 gradient: far
# above the round-off of a correct one and far below the error of any known
# defect; the fourth-order stencil reaches ~1e-9 on the default cases.
# float32: ~100× float32's epsilon (1.2e-7), the round-off of sums over a few
# hundred float32 terms.
FD_RTOL = {"float64": 1e-6, "float32": 1e-4}
MAX_COORDS = 60  # coordinates checked per tensor (all of them when smaller)
# The per-group scalar rows, in report order for each group (``tau_1``… for a grouped problem).
GROUP_ROWS = ("tau", "t", "r", "dt/dr")


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


def band_size(ev: Evaluator, g: int) -> int:
    """Number of group g's weights within the transition band, |z| < Z_SATURATED."""
    return int(np.count_nonzero(np.abs(group_logits(ev, g)) < Z_SATURATED))


def check_tensor(ev: Evaluator, kind: str, layer: int, analytic: np.ndarray, rtol: float,
                 rng: np.random.Generator, max_coords: int) -> GradientRow:
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


def check_scalar(ev: Evaluator, row: str, name: str, g: int, analytic: float, dt_dr: float,
                 rtol: float) -> GradientRow:
    """The row ``row`` of group g's scalar ``name`` (τ, t, r or dt/dr); τ and t are vacuous
    when the group has no weight within the band."""
    if name in ("tau", "t") and band_size(ev, g) == 0:
        return vacuous_row(row, analytic)
    num = scalar_numeric(ev, name, g, dt_dr, row[len(name):])
    if isinstance(num, str):
        return GradientRow(row, (), float("nan"), float("nan"), 0, 1, True, "unchecked", num)
    if num is None:
        return compare(row, np.zeros(0), np.zeros(0), np.zeros(0), rtol, 1)
    checked = compare(row, np.array([analytic]), np.array([num[0]]), np.array([num[1]]), rtol, 0)
    return replace(checked, shape=())


def row_name(name: str, g: int, grouping: Grouping | None) -> str:
    """The row of group g's scalar ``name``: ``name`` for a global problem, else ``name_<g+1>``."""
    return name if grouping is None else f"{name}_{g + 1}"


def split_row_name(name: str, grouping: Grouping | None):
    """(scalar, group) of a scalar row name (``"dt/dr_2"`` → ("dt/dr", 1) with a grouping,
    ``"tau"`` → ("tau", 0) without); None for any other name."""
    if grouping is None:
        return (name, 0) if name in GROUP_ROWS else None
    base, _, number = name.rpartition("_")
    return (base, int(number) - 1) if base in GROUP_ROWS and number.isdigit() else None


def check_gradients(problem: Problem, grads: dict, t, dt_dr, dtype: str = "float64",
                    max_coords: int = MAX_COORDS, seed: int = 0) -> list[GradientRow]:
    """Compare the gradients in ``grads`` with central differences.

    Parameters
    ----------
    problem : Problem
    grads : dict
        Row name → analytic gradient: ``W1``…, ``b1``…, ``tau``, ``t``, and under the
        smoothed threshold ``r`` and ``dt/dr`` (a layer-wise problem: ``tau_1``, ``t_1``,
        ``r_1``, ``dt/dr_1``, … for each layer). Any subset may be given; a wrong gradient
        placed here is what the oracle must catch.
    t : float, or sequence of float (one per group)
        The threshold(s) the analytic pass used (held fixed for w, b, τ).
    dt_dr : float, or sequence of float (one per group)
        dt/dr of the analytic pass (sets the r step sizes only).
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
    dt_drs = group_floats(dt_dr)
    smoothed = problem.config.threshold == "smoothed"
    rows = []
    for name, analytic in grads.items():
        scalar_row = split_row_name(name, problem.grouping)
        if name[0] in "Wb" and name[1:].isdigit():
            layer = int(name[1:]) - 1
            rows.append(check_tensor(ev, name[0], layer, np.asarray(analytic), rtol, rng, max_coords))
        elif scalar_row and (scalar_row[0] in ("tau", "t") or smoothed):
            quantity, g = scalar_row
            rows.append(check_scalar(ev, name, quantity, g, float(analytic), dt_drs[g], rtol))
    return rows


def thresholds_of(result: LRPResult) -> list:
    """The Threshold of each group of an LRP pass."""
    return [result.threshold] if result.grouping is None else list(result.threshold)


def analytic_gradients(result: LRPResult) -> dict:
    """The gradients the oracle checks, by row name, from an LRP pass: ``W1``…, ``b1``…,
    then ``tau``, ``t``, ``r``, ``dt/dr`` of each group (see :func:`row_name`)."""
    grads = {}
    for l, (dW, db) in enumerate(zip(result.grad_weights, result.grad_biases), start=1):
        grads[f"W{l}"] = dW
        grads[f"b{l}"] = db
    per_group = {"tau": result.grad_tau, "t": result.grad_t, "r": result.grad_r, "dt/dr": result.dt_dr}
    for g in range(len(thresholds_of(result))):
        for name in GROUP_ROWS:
            grads[row_name(name, g, result.grouping)] = np.array(group_floats(per_group[name])[g])
    return grads


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
        """The rows as plain dicts (``shape`` a list), as ``refprune gradcheck --json`` prints them."""
        return [{**asdict(row), "shape": list(row.shape)} for row in self.rows]


def check_float32_resolution(case: Case, problem: Problem, result: LRPResult) -> None:
    """Raise if a float32 pass cannot resolve a group's band: then it is not the function being differenced.

    Rounding w² and t² to float32 moves z = (w² − t²)/τ by up to
    2t²/τ·2⁻²⁴; where weights lie in the band (|z| < Z_SATURATED) that changes
    m, s and every gradient by about as much, relative. Above FD_RTOL["float32"]
    no float32 implementation can pass, so the check refuses instead of failing.
    Each group is judged at its own t and τ.
    """
    if case.dtype != "float32":
        return
    rtol = FD_RTOL["float32"]
    grouping = grouping_or_global(problem.grouping, len(problem.weights))
    for g, (thr, tau) in enumerate(zip(thresholds_of(result), group_floats(problem.tau))):
        t = float(thr.t)
        amplified = 2.0 * t * t / tau * FLOAT32_UNIT_ROUNDOFF
        in_band = any(np.any(np.abs(z) < Z_SATURATED) for z in grouping.members(result.logits, g))
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
    problem = make_problem(case)
    result = lrp_gradients(problem.weights, problem.biases, problem.x, problem.y, problem.r, problem.tau,
                           problem.config, grouping=problem.grouping)
    check_float32_resolution(case, problem, result)
    return problem, result


def band_notes(case: Case, problem: Problem, result: LRPResult) -> list:
    """Notes on the band of each group: placed, or empty (then the group's τ and t rows are vacuous)."""
    grouping, count = grouping_or_global(problem.grouping, len(problem.weights)), band_count(case)
    empty = [g + 1 for g in range(grouping.n_groups)
             if not any(np.any(np.abs(z) < Z_SATURATED) for z in grouping.members(result.logits, g))]
    if problem.grouping is None:
        if count:
            return [f"band: τ = {problem.tau:.3g} is below what float64 resolves near t, so no "
                    f"weight could be placed within the band; ∂L/∂τ and ∂L/∂t are vacuous" if empty else
                    f"band: {count} weights placed within |w² − t²| <= 3τ of t (--band)"]
        return ["no weight within the band (every |z| >= 60): ∂L/∂τ and ∂L/∂t are "
                "vacuous — use --band N to place N weights within it"] if empty else []
    notes = []
    if count:
        notes.append(f"band: up to {count} weights of each layer placed within |w² − t_l²| <= 3τ_l "
                     "of its t_l")
    if empty:
        notes.append(f"no weight within the band of layer(s) {', '.join(map(str, empty))} (every |z| >= 60): "
                     "their ∂L/∂τ_l and ∂L/∂t_l are vacuous" + ("" if count else " — use --band N"))
    return notes


def gradcheck(case: Case = Case(), max_coords: int = MAX_COORDS, prepared=None) -> Report:
    """Check every LRP gradient of a case against finite differences.

    ``prepared``, optional, is what :func:`prepare` returned for this case.

    Returns
    -------
    Report
        One row per W and b of every layer, τ and t of each group, and — under the
        smoothed threshold — dt/dr and r of each group (end to end, regulariser included).

    Examples
    --------
    Every gradient of the smoothed-threshold case against central differences, ∂L/∂r end to end:

    >>> from refprune.oracle.case import Case
    >>> from refprune.oracle.gradcheck import gradcheck
    >>> report = gradcheck(Case(threshold="smoothed"), max_coords=5)
    >>> report.passed, [row.name for row in report.rows]
    (True, ['W1', 'b1', 'W2', 'b2', 'W3', 'b3', 'tau', 't', 'r', 'dt/dr'])
    """
    problem, result = prepared if prepared is not None else prepare(case)
    notes, sub = [], "" if problem.grouping is None else "_l"
    if problem.grouping is not None:
        notes.append(f"layer-wise: r_l = {', '.join(f'{r:.6g}' for r in problem.r)}; "
                     f"τ_l = {', '.join(f'{tau:.3g}' for tau in problem.tau)}")
    if case.threshold == "empirical":
        notes.append(f"r{sub}: not checkable by finite differences under the empirical threshold "
                     f"(t{sub}(r{sub}) is a step function); ∂L/∂t{sub} is checked directly — use "
                     f"--threshold smoothed to check ∂L/∂r{sub} end to end")
    ts = [thr.t for thr in thresholds_of(result)]
    rows = check_gradients(problem, analytic_gradients(result), ts, result.dt_dr, case.dtype, max_coords,
                           case.seed)
    return Report(case, rows, notes + band_notes(case, problem, result))
