"""Diagnosis: which known implementation error explains a mismatching candidate.

Every known defect (``DEFECTS``) is a *model*: the case's outputs are
recomputed from its inputs with the defect applied (e.g. with m·g in place of
g for double masking, with t from the previous step's weights for a stale
threshold, with another bandwidth rule for dt/dr; :mod:`refprune.vectors.defects`).
A set of defects *explains* the candidate when every quantity the candidate
supplies equals its prediction within the tolerance of the quantity's tier
(:mod:`refprune.vectors.tolerances`; fitting is :mod:`refprune.vectors.diagnose_search`).
Nothing is decided from a stored label or from the size of an error alone.

Search: no defect, then each single defect, then each compatible pair, then
each compatible triple (the published code's output is P1 + P2 + P5); the
first size with an explanation wins (fewest defects), ranked by how closely
they fit. Ties are reported as ambiguous, with the keys that would tell the
candidates apart. When nothing fits, the diagnosis says so, gives plain
statistics (ratios, scale factors, how many entries differ) and names a
closest model only if it reproduces at least one mismatching quantity.
Without the previous step the stale-state models are skipped, and the
diagnosis says so.

Float32 candidates: if every supplied value is float32 (or exactly
representable in float32), predictions are matched at the float32 tolerance
and "no defect" matching there is the diagnosis "float32 round-off only".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from refprune.core.masks import FLOAT32_UNIT_ROUNDOFF
from refprune.vectors.defects import DEFECTS, OPTION_KEYS, STALE, CaseInputs, case_inputs
from refprune.vectors.diagnose_search import (
    EXPLAINS,
    MAX_DEFECTS,
    MAX_POSITIONS,
    Fit,
    Search,
    defect_sets,
    option_predictions,
)
from refprune.vectors.schema import output_keys, scalar
from refprune.vectors.tolerances import TIER_ABS_FLOOR, TIER_RTOL, relative_errors, rtol_for

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


def diagnose(reference: dict, checked, tiers, scales: dict) -> Diagnosis:
    """Name the known defect (or set of up to three) that explains a candidate, with evidence.

    Parameters
    ----------
    reference : dict
        The case's vectors (inputs and reference outputs).
    checked : refprune.vectors.compare.CandidateValues
    tiers : dict or str
        Supplied key → the tier it was judged at (or one tier for every key).
    scales : dict
        :func:`refprune.vectors.tolerances.reference_scales` of the case.

    Returns
    -------
    Diagnosis
    """
    ci = case_inputs(reference)
    values = checked.values
    if isinstance(tiers, str):
        tiers = {key: tiers for key in values}
    precision = "float32" if checked.float32_values else "float64"
    rtol = {k: max(rtol_for(k, tiers[k]), rtol_for(k, precision)) for k in values}
    floor = {k: max(TIER_ABS_FLOOR[tiers[k]], TIER_ABS_FLOOR[precision]) for k in values}
    search = Search(ci, values, scales, rtol, floor)
    mismatches = mismatching_keys(values, reference, scales, tiers, checked.transposed)
    found = None
    for size in range(MAX_DEFECTS + 1):
        fits = sorted((search.fit(s) for s in defect_sets(size, ci.has_previous)), key=lambda f: f.score)
        good = [f for f in fits if f.explains]
        if good:
            found = good
            break
    per_q = per_quantity(search, mismatches)
    skipped = [] if ci.has_previous else [STALE_SKIPPED]
    if found is not None:
        diag = explained(found, search, ci, values, mismatches, tiers, max(rtol.values()), per_q, checked)
    else:
        f32 = {k: rtol_for(k, "float32") for k in values}
        relaxed = Search(ci, values, scales, f32, {k: TIER_ABS_FLOOR["float32"] for k in values}).fit(())
        if any(rtol[k] < f32[k] for k in values) and relaxed.explains:
            diag = roundoff(relaxed, values, mismatches, tiers, False, per_q)
        else:
            diag = unexplained(search, ci, values, mismatches, scales, tiers, per_q)
    diag.evidence += skipped
    return diag


# The evidence line of a case without the previous step.
STALE_SKIPPED = ("stale-state diagnosis skipped: the case has no previous step (W_prev*, b_prev*, "
                 "r_prev, tau_prev), so a one-step-stale t or τ cannot be recognised")


def mismatching_keys(values, reference, scales, tiers: dict, transposed) -> list:
    """Supplied keys that fail their tier's tolerance (transposed shapes always do)."""
    out = []
    for key, value in values.items():
        if key in transposed:
            out.append(key)
            continue
        tier = tiers[key]
        _, rel = relative_errors(value, np.asarray(reference[key], np.float64), scales[key],
                                 TIER_ABS_FLOOR[tier])
        if float(rel.max()) > rtol_for(key, tier):
            out.append(key)
    return out


