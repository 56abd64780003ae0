"""Losses with their gradients, and the regression metric R².

Each loss returns ``(value, dpred)``: the mean loss over the batch and its
gradient with respect to the network output.
"""

from __future__ import annotations

import numpy as np

LOSSES = ("ce", "mse")


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray):
    """Mean softmax cross-entropy and its gradient.

    Parameters
    ----------
    logits : ndarray, shape (N, C)
    labels : ndarray of int, shape (N,)
        Class indices in ``[0, C)``.

    Returns
    -------
    loss : float
        ``-(1/N) Σ_i log softmax(logits_i)[labels_i]``.
    dlogits : ndarray, shape (N, C)
        ``(softmax(logits) - onehot(labels)) / N``.

    Notes
    -----
    The log-sum-exp is shifted by the row maximum, so no exponent overflows.

    Examples
    --------
    Two equal logits: the loss is log 2 and the gradient ±1/2:

    >>> import numpy as np
    >>> from refprune.core.losses import softmax_cross_entropy
    >>> loss, dlogits = softmax_cross_entropy(np.array([[3.0, 3.0]]), np.array([0]))
    >>> round(loss, 6), dlogits.tolist()
    (0.693147, [[-0.5, 0.5]])
    >>> round(softmax_cross_entropy(np.array([[1000.0, 0.0]]), np.array([1]))[0], 6)   # no overflow
    1000.0
    """
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_probs = shifted - log_norm
    rows = np.arange(n)
    loss = -log_probs[rows, labels].mean()
    dlogits = np.exp(log_probs)
    dlogits[rows, labels] -= 1
    dlogits /= n
    return float(loss), dlogits


def mean_squared_error(pred: np.ndarray, target: np.ndarray):
    """Mean squared error over all entries and its gradient (thesis eq. (2.27)).

    Parameters
    ----------
    pred, target : ndarray, shape (N, K)

    Returns
    -------
    loss : float
        ``mean((pred - target)²)``, as PyTorch's ``MSELoss()``.
    dpred : ndarray, shape (N, K)
        ``2 (pred - target) / (N K)``.

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.core.losses import mean_squared_error
    >>> loss, dpred = mean_squared_error(np.array([[1.0], [3.0]]), np.zeros((2, 1)))
    >>> loss, dpred.tolist()   # (1 + 9)/2; 2·(1, 3)/2
    (5.0, [[1.0], [3.0]])
    """
    diff = pred - target
    loss = np.mean(diff * diff)
    return float(loss), (2.0 / diff.size) * diff


def loss_and_grad(kind: str, pred: np.ndarray, target: np.ndarray):
    """Dispatch to :func:`softmax_cross_entropy` (``"ce"``) or :func:`mean_squared_error` (``"mse"``).

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.core.losses import loss_and_grad
    >>> loss_and_grad("mse", np.array([[1.0], [3.0]]), np.zeros((2, 1)))[0]
    5.0
    >>> loss_and_grad("l1", np.zeros((1, 1)), np.zeros((1, 1)))
    Traceback (most recent call last):
        ...
    ValueError: loss must be one of ['ce', 'mse'], got 'l1'
    """
    if kind == "ce":
        return softmax_cross_entropy(pred, target)
    if kind == "mse":
        return mean_squared_error(pred, target)
    raise ValueError(f"loss must be one of {list(LOSSES)}, got {kind!r}")


def r2_score(pred: np.ndarray, target: np.ndarray) -> float:
    """Coefficient of determination ``1 - MSE / Var(y)`` (thesis eqs. (2.26)–(2.28)).

    Var uses 1/n (the biased estimator), as the thesis does. A constant target
    (Var = 0) raises ``ValueError`` instead of returning inf or NaN.

    Parameters
    ----------
    pred, target : ndarray, same shape

    Returns
    -------
    float

    Examples
    --------
    A perfect fit scores 1, predicting the mean scores 0:

    >>> import numpy as np
    >>> from refprune.core.losses import r2_score
    >>> y = np.array([1.0, 2.0, 3.0])
    >>> r2_score(y, y), r2_score(np.full(3, 2.0), y)
    (1.0, 0.0)
    """
    mse = np.mean((pred - target) ** 2)  # thesis eq. (2.27)
    var = np.mean((target - target.mean()) ** 2)  # thesis eq. (2.28)
    if var == 0:
        raise ValueError("target is constant: R² is undefined (Var(y) = 0)")
    return float(1.0 - mse / var)  # thesis eq. (2.26)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy: fraction of rows whose arg-max equals the label.

    Parameters
    ----------
    logits : ndarray, shape (N, C)
    labels : ndarray of int, shape (N,)

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.core.losses import accuracy
    >>> round(accuracy(np.array([[2.0, 1.0], [0.0, 1.0], [3.0, 0.0]]), np.array([0, 0, 0])), 6)
    0.666667
    """
    return float(np.mean(np.argmax(logits, axis=1) == labels))
