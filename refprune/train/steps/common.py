"""What every training step shares: the state, its flat buffers, the threshold, forward/backward, Adam.

A step takes the training state and one batch, updates the state in place and
returns the batch's total loss. The state is an explicit object the caller
owns (:class:`TrainState`); nothing is hidden in a layer. The phases here are
the building blocks of :func:`dense_step`, of the exact LRP step
(:mod:`refprune.train.steps.exact`), of the published one
(:mod:`refprune.train.steps.published`) and of ``scripts/bench_step.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from refprune.core.losses import loss_and_grad
from refprune.core.mlp import mlp_backward, mlp_forward
from refprune.core.optim import AdamState, adam_init, adam_moments_step, adam_scalar, clamp_ratio, clamp_tau
from refprune.core.threshold import empirical_threshold
from refprune.train.kernels import (
    FLUSH_PERIOD,
    bracket_scan,
    flush_level,
    flush_subnormals,
    select_in_bracket,
)
from refprune.train.parallel import halves, make_pool, split_run

# Half-width of the selection bracket, relative to t, on the first try; it
# then follows how far t moved in the last step (×BRACKET_GROWTH, floored).
BRACKET_REL_MIN = 1e-3
BRACKET_GROWTH = 4.0
BRACKET_ABS_MIN = 1e-12  # so a zero t still gets a bracket of positive width


@dataclass
class TrainState:
    """Everything that changes during training (arrays updated in place).

    Attributes
    ----------
    weights : list of ndarray
        Per-layer weight matrices, views into ``flat_w`` (one buffer holds
        all n prunable weights, so elementwise work can be split evenly).
    biases : list of ndarray
    flat_w : ndarray, shape (n,)
    r, tau : float
        Trainable pruning ratio and temperature.
    adam_wb, adam_r, adam_tau : AdamState
        Optimiser state of the three groups; ``adam_wb`` holds the moments of
        ``[flat_w] + biases``.
    t : float
        The threshold the last step used (nan for dense).
    bracket : float
        Half-width of the next threshold-selection bracket.
    step : int
        Steps taken.
    variant : object or None
        State of its own that a variant's step keeps between steps (the
        published step's :class:`refprune.train.steps.published.PublishedState`).
    scratch : dict
        Reusable buffers of the hot path (no state).
    pool : ThreadPoolExecutor or None
        Worker thread for elementwise work (:mod:`refprune.train.parallel`).
    """

    weights: list
    biases: list
    flat_w: np.ndarray
    r: float
    tau: float
    adam_wb: AdamState
    adam_r: AdamState
    adam_tau: AdamState
    t: float = float("nan")
    bracket: float = float("nan")
    step: int = 0
    variant: object = None
    scratch: dict = field(default_factory=dict)
    pool: object = None


def layer_views(flat: np.ndarray, shapes) -> list:
    """Views of a flat array shaped like each layer's weights (``shapes``: arrays or shapes)."""
    views, start = [], 0
    for shape in shapes:
        shape = getattr(shape, "shape", shape)
        size = int(np.prod(shape))
        views.append(flat[start:start + size].reshape(shape))
        start += size
    return views


def new_state(weights, biases, r0: float, tau: float, lr: float, lr_r: float, lr_tau: float,
              threads: int | None = None) -> TrainState:
    """Fresh training state with zero Adam moments; the weights are copied into one flat buffer.

    ``threads``: 1 runs everything in the calling thread; 2 lets the
    elementwise phases use a second core; None: as
    :func:`refprune.train.threads.worker_threads` decides, for arrays of at least
    :data:`refprune.train.parallel.PARALLEL_MIN_SIZE` weights.
    """
    flat_w = np.concatenate([W.ravel() for W in weights])
    views = layer_views(flat_w, weights)
    biases = [b.copy() for b in biases]
    return TrainState(weights=views, biases=biases, flat_w=flat_w, r=float(r0), tau=float(tau),
                      adam_wb=adam_init([flat_w] + biases, lr),
                      adam_r=AdamState(lr=lr_r), adam_tau=AdamState(lr=lr_tau),
                      pool=make_pool(threads, flat_w.size))


BUFFER_NAMES = ("a", "m", "s", "z", "tmp", "masked", "g", "dw", "q", "kde")


def buffers(state: TrainState) -> dict:
    """The state's scratch buffers (flat, length n), allocated on first use; ``hard`` is boolean."""
    if not state.scratch:
        n, dtype = state.flat_w.size, state.flat_w.dtype
        state.scratch = {name: np.empty(n, dtype) for name in BUFFER_NAMES}
        state.scratch["hard"] = np.empty(n, bool)
    return state.scratch


def on_halves(state: TrainState, fn):
    """Run ``fn(first_half_slice)`` on the worker and ``fn(second_half_slice)`` here.

    The halves are the same whether or not a worker runs, so sums combined
    from them are too (results do not depend on the thread count).
    """
    first, second = halves(state.flat_w.size)
    return split_run(state.pool, lambda: fn(first), lambda: fn(second))


def magnitudes(weights) -> np.ndarray:
    """|w| of all prunable weights, one flat array in the weights' dtype."""
    return np.abs(np.concatenate([W.ravel() for W in weights]))


def next_bracket(t: float, t_prev: float) -> float:
    """Half-width of the next selection bracket: how far t moved (×BRACKET_GROWTH), floored."""
    moved = abs(t - t_prev) if np.isfinite(t_prev) else 0.0
    return max(BRACKET_GROWTH * moved, BRACKET_REL_MIN * t, BRACKET_ABS_MIN)


