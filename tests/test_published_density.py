"""The published density (METHOD §6 P5) in full, against a literal reading of METHOD §6."""

import numpy as np
import pytest
from scipy.signal import fftconvolve

from refprune.density.config import PUBLISHED_DENSITY, DensityConfig, density_at, threshold_dt_dr
from refprune.density.kde import bandwidth
from refprune.density.published import (
    published_bandwidth,
    published_density_at,
    published_grid_density,
    published_kernel,
    same_convolution,
)

# Each published choice (ddof = 0, kernel truncation) moves f by more than this relative amount
# at the median, so dropping one would be seen (an FFT-vs-direct rounding is far smaller).
CHOICE_VISIBLE_REL = 1e-5
# The sampled kernel's last node misses +3h by more than this: the arange is not symmetric.
ASYMMETRY_MIN = 1e-3

# FFT 'same' convolution against np.convolve: round-off of a length-2048 FFT,
# ~1e-15 of the peak; relative to the density at interior points <= 1e-12.
FFT_VS_DIRECT_RTOL = 1e-12
# refprune's P5 against the transcription of the published code below (two FFT
# implementations, the same float64 steps): observed <= 3.3e-15 relative at the points
# used; 1e-13 leaves 30x room and is 1e-7 of the float32 tolerance of dt/dr.
TRANSCRIPTION_RTOL = 1e-13
# Riemann sum and trapezoid area differ by dx·(f_0 + f_(m-1))/2: on 21 magnitudes that is
# more than this, relative (so the renormalisation really is the published one).
RIEMANN_VISIBLE_REL = 1e-7


def literal_p5(a, points, silverman=False):
    """The published code's density, transcribed without refprune (METHOD §6 P5).

    Histogram by int((x − min)/dx + 0.5), counts/(n·dx), the kernel on
    arange(−3h, 3h + dx, dx), 'same' FFT convolution, density /= sum(density)·dx
    (the Riemann sum), np.interp at the points.
    """
    n = a.size
    std = np.std(a)  # NumPy's default: ddof = 0
    h = (1.06 if silverman else 1.0) * std * n ** (-1 / 5)
    grid = np.linspace(a.min() - 3 * h, a.max() + 3 * h, 1024)
    dx = grid[1] - grid[0]
    hist = np.zeros(1024)
    for x in a:
        hist[int((x - grid[0]) / dx + 0.5)] += 1
    hist /= n * dx
    kx = np.arange(-3 * h, 3 * h + dx, dx)  # -3h, -3h + dx, ... while below 3h + dx
    kernel = np.exp(-0.5 * (kx / h) ** 2) / (h * np.sqrt(2 * np.pi))
    density = fftconvolve(hist, kernel, mode="same")
    density /= np.sum(density) * dx
    return np.interp(points, grid, density)


def transcription_inputs():
    """Magnitudes of several shapes and sizes (float64; one set float32-representable)."""
    rng = np.random.default_rng(1)
    return {"half-normal 300": np.abs(rng.standard_normal(300)) * 0.1,
            "uniform 1000": rng.uniform(0, 1, 1000),
            "exponential 50": rng.exponential(1.0, 50),
            "float32 weights 21": np.abs(rng.uniform(-0.5, 0.5, 21)).astype(np.float32).astype(np.float64),
            "bimodal 600": np.abs(np.concatenate([rng.normal(0, 0.01, 500), rng.normal(0.3, 0.02, 100)]))}


@pytest.mark.parametrize("name", list(transcription_inputs()))
@pytest.mark.parametrize("silverman", [False, True])
def test_p5_is_the_published_transcription(name, silverman):
    a = transcription_inputs()[name]
    s = np.sort(a)
    points = np.array([s[int(q * a.size)] for q in (0.01, 0.1, 0.5, 0.9, 0.99)] + [np.median(a)])
    rule = "normal_reference" if silverman else "scott"
    np.testing.assert_allclose(published_density_at(a, points, rule=rule), literal_p5(a, points, silverman),
                               rtol=TRANSCRIPTION_RTOL, atol=0)


def test_p5_renormalises_by_the_riemann_sum():
    a = transcription_inputs()["float32 weights 21"]
    h = published_bandwidth(a)
    grid, density = published_grid_density(a, h)
    dx = grid[1] - grid[0]
    assert abs(np.sum(density) * dx - 1) <= TRANSCRIPTION_RTOL
    assert abs(np.trapezoid(density, grid) - 1) > RIEMANN_VISIBLE_REL


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
    ddof1 = published_density_at(magnitudes, points, ddof=1)
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


def test_published_means_ddof_0():
    """P5's σ is np.std's: the method's default ddof is 0, and another is refused."""
    p5 = dict(method="published", binning="nearest", reflect=False, renormalize=True)
    assert DensityConfig(**p5).ddof == 0 and DensityConfig(**p5) == PUBLISHED_DENSITY
    assert DensityConfig(**p5, ddof=0) == PUBLISHED_DENSITY
    with pytest.raises(ValueError, match=r"^method 'published' is METHOD §6 P5, whose σ is np.std's \(ddof 0\); "
                                         r"got ddof 1"):
        DensityConfig(**p5, ddof=1)
    assert DensityConfig().ddof == 1 and DensityConfig(method="fft").ddof == 1  # the others keep ddof 1


def test_threshold_dt_dr_averages_the_order_statistics(magnitudes):
    s = np.sort(magnitudes)
    lower, upper = s[149], s[150]
    dt_dr, f, points = threshold_dt_dr(magnitudes, 0.5 * (lower + upper), lower, upper,
                                       PUBLISHED_DENSITY, at="order_stats")
    expected = literal_p5(magnitudes, np.array([lower, upper]))
    np.testing.assert_allclose(dt_dr, np.mean(1 / expected), rtol=FFT_VS_DIRECT_RTOL)
    np.testing.assert_array_equal(points, [lower, upper])
