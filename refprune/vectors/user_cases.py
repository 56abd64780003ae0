"""A user's own case: the reference for any inputs that follow docs/vectors.md's input table.

``refprune vectors --from INPUTS.npz --out DIR`` and a candidate that carries its
own inputs both come here. The inputs are read, weight-shaped arrays are
turned to (in, out) when the file says ``layout = "out_in"`` (PyTorch's
``nn.Linear.weight``), missing optional keys get their defaults, and the
reference is computed by the same :func:`refprune.lrp.reference.lrp_gradients` pass as
every built-in case. The previous step (``W_prev*``, ``b_prev*``, ``r_prev``,
``tau_prev``) is optional: without it the stale-state diagnosis is skipped and
says so; nothing is invented.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from refprune import __version__
from refprune.core.validation import check_choice
from refprune.lrp.reference import lrp_gradients
from refprune.util.io import UnreadableFile, atomic_write, read_npz
from refprune.vectors.cases import CASE_NAMES, assemble_vectors
from refprune.vectors.files import MANIFEST, check_key_dtypes, npz_bytes, read_manifest
from refprune.vectors.schema import (
    KDE_KEYS,
    LAYOUTS,
    SCHEMA_VERSION,
    TIERS,
    config_of,
    granularity_of,
    has_previous_step,
    layer_keys,
    n_layers_of,
    previous_keys,
    scalar,
    targets_of,
    text,
    weights_of,
)
from refprune.vectors.tolerances import tolerance_table

# Inputs a user's file must hold (the rest have defaults); see docs/vectors.md.
REQUIRED = ("layers", "x", "y", "loss_kind", "r", "tau")
# Defaults of the optional inputs: λ = 0, the empirical threshold, the default
# DensityConfig (exact sum, Scott, reflected at 0) evaluated at t, float64 tier.
# kde_ddof has no fixed default: without it, the method's own (DensityConfig: 1,
# and 0 for "published", METHOD §6 P5's np.std).
DEFAULTS = {"lam": 0.0, "threshold_rule": "empirical", "tier": "float64", "kde_method": "direct",
            "kde_rule": "scott", "kde_grid_size": 1024, "kde_binning": "linear", "kde_reflect": True,
            "kde_renormalize": False, "kde_point": "t"}
USER_CASE = "user"


def layout_of(data: dict) -> str:
    """The file's weight layout: its ``layout`` key, "in_out" by default."""
    return check_choice(text(data, "layout"), "layout", LAYOUTS) if "layout" in data else "in_out"


def carries_inputs(data: dict) -> bool:
    """True if a dict holds a full set of case inputs (layers, every W and b, x, y, r, τ…)."""
    if not all(key in data for key in REQUIRED) or granularity_of(data) == "layer":
        return False  # a layer-wise candidate is judged against the case it names
    L = n_layers_of(np.asarray(data["layers"]).ravel())
    return all(key in data for key in layer_keys("W", L) + layer_keys("b", L))


def normalised_inputs(data: dict, name: str | None = None) -> dict:
    """The inputs of a user's file as a vectors dict: (in, out) layout, defaults filled in.

    Raises
    ------
    ValueError
        A missing key, a weight of the wrong shape (for either layout), or a
        half-present previous step.
    """
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise ValueError(f"inputs lack {', '.join(missing)} (see docs/vectors.md, Inputs)")
    check_labels(data)
    layers = tuple(int(d) for d in np.asarray(data["layers"]).ravel())
    L = n_layers_of(layers)
    out = {**{k: np.asarray(v) for k, v in DEFAULTS.items()}, **data, "layers": np.array(layers, np.int64)}
    out["case"] = np.array(name or (text(data, "case") if "case" in data else USER_CASE))
    out_in = layout_of(data) == "out_in"
    for prefix in ("W", "W_prev"):
        for l, key in enumerate(layer_keys(prefix, L), start=1):
            if key in data:
                out[key] = weight_in_out(key, data[key], (layers[l - 1], layers[l]), out_in)
    out.pop("layout", None)
    prev = [key for key in previous_keys(L) if key in data]
    if prev and len(prev) != len(previous_keys(L)):
        raise ValueError(f"previous step incomplete: has {', '.join(prev)} but not all of "
                         f"{', '.join(previous_keys(L))}")
    absent = [key for key in layer_keys("W", L) + layer_keys("b", L) if key not in data]
    if absent:
        raise ValueError(f"inputs lack {', '.join(absent)} for layers {layers}")
    check_choice(text(out, "tier"), "tier", TIERS)
    return out


