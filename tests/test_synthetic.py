"""Tests of the synthetic task (thesis §3.1, eq. (3.1))."""

import math

import numpy as np
import pytest

from refprune.data import synthetic
from refprune.data.synthetic import (
    DEFAULT_BATCH_SIZE,
    N_POINTS,
    make_synthetic,
    split_indices,
    target_function,
)

# eq. (3.1) in numpy against the same formula in plain math: float64 rounding only.
SAME_FORMULA_RTOL = 1e-12
# Absolute floor where h is ~0 (near x = 0), and for the odd symmetry and the rescaled grid:
# a few ulp of values of order 1.
NEAR_ZERO_ATOL = 1e-15
# Min-max normalisation of h to [0, 10]: a few ulp of 10 through the division.
NORMALISED_ATOL = 1e-12
# At x = 0.95 the window is below σ(23) − σ(15) < 4e-7 for τ_w <= 0.05 (eq. (3.1)).
WINDOW_BOUND = 4e-7


def h_by_hand(x: float, alpha: float, tau: float = 0.05) -> float:
    """Thesis eq. (3.1) written out with scalar ``math`` functions only.

    Independent of the module's vectorised code: logistic as 1/(1 + e^(−z)),
    no scipy, no NumPy.
    """
    sig = lambda z: 1.0 / (1.0 + math.exp(-z))  # noqa: E731
    window = sig((x + 0.2) / tau) - sig((x - 0.2) / tau)
    return math.sin(alpha * x) * window * math.exp(-x * x) + x**3 * math.cos(alpha * x)


# (x, alpha): expected values come from h_by_hand above, i.e. from eq. (3.1)
# evaluated by a separate plain-math expression.
POINTS = [(0.1, 3), (-0.5, 20), (1.0, 1), (0.2, 25), (-0.05, 7), (0.73, 21)]


@pytest.mark.parametrize("x, alpha", POINTS)
def test_target_matches_hand_computation(x, alpha):
    got = target_function(np.array([x]), alpha)[0]
    assert got == pytest.approx(h_by_hand(x, alpha), rel=SAME_FORMULA_RTOL, abs=NEAR_ZERO_ATOL)


def test_target_known_closed_forms():
    # h(0) = sin(0)·… + 0 = 0 exactly, for any α (eq. (3.1)).
    assert target_function(0.0, 13) == 0.0
    # At x = 1 the window σ(24) − σ(16) = 1.125…e-7 is tiny, so h(1; α) ≈ cos α
    # (eq. (3.1)); the difference is the window term sin(α)·(σ(24) − σ(16))/e.
    window = 1 / (1 + math.exp(-24)) - 1 / (1 + math.exp(-16))
    expected = math.sin(4) * window * math.exp(-1) + math.cos(4)
    assert target_function(1.0, 4) == pytest.approx(expected, rel=SAME_FORMULA_RTOL)


def test_target_is_odd_and_keeps_shape():
    x = np.linspace(-1, 1, 41).reshape(41, 1)
    h = target_function(x, 9)
    assert h.shape == (41, 1) and h.dtype == np.float64
    np.testing.assert_allclose(target_function(-x, 9), -h, rtol=0, atol=NEAR_ZERO_ATOL)


def test_target_tau_w_changes_window_only():
    # At x = 0.95 the window is below σ(23) − σ(15) < 4e-7 for τ_w <= 0.05, so
    # only the drift term x³·cos(αx) remains (eq. (3.1)).
    x = np.array([0.95])
    drift = 0.95**3 * math.cos(5 * 0.95)
    for tau in (0.05, 0.01):
        assert target_function(x, 5, tau_w=tau)[0] == pytest.approx(drift, abs=WINDOW_BOUND)
    assert target_function(0.1, 5, tau_w=0.05) != target_function(0.1, 5, tau_w=0.2)


@pytest.mark.parametrize("bad", [float("nan"), "a", [1, 2]])
def test_target_bad_alpha(bad):
    with pytest.raises(ValueError, match="alpha"):
        target_function(0.1, bad)


@pytest.mark.parametrize("bad", [0.0, -0.05, float("inf")])
def test_target_bad_tau(bad):
    with pytest.raises(ValueError, match="tau_w"):
        target_function(0.1, 3, tau_w=bad)


def test_target_bad_x():
    with pytest.raises(ValueError, match="x"):
        target_function([0.1, float("nan")], 3)


@pytest.fixture(scope="module")
def data20():
    return make_synthetic(20)


