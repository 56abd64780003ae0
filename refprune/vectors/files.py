"""Golden-vector files: reading a case file back, writing cases and ``manifest.json``.

``refprune vectors --out DIR`` writes one ``.npz`` per case of
:mod:`refprune.vectors.cases` and ``DIR/manifest.json``; :func:`reference_for`
reads a case back (checked against the manifest's SHA-256) or generates it in
memory. The format is specified in ``docs/vectors.md``.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np

from refprune import __version__
from refprune.util.io import (
    UnreadableFile,
    atomic_write,
    check_dtype,
    read_bytes,
    read_json,
    read_npz,
    reading,
)
from refprune.vectors.cases import CASE_NAMES, CASES, VectorCase, case_by_name, make_vectors
from refprune.vectors.schema import (
    KDE_KEYS,
    SCALAR_INPUTS,
    SCALAR_OUTPUTS,
    SCHEMA_VERSION,
    STRING_INPUTS,
    granularity_of,
    layer_keys,
    n_layers_of,
    output_keys,
    required_input_keys,
    text,
)
from refprune.vectors.tolerances import tolerance_table

MANIFEST = "manifest.json"
# The fixed zip timestamp of every archive member (the earliest a zip can hold),
# so that generation is byte-for-byte reproducible.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


# --------------------------------------------------------------------------
# reading a case back


# Keys of a case file that hold text; every other key holds numbers.
TEXT_KEYS = (*STRING_INPUTS, "kde_method", "kde_rule", "kde_binning", "kde_point", "granularity", "layout")
VECTORS_FILE = "a golden-vectors case file of 'refprune vectors'"
# Keys of a case file that hold numbers: these, and the per-layer keys LAYER_KEY matches.
NUMERIC_KEYS = ("schema_version", "layers", "x", "y", *SCALAR_INPUTS, *SCALAR_OUTPUTS, "kde_grid_size",
                "kde_reflect", "kde_renormalize", "kde_ddof")
LAYER_KEY = r"(W|b|W_prev|b_prev|mask|grad_masked_W|grad_W|grad_b)\d+"


def check_key_dtypes(path, data: dict) -> None:
    """Raise UnreadableFile naming ``path`` for a key of a vectors or inputs file that does not hold
    what the schema says: text for :data:`TEXT_KEYS`, numbers for the numeric keys (keys the schema
    does not know are left alone)."""
    for key, value in data.items():
        if key in TEXT_KEYS:
            check_dtype(path, key, value, "US", "text")
        elif key in NUMERIC_KEYS or re.fullmatch(LAYER_KEY, key):
            check_dtype(path, key, value)


def load_vectors(path) -> dict:
    """Read a case file; check its schema version, that every key is present and holds numbers or text.

    Raises
    ------
    refprune.util.io.UnreadableFile
        A ValueError naming the file: missing, damaged or truncated, not a
        vectors file of this schema, lacking keys, or a key of the wrong dtype.
    """
    path = Path(path)
    data = read_npz(path, VECTORS_FILE)
    with reading(path, f"{VECTORS_FILE} of schema version {SCHEMA_VERSION}"):
        if "schema_version" not in data or int(data["schema_version"]) != SCHEMA_VERSION:
            raise UnreadableFile(path, f"not a vectors file of schema version {SCHEMA_VERSION}")
        check_key_dtypes(path, data)
        L = n_layers_of(data["layers"])
        missing = [key for key in required_input_keys(L, granularity_of(data)) + output_keys(L) if key not in data]
    if missing:
        raise UnreadableFile(path, f"vectors file lacks keys {', '.join(missing)}")
    return data


# --------------------------------------------------------------------------
# writing


def npz_bytes(arrays: dict) -> bytes:
    """A compressed .npz archive of the arrays with fixed member timestamps (reproducible)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, value in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def number_or_list(data: dict, key: str):
    """A scalar key as a float, a layer-wise (L,) key as a list of floats."""
    value = np.asarray(data[key], np.float64)
    return float(value) if value.ndim == 0 else [float(v) for v in value]


def manifest_entry(case: VectorCase, data: dict, blob: bytes) -> dict:
    """The manifest's description of one written case (layer-wise: r, k, tau, t, dt_dr per layer)."""
    sizes = [int(np.size(data[key])) for key in layer_keys("W", n_layers_of(case.layers))]
    n = sum(sizes)
    r = np.asarray(data["r"], np.float64)
    counts = (sizes if r.ndim else [n])  # k = floor(r·n) of the pool each r applies to
    k = [min(int(np.floor(rl * nl)), nl - 1) for rl, nl in zip(np.atleast_1d(r), counts)]
    entry = {"name": case.name, "file": f"{case.name}.npz",
             "sha256": hashlib.sha256(blob).hexdigest(), "description": case.description,
             "tier": case.tier, "covers": list(case.covers), "layers": list(case.layers),
             "batch": case.batch, "loss_kind": case.loss, "n_weights": n,
             "r": number_or_list(data, "r"), "k": k if r.ndim else k[0],
             "tau": number_or_list(data, "tau"), "tau_rule": case.tau_rule, "tau0": case.tau0,
             "lam": case.lam, "threshold_rule": case.threshold,
             "kde": {key: np.asarray(data[key]).item() for key in KDE_KEYS},
             "t": number_or_list(data, "t"), "dt_dr": number_or_list(data, "dt_dr"), "seed": case.seed}
    if case.granularity == "layer":
        entry.update({"granularity": "layer", "r_spread": case.r_spread, "band": case.band})
    return entry


