"""The finite-difference oracle: it passes the exact gradients and catches wrong ones."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refprune.cli import main
from refprune.gradcheck import (RTOL, Case, analytic_gradients, check_gradients,
                                gradcheck, make_problem)
from refprune.lrp import lrp_gradients


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
    assert max(row.max_rel_err for row in report.rows) <= RTOL["float64"]
    assert all(row.checked > 0 for row in report.rows)


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
