"""Work only where the mask is soft: the exact step's masks, gradients and KDE sum on the band.

With the training path's cutoff C (:func:`refprune.train.kernels.mask_cutoff`) the
mask is exactly 1[|w| > t] and its slope exactly 0 wherever |z| >= C,
z = (w² − t²)/τ. There a weight contributes nothing to ∂L/∂τ, ∂L/∂t or the
slope term of ∂L/∂w, and ŵ = w·1[|w| >= t], ∂L/∂w = g·1[|w| >= t]: one pass.
The band |z| < C is |w| in (sqrt(t² − Cτ), sqrt(t² + Cτ)), inside the
symmetric interval |a − t| < :func:`band_half_width` (a = |w|). The Gaussian
KDE sum for f(t) (thesis eq. (2.17)) needs only |a − t| < c·h, c =
:func:`kde_reach` (the truncation bound is stated there). Each part of the
flat weights (a half, or one group's slice:
:attr:`refprune.train.steps.workspace.Workspace.parts`) selects the indices
of both intervals in one pass and computes sigmoid, slope, logit, the sums
and the KDE over them only. When the band holds more than
``FALLBACK_FRACTION`` of the part (τ large, early in training), the part's
masks, slopes and gradients are computed in full, with the same cutoff
(:func:`refprune.train.kernels.soft_mask_and_slope_of_magnitudes`), and its
KDE sum still runs over the gathered window only (the whole part when the
window itself holds more than ``FALLBACK_FRACTION`` of it).

Both routes give the same m, s, z, ŵ and ∂L/∂w elementwise, bit for bit for
every weight in the band and exactly (0, 1 or g) outside it; the sums differ
by summation order only, plus the KDE truncation (tested in
tests/test_band.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from refprune.train.kernels import (
    flush_subnormals,
    fused_gradients,
    gradient_flush_level,
    kde_at_point,
    soft_mask_and_slope_into,
    soft_mask_and_slope_of_magnitudes,
)

# Above this share of a part's weights in the band (or the KDE window) the
# index gathering costs more than it saves: compute the part in full (sum the whole part).
FALLBACK_FRACTION = 0.5


def kde_reach(dtype) -> float:
    """c = sqrt(2 ln(1/eps)) bandwidths: the KDE window |a − t| < c·h.

    Each Gaussian term left out is below e^{−c²/2} = eps of the kernel's peak,
    so f(t) changes by at most eps·(n_out/n)/(sqrt(2π)·h) (absolute), n_out
    the number of magnitudes outside the window — rounding level of the
    dtype (float32: c = 5.6, float64: c = 8.5).
    """
    return math.sqrt(2.0 * math.log(1.0 / float(np.finfo(dtype).eps)))


def band_half_width(t: float, tau: float, cutoff: float) -> float:
    """Half-width of the interval around t, in |w|, that holds the band |z| < C.

    |z| < C  ⇔  |w| in (sqrt(max(t² − Cτ, 0)), sqrt(t² + Cτ)); the wider side
    (the lower one unless the clamp at 0 binds, the square root being concave).
    """
    width = cutoff * tau
    return max(t - math.sqrt(max(t * t - width, 0.0)), math.sqrt(t * t + width) - t)


@dataclass
class PartBand:
    """One part of the flat weights after its mask pass.

    Attributes
    ----------
    idx : ndarray of int or slice
        Positions (within the part) of the band; ``slice(None)`` when the part
        was computed in full.
    m, s, z : ndarray
        Mask, slope and logit at those positions.
    a : ndarray
        The magnitudes of the KDE window, in their order in the part (the whole part, a
        view, when the window holds more than ``FALLBACK_FRACTION`` of it, or when the full
        route has no KDE to sum).
    """

    idx: object
    m: np.ndarray
    s: np.ndarray
    z: np.ndarray
    a: np.ndarray

    @property
    def full(self) -> bool:
        return isinstance(self.idx, slice)


def part_masks(sl: slice, a, w, t: float, tau: float, cutoff: float, reach: float, buf,
               window_reach: float = 0.0, masked: bool = True) -> PartBand:
    """Mask pass of one part: fills ``buf['masked']`` (ŵ) on ``sl`` (not with ``masked`` False).

    ``reach``: the band's half-width (:func:`band_half_width`), where masks and
    slopes are computed; ``window_reach``: the KDE window's (0: no KDE), whose
    magnitudes are gathered for the density sum. ``buf``: flat arrays
    ``masked``, ``hard`` (bool; the band route leaves 1[|w| >= t] in it, the
    hard mask outside the band, the full route uses it as scratch), ``tmp``,
    and ``m``, ``s``, ``z`` (used when the part is computed in full).
    """
    a_s, w_s, masked_s, hard_s, d = a[sl], w[sl], buf["masked"][sl], buf["hard"][sl], buf["tmp"][sl]
    np.subtract(a_s, a_s.dtype.type(t), out=d)
    np.abs(d, out=d)
    np.less(d, reach, out=hard_s)
    if np.count_nonzero(hard_s) > FALLBACK_FRACTION * a_s.size:      # band wide: the full computation
        window = window_magnitudes(a_s, d, window_reach, hard_s) if window_reach > 0 else a_s
        out = (buf["m"][sl], buf["s"][sl], buf["z"][sl], d, hard_s)
        m, s, z = soft_mask_and_slope_of_magnitudes(a_s, t, tau, out, cutoff=cutoff)
        if masked:
            np.multiply(m, w_s, out=masked_s)                         # ŵ = m(w)·w
        return PartBand(slice(None), m, s, z, window)
    idx = np.flatnonzero(hard_s)
    window = a_s[idx] if window_reach <= reach else window_magnitudes(a_s, d, window_reach, hard_s)
    np.greater_equal(a_s, a_s.dtype.type(t), out=hard_s)
    m, s, z = soft_mask_and_slope_into(a_s[idx], t, tau, cutoff=cutoff)    # the mask is even in w
    if masked:
        np.multiply(w_s, hard_s, out=masked_s)                        # ŵ = 1[|w| >= t]·w outside the band
        masked_s[idx] = m * w_s[idx]                                  # ŵ = m(w)·w in the band
    return PartBand(idx, m, s, z, window)


def window_magnitudes(a_s, d, window_reach: float, scratch):
    """The magnitudes with d = |a − t| < ``window_reach`` (the KDE window), in their order.

    When the window holds more than ``FALLBACK_FRACTION`` of the part, the
    whole part (a view) is summed instead of gathering it. ``scratch``: a
    boolean array shaped like ``a_s``.
    """
    np.less(d, window_reach, out=scratch)
    if np.count_nonzero(scratch) > FALLBACK_FRACTION * a_s.size:
        return a_s
    return a_s[np.flatnonzero(scratch)]


def part_gradients(sl: slice, band: PartBand, g, w, t: float, tau: float, buf):
    """∂L/∂w of one part into ``buf['dw']`` (eq. (2.3) corrected) and its terms of ∂L/∂τ, ∂L/∂t.

    ``buf``: flat arrays ``dw``, ``q`` and ``hard`` (the one :func:`part_masks` filled).

    Returns
    -------
    d_tau, d_t : float
        This part's terms of eqs. (2.10) and (2.11) (inner sum).
    """
    g_s, w_s, dw_s = g[sl], w[sl], buf["dw"][sl]
    if band.full:
        _, d_tau, d_t = fused_gradients(g_s, w_s, band.m, band.s, band.z, t, tau, (dw_s, buf["q"][sl]))
        return d_tau, d_t
    np.multiply(g_s, buf["hard"][sl], out=dw_s)        # m ∈ {0, 1}, s = 0: ∂L/∂w = g·m
    dwb, d_tau, d_t = fused_gradients(g_s[band.idx], w_s[band.idx], band.m, band.s, band.z, t, tau)
    flush_subnormals(dwb, gradient_flush_level(dwb.dtype), np.empty_like(dwb))  # m ≈ e^{−C}: g·m may be tiny
    dw_s[band.idx] = dwb
    return d_tau, d_t


def part_density_sum(band: PartBand, t: float, h: float, reflect: bool, out=None) -> float:
    """This part's Gaussian-kernel sum at t over its window, times 1/(sqrt(2π)·h) (eq. (2.17) before 1/n).

    ``out``: a scratch buffer at least as long as the window.
    """
    if band.a.size == 0:
        return 0.0
    scratch = None if out is None else out[:band.a.size]
    return kde_at_point(band.a, t, h, scratch, reflect=reflect) * band.a.size
