"""Golden vectors: the case set spans the situations a port must get right, files are complete and reproducible."""

import hashlib
import json

import numpy as np
import pytest

from refprune.cli.main import main
from refprune.core.groups import Grouping
from refprune.core.masks import mask_logit
from refprune.core.threshold import all_magnitudes
from refprune.density.quantile import compute_threshold
from refprune.lrp.reference import lrp_gradients
from refprune.vectors.cases import CASE_NAMES, CASES, PREV_LR, case_by_name, make_vectors, reference_outputs
from refprune.vectors.files import MANIFEST, load_vectors, reference_for, write_vectors
from refprune.vectors.schema import (
    LAYERWISE_KEYS,
    config_of,
    granularity_of,
    input_keys,
    n_layers_of,
    output_keys,
    output_shapes,
    scalar,
    targets_of,
    text,
    weights_of,
)
from refprune.vectors.tolerances import TIER_RTOL

# The hard-τ case sets τ = min|w² − t²|/10 in float64 and stores float32: min|z| = 10 to
# float32 rounding.
HARD_TAU_LOGIT_RTOL = 1e-6
# At |z| >= 10 every mask is within e^{-10} ≈ 4.5e-5 of 0 or 1.
SATURATED_MASK = 5e-5
# The previous step is W_prev − W of float32 weights: float32 rounding of W (|W| < 1).
PREV_STEP_ATOL = 1e-7
# A layer-wise case stores τ_l = τ0 × std(W_l) rounded to float32 (relative rounding 2⁻²⁴ < 6e-8).
TAU_F32_RTOL = 1e-7
GLOBAL_CASES = [case for case in CASES if case.granularity == "global"]
LAYER_CASES = [case for case in CASES if case.granularity == "layer"]


@pytest.fixture(scope="module")
def vectors():
    return {case.name: make_vectors(case) for case in CASES}


def n_weights(layers):
    return sum(a * b for a, b in zip(layers[:-1], layers[1:]))


def test_cases_span_the_situations_a_port_must_get_right():
    covers = {tag for case in CASES for tag in case.covers}
    assert {"classification", "regression", "tiny", "medium", "moderate-tau", "extreme-tau",
            "r-near-0", "r-near-1", "lam0", "lam>0", "float64", "float32", "k=0"} <= covers
    assert {case.loss for case in CASES} == {"ce", "mse"}
    assert {case.tier for case in CASES} == {"float64", "float32"}
    assert min(case.r for case in CASES) <= 0.01 and max(case.r for case in CASES) >= 0.999
    assert {case.threshold for case in CASES} == {"empirical", "smoothed"}
    # layer-wise: both thresholds, both losses, and a small τ with a populated band
    assert {c.threshold for c in LAYER_CASES} == {"empirical", "smoothed"}
    assert {c.loss for c in LAYER_CASES} == {"ce", "mse"}
    assert any(c.band and c.tau0 < 1e-3 for c in LAYER_CASES)
    assert max(n_weights(c.layers) for c in CASES) > 1000 > min(n_weights(c.layers) for c in CASES)
    assert len(set(CASE_NAMES)) == len(CASES)


def test_every_file_holds_exactly_the_schema(tmp_path):
    write_vectors(tmp_path)
    for case in CASES:
        data = load_vectors(tmp_path / f"{case.name}.npz")
        L = n_layers_of(case.layers)
        assert list(data) == input_keys(L, case.granularity) + output_keys(L)
        assert granularity_of(data) == case.granularity
        for key, shape in output_shapes(case.layers, case.granularity).items():
            assert data[key].shape == shape and data[key].dtype == np.float64, key
        for l, (fan_in, fan_out) in enumerate(zip(case.layers[:-1], case.layers[1:]), start=1):
            assert data[f"W{l}"].shape == (fan_in, fan_out)
            assert case.granularity == "layer" or data[f"W_prev{l}"].shape == (fan_in, fan_out)
            assert data[f"b{l}"].shape == (fan_out,)
        if case.granularity == "layer":
            assert data["r"].shape == data["tau"].shape == (L,)
        assert text(data, "case") == case.name and text(data, "tier") == case.tier
        assert data["layers"].dtype == np.int64 and tuple(data["layers"]) == case.layers
        assert data["y"].dtype == (np.int64 if case.loss == "ce" else np.float64)


