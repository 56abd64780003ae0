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

    Examples
    --------
    At w = t the mask is 1/2 and its slope 1/4, so ∂L/∂w = g·(1/2 + (2w²/τ)/4):

    >>> import numpy as np
    >>> from refprune.core.gradients import grad_weight
    >>> from refprune.core.masks import soft_mask_and_slope
    >>> w = np.array([[1.0]])
    >>> m, s, z = soft_mask_and_slope(w, t=1.0, tau=1.0)
    >>> grad_weight(np.ones_like(w), w, m, s, tau=1.0).tolist()   # 1/2 + 2·1/4
    [[1.0]]
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
        g, w, s and z of each layer, all of the layer's weight shape.
    tau : float

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.core.gradients import grad_tau
    >>> from refprune.core.masks import soft_mask_and_slope
    >>> w, g, t, tau = np.array([0.5, 2.0]), np.array([1.0, -1.0]), 1.0, 0.5
    >>> m, s, z = soft_mask_and_slope(w, t, tau)
    >>> d_tau = grad_tau([g], [w], [s], [z], tau)
    >>> bool(np.isclose(d_tau, np.sum(g * w * s * (t**2 - w**2) / tau**2)))   # eq. (2.10)
    True
    """
    total = sum(float(np.sum(g * w * (z * s))) for g, w, s, z in zip(gs, ws, ss, zs))
    return -total / tau  # thesis eq. (2.10)


def grad_threshold(gs, ws, ss, t: float, tau: float) -> float:
    """∂L/∂t = Σ g · w · s · (−2t/τ)   (the inner sum of thesis eq. (2.11)).

    Parameters
    ----------
    gs, ws, ss : lists of ndarray, one per layer
        g, w and s of each layer, all of the layer's weight shape.
    t, tau : float

    Returns
    -------
    float

    Examples
    --------
    One weight at the threshold (s = 1/4): 1·1·(1/4)·(−2·1/1) = −1/2.

    >>> import numpy as np
    >>> from refprune.core.gradients import grad_threshold
    >>> grad_threshold([np.ones(1)], [np.ones(1)], [np.full(1, 0.25)], t=1.0, tau=1.0)
    -0.5
    """
    total = sum(float(np.sum(g * w * s)) for g, w, s in zip(gs, ws, ss))
    return total * (-2.0 * t / tau)  # thesis eq. (2.11), inner sum


def threshold_derivative(density_at_t: float) -> float:
    """dt/dr = 1/f(t)   (thesis eq. (2.16), from F(t(r)) = r).

    The one gate of every dt/dr route (exact, fused training step, published
    emulation). It accepts f(t) exactly when it is a finite, positive, *normal*
    number of its own floating dtype (float64 for Python floats): otherwise
    1/f does not exist (f <= 0, NaN), is silently 0 (f = inf) or has lost its
    precision (f subnormal). There is no floor relative to the data's scale;
    why: docs/derivations.md §5.4 and appendix A7.

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

    Examples
    --------
    |w| uniform on [0, 2] has f = 1/2, so raising r by δ raises t by 2δ:

    >>> from refprune.core.gradients import threshold_derivative
    >>> threshold_derivative(0.5)
    2.0
    >>> threshold_derivative(0.0)
    Traceback (most recent call last):
        ...
    ValueError: density_at_t must be a finite, positive, normal float for dt/dr = 1/f(t) ...
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

    Parameters
    ----------
    dL_dt : float
        ∂L/∂t (:func:`grad_threshold`).
    dt_dr : float
        1/f(t) (:func:`threshold_derivative`).
    r, lam : float
        The pruning ratio and the regulariser's weight λ >= 0.

    Returns
    -------
    float

    Examples
    --------
    >>> from refprune.core.gradients import grad_ratio
    >>> round(grad_ratio(dL_dt=0.1, dt_dr=2.0, r=0.5, lam=1.0), 6)   # 2·0.1 + 2·1·(0.5 − 1)
    -0.8
    """
    return dt_dr * dL_dt + 2.0 * lam * (r - 1.0)  # thesis eqs. (2.11), (2.23)


def regulariser(r: float, lam: float) -> float:
    """L_R = λ(1 − r)²   (thesis eq. (2.23)).

    Examples
    --------
    >>> from refprune.core.gradients import regulariser
    >>> regulariser(0.5, lam=10.0)
    2.5
    """
    return lam * (1.0 - r) ** 2  # thesis eq. (2.23)


def group_regulariser(rs, lam: float, fractions) -> float:
    """L_R = λ Σ_g (n_g/n)(1 − r_g)² over the groups of a grouping (thesis eq. (2.23), one term per group).

    Parameters
    ----------
    rs : array_like, shape (G,)
        r_g of each group.
    lam : float
    fractions : ndarray, shape (G,)
        n_g/n per group (:meth:`refprune.core.groups.Grouping.fractions`).

    Returns
    -------
    float

    Examples
    --------
    One group is the thesis's λ(1 − r)²; two groups weigh their terms by size:

    >>> import numpy as np
    >>> from refprune.core.gradients import group_regulariser
    >>> group_regulariser([0.5], 10.0, np.array([1.0]))
    2.5
    >>> round(group_regulariser([0.5, 0.9], 1.0, np.array([0.6, 0.4])), 6)   # 0.6·0.25 + 0.4·0.01
    0.154
    """
    rs = np.asarray(rs, dtype=np.float64)
    if rs.size == 1:  # the thesis's scalar form, to the bit (NumPy's x**2 and Python's can differ by an ulp)
        return regulariser(float(rs[0]), lam)
    return float(lam * np.sum(fractions * (1.0 - rs) ** 2))


def group_grad_ratio(d_t, dt_dr, rs, lam: float, fractions) -> np.ndarray:
    """∂L/∂r_g = (dt_g/dr_g)·∂L/∂t_g + 2λ(n_g/n)(r_g − 1), one per group (thesis eqs. (2.11), (2.23)).

    Parameters
    ----------
    d_t, dt_dr, rs : array_like, shape (G,)
        ∂L/∂t_g, dt_g/dr_g and r_g of each group.
    lam : float
    fractions : ndarray, shape (G,)
        n_g/n per group.

    Returns
    -------
    ndarray, shape (G,)

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.core.gradients import group_grad_ratio
    >>> d_r = group_grad_ratio([0.1, 0.2], [2.0, 1.0], [0.5, 0.9], 1.0, np.array([0.6, 0.4]))
    >>> np.round(d_r, 6).tolist()   # [0.2 + 1.2·(−0.5), 0.2 + 0.8·(−0.1)]
    [-0.4, 0.12]
    """
    rs = np.asarray(rs, dtype=np.float64)
    if rs.size == 1:  # the thesis's scalar form, to the bit
        return np.array([grad_ratio(float(np.ravel(d_t)[0]), float(np.ravel(dt_dr)[0]), float(rs[0]), lam)])
    return np.asarray(dt_dr) * np.asarray(d_t) + 2.0 * lam * fractions * (rs - 1.0)  # eqs. (2.11), (2.23)
