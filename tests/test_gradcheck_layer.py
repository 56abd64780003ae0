"""The layer-wise finite-difference oracle: it passes the layer-wise reference and catches
a wrong per-layer gradient in exactly the row of that layer."""

import json
from dataclasses import replace

import numpy as np
import pytest

from refprune.cli.main import main
from refprune.core.gradients import group_grad_ratio
from refprune.core.groups import Grouping
from refprune.oracle.case import Case, layer_ratios, make_problem
from refprune.oracle.gradcheck import analytic_gradients, check_gradients, gradcheck, prepare
from refprune.oracle.placement import BAND_Z, BAND_Z_TOL

# dt/dr of layer 2 scaled by this much: a 1% error, 1e4 times the float64 pass criterion.
WRONG_FACTOR = 1.01


def statuses(report_rows):
    return {row.name: row.status for row in report_rows}


def scalar_rows(rows):
    return {row.name: row for row in rows if "_" in row.name}


@pytest.mark.parametrize("case", [
    Case(granularity="layer"),
    Case(granularity="layer", loss="mse"),
    Case(granularity="layer", threshold="smoothed", lam=10.0),
    Case(granularity="layer", threshold="smoothed", loss="mse", lam=2.0, seed=4),
    Case(granularity="layer", tau0=1e-5, threshold="smoothed", lam=10.0),
], ids=["ce-empirical", "mse-empirical", "ce-smoothed-lam10", "mse-smoothed", "ce-smoothed-tau0-1e-5"])
def test_layerwise_reference_passes(case):
    report = gradcheck(case)
    L = len(case.layers) - 1
    names = {"tau", "t"} | ({"r", "dt/dr"} if case.threshold == "smoothed" else set())
    expected = {f"{n}_{l}" for n in names for l in range(1, L + 1)}
    assert set(scalar_rows(report.rows)) == expected
    # every per-layer row checked something: not vacuous, not unchecked
    assert all(row.status == "pass" for row in scalar_rows(report.rows).values()), statuses(report.rows)
    assert report.passed, statuses(report.rows)
    if case.threshold == "empirical":
        assert any("not checkable" in note for note in report.notes)


def injected(case, layer_dt_dr):
    """Rows of the oracle on the analytic gradients with dt/dr replaced (and ∂L/∂r_l recomputed from it)."""
    problem, result = prepare(case)
    grads = analytic_gradients(result)
    fractions = problem.grouping.fractions(problem.weights)
    grad_r = group_grad_ratio(result.grad_t, layer_dt_dr(result.dt_dr), problem.r, case.lam, fractions)
    for l, (d, g) in enumerate(zip(layer_dt_dr(result.dt_dr), grad_r), start=1):
        grads[f"dt/dr_{l}"], grads[f"r_{l}"] = np.array(d), np.array(g)
    return check_gradients(problem, grads, [thr.t for thr in result.threshold], result.dt_dr)


SMOOTHED = Case(granularity="layer", threshold="smoothed", lam=10.0)
# λ = 0: ∂L/∂r_l is (dt_l/dr_l)·∂L/∂t_l alone, so every layer's dt/dr shows in its r row
# (at λ = 10 layer 1's regulariser term is ~1e4 times its data term, hiding a swap).
SMOOTHED_LAM0 = Case(granularity="layer", threshold="smoothed")


def test_a_wrong_dt_dr_of_layer_2_fails_exactly_its_rows():
    def wrong(dt_dr):
        out = dt_dr.copy()
        out[1] *= WRONG_FACTOR
        return out

    failed = {row.name for row in injected(SMOOTHED, wrong) if row.status == "FAIL"}
    assert failed == {"dt/dr_2", "r_2"}


def test_swapped_dt_dr_of_layers_1_and_2_fails_exactly_their_rows():
    failed = {row.name for row in injected(SMOOTHED_LAM0, lambda d: d[[1, 0, 2]]) if row.status == "FAIL"}
    assert failed == {"dt/dr_1", "r_1", "dt/dr_2", "r_2"}


def test_only_the_dt_dr_row_fails_when_grad_r_is_right():
    problem, result = prepare(SMOOTHED)
    grads = analytic_gradients(result)
    grads["dt/dr_3"] = grads["dt/dr_3"] * WRONG_FACTOR
    rows = check_gradients(problem, grads, [thr.t for thr in result.threshold], result.dt_dr)
    assert {row.name for row in rows if row.status == "FAIL"} == {"dt/dr_3"}


def test_a_tau_gradient_from_another_layer_is_caught():
    problem, result = prepare(Case(granularity="layer", tau0=1e-5))
    grads = analytic_gradients(result)
    grads["tau_1"], grads["tau_2"] = grads["tau_2"], grads["tau_1"]
    rows = check_gradients(problem, grads, [thr.t for thr in result.threshold], result.dt_dr)
    assert {row.name for row in rows if row.status == "FAIL"} == {"tau_1", "tau_2"}


def test_each_layer_gets_its_own_r_tau_and_band():
    case = Case(granularity="layer", tau0=1e-5, r=0.5, r_spread=0.1)
    problem = make_problem(case)
    assert problem.r == pytest.approx((0.4, 0.5, 0.6))  # r_l = r + r_spread·(l − 2), L = 3
    base = make_problem_weights(case)
    for W, W0, tau in zip(problem.weights, base, problem.tau):
        assert tau == pytest.approx(1e-5 * np.std(W0))  # τ_l = τ0 × std(initial W_l)
    _, result = prepare(case)
    for z, thr in zip(result.logits, result.threshold):
        # the placed logits are within the band of that layer's own t_l (to the placement tolerance)
        assert np.count_nonzero(np.abs(z) <= BAND_Z + BAND_Z_TOL * 10) >= 2


def make_problem_weights(case):
    """The case's initial weights, before any band placement."""
    return make_problem(replace(case, granularity="global", band=0)).weights


def test_r_spread_must_keep_every_r_l_in_range():
    with pytest.raises(ValueError, match="r_3"):
        Case(granularity="layer", r=0.95, r_spread=0.1)
    assert layer_ratios(Case(granularity="layer", layers=(4, 3, 2), r=0.3, r_spread=0.2)) == pytest.approx((0.2, 0.4))


def test_each_case_is_prepared_in_its_own_granularity():
    """One entry point: a global case gets one group of every layer with scalar r, τ and t; a
    layer-wise case one group per layer, with r, τ and t per layer (never the other's form)."""
    problem, result = prepare(Case())
    assert problem.grouping is None and result.grouping is None
    assert isinstance(problem.r, float) and isinstance(problem.tau, float)
    assert isinstance(result.threshold.t, float) and isinstance(result.grad_tau, float)
    problem, result = prepare(Case(granularity="layer"))
    assert problem.grouping == result.grouping == Grouping.of("layer", 3)
    assert len(problem.r) == len(problem.tau) == len(result.threshold) == result.grad_tau.size == 3


def test_cli_layer_smoothed_passes_with_every_per_layer_row(capsys):
    assert main(["gradcheck", "--granularity", "layer", "--threshold", "smoothed", "--lam", "10", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    for l in (1, 2, 3):
        for name in ("tau", "t", "r", "dt/dr"):
            assert rows[f"{name}_{l}"]["status"] == "pass"


def test_cli_r_spread_needs_the_layer_granularity(capsys):
    assert main(["gradcheck", "--r-spread", "0.2"]) == 2
    assert "--r-spread applies only with --granularity layer" in capsys.readouterr().err
