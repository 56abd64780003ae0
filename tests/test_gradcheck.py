"""The finite-difference oracle: it passes the exact gradients and catches wrong ones."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refprune.cli.main import main
from refprune.core.masks import mask_logit
from refprune.lrp.reference import lrp_gradients
from refprune.oracle.case import Case, make_problem
from refprune.oracle.gradcheck import FD_RTOL, analytic_gradients, check_gradients, gradcheck
from refprune.oracle.placement import BAND_Z, BAND_Z_TOL, DEFAULT_BAND


def rows_by_name(rows):
    return {row.name: row for row in rows}


@pytest.mark.parametrize("case", [
    Case(),
    Case(loss="mse"),
    Case(threshold="smoothed"),
    Case(lam=10.0, threshold="smoothed"),
    Case(layers=(7, 9, 8, 6, 5, 4), batch=12),
    Case(tau0=1e-2, r=0.8, seed=3),
], ids=["default", "mse", "smoothed", "lam10", "deep", "tau0-1e-2"])
def test_exact_gradients_pass(case):
    report = gradcheck(case)
    expected = {f"{k}{l}" for k in "Wb" for l in range(1, len(case.layers))} | {"tau", "t"}
    if case.threshold == "smoothed":
        expected |= {"r", "dt/dr"}
    assert {row.name for row in report.rows} == expected
    failing = [row for row in report.rows if not row.passed]
    assert not failing, failing
    assert max(row.max_rel_err for row in report.rows) <= FD_RTOL["float64"]
    assert all(row.checked > 0 for row in report.rows)


@pytest.mark.slow
@settings(max_examples=40)
@given(
    layers=st.lists(st.integers(1, 6), min_size=2, max_size=5),
    batch=st.integers(1, 6),
    loss=st.sampled_from(["ce", "mse"]),
    r=st.floats(0.05, 0.95),
    tau0=st.floats(1e-2, 1.0),
    lam=st.sampled_from([0.0, 0.5, 10.0]),
    threshold=st.sampled_from(["empirical", "smoothed"]),
    seed=st.integers(0, 2**16),
)
def test_random_cases_pass(layers, batch, loss, r, tau0, lam, threshold, seed):
    if loss == "ce":
        layers[-1] = max(layers[-1], 2)
    if sum(a * b for a, b in zip(layers[:-1], layers[1:])) < 3:
        layers[0] = 3  # the KDE needs at least two distinct magnitudes
    report = gradcheck(Case(layers=tuple(layers), batch=batch, loss=loss, r=r, tau0=tau0, lam=lam,
                            threshold=threshold, seed=seed), max_coords=12)
    assert report.passed, [row for row in report.rows if not row.passed]


def test_float32_gradients_pass_at_float32_tolerance():
    report = gradcheck(Case(dtype="float32"))
    assert report.passed, report.rows


# --- the oracle has teeth -------------------------------------------------

def case_and_grads(case):
    problem = make_problem(case)
    result = lrp_gradients(problem.weights, problem.biases, problem.x, problem.y, problem.r,
                           problem.tau, problem.config)
    return problem, result, analytic_gradients(result)


def verdicts(problem, result, grads):
    return rows_by_name(check_gradients(problem, grads, result.threshold.t, result.dt_dr))


def test_wrong_sign_of_dt_dr_is_caught():
    problem, result, grads = case_and_grads(Case(threshold="smoothed", lam=1.0))
    grads["r"] = -result.dt_dr * result.grad_t + 2 * 1.0 * (problem.r - 1)  # published P2
    rows = verdicts(problem, result, grads)
    assert not rows["r"].passed
    assert rows["t"].passed and rows["tau"].passed


def test_printed_equation_2_3_is_caught():
    problem, result, grads = case_and_grads(Case(tau0=0.5))
    for l, (g, W, m, s) in enumerate(zip(result.grad_masked, problem.weights, result.masks, result.slopes), 1):
        grads[f"W{l}"] = g * (m + (2 * W / problem.tau) * s)  # as printed: 2w/τ, not 2w²/τ
    rows = verdicts(problem, result, grads)
    assert not any(rows[f"W{l}"].passed for l in range(1, 4))
    assert all(rows[f"b{l}"].passed for l in range(1, 4))


def test_weight_gradient_masked_twice_is_caught():
    problem, result, grads = case_and_grads(Case())
    for l, m in enumerate(result.masks, 1):
        grads[f"W{l}"] = grads[f"W{l}"] * m  # published P1
    rows = verdicts(problem, result, grads)
    assert not any(rows[f"W{l}"].passed for l in range(1, 4))


def test_wrong_tau_and_t_gradients_are_caught():
    problem, result, grads = case_and_grads(Case())
    grads["tau"] = -grads["tau"]
    grads["t"] = 1.01 * grads["t"]
    rows = verdicts(problem, result, grads)
    assert not rows["tau"].passed and not rows["t"].passed


def test_bias_gradient_off_by_a_little_is_caught():
    problem, result, grads = case_and_grads(Case())
    grads["b2"] = grads["b2"] * (1 + 1e-4)
    assert not verdicts(problem, result, grads)["b2"].passed


# --- the command line -----------------------------------------------------

def test_cli_json_rows(capsys):
    status = main(["gradcheck", "--json", "--threshold", "smoothed", "--lam", "10"])
    rows = json.loads(capsys.readouterr().out)
    assert status == 0
    assert {"name", "max_abs_err", "max_rel_err", "passed"} <= set(rows[0])
    assert {row["name"] for row in rows} >= {"W1", "b1", "tau", "t", "r"}
    assert all(row["passed"] for row in rows)


def test_cli_table_and_verdict(capsys):
    assert main(["gradcheck", "--layers", "4,6,3", "--loss", "mse"]) == 0
    out = capsys.readouterr().out
    assert "verdict: PASS" in out and "W2" in out


@pytest.mark.parametrize("args, match", [
    (["--r", "1.0"], "r must be in"), (["--tau0", "0"], "tau0 must be > 0"), (["--lam", "-1"], "lam must be >= 0"),
])
def test_cli_bad_values_are_one_line_errors(args, match, capsys):
    assert main(["gradcheck", *args]) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_bad_layers_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["gradcheck", "--layers", "4,0,3"])
    assert exit_info.value.code == 2
    assert "--layers needs at least two sizes" in capsys.readouterr().err


# --- any τ: the band, vacuous rows, extreme values --------------------------

@pytest.mark.parametrize("args", [
    ["--tau0", "1e-5"], ["--tau0", "1e-6"], ["--tau0", "1e-6", "--threshold", "smoothed", "--lam", "10"],
], ids=["1e-5", "1e-6", "1e-6-smoothed-lam10"])
def test_small_tau0_checks_tau_and_t_for_real(args, capsys):
    assert main(["gradcheck", "--json", *args]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    for name in ("tau", "t"):
        assert rows[name]["status"] == "pass" and rows[name]["checked"] == 1, rows[name]
    assert all(row["status"] != "FAIL" for row in rows.values())


def test_small_tau0_places_the_default_band():
    problem = make_problem(Case(tau0=1e-6))
    result = lrp_gradients(problem.weights, problem.biases, problem.x, problem.y, problem.r,
                           problem.tau, problem.config)
    z = np.concatenate([mask_logit(W, result.threshold.t, problem.tau).ravel() for W in problem.weights])
    # placement stops once t² moves by <= BAND_Z_TOL·τ, so each logit is within BAND_Z_TOL of its target
    assert np.count_nonzero(np.abs(z) <= BAND_Z + BAND_Z_TOL) == DEFAULT_BAND


# τ0 = τ/std then τ = τ0·std: two roundings, a few ulps; 1e-12 relative leaves ample room.
TAU0_ROUNDTRIP_RTOL = 1e-12


def tau_exactly(tau):
    """A Case whose τ = tau0 × std(W) equals ``tau`` (std from the default case's weights)."""
    std = make_problem(Case()).tau / Case().tau0
    return Case(tau0=tau / std)


def test_wrong_tau_gradient_at_tau_1e_minus_6_is_caught():
    problem, result, grads = case_and_grads(tau_exactly(1e-6))
    assert abs(problem.tau - 1e-6) <= 1e-6 * TAU0_ROUNDTRIP_RTOL
    good = verdicts(problem, result, dict(grads))
    assert good["tau"].status == "pass" and good["t"].status == "pass"
    grads["tau"] = grads["tau"] * (1 + 1e-4)
    assert verdicts(problem, result, grads)["tau"].status == "FAIL"


def test_empty_band_gives_vacuous_rows_that_still_catch_a_nonzero_value():
    problem, result, grads = case_and_grads(Case(tau0=1e-6, band=0))
    rows = verdicts(problem, result, dict(grads))
    assert rows["tau"].status == "vacuous" and rows["t"].status == "vacuous"
    assert "no weight within the band" in rows["tau"].note
    grads["tau"] = 1.0  # a gradient where none can be
    assert verdicts(problem, result, grads)["tau"].status == "FAIL"
    report = gradcheck(Case(tau0=1e-6, band=0), max_coords=4)
    assert report.passed and any("vacuous" in note for note in report.notes)


def test_tau0_1e_minus_300_is_a_clear_error(capsys):
    assert main(["gradcheck", "--tau0", "1e-300"]) == 2
    err = capsys.readouterr().err
    assert "below 1e-140" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_an_unresolvable_explicit_band_is_an_error():
    with pytest.raises(ValueError, match="resolves near t"):
        make_problem(Case(tau0=1e-130, band=4))


def test_band_must_be_a_non_negative_integer():
    with pytest.raises(ValueError, match="band must be >= 0, got -1"):
        Case(band=-1)
    with pytest.raises(ValueError, match="band must be an integer, got 1.5"):
        Case(band=1.5)


def test_float32_at_a_tau_it_cannot_resolve_is_a_clear_error(capsys):
    assert main(["gradcheck", "--dtype", "float32", "--tau0", "1e-6"]) == 2
    err = capsys.readouterr().err
    assert "float32 cannot resolve the transition band" in err and len(err.strip().splitlines()) == 1
    assert main(["gradcheck", "--dtype", "float32", "--tau0", "1e-6", "--band", "0"]) == 0


def test_r_at_zero_with_the_smoothed_threshold_finishes_and_says_why_r_is_unchecked():
    # At r = 0 the smoothed t̃ is 0: a step in t around 0 must not overflow its snapping to ulps of t,
    # and no central difference in r fits inside [0, 1), which the r and dt/dr rows say.
    report = gradcheck(Case(r=0.0, threshold="smoothed"), max_coords=3)
    rows = {row.name: row for row in report.rows}
    assert report.passed and rows["t"].status == "pass"
    for name in ("r", "dt/dr"):
        assert rows[name].status == "unchecked" and "no central difference in r fits" in rows[name].note
