"""Compare a candidate implementation's outputs for one golden-vector case with the reference.

A *candidate* is an ``.npz`` file with a ``case`` key naming a case of
:mod:`refprune.vectors.cases` and any subset of that case's output keys (``loss``,
``t``, ``mask1``…, ``grad_masked_W1``…, ``dt_dr``, ``density``, ``grad_t``,
``grad_W1``…, ``grad_b1``…, ``grad_tau``, ``grad_r``), computed by the
candidate from the case's inputs. A candidate that carries its own inputs
(``layers``, every ``W``/``b``, ``x``, ``y``, ``loss_kind``, ``r``, ``tau``…) is
judged against a reference computed from them (:mod:`refprune.vectors.user_cases`),
or, given a vectors directory, against that directory's case of the same name once
its inputs are found equal to the case's (different inputs are refused);
``layout = "out_in"`` declares its weight-shaped arrays in PyTorch's (out, in)
layout (the key is used, never reported as ignored). Each supplied quantity is
compared with the reference under a tolerance tier: the case's, or float32 for a
quantity stored as float32 (a mixed-precision candidate is judged per quantity);
quantities not supplied are listed, not failed. Each mismatch is handed to :mod:`refprune.vectors.diagnose`, which
names the known implementation error that explains it, if one does.

The error measure and the tiers are :mod:`refprune.vectors.tolerances`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from refprune.core.validation import check_choice
from refprune.util.io import read_npz
from refprune.vectors.diagnose import diagnose as run_diagnosis
from refprune.vectors.files import reference_for
from refprune.vectors.schema import (
    LAYERWISE_KEYS,
    TIERS,
    granularity_of,
    input_keys,
    n_layers_of,
    output_keys,
    output_shapes,
    text,
)
from refprune.vectors.tolerances import (
    FLOAT32_KEY_RTOL,
    TIER_ABS_FLOOR,
    TIER_RTOL,
    reference_scales,
    relative_errors,
    rtol_for,
    tier_of_dtype,
)
from refprune.vectors.user_cases import carries_inputs, differing_inputs, layout_of, reference_from_inputs

FLOAT_TYPES = (np.float32, np.float64)
# At most this many problems are spelled out in the one-line error.
MAX_PROBLEMS_SHOWN = 3


# --------------------------------------------------------------------------
# reading and checking a candidate


def read_candidate(path) -> dict:
    """Every array of a candidate ``.npz``, by key.

    Raises
    ------
    refprune.util.io.UnreadableFile
        A ValueError naming the file: missing, not an ``.npz`` archive (a text
        file, a single array), damaged or truncated, or holding pickled objects.
    """
    return read_npz(path, "a candidate .npz (key 'case' plus output arrays; docs/vectors.md)")


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
    dtypes : dict
        Output key → the dtype it was stored with ("float32" or "float64").
    """

    values: dict
    transposed: list
    ignored: list
    unknown: list
    float32_values: bool
    dtypes: dict = field(default_factory=dict)


def check_shape(key: str, arr: np.ndarray, expected: tuple, case: str, out_in: bool = False):
    """(array reshaped, transposed?) or a problem string; ``out_in`` arrays are turned to (in, out)."""
    if expected == ():
        if arr.size != 1:
            return f"{key} must be a scalar (shape () or (1,)), got shape {arr.shape}"
        return arr.reshape(()), False
    if out_in and len(expected) == 2:
        if arr.shape != expected[::-1]:
            return f"{key} has shape {arr.shape}; layout out_in expects {expected[::-1]}"
        return arr.T, False
    if arr.shape == expected:
        return arr, False
    if len(expected) == 2 and arr.shape == expected[::-1]:
        return arr, True
    layout = " (layout (fan_in, fan_out))" if len(expected) == 2 else ""
    return f"{key} has shape {arr.shape}; case {case} expects {expected}{layout}"


def check_value(key: str, raw, expected: tuple, case: str, out_in: bool = False):
    """(float64 array, transposed?) for one output key, or a problem string."""
    arr = np.asarray(raw)
    if arr.dtype.type not in FLOAT_TYPES:
        return f"{key} has dtype {arr.dtype}; outputs must be float32 or float64"
    checked = check_shape(key, arr, expected, case, out_in)
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
    granularity = granularity_of(reference)
    shapes = output_shapes(tuple(int(d) for d in reference["layers"]), granularity)
    inputs = set(input_keys(L, granularity))
    out_in = layout_of(candidate) == "out_in"
    values, raw_arrays, transposed, ignored, unknown, problems = {}, [], [], [], [], []
    dtypes = {}
    for key in candidate:
        if key in ("case", "layout"):  # both are used: the case named, the layout read
            continue
        if key not in shapes:
            (ignored if key in inputs else unknown).append(key)
            continue
        checked = check_value(key, candidate[key], shapes[key], case, out_in)
        if isinstance(checked, str):
            problems.append(checked)
            continue
        raw_arrays.append(checked[0])
        dtypes[key] = str(np.asarray(candidate[key]).dtype)
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
                           is_float32_valued(raw_arrays), dtypes)


