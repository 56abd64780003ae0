"""A user's own case: `vectors --from`, candidates carrying their inputs, the (out, in) layout."""

import json

import numpy as np
import pytest
from test_compare import DEFECT_CASES, reference_candidate
from test_published_density import TRANSCRIPTION_RTOL, literal_p5

from refprune.cli.main import main
from refprune.lrp.reference import LRPConfig, lrp_gradients
from refprune.oracle.case import Case, make_problem
from refprune.vectors.cases import previous_step
from refprune.vectors.compare import compare_candidate, format_comparison
from refprune.vectors.files import read_manifest, reference_for
from refprune.vectors.schema import layer_keys, output_keys
from refprune.vectors.user_cases import reference_from_inputs

# A net shape none of the built-in cases has.
LAYERS = (5, 7, 3)
LAM = 1.0


def torch_inputs(with_previous=True, name="torch-net"):
    """Inputs as a PyTorch user would write them: nn.Linear.weight layout (out, in)."""
    p = make_problem(Case(layers=LAYERS, batch=6, r=0.45, tau0=0.1, lam=LAM, seed=21))
    config = LRPConfig(loss="ce", lam=LAM)
    data = {"case": np.array(name), "layout": np.array("out_in"), "layers": np.array(LAYERS),
            "x": p.x, "y": p.y, "loss_kind": np.array("ce"), "r": np.array(p.r),
            "tau": np.array(p.tau), "lam": np.array(LAM), "threshold_rule": np.array("empirical")}
    for l, (W, b) in enumerate(zip(p.weights, p.biases), start=1):
        data[f"W{l}"], data[f"b{l}"] = W.T.copy(), b
    if with_previous:
        res = lrp_gradients(p.weights, p.biases, p.x, p.y, p.r, p.tau, config)
        prev = previous_step(p.weights, p.biases, p.r, p.tau, res)
        for l, (W, b) in enumerate(zip(prev["W_prev"], prev["b_prev"]), start=1):
            data[f"W_prev{l}"], data[f"b_prev{l}"] = W.T.copy(), b
        data["r_prev"], data["tau_prev"] = np.array(prev["r_prev"]), np.array(prev["tau_prev"])
    return data


def as_out_in(cand):
    """A candidate's weight-shaped outputs in PyTorch's layout, declared with layout = out_in."""
    out = {k: (v.T.copy() if np.ndim(v) == 2 else v) for k, v in cand.items()}
    out["layout"] = np.array("out_in")
    return out


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("vectors")
    path = d / "inputs.npz"
    np.savez(path, **torch_inputs())
    assert main(["vectors", "--from", str(path), "--out", str(d)]) == 0
    return d


def test_vectors_from_writes_the_case_and_its_manifest_entry(user_dir):
    entry = next(e for e in read_manifest(user_dir)["cases"] if e["name"] == "torch-net")
    assert entry["layers"] == list(LAYERS) and entry["previous_step"] and entry["covers"] == ["user"]
    data, _ = reference_for("torch-net", user_dir)
    assert data["W1"].shape == (5, 7)  # stored in the project's (in, out) layout
    np.testing.assert_array_equal(data["W1"], torch_inputs()["W1"].T)


def test_correct_outputs_in_out_in_layout_pass(user_dir):
    data, _ = reference_for("torch-net", user_dir)
    comp = compare_candidate(as_out_in(reference_candidate(data)), user_dir)
    assert comp.passed and not comp.missing, format_comparison(comp)


@pytest.mark.slow
@pytest.mark.parametrize("inject,cause", [(f, c) for f, c, _ in DEFECT_CASES],
                         ids=lambda v: getattr(v, "__name__", str(v)))
def test_each_defect_is_named_on_the_user_case(user_dir, inject, cause):
    data, _ = reference_for("torch-net", user_dir)
    cand = inject(data)
    if cause != "transposed":  # a transposed candidate is one that does not declare out_in
        cand = as_out_in(cand)
    comp = compare_candidate(cand, user_dir)
    assert not comp.passed and comp.diagnosis.causes == [cause], format_comparison(comp)


def test_candidate_carrying_its_own_inputs_is_judged_against_them():
    inputs = torch_inputs(with_previous=False, name="inline")
    cand = dict(inputs)
    ref = reference_from_inputs(inputs)
    cand.update(as_out_in({k: ref[k] for k in output_keys(len(LAYERS) - 1)}))
    comp = compare_candidate(cand)
    assert comp.passed and comp.source == "computed from the candidate's own inputs"
    assert not comp.ignored
    cand["grad_tau"] = -cand["grad_tau"]
    comp = compare_candidate(cand)
    assert comp.diagnosis.causes == ["grad_tau_sign"], format_comparison(comp)


@pytest.mark.slow
def test_without_the_previous_step_the_stale_diagnosis_is_skipped_and_says_so(tmp_path):
    path = tmp_path / "noprev.npz"
    np.savez(path, **torch_inputs(with_previous=False, name="noprev"))
    assert main(["vectors", "--from", str(path), "--out", str(tmp_path)]) == 2  # it would replace its inputs
    assert main(["vectors", "--from", str(path), "--out", str(tmp_path / "v")]) == 0
    data, _ = reference_for("noprev", tmp_path / "v")
    assert not any(k in data for k in layer_keys("W_prev", 2))
    cand = reference_candidate(data)
    cand["grad_W1"] = -cand["grad_W1"]
    comp = compare_candidate(cand, tmp_path / "v")
    assert "stale-state diagnosis skipped" in format_comparison(comp)


