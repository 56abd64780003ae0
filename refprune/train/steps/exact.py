"""The exact LRP step (METHOD §3–§4, Algorithm 1 lines 6–16) for any grouping of the layers.

Each group g of the state's :class:`refprune.core.groups.Grouping` has its own r_g, τ_g,
threshold t_g(r_g) (the r_g-quantile of the group's magnitudes), selection bracket and
dt_g/dr_g = 1/f_g(t_g) from the density of the group's magnitudes. One group of all layers
is the thesis's global LRP; one group per layer is layer-wise LRP (docs/derivations.md §9).
Per group the step does:

1. a = |w| and t_g(r_g) by selection in a bracket around the previous t_g (the same order
   statistics as a full selection);
2. masks and slopes on the band |z| < C only (:mod:`refprune.train.steps.softband`), a hard
   0/1 mask elsewhere;
3. (all groups) one forward and backward pass of the whole network with ŵ;
4. ∂L/∂w, ∂L/∂τ_g, ∂L/∂t_g on the band, f_g(t_g) from the magnitudes within the kernel's
   reach of t_g (method "direct", fused into the gradient pass) or by the configured route
   :func:`refprune.density.config.density_at` (method "fft"), and Adam on the weights;
5. ∂L/∂r_g = (dt_g/dr_g)·∂L/∂t_g + 2λ(n_g/n)(r_g − 1), Adam on the vectors r and τ and the
   clamps per group.

The gradients are those of :mod:`refprune.core.gradients` (the functions the plain
reference :func:`refprune.lrp.reference.lrp_gradients` uses, with or without a grouping), computed per part of the flat
weights (:attr:`refprune.train.steps.workspace.Workspace.parts`) on two threads. Tested
whole-step against the references: tests/test_step_equivalence.py (one group) and
tests/test_layerwise_step.py (one group per layer).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from refprune.core.gradients import (
    group_grad_ratio,
    group_regulariser,
    threshold_derivative,
)
from refprune.core.threshold import Threshold
from refprune.density.config import DensityConfig, density_at
from refprune.density.kde import bandwidth
from refprune.train.kernels import kde_at_point, mask_cutoff, scott_bandwidth_from_sums
from refprune.train.steps.common import (
    StepConfig,
    TrainState,
    adam_begin,
    adam_biases,
    adam_weights_part,
    group_thresholds,
    phase_forward_backward,
    update_ratios_temperatures,
)
from refprune.train.steps.softband import (
    band_half_width,
    kde_reach,
    part_density_sum,
    part_gradients,
    part_masks,
)
from refprune.train.steps.workspace import Workspace, buffers, group_total, on_parts


def check_density(density) -> DensityConfig:
    """The step's density config; anything but a DensityConfig is an error (no implicit default)."""
    if not isinstance(density, DensityConfig):
        raise ValueError(f"density must be a DensityConfig, got {density!r}")
    return density


def point_bandwidth(a: np.ndarray, sums, density: DensityConfig) -> float:
    """The config's bandwidth of the magnitudes: Scott's from the sums (eq. (2.19)), else :func:`bandwidth`."""
    if density.rule == "scott":
        return scott_bandwidth_from_sums(sums[0], sums[1], a.size)  # thesis eq. (2.19)
    return bandwidth(a, density.rule)                                 # thesis eq. (2.18)


@dataclass
class GroupPass:
    """One group in this step: its slice of the flat weights, threshold, τ_g and bandwidth h_g."""

    sl: slice
    thr: Threshold
    tau: float
    h: float


def phase_threshold(state: TrainState, ws: Workspace, density: DensityConfig) -> list:
    """a = |w| of all weights, t_g(r_g) of every group (stop-gradient: t depends on r only) and h_g.

    Returns
    -------
    list of GroupPass
    """
    a = buffers(ws)["a"]
    direct = density.method == "direct"
    return [GroupPass(sl, thr, float(state.taus[g]), point_bandwidth(a[sl], sums, density) if direct else np.nan)
            for g, (sl, (thr, sums)) in enumerate(zip(ws.slices, group_thresholds(state, ws, with_sums=True)))]


def phase_masks(state: TrainState, ws: Workspace, groups: list, density: DensityConfig) -> list:
    """Masks on each group's band, hard masks elsewhere: fills the flat ŵ (``buffers(ws)['masked']``).

    Returns
    -------
    list of PartBand
        One per part of ``ws.parts``, for the gradient pass.
    """
    buf, dtype = buffers(ws), state.flat_w.dtype
    cutoffs = [mask_cutoff(dtype, p.thr.t, p.tau) for p in groups]
    reaches = [band_half_width(p.thr.t, p.tau, cutoff) for p, cutoff in zip(groups, cutoffs)]
    windows = [kde_reach(dtype) * p.h if density.method == "direct" else 0.0 for p in groups]

    def part(k, g, sl):
        p = groups[g]
        return part_masks(sl, buf["a"], state.flat_w, p.thr.t, p.tau, cutoffs[g], reaches[g], buf, windows[g])

    return on_parts(ws, part)