def test_inputs_are_exactly_representable_in_float32(vectors):
    for name, data in vectors.items():
        granularity = granularity_of(data)
        floats = [k for k in input_keys(n_layers_of(data["layers"]), granularity) if data[k].dtype.kind == "f"]
        assert {"x", "r", "tau", "W1", "b1"} | ({"W_prev1", "tau_prev"} if granularity == "global" else set()) \
            <= set(floats)
        for key in floats:
            value = data[key]
            assert np.array_equal(value, value.astype(np.float32).astype(np.float64)), (name, key)


def test_generation_is_byte_for_byte_reproducible(tmp_path):
    first = write_vectors(tmp_path / "a")
    second = write_vectors(tmp_path / "b")
    assert first == second
    for case in CASES:
        blob = (tmp_path / "a" / f"{case.name}.npz").read_bytes()
        assert blob == (tmp_path / "b" / f"{case.name}.npz").read_bytes()
        entry = next(e for e in first["cases"] if e["name"] == case.name)
        assert entry["sha256"] == hashlib.sha256(blob).hexdigest()
    assert (tmp_path / "a" / MANIFEST).read_bytes() == (tmp_path / "b" / MANIFEST).read_bytes()


def test_outputs_are_lrp_gradients_of_the_stored_inputs(vectors):
    for name, data in vectors.items():
        layer = granularity_of(data) == "layer"
        W = weights_of(data, "W")
        r, tau = (data["r"], data["tau"]) if layer else (scalar(data, "r"), scalar(data, "tau"))
        res = lrp_gradients(W, weights_of(data, "b"), data["x"], targets_of(data), r, tau, config_of(data),
                            grouping=Grouping.of("layer", len(W)) if layer else None)
        again = reference_outputs(res)
        for key, value in again.items():
            np.testing.assert_array_equal(value, data[key], err_msg=f"{name} {key}")


def test_extreme_tau_cases_are_saturated_but_well_conditioned(vectors):
    hard = vectors["ce-hard-tau"]
    t, tau = scalar(hard, "t"), scalar(hard, "tau")
    z = np.concatenate([mask_logit(W, t, tau).ravel() for W in weights_of(hard)])
    assert np.min(np.abs(z)) == pytest.approx(10.0, rel=HARD_TAU_LOGIT_RTOL)
    masks = np.concatenate([hard[f"mask{l}"].ravel() for l in range(1, 4)])
    assert np.all(np.minimum(masks, 1 - masks) < SATURATED_MASK)
    tiny = vectors["mse-tau-1e-12"]
    assert scalar(tiny, "tau") == np.float32(1e-12)
    for l in (1, 2):
        assert set(np.unique(np.round(tiny[f"mask{l}"]))) <= {0.0, 1.0}
        assert np.all(np.isfinite(tiny[f"grad_W{l}"]))


def test_r_near_zero_uses_a0_equal_zero(vectors):
    data = vectors["ce-r-near-0"]
    a = np.sort(all_magnitudes(weights_of(data)))
    assert int(np.floor(scalar(data, "r") * a.size)) == 0
    assert scalar(data, "t") == a[0] / 2  # k = 0: t = (a_0 + a_1)/2 with a_0 := 0


def test_r_near_one_prunes_all_but_the_largest_few(vectors):
    data = vectors["mse-r-0999"]
    a = np.sort(all_magnitudes(weights_of(data)))
    k = int(np.floor(scalar(data, "r") * a.size))
    assert k == a.size - 2
    assert scalar(data, "t") == (a[k - 1] + a[k]) / 2


def test_previous_step_is_one_adam_step_back(vectors):
    for name, data in ((c.name, vectors[c.name]) for c in GLOBAL_CASES):
        for l in range(1, n_layers_of(data["layers"]) + 1):
            step = data[f"W_prev{l}"] - data[f"W{l}"]
            g = data[f"grad_W{l}"]
            expected = PREV_LR["weights"] * g / (np.abs(g) + 1e-8)
            np.testing.assert_allclose(step, expected, atol=PREV_STEP_ATOL, err_msg=name)
        assert 0 <= scalar(data, "r_prev") < 1 and scalar(data, "tau_prev") > 0
        config = config_of(data)
        t_prev = compute_threshold(weights_of(data, "W_prev"), scalar(data, "r_prev"),
                                   config.threshold, config.density).t
        # a stale threshold is visible in the case's tier
        assert abs(t_prev - scalar(data, "t")) > 3 * TIER_RTOL[text(data, "tier")] * scalar(data, "t"), name


