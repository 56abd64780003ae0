"""Soft and hard pruning masks, their derivatives, and sparsity.

The soft mask of a weight w, given threshold t and temperature τ, is

    m(w) = σ(z),   z = (w² − t²)/τ                      thesis eq. (2.2)
         = e^{w²/τ} / (e^{w²/τ} + e^{t²/τ})              thesis eq. (2.20)

and the hard mask is 1[|w| >= t] (thesis eq. (2.1)), i.e. 1[m(w) >= 1/2].

Numerical stability (thesis eqs. (2.21)–(2.22)). Written as in eq. (2.20) the
exponents w²/τ and t²/τ overflow as τ → 0. The thesis subtracts θ = max(w²/τ,
t²/τ) from both; here the equivalent logistic form m = 1/(1 + e^{−z}) is used
with the exponent −z capped where e^{−z} would overflow (see
:func:`soft_mask_and_slope`). The difference w² − t² is formed as (|w| − t)(|w| + t), which
keeps its relative accuracy when |w| is close to t.
"""

from __future__ import annotations

import numpy as np

# Largest exponent evaluated: e^cap is finite with room to spare (float32
# overflows above 88.7, float64 above 709.8).
EXPONENT_CAP = {np.float32: 80.0, np.float64: 700.0}
# Relative rounding of a float32 number, 2⁻²⁴: the logit z = (w² − t²)/τ of a float32 weight
# carries up to about 2t²/τ times it (the cancellation in w² − t²).
FLOAT32_UNIT_ROUNDOFF = 2.0 ** -24


def mask_logit(w: np.ndarray, t: float, tau: float) -> np.ndarray:
    """z = (w² − t²)/τ, the argument of the sigmoid in thesis eq. (2.2).

    Parameters
    ----------
    w : ndarray, any shape
    t : float, threshold (>= 0)
    tau : float, temperature (> 0)

    Returns
    -------
    z : ndarray, same shape and dtype as w
    """
    a = np.abs(w)
    return ((a - t) * (a + t)) / tau  # thesis eq. (2.2), argument of σ


def soft_mask_and_slope(w: np.ndarray, t: float, tau: float):
    """Soft mask m = σ(z) and s = m(1 − m), computed without overflow.

    Parameters
    ----------
    w : ndarray, any shape
    t : float
        Threshold t (>= 0).
    tau : float
        Temperature τ (> 0).

    Returns
    -------
    m : ndarray, same shape as w
        σ((w² − t²)/τ), in [0, 1].
    s : ndarray, same shape as w
        m(1 − m) = σ'(z), in [0, 1/4]; it is the factor every mask derivative
        carries (METHOD §3).
    z : ndarray, same shape as w
        The logit (w² − t²)/τ.

    Notes
    -----
    With E = e^{−z}: m = 1/(1 + E) and s = m(1 − m) = E·m², since
    1 − m = E·m. Both are accurate to an ulp for every z (s stays accurate
    where m rounds to 1, unlike m·(1 − m)). Overflow of E is the hazard eq.
    (2.20) has as τ → 0; thesis eqs. (2.21)–(2.22) shift the exponents, and
    the equivalent here caps −z at ``EXPONENT_CAP[dtype]``: where z is below
    −cap the true m is below e^{−cap} (1e-35 in float32, 1e-304 in float64)
    and the computed one is about that, instead of the unrepresentable
    value.
    """
    m, s, z, E = (np.empty_like(w) for _ in range(4))
    np.abs(w, out=E)
    np.subtract(E, t, out=z)
    E += t
    z *= E                       # (|w| − t)(|w| + t) = w² − t²
    z *= 1.0 / tau               # thesis eq. (2.2), argument of σ (one division, not n)
    np.negative(z, out=E)
    cap = EXPONENT_CAP[w.dtype.type]
    if t * t / tau > cap:        # −z <= t²/τ, so below that the cap cannot bind
        np.minimum(E, cap, out=E)  # the shift of eqs. (2.21)–(2.22)
    np.exp(E, out=E)             # E = e^{−z}, finite
    np.add(E, 1, out=m)
    np.reciprocal(m, out=m)      # m = 1/(1 + e^{−z})   (thesis eq. (2.2))
    np.multiply(E, m, out=s)     # E·m = 1 − m
    s *= m                       # s = m(1 − m)
    return m, s, z


def soft_mask(w: np.ndarray, t: float, tau: float) -> np.ndarray:
    """Soft mask m(w) = σ((w² − t²)/τ) (thesis eq. (2.2)); see :func:`soft_mask_and_slope`."""
    return soft_mask_and_slope(w, t, tau)[0]


def soft_mask_derivatives(w: np.ndarray, t: float, tau: float):
    """Partial derivatives of the soft mask m(w; t, τ).

    Returns
    -------
    dm_dw : ndarray
        (2w/τ)·s (the derivative eq. (2.3)'s ŵ-gradient is built from).
    dm_dt : ndarray
        −(2t/τ)·s.
    dm_dtau : ndarray
        (t² − w²)/τ² · s = −z·s/τ, evaluated in that order so nothing overflows
        for τ down to 1e-12.
    """
    _, s, z = soft_mask_and_slope(w, t, tau)
    dm_dw = (2.0 * w / tau) * s
    dm_dt = (-2.0 * t / tau) * s
    dm_dtau = -(z * s) / tau
    return dm_dw, dm_dt, dm_dtau


def hard_mask(w: np.ndarray, t: float) -> np.ndarray:
    """Hard mask 1[|w| >= t] (thesis eq. (2.1)) as an array of the dtype of w.

    Equal to 1[m(w) >= 1/2] for every τ > 0. A weight exactly at the threshold
    is kept.
    """
    return (np.abs(w) >= t).astype(w.dtype)


def sparsity(hard_masks) -> tuple[float, list[float]]:
    """Fraction of prunable weights whose hard mask is 0, globally and per layer.

    Parameters
    ----------
    hard_masks : list of ndarray
        One 0/1 mask per layer.

    Returns
    -------
    global_sparsity : float
        Pruned weights / all prunable weights.
    per_layer : list of float
        Pruned weights / weights of that layer.

    Notes
    -----
    This is not r: ties at the threshold are kept, and during training the
    masks follow t(r) computed from weights that keep changing.
    """
    pruned = [int(m.size - np.count_nonzero(m)) for m in hard_masks]
    sizes = [int(m.size) for m in hard_masks]
    return sum(pruned) / sum(sizes), [p / n for p, n in zip(pruned, sizes)]
