"""Adam, written out, with PyTorch's semantics (``torch.optim.Adam``, no weight decay).

For each parameter p with gradient g, at step k = 1, 2, ...:

    m ← β1·m + (1 − β1)·g
    v ← β2·v + (1 − β2)·g²
    p ← p − (lr / (1 − β1^k)) · m / (sqrt(v) / sqrt(1 − β2^k) + ε)

LRP trains three groups with their own learning rates (thesis §2.5, Table 4.1):
weights and biases, r, and τ. Each group is an :class:`AdamState`; updates are
applied in place to the parameter arrays and to the state (documented, not
hidden: the caller owns both).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from refprune.core.validation import check_positive

BETA1 = 0.9
BETA2 = 0.999
EPS = 1e-8
TAU_MIN = 1e-6  # τ clamp after every step (thesis §2.5)
R_MAX = 0.9999  # r clamp after every step (METHOD §4)


@dataclass
class AdamState:
    """First and second moments of one parameter group and its step count.

    Attributes
    ----------
    lr : float
        The group's learning rate.
    m, v : list of ndarray
        First and second moments, one per parameter array, shaped like it.
    step : int
        k, the number of steps taken.
    scratch : list of ndarray
        Reusable buffers (no state).

    Examples
    --------
    >>> from refprune.core.optim import AdamState
    >>> state = AdamState(lr=1e-4)       # r or τ: moments made by adam_scalar
    >>> state.step, state.m
    (0, [])
    """

    lr: float
    m: list = field(default_factory=list)
    v: list = field(default_factory=list)
    step: int = 0


def adam_init(params, lr: float) -> AdamState:
    """Zero moments shaped like ``params`` (a list of arrays).

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.core.optim import adam_init
    >>> state = adam_init([np.ones(3), np.ones((2, 2))], lr=1e-3)
    >>> state.step, [m.shape for m in state.m], float(state.v[0].sum())
    (0, [(3,), (2, 2)], 0.0)
    """
    check_positive(lr, "lr")
    return AdamState(lr=lr, m=[np.zeros_like(p) for p in params], v=[np.zeros_like(p) for p in params])


def adam_moments_step(p, g, m, v, tmp, step: int, lr: float) -> None:
    """The Adam update of one array (or any slice of one), in place.

    Parameters
    ----------
    p, g, m, v, tmp : ndarray, one shape
        Parameter, gradient, moments (updated in place) and a scratch array.
    step : int
        k >= 1, this step's number (for the bias corrections).
    lr : float

    Examples
    --------
    The first step moves each entry by lr against the sign of its gradient, since
    m̂ = g and sqrt(v̂) = |g|:

    >>> import numpy as np
    >>> from refprune.core.optim import adam_moments_step
    >>> p, g = np.array([1.0, 1.0]), np.array([0.5, -3.0])
    >>> m, v, tmp = np.zeros(2), np.zeros(2), np.empty(2)
    >>> adam_moments_step(p, g, m, v, tmp, step=1, lr=0.1)
    >>> np.round(p, 6).tolist()
    [0.9, 1.1]
    """
    dtype = p.dtype.type
    step_size = lr / (1.0 - BETA1 ** step)
    bc2_sqrt = np.sqrt(1.0 - BETA2 ** step)
    m *= dtype(BETA1)
    np.multiply(g, dtype(1.0 - BETA1), out=tmp)
    m += tmp                       # m ← β1·m + (1 − β1)·g
    v *= dtype(BETA2)
    np.multiply(g, g, out=tmp)
    tmp *= dtype(1.0 - BETA2)
    v += tmp                       # v ← β2·v + (1 − β2)·g²
    np.sqrt(v, out=tmp)
    tmp /= dtype(bc2_sqrt)
    tmp += dtype(EPS)              # sqrt(v)/sqrt(1 − β2^k) + ε
    np.divide(m, tmp, out=tmp)
    tmp *= dtype(step_size)
    p -= tmp                       # p ← p − lr/(1 − β1^k) · m/(...)


def adam_update(params, grads, state: AdamState) -> None:
    """One Adam step, in place on ``params`` and ``state``.

    Parameters
    ----------
    params : list of ndarray
        Updated in place.
    grads : list of ndarray
        Same shapes as ``params``.
    state : AdamState
        Updated in place.

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.core.optim import adam_init, adam_update
    >>> params = [np.array([1.0, 1.0])]
    >>> state = adam_init(params, lr=0.1)
    >>> adam_update(params, [np.array([0.5, -3.0])], state)   # first step: lr against sign(g)
    >>> state.step, np.round(params[0], 6).tolist()
    (1, [0.9, 1.1])
    """
    state.step += 1
    for p, g, m, v in zip(params, grads, state.m, state.v):
        adam_moments_step(p, g, m, v, np.empty_like(m), state.step, state.lr)


def adam_scalar(value: float, grad: float, state: AdamState, dtype=np.float64) -> float:
    """One Adam step for a scalar parameter (r or τ); returns the new value.

    Parameters
    ----------
    value, grad : float
    state : AdamState
        Its moments are made on the first call; updated in place.
    dtype : numpy dtype
        The precision of the moments and of the step.

    Returns
    -------
    float

    Examples
    --------
    >>> from refprune.core.optim import AdamState, adam_scalar
    >>> state = AdamState(lr=1e-4)
    >>> round(adam_scalar(0.5, 0.01, state), 6)   # r = 0.5 moves down by lr
    0.4999
    """
    if not state.m:
        state.m, state.v = [np.zeros((), dtype)], [np.zeros((), dtype)]
    p = np.array(value, dtype)
    adam_update([p], [np.array(grad, dtype)], state)
    return float(p)


def clamp_tau(tau: float) -> float:
    """τ ← max(τ, 1e-6), applied after every step (thesis §2.5).

    Examples
    --------
    >>> from refprune.core.optim import clamp_tau
    >>> clamp_tau(-0.5), clamp_tau(0.01)
    (1e-06, 0.01)
    """
    return max(tau, TAU_MIN)


def clamp_ratio(r: float) -> float:
    """r ← min(max(r, 0), 0.9999), applied after every step (METHOD §4).

    Examples
    --------
    >>> from refprune.core.optim import clamp_ratio
    >>> clamp_ratio(-0.1), clamp_ratio(0.5), clamp_ratio(1.2)
    (0.0, 0.5, 0.9999)
    """
    return min(max(r, 0.0), R_MAX)
