"""The results table of docs/derivations.md, evaluated independently of the package.

Every formula of the table ("Results at a glance", R1–R11) is written out again
below in NumPy (and the standard library's ``math.erf``), sharing no code with
refprune: its own threshold, bandwidth, reflected KDE and CDF, quantile solver,
MLP forward and backward pass, mask, and central differences. On one tiny case
the formulas are compared

- with finite differences of the test's own loss (stop-gradient at t, §4.1;
  r end to end through the smoothed threshold t̃(r) = F̂_R⁻¹(r), §1.4), and
- with the package's ``lrp_gradients``.

``test_formulas_agree_with_finite_differences_and_the_package`` passes with the
table as written. ``test_altering_any_one_formula_is_caught`` replaces one
formula at a time by a plausible wrong one (among them the thesis's printed
eq. (2.3), its eq. (2.7) read as a t-gradient, and the published sign of dt/dr)
and expects a mismatch, so the comparison cannot pass vacuously.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

# ------------------------------------------------------------ the tiny case

SEED = 15
LAYERS = (3, 4, 2)          # one hidden ReLU layer; 20 prunable weights
N_SAMPLES = 6
R, TAU, LAM = 0.4, 0.08, 0.3

# Central differences: a five-point stencil, error (δ⁴/30)·L⁽⁵⁾. The fastest logit
# moves at |dz/dw| = 2|w|/τ <= 25 here, so L⁽⁵⁾ ~ 25⁵·|L| ~ 1e7 and δ = 1e-4 gives a
# truncation of ~3e-11 against a round-off of ~eps·|L|/δ ~ 1e-12.
FD_STEP = 1e-4
# rel = |a − b| / max(|a|, |b|, FD_FLOOR): 1e-7 is 1000× the largest observed error of
# the correct formulas (1.0e-10, ∂L/∂W) and 1e4× below the smallest error any mutation
# below causes against finite differences (1.9e-3).
FD_RTOL = 1e-7
FD_FLOOR = 1e-6             # components below this are compared absolutely
# The package solves F̂_R(t̃) = r by Newton to 1e-15, the test by bisection to one
# ulp; the two t̃ differ by ~1e-15/f̂_R, moving every gradient by ~1e-13 relative
# (observed: 2.2e-15). The smallest mutation error against the package is 3.5e-4.
PKG_RTOL = 1e-9
# Every ReLU pre-activation must stay this far from 0 so no stencil point (which
# moves a pre-activation by < 1e-3 here) crosses a kink.
KINK_MARGIN = 1e-2


def make_case():
    rng = np.random.default_rng(SEED)
    weights = [rng.normal(0.0, 0.6, (d_in, d_out)) for d_in, d_out in zip(LAYERS[:-1], LAYERS[1:])]
    biases = [rng.normal(0.0, 0.1, d_out) for d_out in LAYERS[1:]]
    x = rng.normal(size=(N_SAMPLES, LAYERS[0]))
    y = rng.normal(size=(N_SAMPLES, LAYERS[-1]))
    return weights, biases, x, y


# ------------------------------------------------------------ standard normal (no scipy)

_erf = np.vectorize(math.erf)


def phi(u):
    return np.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)


def Phi(u):
    return 0.5 * (1.0 + _erf(np.asarray(u, float) / math.sqrt(2.0)))


# ------------------------------------------------------------ definitions (D1–D4 of the doc)


def magnitudes(weights):
    return np.concatenate([np.abs(W).ravel() for W in weights])


def mask_and_slope(W, t, tau):
    """R4: Z = (W ⊙ W − t²)/τ, M = σ(Z), S = M ⊙ (1 − M)."""
    Z = (W * W - t * t) / tau
    M = 1.0 / (1.0 + np.exp(-Z))
    return M, M * (1.0 - M), Z


def forward(weights, biases, x, y, t, tau, mask=mask_and_slope):
    """Mean squared error of the MLP with masked weights Ŵ = M ⊙ W (D3)."""
    masked = [mask(W, t, tau)[0] * W for W in weights]
    pre = x @ masked[0] + biases[0]
    out = np.maximum(pre, 0.0) @ masked[1] + biases[1]
    return float(np.mean((out - y) ** 2)), masked, pre, out


def backward(masked, pre, out, x, y):
    """G_l = ∂L/∂Ŵ_l and ∂L/∂b_l by ordinary backpropagation."""
    d_out = 2.0 * (out - y) / out.size
    hidden = np.maximum(pre, 0.0)
    d_pre = (d_out @ masked[1].T) * (pre > 0)
    return [x.T @ d_pre, hidden.T @ d_out], [d_pre.sum(0), d_out.sum(0)]


# ------------------------------------------------------------ the results table, R1–R11
# Each entry is one row of "Results at a glance"; the mutation test swaps one of them.

FORMULAS = {
    # R4  Z = (W ⊙ W − t²)/τ, M = σ(Z), S = M ⊙ (1 − M)
    "mask": mask_and_slope,
    # R1  t = (a_k + a_{k+1})/2, k = ⌊r n⌋ (a_0 := 0)
    "threshold": lambda a, r: 0.5 * (np.concatenate([[0.0], np.sort(a)])[int(math.floor(r * a.size))]
                                     + np.sort(a)[int(math.floor(r * a.size))]),
    # R2  h = σ̂ n^(−1/5), σ̂ with ddof = 1 (Scott, thesis eq. (2.19))
    "bandwidth": lambda a: float(np.std(a, ddof=1)) * a.size ** -0.2,
    # R3  F̂_R(x) = (1/n) Σ [Φ((x − a_i)/h) − Φ((−x − a_i)/h)]
    "cdf": lambda x, a, h: float(np.mean(Phi((x - a) / h) - Phi((-x - a) / h))),
    # R4  f̂_R(x) = (1/(n h)) Σ [φ((x − a_i)/h) + φ((x + a_i)/h)]
    "density": lambda x, a, h: float(np.mean(phi((x - a) / h) + phi((x + a) / h))) / h,
    # R5  ∂L/∂W = G ⊙ (M + (2/τ) W ⊙ W ⊙ S)
    "dW": lambda G, W, M, S, Z, t, tau: G * (M + (2.0 / tau) * W * W * S),
    # R6  ∂L/∂τ = −τ⁻¹ ⟨G ⊙ W ⊙ S, Z⟩
    "dtau": lambda G, W, M, S, Z, t, tau: -sum(float(np.sum(g * w * s * z))
                                               for g, w, s, z in zip(G, W, S, Z)) / tau,
    # R7  ∂L/∂t = −(2t/τ) ⟨G, W ⊙ S⟩
    "dt": lambda G, W, M, S, Z, t, tau: -(2.0 * t / tau) * sum(float(np.sum(g * w * s))
                                                                for g, w, s in zip(G, W, S)),
    # R8  dt/dr = 1/f̂_R(t)
    "dt_dr": lambda f_t: 1.0 / f_t,
    # R9  ∂L_T/∂r = (dt/dr)·∂L/∂t + 2λ(r − 1)
    "dr": lambda dt_dr, dL_dt, r, lam: dt_dr * dL_dt + 2.0 * lam * (r - 1.0),
}


def smoothed_threshold(a, r, F):
    """t̃ = F̂_R⁻¹(r) by bisection on [0, max + 10h], to one ulp."""
    h = F["bandwidth"](a)
    lo, hi = 0.0, float(a.max()) + 10.0 * h
    while True:
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            return mid, h
        lo, hi = (mid, hi) if F["cdf"](mid, a, h) < r else (lo, mid)


def analytic(case, F):
    """Every gradient of the tiny case, from the formulas F alone."""
    weights, biases, x, y = case
    a = magnitudes(weights)
    t, h = smoothed_threshold(a, R, F)
    M, S, Z = zip(*(F["mask"](W, t, TAU) for W in weights))
    loss, masked, pre, out = forward(weights, biases, x, y, t, TAU, F["mask"])
    G, db = backward(masked, pre, out, x, y)
    dL_dt = F["dt"](G, weights, M, S, Z, t, TAU)
    dt_dr = F["dt_dr"](F["density"](t, a, h))
    return {
        "t_empirical": F["threshold"](a, R), "t": t, "pre": pre,
        "W": [F["dW"](g, W, m, s, z, t, TAU) for g, W, m, s, z in zip(G, weights, M, S, Z)],
        "b": db, "tau": F["dtau"](G, weights, M, S, Z, t, TAU), "dt": dL_dt,
        "dt_dr": dt_dr, "r": F["dr"](dt_dr, dL_dt, R, LAM),
    }


# ------------------------------------------------------------ central differences


def central_difference(fun, x0, step=FD_STEP):
    """Five-point stencil (f(−2δ) − 8f(−δ) + 8f(δ) − f(2δ))/(12δ)."""
    f = [fun(x0 + k * step) for k in (-2, -1, 1, 2)]
    return (f[0] - 8.0 * f[1] + 8.0 * f[2] - f[3]) / (12.0 * step)


def numeric(case, F, t):
    """Finite differences of the test's own loss; t held fixed except for the r rows."""
    weights, biases, x, y = case

    def loss(ws=weights, bs=biases, t_=t, tau=TAU):
        return forward(ws, bs, x, y, t_, tau, F["mask"])[0]

    def perturbed(arrays, l, idx):
        def at(v):
            copy = [A.copy() for A in arrays]
            copy[l][idx] = v
            return copy
        return at

    out = {"W": [], "b": []}
    for key, arrays in (("W", weights), ("b", biases)):
        for l, A in enumerate(arrays):
            grad = np.empty_like(A)
            for idx in np.ndindex(A.shape):
                at = perturbed(arrays, l, idx)
                grad[idx] = central_difference(
                    lambda v: loss(ws=at(v)) if key == "W" else loss(bs=at(v)), A[idx])
            out[key].append(grad)
    out["tau"] = central_difference(lambda v: loss(tau=v), TAU)
    out["dt"] = central_difference(lambda v: loss(t_=v), t)
    a = magnitudes(weights)
    t_of_r = lambda r: smoothed_threshold(a, r, F)[0]
    out["dt_dr"] = central_difference(t_of_r, R)
    out["r"] = central_difference(lambda r: loss(t_=t_of_r(r)) + LAM * (1.0 - r) ** 2, R)
    return out