def check_labels(data: dict) -> None:
    """For a ``ce`` case, raise unless ``y`` holds whole-number class labels (nothing is truncated)."""
    if text(data, "loss_kind") != "ce":
        return
    y = np.asarray(data["y"])
    if y.dtype.kind in "iu":
        return
    if y.dtype.kind != "f":
        raise ValueError(f"y has dtype {y.dtype}; a ce case needs integer class labels")
    flat = y.ravel()
    bad = np.flatnonzero(flat != np.round(flat))
    if bad.size:
        raise ValueError(f"y holds {bad.size} non-integer value(s) (first {float(flat[bad[0]]):g} at index {bad[0]}); "
                         "a ce case needs integer class labels 0, 1, …, D_L − 1")


def weight_in_out(key: str, value, shape: tuple, out_in: bool) -> np.ndarray:
    """A weight as (D_{l−1}, D_l) float64, transposed from (D_l, D_{l−1}) if the file is out_in."""
    arr = np.asarray(value, np.float64)
    expected = shape[::-1] if out_in else shape
    if arr.shape != expected:
        layout = "out_in (D_l, D_{l-1})" if out_in else "in_out (D_{l-1}, D_l)"
        raise ValueError(f"{key} has shape {arr.shape}; layout {layout} expects {expected}")
    return arr.T.copy() if out_in else arr


def setting(data: dict, key: str):
    """A 0-d setting as a plain Python value (strings decoded)."""
    value = np.asarray(data[key])
    return text(data, key) if value.dtype.kind in "US" else value.tolist()


def differing_inputs(data: dict, reference: dict) -> list[str]:
    """The input keys in which a candidate's own inputs differ from a stored case's.

    The candidate's inputs are read as :func:`normalised_inputs` reads them (its
    layout, defaults filled in); every array exactly as float64, every setting
    as its value (``kde_ddof`` as the ddof it means: absent is the method's
    default); the previous step and ``tier`` only if the candidate carries them.

    Returns
    -------
    list of str
        Empty when the stored case was computed from the same inputs.
    """
    inp = normalised_inputs(data)
    if not np.array_equal(inp["layers"], np.asarray(reference["layers"])):
        return ["layers"]
    L = n_layers_of(inp["layers"])
    keys = layer_keys("W", L) + layer_keys("b", L) + ["x", "y", "r", "tau"]
    keys += [key for key in previous_keys(L) if key in data]
    differ = [key for key in keys if key not in reference
              or not np.array_equal(np.asarray(inp[key], np.float64), np.asarray(reference[key], np.float64))]
    settings = ["loss_kind", "lam", "threshold_rule", *KDE_KEYS] + (["tier"] if "tier" in data else [])
    ddof = (config_of(inp).density.ddof, config_of(reference).density.ddof)
    differ += [key for key in settings if key != "kde_ddof" and key in reference
               and setting(inp, key) != setting(reference, key)]
    return differ + (["kde_ddof"] if ddof[0] != ddof[1] else [])


def reference_from_inputs(data: dict, name: str | None = None) -> dict:
    """The full vectors dict (inputs and reference outputs) of a user's inputs.

    Parameters
    ----------
    data : dict
        Input keys as in docs/vectors.md (any layout); output keys are ignored.
    name : str, optional
        Case name (default: the file's ``case`` key, else "user").

    Returns
    -------
    dict
        In the project's (in, out) layout, with the previous step only if given.
    """
    inp = normalised_inputs(data, name)
    config = config_of(inp)
    W, b = weights_of(inp), weights_of(inp, "b")
    x = np.asarray(inp["x"], np.float64)
    y = targets_of(inp)
    r, tau = scalar(inp, "r"), scalar(inp, "tau")
    res = lrp_gradients(W, b, x, y, r, tau, config)
    prev = None
    if has_previous_step(inp):
        prev = {"W_prev": weights_of(inp, "W_prev"), "b_prev": weights_of(inp, "b_prev"),
                "r_prev": scalar(inp, "r_prev"), "tau_prev": scalar(inp, "tau_prev")}
    layers = tuple(int(d) for d in inp["layers"])
    return assemble_vectors(text(inp, "case"), text(inp, "tier"), layers,
                            {"weights": W, "biases": b, "x": x, "y": y, "r": r, "tau": tau,
                             "config": config}, res, prev)


