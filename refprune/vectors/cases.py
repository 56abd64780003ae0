"""Golden vectors: fixed LRP cases holding every input and every reference output.

A *case* is one LRP pass (METHOD §3, the exact path of :func:`refprune.lrp.reference.lrp_gradients`)
on a small MLP: its inputs (layer sizes, W and b of every layer, a batch x and
targets y, the loss kind, r, τ, λ, the threshold rule and the KDE settings) and
every output an implementation computes on the way (loss, t, soft masks,
g = ∂L/∂ŵ, dt/dr and the density it came from, ∂L/∂t, and the gradients of
every W, b, τ and r). This module defines the cases and builds them;
:mod:`refprune.vectors.files` writes them (``refprune vectors --out DIR``: one
``.npz`` per case and ``manifest.json``), :mod:`refprune.vectors.user_cases` builds a
user's own case, and ``refprune compare`` checks another implementation's
outputs against them (:mod:`refprune.vectors.compare`). The file format is specified
in ``docs/vectors.md`` (key schema: :mod:`refprune.vectors.schema`).

Properties every case has
-------------------------
- Inputs come from :func:`refprune.oracle.case.make_problem` with a fixed seed
  (PyTorch-default initialisation), then rounded to float32: every input is
  exactly representable in float32, so a float32 implementation reads the
  same numbers a float64 one does. References are computed in float64.
- The previous optimiser step is stored (``W_prev*``, ``b_prev*``,
  ``r_prev``, ``tau_prev``) so that a candidate whose threshold is one step
  stale (METHOD §6 P4) can be recognised by recomputation.
- Generation is deterministic: the same refprune version writes the same
  bytes (the ``.npz`` archives carry a fixed timestamp).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from refprune.core.groups import GRANULARITIES, Grouping
from refprune.core.optim import EPS as ADAM_EPS
from refprune.core.optim import R_MAX
from refprune.core.validation import check_choice
from refprune.density.config import PUBLISHED_DENSITY, DensityConfig
from refprune.density.quantile import THRESHOLD_RULES, compute_threshold
from refprune.lrp.reference import DT_DR_POINTS, LRPConfig, LRPResult, lrp_gradients
from refprune.oracle.case import Case, layer_ratios, layer_taus, make_problem
from refprune.oracle.placement import populate_band
from refprune.vectors.schema import SCHEMA_VERSION, TIERS, layer_keys, output_keys

TAU_RULES = ("std", "margin", "absolute")

# The previous step is one Adam step back with the learning rates of thesis
# Table 4.1. Adam's first update is lr·g/(|g| + ε) (m̂ = g, v̂ = g²), so
# W_prev = W + lr·g/(|g| + ε): each weight moved by about lr, which moves t by
# a few 1e-4 relative: at least 3× the float32 tier (tests/test_vectors.py checks it).
PREV_LR = {"weights": 1e-3, "r": 1e-4, "tau": 1e-6}
# In the extreme-τ cases lr_τ = 1e-6 exceeds τ itself; the τ step is capped at
# 1% of τ there so that τ_prev stays a plausible previous value of τ.
PREV_TAU_MAX_REL = 1e-2
# r·n must stay this far from an integer (besides the r step to r_prev), so
# that k = floor(r·n) is the same whether r·n is rounded in float32 or float64
# and for r and r_prev alike: no case sits on a jump of t(r).
K_MARGIN = 1e-3



@dataclass(frozen=True)
class VectorCase:
    """One golden-vector case: everything needed to rebuild its inputs.

    Attributes
    ----------
    name : str
        File stem and the ``case`` key.
    description : str
        What the case exercises.
    layers : tuple of int
        (D_0, …, D_L).
    batch : int
    loss : {"ce", "mse"}
    r : float
        Pruning ratio (rounded to float32 before use).
    tau0 : float
        Meaning depends on ``tau_rule``.
    tau_rule : {"std", "margin", "absolute"}
        "std": τ = τ0 × std(all weights) (thesis §2.5); "margin": τ =
        min_i |w_i² − t²| / τ0, so every mask logit has |z| >= τ0 (a near-hard
        mask that stays well conditioned); "absolute": τ = τ0.
    lam : float
        λ of the regulariser (thesis eq. (2.23)).
    threshold : {"empirical", "smoothed"}
    density : DensityConfig
        Density estimate for dt/dr (default: the exact Gaussian sum reflected
        at 0, Scott's bandwidth; every field is set explicitly).
    dt_dr_at : {"t", "order_stats"}
        Where 1/f is evaluated (see :class:`refprune.lrp.reference.LRPConfig`).
    tier : {"float64", "float32"}
        Tolerance tier the case is judged in.
    seed : int
    covers : tuple of str
        Tags listing what the case spans (for the manifest).
    granularity : {"global", "layer"}
        "layer": layer-wise LRP (docs/derivations.md §9) with r_l = r + r_spread·(l − (L + 1)/2)
        and τ_l = τ0 × std(W_l) (``tau_rule`` "std" only); no previous step is stored.
    r_spread : float
        The step between consecutive r_l of a layer-wise case.
    band : int
        Layer-wise: weights of each layer placed within its band |w² − t_l²| <= 3τ_l
        (:func:`refprune.oracle.placement.populate_band`), so that ∂L/∂τ_l and ∂L/∂t_l are not
        negligible at small τ0; 0 places none.
    """

    name: str
    description: str
    layers: tuple
    batch: int
    loss: str
    r: float
    tau0: float
    tau_rule: str = "std"
    lam: float = 0.0
    threshold: str = "empirical"
    density: DensityConfig = field(default_factory=lambda: _density("direct", reflect=True))
    dt_dr_at: str = "t"
    tier: str = "float64"
    seed: int = 0
    covers: tuple = ()
    granularity: str = "global"
    r_spread: float = 0.0
    band: int = 0

    def __post_init__(self):
        """Check the choices (ValueError naming the field)."""
        check_choice(self.tau_rule, "tau_rule", TAU_RULES)
        check_choice(self.tier, "tier", TIERS)
        check_choice(self.threshold, "threshold", THRESHOLD_RULES)
        check_choice(self.dt_dr_at, "dt_dr_at", DT_DR_POINTS)
        check_choice(self.granularity, "granularity", GRANULARITIES)
        if self.granularity == "layer" and self.tau_rule != "std":
            raise ValueError(f"case {self.name}: a layer-wise case takes tau_rule 'std' (τ_l = τ0 × std(W_l))")
        if self.granularity == "global" and (self.r_spread or self.band):
            raise ValueError(f"case {self.name}: r_spread and band apply to layer-wise cases only")


def _density(method: str, reflect: bool, binning: str = "linear", renormalize: bool = False) -> DensityConfig:
    """A DensityConfig with every field explicit (Scott's rule, m = 1024)."""
    return DensityConfig(rule="scott", grid_size=1024, binning=binning, reflect=reflect,
                         method=method, renormalize=renormalize)


_REFLECTED = _density("direct", reflect=True)  # exact sum reflected at 0 (also the smoothed rule's)
_DIRECT = _density("direct", reflect=False)  # exact sum, thesis eq. (2.17) as printed
_THESIS_FFT = _density("fft", reflect=False)  # binned + FFT, linear binning (Theorem 2.1)
_PUBLISHED = PUBLISHED_DENSITY  # METHOD §6 P5 in full (truncated kernel on an arange, ddof 0)

CASES = (
    VectorCase("ce-tiny", "classification, tiny net, moderate τ, λ = 0",
               (4, 3, 3), 5, "ce", 0.5, 0.1, seed=1,
               covers=("classification", "tiny", "moderate-tau", "lam0", "float64")),
    VectorCase("mse-tiny-lam", "regression, tiny net, λ > 0, KDE not reflected at 0",
               (3, 4, 2), 6, "mse", 0.33, 0.1, lam=2.0, density=_DIRECT, seed=2,
               covers=("regression", "tiny", "moderate-tau", "lam>0", "unreflected-kde", "float64")),
    VectorCase("ce-medium-f32", "classification, medium net, thesis τ0 = 1e-2 and λ = 10, "
               "binned FFT KDE (Theorem 2.1), float32 tier",
               (16, 32, 32, 10), 16, "ce", 0.6, 1e-2, lam=10.0, density=_THESIS_FFT, seed=3,
               tier="float32",
               covers=("classification", "medium", "moderate-tau", "lam>0", "fft-kde", "float32")),
    VectorCase("mse-medium-f32", "regression, medium net, float32 tier",
               (8, 32, 32, 4), 16, "mse", 0.4, 0.05, seed=4,
               tier="float32",
               covers=("regression", "medium", "moderate-tau", "lam0", "float32")),
    VectorCase("ce-medium-fft", "classification, medium net, binned FFT KDE, float64 tier",
               (12, 24, 16, 6), 12, "ce", 0.7, 0.05, lam=0.5, density=_THESIS_FFT, seed=5,
               covers=("classification", "medium", "moderate-tau", "lam>0", "fft-kde", "float64")),
    VectorCase("ce-hard-tau", "near-hard mask: τ = min|w² − t²|/10, every |z| >= 10, "
               "every mask within 5e-5 of 0 or 1",
               (10, 16, 8, 4), 8, "ce", 0.52, 10.0, tau_rule="margin", lam=1.0, seed=6,
               covers=("classification", "medium", "extreme-tau", "lam>0", "float64")),
    VectorCase("mse-tau-1e-12", "τ = 1e-12: masks saturated, overflow-free soft mask needed",
               (6, 8, 3), 6, "mse", 0.55, 1e-12, tau_rule="absolute", seed=7,
               covers=("regression", "tiny", "extreme-tau", "lam0", "float64")),
    VectorCase("ce-r-near-0", "r = 0.01 < 1/n: k = 0, a_0 := 0, t = a_1/2",
               (4, 3, 3), 5, "ce", 0.01, 0.1, seed=8,
               covers=("classification", "tiny", "r-near-0", "k=0", "lam0", "float64")),
    VectorCase("mse-r-near-0-f32", "r = 0.01 with k = 1, λ > 0, float32 tier",
               (8, 16, 4), 10, "mse", 0.01, 0.1, lam=1.0, seed=9,
               tier="float32",
               covers=("regression", "medium", "r-near-0", "lam>0", "float32")),
    VectorCase("ce-r-near-1", "r = 0.95, λ = 10",
               (8, 16, 4), 10, "ce", 0.95, 0.1, lam=10.0, seed=10,
               covers=("classification", "medium", "r-near-1", "lam>0", "float64")),
    VectorCase("mse-r-0999", "r = 0.999: t between the 2nd and 3rd largest |w|, density in the tail",
               (16, 32, 32, 1), 12, "mse", 0.999, 0.1, seed=11,
               covers=("regression", "medium", "r-near-1", "lam0", "float64")),
    VectorCase("ce-smoothed-lam", "smoothed threshold t̃ = F̂⁻¹(r) (reflected KDE), λ = 10",
               (6, 5, 4, 3), 8, "ce", 0.5, 0.1, lam=10.0, threshold="smoothed",
               density=_REFLECTED, seed=12,
               covers=("classification", "tiny", "smoothed", "lam>0", "float64")),
    VectorCase("mse-smoothed-f32", "smoothed threshold, regression, float32 tier",
               (5, 8, 2), 8, "mse", 0.3, 0.1, threshold="smoothed", density=_REFLECTED, seed=13,
               tier="float32",
               covers=("regression", "tiny", "smoothed", "lam0", "float32")),
    VectorCase("ce-published-kde", "published density (METHOD §6 P5 in full: nearest bins, "
               "kernel truncated at ±3h on an arange, ddof 0, renormalised) averaged over a_k, "
               "a_{k+1}, with the sign of eq. (2.16)",
               (10, 12, 5), 8, "ce", 0.53, 0.1, lam=1.0, density=_PUBLISHED, dt_dr_at="order_stats",
               seed=14, covers=("classification", "medium", "published-kde", "lam>0", "float64")),
    VectorCase("ce-layer", "layer-wise LRP (r_l = 0.42, 0.52, 0.62; τ_l = 0.1 × std(W_l)), classification, λ = 1",
               (6, 5, 4, 3), 8, "ce", 0.52, 0.1, lam=1.0, seed=15, granularity="layer", r_spread=0.1,
               covers=("classification", "tiny", "layer-wise", "moderate-tau", "lam>0", "float64")),
    VectorCase("mse-layer-smoothed", "layer-wise LRP, smoothed threshold t̃_l = F̂_l⁻¹(r_l), regression, λ = 10",
               (5, 8, 6, 2), 8, "mse", 0.45, 0.1, lam=10.0, threshold="smoothed", density=_REFLECTED,
               seed=16, granularity="layer", r_spread=0.15,
               covers=("regression", "tiny", "layer-wise", "smoothed", "moderate-tau", "lam>0", "float64")),
    VectorCase("ce-layer-band", "layer-wise LRP at τ0 = 1e-5 with 6 weights of each layer placed "
               "within its band |w² − t_l²| <= 3τ_l", (8, 6, 4), 6, "ce", 0.53, 1e-5, seed=17,
               granularity="layer", r_spread=0.1, band=6,
               covers=("classification", "tiny", "layer-wise", "extreme-tau", "band", "lam0", "float64")),
)
CASE_NAMES = tuple(c.name for c in CASES)


# --------------------------------------------------------------------------
# building a case


def to_float32_grid(a) -> np.ndarray:
    """float64 array of the nearest float32 values (inputs float32 implementations read exactly)."""
    return np.asarray(a, np.float64).astype(np.float32).astype(np.float64)


def f32(value: float) -> float:
    """The nearest float32 value of a scalar, as a Python float."""
    return float(np.float32(value))


def choose_tau(case: VectorCase, weights, t: float) -> float:
    """τ of the case by its ``tau_rule`` (see :class:`VectorCase`), rounded to float32."""
    if case.tau_rule == "absolute":
        return f32(case.tau0)
    flat = np.concatenate([W.ravel() for W in weights])
    if case.tau_rule == "std":
        return f32(case.tau0 * float(np.std(flat)))  # thesis §2.5: τ = τ0 × std(W)
    gap = float(np.min(np.abs((np.abs(flat) - t) * (np.abs(flat) + t))))  # min |w² − t²|
    if not gap > 0:
        raise ValueError(f"case {case.name}: a weight lies exactly at t, no margin τ exists")
    return f32(gap / case.tau0)


def lrp_config(case: VectorCase) -> LRPConfig:
    """The LRPConfig of a case (loss, λ, threshold rule, density, dt/dr point)."""
    return LRPConfig(loss=case.loss, lam=case.lam, threshold=case.threshold,
                     density=case.density, dt_dr_at=case.dt_dr_at)


def adam_first_step(g: np.ndarray) -> np.ndarray:
    """Adam's first update direction m̂/(√v̂ + ε) = g/(|g| + ε) (PyTorch semantics)."""
    g = np.asarray(g, np.float64)
    return g / (np.abs(g) + ADAM_EPS)


def previous_step(weights, biases, r: float, tau: float, res: LRPResult) -> dict:
    """The parameters one Adam step earlier, if that step's gradient equalled this one.

    W_prev = W + lr·g/(|g| + ε) (and likewise b, r, τ; learning rates of
    thesis Table 4.1, ``PREV_LR``), rounded to float32. r_prev is clamped to
    [0, R_MAX]; the τ step is capped at ``PREV_TAU_MAX_REL``·τ.

    Returns
    -------
    dict
        ``W_prev`` and ``b_prev`` (lists), ``r_prev``, ``tau_prev``.
    """
    lr = PREV_LR
    W_prev = [to_float32_grid(W + lr["weights"] * adam_first_step(g))
              for W, g in zip(weights, res.grad_weights)]
    b_prev = [to_float32_grid(b + lr["weights"] * adam_first_step(g))
              for b, g in zip(biases, res.grad_biases)]
    r_prev = f32(min(max(r + lr["r"] * float(adam_first_step(res.grad_r)), 0.0), R_MAX))
    tau_step = lr["tau"] * float(adam_first_step(res.grad_tau))
    tau_step = float(np.clip(tau_step, -PREV_TAU_MAX_REL * tau, PREV_TAU_MAX_REL * tau))
    return {"W_prev": W_prev, "b_prev": b_prev, "r_prev": r_prev, "tau_prev": f32(tau + tau_step)}


def check_k_margin(case: VectorCase, r: float, n: int) -> None:
    """Raise unless r·n and (r ± lr_r)·n lie at least K_MARGIN from an integer (empirical rule)."""
    if case.threshold != "empirical":
        return
    rn = r * n
    room = min(rn - np.floor(rn), np.ceil(rn) - rn) if rn != np.floor(rn) else 0.0
    if room < K_MARGIN + PREV_LR["r"] * n:
        raise ValueError(f"case {case.name}: r·n = {rn!r} is within {room:.3g} of an integer; "
                         f"choose r so that k = floor(r·n) is not on a jump")


def build_inputs(case: VectorCase) -> dict:
    """Inputs of a case: weights, biases, batch, targets, r, τ (float32-representable).

    Returns
    -------
    dict
        ``weights``, ``biases`` (lists of float64 arrays), ``x``, ``y``, ``r``,
        ``tau``, ``config`` (LRPConfig).
    """
    base = Case(layers=case.layers, batch=case.batch, loss=case.loss, r=case.r, tau0=1.0, lam=case.lam,
                seed=case.seed, threshold=case.threshold, dtype="float64")
    problem = make_problem(base)
    weights = [to_float32_grid(W) for W in problem.weights]
    biases = [to_float32_grid(b) for b in problem.biases]
    x = to_float32_grid(problem.x)
    y = problem.y.astype(np.int64) if case.loss == "ce" else to_float32_grid(problem.y)
    if case.granularity == "layer":
        layered = replace(base, granularity="layer", r_spread=case.r_spread)
        rs, taus, weights = layer_inputs(case, layered, weights)
        return {"weights": weights, "biases": biases, "x": x, "y": y, "r": rs, "tau": taus,
                "config": lrp_config(case)}
    r = f32(case.r)
    check_k_margin(case, r, sum(W.size for W in weights))
    config = lrp_config(case)
    t = compute_threshold(weights, r, case.threshold, case.density).t
    tau = choose_tau(case, weights, t)
    return {"weights": weights, "biases": biases, "x": x, "y": y, "r": r, "tau": tau, "config": config}


def layer_inputs(case: VectorCase, base: Case, weights) -> tuple:
    """r_l, τ_l (float32-representable) and the weights of a layer-wise case, bands placed.

    τ_l = τ0 × std(W_l) of the weights before placement, as training initialises them;
    placed weights are rounded to float32 (their logits move by ~1e-3, still in the band).
    """
    rs = [f32(r) for r in layer_ratios(base)]
    taus = [f32(tau) for tau in layer_taus(weights, case.tau0)]
    if case.band:
        placed = populate_band(weights, rs, taus, case.threshold, case.density, case.band,
                               Grouping.of("layer", len(weights)))
        weights = [to_float32_grid(W) for W in placed]
    for r, W in zip(rs, weights):
        check_k_margin(case, r, W.size)
    return rs, taus, weights


def reference_outputs(res) -> dict:
    """Output keys (``output_keys``) from an LRP pass (or a layer-wise one: (L,) arrays), as float64 arrays."""
    t = res.threshold.t if res.grouping is None else [thr.t for thr in res.threshold]
    out = {"loss": res.loss, "t": t, "dt_dr": res.dt_dr, "density": res.density,
           "grad_t": res.grad_t, "grad_tau": res.grad_tau, "grad_r": res.grad_r}
    out = {key: np.array(value, np.float64) for key, value in out.items()}
    for l in range(len(res.masks)):
        out[f"mask{l + 1}"] = np.asarray(res.masks[l], np.float64)
        out[f"grad_masked_W{l + 1}"] = np.asarray(res.grad_masked[l], np.float64)
        out[f"grad_W{l + 1}"] = np.asarray(res.grad_weights[l], np.float64)
        out[f"grad_b{l + 1}"] = np.asarray(res.grad_biases[l], np.float64)
    return out


def kde_inputs(config: LRPConfig) -> dict:
    """The ``kde_*`` keys of a case."""
    d = config.density
    return {"kde_method": np.array(d.method), "kde_rule": np.array(d.rule),
            "kde_grid_size": np.array(d.grid_size, np.int64), "kde_binning": np.array(d.binning),
            "kde_reflect": np.array(d.reflect), "kde_renormalize": np.array(d.renormalize),
            "kde_point": np.array(config.dt_dr_at), "kde_ddof": np.array(d.ddof, np.int64)}


def make_vectors(case: VectorCase) -> dict:
    """Every key of a case's file (inputs and reference outputs), in file order.

    Parameters
    ----------
    case : VectorCase

    Returns
    -------
    dict
        Key → ndarray; see ``docs/vectors.md`` for the schema.

    Examples
    --------
    >>> from refprune.vectors.cases import case_by_name, make_vectors
    >>> v = make_vectors(case_by_name("ce-tiny"))
    >>> str(v["case"]), v["W1"].shape, float(v["r"])
    ('ce-tiny', (4, 3), 0.5)
    """
    inp = build_inputs(case)
    W, b, r, tau, config = inp["weights"], inp["biases"], inp["r"], inp["tau"], inp["config"]
    if case.granularity == "layer":
        res = lrp_gradients(W, b, inp["x"], inp["y"], r, tau, config, grouping=Grouping.of("layer", len(W)))
        return assemble_vectors(case.name, case.tier, case.layers, inp, res, None)
    res = lrp_gradients(W, b, inp["x"], inp["y"], r, tau, config)
    return assemble_vectors(case.name, case.tier, case.layers, inp, res,
                            previous_step(W, b, r, tau, res))


def assemble_vectors(name: str, tier: str, layers, inp: dict, res: LRPResult, prev: dict | None) -> dict:
    """A case file's keys, in file order, from its inputs, its LRP pass and its previous step.

    Parameters
    ----------
    name, tier : str
    layers : tuple of int
    inp : dict
        ``weights``, ``biases`` (lists), ``x``, ``y``, ``r``, ``tau``, ``config`` (LRPConfig);
        a layer-wise case's ``r`` and ``tau`` are sequences of length L.
    res : LRPResult
        The reference pass on those inputs (a pass with a grouping writes a layer-wise file).
    prev : dict or None
        ``W_prev``, ``b_prev``, ``r_prev``, ``tau_prev``; None writes no previous step.
    """
    W, b, config = inp["weights"], inp["biases"], inp["config"]
    L = len(W)
    data = {"schema_version": np.array(SCHEMA_VERSION, np.int64), "case": np.array(name),
            "tier": np.array(tier), "layers": np.array(layers, np.int64)}
    data.update(zip(layer_keys("W", L), W))
    data.update(zip(layer_keys("b", L), b))
    data.update({"x": inp["x"], "y": inp["y"], "loss_kind": np.array(config.loss),
                 "r": np.array(inp["r"], np.float64), "tau": np.array(inp["tau"], np.float64),
                 "lam": np.array(float(config.lam)), "threshold_rule": np.array(config.threshold)})
    if res.grouping is not None:
        data["granularity"] = np.array("layer")
    data.update(kde_inputs(config))
    if prev is not None:
        data.update(zip(layer_keys("W_prev", L), prev["W_prev"]))
        data.update(zip(layer_keys("b_prev", L), prev["b_prev"]))
        data.update({"r_prev": np.array(float(prev["r_prev"])), "tau_prev": np.array(float(prev["tau_prev"]))})
    outputs = reference_outputs(res)
    data.update((key, outputs[key]) for key in output_keys(L))
    return data


def case_by_name(name: str) -> VectorCase:
    """The registered case of that name, or ValueError listing the known names."""
    for case in CASES:
        if case.name == name:
            return case
    raise ValueError(f"case {name!r} does not exist; known cases: {', '.join(CASE_NAMES)}")
