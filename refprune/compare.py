"""Compare a candidate implementation's outputs for one golden-vector case with the reference.

A *candidate* is an ``.npz`` file with a ``case`` key naming a case of
:mod:`refprune.vectors` and any subset of that case's output keys (``loss``,
``t``, ``mask1``…, ``grad_masked_W1``…, ``dt_dr``, ``density``, ``grad_t``,
``grad_W1``…, ``grad_b1``…, ``grad_tau``, ``grad_r``), computed by the
candidate from the case's inputs. Each supplied quantity is compared with the
reference under the tolerance tier of the case (float64 or float32); quantities
not supplied are listed, not failed. Each mismatch is handed to
:mod:`refprune.diagnose`, which names the known implementation error that
explains it, if one does.

Error measure
-------------
For every element, ``rel = |candidate − reference| / max(|reference|, scale, ABS_FLOOR)``
with ``scale`` the natural size of the quantity (:func:`reference_scales`); a
quantity passes if its largest ``rel`` is at most ``RTOL[tier]``. The scale
makes the test relative where a quantity is large and absolute, at the size the
quantity's own rounding error has, where it is small or cancels.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .masks import soft_mask_and_slope
from .validation import check_choice
from .vectors import (TIERS, input_keys, n_layers_of, output_keys, output_shapes, reference_for,
                      scalar, text, weights_of)

# Pass criterion on the largest relative error (see the module notes), per tier.
# float64: an independent float64 implementation (tests/test_compare.py's
# naive_pass: np.sort, s = m(1 − m), w·w − t·t, its own backward pass) agrees
# with the references to <= 2e-15 on every other case and to 2e-12 on the
# near-hard-mask case (s = m(1 − m) near m = 1); 1e-10 leaves >= 50× room and
# is still far below what any real defect changes.
# float32: lrp_gradients on float32 arrays and naive_pass in float32 reach
# <= 1e-6 on the float32-tier cases (sums of a few thousand float32 terms,
# epsilon 6e-8); 1e-4 leaves 100× room for larger sums and other summation orders.
RTOL = {"float64": 1e-10, "float32": 1e-4}
# Smallest denominator of the relative error: a gradient component below it
# moves no parameter of magnitude >= 1e-5 by even one ulp at any learning rate
# <= 1 (ulp(1e-5) is 1.7e-21 in float64 and 9.1e-13 in float32). It only
# matters where a quantity and its scale are both ~0 (e.g. ∂L/∂t when every
# mask is saturated at τ = 1e-12, where a capped exponent leaves ~1e-290).
ABS_FLOOR = {"float64": 1e-20, "float32": 1e-12}
FLOAT_TYPES = (np.float32, np.float64)
# At most this many problems are spelled out in the one-line error.
MAX_PROBLEMS_SHOWN = 3


def tolerance_table() -> dict:
    """The tolerance tiers, as written into the manifest."""
    return {tier: {"rtol": RTOL[tier], "abs_floor": ABS_FLOOR[tier]} for tier in TIERS}


# --------------------------------------------------------------------------
# reading and checking a candidate


def read_candidate(path) -> dict:
    """Every array of a candidate ``.npz``, by key.

    Raises
    ------
    ValueError
        If the file is not an ``.npz`` archive or holds pickled objects.
    OSError
        If it cannot be opened.
    """
    path = Path(path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise ValueError(f"{path} is not a readable .npz file ({exc})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} holds a single array; a candidate is an .npz of named arrays")
    data = {}
    with loaded as npz:
        for key in npz.files:
            try:
                data[key] = npz[key]
            except ValueError:
                raise ValueError(f"candidate key {key!r} holds Python objects; store numeric "
                                 "arrays and plain strings only") from None
    return data


def candidate_case(candidate: dict) -> str:
    """The case name a candidate declares in its ``case`` key."""
    if "case" not in candidate:
        raise ValueError("candidate has no 'case' key naming the vectors case it was computed for")
    try:
        return text(candidate, "case")
    except ValueError:
        raise ValueError("candidate 'case' must be a string (the case name)") from None


@dataclass
class CandidateValues:
    """A candidate's output quantities after checking.

    Attributes
    ----------
    values : dict
        Output key → float64 array (scalars as 0-d arrays).
    transposed : list of str
        Weight-shaped keys whose shape is the transpose of the expected one.
    ignored : list of str
        Input keys the candidate carries (not compared).
    unknown : list of str
        Keys that are neither inputs nor outputs of the case.
    float32_values : bool
        Every supplied value is float32, or exactly representable in float32.
    """

    values: dict
    transposed: list
    ignored: list
    unknown: list
    float32_values: bool


def check_shape(key: str, arr: np.ndarray, expected: tuple, case: str):
    """(array reshaped, transposed?) or a problem string."""
    if expected == ():
        if arr.size != 1:
            return f"{key} must be a scalar (shape () or (1,)), got shape {arr.shape}"
        return arr.reshape(()), False
    if arr.shape == expected:
        return arr, False
    if len(expected) == 2 and arr.shape == expected[::-1]:
        return arr, True
    layout = " (layout (fan_in, fan_out))" if len(expected) == 2 else ""
    return f"{key} has shape {arr.shape}; case {case} expects {expected}{layout}"


def check_value(key: str, raw, expected: tuple, case: str):
    """(float64 array, transposed?) for one output key, or a problem string."""
    arr = np.asarray(raw)
    if arr.dtype.type not in FLOAT_TYPES:
        return f"{key} has dtype {arr.dtype}; outputs must be float32 or float64"
    checked = check_shape(key, arr, expected, case)
    if isinstance(checked, str):
        return checked
    arr, transposed = checked
    bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
    if bad:
        return f"{key} contains {bad} NaN/inf value(s)"
    return arr, transposed


def is_float32_valued(arrays) -> bool:
    """True if every array is float32 or holds only float32-representable values."""
    return all(a.dtype == np.float32 or np.array_equal(a, a.astype(np.float32).astype(a.dtype))
               for a in arrays)


def check_candidate(candidate: dict, reference: dict) -> CandidateValues:
    """Check every key of a candidate against the case's schema.

    Raises
    ------
    ValueError
        One line listing the problems: wrong dtype (not float32/float64), wrong
        shape (other than the transpose of a weight shape), NaN or inf, or no
        output key at all.
    """
    case = text(reference, "case")
    L = n_layers_of(reference["layers"])
    shapes = output_shapes(tuple(int(d) for d in reference["layers"]))
    inputs = set(input_keys(L))
    values, raw_arrays, transposed, ignored, unknown, problems = {}, [], [], [], [], []
    for key in candidate:
        if key == "case":
            continue
        if key not in shapes:
            (ignored if key in inputs else unknown).append(key)
            continue
        checked = check_value(key, candidate[key], shapes[key], case)
        if isinstance(checked, str):
            problems.append(checked)
            continue
        raw_arrays.append(checked[0])
        values[key] = np.asarray(checked[0], np.float64)
        if checked[1]:
            transposed.append(key)
    if problems:
        more = len(problems) - MAX_PROBLEMS_SHOWN
        shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN]) + (f"; and {more} more" if more > 0 else "")
        raise ValueError(f"candidate for case {case}: {shown}")
    if not values:
        raise ValueError(f"candidate for case {case} supplies none of its output keys "
                         f"({', '.join(output_keys(L)[:4])}, …; see docs/vectors.md)")
    order = {key: i for i, key in enumerate(output_keys(L))}
    values = dict(sorted(values.items(), key=lambda kv: order[kv[0]]))
    return CandidateValues(values, transposed, sorted(ignored), sorted(unknown),
                           is_float32_valued(raw_arrays))


# --------------------------------------------------------------------------
# scales and errors


def layer_terms(reference: dict):
    """Per layer (w, g, s, z) at the reference's t and τ."""
    W = weights_of(reference)
    g = weights_of(reference, "grad_masked_W")
    t, tau = scalar(reference, "t"), scalar(reference, "tau")
    out = []
    for Wl, gl in zip(W, g):
        _, s, z = soft_mask_and_slope(Wl, t, tau)
        out.append((Wl, gl, s, z))
    return out


