"""The layer-wise LRP training step: r_l, τ_l, t_l and dt_l/dr_l per layer (docs/derivations.md §9).

The fast twin of the plain reference :func:`refprune.lrp.layerwise.layerwise_gradients`
(tested equal in tests/test_layerwise_step.py). Each layer l is a slice of the
flat weights; on it the step does what the exact global step does on all of
them (:mod:`refprune.train.steps.exact`), with that layer's own values:

1. a = |w| and t_l(r_l) by bracketed selection around the previous t_l;
2. masks and slopes on the band |z_l| < C only (:mod:`refprune.train.steps.softband`),
   a hard 0/1 mask elsewhere;
3. one forward and backward pass of the whole network with ŵ;
4. ∂L/∂w, ∂L/∂τ_l, ∂L/∂t_l on the band, and f_l(t_l) from the layer's
   magnitudes within the kernel's reach of t_l;
5. Adam on weights and biases; ∂L/∂r_l = (dt_l/dr_l)·∂L/∂t_l + 2λ(n_l/n)(r_l − 1)
   and Adam on the vectors r and τ (elementwise, as on L separate scalars),
   then the clamps of the global method per layer.

The per-layer values live in :class:`LayerwiseState` (``TrainState.variant``);
``TrainState.r`` and ``TrainState.tau`` hold their size-weighted means
r̄ = Σ_l (n_l/n) r_l (the pruned fraction the thresholds aim at) and
τ̄ = Σ_l (n_l/n) τ_l, so every consumer of a global run reads a layer-wise one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from refprune.core.gradients import group_grad_ratio, group_regulariser, threshold_derivative
from refprune.core.groups import Grouping
from refprune.core.optim import AdamState, adam_init, adam_update, clamp_ratio, clamp_tau
from refprune.core.threshold import empirical_threshold
from refprune.density.config import DensityConfig, density_at
from refprune.train.kernels import bracketed_threshold, kde_at_point, mask_cutoff
from refprune.train.parallel import split_run
from refprune.train.steps.common import (
    TrainState,
    adam_begin,
    adam_biases,
    adam_weights_part,
    buffers,
    next_bracket,
    on_halves,
    phase_forward_backward,
)
from refprune.train.steps.exact import check_density, point_bandwidth
from refprune.train.steps.softband import (
    band_half_width,
    half_density_sum,
    half_gradients,
    half_masks,
    kde_reach,
)


def empty_vector() -> np.ndarray:
    return np.zeros(0)


@dataclass
class LayerwiseState:
    """The per-layer state of a layer-wise run (arrays of shape (L,), float64).

    Attributes
    ----------
    rs, taus : ndarray
        r_l and τ_l.
    ts : ndarray
        The thresholds t_l the last step used (nan before the first).
    brackets : ndarray
        Half-widths of each layer's next selection bracket (nan: full selection).
    fractions : ndarray
        n_l/n, the regulariser's weights.
    adam_rs, adam_taus : AdamState
        Adam of the vectors r and τ (learning rates lr_r and lr_tau).
    """

    rs: np.ndarray = field(default_factory=empty_vector)
    taus: np.ndarray = field(default_factory=empty_vector)
    ts: np.ndarray = field(default_factory=empty_vector)
    brackets: np.ndarray = field(default_factory=empty_vector)
    fractions: np.ndarray = field(default_factory=empty_vector)
    adam_rs: AdamState = field(default_factory=lambda: AdamState(lr=1.0))
    adam_taus: AdamState = field(default_factory=lambda: AdamState(lr=1.0))


def layerwise_state(state: TrainState, r0: float, taus, lr_r: float, lr_tau: float) -> LayerwiseState:
    """Attach a fresh layer-wise state to ``state`` (every r_l = r0, τ_l as given); returns it."""
    n_layers = len(state.weights)
    rs = np.full(n_layers, float(r0))
    taus = np.asarray(taus, dtype=np.float64).copy()
    if taus.shape != (n_layers,):
        raise ValueError(f"taus must hold one value per layer ({n_layers}), got shape {taus.shape}")
    lw = LayerwiseState(rs=rs, taus=taus, ts=np.full(n_layers, np.nan), brackets=np.full(n_layers, np.nan),
                        fractions=Grouping.of("layer", n_layers).fractions(state.weights),
                        adam_rs=adam_init([rs], lr_r), adam_taus=adam_init([taus], lr_tau))
    state.variant = lw
    sync_means(state, lw)
    return lw


def sync_means(state: TrainState, lw: LayerwiseState) -> None:
    """TrainState.r, .tau ← the size-weighted means of r_l and τ_l."""
    state.r = float(np.dot(lw.fractions, lw.rs))
    state.tau = float(np.dot(lw.fractions, lw.taus))


def layer_slices(state: TrainState) -> list:
    """Each layer's slice of the flat weights."""
    out, start = [], 0
    for W in state.weights:
        out.append(slice(start, start + W.size))
        start += W.size
    return out


def on_layers(state: TrainState, fn) -> list:
    """``[fn(0), fn(1), ...]``: the first (largest) layer on the worker, the others here.

    Each layer's result depends on that layer only, so it does not depend on
    the thread count.
    """
    n_layers = len(state.weights)
    first, rest = split_run(state.pool, lambda: [fn(0)], lambda: [fn(l) for l in range(1, n_layers)])
    return first + rest


@dataclass
class LayerPass:
    """One layer's mask pass: threshold, bandwidth and band (for its gradient pass)."""

    t: float
    h: float
    band: object


