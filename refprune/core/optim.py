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
# The training steps flush the moments every FLUSH_PERIOD Adam steps (one pass
# per moment spread over that many steps); see flush_level for why nothing in
# between can decay into the subnormal range.
FLUSH_PERIOD = 16


@dataclass
class AdamState:
    """First and second moments of one parameter group and its step count."""

    lr: float
    m: list = field(default_factory=list)
    v: list = field(default_factory=list)
    step: int = 0
    scratch: list = field(default_factory=list)  # reusable buffers, no state


def adam_init(params, lr: float) -> AdamState:
    """Zero moments shaped like ``params`` (a list of arrays)."""
    check_positive(lr, "lr")
    return AdamState(lr=lr, m=[np.zeros_like(p) for p in params], v=[np.zeros_like(p) for p in params])


def adam_moments_step(p, g, m, v, tmp, step: int, lr: float) -> None:
    """The Adam update of one array (or any slice of one), in place.

    ``tmp`` is a scratch array of the same shape.
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


def flush_level(dtype) -> float:
    """Moments below this magnitude are set to 0: tiny/eps of the dtype (2e-31 in float32).

    A moment of a weight whose gradient is exactly 0 decays by β1 (first) or
    β2 (second moment) per step. Flushed every ``FLUSH_PERIOD`` = 16 steps at
    tiny/eps (tiny = ``np.finfo(dtype).tiny``, the smallest normal number), it
    stays above tiny/eps·β1^16 ≈ 0.18·tiny/eps between flushes: never
    subnormal, and neither is the update step_size·m/(sqrt(v̂) + ε) for any
    sqrt(v̂) below lr/eps (float32 and lr 1e-3: 8e3). Effect of one flush on
    the parameter: at most lr/(1 − β1^k)·(tiny/eps)/ε·1/(1 − β1) over all
    later steps (float32: 2e-25 at lr 1e-3), and on the denominator at most
    sqrt(tiny/eps) = 4e-16 against ε = 1e-8 — far below an ulp of any normal
    weight, so a float32 or float64 run is unchanged at its precision.
    """
    info = np.finfo(dtype)
    return float(info.tiny) / float(info.eps)


def gradient_flush_level(dtype) -> float:
    """Gradients below this magnitude are set to 0 on the training path: sqrt(tiny/(1 − β2)).

    Below it (float32: 3.4e-18) the term (1 − β2)·g² of Adam's second moment
    is subnormal. Flushing such a gradient moves the weight by at most
    lr·level/ε per step (float32, lr 1e-3: 3.4e-13), far below an ulp of any
    weight above 1e-5.
    """
    return float(np.sqrt(float(np.finfo(dtype).tiny) / (1.0 - BETA2)))


def flush_subnormals(x: np.ndarray, level: float, scratch: np.ndarray) -> None:
    """Set to 0, in place, every element of ``x`` with magnitude below ``level``.

    ``scratch`` is a buffer shaped like ``x`` (its contents are overwritten).
    NumPy offers no flush-to-zero mode (FTZ/DAZ are CPU flags it neither sets
    nor exposes), so this is done explicitly.
    """
    np.abs(x, out=scratch)
    np.copyto(x, 0, where=scratch < level)


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
    """
    state.step += 1
    if not state.scratch:
        state.scratch = [np.empty_like(m) for m in state.m]
    for p, g, m, v, tmp in zip(params, grads, state.m, state.v, state.scratch):
        adam_moments_step(p, g, m, v, tmp, state.step, state.lr)


def adam_scalar(value: float, grad: float, state: AdamState, dtype=np.float64) -> float:
    """One Adam step for a scalar parameter (r or τ); returns the new value."""
    if not state.m:
        state.m, state.v = [np.zeros((), dtype)], [np.zeros((), dtype)]
    p = np.array(value, dtype)
    adam_update([p], [np.array(grad, dtype)], state)
    return float(p)


def clamp_tau(tau: float) -> float:
    """τ ← max(τ, 1e-6), applied after every step (thesis §2.5)."""
    return max(tau, TAU_MIN)


def clamp_ratio(r: float) -> float:
    """r ← min(max(r, 0), 0.9999), applied after every step (METHOD §4)."""
    return min(max(r, 0.0), R_MAX)