def merged_entries(manifest_path: Path, entries: list) -> list:
    """``entries`` plus those of an existing manifest whose case files are still there, in case order."""
    new = {e["name"]: e for e in entries}
    if manifest_path.is_file():
        old = manifest_cases(manifest_path, read_json(manifest_path, dict, MANIFEST_FILE))
        for e in old:
            if e.get("name") not in new and (manifest_path.parent / f"{e.get('name')}.npz").is_file():
                new[e["name"]] = e
    order = {name: i for i, name in enumerate(CASE_NAMES)}
    return sorted(new.values(), key=lambda e: order.get(e["name"], len(order)))


def write_vectors(out_dir, names=None) -> dict:
    """Write the cases (all, or those named) and ``manifest.json`` into ``out_dir``.

    Parameters
    ----------
    out_dir : path
    names : iterable of str, optional
        Case names; unknown names raise ValueError before anything is written.
        Cases already in ``out_dir`` (file present) stay listed in the manifest.

    Returns
    -------
    dict
        The manifest that was written.
    """
    cases = list(CASES) if names is None else [case_by_name(n) for n in names]
    out_dir = Path(out_dir)
    entries = []
    for case in cases:
        data = make_vectors(case)
        blob = npz_bytes(data)
        atomic_write(out_dir / f"{case.name}.npz", lambda fh, blob=blob: fh.write(blob))
        entries.append(manifest_entry(case, data, blob))
    entries = merged_entries(out_dir / MANIFEST, entries)
    manifest = {"schema_version": SCHEMA_VERSION, "generator": f"refprune {__version__}",
                "format": "docs/vectors.md", "tolerances": tolerance_table(), "cases": entries}
    text_ = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    atomic_write(out_dir / MANIFEST, lambda fh: fh.write(text_.encode()))
    return manifest


MANIFEST_FILE = "a golden-vectors manifest (manifest.json of 'refprune vectors')"


def manifest_cases(path, manifest: dict) -> list:
    """A manifest's ``cases``, checked: a list of objects, each naming its case and file."""
    cases = manifest.get("cases")
    if not isinstance(cases, list):
        raise UnreadableFile(path, f"lacks a list of 'cases': not {MANIFEST_FILE}")
    for i, e in enumerate(cases, start=1):
        if not (isinstance(e, dict) and isinstance(e.get("name"), str) and isinstance(e.get("file"), str)):
            raise UnreadableFile(path, f"case entry {i} is not an object with a 'name' and a 'file': not "
                                       f"{MANIFEST_FILE}")
    return cases


def read_manifest(vectors_dir) -> dict:
    """``manifest.json`` of a vectors directory, checked for the schema version and its case entries."""
    path = Path(vectors_dir) / MANIFEST
    manifest = read_json(path, dict, MANIFEST_FILE)
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise UnreadableFile(path, f"not a vectors manifest of schema version {SCHEMA_VERSION}")
    manifest_cases(path, manifest)
    return manifest


def reference_for(name: str, vectors_dir=None) -> tuple[dict, str]:
    """The reference vectors of a case: from ``vectors_dir`` or generated in memory.

    Returns
    -------
    data : dict
    source : str
        Where it came from (a path, or "generated in memory").
    """
    if vectors_dir is None:
        return make_vectors(case_by_name(name)), "generated in memory"
    manifest = read_manifest(vectors_dir)
    entry = next((e for e in manifest["cases"] if e.get("name") == name), None)
    if entry is None:
        known = ", ".join(e.get("name", "?") for e in manifest["cases"])
        raise ValueError(f"case {name!r} does not exist in {vectors_dir}; known cases: {known}")
    path = Path(vectors_dir) / entry["file"]
    data = load_vectors(path)  # a damaged file is named as damaged, before its digest is compared
    if hashlib.sha256(read_bytes(path)).hexdigest() != entry.get("sha256"):
        raise UnreadableFile(path, f"does not match the sha256 in {MANIFEST} (modified or mixed versions)")
    if text(data, "case") != name:
        raise UnreadableFile(path, f"holds case {text(data, 'case')!r}, not {name!r}")
    return data, str(path)
