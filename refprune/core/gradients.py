"""The LRP gradients of METHOD §3, one short function per row of its table.

Notation: g = ∂L/∂ŵ is the gradient of the loss with respect to the masked
weight ŵ = m(w)·w, from an ordinary backward pass; m the soft mask and
s = m(1 − m) its sigmoid slope; z = (w² − t²)/τ. By the method's definition t
is a function of r only (stop-gradient: nothing flows from t into w).

Derivations: ``docs/derivations.md``. Every formula here is checked against
central finite differences by :mod:`refprune.oracle.gradcheck`.
"""

from __future__ import annotations

import math

import numpy as np


def grad_weight(g: np.ndarray, w: np.ndarray, m: np.ndarray, s: np.ndarray, tau: float) -> np.ndarray:
    """∂L/∂w = g · (m + (2w²/τ)·s).

    Thesis eq. (2.3) prints ``(2w/τ)·m(1 − m)``; that is a typo. From
    ŵ = m(w)·w: dŵ/dw = m + w·dm/dw, and dm/dw = (2w/τ)·s, so the second term
    is (2w²/τ)·s.

    Parameters
    ----------
    g : ndarray, shape (D, M)
        ∂L/∂ŵ of one layer.
    w : ndarray, shape (D, M)
        The unmasked weights.
    m, s : ndarray, shape (D, M)
        Soft mask and its slope m(1 − m).
    tau : float

    Returns
    -------
    ndarray, shape (D, M)
    """
    return g * (m + (2.0 * (w * w) / tau) * s)  # thesis eq. (2.3), corrected


def grad_tau(gs, ws, ss, zs, tau: float) -> float:
    """∂L/∂τ = Σ g · w · s · (t² − w²)/τ²   (thesis eq. (2.10)).

    Summed over all prunable weights of all layers. Evaluated as
    −Σ g·w·(z·s)/τ with z = (w² − t²)/τ: z·s is bounded, so nothing overflows
    for τ down to 1e-12 even in float32.

    Parameters
    ----------
    gs, ws, ss, zs : lists of ndarray, one per layer
        g, w, s and z of each layer.
    tau : float

    Returns
    -------
    float
    """
    total = sum(float(np.sum(g * w * (z * s))) for g, w, s, z in zip(gs, ws, ss, zs))
    return -total / tau  # thesis eq. (2.10)


def grad_threshold(gs, ws, ss, t: float, tau: float) -> float:
    """∂L/∂t = Σ g · w · s · (−2t/τ)   (the inner sum of thesis eq. (2.11)).

    Parameters
    ----------
    gs, ws, ss : lists of ndarray, one per layer
    t, tau : float

    Returns
    -------
    float
    """
    total = sum(float(np.sum(g * w * s)) for g, w, s in zip(gs, ws, ss))
    return total * (-2.0 * t / tau)  # thesis eq. (2.11), inner sum


def threshold_derivative(density_at_t: float) -> float:
    """dt/dr = 1/f(t)   (thesis eq. (2.16), from F(t(r)) = r).

    The one gate of every dt/dr route (exact, fused training step, published
    emulation). It accepts f(t) exactly when it is a finite, positive, *normal*
    number of its own floating dtype (float64 for Python floats), and refuses
    otherwise: f(t) <= 0 or NaN (the derivative does not exist), f(t) infinite
    (1/f would silently be 0), or f(t) subnormal (it has lost relative
    precision, and in float64 1/f overflows to inf). There is deliberately no
    floor relative to the data's scale: the training paths evaluate f̂(t) by
    the direct kernel sum, accurate to a few ulp at any normal positive value,
    so such a floor would refuse correct values (docs/derivations.md §5).

    Parameters
    ----------
    density_at_t : float
        f(t), the density of the magnitudes at the threshold.

    Returns
    -------
    float
        1/f(t) in float64, positive and finite: raising r raises t.

    Raises
    ------
    ValueError
        If f(t) is not a finite, positive, normal float.
    """
    dtype = np.asarray(density_at_t).dtype
    tiny = np.finfo(dtype if np.issubdtype(dtype, np.floating) else np.float64).tiny
    f = float(density_at_t)
    if not (tiny <= f < math.inf):
        raise ValueError(f"density_at_t must be a finite, positive, normal float for dt/dr = 1/f(t) "
                         f"(>= {tiny:.3g} in {dtype}), got {density_at_t!r}")
    return 1.0 / f  # thesis eq. (2.16)


def grad_ratio(dL_dt: float, dt_dr: float, r: float, lam: float) -> float:
    """∂L/∂r = (dt/dr)·∂L/∂t + 2λ(r − 1)   (thesis eq. (2.11) plus the regulariser).

    The second term is d/dr of L_R = λ(1 − r)² (thesis eq. (2.23)).
    """
    return dt_dr * dL_dt + 2.0 * lam * (r - 1.0)  # thesis eqs. (2.11), (2.23)


def regulariser(r: float, lam: float) -> float:
    """L_R = λ(1 − r)²   (thesis eq. (2.23))."""
    return lam * (1.0 - r) ** 2  # thesis eq. (2.23)


def group_regulariser(rs, lam: float, fractions) -> float:
    """L_R = λ Σ_g (n_g/n)(1 − r_g)² over the groups of a grouping (thesis eq. (2.23), one term per group).

    ``fractions``: n_g/n per group (:meth:`refprune.core.groups.Grouping.fractions`).
    """
    rs = np.asarray(rs, dtype=np.float64)
    return float(lam * np.sum(fractions * (1.0 - rs) ** 2))


def group_grad_ratio(d_t, dt_dr, rs, lam: float, fractions) -> np.ndarray:
    """∂L/∂r_g = (dt_g/dr_g)·∂L/∂t_g + 2λ(n_g/n)(r_g − 1), one per group, shape (G,)."""
    rs = np.asarray(rs, dtype=np.float64)
    return np.asarray(dt_dr) * np.asarray(d_t) + 2.0 * lam * fractions * (rs - 1.0)  # eqs. (2.11), (2.23)
