"""The KDE-free cross-check of dt/dr.

q̂_j(r) = n(a_{k+j} − a_{k−j})/(2j) estimates the quantile density
q(r) = 1/f(F⁻¹(r)) (Parzen 1979) from two order statistics, with no kernel and no
bandwidth. docs/derivations.md §5.3 derives its error: relative standard error
≈ 1/√(2j) (the 2j spacings are ≈ independent Exp(1)/(n f)) plus a curvature bias
≈ (j/n)²·q''(r)/(6 q(r)).
"""

import numpy as np
import pytest
from scipy import special, stats

from refprune.core.threshold import empirical_threshold
from refprune.density.config import DensityConfig, inverse_density_at
from refprune.density.kde import bandwidth, direct_kde
from refprune.oracle.quantile_check import quantile_difference_quotient

# Evenly spaced a_i = c·i/n give q̂ = c exactly up to the rounding of c·i/n in float64.
EVEN_SPACING_RTOL = 1e-12

N = 1_000_000
J = 10_000
# 5 standard errors of q̂_j (relative s.e. 1/√(2j) = 7.1e-3); the curvature bias
# (j/n)²·q''/(6q) is at most 5.3e-4 at these r (Exp(1), r = 0.75: 1e-4·2/(6·0.0625)),
# and the KDE's own error at n = 1e6 is below 1e-2 (docs/derivations.md, appendix A4).
Q_TOL = 5.0 / np.sqrt(2 * J)
RATIOS = (0.1, 0.5, 0.75)
# A fixed seed makes the KS p-value a fixed number; 1e-3 rejects a true Exp(1)
# only once in a thousand seeds, and the half-density alternative at ~4,000
# spacings has p far below it.
KS_MIN_P = 1e-3

# magnitudes and their quantile density q(r) = 1/f(F⁻¹(r)) in closed form (§5)
CLOSED = {
    "halfnormal": (lambda rng: np.abs(rng.normal(size=N)),
                   lambda r: 1.0 / (2.0 * stats.norm.pdf(np.sqrt(2.0) * special.erfinv(r)))),
    "exponential": (lambda rng: rng.exponential(size=N), lambda r: 1.0 / (1.0 - r)),
    "uniform": (lambda rng: rng.uniform(size=N), lambda r: 1.0),
}


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(15)
    return {name: draw(rng) for name, (draw, _) in CLOSED.items()}


def _rel(a, b):
    return abs(a / b - 1.0)


def test_exact_on_a_uniform_lattice():
    # a_i = c·i/n: every spacing is c/n, so q̂_j = c = 1/f for every k and j
    n, c = 1000, 2.5
    a = np.random.default_rng(0).permutation(c * np.arange(1, n + 1) / n)
    for r, j in ((0.1, 1), (0.5, 7), (0.9, 99)):
        assert quantile_difference_quotient(a, r, j) == pytest.approx(c, rel=EVEN_SPACING_RTOL)


@pytest.mark.parametrize("name", sorted(CLOSED))
@pytest.mark.parametrize("r", RATIOS)
def test_difference_quotient_matches_closed_form_and_the_kde(samples, name, r):
    a = samples[name]
    q_true = CLOSED[name][1](r)
    q_hat = quantile_difference_quotient(a, r, J)
    t = empirical_threshold(a, r).t
    inv_kde = inverse_density_at(a, np.array([t]), DensityConfig())[0][0]   # the package's dt/dr
    assert _rel(q_hat, q_true) <= Q_TOL
    assert _rel(inv_kde, q_hat) <= Q_TOL


@pytest.mark.parametrize("r", RATIOS)
def test_difference_quotient_catches_the_wrong_densities(samples, r):
    # the errata's wrong dt/dr fail the cross-check: the density of the signed
    # weights (T4, dt/dr doubled) and the published sign (P2)
    a = samples["halfnormal"]
    w = a * np.where(np.random.default_rng(1).random(N) < 0.5, -1.0, 1.0)
    q_hat = quantile_difference_quotient(a, r, J)
    t = empirical_threshold(a, r).t
    signed = 1.0 / direct_kde(w, np.array([t]), bandwidth(w))[0]
    assert _rel(signed, q_hat) > 0.5                      # about 1: twice too large
    assert _rel(-q_hat, q_hat) > 1.0                      # the sign of P2


def test_spacings_are_exponential_with_mean_one_over_nf(samples):
    # n·f(a_i)·(a_{i+1} − a_i) ≈ Exp(1) (Pyke 1965): "spacings ≈ 1/(nf)" holds on
    # average only; one spacing is as noisy as its mean (sd = mean).
    a = np.sort(samples["halfnormal"])
    i = np.arange(N // 10, N // 2, 97)                    # every 97th, roughly independent
    f = 2.0 * stats.norm.pdf(a[i])
    u = N * f * (a[i + 1] - a[i])
    ks = stats.kstest(u, "expon")
    assert ks.pvalue > KS_MIN_P
    wrong = stats.kstest(u / 2.0, "expon")                # f of the signed weights: half
    assert wrong.pvalue < KS_MIN_P



@pytest.mark.parametrize("r, j", [(0.5, 0), (0.5, -1), (0.5, 2.0), (0.0, 1), (0.999, 5)])
def test_refuses_missing_order_statistics_and_bad_j(r, j):
    with pytest.raises(ValueError, match="j|a_"):
        quantile_difference_quotient(np.arange(1.0, 1001.0), r, j)
