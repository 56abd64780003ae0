"""The exact LRP step (METHOD §3–§4, Algorithm 1 lines 6–16), fast and equal to the reference.

The gradients are those of :mod:`refprune.core.gradients` (the functions
:func:`refprune.lrp.reference.lrp_gradients` uses and the gradient oracle proves),
computed per half of the flat weights on two threads and only where the mask
is soft (:mod:`refprune.train.steps.softband`). The threshold comes from selection in a
bracket around the previous t (the same order statistics as a full
selection). The density for dt/dr follows the one :class:`DensityConfig`
the step is given: method "direct" is the Gaussian sum at t with the
config's bandwidth rule and reflection, over the kernel's reach of t (fused
into the gradient pass); method "fft" is the reference route
:func:`refprune.density.config.density_at`. Tested whole-step against the reference
path (tests/test_step_equivalence.py).
"""

from __future__ import annotations

import time

import numpy as np

from refprune.core.gradients import grad_ratio, regulariser, threshold_derivative
from refprune.density.config import DensityConfig, density_at
from refprune.density.kde import bandwidth
from refprune.train.kernels import kde_at_point, mask_cutoff, scott_bandwidth_from_sums
from refprune.train.steps.common import (
    TrainState,
    adam_begin,
    adam_biases,
    adam_weights_part,
    buffers,
    on_halves,
    phase_forward_backward,
    step_threshold,
    update_r_tau,
)
from refprune.train.steps.softband import (
    band_half_width,
    half_density_sum,
    half_gradients,
    half_masks,
    kde_reach,
)


def check_density(density) -> DensityConfig:
    """The step's density config; anything but a DensityConfig is an error (no implicit default)."""
    if not isinstance(density, DensityConfig):
        raise ValueError(f"density must be a DensityConfig, got {density!r}")
    return density


def phase_threshold(state: TrainState):
    """Magnitudes a = |w| of all weights, t(r) (stop-gradient: t depends on r only), and (Σa, Σa²)."""
    a = buffers(state)["a"]
    thr, sums = step_threshold(state, a, with_sums=True)
    return a, thr, sums


def point_bandwidth(a: np.ndarray, sums, density: DensityConfig) -> float:
    """The config's bandwidth of the magnitudes: Scott's from the sums (eq. (2.19)), else :func:`bandwidth`."""
    if density.rule == "scott":
        return scott_bandwidth_from_sums(sums[0], sums[1], a.size)  # thesis eq. (2.19)
    return bandwidth(a, density.rule)                                 # thesis eq. (2.18)


def phase_masks(state: TrainState, a: np.ndarray, t: float, h: float, density: DensityConfig):
    """Masks on the band, hard masks elsewhere: fills the flat ŵ (``buffers(state)['masked']``).

    Returns
    -------
    dict
        {start of the half: HalfBand} for the gradient pass.
    """
    buf, dtype = buffers(state), state.flat_w.dtype
    cutoff = mask_cutoff(dtype, t, state.tau)
    reach = band_half_width(t, state.tau, cutoff)
    window = kde_reach(dtype) * h if density.method == "direct" else 0.0

    def part(sl):
        return sl.start, half_masks(sl, a, state.flat_w, t, state.tau, cutoff, reach, buf, window)

    return dict(on_halves(state, part))