def test_wrong_shape_for_the_declared_layout_is_a_clear_error(tmp_path, capsys):
    inputs = torch_inputs()
    inputs["W1"] = inputs["W1"].T  # (in, out) while declaring out_in
    path = tmp_path / "bad.npz"
    np.savez(path, **inputs)
    assert main(["vectors", "--from", str(path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "layout out_in" in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------
# compare says what it used; `published` means P5 in full


def tmp_npz(path, arrays):
    np.savez(path, **arrays)
    return str(path)


def test_an_out_in_candidate_lists_no_used_key_as_ignored(user_dir, capsys):
    data, _ = reference_for("torch-net", user_dir)
    cand = as_out_in(reference_candidate(data))
    comp = compare_candidate(cand, user_dir)
    assert comp.passed and comp.ignored == [] and comp.unknown == [] and comp.layout == "out_in"
    path = tmp_npz(user_dir / "cand-out-in.npz", cand)
    capsys.readouterr()
    assert main(["compare", path, "--vectors", str(user_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ignored"] == [] and report["layout"] == "out_in"
    assert main(["compare", path, "--vectors", str(user_dir)]) == 0
    out = capsys.readouterr().out
    assert "ignored" not in out and "layout out_in" in out


def test_own_inputs_with_vectors_are_checked_against_that_case(user_dir, capsys):
    """Inputs equal to DIR's case: judged against DIR's file, and the report says so."""
    data, _ = reference_for("torch-net", user_dir)
    cand = {**torch_inputs(), **as_out_in(reference_candidate(data))}
    comp = compare_candidate(cand, user_dir)
    assert comp.passed and comp.source.endswith("torch-net.npz (the candidate's own inputs equal the case's)")
    assert comp.ignored == []
    no_previous = {k: v for k, v in cand.items() if "prev" not in k}  # the previous step is optional
    assert compare_candidate(no_previous, user_dir).passed
    bad = dict(cand, grad_tau=-cand["grad_tau"])  # and a mismatch is diagnosed against DIR's case
    assert compare_candidate(bad, user_dir).diagnosis.causes == ["grad_tau_sign"]


@pytest.mark.parametrize("change, named", [
    ({"r": np.array(0.46)}, "in r;"),
    ({"x": None}, "in x;"),
    ({"lam": np.array(0.0)}, "in lam;"),
    ({"kde_method": np.array("fft")}, "in kde_method;"),
    ({"r_prev": None}, "in r_prev;"),
])
def test_own_inputs_that_differ_from_the_vectors_case_are_refused(user_dir, tmp_path, capsys, change, named):
    data, _ = reference_for("torch-net", user_dir)
    cand = {**torch_inputs(), **as_out_in(reference_candidate(data))}
    for key, value in change.items():
        cand[key] = value if value is not None else cand[key] + 1e-3
    path = tmp_npz(tmp_path / "cand.npz", cand)
    capsys.readouterr()
    assert main(["compare", path, "--vectors", str(user_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the candidate's own inputs differ from" in err and named in err, err


def p5_inputs(**extra):
    inputs = torch_inputs(with_previous=False, name="p5-net")
    inputs.update({"kde_method": np.array("published"), "kde_binning": np.array("nearest"),
                   "kde_reflect": np.array(False), "kde_renormalize": np.array(True),
                   "kde_point": np.array("order_stats"), **extra})
    return inputs


def test_vectors_from_published_without_ddof_is_p5_with_ddof_0(tmp_path):
    np.savez(tmp_path / "p5.npz", **p5_inputs())
    assert main(["vectors", "--from", str(tmp_path / "p5.npz"), "--out", str(tmp_path)]) == 0
    data, _ = reference_for("p5-net", tmp_path)
    assert int(data["kde_ddof"]) == 0
    entry = next(e for e in read_manifest(tmp_path)["cases"] if e["name"] == "p5-net")
    assert entry["kde"]["kde_ddof"] == 0 and entry["kde"]["kde_method"] == "published"
    W = [np.asarray(data[k]) for k in layer_keys("W", 2)]
    a = np.sort(np.concatenate([np.abs(w).ravel() for w in W]))
    k = int(np.floor(float(data["r"]) * a.size))
    f = literal_p5(a, np.array([a[k - 1], a[k]]))  # np.std: ddof 0
    np.testing.assert_allclose(float(data["dt_dr"]), np.mean(1 / f), rtol=TRANSCRIPTION_RTOL)
    assert reference_from_inputs(p5_inputs(kde_ddof=np.array(0)))["dt_dr"] == data["dt_dr"]


def test_vectors_from_published_with_ddof_1_is_refused_in_one_line(tmp_path, capsys):
    np.savez(tmp_path / "p5.npz", **p5_inputs(kde_ddof=np.array(1)))
    assert main(["vectors", "--from", str(tmp_path / "p5.npz"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "whose σ is np.std's (ddof 0); got ddof 1" in err, err
    assert not (tmp_path / "p5-net.npz").exists()
