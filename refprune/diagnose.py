"""Diagnosis: which known implementation error explains a mismatching candidate.

Every known defect (``DEFECTS``) is a *model*: the case's outputs are
recomputed from its inputs with the defect applied (e.g. with m·g in place of
g for double masking, with t from the previous step's weights for a stale
threshold, with another bandwidth rule for dt/dr). A defect, or a pair of
defects, *explains* the candidate when every quantity the candidate supplies
equals its prediction within the tolerance (the same error measure as
:mod:`refprune.compare`). Nothing is decided from a stored label or from the
size of an error alone.

Search: no defect, then each single defect, then each compatible pair; the
first size with an explanation wins (fewest defects), ranked by how closely
they fit. Ties are reported as ambiguous, with the keys that would tell the
candidates apart. When nothing fits, the diagnosis says so and gives the
closest model and plain statistics (ratios, scale factors, how many entries
differ).

Float32 candidates: if every supplied value is float32 (or exactly
representable in float32), predictions are matched at the float32 tolerance
and "no defect" matching there is the diagnosis "float32 round-off only".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from .compare import ABS_FLOOR, RTOL
from .density import bandwidth, binned_kde, direct_kde, interpolate_density
from .gradients import grad_tau, grad_threshold
from .lrp import masked_forward_backward
from .threshold import Threshold, all_magnitudes, compute_threshold
from .vectors import config_of, output_keys, scalar, targets_of, weights_of


@dataclass(frozen=True)
class Defect:
    """A known way implementations go wrong, and how it is recognised."""

    name: str
    title: str
    model: str


DEFECTS = {d.name: d for d in (
    Defect("sign_flip", "sign flip of the whole gradient",
           "every gradient (∂L/∂ŵ, ∂L/∂W, ∂L/∂b, ∂L/∂t, ∂L/∂τ, ∂L/∂r) negated"),
    Defect("dt_dr_sign", "sign flip of dt/dr (the sign of METHOD §6 P2)",
           "dt/dr negated, so the data term (dt/dr)·∂L/∂t of ∂L/∂r flips while 2λ(r − 1) is right"),
    Defect("grad_t_sign", "sign flip of ∂L/∂t",
           "∂L/∂t negated (and with it the data term of ∂L/∂r)"),
    Defect("grad_tau_sign", "sign flip of ∂L/∂τ",
           "(w² − t²) for (t² − w²) in eq. (2.10)"),
    Defect("reg_sign", "sign flip of the regulariser's gradient",
           "2λ(1 − r) for 2λ(r − 1) in ∂L/∂r (eq. (2.23))"),
    Defect("loss_without_reg", "loss reported without the regulariser",
           "loss = data loss, without λ(1 − r)² (eq. (2.23))"),
    Defect("double_mask", "gradient scaled by the mask (double masking, METHOD §6 P1)",
           "autograd through a constant mask leaves m·g; the hand formulas then use m·g for g: "
           "∂L/∂w = m × exact, ∂L/∂τ and ∂L/∂t carry an extra m per weight"),
    Defect("printed_eq_2_3", "the printed eq. (2.3): 2w/τ instead of 2w²/τ",
           "∂L/∂w = g·(m + (2w/τ)·s)"),
    Defect("t_differentiable", "t differentiable in w (gradient through sort/topk)",
           "∂L/∂w gains ∂L/∂t·∂t/∂w: ½·sign(w) at the order statistics a_k, a_{k+1} "
           "(empirical rule) or −(∂F̂/∂a)/f̂(t̃)·sign(w) (smoothed rule)"),
    Defect("transposed", "weight layout transposed ((out, in) as PyTorch's nn.Linear.weight)",
           "weight-shaped quantities equal the transpose of the (in, out) reference"),
    Defect("stale_t", "threshold t one step stale",
           "t from the previous step's weights and r (W_prev, r_prev); masks rebuilt from the "
           "current weights with it"),
    Defect("stale_t_tau", "t and τ one step stale (METHOD §6 P4)",
           "t from W_prev, r_prev and τ = tau_prev in the masks and formulas"),
    Defect("density", "different density estimate for dt/dr (bandwidth rule, binning, grid, point)",
           "dt/dr = 1/f for another bandwidth (Scott, Scott with ddof 0, Silverman), method "
           "(direct sum, binned FFT, the published truncated 'same' convolution), binning, "
           "grid size, reflection, renormalisation, or evaluation point"),
    Defect("float32_roundoff", "float32 round-off only (not a bug)",
           "every mismatch is within the float32 tier: the candidate computed in float32"),
)}
SEARCHED = tuple(name for name in DEFECTS if name != "float32_roundoff")
PASS_FLAGS = ("double_mask", "printed_eq_2_3", "t_differentiable", "stale_t", "stale_t_tau")
STALE = ("stale_t", "stale_t_tau")
# Pairs that describe no implementation (two kinds of staleness; a gradient
# through the sort of the previous weights does not reach the current ones).
# A stale threshold's dt/dr models are its own (at the fresh or the stale t),
# so a stale defect is not paired with "density" either.
EXCLUDED_PAIRS = {frozenset(STALE)} | {frozenset({s, other}) for s in STALE
                                       for other in ("t_differentiable", "density")}
OPTION_KEYS = ("dt_dr", "density", "grad_r")

# Density models tried for dt/dr: bandwidths, FFT grid sizes (powers of two
# around the thesis's 1024), binning rules.
BANDWIDTH_MODELS = ("scott", "scott_ddof0", "silverman")
GRID_SIZES = (256, 512, 1024, 2048, 4096)
BINNINGS = ("linear", "nearest")
# Published density (METHOD §6 P5): kernel truncated at ±3h.
P5_TRUNCATION = 3.0
# A model's error is reported as a multiple of the tolerance; a quantity
# "explains" when it is <= 1.
EXPLAINS = 1.0
# Relative rounding of a float32 number, 2⁻²⁴.
FLOAT32_UNIT_ROUNDOFF = 2.0 ** -24
# Entries of an array counted as "differing" when their error exceeds the tolerance;
# at most this many positions are listed.
MAX_POSITIONS = 4


# --------------------------------------------------------------------------
# the case, as the models need it


@dataclass
class CaseInputs:
    """A case's inputs and its fresh and stale thresholds."""

    W: list
    b: list
    x: np.ndarray
    y: np.ndarray
    r: float
    tau: float
    lam: float
    config: object
    thr: Threshold
    thr_prev: Threshold
    tau_prev: float
    ref: dict