def phase_gradients_density_adam(state: TrainState, a, g, bands: dict, t: float, h: float,
                                 density: DensityConfig, db):
    """Everything after the backward pass that acts elementwise, one pass per half.

    For each half: ∂L/∂w (eq. (2.3) corrected) and its terms of ∂L/∂τ
    (eq. (2.10)) and ∂L/∂t (eq. (2.11)); its part of the KDE sum at t
    (eq. (2.17), method "direct"); and the Adam update of its weights (the
    weights' gradient is final, and ``a`` — the pre-update magnitudes — is a
    separate buffer). Then Adam on the biases and the periodic flush.

    Returns
    -------
    d_tau, d_t, f_t : float
        ∂L/∂τ, ∂L/∂t, and the density f(t) for dt/dr.
    """
    buf, w, tau = buffers(state), state.flat_w, state.tau
    direct = density.method == "direct"
    adam_begin(state)

    def part(sl):
        band = bands[sl.start]
        d_tau, d_t = half_gradients(sl, band, g, w, t, tau, buf)
        f_part = half_density_sum(band, t, h, density.reflect, buf["kde"][sl]) if direct else 0.0
        adam_weights_part(state, sl, buf["dw"])
        return d_tau, d_t, f_part

    (tau1, t1, f1), (tau2, t2, f2) = on_halves(state, part)
    adam_biases(state, db)
    if not direct:                       # the configured estimate (e.g. the thesis's binned FFT)
        return tau1 + tau2, t1 + t2, float(density_at(a, np.array([t]), density)[0])
    f_t = (f1 + f2) / a.size             # thesis eq. (2.17)
    if not f_t > 0:                      # t in a gap wider than the window: the full sum
        f_t = kde_at_point(a, t, h, reflect=density.reflect)
    return tau1 + tau2, t1 + t2, f_t


PHASES = ("threshold", "masks", "forward_backward", "gradients_density_adam", "ratio_temperature")


def exact_step(state: TrainState, x, y, loss: str, lam: float,
               density: DensityConfig = DensityConfig(), phase_times: list | None = None,
               learn_r: bool = True) -> float:
    """One LRP step on the exact gradient path (METHOD §3, Algorithm 1).

    Parameters
    ----------
    state : TrainState
        Updated in place.
    x : ndarray, shape (N, D_in)
    y : ndarray
        Labels (N,) or targets (N, D_out).
    loss : {"ce", "mse"}
    lam : float
        λ of the regulariser (thesis eq. (2.23)).
    density : DensityConfig
        The density estimate for dt/dr, as in :class:`refprune.lrp.reference.LRPConfig`
        (its bandwidth rule, reflection and method are all followed).
    phase_times : list, optional
        If given, the seconds of each of ``PHASES`` are appended (for the benchmarks).
    learn_r : bool
        False: r stays where it is (no Adam step on it; a fixed-ratio soft
        mask), τ and the weights are still learned.

    Returns
    -------
    float
        Data loss + λ(1 − r)² of this batch.

    Notes
    -----
    Against the reference path (:func:`refprune.lrp.reference.lrp_gradients`, Adam,
    clamps) the step differs only by the cutoff of
    :func:`refprune.train.kernels.mask_cutoff` (about an ulp of each output), the
    KDE truncation of :func:`refprune.train.steps.softband.kde_reach` and the flush of
    Adam moments below :func:`refprune.train.kernels.flush_level`.
    """
    density = check_density(density)
    clock = [time.perf_counter()] if phase_times is not None else None
    tick = (lambda: clock.append(time.perf_counter())) if clock else (lambda: None)
    r = state.r
    a, thr, sums = phase_threshold(state)                              # Algorithm 1, line 16
    h = point_bandwidth(a, sums, density) if density.method == "direct" else float("nan")
    tick()
    bands = phase_masks(state, a, thr.t, h, density)                   # line 6
    tick()
    value, g, db = phase_forward_backward(state, buffers(state)["masked"], x, y, loss)  # lines 7-12
    tick()
    d_tau, d_t, f_t = phase_gradients_density_adam(state, a, g, bands, thr.t, h, density, db)  # 13-15
    tick()
    dt_dr = threshold_derivative(f_t)                                  # eq. (2.16)
    d_r = grad_ratio(d_t, dt_dr, r, lam)                               # eqs. (2.11), (2.23)
    update_r_tau(state, d_r, d_tau, learn_r)                           # line 15
    tick()
    if clock:
        phase_times.extend(b - a for a, b in zip(clock, clock[1:]))
    state.t = thr.t
    state.step += 1
    return value + regulariser(r, lam)