def user_manifest_entry(data: dict, blob: bytes, source: str) -> dict:
    """The manifest's description of a user's case (the built-in entry's fields where they apply)."""
    L = n_layers_of(data["layers"])
    n = int(sum(np.size(data[key]) for key in layer_keys("W", L)))
    r = scalar(data, "r")
    name = text(data, "case")
    return {"name": name, "file": f"{name}.npz", "sha256": hashlib.sha256(blob).hexdigest(),
            "description": f"user case from {source}", "tier": text(data, "tier"), "covers": ["user"],
            "layers": [int(d) for d in data["layers"]], "batch": int(np.shape(data["x"])[0]),
            "loss_kind": text(data, "loss_kind"), "n_weights": n, "r": r,
            "k": min(int(np.floor(r * n)), n - 1), "tau": scalar(data, "tau"), "tau_rule": "given",
            "tau0": None, "lam": scalar(data, "lam"), "threshold_rule": text(data, "threshold_rule"),
            "kde": {key: np.asarray(data[key]).item() for key in KDE_KEYS},
            "t": scalar(data, "t"), "dt_dr": scalar(data, "dt_dr"), "seed": None,
            "previous_step": has_previous_step(data), "source": source}


def add_user_case(inputs_path, out_dir, name: str | None = None, overwrite: bool = False) -> dict:
    """``refprune vectors --from``: write the reference of a user's inputs into ``out_dir``.

    The case file is ``out_dir/<name>.npz``; ``manifest.json`` gets its entry,
    and is created if ``out_dir`` has none. A case of that name already in
    ``out_dir`` (built-in or a user's) is a ValueError unless ``overwrite``.

    Returns
    -------
    dict
        The case's manifest entry.
    """
    inputs_path = Path(inputs_path)
    inputs = read_npz(inputs_path, "an inputs .npz (docs/vectors.md, Inputs)")
    check_key_dtypes(inputs_path, inputs)
    try:
        data = reference_from_inputs(inputs, name)
    except ValueError as exc:  # the inputs' content: name the file
        raise UnreadableFile(inputs_path, str(exc)) from None
    case = text(data, "case")
    if not case or "/" in case or case.startswith("."):
        raise ValueError(f"case name {case!r} is not a usable file name")
    out_dir = Path(out_dir)
    blob = npz_bytes(data)
    entry = user_manifest_entry(data, blob, inputs_path.name)
    if (out_dir / MANIFEST).exists():
        manifest = read_manifest(out_dir)
    else:
        manifest = {"schema_version": SCHEMA_VERSION, "generator": f"refprune {__version__}",
                    "format": "docs/vectors.md", "tolerances": tolerance_table(), "cases": []}
    target = out_dir / f"{case}.npz"
    if target.exists() and target.resolve() == inputs_path.resolve():
        raise ValueError(f"the case file {target} would replace the inputs file itself: choose another --name "
                         "or another --out")
    taken = any(e.get("name") == case for e in manifest["cases"]) or target.exists()
    if taken and not overwrite:
        kind = "a built-in case" if case in CASE_NAMES else "a case"
        raise ValueError(f"{out_dir} already holds {kind} named {case!r}: choose another --name, or pass "
                         "--overwrite to replace it")
    manifest["cases"] = [e for e in manifest["cases"] if e.get("name") != case] + [entry]
    atomic_write(out_dir / f"{case}.npz", lambda fh: fh.write(blob))
    text_ = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    atomic_write(out_dir / MANIFEST, lambda fh: fh.write(text_.encode()))
    return entry