def test_shapes_dtypes_and_sizes(data20):
    d = data20
    assert d.x_train.shape == d.y_train.shape == (800, 1)
    assert d.x_val.shape == d.y_val.shape == (200, 1)
    assert d.x_all.shape == d.y_all.shape == (N_POINTS, 1)
    for a in (d.x_train, d.y_train, d.x_val, d.y_val, d.x_all, d.y_all):
        assert a.dtype == np.float64
        assert not a.flags.writeable
    assert d.alpha == 20 and d.n_points == N_POINTS and d.tau_w == 0.05
    assert DEFAULT_BATCH_SIZE == 64


def test_inputs_are_rescaled_grid(data20):
    u = data20.x_all[:, 0]
    assert u.min() == 0.0 and u.max() == 1.0
    np.testing.assert_allclose(u, np.linspace(0, 1, N_POINTS), rtol=0, atol=NEAR_ZERO_ATOL)
    for a in (data20.x_train, data20.x_val):
        assert np.all((a >= 0) & (a <= 1))


def test_outputs_normalised_to_0_10(data20):
    y = data20.y_all[:, 0]
    assert y.min() == 0.0 and y.max() == 10.0  # exactly
    both = np.concatenate([data20.y_train, data20.y_val])
    assert both.min() == 0.0 and both.max() == 10.0
    # y is the min-max normalised h on the [-1, 1] grid, times 10 (thesis §3.1).
    h = np.array([h_by_hand(x, 20) for x in np.linspace(-1, 1, N_POINTS)])
    np.testing.assert_allclose(y, 10 * (h - h.min()) / (h.max() - h.min()), atol=NORMALISED_ATOL)


def test_train_val_rows_are_grid_rows(data20):
    d = data20
    np.testing.assert_array_equal(d.x_train, d.x_all[d.train_index])
    np.testing.assert_array_equal(d.y_train, d.y_all[d.train_index])
    np.testing.assert_array_equal(d.x_val, d.x_all[d.val_index])
    np.testing.assert_array_equal(d.y_val, d.y_all[d.val_index])


def test_split_disjoint_and_covering(data20):
    idx = np.concatenate([data20.train_index, data20.val_index])
    np.testing.assert_array_equal(np.sort(idx), np.arange(N_POINTS))


def test_split_is_fixed(data20):
    again = make_synthetic(20)
    np.testing.assert_array_equal(again.train_index, data20.train_index)
    np.testing.assert_array_equal(again.y_train, data20.y_train)
    # Same points in the same roles for every α (the split never depends on α).
    other = make_synthetic(1)
    np.testing.assert_array_equal(other.x_train, data20.x_train)
    np.testing.assert_array_equal(other.x_val, data20.x_val)
    assert not np.array_equal(other.y_train, data20.y_train)


def test_split_changes_with_split_seed(data20):
    other = make_synthetic(20, seed=synthetic.SPLIT_SEED + 1)
    assert not np.array_equal(np.sort(other.val_index), np.sort(data20.val_index))


def test_training_order_is_shuffled(data20):
    # The first batch is spread over the interval, not the left end of it.
    first = data20.x_train[:DEFAULT_BATCH_SIZE, 0]
    assert first.min() < 0.2 and first.max() > 0.8


def test_integral_float_alpha_accepted():
    np.testing.assert_array_equal(make_synthetic(3.0).y_all, make_synthetic(3).y_all)


def test_custom_sizes():
    d = make_synthetic(5, n_points=11, val_fraction=0.3)
    assert d.x_train.shape == (8, 1) and d.x_val.shape == (3, 1)  # round(3.3) = 3


@pytest.mark.parametrize("bad", [2.5, -1, "7", True, float("nan"), None])
def test_bad_alpha(bad):
    with pytest.raises(ValueError, match="alpha"):
        make_synthetic(bad)


@pytest.mark.parametrize("bad", [1, 0, -5, 10.5, "100"])
def test_bad_n_points(bad):
    with pytest.raises(ValueError, match="n_points"):
        make_synthetic(3, n_points=bad)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5, float("nan"), "0.2"])
def test_bad_val_fraction(bad):
    with pytest.raises(ValueError, match="val_fraction"):
        make_synthetic(3, val_fraction=bad)


def test_empty_part_names_both_arguments():
    with pytest.raises(ValueError, match="val_fraction.*n_points"):
        make_synthetic(3, n_points=2, val_fraction=0.2)  # round(0.4) = 0 validation points


@pytest.mark.parametrize("bad", [-1, 1.5])
def test_bad_seed(bad):
    with pytest.raises(ValueError, match="seed"):
        make_synthetic(3, seed=bad)


def test_split_indices_requires_generator():
    with pytest.raises(ValueError, match="rng"):
        split_indices(10, 0.2, 0)
