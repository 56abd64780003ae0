"""Tolerance tiers and the error measure of ``refprune compare`` (and its diagnosis).

For every element, ``rel = |candidate − reference| / max(|reference|, scale, TIER_ABS_FLOOR)``
with ``scale`` the natural size of the quantity (:func:`reference_scales`); a
quantity passes if its largest ``rel`` is at most ``TIER_RTOL[tier]``. The scale
makes the test relative where a quantity is large and absolute, at the size the
quantity's own rounding error has, where it is small or cancels.
"""

from __future__ import annotations

import numpy as np

from refprune.core.masks import soft_mask_and_slope
from refprune.vectors.schema import TIERS, granularity_of, n_layers_of, scalar, weights_of

# Pass criterion on the largest relative error (see the module notes), per tier.
# float64: an independent float64 implementation (tests/test_compare.py's
# naive_pass: np.sort, s = m(1 − m), w·w − t·t, its own backward pass) agrees
# with the references to <= 2e-15 on every other case and to 2e-12 on the
# near-hard-mask case (s = m(1 − m) near m = 1); 1e-10 leaves >= 50× room and
# is still far below what any real defect changes.
# float32: lrp_gradients on float32 arrays and naive_pass in float32 reach
# <= 1e-6 on the float32-tier cases (sums of a few thousand float32 terms,
# epsilon 6e-8); 1e-4 leaves 100× room for larger sums and other summation orders.
TIER_RTOL = {"float64": 1e-10, "float32": 1e-4}
# Smallest denominator of the relative error: a gradient component below it
# moves no parameter of magnitude >= 1e-5 by even one ulp at any learning rate
# <= 1 (ulp(1e-5) is 1.7e-21 in float64 and 9.1e-13 in float32). It only
# matters where a quantity and its scale are both ~0 (e.g. ∂L/∂t when every
# mask is saturated at τ = 1e-12, where a capped exponent leaves ~1e-290).
TIER_ABS_FLOOR = {"float64": 1e-20, "float32": 1e-12}


# Tighter float32 criteria for dt/dr and the density it comes from. A float32
# implementation's honest error there is small: the direct Gaussian sum, or
# the binned FFT estimate (float32 histogram, float32 FFT), at the float32 t,
# with σ̂ in float32, is within 1.2e-7 of the reference on every float32-tier
# case (measured); 2e-6 leaves >= 16x room. The general 1e-4 would let real
# bugs through: Scott's σ̂ with NumPy's default ddof = 0 moves dt/dr by only
# 6e-6 to 9e-6 on those cases (caught by >= 3x), and any 1e-5 change fails by 5x.
FLOAT32_KEY_RTOL = {"dt_dr": 2e-6, "density": 2e-6}


def rtol_for(key: str, tier: str) -> float:
    """The pass criterion of one output key at a tier (TIER_RTOL, tighter for float32 dt/dr)."""
    if tier == "float32" and key in FLOAT32_KEY_RTOL:
        return FLOAT32_KEY_RTOL[key]
    return TIER_RTOL[tier]


def tier_of_dtype(dtype) -> str:
    """The tolerance tier of values stored with this dtype: "float32" for float32, else "float64"."""
    return "float32" if np.dtype(dtype) == np.float32 else "float64"


def tolerance_table() -> dict:
    """The tolerance tiers, as written into the manifest."""
    table = {tier: {"rtol": TIER_RTOL[tier], "abs_floor": TIER_ABS_FLOOR[tier]} for tier in TIERS}
    table["float32"]["rtol_by_key"] = dict(FLOAT32_KEY_RTOL)
    return table


def per_layer(reference: dict, key: str) -> np.ndarray:
    """A scalar key as one float64 value per layer: a layer-wise file's (L,) array, or the global value repeated."""
    L = n_layers_of(reference["layers"])
    return np.broadcast_to(np.asarray(reference[key], np.float64), (L,)).copy()


def layer_terms(reference: dict):
    """Per layer (w, g, s, z) at that layer's t and τ (the global ones in a global file)."""
    W = weights_of(reference)
    g = weights_of(reference, "grad_masked_W")
    out = []
    for Wl, gl, t, tau in zip(W, g, per_layer(reference, "t"), per_layer(reference, "tau")):
        _, s, z = soft_mask_and_slope(Wl, t, tau)
        out.append((Wl, gl, s, z))
    return out


def reference_scales(reference: dict) -> dict:
    """The natural size of every output quantity, for the error's denominator.

    Returns
    -------
    dict
        Output key → float (an (L,) array for the per-layer keys of a layer-wise file,
        where every sum below runs over that layer's weights only):

        - ``loss``, ``t``, ``dt_dr``, ``density``: their own magnitude;
        - ``mask*``: 1 (a mask lies in [0, 1]);
        - ``grad_masked_W*``, ``grad_W*``, ``grad_b*``: the largest magnitude of
          that layer's array (rounding in a backward pass is relative to it);
        - ``grad_t``: (2t/τ)·Σ|g·w·s|, ``grad_tau``: Σ|g·w·s·z|/τ — the sums of
          the absolute terms of eqs. (2.11) and (2.10), which bound the
          rounding of the signed sums;
        - ``grad_r``: |dt/dr|·scale(grad_t) + |2λ(r − 1)| (eq. (2.11) + (2.23)); layer-wise
          |dt_l/dr_l|·scale(grad_t)_l + |2λ(n_l/n)(r_l − 1)|.
    """
    L = n_layers_of(reference["layers"])
    layer = granularity_of(reference) == "layer"
    t, tau = per_layer(reference, "t"), per_layer(reference, "tau")
    terms = layer_terms(reference)
    sum_gws = np.array([float(np.sum(np.abs(g * w * s))) for w, g, s, _ in terms])
    sum_gwsz = np.array([float(np.sum(np.abs(g * w * s * z))) for w, g, s, z in terms])
    if not layer:  # one global sum
        t, tau, sum_gws, sum_gwsz = t[0], tau[0], sum_gws.sum(), sum_gwsz.sum()
    scales = {key: np.abs(np.asarray(reference[key], np.float64)) for key in ("loss", "t", "dt_dr", "density")}
    scales["grad_t"] = 2.0 * t / tau * sum_gws  # thesis eq. (2.11), terms in absolute value
    scales["grad_tau"] = sum_gwsz / tau  # thesis eq. (2.10), terms in absolute value
    sizes = np.array([w.size for w, _, _, _ in terms], np.float64)
    fractions = sizes / sizes.sum() if layer else 1.0  # n_l/n of the layer-wise regulariser
    reg = 2.0 * scalar(reference, "lam") * fractions * (np.asarray(reference["r"], np.float64) - 1.0)
    scales["grad_r"] = np.abs(np.asarray(reference["dt_dr"], np.float64)) * scales["grad_t"] + np.abs(reg)
    if not layer:
        scales = {key: float(value) for key, value in scales.items()}
    for l in range(1, L + 1):
        scales[f"mask{l}"] = 1.0
        for prefix in ("grad_masked_W", "grad_W", "grad_b"):
            scales[f"{prefix}{l}"] = float(np.max(np.abs(reference[f"{prefix}{l}"])))
    return scales


def relative_errors(candidate: np.ndarray, expected: np.ndarray, scale: float, floor: float):
    """Elementwise |c − e| and |c − e| / max(|e|, scale, floor) (same shapes required)."""
    abs_err = np.abs(np.asarray(candidate, np.float64) - np.asarray(expected, np.float64))
    denom = np.maximum(np.maximum(np.abs(expected), scale), floor)
    return abs_err, abs_err / denom