def case_inputs(ref: dict) -> CaseInputs:
    """Inputs, fresh threshold t(W, r) and stale threshold t(W_prev, r_prev) of a vectors dict."""
    config = config_of(ref)
    W = weights_of(ref)
    r = scalar(ref, "r")
    W_prev, r_prev = weights_of(ref, "W_prev"), scalar(ref, "r_prev")
    return CaseInputs(W=W, b=weights_of(ref, "b"), x=np.asarray(ref["x"], np.float64),
                      y=targets_of(ref), r=r, tau=scalar(ref, "tau"), lam=scalar(ref, "lam"),
                      config=config,
                      thr=compute_threshold(W, r, config.threshold, config.density),
                      thr_prev=compute_threshold(W_prev, r_prev, config.threshold, config.density),
                      tau_prev=scalar(ref, "tau_prev"), ref=ref)


# --------------------------------------------------------------------------
# ∂t/∂w for "t differentiable"


def empirical_t_derivative(a: np.ndarray, k: int) -> np.ndarray:
    """∂t/∂a for t = (a_k + a_{k+1})/2 through a sort: ½ at the two order statistics.

    At k = 0, a_0 := 0 is a constant, so only a_1 gets ½.
    """
    order = np.argsort(a, kind="stable")
    d = np.zeros(a.size)
    if k > 0:
        d[order[k - 1]] += 0.5
    d[order[k]] += 0.5
    return d


def smoothed_t_derivatives(a: np.ndarray, t: float, rule: str) -> list:
    """∂t̃/∂a from F̂_R(t̃; a, h) = r by implicit differentiation.

    Returns two models: h held fixed, and h = Scott's σ̂·n^(−1/5) varying with
    a (an autograd through the bandwidth); the second only for Scott's rule.

    With u₁ = (t − a)/h, u₂ = (t + a)/h and F̂_R = (1/n)Σ[Φ(u₁) − Φ(−u₂)]:
    ∂F̂/∂a_i = (φ(u₂) − φ(u₁))/(n h), ∂F̂/∂h = −(1/n)Σ[φ(u₁)(t − a) + φ(u₂)(t + a)]/h²,
    f̂_R(t) = (1/(n h))Σ[φ(u₁) + φ(u₂)], and ∂t̃/∂a = −(∂F̂/∂a + ∂F̂/∂h·∂h/∂a)/f̂.
    """
    n = a.size
    h = bandwidth(a, rule)
    phi1 = np.exp(-0.5 * ((t - a) / h) ** 2) / np.sqrt(2 * np.pi)
    phi2 = np.exp(-0.5 * ((t + a) / h) ** 2) / np.sqrt(2 * np.pi)
    f = float(direct_kde(a, np.array([t]), h, reflect=True)[0])
    dF_da = (phi2 - phi1) / (n * h)
    models = [-dF_da / f]
    if rule == "scott":
        dF_dh = -float(np.sum(phi1 * (t - a) + phi2 * (t + a))) / (n * h * h)
        sigma2 = float(np.var(a, ddof=1))
        dh_da = h * (a - a.mean()) / ((n - 1) * sigma2)  # h = σ̂·n^(−1/5), thesis eq. (2.19)
        models.append(-(dF_da + dF_dh * dh_da) / f)
    return models


def t_weight_derivatives(ci: CaseInputs) -> list:
    """Models of ∂t/∂w (flat, length n) for a candidate that differentiates t in w."""
    a = all_magnitudes(ci.W)
    sign = np.sign(np.concatenate([W.ravel() for W in ci.W]))
    if ci.config.threshold == "empirical":
        return [sign * empirical_t_derivative(a, ci.thr.k)]
    return [sign * d for d in smoothed_t_derivatives(a, ci.thr.t, ci.config.density.rule)]


