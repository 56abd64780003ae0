"""The published density (METHOD §6 P5) in full, against a literal reading of METHOD §6."""

import numpy as np
import pytest

from refprune.density.config import PUBLISHED_DENSITY, DensityConfig, density_at, threshold_dt_dr
from refprune.density.kde import bandwidth
from refprune.density.published import published_density_at, published_kernel, same_convolution

# Each published choice (ddof = 0, kernel truncation) moves f by more than this relative amount
# at the median, so dropping one would be seen (an FFT-vs-direct rounding is far smaller).
CHOICE_VISIBLE_REL = 1e-5
# The sampled kernel's last node misses +3h by more than this: the arange is not symmetric.
ASYMMETRY_MIN = 1e-3

# FFT 'same' convolution against np.convolve: round-off of a length-2048 FFT,
# ~1e-15 of the peak; relative to the density at interior points <= 1e-12.
FFT_VS_DIRECT_RTOL = 1e-12


def literal_p5(a, points, silverman=False):
    """METHOD §6 P5, read literally and written without refprune (np.convolve, no FFT)."""
    n = a.size
    std = np.std(a)  # NumPy's default: ddof = 0
    h = (1.06 if silverman else 1.0) * std * n ** (-1 / 5)
    grid = np.linspace(a.min() - 3 * h, a.max() + 3 * h, 1024)
    dx = grid[1] - grid[0]
    hist = np.zeros(1024)
    for x in a:
        hist[min(int((x - grid[0]) / dx + 0.5), 1023)] += 1
    kx = np.arange(-3 * h, 3 * h + dx, dx)  # -3h, -3h + dx, ... while below 3h + dx
    kernel = np.exp(-0.5 * (kx / h) ** 2) / (h * np.sqrt(2 * np.pi))
    dens = np.convolve(hist, kernel, mode="same")
    dens = dens / np.trapezoid(dens, grid)
    return np.interp(points, grid, dens)


@pytest.fixture
def magnitudes():
    return np.abs(np.random.default_rng(0).standard_normal(300)) * 0.1


@pytest.mark.parametrize("silverman", [False, True])
def test_published_density_is_the_literal_p5(magnitudes, silverman):
    points = np.quantile(magnitudes, [0.1, 0.5, 0.9])
    rule = "normal_reference" if silverman else "scott"
    ours = published_density_at(magnitudes, points, rule=rule)
    np.testing.assert_allclose(ours, literal_p5(magnitudes, points, silverman), rtol=FFT_VS_DIRECT_RTOL)
    cfg = DensityConfig(method="published", binning="nearest", reflect=False, renormalize=True,
                        ddof=0, rule=rule)
    np.testing.assert_array_equal(density_at(magnitudes, points, cfg), ours)


def test_every_p5_detail_moves_the_density(magnitudes):
    """ddof, the uncentred kernel and truncation each change f (so each is really modelled)."""
    points = np.quantile(magnitudes, [0.5])
    p5 = density_at(magnitudes, points, PUBLISHED_DENSITY)
    ddof1 = density_at(magnitudes, points, DensityConfig(method="published", binning="nearest",
                                                         reflect=False, renormalize=True, ddof=1))
    untruncated = density_at(magnitudes, points, DensityConfig(method="fft", binning="nearest",
                                                               reflect=False, renormalize=True))
    assert abs(ddof1 / p5 - 1) > CHOICE_VISIBLE_REL and abs(untruncated / p5 - 1) > CHOICE_VISIBLE_REL


def test_kernel_is_sampled_on_an_arange_and_not_centred():
    h, dx = 1.0, 0.37
    x = np.arange(-3 * h, 3 * h + dx, dx)
    np.testing.assert_array_equal(published_kernel(h, dx), np.exp(-0.5 * x ** 2) / np.sqrt(2 * np.pi))
    assert x[-1] < 3 * h + dx and x[0] == -3 * h and abs(x[-1] - 3 * h) > ASYMMETRY_MIN


@pytest.mark.parametrize("m, k", [(16, 5), (16, 6), (1024, 37), (1024, 1)])
def test_same_convolution_is_numpys(m, k):
    rng = np.random.default_rng(m + k)
    hist, kernel = rng.random(m), rng.random(k)
    np.testing.assert_allclose(same_convolution(hist, kernel), np.convolve(hist, kernel, mode="same"),
                               rtol=FFT_VS_DIRECT_RTOL, atol=FFT_VS_DIRECT_RTOL * m)


def test_normal_reference_and_ddof_bandwidths(magnitudes):
    n = magnitudes.size
    assert bandwidth(magnitudes, "scott", ddof=0) == np.std(magnitudes) * n ** (-0.2)
    assert bandwidth(magnitudes, "normal_reference", ddof=0) == 1.06 * np.std(magnitudes) * n ** (-0.2)
    with pytest.raises(ValueError, match="ddof must be 0 or 1"):
        bandwidth(magnitudes, ddof=2)


def test_published_config_is_checked():
    with pytest.raises(ValueError, match="METHOD §6 P5"):
        DensityConfig(method="published", binning="linear", reflect=False, renormalize=True)


def test_threshold_dt_dr_averages_the_order_statistics(magnitudes):
    s = np.sort(magnitudes)
    lower, upper = s[149], s[150]
    dt_dr, f, points = threshold_dt_dr(magnitudes, 0.5 * (lower + upper), lower, upper,
                                       PUBLISHED_DENSITY, at="order_stats")
    expected = literal_p5(magnitudes, np.array([lower, upper]))
    np.testing.assert_allclose(dt_dr, np.mean(1 / expected), rtol=FFT_VS_DIRECT_RTOL)
    np.testing.assert_array_equal(points, [lower, upper])
