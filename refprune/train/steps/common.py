"""What every training step shares: its configuration, the state, the threshold, forward/backward, Adam.

Every step has one signature, ``step(state, ws, x, y, cfg) -> float``: it updates the
method's state (:class:`TrainState`) in place, using the fast path's scratch
(:class:`refprune.train.steps.workspace.Workspace`), and returns the batch's total loss;
``cfg`` is a :class:`StepConfig`. The steps are registered by name in
:data:`refprune.train.steps.registry.STEPS`. The phases here are the building blocks of
:func:`dense_step`, of the exact LRP step (:mod:`refprune.train.steps.exact`), of the
published one (:mod:`refprune.train.steps.published`) and of ``scripts/bench_step.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from refprune.core.groups import Grouping
from refprune.core.losses import loss_and_grad
from refprune.core.mlp import mlp_backward, mlp_forward
from refprune.core.optim import AdamState, adam_init, adam_moments_step, adam_update, clamp_ratio, clamp_tau
from refprune.core.threshold import empirical_threshold
from refprune.density.config import DensityConfig
from refprune.train.checkpoint import NOT_SAVED
from refprune.train.kernels import (
    FLUSH_PERIOD,
    bracket_scan,
    flush_level,
    flush_subnormals,
    select_in_bracket,
)
from refprune.train.parallel import halves, make_pool
from refprune.train.steps.workspace import Workspace, buffers, group_total, on_halves, on_parts

# Half-width of the selection bracket, relative to t, on the first try; it
# then follows how far t moved in the last step (×BRACKET_GROWTH, floored).
BRACKET_REL_MIN = 1e-3
BRACKET_GROWTH = 4.0
BRACKET_ABS_MIN = 1e-12  # so a zero t still gets a bracket of positive width

# The published code's deviations from the method (METHOD §6) a published step can apply.
DEVIATIONS = ("P1", "P2", "P3", "P4")


@dataclass(frozen=True)
class StepConfig:
    """What a training step needs besides the state, the workspace and the batch.

    Attributes
    ----------
    loss : {"ce", "mse"}
    lam : float
        λ of the regulariser λ Σ_g (n_g/n)(1 − r_g)² (thesis eq. (2.23) for one group).
    density : DensityConfig
        The exact step's density estimate for dt/dr (bandwidth rule, reflection, method).
    learn_r : bool
        False: r stays where it is (a fixed-ratio soft mask); τ and the weights are learned.
    deviations : frozenset of str
        Which of :data:`DEVIATIONS` the published step applies.
    """

    loss: str = "ce"
    lam: float = 0.0
    density: DensityConfig = field(default_factory=DensityConfig)
    learn_r: bool = True
    deviations: frozenset = frozenset(DEVIATIONS)


@dataclass
class TrainState:
    """What the method carries from one step to the next (arrays updated in place).

    Attributes
    ----------
    weights : list of ndarray
        Per-layer weight matrices, views into ``flat_w`` (one buffer holds
        all n prunable weights, so elementwise work can be split evenly).
    biases : list of ndarray
    flat_w : ndarray, shape (n,)
    grouping : Grouping
        Which layers share r, τ and t (one group: global LRP; one per layer: layer-wise).
    fractions : ndarray, shape (G,)
        n_g/n of each group (:meth:`Grouping.fractions`), the regulariser's weights.
    rs, taus : ndarray, shape (G,), float64
        Each group's trainable pruning ratio r_g and temperature τ_g.
    ts : ndarray, shape (G,), float64
        The thresholds t_g the last step used (nan before the first, and for dense).
    adam_wb, adam_r, adam_tau : AdamState
        Optimiser state of the three groups; ``adam_wb`` holds the moments of
        ``[flat_w] + biases``, ``adam_r`` and ``adam_tau`` those of ``rs`` and ``taus``.
    step : int
        Steps taken.
    published : PublishedState or None
        What the published sequence keeps between steps
        (:class:`refprune.train.steps.published.PublishedState`), once it has run.
    """

    weights: list = field(metadata=NOT_SAVED)
    biases: list
    flat_w: np.ndarray
    grouping: Grouping = field(metadata=NOT_SAVED)
    fractions: np.ndarray = field(metadata=NOT_SAVED)
    rs: np.ndarray
    taus: np.ndarray
    ts: np.ndarray
    adam_wb: AdamState
    adam_r: AdamState
    adam_tau: AdamState
    step: int = 0
    published: object = None

    @property
    def r(self) -> float:
        """r, or with several groups the size-weighted mean r̄ = Σ_g (n_g/n) r_g (the pruned fraction aimed at)."""
        return float(self.rs[0]) if self.rs.size == 1 else float(np.dot(self.fractions, self.rs))

    @property
    def tau(self) -> float:
        """τ, or with several groups the size-weighted mean τ̄ = Σ_g (n_g/n) τ_g."""
        return float(self.taus[0]) if self.taus.size == 1 else float(np.dot(self.fractions, self.taus))

    @property
    def t(self) -> float:
        """The threshold the last step used; nan with several groups (see ``ts``) and before the first step."""
        return float(self.ts[0]) if self.ts.size == 1 else float("nan")


def layer_views(flat: np.ndarray, shapes) -> list:
    """Views of a flat array shaped like each layer's weights (``shapes``: arrays or shapes)."""
    views, start = [], 0
    for shape in shapes:
        shape = getattr(shape, "shape", shape)
        size = int(np.prod(shape))
        views.append(flat[start:start + size].reshape(shape))
        start += size
    return views