def split_layers(flat: np.ndarray, W: list) -> list:
    """A flat array of length n cut into arrays shaped like each layer's weights."""
    out, start = [], 0
    for Wl in W:
        out.append(flat[start:start + Wl.size].reshape(Wl.shape))
        start += Wl.size
    return out


# --------------------------------------------------------------------------
# the LRP pass with defects applied


def model_pass(ci: CaseInputs, flags: frozenset) -> dict:
    """Outputs of the LRP pass (except dt/dr, density, ∂L/∂r) under the pass-level defects.

    Returns
    -------
    dict
        ``t``, ``data_loss``, and per layer lists ``masks``, ``g`` (models of
        what the candidate reports as ∂L/∂ŵ), ``grad_W`` (list of models, each
        a list of layers), ``grad_b``; ``grad_tau``, ``grad_t``.
    """
    t, tau = ci.thr.t, ci.tau
    if flags & set(STALE):
        t = ci.thr_prev.t
    if "stale_t_tau" in flags:
        tau = ci.tau_prev
    data_loss, _, masks, slopes, logits, g, grad_b = masked_forward_backward(
        ci.W, ci.b, ci.x, ci.y, t, tau, ci.config.loss)
    G = [m * gl for m, gl in zip(masks, g)] if "double_mask" in flags else g  # METHOD §6 P1
    power = 1 if "printed_eq_2_3" in flags else 2  # eq. (2.3) as printed: 2w/τ
    # thesis eq. (2.3), corrected (2w²/τ) or as printed (2w/τ)
    grad_W = [Gl * (m + (2.0 * W ** power / tau) * s) for Gl, W, m, s in zip(G, ci.W, masks, slopes)]
    d_t = grad_threshold(G, ci.W, slopes, t, tau)  # thesis eq. (2.11), inner sum
    models = [grad_W]
    if "t_differentiable" in flags:
        models = [[gW + d_t * dt for gW, dt in zip(grad_W, split_layers(d, ci.W))]
                  for d in t_weight_derivatives(ci)]
    return {"t": t, "tau": tau, "data_loss": data_loss, "masks": masks,
            "g": [G, g] if "double_mask" in flags else [g], "grad_W": models, "grad_b": grad_b,
            "grad_tau": grad_tau(G, ci.W, slopes, logits, tau), "grad_t": d_t}  # eq. (2.10)


# --------------------------------------------------------------------------
# density models for dt/dr


@dataclass(frozen=True)
class DensityModel:
    """One way to estimate f for dt/dr = 1/f."""

    bandwidth: str
    method: str  # "direct", "fft" or "published"
    grid_size: int | None = None
    binning: str | None = None
    reflect: bool = False
    renormalize: bool = False

    def label(self) -> str:
        """Human-readable description, e.g. 'bandwidth scott, direct Gaussian sum, at t'."""
        parts = [f"bandwidth {self.bandwidth.replace('_', ' ')}"]
        if self.method == "direct":
            parts.append("direct Gaussian sum")
        elif self.method == "fft":
            parts.append(f"binned FFT, {self.binning} binning, grid {self.grid_size}")
            if self.renormalize:
                parts.append("renormalised")
        else:
            parts.append(f"published P5 (nearest bins, kernel truncated at ±3h, 'same' "
                         f"convolution, renormalised), grid {self.grid_size}")
        if self.reflect:
            parts.append("reflected at 0")
        return ", ".join(parts)


def reference_model(config) -> DensityModel:
    """The DensityModel the reference's dt/dr used."""
    d = config.density
    if config.threshold == "smoothed":
        return DensityModel(d.rule, "direct", reflect=True)
    if d.method == "direct":
        return DensityModel(d.rule, "direct", reflect=d.reflect)
    return DensityModel(d.rule, "fft", d.grid_size, d.binning, d.reflect, d.renormalize)


def model_bandwidth(a: np.ndarray, name: str) -> float:
    """h by Scott's rule (ddof 1, eq. (2.19)), Scott's with ddof 0, or Silverman's (eq. (2.18))."""
    if name == "scott_ddof0":
        return float(np.std(a)) * a.size ** (-0.2)  # eq. (2.19) with NumPy's default ddof = 0
    return bandwidth(a, name)


def published_density(a: np.ndarray, h: float, m: int):
    """METHOD §6 P5: nearest-bin histogram, kernel truncated at ±3h, 'same' convolution, unit area."""
    lo, hi = a.min() - 3.0 * h, a.max() + 3.0 * h
    grid = np.linspace(lo, hi, m)
    delta = grid[1] - grid[0]
    hist = np.bincount(np.clip(np.rint((a - lo) / delta), 0, m - 1).astype(np.intp), minlength=m)
    half = int(np.floor(P5_TRUNCATION * h / delta))
    offsets = np.arange(-half, half + 1) * delta
    kernel = np.exp(-0.5 * (offsets / h) ** 2) / (h * np.sqrt(2 * np.pi))
    dens = np.convolve(hist.astype(np.float64), kernel, mode="same")
    return grid, dens / np.trapezoid(dens, grid)


def gridded_at(a, h, points, grid, dens) -> np.ndarray:
    """A gridded density interpolated at the points; the direct sum outside the grid (as density_at)."""
    f = interpolate_density(grid, dens, points)
    outside = (points < grid[0]) | (points > grid[-1])
    return np.where(outside, direct_kde(a, points, h), f)