def test_reference_for_generates_or_reads(tmp_path):
    write_vectors(tmp_path, ["ce-tiny"])
    from_dir, source = reference_for("ce-tiny", tmp_path)
    in_memory, where = reference_for("ce-tiny")
    assert where == "generated in memory" and source.endswith("ce-tiny.npz")
    assert list(from_dir) == list(in_memory)
    for key in from_dir:
        np.testing.assert_array_equal(from_dir[key], in_memory[key])
    with pytest.raises(ValueError, match="does not exist"):
        reference_for("mse-tiny-lam", tmp_path)
    with pytest.raises(ValueError, match="does not exist; known cases"):
        reference_for("nope")
    path = tmp_path / "ce-tiny.npz"
    good = path.read_bytes()
    blob = bytearray(good)
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="ce-tiny.npz: is damaged or truncated"):
        reference_for("ce-tiny", tmp_path)
    np.savez(path, **{**from_dir, "loss": from_dir["loss"] + 1})  # readable, but not the file the manifest lists
    with pytest.raises(ValueError, match="ce-tiny.npz: does not match the sha256"):
        reference_for("ce-tiny", tmp_path)


def test_case_by_name_lists_known_cases():
    assert case_by_name("ce-tiny").name == "ce-tiny"
    with pytest.raises(ValueError, match="ce-tiny"):
        case_by_name("ce-huge")


def test_cli_vectors_writes_files_and_manifest(tmp_path, capsys):
    assert main(["vectors", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {len(CASES)} of {len(CASES)} cases" in out
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert [e["name"] for e in manifest["cases"]] == list(CASE_NAMES)
    assert set(manifest["tolerances"]) == {"float64", "float32"}
    for entry in manifest["cases"]:
        assert (tmp_path / entry["file"]).exists()
        assert entry["tier"] in ("float64", "float32")


def test_cli_vectors_subset_list_and_bad_name(tmp_path, capsys):
    assert main(["vectors", "--out", str(tmp_path), "--cases", "ce-tiny,ce-r-near-0"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ce-r-near-0.npz", "ce-tiny.npz", MANIFEST]
    capsys.readouterr()
    assert main(["vectors", "--out", str(tmp_path), "--list"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(CASES)
    assert main(["vectors", "--out", str(tmp_path / "x"), "--cases", "ce-tiny,bogus"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bogus" in err and err.startswith("refprune vectors: error:")
    assert not (tmp_path / "x").exists()


def test_load_vectors_rejects_other_files(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="schema version"):
        load_vectors(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="not a readable"):
        load_vectors(tmp_path / "junk.npz")


def test_files_without_the_newer_optional_keys_still_load(tmp_path):
    """Schema-1 files written before kde_ddof (and user cases without a previous step) load."""
    data = make_vectors(case_by_name("ce-tiny"))
    old = {k: v for k, v in data.items() if k != "kde_ddof" and "prev" not in k}
    path = tmp_path / "old.npz"
    np.savez(path, **old)
    loaded = load_vectors(path)
    assert config_of(loaded).density.ddof == 1  # the ddof every file before kde_ddof used
    assert config_of(data).density == config_of(loaded).density


def test_layer_wise_cases_have_their_own_r_tau_and_t_per_layer(vectors):
    for case in LAYER_CASES:
        data = vectors[case.name]
        config = config_of(data)
        rs, taus, ts = data["r"], data["tau"], data["t"]
        assert len(set(rs)) == len(rs)  # distinct r_l: a layer mix-up shows
        for l, W in enumerate(weights_of(data), start=1):
            # t_l is the r_l-threshold of layer l's own magnitudes
            assert ts[l - 1] == compute_threshold([W], rs[l - 1], config.threshold, config.density).t
            z = mask_logit(W, ts[l - 1], taus[l - 1])
            if case.band:  # the placed weights are within the band of their own layer
                assert np.count_nonzero(np.abs(z) < 60) >= 2, (case.name, l)
            else:  # τ_l = τ0 × std(W_l), as training initialises it
                assert taus[l - 1] == pytest.approx(case.tau0 * np.std(W), rel=TAU_F32_RTOL)
        for key in LAYERWISE_KEYS:
            assert data[key].shape == (n_layers_of(case.layers),), (case.name, key)
