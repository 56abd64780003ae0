"""The known implementation defects, and the LRP pass recomputed with them applied.

Every known defect (``DEFECTS``) is a *model*: the case's outputs are
recomputed from its inputs with the defect applied (e.g. with m·g in place of
g for double masking, with t from the previous step's weights for a stale
threshold). :func:`model_pass` is that recomputation for the defects that act
inside the pass; :mod:`refprune.vectors.diagnose_search` adds the output-level ones
(signs, the regulariser) and the density models of dt/dr, and fits them to a
candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refprune.core.gradients import grad_tau, grad_threshold
from refprune.core.threshold import Threshold, all_magnitudes
from refprune.density.kde import bandwidth, direct_kde
from refprune.density.quantile import compute_threshold
from refprune.lrp.reference import masked_forward_backward
from refprune.vectors.schema import config_of, has_previous_step, scalar, targets_of, weights_of


@dataclass(frozen=True)
class Defect:
    """A known way implementations go wrong, and how it is recognised."""

    name: str
    title: str
    model: str


DEFECTS = {d.name: d for d in (
    Defect("sign_flip", "sign flip of the whole gradient",
           "every gradient (∂L/∂ŵ, ∂L/∂W, ∂L/∂b, ∂L/∂t, ∂L/∂τ, ∂L/∂r) negated"),
    Defect("dt_dr_sign", "sign flip of dt/dr (the sign of METHOD §6 P2)",
           "dt/dr negated, so the data term (dt/dr)·∂L/∂t of ∂L/∂r flips while 2λ(r − 1) is right"),
    Defect("grad_t_sign", "sign flip of ∂L/∂t",
           "∂L/∂t negated (and with it the data term of ∂L/∂r)"),
    Defect("grad_tau_sign", "sign flip of ∂L/∂τ",
           "(w² − t²) for (t² − w²) in eq. (2.10)"),
    Defect("reg_sign", "sign flip of the regulariser's gradient",
           "2λ(1 − r) for 2λ(r − 1) in ∂L/∂r (eq. (2.23))"),
    Defect("loss_without_reg", "loss reported without the regulariser",
           "loss = data loss, without λ(1 − r)² (eq. (2.23))"),
    Defect("double_mask", "gradient scaled by the mask (double masking, METHOD §6 P1)",
           "autograd through a constant mask leaves m·g; the hand formulas then use m·g for g: "
           "∂L/∂w = m × exact, ∂L/∂τ and ∂L/∂t carry an extra m per weight"),
    Defect("printed_eq_2_3", "the printed eq. (2.3): 2w/τ instead of 2w²/τ",
           "∂L/∂w = g·(m + (2w/τ)·s)"),
    Defect("t_differentiable", "t differentiable in w (gradient through sort/topk)",
           "∂L/∂w gains ∂L/∂t·∂t/∂w: ½·sign(w) at the order statistics a_k, a_{k+1} "
           "(empirical rule) or −(∂F̂/∂a)/f̂(t̃)·sign(w) (smoothed rule)"),
    Defect("transposed", "weight layout transposed ((out, in) as PyTorch's nn.Linear.weight)",
           "weight-shaped quantities equal the transpose of the (in, out) reference"),
    Defect("stale_t", "threshold t one step stale",
           "t from the previous step's weights and r (W_prev, r_prev); masks rebuilt from the "
           "current weights with it"),
    Defect("stale_t_tau", "t and τ one step stale (METHOD §6 P4)",
           "t from W_prev, r_prev and τ = tau_prev in the masks and formulas"),
    Defect("density", "different density estimate for dt/dr (bandwidth rule, binning, grid, point)",
           "dt/dr = 1/f for another bandwidth (Scott or 1.06·σ·n^(−1/5), σ with ddof 0 or 1; "
           "Silverman), method (direct sum, binned FFT, the published P5 estimate), binning, "
           "grid size, reflection, renormalisation, or evaluation point"),
    Defect("float32_roundoff", "float32 round-off only (not a bug)",
           "every mismatch is within the float32 tier: the candidate computed in float32"),
)}
SEARCHED = tuple(name for name in DEFECTS if name != "float32_roundoff")
PASS_FLAGS = ("double_mask", "printed_eq_2_3", "t_differentiable", "stale_t", "stale_t_tau")
STALE = ("stale_t", "stale_t_tau")
# Pairs that describe no implementation (two kinds of staleness; a gradient
# through the sort of the previous weights does not reach the current ones).
# A stale threshold's dt/dr models are its own (at the fresh or the stale t),
# so a stale defect is not paired with "density" either.
EXCLUDED_PAIRS = {frozenset(STALE)} | {frozenset({s, other}) for s in STALE
                                       for other in ("t_differentiable", "density")}
OPTION_KEYS = ("dt_dr", "density", "grad_r")

# --------------------------------------------------------------------------
# the case, as the models need it


@dataclass
class CaseInputs:
    """A case's inputs and its fresh and stale thresholds."""

    W: list
    b: list
    x: np.ndarray
    y: np.ndarray
    r: float
    tau: float
    lam: float
    config: object
    thr: Threshold
    thr_prev: Threshold | None
    tau_prev: float | None
    ref: dict

    @property
    def has_previous(self) -> bool:
        """True if the case holds the previous step (the stale-state models need it)."""
        return self.thr_prev is not None