def reference_scales(reference: dict) -> dict:
    """The natural size of every output quantity, for the error's denominator.

    Returns
    -------
    dict
        Output key → float:

        - ``loss``, ``t``, ``dt_dr``, ``density``: their own magnitude;
        - ``mask*``: 1 (a mask lies in [0, 1]);
        - ``grad_masked_W*``, ``grad_W*``, ``grad_b*``: the largest magnitude of
          that layer's array (rounding in a backward pass is relative to it);
        - ``grad_t``: (2t/τ)·Σ|g·w·s|, ``grad_tau``: Σ|g·w·s·z|/τ — the sums of
          the absolute terms of eqs. (2.11) and (2.10), which bound the
          rounding of the signed sums;
        - ``grad_r``: |dt/dr|·scale(grad_t) + |2λ(r − 1)| (eq. (2.11) + (2.23)).
    """
    L = n_layers_of(reference["layers"])
    t, tau = scalar(reference, "t"), scalar(reference, "tau")
    terms = layer_terms(reference)
    sum_gws = sum(float(np.sum(np.abs(g * w * s))) for w, g, s, _ in terms)
    sum_gwsz = sum(float(np.sum(np.abs(g * w * s * z))) for w, g, s, z in terms)
    scales = {key: abs(scalar(reference, key)) for key in ("loss", "t", "dt_dr", "density")}
    scales["grad_t"] = 2.0 * t / tau * sum_gws  # thesis eq. (2.11), terms in absolute value
    scales["grad_tau"] = sum_gwsz / tau  # thesis eq. (2.10), terms in absolute value
    reg = 2.0 * scalar(reference, "lam") * (scalar(reference, "r") - 1.0)
    scales["grad_r"] = abs(scalar(reference, "dt_dr")) * scales["grad_t"] + abs(reg)
    for l in range(1, L + 1):
        scales[f"mask{l}"] = 1.0
        for prefix in ("grad_masked_W", "grad_W", "grad_b"):
            scales[f"{prefix}{l}"] = float(np.max(np.abs(reference[f"{prefix}{l}"])))
    return scales