def phase_gradients_density_adam(state: TrainState, ws: Workspace, g, groups: list, bands: list,
                                 density: DensityConfig, db):
    """Everything after the backward pass that acts elementwise, one pass per part.

    For each part: ∂L/∂w (eq. (2.3) corrected) and its terms of ∂L/∂τ_g
    (eq. (2.10)) and ∂L/∂t_g (eq. (2.11)); its part of the KDE sum at t_g
    (eq. (2.17), method "direct"); and the Adam update of its weights (the
    weights' gradient is final, and ``a`` — the pre-update magnitudes — is a
    separate buffer). Then Adam on the biases and the periodic flush.

    Returns
    -------
    d_tau, d_t, f_t : ndarray, shape (G,)
        ∂L/∂τ_g, ∂L/∂t_g, and the density f_g(t_g) for dt_g/dr_g.
    """
    buf, w = buffers(ws), state.flat_w
    direct = density.method == "direct"
    adam_begin(state)

    def part(k, gi, sl):
        p = groups[gi]
        d_tau, d_t = part_gradients(sl, bands[k], g, w, p.thr.t, p.tau, buf)
        f_part = part_density_sum(bands[k], p.thr.t, p.h, density.reflect, buf["kde"][sl]) if direct else 0.0
        adam_weights_part(state, ws, sl, buf["dw"])
        return d_tau, d_t, f_part

    per_part = zip(*on_parts(ws, part))
    adam_biases(state, ws, db)
    d_tau, d_t, kde_sums = ([group_total(ws, values, gi) for gi in range(len(groups))] for values in per_part)
    f_t = [group_density(buf["a"][p.sl], p, kde_sum, density) for p, kde_sum in zip(groups, kde_sums)]
    return np.array(d_tau, np.float64), np.array(d_t, np.float64), f_t


def group_density(a_g: np.ndarray, p: GroupPass, kde_sum: float, density: DensityConfig) -> float:
    """f_g(t_g): the windowed KDE sum over n_g (thesis eq. (2.17)), or the configured estimate (method "fft")."""
    if density.method != "direct":       # the configured estimate (e.g. the thesis's binned FFT)
        return float(density_at(a_g, np.array([p.thr.t]), density)[0])
    f_t = kde_sum / a_g.size             # thesis eq. (2.17)
    if not f_t > 0:                      # t in a gap wider than the window: the full sum
        f_t = kde_at_point(a_g, p.thr.t, p.h, reflect=density.reflect)
    return f_t


def ratio_gradient_and_regulariser(d_t, f_t, rs: np.ndarray, lam: float, fractions: np.ndarray):
    """∂L/∂r_g per group (eqs. (2.11), (2.16), (2.23)) and L_R = λ Σ_g (n_g/n)(1 − r_g)², at r before the update."""
    dt_dr = np.array([threshold_derivative(f) for f in f_t])                   # eq. (2.16)
    return group_grad_ratio(d_t, dt_dr, rs, lam, fractions), group_regulariser(rs, lam, fractions)


PHASES = ("threshold", "masks", "forward_backward", "gradients_density_adam", "ratio_temperature")


def exact_step(state: TrainState, ws: Workspace, x, y, cfg: StepConfig) -> float:
    """One LRP step on the exact gradient path (METHOD §3, Algorithm 1), every group at once.

    Parameters
    ----------
    state : TrainState
        Updated in place; its grouping says which layers share r, τ and t.
    ws : Workspace
        The run's scratch; with ``ws.phase_times`` a list, the seconds of each of
        ``PHASES`` are appended (for the benchmarks).
    x : ndarray, shape (N, D_in)
    y : ndarray
        Labels (N,) or targets (N, D_out).
    cfg : StepConfig
        ``loss``; ``lam`` (λ of λ Σ_g (n_g/n)(1 − r_g)²); ``density``, the estimate for
        dt_g/dr_g applied to each group's magnitudes (as in
        :class:`refprune.lrp.reference.LRPConfig`: bandwidth rule, reflection and method);
        ``learn_r`` (False: r stays where it is, τ and the weights are learned).

    Returns
    -------
    float
        Data loss + λ Σ_g (n_g/n)(1 − r_g)² of this batch (r_g before the update).

    Notes
    -----
    Against the reference path (:func:`refprune.lrp.reference.lrp_gradients` with the state's
    grouping, Adam, clamps) the step differs
    only by the cutoff of :func:`refprune.train.kernels.mask_cutoff` (about an ulp of each
    output), the KDE truncation of :func:`refprune.train.steps.softband.kde_reach` and the
    flush of Adam moments below :func:`refprune.train.kernels.flush_level`.
    """
    density = check_density(cfg.density)
    clock = [time.perf_counter()] if ws.phase_times is not None else None
    tick = (lambda: clock.append(time.perf_counter())) if clock else (lambda: None)
    rs = state.rs.copy()
    groups = phase_threshold(state, ws, density)                                   # Algorithm 1, line 16
    tick()
    bands = phase_masks(state, ws, groups, density)                                # line 6
    tick()
    value, g, db = phase_forward_backward(state, ws, buffers(ws)["masked"], x, y, cfg.loss)  # lines 7-12
    tick()
    d_tau, d_t, f_t = phase_gradients_density_adam(state, ws, g, groups, bands, density, db)  # 13-15
    tick()
    d_r, reg = ratio_gradient_and_regulariser(d_t, f_t, rs, cfg.lam, state.fractions)  # eqs. (2.11), (2.23)
    update_ratios_temperatures(state, d_r, d_tau, cfg.learn_r)                     # line 15
    tick()
    if clock:
        ws.phase_times.extend(b - a for a, b in zip(clock, clock[1:]))
    state.ts[:] = [p.thr.t for p in groups]
    state.step += 1
    return value + reg