def model_density(model: DensityModel, a: np.ndarray, points: np.ndarray) -> np.ndarray:
    """f at the points under one density model."""
    h = model_bandwidth(a, model.bandwidth)
    if model.method == "direct":
        return direct_kde(a, points, h, model.reflect)
    if model.method == "published":
        return gridded_at(a, h, points, *published_density(a, h, model.grid_size))
    grid, dens = binned_kde(a, h, model.grid_size, model.binning, model.reflect, model.renormalize)
    return gridded_at(a, h, points, grid, dens)


def all_density_models() -> list:
    """Every density model tried (BANDWIDTH_MODELS × methods × GRID_SIZES × BINNINGS × flags)."""
    models = []
    for bw in BANDWIDTH_MODELS:
        models += [DensityModel(bw, "direct", reflect=refl) for refl in (False, True)]
        for m in GRID_SIZES:
            models += [DensityModel(bw, "fft", m, binning, refl, renorm)
                       for binning in BINNINGS for refl in (False, True) for renorm in (False, True)]
            models.append(DensityModel(bw, "published", m, "nearest", False, True))
    return models


@dataclass(frozen=True)
class DtDrOption:
    """A model of dt/dr and the density value behind it."""

    label: str
    dt_dr: float
    density: float


def options_at(model: DensityModel, a, thr: Threshold, smoothed: bool) -> list:
    """dt/dr options of one density model: at t, and averaged over a_k, a_{k+1} (empirical rule)."""
    points = np.array([thr.t, thr.lower, thr.upper])
    try:
        f = model_density(model, a, points)
    except ValueError:
        return []
    out = []
    if f[0] > 0:
        out.append(DtDrOption(f"{model.label()}, at t", 1.0 / f[0], float(f[0])))
    if not smoothed and np.all(f[1:] > 0):
        out.append(DtDrOption(f"{model.label()}, averaged over a_k, a_(k+1)",
                              float(np.mean(1.0 / f[1:])), float(np.mean(f[1:]))))
    return out


def density_options(ci: CaseInputs) -> list:
    """Every density model's dt/dr except the reference's own."""
    a = all_magnitudes(ci.W)
    smoothed = ci.config.threshold == "smoothed"
    ref_model = reference_model(ci.config)
    ref_point = "at t" if smoothed or ci.config.dt_dr_at == "t" else "averaged"
    out = []
    for model in all_density_models():
        for option in options_at(model, a, ci.thr, smoothed):
            if model == ref_model and ref_point in option.label:
                continue
            out.append(option)
    return out


def stale_options(ci: CaseInputs) -> list:
    """dt/dr under a stale threshold: the fresh reference value, or at the stale t."""
    from .density import density_at

    ref = DtDrOption("reference density at the fresh t", scalar(ci.ref, "dt_dr"), scalar(ci.ref, "density"))
    f = float(density_at(all_magnitudes(ci.W), np.array([ci.thr_prev.t]), ci.config.density)[0])
    return [ref] + ([DtDrOption("reference density at the stale t", 1.0 / f, f)] if f > 0 else [])


# --------------------------------------------------------------------------
# predictions and matching


def fixed_predictions(ci: CaseInputs, base: dict, defects: frozenset) -> dict:
    """Predicted models of every output key except dt_dr, density, grad_r.

    Parameters
    ----------
    ci : CaseInputs
    base : dict
        :func:`model_pass` under the set's pass-level defects.
    defects : frozenset of str
        The set; the output-level defects (signs, loss without λ(1 − r)²) act here.

    Returns
    -------
    dict
        Key → list of alternative arrays (any may match).
    """
    neg = -1.0 if "sign_flip" in defects else 1.0
    reg = ci.lam * (1.0 - ci.r) ** 2  # thesis eq. (2.23)
    pred = {"loss": [np.array(base["data_loss"] + (0.0 if "loss_without_reg" in defects else reg))],
            "t": [np.array(base["t"])],
            "grad_t": [np.array(neg * base["grad_t"] * (-1.0 if "grad_t_sign" in defects else 1.0))],
            "grad_tau": [np.array(neg * base["grad_tau"] * (-1.0 if "grad_tau_sign" in defects else 1.0))]}
    for l in range(len(ci.W)):
        key = l + 1
        pred[f"mask{key}"] = [base["masks"][l]]
        g_models = [g[l] for g in base["g"]]
        pred[f"grad_masked_W{key}"] = g_models + [-g for g in g_models] if neg < 0 else g_models
        pred[f"grad_W{key}"] = [neg * model[l] for model in base["grad_W"]]
        pred[f"grad_b{key}"] = [neg * base["grad_b"][l]]
    return pred


def option_predictions(ci: CaseInputs, fixed: dict, option: DtDrOption, defects: frozenset) -> dict:
    """Predicted dt_dr, density and grad_r for one dt/dr option (thesis eqs. (2.11), (2.23))."""
    sign = -1.0 if "dt_dr_sign" in defects else 1.0
    reg = 2.0 * ci.lam * (ci.r - 1.0) * (-1.0 if "reg_sign" in defects else 1.0)
    neg = -1.0 if "sign_flip" in defects else 1.0
    grad_t = float(fixed["grad_t"][0]) * neg  # undo the whole-gradient flip, reapply below
    grad_r = neg * (sign * option.dt_dr * grad_t + reg)
    return {"dt_dr": [np.array(sign * option.dt_dr)], "density": [np.array(option.density)],
            "grad_r": [np.array(grad_r)]}


