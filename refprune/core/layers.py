"""Linear and ReLU layers as pure forward/backward functions.

Each layer is a pair ``forward(x, ...) -> (out, cache)`` and
``backward(dout, cache) -> grads``. Nothing is stored on an object; the cache
holds exactly what the backward pass needs.

Layout: a weight matrix has shape ``(fan_in, fan_out)`` and a layer computes
``x @ W + b``. PyTorch's ``nn.Linear.weight`` has shape ``(fan_out, fan_in)``,
so it is ``W.T`` here.
"""

from __future__ import annotations

import numpy as np


def linear_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray):
    """Affine map ``out = x @ W + b``.

    Parameters
    ----------
    x : ndarray, shape (N, D)
        Batch of inputs.
    W : ndarray, shape (D, M)
        Weights (the masked weights ŵ during LRP training).
    b : ndarray, shape (M,)
        Biases.

    Returns
    -------
    out : ndarray, shape (N, M)
    cache : tuple
        ``(x, W)`` for :func:`linear_backward`.

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.core.layers import linear_forward
    >>> x, W, b = np.array([[1.0, 2.0]]), np.array([[1.0], [1.0]]), np.array([0.5])
    >>> out, cache = linear_forward(x, W, b)
    >>> out.tolist()   # 1 + 2 + 0.5
    [[3.5]]
    """
    out = x @ W + b
    return out, (x, W)


def linear_backward(dout: np.ndarray, cache, need_dx: bool = True, dW_out=None):
    """Gradients of the affine map.

    Parameters
    ----------
    dout : ndarray, shape (N, M)
        Upstream gradient ∂L/∂out.
    cache : tuple
        From :func:`linear_forward`.
    need_dx : bool
        Compute dx (not needed for a network's first layer).
    dW_out : ndarray, shape (D, M), optional
        Write dW here instead of allocating.

    Returns
    -------
    dx : ndarray, shape (N, D), or None if not ``need_dx``
    dW : ndarray, shape (D, M)
    db : ndarray, shape (M,)

    Notes
    -----
    dx = dout·Wᵀ, dW = xᵀ·dout, db = Σ_rows dout.

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.core.layers import linear_backward, linear_forward
    >>> x, W, b = np.array([[1.0, 2.0]]), np.array([[1.0], [1.0]]), np.array([0.5])
    >>> _, cache = linear_forward(x, W, b)
    >>> dx, dW, db = linear_backward(np.ones((1, 1)), cache)
    >>> dx.tolist(), dW.tolist(), db.tolist()
    ([[1.0, 1.0]], [[1.0], [2.0]], [1.0])
    """
    x, W = cache
    dx = dout @ W.T if need_dx else None
    dW = np.matmul(x.T, dout, out=dW_out)
    db = dout.sum(axis=0)
    return dx, dW, db


def relu_forward(x: np.ndarray):
    """Rectified linear unit ``max(x, 0)``.

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    out : ndarray, same shape as x
    cache : ndarray of bool
        Where ``x > 0`` (the derivative at exactly 0 is taken as 0, as PyTorch does).

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.core.layers import relu_forward
    >>> out, active = relu_forward(np.array([-1.0, 0.0, 2.0]))
    >>> out.tolist(), active.tolist()
    ([0.0, 0.0, 2.0], [False, False, True])
    """
    active = x > 0
    return np.where(active, x, 0).astype(x.dtype, copy=False), active


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """Gradient of the ReLU: ``dout`` where the input was positive, else 0.

    Parameters
    ----------
    dout : ndarray, any shape
    cache : ndarray of bool, same shape
        From :func:`relu_forward`.

    Returns
    -------
    dx : ndarray, same shape as dout

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.core.layers import relu_backward, relu_forward
    >>> _, active = relu_forward(np.array([-1.0, 0.0, 2.0]))
    >>> relu_backward(np.ones(3), active).tolist()
    [0.0, 0.0, 1.0]
    """
    return dout * cache