# --------------------------------------------------------------------------
# scales and errors


@dataclass(frozen=True)
class QuantityRow:
    """The verdict on one output quantity, judged at ``tier``."""

    key: str
    shape: tuple
    max_abs_err: float
    max_rel_err: float
    passed: bool
    note: str = ""
    tier: str = "float64"


def compare_row(key: str, cand: np.ndarray, ref: np.ndarray, scale: float, tier: str,
                transposed: bool) -> QuantityRow:
    """The QuantityRow of one quantity; a transposed weight shape is a mismatch with a note.

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
        return QuantityRow(key, cand.shape, float("nan"), float("nan"), False,
                           f"shape {cand.shape} is the transpose of the expected {ref.shape}", tier)
    abs_err, rel_err = relative_errors(cand, ref, scale, TIER_ABS_FLOOR[tier])
    worst, rtol = float(rel_err.max()), rtol_for(key, tier)
    note = layers_note(key, rel_err, rtol) if key in LAYERWISE_KEYS and ref.ndim == 1 else ""
    return QuantityRow(key, ref.shape, float(abs_err.max()), worst, worst <= rtol, note, tier)


def layers_note(key: str, rel_err: np.ndarray, rtol: float) -> str:
    """For a layer-wise quantity (entry l − 1 is layer l): which layers mismatch, e.g. "layer 2: t_2 off"."""
    bad = [l for l, err in enumerate(rel_err, start=1) if not err <= rtol]
    if not bad:
        return ""
    return "; ".join(f"layer {l}: {key}_{l} off (rel err {rel_err[l - 1]:.3g})" for l in bad)


def quantity_tiers(checked: CandidateValues, case_tier: str, forced: str | None) -> dict:
    """Key → tier: ``forced`` for every key, else the looser of the case's tier and the key's dtype's.

    A float32 quantity cannot be judged at the float64 tier; a float64
    quantity of a float32-tier case keeps the case's tier (the case is built
    for float32 conditioning).
    """
    if forced is not None:
        return {key: forced for key in checked.values}
    order = {"float64": 0, "float32": 1}
    return {key: max(case_tier, tier_of_dtype(checked.dtypes.get(key, "float64")), key=order.get)
            for key in checked.values}


@dataclass
class Comparison:
    """Everything ``refprune compare`` reports.

    Attributes
    ----------
    case, tier, source : str
        Case name, the case's tolerance tier (or the forced one), where the
        reference came from.
    layout : {"in_out", "out_in"}
        How the candidate's weight-shaped arrays were read.
    rows : list of QuantityRow
        Each carries the tier it was judged at.
        One per supplied quantity, in schema order.
    missing, ignored, unknown : list of str
        Output keys not supplied; input keys carried (ignored); unknown keys.
    float32_values : bool
        The candidate's values are float32 (or float32-representable).
    diagnosis : Diagnosis or None
        From :func:`refprune.vectors.diagnose.diagnose` when something mismatches.
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
    notes: list = field(default_factory=list)
    layout: str = "in_out"

    @property
    def passed(self) -> bool:
        """True if every supplied quantity matches."""
        return all(row.passed for row in self.rows)

    @property
    def rtol(self) -> float:
        """The pass criterion of the case's tier."""
        return TIER_RTOL[self.tier]

    @property
    def mixed(self) -> bool:
        """True if some quantity was judged at another tier than the case's."""
        return any(row.tier != self.tier for row in self.rows)


