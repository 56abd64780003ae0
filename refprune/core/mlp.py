"""A multilayer perceptron with explicit forward and backward passes.

Linear layers with ReLU between them and no activation on the output
(METHOD §1). Parameters are two plain lists of arrays, ``weights[l]`` of shape
``(fan_in, fan_out)`` and ``biases[l]`` of shape ``(fan_out,)``; there is no
hidden state. During LRP training the forward pass receives the *masked*
weights ŵ = m(w)·w.
"""

from __future__ import annotations

import numpy as np

from refprune.core.layers import linear_backward, linear_forward, relu_backward, relu_forward
from refprune.core.validation import FLOAT_DTYPES, check_array


def check_layer_sizes(layer_sizes) -> tuple[int, ...]:
    """Return layer sizes as a tuple of ints >= 1, at least two of them, else raise.

    Examples
    --------
    >>> from refprune.core.mlp import check_layer_sizes
    >>> check_layer_sizes([784, 512, 512, 10])
    (784, 512, 512, 10)
    >>> check_layer_sizes([3])
    Traceback (most recent call last):
        ...
    ValueError: layer_sizes needs an input and an output size, got (3,)
    """
    try:
        sizes = tuple(int(s) for s in layer_sizes)
    except (TypeError, ValueError):
        raise ValueError(f"layer_sizes must be a sequence of integers, got {layer_sizes!r}") from None
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes needs an input and an output size, got {sizes}")
    if any(s < 1 for s in sizes):
        raise ValueError(f"layer_sizes must all be >= 1 (no empty layers), got {sizes}")
    return sizes


def init_mlp(layer_sizes, rng: np.random.Generator, dtype=np.float64):
    """PyTorch-default initialisation of an MLP.

    Parameters
    ----------
    layer_sizes : sequence of int, length L + 1
        ``(D_in, H_1, ..., H_{L-1}, D_out)``.
    rng : numpy.random.Generator
        Source of every random draw.
    dtype : {numpy.float64, numpy.float32}

    Returns
    -------
    weights : list of ndarray, ``weights[l]`` of shape (sizes[l], sizes[l+1])
    biases : list of ndarray, ``biases[l]`` of shape (sizes[l+1],)

    Notes
    -----
    As ``torch.nn.Linear``'s default: W and b uniform on
    ``[-1/sqrt(fan_in), +1/sqrt(fan_in)]`` (METHOD §1).

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.core.mlp import init_mlp
    >>> weights, biases = init_mlp([4, 3, 2], np.random.default_rng(0))
    >>> [W.shape for W in weights], [b.shape for b in biases]
    ([(4, 3), (3, 2)], [(3,), (2,)])
    >>> all(np.abs(W).max() <= 1 / np.sqrt(W.shape[0]) for W in weights)
    True
    """
    sizes = check_layer_sizes(layer_sizes)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    dtype = np.dtype(dtype)
    if dtype.type not in FLOAT_DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    weights, biases = [], []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / np.sqrt(fan_in)
        weights.append(rng.uniform(-bound, bound, size=(fan_in, fan_out)).astype(dtype))
        biases.append(rng.uniform(-bound, bound, size=fan_out).astype(dtype))
    return weights, biases


def check_mlp(weights, biases, x=None):
    """Check that weights, biases (and optionally a batch x) fit together.

    Raises ``ValueError`` naming the offending argument; returns the arrays
    converted with :func:`refprune.core.validation.check_array`.

    Parameters
    ----------
    weights, biases : lists of array_like
        ``weights[l]`` of shape (D_l, D_{l+1}), ``biases[l]`` of shape (D_{l+1},).
    x : array_like, shape (N, D_0), optional

    Returns
    -------
    weights, biases : lists of ndarray
    x : ndarray, only if given

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.core.mlp import check_mlp
    >>> W, b = check_mlp([np.ones((2, 3))], [np.zeros(3)])
    >>> check_mlp([np.ones((2, 3))], [np.zeros(2)])
    Traceback (most recent call last):
        ...
    ValueError: biases[0] has shape (2,), expected (3,) to match weights[0] (2, 3)
    """
    if len(weights) == 0:
        raise ValueError("weights must hold at least one layer")
    if len(weights) != len(biases):
        raise ValueError(f"weights has {len(weights)} layers but biases has {len(biases)}")
    W_out = [check_array(W, f"weights[{l}]", ndim=2) for l, W in enumerate(weights)]
    b_out = [check_array(b, f"biases[{l}]", ndim=1) for l, b in enumerate(biases)]
    for l, (W, b) in enumerate(zip(W_out, b_out)):
        if b.shape[0] != W.shape[1]:
            raise ValueError(f"biases[{l}] has shape {b.shape}, expected ({W.shape[1]},) to match weights[{l}] {W.shape}")
        if l > 0 and W.shape[0] != W_out[l - 1].shape[1]:
            raise ValueError(f"weights[{l}] has shape {W.shape}, expected {W_out[l - 1].shape[1]} rows to follow weights[{l - 1}] {W_out[l - 1].shape}")
    if x is None:
        return W_out, b_out
    x = check_array(x, "x", ndim=2)
    if x.shape[1] != W_out[0].shape[0]:
        raise ValueError(f"x has {x.shape[1]} features but weights[0] expects {W_out[0].shape[0]}")
    return W_out, b_out, x


