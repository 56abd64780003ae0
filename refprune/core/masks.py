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
# The temperatures the soft mask is derived and tested to be stable for (with |w|, t <= 1e3;
# docs/derivations.md, "Why nothing overflows"; METHOD §2 asks for τ down to 1e-12). Above
# 1e3, z = (w² − t²)/τ of weights of ordinary size is ~1e-3 or less: every mask is 1/2.
TAU_STABLE_MIN, TAU_STABLE_MAX = 1e-12, 1e3


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

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.core.masks import mask_logit
    >>> mask_logit(np.array([0.5, 1.0, -2.0]), t=1.0, tau=1.0).tolist()   # w² − 1
    [-0.75, 0.0, 3.0]
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
    With E = e^{−z}: m = 1/(1 + E) and s = E·m² (since 1 − m = E·m), which
    stays accurate where m rounds to 1, unlike m·(1 − m). −z is capped at
    ``EXPONENT_CAP[dtype]``, the equivalent of the shift of thesis eqs.
    (2.21)–(2.22): below z = −cap the computed m is about e^{−cap} instead of
    an overflow. Why this is the same function and why the cap is harmless:
    docs/derivations.md, appendix A2.

    Examples
    --------
    At |w| = t the mask is 1/2 and its slope 1/4, whatever τ:

    >>> import numpy as np
    >>> from refprune.core.masks import soft_mask_and_slope
    >>> m, s, z = soft_mask_and_slope(np.array([-0.3, 0.3]), t=0.3, tau=1e-12)
    >>> m.tolist(), s.tolist(), z.tolist()
    ([0.5, 0.5], [0.25, 0.25], [0.0, 0.0])
    >>> m, s, z = soft_mask_and_slope(np.array([0.0, 1e3]), t=0.3, tau=1e-12)   # z = −9e10, 1e18
    >>> [f"{v:.3g}" for v in m]                  # e^{−700}: the cap binds, nothing overflows
    ['9.86e-305', '1']
    """
    m, s, z, E = (np.empty_like(w) for _ in range(4))
    logit_into(w, t, tau, z, E)  # z = (w² − t²)/τ
    np.negative(z, out=E)
    cap = EXPONENT_CAP[w.dtype.type]
    if t * t / tau > cap:        # −z <= t²/τ, so below that the cap cannot bind
        np.minimum(E, cap, out=E)  # the shift of eqs. (2.21)–(2.22)
    sigmoid_and_slope_into(E, m, s)
    return m, s, z


def logit_into(w: np.ndarray, t: float, tau: float, z: np.ndarray, scratch: np.ndarray) -> None:
    """z = (w² − t²)/τ written into ``z``, as (|w| − t)(|w| + t)·(1/τ) (thesis eq. (2.2)).

    ``z`` and ``scratch`` are arrays shaped like w (scratch is overwritten). The product form
    has no cancellation of w² against t², and one division serves every weight.

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.core.masks import logit_into
    >>> w = np.array([0.5, 1.0, -2.0]); z = np.empty(3)
    >>> logit_into(w, 1.0, 0.5, z, np.empty(3)); z.tolist()
    [-1.5, 0.0, 6.0]
    """
    np.abs(w, out=scratch)
    np.subtract(scratch, t, out=z)
    scratch += t
    z *= scratch                 # (|w| − t)(|w| + t) = w² − t²
    z *= 1.0 / tau               # thesis eq. (2.2), argument of σ (one division, not n)


def sigmoid_and_slope_into(E: np.ndarray, m: np.ndarray, s: np.ndarray) -> None:
    """From E = −z (finite after any cap), in place: E ← e^{−z}, m = 1/(1 + E) = σ(z), s = E·m² = m(1 − m).

    All three arrays have one shape. s = E·m² stays accurate where m rounds to 1
    (docs/derivations.md, appendix A2).

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.core.masks import sigmoid_and_slope_into
    >>> E, m, s = np.array([0.0, -40.0]), np.empty(2), np.empty(2)   # z = 0 and z = 40
    >>> sigmoid_and_slope_into(E, m, s); m.tolist(), [f"{v:.3g}" for v in s]
    ([0.5, 1.0], ['0.25', '4.25e-18'])
    """
    np.exp(E, out=E)             # E = e^{−z}
    np.add(E, 1, out=m)
    np.reciprocal(m, out=m)      # m = 1/(1 + e^{−z})   (thesis eq. (2.2))
    np.multiply(E, m, out=s)     # E·m = 1 − m
    s *= m                       # s = m(1 − m)


def soft_mask(w: np.ndarray, t: float, tau: float) -> np.ndarray:
    """Soft mask m(w) = σ((w² − t²)/τ) (thesis eq. (2.2)); see :func:`soft_mask_and_slope`.

    Parameters
    ----------
    w : ndarray, any shape
    t, tau : float
        Threshold (>= 0) and temperature (> 0).

    Returns
    -------
    ndarray, same shape as w, in [0, 1]

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.core.masks import soft_mask
    >>> m = soft_mask(np.array([1.0, 2.0]), t=1.0, tau=1.0)   # σ(0), σ(3)
    >>> [round(float(v), 6) for v in m]
    [0.5, 0.952574]
    """
    return soft_mask_and_slope(w, t, tau)[0]


def soft_mask_derivatives(w: np.ndarray, t: float, tau: float):
    """Partial derivatives of the soft mask m(w; t, τ) (thesis eqs. (2.3), (2.10), (2.11)).

    Parameters
    ----------
    w : ndarray, any shape
    t, tau : float

    Returns
    -------
    dm_dw : ndarray, same shape as w
        (2w/τ)·s (the derivative eq. (2.3)'s ŵ-gradient is built from).
    dm_dt : ndarray, same shape as w
        −(2t/τ)·s.
    dm_dtau : ndarray, same shape as w
        (t² − w²)/τ² · s = −z·s/τ, evaluated in that order so nothing overflows
        for τ down to 1e-12.

    Examples
    --------
    At w = t = 1, τ = 1 (s = 1/4): dm/dw = 1/2, dm/dt = −1/2, dm/dτ = 0; and dm/dw
    agrees with a central difference:

    >>> import numpy as np
    >>> from refprune.core.masks import soft_mask, soft_mask_derivatives
    >>> [d.tolist() for d in soft_mask_derivatives(np.array([1.0]), t=1.0, tau=1.0)]
    [[0.5], [-0.5], [-0.0]]
    >>> w, h = np.array([1.3]), 1e-6
    >>> fd = (soft_mask(w + h, 1.0, 0.5) - soft_mask(w - h, 1.0, 0.5)) / (2 * h)
    >>> bool(np.isclose(soft_mask_derivatives(w, 1.0, 0.5)[0][0], fd[0]))
    True
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

    Parameters
    ----------
    w : ndarray, any shape
    t : float

    Returns
    -------
    ndarray, same shape and dtype as w, of 0 and 1

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.core.masks import hard_mask
    >>> hard_mask(np.array([-2.0, -0.5, 0.5, 1.0, 3.0]), t=1.0).tolist()
    [1.0, 0.0, 0.0, 1.0, 1.0]
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

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.core.masks import sparsity
    >>> sparsity([np.array([1.0, 0.0, 0.0, 0.0]), np.array([1.0, 1.0])])   # 3 of 6 pruned
    (0.5, [0.75, 0.0])
    """
    pruned = [int(m.size - np.count_nonzero(m)) for m in hard_masks]
    sizes = [int(m.size) for m in hard_masks]
    return sum(pruned) / sum(sizes), [p / n for p, n in zip(pruned, sizes)]