def layer_threshold(a: np.ndarray, r: float, t_prev: float, bracket: float):
    """t_l(r_l) by selection in the bracket around the previous t_l, else full selection; and the next bracket."""
    thr = None
    if np.isfinite(bracket) and np.isfinite(t_prev):
        thr = bracketed_threshold(a, r, t_prev - bracket, t_prev + bracket)
    if thr is None:
        thr = empirical_threshold(a, r)
    return thr, next_bracket(thr.t, t_prev)


def phase_layer_masks(state: TrainState, lw: LayerwiseState, density: DensityConfig) -> list:
    """Per layer: |w|, t_l, h_l and the band-limited mask pass (fills ŵ); returns LayerPass per layer."""
    buf, w, dtype = buffers(state), state.flat_w, state.flat_w.dtype
    slices = layer_slices(state)
    direct = density.method == "direct"

    def layer(l):
        sl = slices[l]
        a_l = buf["a"][sl]
        np.abs(w[sl], out=a_l)
        thr, lw.brackets[l] = layer_threshold(a_l, lw.rs[l], lw.ts[l], lw.brackets[l])
        t, tau = thr.t, float(lw.taus[l])
        sums = (float(a_l.sum()), float(np.dot(a_l, a_l)))
        h = point_bandwidth(a_l, sums, density) if direct else float("nan")   # thesis eq. (2.19)
        cutoff = mask_cutoff(dtype, t, tau)
        window = kde_reach(dtype) * h if direct else 0.0
        band = half_masks(sl, buf["a"], w, t, tau, cutoff, band_half_width(t, tau, cutoff), buf, window)
        return LayerPass(t, h, band)

    return on_layers(state, layer)


def phase_layer_gradients(state: TrainState, lw: LayerwiseState, g, passes: list, density: DensityConfig):
    """Per layer: ∂L/∂w into ``buffers(state)['dw']``, ∂L/∂τ_l, ∂L/∂t_l and f_l(t_l); arrays of shape (L,)."""
    buf, w = buffers(state), state.flat_w
    slices = layer_slices(state)
    direct = density.method == "direct"

    def layer(l):
        sl, p, tau = slices[l], passes[l], float(lw.taus[l])
        d_tau, d_t = half_gradients(sl, p.band, g, w, p.t, tau, buf)     # eqs. (2.3), (2.10), (2.11)
        a_l = buf["a"][sl]
        if not direct:
            return d_tau, d_t, float(density_at(a_l, np.array([p.t]), density)[0])
        f_t = half_density_sum(p.band, p.t, p.h, density.reflect, buf["kde"][sl]) / a_l.size  # eq. (2.17)
        if not f_t > 0:                  # t_l in a gap wider than the window: the full sum
            f_t = kde_at_point(a_l, p.t, p.h, reflect=density.reflect)
        return d_tau, d_t, f_t

    d_tau, d_t, f_t = (np.array(v, dtype=np.float64) for v in zip(*on_layers(state, layer)))
    return d_tau, d_t, f_t


def update_layer_ratios_temperatures(state: TrainState, lw: LayerwiseState, d_r, d_tau) -> None:
    """Adam on the vectors r and τ, then per layer τ_l >= 1e-6 and r_l in [0, 0.9999]."""
    adam_update([lw.rs], [np.asarray(d_r, np.float64)], lw.adam_rs)
    adam_update([lw.taus], [np.asarray(d_tau, np.float64)], lw.adam_taus)
    lw.rs[:] = [clamp_ratio(float(r)) for r in lw.rs]
    lw.taus[:] = [clamp_tau(float(tau)) for tau in lw.taus]
    sync_means(state, lw)


def layerwise_step(state: TrainState, x, y, loss: str, lam: float,
                   density: DensityConfig = DensityConfig()) -> float:
    """One layer-wise LRP step on the exact gradient path.

    Parameters
    ----------
    state : TrainState
        With a :class:`LayerwiseState` in ``state.variant``
        (:func:`layerwise_state`); updated in place.
    x : ndarray, shape (N, D_in)
    y : ndarray
        Labels (N,) or targets (N, D_out).
    loss : {"ce", "mse"}
    lam : float
        λ of the regulariser λ Σ_l (n_l/n)(1 − r_l)².
    density : DensityConfig
        The density estimate for dt_l/dr_l, applied to each layer's magnitudes.

    Returns
    -------
    float
        Data loss + λ Σ_l (n_l/n)(1 − r_l)² of this batch (r_l before the update).

    Notes
    -----
    Against the reference path the step differs as the exact global step
    does (:func:`refprune.train.steps.exact.exact_step`): the mask cutoff, the KDE
    truncation and the flush of tiny Adam moments.
    """
    density = check_density(density)
    lw = state.variant
    if not isinstance(lw, LayerwiseState):
        raise ValueError("the layer-wise step needs a LayerwiseState in state.variant (layerwise_state)")
    rs = lw.rs.copy()
    passes = phase_layer_masks(state, lw, density)
    value, g, db = phase_forward_backward(state, buffers(state)["masked"], x, y, loss)
    d_tau, d_t, f_t = phase_layer_gradients(state, lw, g, passes, density)
    adam_begin(state)
    on_halves(state, lambda sl: adam_weights_part(state, sl, buffers(state)["dw"]))
    adam_biases(state, db)
    dt_dr = np.array([threshold_derivative(f) for f in f_t])                   # eq. (2.16), per layer
    d_r = group_grad_ratio(d_t, dt_dr, rs, lam, lw.fractions)             # eqs. (2.11), (2.23)
    update_layer_ratios_temperatures(state, lw, d_r, d_tau)
    lw.ts[:] = [p.t for p in passes]
    state.t = float("nan")
    state.step += 1
    return value + group_regulariser(rs, lam, lw.fractions)
