"""``compare`` on the layer-wise golden vectors: an independent layer-wise pass matches, and a
wrong per-layer value fails its quantity with the layer named."""

import numpy as np
import pytest
from test_compare import naive_density, naive_forward_backward, naive_threshold

from refprune.cli.main import main
from refprune.vectors.cases import CASES, case_by_name, make_vectors
from refprune.vectors.compare import compare_candidate, format_comparison
from refprune.vectors.schema import n_layers_of, output_keys, scalar, text

LAYER_CASES = [c for c in CASES if c.granularity == "layer"]
# A per-layer value off by this much relative: 1e4 times the float64 tier's 1e-10, far
# below anything a reader would notice by eye.
SMALL_ERROR = 1e-6

_CACHE = {}


def vectors(name):
    if name not in _CACHE:
        _CACHE[name] = make_vectors(case_by_name(name))
    return _CACHE[name]


def naive_layer_pass(data):
    """Every output key of a layer-wise case, computed plainly layer by layer (float64)."""
    L = n_layers_of(data["layers"])
    W = [data[f"W{l}"].astype(np.float64) for l in range(1, L + 1)]
    b = [data[f"b{l}"].astype(np.float64) for l in range(1, L + 1)]
    rs, taus, lam = data["r"].astype(np.float64), data["tau"].astype(np.float64), scalar(data, "lam")
    frac = np.array([w.size for w in W], np.float64) / sum(w.size for w in W)
    ts = np.array([naive_threshold(data, [w], r)[0] for w, r in zip(W, rs)])  # each layer's own t_l
    masks = []
    for w, t, tau in zip(W, ts, taus):
        z = (w * w - t * t) / tau
        e = np.exp(-np.abs(z))
        masks.append(np.where(z >= 0, 1 / (1 + e), e / (1 + e)))
    slopes = [m * (1 - m) for m in masks]
    loss, g, gb = naive_forward_backward(data, [m * w for m, w in zip(masks, W)], b, data["x"], np.float64)
    dens = np.array([naive_density(data, [w], [t])[0] for w, t in zip(W, ts)])
    grad_t = np.array([-2 * t / tau * np.sum(gl * w * s) for gl, w, s, t, tau in zip(g, W, slopes, ts, taus)])
    grad_tau = np.array([np.sum(gl * w * s * (t * t - w * w)) / tau ** 2
                         for gl, w, s, t, tau in zip(g, W, slopes, ts, taus)])
    out = {"loss": loss + lam * np.sum(frac * (1 - rs) ** 2), "t": ts, "dt_dr": 1 / dens, "density": dens,
           "grad_t": grad_t, "grad_tau": grad_tau, "grad_r": grad_t / dens + 2 * lam * frac * (rs - 1)}
    for l, (m, gl, w, s, bl, tau) in enumerate(zip(masks, g, W, slopes, gb, taus), start=1):
        out.update({f"mask{l}": m, f"grad_masked_W{l}": gl, f"grad_W{l}": gl * (m + 2 * w * w / tau * s),
                    f"grad_b{l}": bl})
    out = {key: np.asarray(value, np.float64) for key, value in out.items()}
    out["case"] = data["case"]
    return out


def reference_candidate(data):
    cand = {key: np.array(data[key], np.float64) for key in output_keys(n_layers_of(data["layers"]))}
    cand["case"] = data["case"]
    return cand


def rows(comp):
    return {row.key: row for row in comp.rows}


@pytest.mark.parametrize("case", LAYER_CASES, ids=lambda c: c.name)
def test_independent_layer_wise_implementation_passes(case):
    comp = compare_candidate(naive_layer_pass(vectors(case.name)))
    assert comp.passed, format_comparison(comp)
    assert not comp.missing


# every per-layer output (r and tau are inputs, not compared)
@pytest.mark.parametrize("key", ["t", "dt_dr", "density", "grad_t", "grad_tau", "grad_r"])
@pytest.mark.parametrize("case", LAYER_CASES, ids=lambda c: c.name)
def test_a_wrong_value_of_layer_2_fails_that_quantity_and_names_the_layer(case, key):
    cand = reference_candidate(vectors(case.name))
    cand[key][1] *= 1 + SMALL_ERROR
    comp = compare_candidate(cand)
    failed = [row for row in comp.rows if not row.passed]
    assert [row.key for row in failed] == [key]
    assert f"layer 2: {key}_2 off" in failed[0].note and "layer 1" not in failed[0].note
    assert "not available for a layer-wise case" in format_comparison(comp)


def test_swapped_layers_are_named():
    cand = reference_candidate(vectors("mse-layer-smoothed"))
    cand["grad_tau"] = cand["grad_tau"][[1, 0, 2]]
    note = rows(compare_candidate(cand))["grad_tau"].note
    assert "layer 1: grad_tau_1 off" in note and "layer 2: grad_tau_2 off" in note and "layer 3" not in note


def test_a_global_shaped_value_is_a_clear_error():
    cand = reference_candidate(vectors("ce-layer"))
    cand["t"] = np.array(cand["t"][0])
    with pytest.raises(ValueError, match=r"t has shape \(\); case ce-layer expects \(3,\)"):
        compare_candidate(cand)


def test_cli_compare_layer_wise_candidate(tmp_path, capsys):
    assert main(["vectors", "--out", str(tmp_path / "v"), "--cases", "ce-layer-band"]) == 0
    data = vectors("ce-layer-band")
    cand = reference_candidate(data)
    path = tmp_path / "cand.npz"
    np.savez(path, **cand)
    capsys.readouterr()
    assert main(["compare", str(path), "--vectors", str(tmp_path / "v")]) == 0
    assert "verdict: PASS" in capsys.readouterr().out
    cand["grad_r"][0] *= 1 + SMALL_ERROR
    np.savez(path, **cand)
    assert main(["compare", str(path), "--vectors", str(tmp_path / "v")]) == 1
    out = capsys.readouterr().out
    assert "layer 1: grad_r_1 off" in out and text(data, "case") in out