def case_inputs(ref: dict) -> CaseInputs:
    """Inputs, fresh threshold t(W, r) and stale threshold t(W_prev, r_prev) of a vectors dict.

    Without the previous step (a user's case may omit it) the stale threshold
    and τ_prev are None and the stale-state defects are not searched.
    """
    config = config_of(ref)
    W = weights_of(ref)
    r = scalar(ref, "r")
    thr_prev, tau_prev = None, None
    if has_previous_step(ref):
        thr_prev = compute_threshold(weights_of(ref, "W_prev"), scalar(ref, "r_prev"),
                                     config.threshold, config.density)
        tau_prev = scalar(ref, "tau_prev")
    return CaseInputs(W=W, b=weights_of(ref, "b"), x=np.asarray(ref["x"], np.float64),
                      y=targets_of(ref), r=r, tau=scalar(ref, "tau"), lam=scalar(ref, "lam"),
                      config=config, thr=compute_threshold(W, r, config.threshold, config.density),
                      thr_prev=thr_prev, tau_prev=tau_prev, ref=ref)


# --------------------------------------------------------------------------
# ∂t/∂w for "t differentiable"


def empirical_t_derivative(a: np.ndarray, k: int) -> np.ndarray:
    """∂t/∂a for t = (a_k + a_{k+1})/2 through a sort: ½ at the two order statistics.

    At k = 0, a_0 := 0 is a constant, so only a_1 gets ½.
    """
    order = np.argsort(a, kind="stable")
    d = np.zeros(a.size)
    if k > 0:
        d[order[k - 1]] += 0.5
    d[order[k]] += 0.5
    return d


