"""The finite-difference oracle for layer-wise LRP (docs/derivations.md §9).

Layer l has its own r_l, τ_l and threshold t_l(r_l) from its own magnitudes; the
regulariser is λ Σ_l (n_l/n)(1 − r_l)² (:mod:`refprune.lrp.layerwise`). The oracle
is the global one (:mod:`refprune.oracle.gradcheck`) applied per layer: the same
stencil, the same snapped and mask-aware steps, the same ReLU-kink shrinking,
the same error measure and vacuous rows. What differs is which logits a step
moves: the mask of layer l depends on (t_l, τ_l) only, so a step in τ_l or t_l
moves only layer l's logits and only those bound its size, and a step in one
weight moves only that weight's logit at its own layer's (t_l, τ_l).

Rows: ``W1``…, ``b1``…, and for every layer l ``tau_l`` and ``t_l``; under the
smoothed threshold also ``dt/dr_l`` (t̃_l(r_l) differenced in r_l) and ``r_l``
end to end (r_l moved, t̃_l recomputed for that layer only, the regulariser
included). At small τ0 each layer's band is populated around its own t_l
(:func:`refprune.oracle.placement.populate_layer_bands`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import SimpleNamespace

import numpy as np

from refprune.core.gradients import group_regulariser
from refprune.core.masks import mask_logit, soft_mask
from refprune.core.mlp import mlp_forward
from refprune.density.quantile import CDF_TOL, smoothed_threshold
from refprune.lrp.layerwise import LayerwiseResult, layer_fractions, layerwise_gradients
from refprune.lrp.reference import LRPConfig
from refprune.oracle.case import TAU_MIN_CHECKABLE, Case, band_count, layer_ratios, layer_taus, make_problem
from refprune.oracle.gradcheck import (
    FD_RTOL,
    H_MAX,
    MAX_COORDS,
    R_MARGIN,
    TAU_REL_STEP,
    Z_SATURATED,
    Evaluator,
    GradientRow,
    Report,
    admissible_step,
    check_float32_resolution,
    check_tensor,
    compare,
    perturbed,
    vacuous_row,
)
from refprune.oracle.placement import populate_layer_bands

# The per-layer scalar rows, in report order for each layer.
LAYER_ROWS = ("tau", "t", "r", "dt/dr")


@dataclass(frozen=True)
class LayerProblem:
    """The concrete inputs of a layer-wise case: ``rs`` and ``taus`` hold one value per layer."""

    weights: list
    biases: list
    x: np.ndarray
    y: np.ndarray
    rs: tuple
    taus: tuple
    config: LRPConfig


def make_layer_problem(case: Case) -> LayerProblem:
    """Weights, batch and targets as :func:`make_problem` builds them; r_l, τ_l and bands per layer.

    r_l from :func:`layer_ratios`, τ_l = τ0 × std(W_l) (:func:`layer_taus`, as training
    initialises them); then, when :func:`band_count` is not 0, that many weights of each
    layer (at most all of it) are placed within the band of that layer's (t_l, τ_l).
    As globally, the default band stays empty where τ_l is below float64's resolution
    near t_l; an explicit ``band`` raises instead.
    """
    base = make_problem(replace(case, granularity="global", band=0))
    rs, taus = layer_ratios(case), layer_taus(base.weights, case.tau0)
    for l, tau in enumerate(taus, start=1):
        if not tau >= TAU_MIN_CHECKABLE:
            raise ValueError(f"tau0 = {case.tau0!r} gives τ_{l} = {tau:.3g}, below {TAU_MIN_CHECKABLE:g}: "
                             f"the analytic gradients are not exact there (see gradcheck_case)")
    weights, count = base.weights, band_count(case)
    if count:
        try:
            weights = populate_layer_bands(weights, rs, taus, case.threshold, base.config.density, count)
        except ValueError:
            if case.band is not None:
                raise
    return LayerProblem(weights, base.biases, base.x, base.y, rs, taus, base.config)


def replaced(values, layer: int, value: float) -> list:
    """A copy of a per-layer list with entry ``layer`` set to ``value``."""
    out = list(values)
    out[layer] = value
    return out


class LayerEvaluator(Evaluator):
    """Total layer-wise loss as a function of one perturbed quantity (float64).

    ``t`` and ``tau`` are lists (one per layer); the regulariser
    λ Σ_l (n_l/n)(1 − r_l)² enters only when some r_l moves.
    """

    def __init__(self, problem: LayerProblem, ts, rtol: float):
        self.W = [np.asarray(W, np.float64) for W in problem.weights]
        self.b = [np.asarray(b, np.float64) for b in problem.biases]
        self.x = np.asarray(problem.x, np.float64)
        self.y = problem.y if problem.config.loss == "ce" else np.asarray(problem.y, np.float64)
        self.rs = [float(r) for r in problem.rs]
        self.tau = [float(tau) for tau in problem.taus]
        self.t = [float(t) for t in ts]
        self.r = None  # Evaluator.loss then adds no global regulariser; loss() adds the per-layer one
        self.config = problem.config
        self.fractions = layer_fractions(self.W)
        self.rtol = rtol
        self.base_pattern = self.pattern(self.W, self.b, self.t, self.tau)
        self.kink = False
        self.base_loss = self.loss()

    def forward(self, W, b, t, tau):
        masked = [soft_mask(Wl, tl, taul) * Wl for Wl, tl, taul in zip(W, t, tau)]  # ŵ_l = m_l(w)·w
        return mlp_forward(self.x, masked, b)

    def loss(self, W=None, b=None, t=None, tau=None, rs=None) -> float:
        data_loss = super().loss(W, b, t, tau)  # r unchanged: the data loss alone
        if rs is None:
            return data_loss
        lam = self.config.lam
        return (data_loss + group_regulariser(rs, lam, self.fractions)
                - group_regulariser(self.rs, lam, self.fractions))

    def logits(self, layer: int) -> np.ndarray:
        """z = (w² − t_l²)/τ_l of layer ``layer``'s weights."""
        return mask_logit(self.W[layer], self.t[layer], self.tau[layer]).ravel()