def step_threshold(state: TrainState, a: np.ndarray, with_sums: bool = False):
    """t(r) for this step: bracketed selection around the previous t, else full selection.

    Also fills ``a`` with |w| (each half on its own thread, with the scan).
    With ``with_sums``, also returns (Σa, Σa²), taken while each half is in
    cache (Scott's bandwidth, thesis eq. (2.19)).

    Returns
    -------
    Threshold, or (Threshold, (float, float)) with ``with_sums``
    """
    thr = None
    w = state.flat_w
    bracketed = np.isfinite(state.bracket) and np.isfinite(state.t)
    lo, hi = (state.t - state.bracket, state.t + state.bracket) if bracketed else (0.0, 0.0)

    def scan(sl):
        np.abs(w[sl], out=a[sl])
        sums = (float(a[sl].sum()), float(np.dot(a[sl], a[sl]))) if with_sums else (0.0, 0.0)
        return (bracket_scan(a[sl], lo, hi) if bracketed else None), sums

    (scan1, sums1), (scan2, sums2) = on_halves(state, scan)
    if bracketed:
        thr = select_in_bracket(state.r, a.size, scan1[0] + scan2[0], np.concatenate([scan1[1], scan2[1]]))
    if thr is None:
        thr = empirical_threshold(a, state.r)
    state.bracket = next_bracket(thr.t, state.t)
    if with_sums:
        return thr, (sums1[0] + sums2[0], sums1[1] + sums2[1])
    return thr


def adam_scratch(st: AdamState) -> list:
    """The Adam group's scratch buffers, allocated on first use."""
    if not st.scratch:
        st.scratch = [np.empty_like(m) for m in st.m]
    return st.scratch


def flush_moments(state: TrainState) -> None:
    """Every FLUSH_PERIOD Adam steps: moments below :func:`refprune.train.kernels.flush_level` set to 0.

    The flat weights' moments are flushed half per thread; the biases' here.
    """
    st = state.adam_wb
    if st.step % FLUSH_PERIOD:
        return
    level, tmp = flush_level(state.flat_w.dtype), adam_scratch(st)
    m, v = st.m[0], st.v[0]

    def part(sl):
        flush_subnormals(m[sl], level, tmp[0][sl])
        flush_subnormals(v[sl], level, tmp[0][sl])

    on_halves(state, part)
    for mb, vb, tb in zip(st.m[1:], st.v[1:], tmp[1:]):
        flush_subnormals(mb, level, tb)
        flush_subnormals(vb, level, tb)


def adam_weights_part(state: TrainState, sl: slice, grad_flat_w: np.ndarray) -> None:
    """Adam on one slice of the flat weights (the step counter already advanced)."""
    st = state.adam_wb
    adam_moments_step(state.flat_w[sl], grad_flat_w[sl], st.m[0][sl], st.v[0][sl], st.scratch[0][sl],
                      st.step, st.lr)


def adam_biases(state: TrainState, grad_biases) -> None:
    """Adam on the biases (the step counter already advanced), then the periodic flush."""
    st = state.adam_wb
    for b, g, mb, vb, tb in zip(state.biases, grad_biases, st.m[1:], st.v[1:], st.scratch[1:]):
        adam_moments_step(b, g, mb, vb, tb, st.step, st.lr)
    flush_moments(state)


def adam_begin(state: TrainState) -> None:
    """Advance the weights-and-biases group's step counter; allocate its scratch."""
    state.adam_wb.step += 1
    adam_scratch(state.adam_wb)


def adam_step(state: TrainState, grad_flat_w: np.ndarray, grad_biases) -> None:
    """Adam on the weights (flat, two halves on two threads) and the biases, with the flush."""
    adam_begin(state)
    on_halves(state, lambda sl: adam_weights_part(state, sl, grad_flat_w))
    adam_biases(state, grad_biases)


def update_r_tau(state: TrainState, d_r: float, d_tau: float, learn_r: bool = True) -> None:
    """Adam steps for r and τ, then the clamps τ >= 1e-6, r in [0, 0.9999].

    With ``learn_r`` False, r and its Adam state are left exactly as they are
    (a fixed-ratio soft mask); τ is still updated.
    """
    if learn_r:
        state.r = clamp_ratio(adam_scalar(state.r, d_r, state.adam_r))
    state.tau = clamp_tau(adam_scalar(state.tau, d_tau, state.adam_tau))


def phase_forward_backward(state: TrainState, masked, x, y, loss: str):
    """Forward with the flat weights ``masked`` (ŵ), loss, backward: (loss value, flat g = ∂L/∂ŵ, ∂L/∂b)."""
    g = buffers(state)["g"]
    out, cache = mlp_forward(x, layer_views(masked, state.weights), state.biases)
    value, dout = loss_and_grad(loss, out, y)
    _, db = mlp_backward(dout, cache, layer_views(g, state.weights))
    return value, g, db


def dense_step(state: TrainState, x, y, loss: str) -> float:
    """Plain training step: forward, backward, Adam on weights and biases."""
    value, g, db = phase_forward_backward(state, state.flat_w, x, y, loss)
    adam_step(state, g, db)
    state.step += 1
    return value


def masked_dense_step(state: TrainState, x, y, loss: str, mask_flat: np.ndarray) -> float:
    """Training step with a fixed 0/1 mask on the weights (pruning before training).

    The forward pass uses W·M, the weight gradient is masked, and after the
    Adam update the pruned weights are set back to zero, so they stay zero.
    """
    value, g, db = phase_forward_backward(state, state.flat_w * mask_flat, x, y, loss)
    g *= mask_flat
    adam_step(state, g, db)
    state.flat_w *= mask_flat
    state.step += 1
    return value