@dataclass
class Matcher:
    """Errors of predictions against the candidate, in multiples of the tolerance."""

    values: dict
    scales: dict
    rtol: float
    floor: float

    def error(self, key: str, models: list, allow_transpose: bool) -> float:
        """Smallest error of the candidate's ``key`` over the models, in multiples of rtol.

        Parameters
        ----------
        key : str
        models : list of ndarray
            Alternative predictions of the key.
        allow_transpose : bool
            Also try each 2-D model transposed.

        Returns
        -------
        float
            inf if no model has the candidate's shape.
        """
        cand = self.values[key]
        best = np.inf
        for model in models:
            model = np.asarray(model, np.float64)
            for arr in ((model, model.T) if allow_transpose and model.ndim == 2 else (model,)):
                if arr.shape != cand.shape:
                    continue
                denom = np.maximum(np.maximum(np.abs(arr), self.scales[key]), self.floor)
                best = min(best, float(np.max(np.abs(cand - arr) / denom)) / self.rtol)
        return best


@dataclass
class Fit:
    """How well one defect set (with its best dt/dr option) fits the candidate."""

    defects: tuple
    score: float
    errors: dict
    option: DtDrOption | None
    predictions: dict = field(default_factory=dict)
    option_ties: list = field(default_factory=list)

    @property
    def explains(self) -> bool:
        """The fit is within the tolerance on every supplied key."""
        return self.score <= EXPLAINS


class Search:
    """Fits of defect sets to one candidate, with the shared work cached."""

    def __init__(self, ci: CaseInputs, values: dict, scales: dict, rtol: float, floor: float):
        """Set up the matcher and the caches (model passes, fits, dt/dr options)."""
        self.ci, self.values = ci, values
        self.matcher = Matcher(values, scales, rtol, floor)
        self.passes, self.fits, self._density, self._stale = {}, {}, None, None
        self.ref_option = DtDrOption("reference", scalar(ci.ref, "dt_dr"), scalar(ci.ref, "density"))

    def base(self, defects: frozenset) -> dict:
        """The model pass for the pass-level defects in ``defects`` (cached)."""
        flags = frozenset(defects & set(PASS_FLAGS))
        if flags not in self.passes:
            self.passes[flags] = model_pass(self.ci, flags)
        return self.passes[flags]

    def options(self, defects: frozenset) -> list:
        """The dt/dr options a defect set allows (stale, density models, or the reference)."""
        if defects & set(STALE):
            self._stale = self._stale if self._stale is not None else stale_options(self.ci)
            return self._stale
        if "density" in defects:
            self._density = self._density if self._density is not None else density_options(self.ci)
            return self._density
        return [self.ref_option]

    def fit(self, defects) -> Fit:
        """The best Fit of a defect set over its dt/dr options (cached)."""
        defects = frozenset(defects)
        if defects not in self.fits:
            self.fits[defects] = self._fit(defects)
        return self.fits[defects]

    def _fit(self, defects: frozenset) -> Fit:
        """Compute a Fit: array keys once, dt_dr/density/grad_r per option."""
        fixed = fixed_predictions(self.ci, self.base(defects), defects)
        transpose = "transposed" in defects
        errors = {k: self.matcher.error(k, fixed[k], transpose)
                  for k in self.values if k not in OPTION_KEYS}
        best, fitting = None, []
        for option in self.options(defects):
            opt = option_predictions(self.ci, fixed, option, defects)
            opt_err = {k: self.matcher.error(k, opt[k], False) for k in self.values if k in OPTION_KEYS}
            score = max(list(errors.values()) + list(opt_err.values()), default=0.0)
            if score <= EXPLAINS:
                fitting.append(option.label)
            if best is None or score < best.score:
                best = Fit(tuple(sorted(defects, key=SEARCHED.index)), score, {**errors, **opt_err},
                           option, {**fixed, **opt})
        best.option_ties = [label for label in fitting if label != best.option.label]
        return best


def defect_sets(size: int) -> list:
    """All defect sets of a size: () for 0, singles, or the compatible pairs."""
    if size == 0:
        return [()]
    return [c for c in combinations(SEARCHED, size) if frozenset(c) not in EXCLUDED_PAIRS]


# --------------------------------------------------------------------------
# the diagnosis