def package(case):
    """The same quantities from refprune (the only place the package is used)."""
    from refprune.density.quantile import compute_threshold
    from refprune.lrp.reference import LRPConfig, lrp_gradients
    weights, biases, x, y = case
    res = lrp_gradients(weights, biases, x, y, R, TAU,
                        LRPConfig(loss="mse", lam=LAM, threshold="smoothed"))
    return {"t_empirical": compute_threshold(weights, R).t, "t": res.threshold.t,
            "W": res.grad_weights, "b": res.grad_biases, "tau": res.grad_tau,
            "dt": res.grad_t, "dt_dr": res.dt_dr, "r": res.grad_r}


def rel_err(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), FD_FLOOR)
    return float(np.max(np.abs(a - b) / scale))


def mismatches(ours, reference, keys, rtol):
    bad = {}
    for key in keys:
        pairs = zip(ours[key], reference[key]) if key in ("W", "b") else [(ours[key], reference[key])]
        err = max(rel_err(p, q) for p, q in pairs)
        if not err <= rtol:
            bad[key] = err
    return bad


GRADIENT_KEYS = ("W", "b", "tau", "dt", "dt_dr", "r")


def compare(F):
    """Rows that disagree: {"fd": {...}, "package": {...}} (both empty when all agree)."""
    case = make_case()
    ours = analytic(case, F)
    fd = numeric(case, F, ours["t"])
    pkg = package(case)
    return {"fd": mismatches(ours, fd, GRADIENT_KEYS, FD_RTOL),
            "package": mismatches(ours, pkg, ("t_empirical", "t") + GRADIENT_KEYS, PKG_RTOL)}