def per_quantity(search: Search, mismatches: list) -> dict:
    """Mismatching key → single defects whose model matches that key alone."""
    out = {key: [] for key in mismatches}
    for (name,) in defect_sets(1, search.ci.has_previous):
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
        tol = search.matcher.rtol_of(key) * max(scale, search.matcher.floor_of(key))
        if any(p.shape != preds[0].shape or np.max(np.abs(p - preds[0])) > tol for p in preds[1:]):
            out.append(key)
    return out


def explained(fits: list, search, ci, values, mismatches, tiers, rtol, per_q, checked) -> Diagnosis:
    """The Diagnosis when a model fits: cause(s), evidence, ties and what would decide them."""
    best = fits[0]
    if not best.defects:
        return roundoff(best, values, mismatches, tiers, True, per_q)
    ties = [f for f in fits[1:] if f.score <= EXPLAINS]
    evidence = [f"{DEFECTS[c].title}: {DEFECTS[c].model}" for c in best.defects]
    evidence += cause_evidence(best, search, checked)
    tier_rtols = sorted({TIER_RTOL[t] for t in tiers.values()})
    evidence.append(f"every supplied quantity matches this model within {best.score:.2g} × the "
                    f"tolerance (rtol {rtol:g}"
                    + (", float32 values" if checked.float32_values and rtol > tier_rtols[0] else "")
                    + (", each quantity at its own tier" if len(tier_rtols) > 1 else "") + ")")
    if ties:
        keys = distinguishing_keys([best] + ties, search, ci)
        evidence.append(f"ambiguous: {len(ties) + 1} explanations fit; "
                        + (f"supply {', '.join(keys)} to tell them apart" if keys
                           else "no output key tells them apart"))
    return Diagnosis(causes=list(best.defects), explained=True, mismatches=mismatches,
                     evidence=evidence, alternatives=[list(f.defects) for f in ties], per_quantity=per_q)


def roundoff(fit: Fit, values, mismatches, tiers: dict, float32_values: bool, per_q) -> Diagnosis:
    """The Diagnosis 'float32 round-off only', with the worst error and what it means."""
    tier = "float64" if "float64" in tiers.values() else "float32"
    worst = max(fit.errors.values(), default=0.0) * TIER_RTOL["float32"]
    what = ("the candidate's values are float32 (or exactly float32-representable)" if float32_values
            else "the values are not float32, so some intermediate step of the candidate is float32")
    evidence = [f"every mismatch is within the float32 tier: worst relative error {worst:.2e} "
                f"<= {TIER_RTOL['float32']:g}, above the {tier} tier's {TIER_RTOL[tier]:g}; {what}",
                "not a bug: compare a float32 implementation with --tier float32 or a float32-tier case"]
    return Diagnosis(causes=["float32_roundoff"], explained=True, mismatches=mismatches,
                     evidence=evidence, per_quantity=per_q)


def unexplained(search: Search, ci, values, mismatches, scales, tiers, per_q) -> Diagnosis:
    """The Diagnosis when no model fits: plain statistics per mismatch, the closest model if any."""
    evidence = [f"no known cause (alone or in sets of up to {MAX_DEFECTS}) reproduces "
                f"{', '.join(mismatches)}"]
    for key in mismatches:
        stats = statistics(values[key], np.asarray(ci.ref[key], np.float64), scales[key], tiers[key])
        evidence.append(f"{key}: {stats}"
                        + (f"; matched alone by {', '.join(per_q[key])}" if per_q.get(key) else ""))
    evidence.append(closest_model_line(search, mismatches))
    evidence += conditioning_note(ci, mismatches)
    return Diagnosis(causes=[], explained=False, mismatches=mismatches, evidence=evidence, per_quantity=per_q)


