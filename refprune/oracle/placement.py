"""Populating the transition band: weights placed within a few τ of the threshold.

At small τ (training sits at its floor τ = 1e-6 for most of a Table 4.1 run)
the soft mask m = σ((w² − t²)/τ) is saturated for every weight of a random
network: s = m(1 − m) < e^{-60} everywhere, so ∂L/∂τ (thesis eq. (2.10)) and
∂L/∂t (eq. (2.11), inner sum) are identically negligible and a finite
difference check of them checks nothing. :func:`populate_band` moves a
stated number of weights of each group (all weights for the global method, each
layer's for layer-wise LRP), the ones ranked nearest to the group's t, to magnitudes
|w| = sqrt(t² + z·τ) for logits z spread over [−BAND_Z, BAND_Z] (below t for
the weights ranked below it, above t for the others), keeping their signs and
the rank order of the group's magnitudes. The threshold is then recomputed from the
moved weights and the placement repeated around it until it no longer moves
(one round for the empirical rule, a few for the smoothed one). This is the
golden vectors' ``margin`` rule turned around: there τ is chosen for the
weights, here the weights for τ.
"""

from __future__ import annotations

import numpy as np

from refprune.density.quantile import compute_threshold

# Placed weights get logits |z| = |w² − t²|/τ <= 3, so s = m(1 − m) >= 0.045:
# every one of them contributes to ∂L/∂τ and ∂L/∂t at full weight.
BAND_Z = 3.0
# Number of weights placed by default when the band is populated automatically.
DEFAULT_BAND = 6
# The band is populated by default when τ0 is below this: at τ0 = 1e-3 the band
# |w² − t²| < 3τ of a PyTorch-initialised net (std(w) ~ 0.2) is ~1e-3 wide in |w|
# and holds about one weight in a thousand; below it most small nets have none.
BAND_AUTO_TAU0 = 1e-3
# Placement is repeated until t² moves by less than this fraction of τ (the
# placed logits are then off by at most 1e-3 from the intended ones).
BAND_Z_TOL = 1e-3
# The smoothed threshold moves by a contraction of the placed weights' shift;
# 100 rounds leave ample room (it converges in < 20 on every case tried).
BAND_MAX_ITER = 100
# A placement counts only if float64 (or float32) resolves it: the placed
# logits must come back within this of the intended ones after rounding.
BAND_RESOLUTION = 0.25


def band_logits(n_below: int, n_above: int) -> np.ndarray:
    """Intended logits: n_below in [−BAND_Z, 0), n_above in (0, BAND_Z], ascending."""
    below = -BAND_Z * np.arange(n_below, 0, -1) / max(n_below, 1)
    above = BAND_Z * np.arange(1, n_above + 1) / max(n_above, 1)
    return np.concatenate([below, above])


def band_members(a: np.ndarray, t: float, count: int) -> tuple:
    """Flat indices of the ``count`` magnitudes ranked nearest to t, and how many lie below it."""
    order = np.argsort(a, kind="stable")
    k = int(np.searchsorted(a[order], t))
    below = min(count // 2, k)
    above = min(count - below, a.size - k)
    below = min(count - above, k)
    return order[k - below:k + above], below


def populate_band(weights, r, tau, threshold: str, density, count: int, grouping=None) -> list:
    """Weights with ``count`` of them moved within the transition band of each group's (t(r), τ).

    Parameters
    ----------
    weights : list of ndarray
        The network's weights (any float dtype; the result keeps it).
    r, tau : float, or sequence of float (one per group)
        Pruning ratio(s) and temperature(s): scalars when ``grouping`` is None.
    threshold : {"empirical", "smoothed"}
    density : DensityConfig
        Density of the smoothed threshold's bandwidth rule.
    count : int
        Weights to place. Without a grouping: among all weights, at least 1 and at most
        their number. With one: in each group, each placed on its own (t_g(r_g), τ_g) so
        that its threshold stays the r_g-quantile of its own magnitudes; a group holding
        fewer than ``count`` weights is placed whole.
    grouping : Grouping, optional
        None: the global method (one group of every layer, scalar r and τ).

    Returns
    -------
    list of ndarray
        A copy of the weights; in each group, the placed weights have |w² − t²| <= BAND_Z·τ
        for the t recomputed from the returned weights.

    Raises
    ------
    ValueError
        If a group's band is below what the weights' dtype resolves near its t (e.g.
        τ = 1e-300: t² + 3τ rounds to t²), or a placement does not settle.
    """
    if grouping is None:
        return place_in_band(weights, r, tau, threshold, density, count)
    placed = list(weights)
    for g, layers in enumerate(grouping.layers):
        members = grouping.members(weights, g)
        size = sum(np.size(W) for W in members)
        moved = place_in_band(members, r[g], tau[g], threshold, density, min(count, size))
        for l, W in zip(layers, moved):
            placed[l] = W
    return placed


def place_in_band(weights, r: float, tau: float, threshold: str, density, count: int) -> list:
    """One group's weights with ``count`` of them (1 <= count <= their number) within the band
    of (t(r), τ), t the group's threshold; see :func:`populate_band`."""
    dtype = np.asarray(weights[0]).dtype
    flat = np.concatenate([np.asarray(W, np.float64).ravel() for W in weights])
    if not 1 <= count <= flat.size:
        raise ValueError(f"band must be between 1 and the number of weights ({flat.size}), got {count}")
    t = compute_threshold(weights, r, threshold, density).t
    members, below = band_members(np.abs(flat), t, count)
    z = band_logits(below, count - below)
    sign = np.where(flat[members] < 0, -1.0, 1.0)
    for _ in range(BAND_MAX_ITER):
        flat[members] = sign * np.sqrt(np.maximum(t * t + z * tau, 0.0))  # |w| = sqrt(t² + zτ)
        placed = rebuild(flat, weights, dtype)
        t_new = compute_threshold(placed, r, threshold, density).t
        if abs(t_new * t_new - t * t) <= BAND_Z_TOL * tau:
            check_resolved(placed, members, z, t_new, tau)
            return placed
        t = t_new
    raise ValueError(f"placing {count} weights within the band did not settle in {BAND_MAX_ITER} rounds")


def rebuild(flat: np.ndarray, weights, dtype) -> list:
    """Per-layer arrays (in ``dtype``) cut from a flat float64 array shaped like ``weights``."""
    out, start = [], 0
    for W in weights:
        out.append(flat[start:start + W.size].reshape(W.shape).astype(dtype))
        start += W.size
    return out


def check_resolved(placed, members, z, t: float, tau: float) -> None:
    """Raise unless the placed weights' logits, as stored, are the intended ones."""
    flat = np.concatenate([np.asarray(W, np.float64).ravel() for W in placed])
    w = flat[members]
    got = (w * w - t * t) / tau
    if not np.all(np.abs(got - z) <= BAND_RESOLUTION * BAND_Z / max(z.size, 1)):
        raise ValueError(
            f"τ = {tau:.3g} is below what {placed[0].dtype} resolves near t = {t:.6g} "
            f"(the spacing of w² there is ~{np.spacing(t * t):.1g}): no weight can be placed "
            f"within the band |w² − t²| <= {BAND_Z:g}τ")
