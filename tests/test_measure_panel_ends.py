"""scripts/measure_thesis_panel_ends.py finds known trace ends on a page drawn like thesis p. 49.

The thesis PDF is not in the repository, so the test draws a stand-in page: two figures of
3 × 3 ggplot-style panels with the thesis's tick labels, whose traces end at iterations
chosen here, and checks that the script's measurement recovers them.
"""

import importlib.util
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DPI = 200  # low enough to draw fast; one pixel is then ~50 iterations on these panels
# The measurement takes the last column holding any trace pixel. Past the last data point that
# column can hold the anti-aliased edge of the line's end (up to one pixel) and the corner of
# its butt cap on a sloped line (under half the 1 pt line width, 1.4 px at DPI): two pixels.
END_TOLERANCE_PX = 2.0


def load_script():
    spec = importlib.util.spec_from_file_location("measure_thesis_panel_ends",
                                                  ROOT / "scripts" / "measure_thesis_panel_ends.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def draw_page(script, ends, rng):
    """A page of 6 × 3 panels in the layout of thesis p. 49, traces ending at ``ends``.

    ``ends[f][k]`` is the last iteration of the traces in panel k (r0 order) of figure f.
    Returns the page's RGB pixels, shape (height, width, 3).
    """
    with plt.style.context("ggplot"):
        fig, axes = plt.subplots(6, 3, figsize=(7, 10), dpi=DPI)
        for f, (figure, _lam) in enumerate(script.FIGURES):
            ticks = script.TICKS[figure]
            for k, ax in enumerate(axes[3 * f:3 * f + 3].ravel()):
                end = ends[f][k]
                for seed in range(5):
                    x = np.arange(0, end + 1, 50.0)
                    x[-1] = end
                    # like the thesis's r traces: each seed a line falling at its own rate, a little noise
                    y = 0.8 - (0.3 + 0.05 * seed) * x / end + 0.005 * rng.standard_normal(x.size)
                    ax.plot(x, y, lw=1, solid_capstyle="butt")
                ax.set_xticks(ticks)
                ax.set_xlim(-0.05 * end, 1.05 * end)
                ax.set_ylim(0.0, 1.0)
        fig.tight_layout()
        fig.canvas.draw()
        rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
        plt.close(fig)
    return rgb


@pytest.fixture(scope="module")
def script():
    return load_script()


def test_measure_page_recovers_the_drawn_ends(script):
    rng = np.random.default_rng(0)
    # Fig. 4.17's panels end at 11 or 12 epochs of 750 steps, Fig. 4.18's at 15 (the thesis's layout);
    # one panel of each is changed so a mix-up of panel order would show.
    ends = [[8_249] * 7 + [8_999, 8_999], [11_249] * 9]
    ends[0][2], ends[1][4] = 8_600, 10_900
    rows = script.measure_page(draw_page(script, ends, rng), DPI)
    assert [(row["figure"], row["r0"]) for row in rows] == [
        (figure, r0) for figure, _lam in script.FIGURES for r0 in script.R0_ORDER]
    measured = np.array([row["last"] for row in rows])
    per_pixel = np.array([row["per_pixel"] for row in rows])
    expected = np.array(ends[0] + ends[1], dtype=float)
    assert np.all(np.abs(measured - expected) <= END_TOLERANCE_PX * per_pixel), measured - expected
    assert all(row["residual"] < per_pixel_ for row, per_pixel_ in zip(rows, per_pixel))


def test_runs_merges_short_gaps_and_drops_short_runs(script):
    mask = np.array([1, 1, 0, 1, 1, 0, 0, 0, 1, 0, 1, 1, 1], dtype=bool)
    assert script.runs(mask, gap=2, min_length=3) == [(0, 5), (8, 13)]
    assert script.runs(mask, gap=1, min_length=1) == [(0, 2), (3, 5), (8, 9), (10, 13)]


def test_read_ppm_round_trips(script, tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    path = tmp_path / "page.ppm"
    path.write_bytes(b"P6\n5 4\n255\n" + pixels.tobytes())
    np.testing.assert_array_equal(script.read_ppm(path), pixels)


def test_a_page_without_the_figures_stops_with_a_message(script):
    blank = np.full((1000, 800, 3), 255, dtype=np.uint8)
    with pytest.raises(SystemExit, match="is this the page of Figs. 4.17/4.18"):
        script.measure_page(blank, DPI)
