"""The handwritten MLP: layers, losses and the full backward pass against finite differences."""

import numpy as np
import pytest

from refprune.core.layers import linear_backward, linear_forward, relu_backward, relu_forward
from refprune.core.losses import accuracy, mean_squared_error, r2_score, softmax_cross_entropy
from refprune.core.mlp import check_mlp, init_mlp, mlp_backward, mlp_forward

# Loss values against their definitions written out here: float64 rounding only.
LOSS_VALUE_RTOL = 1e-14
# R² of the mean predictor is 0 up to rounding of values of order 1.
R2_ZERO_ATOL = 1e-15
# Uniform on [-b, b]: std = b/sqrt(3); 400k draws put the sample std within 1% of it.
INIT_STD_RTOL = 1e-2

# Central differences of a smooth float64 function with step 1e-6 have
# truncation error ~1e-12·f''' and round-off ~1e-16/1e-6 = 1e-10 relative to
# |f|; 1e-7 leaves two orders of margin (observed: < 3e-9).
FD_STEP = 1e-6
FD_RTOL = 1e-7


def numeric_grad(f, x):
    """Central-difference gradient of scalar f at array x (float64), the slow reference."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + FD_STEP
        fp = f()
        x[i] = old - FD_STEP
        fm = f()
        x[i] = old
        grad[i] = (fp - fm) / (2 * FD_STEP)
    return grad


def assert_grad_close(analytic, numeric):
    scale = max(np.abs(numeric).max(), 1e-8)
    np.testing.assert_allclose(analytic, numeric, rtol=0, atol=FD_RTOL * scale)


def test_linear_backward_matches_finite_differences():
    rng = np.random.default_rng(0)
    x, W, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2)
    dout = rng.standard_normal((4, 2))
    f = lambda: float(np.sum(linear_forward(x, W, b)[0] * dout))
    dx, dW, db = linear_backward(dout, linear_forward(x, W, b)[1])
    assert_grad_close(dx, numeric_grad(f, x))
    assert_grad_close(dW, numeric_grad(f, W))
    assert_grad_close(db, numeric_grad(f, b))


def test_relu_forward_backward():
    x = np.array([-2.0, -1e-300, 0.0, 1e-300, 3.0])
    out, cache = relu_forward(x)
    np.testing.assert_array_equal(out, [0, 0, 0, 1e-300, 3])
    # derivative taken as 0 at exactly 0, as PyTorch does
    np.testing.assert_array_equal(relu_backward(np.ones(5), cache), [0, 0, 0, 1, 1])


def test_cross_entropy_value_and_gradient():
    rng = np.random.default_rng(1)
    logits, labels = rng.standard_normal((5, 4)), np.array([0, 3, 1, 1, 2])
    loss, d = softmax_cross_entropy(logits, labels)
    # expected value from the definition: -mean(log(exp(l_y) / sum(exp(l))))
    expected = -np.mean([logits[i, y] - np.log(np.sum(np.exp(logits[i]))) for i, y in enumerate(labels)])
    assert loss == pytest.approx(expected, rel=LOSS_VALUE_RTOL)
    assert_grad_close(d, numeric_grad(lambda: softmax_cross_entropy(logits, labels)[0], logits))


def test_cross_entropy_is_finite_for_huge_logits():
    loss, d = softmax_cross_entropy(np.array([[1e4, -1e4, 0.0]]), np.array([1]))
    assert loss == pytest.approx(2e4)  # -log softmax = 1e4 - (-1e4) up to e^{-1e4}
    assert np.all(np.isfinite(d))


def test_mse_value_and_gradient():
    rng = np.random.default_rng(2)
    pred, target = rng.standard_normal((6, 2)), rng.standard_normal((6, 2))
    loss, d = mean_squared_error(pred, target)
    assert loss == pytest.approx(np.mean((pred - target) ** 2), rel=LOSS_VALUE_RTOL)
    assert_grad_close(d, numeric_grad(lambda: mean_squared_error(pred, target)[0], pred))


def test_r2_and_accuracy():
    y = np.array([[1.0], [2.0], [3.0]])
    assert r2_score(y, y) == 1.0
    assert r2_score(np.full_like(y, 2.0), y) == pytest.approx(0.0, abs=R2_ZERO_ATOL)  # predicting the mean
    with pytest.raises(ValueError, match="constant"):
        r2_score(y, np.ones_like(y))
    assert accuracy(np.array([[0, 1.0], [2, 0]]), np.array([1, 1])) == 0.5


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_full_backward_matches_finite_differences(loss):
    rng = np.random.default_rng(3)
    weights, biases = init_mlp((5, 7, 6, 3), rng)
    x = rng.standard_normal((9, 5))
    y = rng.integers(0, 3, 9) if loss == "ce" else rng.standard_normal((9, 3))
    lossfn = softmax_cross_entropy if loss == "ce" else mean_squared_error

    def f():
        return lossfn(mlp_forward(x, weights, biases)[0], y)[0]

    out, cache = mlp_forward(x, weights, biases)
    dW, db = mlp_backward(lossfn(out, y)[1], cache)
    for l in range(3):
        assert_grad_close(dW[l], numeric_grad(f, weights[l]))
        assert_grad_close(db[l], numeric_grad(f, biases[l]))


def test_init_matches_pytorch_default_bounds_and_is_seeded():
    sizes = (784, 512, 10)
    w1, b1 = init_mlp(sizes, np.random.default_rng(7))
    w2, b2 = init_mlp(sizes, np.random.default_rng(7))
    for l, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        bound = 1 / np.sqrt(fan_in)
        assert w1[l].shape == (fan_in, fan_out) and b1[l].shape == (fan_out,)
        assert np.abs(w1[l]).max() <= bound and np.abs(b1[l]).max() <= bound
        assert np.std(w1[l]) == pytest.approx(bound / np.sqrt(3), rel=INIT_STD_RTOL)
        np.testing.assert_array_equal(w1[l], w2[l])
    w32, _ = init_mlp((3, 2), np.random.default_rng(0), np.float32)
    assert w32[0].dtype == np.float32


def test_float32_forward_stays_float32():
    rng = np.random.default_rng(0)
    weights, biases = init_mlp((4, 3, 2), rng, np.float32)
    out, _ = mlp_forward(rng.standard_normal((2, 4)).astype(np.float32), weights, biases)
    assert out.dtype == np.float32


@pytest.mark.parametrize("sizes, match", [((3,), "input and an output"), ((3, 0, 2), "empty layers"),
                                          ("ab", "integers")])
def test_bad_layer_sizes(sizes, match):
    with pytest.raises(ValueError, match=match):
        init_mlp(sizes, np.random.default_rng(0))


def test_init_requires_a_generator():
    with pytest.raises(ValueError, match="rng"):
        init_mlp((3, 2), 0)


def test_check_mlp_names_the_bad_argument():
    rng = np.random.default_rng(0)
    weights, biases = init_mlp((4, 3, 2), rng)
    with pytest.raises(ValueError, match=r"biases\[1\]"):
        check_mlp(weights, [biases[0], np.zeros(5)])
    with pytest.raises(ValueError, match=r"weights\[1\]"):
        check_mlp([weights[0], np.zeros((4, 2))], biases)
    with pytest.raises(ValueError, match="x has 5 features"):
        check_mlp(weights, biases, np.zeros((2, 5)))
    with pytest.raises(ValueError, match="x contains 1 non-finite"):
        check_mlp(weights, biases, np.array([[0, 0, np.nan, 0.0]]))
    with pytest.raises(ValueError, match="at least one layer"):
        check_mlp([], [])