def relative_errors(candidate: np.ndarray, expected: np.ndarray, scale: float, floor: float):
    """Elementwise |c − e| and |c − e| / max(|e|, scale, floor) (same shapes required)."""
    abs_err = np.abs(np.asarray(candidate, np.float64) - np.asarray(expected, np.float64))
    denom = np.maximum(np.maximum(np.abs(expected), scale), floor)
    return abs_err, abs_err / denom


@dataclass(frozen=True)
class Row:
    """The verdict on one quantity."""

    key: str
    shape: tuple
    max_abs_err: float
    max_rel_err: float
    passed: bool
    note: str = ""


def compare_row(key: str, cand: np.ndarray, ref: np.ndarray, scale: float, tier: str,
                transposed: bool) -> Row:
    """The Row of one quantity; a transposed weight shape is a mismatch with a note.

    Parameters
    ----------
    key : str
    cand, ref : ndarray, the quantity's shape (``cand`` may be the transpose)
    scale : float
        From :func:`reference_scales`.
    tier : {"float64", "float32"}
    transposed : bool
    """
    if transposed:
        return Row(key, cand.shape, float("nan"), float("nan"), False,
                   f"shape {cand.shape} is the transpose of the expected {ref.shape}")
    abs_err, rel_err = relative_errors(cand, ref, scale, ABS_FLOOR[tier])
    worst = float(rel_err.max())
    return Row(key, ref.shape, float(abs_err.max()), worst, worst <= RTOL[tier])


@dataclass
class Comparison:
    """Everything ``refprune compare`` reports.

    Attributes
    ----------
    case, tier, source : str
        Case name, tolerance tier used, where the reference came from.
    rows : list of Row
        One per supplied quantity, in schema order.
    missing, ignored, unknown : list of str
        Output keys not supplied; input keys carried (ignored); unknown keys.
    float32_values : bool
        The candidate's values are float32 (or float32-representable).
    diagnosis : Diagnosis or None
        From :func:`refprune.diagnose.diagnose` when something mismatches.
    """

    case: str
    tier: str
    source: str
    rows: list
    missing: list
    ignored: list
    unknown: list
    float32_values: bool
    diagnosis: object = None
    candidate: str = ""

    @property
    def passed(self) -> bool:
        """True if every supplied quantity matches."""
        return all(row.passed for row in self.rows)

    @property
    def rtol(self) -> float:
        """The pass criterion of the tier used."""
        return RTOL[self.tier]


