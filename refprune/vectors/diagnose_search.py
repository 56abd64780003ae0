"""Fitting defect models to a candidate: dt/dr options, predictions, errors, the search.

A defect set *explains* a candidate when every quantity the candidate
supplies equals its prediction within the tolerance of that quantity's tier
(the error measure of :mod:`refprune.vectors.tolerances`). The search tries sets of
up to three defects, fewest first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from refprune.core.threshold import Threshold, all_magnitudes
from refprune.density.binned import BINNINGS
from refprune.density.config import DensityConfig, density_at
from refprune.vectors.defects import (
    EXCLUDED_PAIRS,
    OPTION_KEYS,
    PASS_FLAGS,
    SEARCHED,
    STALE,
    CaseInputs,
    model_pass,
)
from refprune.vectors.schema import scalar

# Density models tried for dt/dr: bandwidth rules × ddof, FFT grid sizes (powers
# of two around the thesis's 1024), every binning rule, reflection, renormalisation,
# and the published estimate (METHOD §6 P5, ddof 0 as published) with either rule.
BANDWIDTH_MODELS = (("scott", 1), ("scott", 0), ("silverman", 1), ("normal_reference", 0),
                    ("normal_reference", 1))
GRID_SIZES = (256, 512, 1024, 2048, 4096)
# A model's error is reported as a multiple of the tolerance; a quantity
# "explains" when it is <= 1.
EXPLAINS = 1.0
# Entries of an array counted as "differing" when their error exceeds the tolerance;
# at most this many positions are listed.
MAX_POSITIONS = 4
# Largest defect set searched: the published code's real output is P1 + P2 + P5.
MAX_DEFECTS = 3


# --------------------------------------------------------------------------
# density models for dt/dr


def density_label(d: DensityConfig) -> str:
    """Human-readable description of a density config, e.g. 'bandwidth scott, direct Gaussian sum'."""
    parts = [f"bandwidth {d.rule.replace('_', ' ')}" + (" with ddof 0" if d.ddof == 0 else "")]
    if d.method == "direct":
        parts.append("direct Gaussian sum")
    elif d.method == "fft":
        parts.append(f"binned FFT, {d.binning} binning, grid {d.grid_size}")
        if d.renormalize:
            parts.append("renormalised")
    else:
        parts.append(f"published P5 (nearest bins, kernel on arange(−3h, 3h + dx, dx), 'same' "
                     f"convolution, Riemann-renormalised), grid {d.grid_size}")
    if d.reflect:
        parts.append("reflected at 0")
    return ", ".join(parts)


def reference_model(config) -> DensityConfig:
    """The DensityConfig the reference's dt/dr used (the smoothed rule's is the reflected direct sum)."""
    if config.threshold == "smoothed":
        return DensityConfig(rule=config.density.rule, method="direct", reflect=True)
    return config.density


def all_density_models() -> list:
    """Every density model tried (bandwidths × methods × grids × binnings × flags), as DensityConfigs."""
    models = []
    for rule, ddof in BANDWIDTH_MODELS:
        models += [DensityConfig(rule=rule, ddof=ddof, method="direct", reflect=refl) for refl in (False, True)]
        for m in GRID_SIZES:
            models += [DensityConfig(rule=rule, ddof=ddof, method="fft", grid_size=m, binning=binning,
                                     reflect=refl, renormalize=renorm)
                       for binning in BINNINGS for refl in (False, True) for renorm in (False, True)]
            if rule != "silverman" and ddof == 0:  # P5's σ is np.std's
                models.append(DensityConfig(rule=rule, method="published", grid_size=m,
                                            binning="nearest", reflect=False, renormalize=True))
    return models


@dataclass(frozen=True)
class DtDrOption:
    """A model of dt/dr and the density value behind it."""

    label: str
    dt_dr: float
    density: float


def options_at(model: DensityConfig, a, thr: Threshold, smoothed: bool) -> list:
    """dt/dr options of one density model: at t, and averaged over a_k, a_{k+1} (empirical rule)."""
    points = np.array([thr.t, thr.lower, thr.upper])
    try:
        f = density_at(a, points, model)
    except ValueError:
        return []
    out = []
    label = density_label(model)
    if f[0] > 0:
        out.append(DtDrOption(f"{label}, at t", 1.0 / f[0], float(f[0])))
    if not smoothed and np.all(f[1:] > 0):
        out.append(DtDrOption(f"{label}, averaged over a_k, a_(k+1)",
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
    """Errors of predictions against the candidate, in multiples of the tolerance.

    ``rtol`` and ``floor`` map each supplied key to the tolerance of its tier
    (a mixed-precision candidate has several); keys not supplied use the
    tightest of them.
    """

    values: dict
    scales: dict
    rtol: dict
    floor: dict

    def rtol_of(self, key: str) -> float:
        """The key's relative tolerance (the tightest one for a key not supplied)."""
        return self.rtol.get(key, min(self.rtol.values(), default=np.inf))

    def floor_of(self, key: str) -> float:
        """The key's absolute floor (the tightest one for a key not supplied)."""
        return self.floor.get(key, min(self.floor.values(), default=0.0))

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
                denom = np.maximum(np.maximum(np.abs(arr), self.scales[key]), self.floor_of(key))
                best = min(best, float(np.max(np.abs(cand - arr) / denom)) / self.rtol_of(key))
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

    def __init__(self, ci: CaseInputs, values: dict, scales: dict, rtol: dict, floor: dict):
        """Set up the matcher and the caches (model passes, fits, dt/dr options).

        ``rtol`` and ``floor``: supplied key → tolerance of its tier.
        """
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


def defect_sets(size: int, has_previous: bool = True) -> list:
    """All defect sets of a size: () for 0, else the combinations without an excluded pair.

    Without the previous step (``has_previous`` False) the stale-state defects
    are left out: they cannot be modelled.
    """
    if size == 0:
        return [()]
    names = [n for n in SEARCHED if has_previous or n not in STALE]
    return [c for c in combinations(names, size)
            if not any(frozenset(pair) in EXCLUDED_PAIRS for pair in combinations(c, 2))]