def new_state(weights, biases, r0: float, tau, lr: float, lr_r: float, lr_tau: float,
              grouping: Grouping | None = None) -> TrainState:
    """Fresh training state with zero Adam moments; the weights are copied into one flat buffer.

    ``tau``: one τ for every group, or a sequence of one τ_g per group; ``grouping``: one
    group of all layers when None. Every r_g starts at ``r0``.
    """
    grouping = Grouping.of("global", len(weights)) if grouping is None else grouping
    if grouping.n_layers != len(weights):
        raise ValueError(f"the grouping covers {grouping.n_layers} layers, the network has {len(weights)}")
    flat_w = np.concatenate([W.ravel() for W in weights])
    rs = np.full(grouping.n_groups, float(r0))
    taus = np.array(np.broadcast_to(np.asarray(tau, dtype=np.float64), rs.shape)) if np.ndim(tau) == 0 \
        else np.asarray(tau, dtype=np.float64).copy()
    if taus.shape != rs.shape:
        raise ValueError(f"tau must hold one value per group ({grouping.n_groups}), got shape {taus.shape}")
    group_slices(grouping, weights)  # each group a run of consecutive layers
    return TrainState(weights=layer_views(flat_w, weights), biases=[b.copy() for b in biases], flat_w=flat_w,
                      grouping=grouping, fractions=grouping.fractions(weights), rs=rs, taus=taus,
                      ts=np.full(rs.shape, np.nan), adam_wb=adam_init([flat_w] + list(biases), lr),
                      adam_r=adam_init([rs], lr_r), adam_tau=adam_init([taus], lr_tau))


def group_slices(grouping: Grouping, weights) -> list:
    """Each group's slice of the flat weights; a group must be a run of consecutive layers."""
    starts = np.concatenate([[0], np.cumsum([W.size for W in weights])])
    out = []
    for layers in grouping.layers:
        if list(layers) != list(range(layers[0], layers[-1] + 1)):
            raise ValueError(f"the training path needs each group to be consecutive layers, got {layers!r}")
        out.append(slice(int(starts[layers[0]]), int(starts[layers[-1] + 1])))
    return out