@dataclass
class Diagnosis:
    """What explains a candidate's mismatches.

    Attributes
    ----------
    causes : list of str
        Defect names of the explanation (``[]`` when none fits).
    explained : bool
    mismatches : list of str
        The mismatching keys.
    evidence : list of str
        Human-readable lines supporting the verdict.
    alternatives : list of list of str
        Other explanations that fit equally (ambiguous diagnosis).
    per_quantity : dict
        Mismatching key → single defects whose prediction of that key alone matches.
    """

    causes: list
    explained: bool
    mismatches: list
    evidence: list
    alternatives: list = field(default_factory=list)
    per_quantity: dict = field(default_factory=dict)

    @property
    def title(self) -> str:
        """One-line name of the verdict."""
        if not self.explained:
            return "no known cause matches"
        title = " + ".join(DEFECTS[c].title for c in self.causes)
        if self.alternatives:
            title += f" (ambiguous: {len(self.alternatives)} other cause(s) fit equally, below)"
        return title

    def lines(self) -> list:
        """The report's diagnosis lines."""
        out = [f"diagnosis: {self.title}" + (f" [{', '.join(self.causes)}]" if self.causes else "")]
        out += [f"  {line}" for line in self.evidence]
        for alt in self.alternatives:
            titles = " + ".join(DEFECTS[c].title for c in alt)
            out.append(f"  equally consistent: {titles} [{', '.join(alt)}]")
        return out

    def as_dict(self) -> dict:
        """JSON-serialisable form."""
        return {"causes": self.causes, "title": self.title, "explained": self.explained,
                "mismatches": self.mismatches, "evidence": self.evidence,
                "alternatives": self.alternatives, "per_quantity": self.per_quantity}


def diagnose(reference: dict, checked, tier: str, scales: dict) -> Diagnosis:
    """Name the known defect (or pair) that explains a candidate, with evidence.

    Parameters
    ----------
    reference : dict
        The case's vectors (inputs and reference outputs).
    checked : refprune.compare.CandidateValues
    tier : {"float64", "float32"}
        The tier the comparison used.
    scales : dict
        :func:`refprune.compare.reference_scales` of the case.

    Returns
    -------
    Diagnosis
    """
    ci = case_inputs(reference)
    values = checked.values
    precision = "float32" if checked.float32_values else "float64"
    rtol = max(RTOL[tier], RTOL[precision])
    floor = max(ABS_FLOOR[tier], ABS_FLOOR[precision])
    search = Search(ci, values, scales, rtol, floor)
    mismatches = mismatching_keys(values, reference, scales, tier, checked.transposed)
    found = None
    for size in (0, 1, 2):
        fits = sorted((search.fit(s) for s in defect_sets(size)), key=lambda f: f.score)
        good = [f for f in fits if f.explains]
        if good:
            found = good
            break
    per_q = per_quantity(search, mismatches)
    if found is not None:
        return explained(found, search, ci, values, mismatches, tier, rtol, per_q, checked)
    relaxed = Search(ci, values, scales, RTOL["float32"], ABS_FLOOR["float32"]).fit(())
    if rtol < RTOL["float32"] and relaxed.explains:
        return roundoff(relaxed, values, mismatches, tier, False, per_q)
    return unexplained(search, ci, values, mismatches, scales, tier, per_q)


def mismatching_keys(values, reference, scales, tier, transposed) -> list:
    """Supplied keys that fail the tier's tolerance (transposed shapes always do)."""
    from .compare import relative_errors

    out = []
    for key, value in values.items():
        if key in transposed:
            out.append(key)
            continue
        _, rel = relative_errors(value, np.asarray(reference[key], np.float64), scales[key], ABS_FLOOR[tier])
        if float(rel.max()) > RTOL[tier]:
            out.append(key)
    return out


def per_quantity(search: Search, mismatches: list) -> dict:
    """Mismatching key → single defects whose model matches that key alone."""
    out = {key: [] for key in mismatches}
    for (name,) in defect_sets(1):
        fit = search.fit((name,))
        for key in mismatches:
            if fit.errors.get(key, np.inf) <= EXPLAINS:
                out[key].append(name)
    return out


def distinguishing_keys(fits: list, search: Search, ci: CaseInputs) -> list:
    """Output keys the candidate did not supply on which the tied explanations' predictions differ."""
    L = len(ci.W)
    out = []
    for key in output_keys(L):
        if key in search.values:
            continue
        preds = [np.asarray(f.predictions[key][0], np.float64) for f in fits if key in f.predictions]
        scale = search.matcher.scales[key]
        if any(p.shape != preds[0].shape or
               np.max(np.abs(p - preds[0])) > search.matcher.rtol * max(scale, search.matcher.floor)
               for p in preds[1:]):
            out.append(key)
    return out


def explained(fits: list, search, ci, values, mismatches, tier, rtol, per_q, checked) -> Diagnosis:
    """The Diagnosis when a model fits: cause(s), evidence, ties and what would decide them."""
    best = fits[0]
    if not best.defects:
        return roundoff(best, values, mismatches, tier, True, per_q)
    ties = [f for f in fits[1:] if f.score <= EXPLAINS]
    evidence = [f"{DEFECTS[c].title}: {DEFECTS[c].model}" for c in best.defects]
    evidence += cause_evidence(best, search, checked)
    evidence.append(f"every supplied quantity matches this model within {best.score:.2g} × the "
                    f"tolerance (rtol {rtol:g}"
                    + (", float32 values" if checked.float32_values and rtol > RTOL[tier] else "") + ")")
    if ties:
        keys = distinguishing_keys([best] + ties, search, ci)
        evidence.append(f"ambiguous: {len(ties) + 1} explanations fit; "
                        + (f"supply {', '.join(keys)} to tell them apart" if keys
                           else "no output key tells them apart"))
    return Diagnosis(causes=list(best.defects), explained=True, mismatches=mismatches,
                     evidence=evidence, alternatives=[list(f.defects) for f in ties], per_quantity=per_q)