def smoothed_t_derivatives(a: np.ndarray, t: float, rule: str) -> list:
    """∂t̃/∂a from F̂_R(t̃; a, h) = r by implicit differentiation.

    Returns two models: h held fixed, and h = Scott's σ̂·n^(−1/5) varying with
    a (an autograd through the bandwidth); the second only for Scott's rule.

    With u₁ = (t − a)/h, u₂ = (t + a)/h and F̂_R = (1/n)Σ[Φ(u₁) − Φ(−u₂)]:
    ∂F̂/∂a_i = (φ(u₂) − φ(u₁))/(n h), ∂F̂/∂h = −(1/n)Σ[φ(u₁)(t − a) + φ(u₂)(t + a)]/h²,
    f̂_R(t) = (1/(n h))Σ[φ(u₁) + φ(u₂)], and ∂t̃/∂a = −(∂F̂/∂a + ∂F̂/∂h·∂h/∂a)/f̂.
    """
    n = a.size
    h = bandwidth(a, rule)
    phi1 = np.exp(-0.5 * ((t - a) / h) ** 2) / np.sqrt(2 * np.pi)
    phi2 = np.exp(-0.5 * ((t + a) / h) ** 2) / np.sqrt(2 * np.pi)
    f = float(direct_kde(a, np.array([t]), h, reflect=True)[0])
    dF_da = (phi2 - phi1) / (n * h)
    models = [-dF_da / f]
    if rule == "scott":
        dF_dh = -float(np.sum(phi1 * (t - a) + phi2 * (t + a))) / (n * h * h)
        sigma2 = float(np.var(a, ddof=1))
        dh_da = h * (a - a.mean()) / ((n - 1) * sigma2)  # h = σ̂·n^(−1/5), thesis eq. (2.19)
        models.append(-(dF_da + dF_dh * dh_da) / f)
    return models


def t_weight_derivatives(ci: CaseInputs) -> list:
    """Models of ∂t/∂w (flat, length n) for a candidate that differentiates t in w."""
    a = all_magnitudes(ci.W)
    sign = np.sign(np.concatenate([W.ravel() for W in ci.W]))
    if ci.config.threshold == "empirical":
        return [sign * empirical_t_derivative(a, ci.thr.k)]
    return [sign * d for d in smoothed_t_derivatives(a, ci.thr.t, ci.config.density.rule)]


def split_layers(flat: np.ndarray, W: list) -> list:
    """A flat array of length n cut into arrays shaped like each layer's weights."""
    out, start = [], 0
    for Wl in W:
        out.append(flat[start:start + Wl.size].reshape(Wl.shape))
        start += Wl.size
    return out


# --------------------------------------------------------------------------
# the LRP pass with defects applied


def model_pass(ci: CaseInputs, flags: frozenset) -> dict:
    """Outputs of the LRP pass (except dt/dr, density, ∂L/∂r) under the pass-level defects.

    Returns
    -------
    dict
        ``t``, ``data_loss``, and per layer lists ``masks``, ``g`` (models of
        what the candidate reports as ∂L/∂ŵ), ``grad_W`` (list of models, each
        a list of layers), ``grad_b``; ``grad_tau``, ``grad_t``.
    """
    t, tau = ci.thr.t, ci.tau
    if flags & set(STALE):
        t = ci.thr_prev.t
    if "stale_t_tau" in flags:
        tau = ci.tau_prev
    data_loss, _, masks, slopes, logits, g, grad_b = masked_forward_backward(
        ci.W, ci.b, ci.x, ci.y, t, tau, ci.config.loss)
    G = [m * gl for m, gl in zip(masks, g)] if "double_mask" in flags else g  # METHOD §6 P1
    power = 1 if "printed_eq_2_3" in flags else 2  # eq. (2.3) as printed: 2w/τ
    # thesis eq. (2.3), corrected (2w²/τ) or as printed (2w/τ)
    grad_W = [Gl * (m + (2.0 * W ** power / tau) * s) for Gl, W, m, s in zip(G, ci.W, masks, slopes)]
    d_t = grad_threshold(G, ci.W, slopes, t, tau)  # thesis eq. (2.11), inner sum
    models = [grad_W]
    if "t_differentiable" in flags:
        models = [[gW + d_t * dt for gW, dt in zip(grad_W, split_layers(d, ci.W))]
                  for d in t_weight_derivatives(ci)]
    return {"t": t, "tau": tau, "data_loss": data_loss, "masks": masks,
            "g": [G, g] if "double_mask" in flags else [g], "grad_W": models, "grad_b": grad_b,
            "grad_tau": grad_tau(G, ci.W, slopes, logits, tau), "grad_t": d_t}  # eq. (2.10)