def layer_coordinate_numeric(ev: LayerEvaluator, kind: str, layer: int, index):
    """Numerical ∂L/∂(one weight or bias): the weight's step is bounded at its own layer's (t_l, τ_l)."""
    if kind == "W":
        w, t, tau = ev.W[layer][index], ev.t[layer], ev.tau[layer]
        with np.errstate(over="ignore"):
            h = admissible_step(mask_logit(np.array([w]), t, tau), np.array([2 * abs(w) / tau]))
        return ev.derivative(lambda d: ev.loss(W=perturbed(ev.W, layer, index, d)), h, w)
    return ev.derivative(lambda d: ev.loss(b=perturbed(ev.b, layer, index, d)), H_MAX, ev.b[layer][index])


def layer_scalar_numeric(ev: LayerEvaluator, name: str, layer: int, dt_dr: float):
    """Numerical derivative of the loss in τ_l, t_l or r_l (or of t̃_l in r_l for "dt/dr").

    Only layer ``layer``'s logits move, so only they bound the step.
    """
    z, t, tau, r = ev.logits(layer), ev.t[layer], ev.tau[layer], ev.rs[layer]
    if name == "tau":
        h = admissible_step(z, z, TAU_REL_STEP) * tau  # relative step, as globally
        return ev.derivative(lambda d: ev.loss(tau=replaced(ev.tau, layer, tau + d)), h, tau)
    if name == "t":
        with np.errstate(over="ignore"):
            h = admissible_step(z, np.full_like(z, 2 * t / tau), H_MAX)
        return ev.derivative(lambda d: ev.loss(t=replaced(ev.t, layer, t + d)), h, t)
    a = np.abs(ev.W[layer]).ravel()
    room = min(r - R_MARGIN, 1 - R_MARGIN - r) / 2
    t_of = lambda d: smoothed_threshold(a, r + d, ev.config.density.rule).t  # t̃_l(r_l), this layer only
    if name == "dt/dr":
        return ev.derivative(t_of, min(H_MAX, room), r)
    with np.errstate(over="ignore"):
        h = admissible_step(z, np.full_like(z, 2 * t * dt_dr / tau), min(H_MAX, room))
    if h < CDF_TOL / ev.rtol:
        return (f"t̃_{layer + 1}(r_{layer + 1}) is solved to |F̂(t̃) − r| <= 1e-15, too coarse for the "
                f"r step this τ allows ({h:.1g}); ∂L/∂t and dt/dr are checked separately")
    f = lambda d: ev.loss(t=replaced(ev.t, layer, t_of(d)), rs=replaced(ev.rs, layer, r + d))
    return ev.derivative(f, h, r)


def check_layer_scalar(ev: LayerEvaluator, name: str, layer: int, analytic: float, dt_dr: float,
                       rtol: float) -> GradientRow:
    """The row ``<name>_<l>`` of one per-layer scalar; τ_l and t_l are vacuous with an empty band in layer l."""
    row_name = f"{name}_{layer + 1}"
    if name in ("tau", "t") and not np.any(np.abs(ev.logits(layer)) < Z_SATURATED):
        return vacuous_row(row_name, analytic)
    num = layer_scalar_numeric(ev, name, layer, dt_dr)
    if isinstance(num, str):
        return GradientRow(row_name, (), float("nan"), float("nan"), 0, 1, True, "unchecked", num)
    if num is None:
        return compare(row_name, np.zeros(0), np.zeros(0), np.zeros(0), rtol, 1)
    return replace(compare(row_name, np.array([analytic]), np.array([num[0]]), np.array([num[1]]), rtol, 0),
                   shape=())


def split_row_name(name: str):
    """``"dt/dr_2"`` → ("dt/dr", 1); anything else → None."""
    base, _, number = name.rpartition("_")
    return (base, int(number) - 1) if base in LAYER_ROWS and number.isdigit() else None