def roundoff(fit: Fit, values, mismatches, tier, float32_values: bool, per_q) -> Diagnosis:
    """The Diagnosis 'float32 round-off only', with the worst error and what it means."""
    worst = max(fit.errors.values(), default=0.0) * RTOL["float32"]
    what = ("the candidate's values are float32 (or exactly float32-representable)" if float32_values
            else "the values are not float32, so some intermediate step of the candidate is float32")
    evidence = [f"every mismatch is within the float32 tier: worst relative error {worst:.2e} "
                f"<= {RTOL['float32']:g}, above the {tier} tier's {RTOL[tier]:g}; {what}",
                "not a bug: compare a float32 implementation with --tier float32 or a float32-tier case"]
    return Diagnosis(causes=["float32_roundoff"], explained=True, mismatches=mismatches,
                     evidence=evidence, per_quantity=per_q)


def unexplained(search: Search, ci, values, mismatches, scales, tier, per_q) -> Diagnosis:
    """The Diagnosis when no model fits: plain statistics per mismatch, the closest model."""
    evidence = [f"no known cause (alone or in pairs) reproduces {', '.join(mismatches)}"]
    for key in mismatches:
        stats = statistics(values[key], np.asarray(ci.ref[key], np.float64), scales[key], tier)
        evidence.append(f"{key}: {stats}"
                        + (f"; matched alone by {', '.join(per_q[key])}" if per_q.get(key) else ""))
    closest = min((search.fit(s) for s in defect_sets(1)), key=lambda f: f.score)
    evidence.append(f"closest model: {DEFECTS[closest.defects[0]].title} "
                    f"(off by {closest.score:.3g} × the tolerance)")
    evidence += conditioning_note(ci, mismatches)
    return Diagnosis(causes=[], explained=False, mismatches=mismatches, evidence=evidence, per_quantity=per_q)


def conditioning_note(ci: CaseInputs, mismatches: list) -> list:
    """A note when float32 rounding of t alone exceeds the float32 tier in this case.

    z = (w² − t²)/τ moves by 2t²/τ per unit relative change of t, and s by
    s·Δz, so rounding t to float32 (relative 2⁻²⁴) changes the quantities
    built from s (masks, ∂L/∂t, ∂L/∂τ, ∂L/∂r) by ~(2t²/τ)·2⁻²⁴ relative.
    """
    amplified = 2.0 * ci.thr.t ** 2 / ci.tau * FLOAT32_UNIT_ROUNDOFF
    slope_keys = [k for k in mismatches if k in ("grad_t", "grad_tau", "grad_r") or k.startswith("mask")]
    if not slope_keys or amplified <= RTOL["float32"]:
        return []
    return [f"note: z = (w² − t²)/τ amplifies rounding: rounding t to float32 alone moves z by "
            f"up to {amplified:.1e} (2t²/τ × 2⁻²⁴), so {', '.join(slope_keys)} cannot be resolved "
            f"in float32 in this case — it needs a float64 implementation"]


def statistics(cand: np.ndarray, ref: np.ndarray, scale: float, tier: str) -> str:
    """Plain evidence for an unexplained mismatch: ratio, best scale factor, differing entries."""
    if cand.shape != ref.shape:
        if cand.ndim == 2 and cand.shape == ref.shape[::-1]:
            return f"shape {cand.shape} is transposed but the values are not the reference's transpose"
        return f"shape {cand.shape}, expected {ref.shape}"
    if cand.ndim == 0:
        ratio = float(cand) / float(ref) if ref != 0 else np.inf
        return f"candidate {float(cand):.6g}, reference {float(ref):.6g}, ratio {ratio:.6g}"
    c, r = cand.ravel(), ref.ravel()
    factor = float(c @ r / (r @ r)) if r @ r > 0 else np.nan
    resid = float(np.linalg.norm(c - factor * r) / max(np.linalg.norm(c), 1e-300))
    differ = int(np.count_nonzero(np.abs(c - r) > RTOL[tier] * max(scale, ABS_FLOOR[tier])))
    return (f"best fit candidate ≈ {factor:.6g} × reference (relative residual {resid:.3g}); "
            f"{differ} of {c.size} entries differ beyond tolerance")


# --------------------------------------------------------------------------
# cause-specific evidence


def ratio_text(values, ref, key) -> str:
    """``key: candidate c = c/r × reference r`` for a scalar key."""
    c, r = float(values[key]), float(np.asarray(ref[key]))
    return f"{key}: candidate {c:.6g} = {c / r:.6g} × reference {r:.6g}" if r != 0 else \
        f"{key}: candidate {c:.6g}, reference 0"