def compare_candidate(candidate, vectors_dir=None, tier: str | None = None,
                      diagnose: bool = True) -> Comparison:
    """Compare a candidate (a path or a dict of arrays) with the reference of its case.

    Parameters
    ----------
    candidate : path or dict
        Candidate ``.npz`` file, or its arrays by key.
    vectors_dir : path, optional
        Directory written by ``refprune vectors``; by default the case's
        reference is generated in memory (generation is deterministic). A
        candidate that carries its own inputs is judged against the reference
        computed from them, or, with ``vectors_dir``, against the directory's
        case of the same name, whose inputs must equal the candidate's.
    tier : {"float64", "float32"}, optional
        Judge every quantity at this tier (default: the case's tier, or float32
        for a quantity stored as float32).
    diagnose : bool
        Diagnose mismatches.

    Returns
    -------
    Comparison

    Raises
    ------
    ValueError
        Unknown case, a candidate with wrong dtypes, shapes, NaN/inf, or own
        inputs that differ from those of ``vectors_dir``'s case.

    Examples
    --------
    A candidate that supplies ∂L/∂τ right and ∂L/∂r with the published code's sign of dt/dr:

    >>> from refprune.vectors.cases import case_by_name, make_vectors
    >>> from refprune.vectors.compare import compare_candidate
    >>> ref = make_vectors(case_by_name("ce-tiny"))
    >>> comp = compare_candidate({"case": "ce-tiny", "grad_tau": ref["grad_tau"], "grad_r": -ref["grad_r"]})
    >>> comp.passed, [(row.key, row.passed) for row in comp.rows]
    (False, [('grad_tau', True), ('grad_r', False)])
    >>> comp.diagnosis.causes, comp.diagnosis.alternatives   # supply dt_dr and grad_t to tell them apart
    (['dt_dr_sign'], [['grad_t_sign']])
    """
    name_of_file = str(candidate) if not isinstance(candidate, dict) else ""
    data = candidate if isinstance(candidate, dict) else read_candidate(candidate)
    own_inputs = carries_inputs(data)
    if own_inputs and vectors_dir is None:
        reference, source = reference_from_inputs(data), "computed from the candidate's own inputs"
    else:
        reference, source = reference_for(candidate_case(data), vectors_dir)
    if own_inputs and vectors_dir is not None:
        differ = differing_inputs(data, reference)
        if differ:
            raise ValueError(f"the candidate's own inputs differ from {source} in {', '.join(differ)}; "
                             "compare without --vectors to judge it against its own inputs")
        source += " (the candidate's own inputs equal the case's)"
    checked = check_candidate(data, reference)
    if own_inputs:
        checked.ignored = []  # the inputs were used (or compared with the case's), not ignored
    forced = check_choice(tier, "tier", TIERS) if tier is not None else None
    tier = forced or check_choice(text(reference, "tier"), "tier", TIERS)
    tiers = quantity_tiers(checked, tier, forced)
    scales = reference_scales(reference)
    rows = [compare_row(key, value, np.asarray(reference[key], np.float64), scales[key], tiers[key],
                        key in checked.transposed)
            for key, value in checked.values.items()]
    L = n_layers_of(reference["layers"])
    comp = Comparison(case=text(reference, "case"), tier=tier, source=source, rows=rows,
                      missing=[k for k in output_keys(L) if k not in checked.values],
                      ignored=checked.ignored, unknown=checked.unknown,
                      float32_values=checked.float32_values, candidate=name_of_file,
                      layout=layout_of(data))
    if diagnose and not comp.passed and granularity_of(reference) == "global":
        comp.diagnosis = run_diagnosis(reference, checked, tiers, scales)
    elif diagnose and not comp.passed:
        comp.notes.append("diagnosis: not available for a layer-wise case (the defect models are "
                          "those of the global method); the rows name the layers that differ")
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
    if any(row.tier == "float32" and row.key in FLOAT32_KEY_RTOL for row in comp.rows):
        lines.append("float32 tier: dt_dr and density pass at max rel err <= "
                     f"{FLOAT32_KEY_RTOL['dt_dr']:g} (a float32 dt/dr is that accurate)")
    if comp.layout == "out_in":
        lines.append("layout out_in: weight-shaped arrays read as (D_l, D_(l-1)), PyTorch's nn.Linear.weight")
    if comp.mixed:
        lines.append("mixed precision: each quantity is judged at the tier of its own dtype "
                     f"(float32: max rel err <= {TIER_RTOL['float32']:g}); see the tier column")
    lines.append(f"{'quantity':<16} {'shape':<8} {'tier':<8} {'max abs err':>12} {'max rel err':>12}  verdict")
    for row in comp.rows:
        verdict = "pass" if row.passed else "FAIL"
        lines.append(f"{row.key:<16} {shape_text(row.shape):<8} {row.tier:<8} {row.max_abs_err:>12.3e} "
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
    lines.extend(comp.notes)
    return "\n".join(lines)


def _json_float(x: float):
    """A float for JSON, None when not finite."""
    return float(x) if np.isfinite(x) else None


def comparison_dict(comp: Comparison) -> dict:
    """The report as a JSON-serialisable dict (non-finite numbers as null)."""
    return {"case": comp.case, "tier": comp.tier, "rtol": comp.rtol, "abs_floor": TIER_ABS_FLOOR[comp.tier],
            "reference": comp.source, "candidate": comp.candidate, "layout": comp.layout,
            "passed": comp.passed,
            "rows": [{"quantity": r.key, "shape": list(r.shape), "max_abs_err": _json_float(r.max_abs_err),
                      "max_rel_err": _json_float(r.max_rel_err), "passed": r.passed, "note": r.note,
                      "tier": r.tier}
                     for r in comp.rows],
            "missing": comp.missing, "ignored": comp.ignored, "unknown": comp.unknown,
            "float32_values": comp.float32_values, "notes": comp.notes,
            "diagnosis": None if comp.diagnosis is None else comp.diagnosis.as_dict()}