def check_layer_gradients(problem: LayerProblem, grads: dict, ts, dt_drs, dtype: str = "float64",
                          max_coords: int = MAX_COORDS, seed: int = 0) -> list[GradientRow]:
    """Compare layer-wise gradients with central differences.

    Parameters
    ----------
    problem : LayerProblem
    grads : dict
        Row name → analytic gradient: ``W1``…, ``b1``…, ``tau_1``…, ``t_1``…, and under
        the smoothed threshold ``r_1``… and ``dt/dr_1``…. Any subset may be given.
    ts : sequence of float, length L
        Thresholds t_l of the analytic pass (held fixed for w, b, τ_l).
    dt_drs : sequence of float, length L
        dt_l/dr_l of the analytic pass (set the r_l step sizes only).
    dtype : {"float64", "float32"}
    max_coords, seed : int
        Coordinates sampled per tensor, and the sampling seed.

    Returns
    -------
    list of GradientRow
    """
    rtol = FD_RTOL[dtype]
    rng = np.random.default_rng(seed)
    ev = LayerEvaluator(problem, ts, rtol)
    smoothed = problem.config.threshold == "smoothed"
    rows = []
    for name, analytic in grads.items():
        scalar_row = split_row_name(name)
        if name[0] in "Wb" and name[1:].isdigit():
            rows.append(check_tensor(ev, name[0], int(name[1:]) - 1, np.asarray(analytic), rtol, rng,
                                     max_coords, layer_coordinate_numeric))
        elif scalar_row and (scalar_row[0] in ("tau", "t") or smoothed):
            base, layer = scalar_row
            rows.append(check_layer_scalar(ev, base, layer, float(analytic), float(dt_drs[layer]), rtol))
    return rows


def layer_analytic_gradients(result: LayerwiseResult) -> dict:
    """The gradients the layer-wise oracle checks, by row name, from a layer-wise pass."""
    grads = {}
    for l, (dW, db) in enumerate(zip(result.grad_weights, result.grad_biases), start=1):
        grads[f"W{l}"] = dW
        grads[f"b{l}"] = db
    per_layer = {"tau": result.grad_tau, "t": result.grad_t, "r": result.grad_r, "dt/dr": result.dt_dr}
    for l in range(1, len(result.grad_weights) + 1):
        grads.update({f"{name}_{l}": np.array(per_layer[name][l - 1]) for name in LAYER_ROWS})
    return grads


def prepare_layer(case: Case):
    """The layer-wise problem and its analytic pass (:func:`refprune.oracle.gradcheck.prepare`, per layer).

    Raises ``ValueError`` for a case no verdict would be meaningful for (as globally,
    the float32 resolution of each layer's band is checked at that layer's t_l and τ_l).

    Returns
    -------
    problem : LayerProblem
    result : LayerwiseResult
    """
    if case.granularity != "layer":
        raise ValueError(f"granularity {case.granularity!r}: use refprune.oracle.gradcheck (prepare, gradcheck)")
    problem = make_layer_problem(case)
    result = layerwise_gradients(problem.weights, problem.biases, problem.x, problem.y,
                                 problem.rs, problem.taus, problem.config)
    for thr, z, tau in zip(result.thresholds, result.logits, problem.taus):
        check_float32_resolution(case, SimpleNamespace(threshold=thr, logits=[z]), tau)
    return problem, result


def band_notes(case: Case, result: LayerwiseResult) -> list:
    """Notes on the per-layer bands: placed, or empty (then that layer's τ and t rows are vacuous)."""
    empty = [l for l, z in enumerate(result.logits, start=1) if not np.any(np.abs(z) < Z_SATURATED)]
    count = band_count(case)
    notes = []
    if count:
        notes.append(f"band: up to {count} weights of each layer placed within |w² − t_l²| <= 3τ_l of its t_l")
    if empty:
        notes.append(f"no weight within the band of layer(s) {', '.join(map(str, empty))} (every |z| >= 60): "
                     "their ∂L/∂τ_l and ∂L/∂t_l are vacuous" + ("" if count else " — use --band N"))
    return notes


def gradcheck_layer(case: Case, max_coords: int = MAX_COORDS, prepared=None) -> Report:
    """Check every layer-wise LRP gradient of a case against finite differences.

    ``prepared``, optional, is what :func:`prepare_layer` returned for this case.

    Returns
    -------
    Report
        One row per W and b of every layer, ``tau_l`` and ``t_l`` per layer, and under
        the smoothed threshold ``dt/dr_l`` and ``r_l`` (end to end, regulariser included).
    """
    problem, result = prepared if prepared is not None else prepare_layer(case)
    notes = [f"layer-wise: r_l = {', '.join(f'{r:.6g}' for r in problem.rs)}; "
             f"τ_l = {', '.join(f'{tau:.3g}' for tau in problem.taus)}"]
    if case.threshold == "empirical":
        notes.append("r_l: not checkable by finite differences under the empirical threshold "
                     "(t_l(r_l) is a step function); ∂L/∂t_l is checked directly — use "
                     "--threshold smoothed to check ∂L/∂r_l end to end")
    ts = [thr.t for thr in result.thresholds]
    rows = check_layer_gradients(problem, layer_analytic_gradients(result), ts, result.dt_dr,
                                 case.dtype, max_coords, case.seed)
    return Report(case, rows, notes + band_notes(case, result))