def mlp_forward(x: np.ndarray, weights, biases):
    """Forward pass: Linear → ReLU → ... → Linear (no output activation).

    Parameters
    ----------
    x : ndarray, shape (N, D_in)
    weights, biases : lists of ndarray
        See :func:`init_mlp`; pass the masked weights ŵ for LRP.

    Returns
    -------
    out : ndarray, shape (N, D_out)
    cache : list
        Per-layer caches for :func:`mlp_backward`.

    Examples
    --------
    A 1-2-1 network that computes |x| = relu(x) + relu(−x):

    >>> import numpy as np
    >>> from refprune.core.mlp import mlp_forward
    >>> weights = [np.array([[1.0, -1.0]]), np.array([[1.0], [1.0]])]
    >>> biases = [np.zeros(2), np.zeros(1)]
    >>> out, cache = mlp_forward(np.array([[-2.0], [3.0]]), weights, biases)
    >>> out.tolist()
    [[2.0], [3.0]]
    """
    caches = []
    h = x
    last = len(weights) - 1
    for l, (W, b) in enumerate(zip(weights, biases)):
        h, lin_cache = linear_forward(h, W, b)
        relu_cache = None
        if l < last:
            h, relu_cache = relu_forward(h)
        caches.append((lin_cache, relu_cache))
    return h, caches


def mlp_backward(dout: np.ndarray, cache, dweights_out=None):
    """Backward pass of :func:`mlp_forward`.

    Parameters
    ----------
    dout : ndarray, shape (N, D_out)
        ∂L/∂out.
    cache : list
        From :func:`mlp_forward`.
    dweights_out : list of ndarray, optional
        Arrays (shaped like the weights) to write ∂L/∂W into.

    Returns
    -------
    dweights : list of ndarray
        ∂L/∂W for each layer — with masked weights in the forward pass, this is
        g = ∂L/∂ŵ of METHOD §3.
    dbiases : list of ndarray
        ∂L/∂b for each layer.

    Examples
    --------
    The |x| network of :func:`mlp_forward` with ∂L/∂out = 1: each input reaches the
    output through the one hidden unit its sign switches on.

    >>> import numpy as np
    >>> from refprune.core.mlp import mlp_backward, mlp_forward
    >>> weights = [np.array([[1.0, -1.0]]), np.array([[1.0], [1.0]])]
    >>> out, cache = mlp_forward(np.array([[-2.0], [3.0]]), weights, [np.zeros(2), np.zeros(1)])
    >>> dweights, dbiases = mlp_backward(np.ones((2, 1)), cache)
    >>> [dW.tolist() for dW in dweights], [db.tolist() for db in dbiases]
    ([[[3.0, -2.0]], [[3.0], [2.0]]], [[1.0, 1.0], [2.0]])
    """
    n_layers = len(cache)
    dweights, dbiases = [None] * n_layers, [None] * n_layers
    d = dout
    for l in reversed(range(n_layers)):
        lin_cache, relu_cache = cache[l]
        if relu_cache is not None:
            d = relu_backward(d, relu_cache)
        out = None if dweights_out is None else dweights_out[l]
        # the input gradient of the first layer is not needed
        d, dweights[l], dbiases[l] = linear_backward(d, lin_cache, need_dx=l > 0, dW_out=out)
    return dweights, dbiases


def relu_pattern(cache) -> list[np.ndarray]:
    """The ReLU on/off pattern of every hidden layer, from a forward cache.

    Used by the gradient oracle to detect a finite-difference step that crossed
    a ReLU kink.

    Parameters
    ----------
    cache : list
        From :func:`mlp_forward`.

    Returns
    -------
    list of ndarray of bool, one of shape (N, H_l) per hidden layer

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.core.mlp import mlp_forward, relu_pattern
    >>> weights = [np.array([[1.0, -1.0]]), np.array([[1.0], [1.0]])]
    >>> _, cache = mlp_forward(np.array([[-2.0], [3.0]]), weights, [np.zeros(2), np.zeros(1)])
    >>> [p.tolist() for p in relu_pattern(cache)]
    [[[False, True], [True, False]]]
    """
    return [relu_cache for _, relu_cache in cache if relu_cache is not None]
