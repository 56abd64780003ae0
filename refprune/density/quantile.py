"""The smoothed threshold t̃(r) = F̂⁻¹(r), F̂ the CDF of the Gaussian KDE (METHOD §3).

Then dt̃/dr = 1/f̂(t̃) holds exactly and dL/dr can be checked by central
differences in r.
"""

from __future__ import annotations

import numpy as np

from refprune.core.threshold import Threshold, all_magnitudes, empirical_threshold, pruned_count
from refprune.core.validation import check_array, check_choice, check_positive, check_ratio
from refprune.density.config import DensityConfig
from refprune.density.kde import bandwidth, check_samples, direct_kde, direct_kde_cdf

# The threshold rules: the method's empirical midpoint quantile (refprune.core.threshold) and the
# smoothed t̃(r) below, which makes the whole ∂L/∂r checkable by central differences.
THRESHOLD_RULES = ("empirical", "smoothed")

# The smoothed quantile is bracketed by [min − 10h, max + 10h] (or [0, ...]
# with reflection): Φ(−10) ≈ 7.6e-24 < eps/2, so F̂(max + 10h) rounds to
# exactly 1 > r, and without reflection F̂(min − 10h) < 1e-23 <= r for any r
# that is not absurdly small.
QUANTILE_BRACKET_PAD = 10.0

# |F̂(t) − r| <= 1e-15 is ~9 ulp of r near 1 and ~4 ulp near 0.25; a mean of
# n normal CDFs is accurate to a few ulp, so this is as tight as F̂ can be
# evaluated and keeps t̃ accurate to ~1e-15/f̂(t̃).
CDF_TOL = 1e-15

# Fallback stop: bracket [lo, hi] narrower than 1e-15·max(1, |t|) (brief's
# spec) — reached only if rounding noise in F̂ prevents |F̂ − r| <= CDF_TOL.
QUANTILE_XTOL = 1e-15

# Newton converges in ~5 steps and bisection from a width-1 bracket to 1e-15
# takes ~50; 200 leaves ample room before declaring failure.
MAX_QUANTILE_ITER = 200

# --------------------------------------------------------------------------
# smoothed threshold t̃(r) = F̂⁻¹(r)


def _quantile_bracket(a: np.ndarray, h: float, r: float, reflect: bool):
    """[lo, hi] with F̂(lo) <= r < F̂(hi)."""
    hi = a.max() + QUANTILE_BRACKET_PAD * h
    if reflect:
        return 0.0, hi  # F̂_R(0) = 0 <= r
    lo = a.min() - QUANTILE_BRACKET_PAD * h
    if direct_kde_cdf(a, lo, h) > r:
        raise ValueError(
            f"r={r!r} is below the unreflected KDE's mass {QUANTILE_BRACKET_PAD:g}h under "
            f"the data (r = 0 would give t = −inf); use reflect=True")
    return lo, hi


def smoothed_quantile(samples, r, h, reflect: bool = True) -> float:
    """Smoothed threshold t̃(r) = F̂⁻¹(r), F̂ the CDF of the Gaussian KDE.

    Parameters
    ----------
    samples : array_like, shape (n,)
        The magnitudes a_i (>= 0 if ``reflect``).
    r : float
        Pruning ratio in [0, 1).
    h : float
        Bandwidth, > 0.
    reflect : bool
        Use the KDE reflected at 0 (default).

    Returns
    -------
    float
        t̃ with |F̂(t̃) − r| <= 1e-15 (or bracketed to 1e-15·max(1, |t̃|)).
        With reflection t̃(0) = 0.0 exactly and t̃ >= 0 always.

    Raises
    ------
    RuntimeError
        If the iteration has not converged after MAX_QUANTILE_ITER steps.

    Notes
    -----
    dt̃/dr = 1/f̂(t̃) exactly (thesis eq. (2.16) with the KDE in place of f,
    f̂ = ``direct_kde``), because F̂ is smooth and strictly increasing: that
    makes dL/dr checkable by central differences in r (METHOD §3), and is why
    t̃ is solved to ulp level. Without reflection F̂(0) > 0 and t̃ would be
    negative for r < F̂(0); hence the reflected default.

    Algorithm (safeguarded Newton; docs/derivations.md §1.4 and appendix A3):
    bracket [0 or min − 10h, max + 10h]; start from the empirical r-quantile;
    take the Newton step t − (F̂(t) − r)/f̂(t), bisecting when it leaves the
    bracket or did not halve |F̂ − r|; stop at CDF_TOL or QUANTILE_XTOL.

    Examples
    --------
    The median of 200 magnitudes evenly spread over [0, 2] is 1, and F̂_R(t̃) = r:

    >>> import numpy as np
    >>> from refprune.density.kde import bandwidth, direct_kde_cdf
    >>> from refprune.density.quantile import CDF_TOL, smoothed_quantile
    >>> a = (np.arange(200) + 0.5) / 100
    >>> h = bandwidth(a)
    >>> t = smoothed_quantile(a, 0.5, h)
    >>> round(t, 6), abs(float(direct_kde_cdf(a, t, h, reflect=True)) - 0.5) <= CDF_TOL
    (1.0, True)
    >>> smoothed_quantile(a, 0.0, h)
    0.0
    """
    r = check_ratio(r)
    a = check_samples(samples, reflect)
    h = check_positive(h, "h")
    if reflect and r == 0.0:
        return 0.0  # F̂_R(0) = 0 exactly and F̂_R is strictly increasing on [0, ∞)
    lo, hi = _quantile_bracket(a, h, r, reflect)
    t = float(np.clip(np.quantile(a, r), lo, hi))
    prev_resid = np.inf
    for _ in range(MAX_QUANTILE_ITER):
        resid = float(direct_kde_cdf(a, t, h, reflect)) - r
        if abs(resid) <= CDF_TOL:
            return t
        lo, hi = (t, hi) if resid < 0 else (lo, t)
        if hi - lo <= QUANTILE_XTOL * max(1.0, abs(t)):
            return 0.5 * (lo + hi)
        f = float(direct_kde(a, t, h, reflect))
        newton = t - resid / f if f > 0 else np.nan
        stalled = abs(resid) > 0.5 * prev_resid
        t = newton if (lo < newton < hi and not stalled) else 0.5 * (lo + hi)
        prev_resid = abs(resid)
    raise RuntimeError(
        f"smoothed_quantile did not converge in {MAX_QUANTILE_ITER} iterations "
        f"(r={r!r}, bracket [{lo!r}, {hi!r}])")