def new_workspace(state: TrainState, threads: int | None = None) -> Workspace:
    """The fast path's scratch for ``state``'s run (see :mod:`refprune.train.steps.workspace`).

    ``threads``: 1 runs everything in the calling thread; 2 lets the
    elementwise phases use a second core; None: as
    :func:`refprune.train.threads.worker_threads` decides, for arrays of at least
    :data:`refprune.train.parallel.PARALLEL_MIN_SIZE` weights.
    """
    slices = group_slices(state.grouping, state.weights)
    n = state.flat_w.size
    parts = [(0, sl) for sl in halves(n)] if len(slices) == 1 else list(enumerate(slices))
    return Workspace(size=n, dtype=state.flat_w.dtype, pool=make_pool(threads, n), slices=slices, parts=parts,
                     brackets=np.full(len(slices), np.nan), adam_tmp=[np.empty_like(m) for m in state.adam_wb.m])


def magnitudes(weights) -> np.ndarray:
    """|w| of all prunable weights, one flat array in the weights' dtype."""
    return np.abs(np.concatenate([W.ravel() for W in weights]))


def next_bracket(t: float, t_prev: float) -> float:
    """Half-width of the next selection bracket: how far t moved (×BRACKET_GROWTH), floored."""
    moved = abs(t - t_prev) if np.isfinite(t_prev) else 0.0
    return max(BRACKET_GROWTH * moved, BRACKET_REL_MIN * t, BRACKET_ABS_MIN)


def group_thresholds(state: TrainState, ws: Workspace, with_sums: bool = False) -> list:
    """t_g(r_g) of every group: bracketed selection around the previous t_g, else full selection.

    Also fills ``buffers(ws)['a']`` with |w| (each part on its thread, with its bracket
    scan) and sets each group's next bracket. With ``with_sums``, each group's (Σa, Σa²)
    is taken while each part is in cache (Scott's bandwidth, thesis eq. (2.19)).

    Returns
    -------
    list of (Threshold, (float, float))
        Per group, its threshold and its sums ((0, 0) without ``with_sums``).
    """
    a, w = buffers(ws)["a"], state.flat_w
    bracketed = np.isfinite(ws.brackets) & np.isfinite(state.ts)
    bounds = [(float(t - b), float(t + b)) for t, b in zip(state.ts, ws.brackets)]

    def scan(k, g, sl):
        np.abs(w[sl], out=a[sl])
        sums = (float(a[sl].sum()), float(np.dot(a[sl], a[sl]))) if with_sums else (0.0, 0.0)
        return (bracket_scan(a[sl], *bounds[g]) if bracketed[g] else None), sums

    scans = on_parts(ws, scan)
    out = []
    for g, sl in enumerate(ws.slices):
        r, thr = float(state.rs[g]), None
        if bracketed[g]:
            below = group_total(ws, [s[0][0] if s[0] else 0 for s in scans], g)
            inside = np.concatenate([s[0][1] for (group, _), s in zip(ws.parts, scans) if group == g])
            thr = select_in_bracket(r, sl.stop - sl.start, below, inside)
        if thr is None:
            thr = empirical_threshold(a[sl], r)
        ws.brackets[g] = next_bracket(thr.t, float(state.ts[g]))
        sums = (group_total(ws, [s[1][0] for s in scans], g), group_total(ws, [s[1][1] for s in scans], g))
        out.append((thr, sums))
    return out


def flush_moments(state: TrainState, ws: Workspace) -> None:
    """Every FLUSH_PERIOD Adam steps: moments below :func:`refprune.train.kernels.flush_level` set to 0.

    The flat weights' moments are flushed half per thread; the biases' here.
    """
    st = state.adam_wb
    if st.step % FLUSH_PERIOD:
        return
    level, tmp = flush_level(state.flat_w.dtype), ws.adam_tmp
    m, v = st.m[0], st.v[0]

    def part(sl):
        flush_subnormals(m[sl], level, tmp[0][sl])
        flush_subnormals(v[sl], level, tmp[0][sl])

    on_halves(ws, part)
    for mb, vb, tb in zip(st.m[1:], st.v[1:], tmp[1:]):
        flush_subnormals(mb, level, tb)
        flush_subnormals(vb, level, tb)