def closest_model_line(search: Search, mismatches: list) -> str:
    """The model that explains the most mismatching quantities, or that none touches them.

    Candidates are every defect set the search fitted. A set *touches* a
    mismatching key when its prediction of that key is within the tolerance;
    among those that touch the most, the one breaking the fewest matching keys
    and then the closest overall is named. With none, the line says so rather
    than naming an arbitrary model.
    """
    def rank(fit):
        hit = [k for k in mismatches if fit.errors.get(k, np.inf) <= EXPLAINS]
        broken = [k for k in fit.errors if k not in mismatches and fit.errors[k] > EXPLAINS]
        return len(hit), -len(broken), -fit.score, hit, broken

    fits = [fit for key, fit in search.fits.items() if key]
    best = max(fits, key=lambda f: rank(f)[:3], default=None)
    if best is None or rank(best)[0] == 0:
        return f"closest model: none — no known model touches the mismatching quantities ({', '.join(mismatches)})"
    _, _, _, hit, broken = rank(best)
    rest = [k for k in mismatches if k not in hit]
    title = " + ".join(DEFECTS[c].title for c in best.defects)
    return (f"closest model: {title} [{', '.join(best.defects)}] reproduces {', '.join(hit)}"
            + (f" but not {', '.join(rest)}" if rest else "")
            + (f", and breaks {', '.join(broken)}" if broken else "")
            + f" (off by {best.score:.3g} × the tolerance overall)")


def conditioning_note(ci: CaseInputs, mismatches: list) -> list:
    """A note when float32 rounding of t alone exceeds the float32 tier in this case.

    z = (w² − t²)/τ moves by 2t²/τ per unit relative change of t, and s by
    s·Δz, so rounding t to float32 (relative 2⁻²⁴) changes the quantities
    built from s (masks, ∂L/∂t, ∂L/∂τ, ∂L/∂r) by ~(2t²/τ)·2⁻²⁴ relative.
    """
    amplified = 2.0 * ci.thr.t ** 2 / ci.tau * FLOAT32_UNIT_ROUNDOFF
    slope_keys = [k for k in mismatches if k in ("grad_t", "grad_tau", "grad_r") or k.startswith("mask")]
    if not slope_keys or amplified <= TIER_RTOL["float32"]:
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
    differ = int(np.count_nonzero(np.abs(c - r) > TIER_RTOL[tier] * max(scale, TIER_ABS_FLOOR[tier])))
    return (f"best fit candidate ≈ {factor:.6g} × reference (relative residual {resid:.3g}); "
            f"{differ} of {c.size} entries differ beyond tolerance")


# --------------------------------------------------------------------------
# cause-specific evidence

TIES_SHOWN = 2  # equally fitting density models named as examples


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
            out.append(f"dt/dr model: {fit.option.label}: dt/dr {fit.option.dt_dr:.10g}, the reference's "
                       f"{ref_dt_dr:.10g} ({fit.option.dt_dr / ref_dt_dr - 1:+.2g} relative)")
            if fit.option_ties:
                out.append(density_ties_text(fit, search))
    return [line for line in out if line]


def density_ties_text(fit: Fit, search: Search) -> str:
    """What would tell apart the density models that fit the candidate as well as the one named."""
    defects = frozenset(fit.defects)
    labels = {fit.option.label, *fit.option_ties}
    preds = [option_predictions(search.ci, fit.predictions, option, defects)
             for option in search.options(defects) if option.label in labels]
    matcher = search.matcher

    def apart(key: str, rtol: float) -> bool:
        values = [float(p[key][0]) for p in preds]
        return max(values) - min(values) > rtol * max(matcher.scales[key], matcher.floor_of(key))

    keys = [key for key in OPTION_KEYS if key not in search.values and apart(key, matcher.rtol_of(key))]
    others = f"other density models (e.g. {'; '.join(fit.option_ties[:TIES_SHOWN])})"
    if keys:
        return f"{others} fit the supplied values as well: supply {', '.join(keys)} to tell them apart"
    if any(apart(key, rtol_for(key, "float64")) for key in OPTION_KEYS):
        return (f"{others} fit the supplied values as well, within this tier's tolerance: float64 values "
                "judged at the float64 tier (--tier float64) tell them apart")
    return f"{others} give the same dt/dr to float64 precision: no output tells them apart"


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
        big = np.argwhere(np.abs(diff) > TIER_RTOL["float32"] * np.max(np.abs(ci.ref[key])))
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