def cause_evidence(fit: Fit, search: Search, checked) -> list:
    """Defect-specific lines: the signature the candidate shows."""
    ci, values = search.ci, search.values
    ref, out = ci.ref, []
    for cause in fit.defects:
        if cause == "sign_flip":
            keys = [k for k in values if k.startswith("grad_")]
            out.append(f"−1 × reference in {', '.join(keys)}")
        if cause in ("dt_dr_sign", "grad_t_sign", "grad_tau_sign", "reg_sign", "loss_without_reg"):
            key = {"dt_dr_sign": "dt_dr", "grad_t_sign": "grad_t", "grad_tau_sign": "grad_tau",
                   "reg_sign": "grad_r", "loss_without_reg": "loss"}[cause]
            if key in values:
                out.append(ratio_text(values, ref, key))
        if cause in ("dt_dr_sign", "grad_t_sign", "reg_sign") and "grad_r" in values:
            out.append(r_terms_text(ci, values))
        if cause == "double_mask":
            out.append(mask_ratio_text(ci, values))
        if cause == "t_differentiable":
            out.append(t_entries_text(ci, values))
        if cause == "transposed":
            out.append(transposed_text(fit, search))
        if cause in STALE:
            out.append(stale_text(ci, values, cause))
        if cause == "density" and fit.option is not None:
            ref_dt_dr = scalar(ref, "dt_dr")
            out.append(f"dt/dr model: {fit.option.label} (dt/dr {fit.option.dt_dr:.6g} vs "
                       f"reference {ref_dt_dr:.6g}, ratio {fit.option.dt_dr / ref_dt_dr:.6g})")
            if fit.option_ties:
                shown = "; ".join(fit.option_ties[:MAX_POSITIONS])
                more = len(fit.option_ties) - MAX_POSITIONS
                out.append(f"{len(fit.option_ties)} other density model(s) fit as well: {shown}"
                           + (f"; and {more} more" if more > 0 else ""))
    return [line for line in out if line]


def r_terms_text(ci: CaseInputs, values: dict) -> str:
    """grad_r split into its data term (dt/dr)·∂L/∂t and the regulariser term 2λ(r − 1)."""
    reg = 2.0 * ci.lam * (ci.r - 1.0)
    data_c = float(values["grad_r"]) - reg
    data_r = scalar(ci.ref, "grad_r") - reg
    return (f"grad_r = data term + 2λ(r − 1): data term candidate {data_c:.6g} vs reference "
            f"{data_r:.6g}; regulariser term {reg:.6g}")


def mask_ratio_text(ci: CaseInputs, values: dict) -> str:
    """How closely grad_W/reference equals the soft mask, elementwise (double masking)."""
    parts = []
    for l in range(1, len(ci.W) + 1):
        key = f"grad_W{l}"
        if key in values and values[key].shape == ci.ref[key].shape:
            ref = np.asarray(ci.ref[key], np.float64)
            keep = np.abs(ref) > 1e-3 * np.max(np.abs(ref))
            if np.any(keep):
                dev = float(np.max(np.abs(values[key][keep] / ref[keep] - ci.ref[f"mask{l}"][keep])))
                parts.append(f"{key}/reference = mask{l} to {dev:.1e}")
    return "elementwise " + "; ".join(parts) if parts else ""


def t_entries_text(ci: CaseInputs, values: dict) -> str:
    """The grad_W entries that differ from the reference (t differentiable), with ½·∂L/∂t."""
    shown = []
    for l in range(1, len(ci.W) + 1):
        key = f"grad_W{l}"
        if key not in values or values[key].shape != ci.ref[key].shape:
            continue
        diff = values[key] - np.asarray(ci.ref[key], np.float64)
        big = np.argwhere(np.abs(diff) > RTOL["float32"] * np.max(np.abs(ci.ref[key])))
        for idx in big[:MAX_POSITIONS]:
            shown.append(f"W{l}{list(map(int, idx))}: Δ = {diff[tuple(idx)]:.4g}")
    d_t = scalar(ci.ref, "grad_t")
    head = ("grad_W differs from the reference at " + ", ".join(shown) if shown
            else "grad_W differs from the reference densely")
    return f"{head}; ½·∂L/∂t = {0.5 * d_t:.4g}" if ci.config.threshold == "empirical" else head


def transposed_text(fit: Fit, search: Search) -> str:
    """Which weight-shaped keys match the transpose of the model rather than the model."""
    keys = []
    for key, value in search.values.items():
        if value.ndim != 2:
            continue
        plain = search.matcher.error(key, fit.predictions[key], False)
        if search.matcher.error(key, [np.asarray(m).T for m in fit.predictions[key]], False) < plain:
            keys.append(f"{key} {value.shape}")
    return "stored as (out, in), the transpose of (in, out): " + ", ".join(keys)


def stale_text(ci: CaseInputs, values: dict, cause: str) -> str:
    """t (and τ) of the candidate against the reference and the previous step's."""
    t_line = (f"t: candidate {float(values['t']):.8g}, reference {ci.thr.t:.8g}, "
              f"from W_prev and r_prev {ci.thr_prev.t:.8g}" if "t" in values
              else f"recomputed with t = {ci.thr_prev.t:.8g} from W_prev, r_prev "
                   f"(reference t {ci.thr.t:.8g})")
    if cause == "stale_t_tau":
        t_line += f"; τ = tau_prev {ci.tau_prev:.6g} (reference τ {ci.tau:.6g})"
    return t_line