# ------------------------------------------------------------ the tests


def test_the_case_is_away_from_relu_kinks_and_masks_are_in_transition():
    case = make_case()
    ours = analytic(case, FORMULAS)
    assert np.min(np.abs(ours["pre"])) > KINK_MARGIN
    _, S, _ = zip(*(mask_and_slope(W, ours["t"], TAU) for W in case[0]))
    # the mask terms matter: some slopes are large, so every mutation has a visible effect
    assert max(float(s.max()) for s in S) > 0.1


def test_formulas_agree_with_finite_differences_and_the_package():
    assert compare(FORMULAS) == {"fd": {}, "package": {}}


def _with(name, fn):
    return {**FORMULAS, name: fn}


MUTATIONS = {
    # R4: the slope without its (1 − M) factor; the logit on |w| instead of w²
    "S = M": _with("mask", lambda W, t, tau: (lambda M, S, Z: (M, M, Z))(*mask_and_slope(W, t, tau))),
    "logit on |w|": _with("mask", lambda W, t, tau: (lambda Z: (1 / (1 + np.exp(-Z)), np.exp(-Z) / (1 + np.exp(-Z)) ** 2, Z))(
        (np.abs(W) - t) / tau)),
    # R1: the larger order statistic instead of the midpoint
    "t = a_(k+1)": _with("threshold", lambda a, r: np.sort(a)[int(math.floor(r * a.size))]),
    # R2: population std (the published code's ddof = 0)
    "h with ddof 0": _with("bandwidth", lambda a: float(np.std(a)) * a.size ** -0.2),
    # R3: the CDF without reflection
    "F̂ unreflected": _with("cdf", lambda x, a, h: float(np.mean(Phi((x - a) / h)))),
    # R4: the density without the reflected term
    "f̂ unreflected": _with("density", lambda x, a, h: float(np.mean(phi((x - a) / h))) / h),
    # R5: the printed thesis eq. (2.3) (erratum T2)
    "eq. (2.3) as printed": _with("dW", lambda G, W, M, S, Z, t, tau: G * (M + (2.0 / tau) * W * S)),
    "dW without the mask term": _with("dW", lambda G, W, M, S, Z, t, tau: G * M),
    # R6: sign, and τ⁻² for τ⁻¹
    "dτ sign": _with("dtau", lambda G, W, M, S, Z, t, tau: -FORMULAS["dtau"](G, W, M, S, Z, t, tau)),
    "dτ over τ²": _with("dtau", lambda G, W, M, S, Z, t, tau: FORMULAS["dtau"](G, W, M, S, Z, t, tau) / tau),
    # R7: eq. (2.7) read as a derivative in t (erratum T3: it is ∂L/∂(t²))
    "eq. (2.7) as ∂L/∂t": _with("dt", lambda G, W, M, S, Z, t, tau: FORMULAS["dt"](G, W, M, S, Z, t, tau) / (2 * t)),
    "dt sign": _with("dt", lambda G, W, M, S, Z, t, tau: -FORMULAS["dt"](G, W, M, S, Z, t, tau)),
    # R8: the published sign (erratum P2), and the density of the signed weights (T4: half)
    "dt/dr published sign": _with("dt_dr", lambda f_t: -1.0 / f_t),
    "dt/dr signed density": _with("dt_dr", lambda f_t: 2.0 / f_t),
    # R9: chain rule dropped; regulariser sign; regulariser factor 2
    "dr without dt/dr": _with("dr", lambda dt_dr, dL_dt, r, lam: dL_dt + 2.0 * lam * (r - 1.0)),
    "regulariser sign": _with("dr", lambda dt_dr, dL_dt, r, lam: dt_dr * dL_dt + 2.0 * lam * (1.0 - r)),
    "regulariser without 2": _with("dr", lambda dt_dr, dL_dt, r, lam: dt_dr * dL_dt + lam * (r - 1.0)),
}


def test_every_formula_has_a_mutation():
    altered = {name for F in MUTATIONS.values() for name in FORMULAS if F[name] is not FORMULAS[name]}
    assert altered == set(FORMULAS)


@pytest.mark.parametrize("label", sorted(MUTATIONS))
def test_altering_any_one_formula_is_caught(label):
    result = compare(MUTATIONS[label])
    assert result["fd"] or result["package"], f"mutation {label!r} went unnoticed"