def compare_candidate(candidate, vectors_dir=None, tier: str | None = None,
                      diagnose: bool = True) -> Comparison:
    """Compare a candidate (a path or a dict of arrays) with the reference of its case.

    Parameters
    ----------
    candidate : path or dict
        Candidate ``.npz`` file, or its arrays by key.
    vectors_dir : path, optional
        Directory written by ``refprune vectors``; by default the case's
        reference is generated in memory (generation is deterministic).
    tier : {"float64", "float32"}, optional
        Override the case's tolerance tier.
    diagnose : bool
        Diagnose mismatches.

    Returns
    -------
    Comparison

    Raises
    ------
    ValueError
        Unknown case, or a candidate with wrong dtypes, shapes, NaN/inf.
    """
    name_of_file = str(candidate) if not isinstance(candidate, dict) else ""
    data = candidate if isinstance(candidate, dict) else read_candidate(candidate)
    reference, source = reference_for(candidate_case(data), vectors_dir)
    checked = check_candidate(data, reference)
    tier = check_choice(tier or text(reference, "tier"), "tier", TIERS)
    scales = reference_scales(reference)
    rows = [compare_row(key, value, np.asarray(reference[key], np.float64), scales[key], tier,
                        key in checked.transposed)
            for key, value in checked.values.items()]
    L = n_layers_of(reference["layers"])
    comp = Comparison(case=text(reference, "case"), tier=tier, source=source, rows=rows,
                      missing=[k for k in output_keys(L) if k not in checked.values],
                      ignored=checked.ignored, unknown=checked.unknown,
                      float32_values=checked.float32_values, candidate=name_of_file)
    if diagnose and not comp.passed:
        from .diagnose import diagnose as run_diagnosis

        comp.diagnosis = run_diagnosis(reference, checked, tier, scales)
    return comp


# --------------------------------------------------------------------------
# reporting


def shape_text(shape) -> str:
    """``(4, 3)`` → ``4x3``; ``()`` → ``scalar``."""
    return "x".join(map(str, shape)) or "scalar"


def format_comparison(comp: Comparison) -> str:
    """The human-readable report: header, table, missing keys, verdict, diagnosis."""
    lines = [f"compare  case={comp.case}  tier={comp.tier} (pass: max rel err <= {comp.rtol:g})  "
             f"reference: {comp.source}"]
    lines.append(f"{'quantity':<16} {'shape':<8} {'max abs err':>12} {'max rel err':>12}  verdict")
    for row in comp.rows:
        verdict = "pass" if row.passed else "FAIL"
        lines.append(f"{row.key:<16} {shape_text(row.shape):<8} {row.max_abs_err:>12.3e} "
                     f"{row.max_rel_err:>12.3e}  {verdict}{'  (' + row.note + ')' if row.note else ''}")
    if comp.missing:
        lines.append(f"not supplied (not checked): {', '.join(comp.missing)}")
    if comp.ignored:
        lines.append(f"ignored input keys: {', '.join(comp.ignored)}")
    if comp.unknown:
        lines.append(f"unknown keys (ignored): {', '.join(comp.unknown)}")
    failed = sum(not row.passed for row in comp.rows)
    lines.append(f"verdict: {'PASS' if comp.passed else 'FAIL'} "
                 f"({len(comp.rows) - failed} of {len(comp.rows)} supplied quantities match)")
    if comp.diagnosis is not None:
        lines.extend(comp.diagnosis.lines())
    return "\n".join(lines)


def _json_float(x: float):
    """A float for JSON, None when not finite."""
    return float(x) if np.isfinite(x) else None


def comparison_dict(comp: Comparison) -> dict:
    """The report as a JSON-serialisable dict (non-finite numbers as null)."""
    return {"case": comp.case, "tier": comp.tier, "rtol": comp.rtol, "abs_floor": ABS_FLOOR[comp.tier],
            "reference": comp.source, "candidate": comp.candidate, "passed": comp.passed,
            "rows": [{"quantity": r.key, "shape": list(r.shape), "max_abs_err": _json_float(r.max_abs_err),
                      "max_rel_err": _json_float(r.max_rel_err), "passed": r.passed, "note": r.note}
                     for r in comp.rows],
            "missing": comp.missing, "ignored": comp.ignored, "unknown": comp.unknown,
            "float32_values": comp.float32_values,
            "diagnosis": None if comp.diagnosis is None else comp.diagnosis.as_dict()}