def adam_weights_part(state: TrainState, ws: Workspace, sl: slice, grad_flat_w: np.ndarray) -> None:
    """Adam on one slice of the flat weights (the step counter already advanced by :func:`adam_begin`)."""
    st = state.adam_wb
    adam_moments_step(state.flat_w[sl], grad_flat_w[sl], st.m[0][sl], st.v[0][sl], ws.adam_tmp[0][sl],
                      st.step, st.lr)


def adam_biases(state: TrainState, ws: Workspace, grad_biases) -> None:
    """Adam on the biases (the step counter already advanced), then the periodic flush."""
    st = state.adam_wb
    for b, g, mb, vb, tb in zip(state.biases, grad_biases, st.m[1:], st.v[1:], ws.adam_tmp[1:]):
        adam_moments_step(b, g, mb, vb, tb, st.step, st.lr)
    flush_moments(state, ws)


def adam_begin(state: TrainState) -> None:
    """Advance the weights-and-biases group's step counter."""
    state.adam_wb.step += 1


def adam_step(state: TrainState, ws: Workspace, grad_flat_w: np.ndarray, grad_biases) -> None:
    """Adam on the weights (flat, two halves on two threads) and the biases, with the flush."""
    adam_begin(state)
    on_halves(ws, lambda sl: adam_weights_part(state, ws, sl, grad_flat_w))
    adam_biases(state, ws, grad_biases)


def update_ratios_temperatures(state: TrainState, d_r, d_tau, learn_r: bool = True) -> None:
    """Adam on the vectors r and τ (elementwise, as on G separate scalars), then per group the
    clamps τ_g >= 1e-6 and r_g in [0, 0.9999].

    With ``learn_r`` False, r and its Adam state are left exactly as they are
    (a fixed-ratio soft mask); τ is still updated.
    """
    if learn_r:
        adam_update([state.rs], [np.asarray(d_r, np.float64).reshape(state.rs.shape)], state.adam_r)
        state.rs[:] = [clamp_ratio(float(r)) for r in state.rs]
    adam_update([state.taus], [np.asarray(d_tau, np.float64).reshape(state.taus.shape)], state.adam_tau)
    state.taus[:] = [clamp_tau(float(tau)) for tau in state.taus]


def phase_forward_backward(state: TrainState, ws: Workspace, masked, x, y, loss: str):
    """Forward with the flat weights ``masked`` (ŵ), loss, backward: (loss value, flat g = ∂L/∂ŵ, ∂L/∂b)."""
    g = buffers(ws)["g"]
    out, cache = mlp_forward(x, layer_views(masked, state.weights), state.biases)
    value, dout = loss_and_grad(loss, out, y)
    _, db = mlp_backward(dout, cache, layer_views(g, state.weights))
    return value, g, db


def dense_step(state: TrainState, ws: Workspace, x, y, cfg: StepConfig) -> float:
    """Plain training step: forward, backward, Adam on weights and biases (r and τ are not used)."""
    value, g, db = phase_forward_backward(state, ws, state.flat_w, x, y, cfg.loss)
    adam_step(state, ws, g, db)
    state.step += 1
    return value


def masked_dense_step(state: TrainState, ws: Workspace, x, y, loss: str, mask_flat: np.ndarray) -> float:
    """Training step with a fixed 0/1 mask on the weights (pruning before training; not a registered step).

    The forward pass uses W·M, the weight gradient is masked, and after the
    Adam update the pruned weights are set back to zero, so they stay zero.
    """
    value, g, db = phase_forward_backward(state, ws, state.flat_w * mask_flat, x, y, loss)
    g *= mask_flat
    adam_step(state, ws, g, db)
    state.flat_w *= mask_flat
    state.step += 1
    return value