def smoothed_threshold(magnitudes: np.ndarray, r: float, rule: str = "scott") -> Threshold:
    """t̃(r) = F̂⁻¹(r) for the Gaussian KDE reflected at 0 (METHOD §3).

    Parameters
    ----------
    magnitudes : ndarray, shape (n,)
    r : float in [0, 1)
    rule : {"scott", "silverman"}
        Bandwidth rule (thesis eqs. (2.19), (2.18)).

    Returns
    -------
    Threshold
        With ``lower == upper == t``.

    Examples
    --------
    dt̃/dr = 1/f̂_R(t̃) exactly, so a central difference in r recovers it (here
    1/f = 2 for magnitudes evenly spread over [0, 2]):

    >>> import numpy as np
    >>> from refprune.density.kde import bandwidth, direct_kde
    >>> from refprune.density.quantile import smoothed_threshold
    >>> a = (np.arange(200) + 0.5) / 100
    >>> th = smoothed_threshold(a, 0.3)
    >>> round(th.t, 6), th.k, th.lower == th.upper == th.t
    (0.6, 60, True)
    >>> d = 1e-4
    >>> fd = (smoothed_threshold(a, 0.3 + d).t - smoothed_threshold(a, 0.3 - d).t) / (2 * d)
    >>> round(fd, 6), bool(np.isclose(fd, 1 / direct_kde(a, th.t, bandwidth(a), reflect=True)))
    (2.0, True)
    """
    r = check_ratio(r)
    a = check_array(magnitudes, "magnitudes", ndim=1)
    h = bandwidth(a, rule)
    t = smoothed_quantile(a, r, h, reflect=True)  # thesis eq. (2.12) with F = F̂
    return Threshold(t=t, k=pruned_count(r, a.size), lower=t, upper=t)


def compute_threshold(weights, r: float, rule: str = "empirical",
                      density: DensityConfig = DensityConfig()) -> Threshold:
    """Global threshold of a list of weight matrices under the given rule.

    Parameters
    ----------
    weights : list of ndarray
        The prunable weight matrices.
    r : float in [0, 1)
    rule : {"empirical", "smoothed"}
        :func:`refprune.core.threshold.empirical_threshold` or :func:`smoothed_threshold`.
    density : DensityConfig
        Its bandwidth rule is used by "smoothed".

    Returns
    -------
    Threshold

    Examples
    --------
    >>> import numpy as np
    >>> from refprune.density.quantile import compute_threshold
    >>> weights = [np.array([[0.1, -0.2]]), np.array([[0.3], [-0.4], [0.5]])]
    >>> round(compute_threshold(weights, 0.5).t, 6)               # (0.2 + 0.3)/2
    0.25
    >>> compute_threshold(weights, 0.0, "smoothed").t             # F̂_R(0) = 0
    0.0
    """
    check_choice(rule, "threshold", THRESHOLD_RULES)
    a = all_magnitudes(weights)
    if rule == "empirical":
        return empirical_threshold(a, r)
    return smoothed_threshold(a, r, density.rule)
