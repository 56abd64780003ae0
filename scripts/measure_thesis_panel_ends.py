"""Measure where each panel of the thesis's Figs. 4.17/4.18 ends on its iteration axis.

Usage: python scripts/measure_thesis_panel_ends.py --thesis PATH [--page 49] [--dpi 500]

Reproduces :data:`refprune.experiments.figures.mnist_sweep.THESIS_SWEEP_LAST_ITERATION`
from the thesis PDF. Figs. 4.17 (λ = 0) and 4.18 (λ = 10), both on printed
page 49, are each a 3 × 3 grid of panels, one per r0 = 0.1 … 0.9, plotting r
against "Iteration" for five seeds, in matplotlib's ggplot style (grey panel
background, white gridlines, no axis lines). Per panel, the result is the last
pixel column any trace reaches, read on the panel's x axis. The method:

1. Render. ``pdftoppm`` renders the page at ``--dpi`` as a PPM file into a
   temporary directory; numpy parses it. ``--page`` is the thesis's printed
   page number; the PDF page is that plus :data:`PDF_PAGE_OFFSET` (front
   matter). The figures are raster images embedded at 366 ppi, so rendering
   above ~366 dpi adds no detail: one source pixel is 500/366 ≈ 1.4 rendered
   pixels at the default dpi.
2. Panels. A pixel is *shaded* if it has the panel background's colour
   (:data:`BACKGROUND`, within :data:`BACKGROUND_TOL`); only the panels have
   wide areas of it (anti-aliased text has a few such pixels). Rows with at
   least :data:`PANEL_MIN_PT` of shaded pixels form horizontal bands; within
   each band, columns that are mostly shaded form panels. Runs split by a
   white gridline (gaps narrower than :data:`PANEL_GAP_PT`) are merged, runs
   shorter than :data:`PANEL_MIN_PT` dropped. Bands are ordered
   top to bottom, panels left to right; the first :data:`GRID_ROWS` bands are
   Fig. 4.17, the next Fig. 4.18, and r0 runs row by row (:data:`R0_ORDER`:
   the panels' y axes start at 0.10, 0.20, …, 0.90 in that order, read by eye).
3. Trace pixels. Inside a panel the only non-trace pixels are the grey
   background, the white gridlines and their anti-aliased blends, all neutral
   greys from :data:`BACKGROUND` to 255 (ticks, labels and text lie outside the
   shaded area). A pixel is a trace pixel if some channel differs by more than
   :data:`TRACE_CONTRAST` from the nearest such grey; this takes the coloured
   traces and the grey (#777777) one, which is darker than the background.
4. Gridlines. Each column's median over the panel's rows (trace pixels set to
   the background) is the background except on a vertical gridline, where it
   is lighter (horizontal gridlines and traces cover a minority of any
   column's rows). Columns more than :data:`GRIDLINE_RISE` above the background
   form gridlines; each gridline's position is the centroid of its columns
   weighted by that rise (sub-pixel).
5. Scale. The gridlines' iterations are the labelled x ticks (:data:`TICKS`,
   read by eye; every panel of a figure has the same ticks, but the panels
   r0 = 0.8, 0.9 of Fig. 4.17 span a longer range, so their gridlines are
   closer together). A straight line fitted by least squares through
   (gridline column, tick) maps a column to an iteration; all traces end past
   the last gridline, so the end is extrapolated along that line. Its largest
   residual at a gridline is printed with the scale (iterations per pixel).
6. Ends. The panel's last iteration is that of the last column holding any
   trace pixel (the pixel's centre), so it is where the drawn line ends,
   not necessarily where its data end. Also printed is the first trace
   column's iteration: 0 for a line without width, so its distance from 0
   shows how far line width and caps carry a trace past its data (the same
   at the other end).

Precision: one rendered pixel is 14–20 iterations at 500 dpi (printed per
panel). Rendered at 300, 366, 500 and 732 dpi, each end stays within about
±25 iterations, about one pixel of the embedded image.

Assumed: the page shows the two figures as described (checked: 6 bands of 3
panels, and as many gridlines per panel as ticks, else it stops with a
message); the tick labels are those of :data:`TICKS`; a gridline is drawn at
every labelled tick and nowhere else; the x axis is linear. Traces of
different seeds are not told apart: the end is that of the longest.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from refprune.experiments.figures.mnist_sweep import SWEEP_R0, THESIS_SWEEP_LAST_ITERATION

# Printed page 49 is the PDF's page 61: 12 front-matter pages precede printed page 1
# (pdftotext of PDF p. 61 shows the running head "49" and the captions of Figs. 4.17/4.18).
PDF_PAGE_OFFSET = 12

# (figure, λ) in page order, top to bottom (captions: "with no Regularization", "with Regularization").
FIGURES = (("4.17", 0.0), ("4.18", 10.0))
GRID_ROWS, GRID_COLUMNS = 3, 3  # each figure is a 3 × 3 grid of panels (by eye)
R0_ORDER = SWEEP_R0  # r0 of a figure's panels row by row, left to right (y axes start at 0.1 … 0.9)

# x tick labels, read by eye under each of the 18 panels on p. 49 rendered at 500 dpi: every panel of
# Fig. 4.17 is labelled 0 … 8000, every panel of Fig. 4.18 0 … 10000, in steps of 2000.
TICKS = {"4.17": (0, 2000, 4000, 6000, 8000),
         "4.18": (0, 2000, 4000, 6000, 8000, 10000)}

BACKGROUND = 229  # grey level of the panels' background (ggplot style's #E5E5E5; the page's commonest non-white)
BACKGROUND_TOL = 3  # grey levels; the background is rendered exactly 229, slack for resampling
PANEL_MIN_PT = 36  # a shaded run shorter than this (0.5 in) is not a panel; panels are ~90 pt wide
PANEL_GAP_PT = 3  # shaded runs closer than this are one panel cut by a gridline (~0.3 pt wide; panels ≥ 8 pt apart)
PANEL_FILL = 0.5  # a panel's column (row) is shaded in at least half its rows (columns); traces cover far less
TRACE_CONTRAST = 20  # grey levels off the nearest background/gridline grey: a pixel ≳ 10–25 % covered by a
#                      trace (by colour); the ends move by ≤ 1 px for any value from 10 to 60
GRIDLINE_RISE = 5  # grey levels above the background of a column's median on a vertical gridline (white: +26)


def render_page(pdf: Path, pdf_page: int, dpi: int) -> np.ndarray:
    """Render one page of a PDF with pdftoppm.

    Parameters
    ----------
    pdf : Path
        The PDF file.
    pdf_page : int
        The page, counted from 1 in the PDF (not the printed number).
    dpi : int
        Rendering resolution.

    Returns
    -------
    ndarray of uint8, shape (height, width, 3)
        The page's RGB pixels.
    """
    if shutil.which("pdftoppm") is None:
        raise SystemExit("pdftoppm not found: install poppler-utils (it renders the thesis page)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "page"
        subprocess.run(["pdftoppm", "-f", str(pdf_page), "-l", str(pdf_page), "-r", str(dpi),
                        "-singlefile", str(pdf), str(root)], check=True)
        return read_ppm(root.with_suffix(".ppm"))


def read_ppm(path: Path) -> np.ndarray:
    """Read a binary 8-bit PPM (P6) file.

    Parameters
    ----------
    path : Path
        The file, as pdftoppm writes it.

    Returns
    -------
    ndarray of uint8, shape (height, width, 3)
        Its RGB pixels.
    """
    data = path.read_bytes()
    header = re.match(rb"P6\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    if header is None or int(header[3]) != 255:
        raise SystemExit(f"{path}: not an 8-bit binary PPM file")
    width, height = int(header[1]), int(header[2])
    pixels = np.frombuffer(data, dtype=np.uint8, count=width * height * 3, offset=header.end())
    return pixels.reshape(height, width, 3)


def runs(mask: np.ndarray, gap: int, min_length: int) -> list[tuple[int, int]]:
    """Runs of True in a 1-D mask, merging runs less than ``gap`` apart, keeping long ones.

    Parameters
    ----------
    mask : ndarray of bool, shape (n,)
    gap : int
        Runs separated by fewer than this many False entries are merged.
    min_length : int
        Merged runs shorter than this are dropped.

    Returns
    -------
    list of (start, stop)
        Half-open index ranges, in order.
    """
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    merged: list[list[int]] = []
    for start, stop in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
        if merged and start - merged[-1][1] < gap:
            merged[-1][1] = int(stop)
        else:
            merged.append([int(start), int(stop)])
    return [(start, stop) for start, stop in merged if stop - start >= min_length]


def find_panels(rgb: np.ndarray, dpi: int) -> list[list[tuple[int, int, int, int]]]:
    """Locate the shaded panels of the page.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (height, width, 3)
        The rendered page.
    dpi : int
        Its resolution (sets the size limits in pixels).

    Returns
    -------
    list of list of (top, bottom, left, right)
        Per horizontal band of panels, top to bottom, its panels left to right,
        as half-open pixel ranges.
    """
    shaded = (np.abs(rgb.astype(np.int16) - BACKGROUND) <= BACKGROUND_TOL).all(axis=2)
    min_px, gap_px = round(PANEL_MIN_PT * dpi / 72), round(PANEL_GAP_PT * dpi / 72)
    bands = []
    for top, bottom in runs(shaded.sum(axis=1) >= min_px, gap_px, min_px):
        band = []
        for left, right in runs(shaded[top:bottom].mean(axis=0) >= PANEL_FILL, gap_px, min_px):
            rows = runs(shaded[top:bottom, left:right].mean(axis=1) >= PANEL_FILL, gap_px, min_px)
            band.append((top + rows[0][0], top + rows[-1][1], left, right))
        bands.append(band)
    return bands


def trace_mask(panel: np.ndarray) -> np.ndarray:
    """Which pixels of a panel belong to a trace.

    Parameters
    ----------
    panel : ndarray of uint8, shape (h, w, 3)
        The panel's shaded area.

    Returns
    -------
    ndarray of bool, shape (h, w)
        True where the pixel differs from every background/gridline grey
        (neutral, ``BACKGROUND`` … 255) by more than ``TRACE_CONTRAST`` in some channel.
    """
    rgb = panel.astype(np.float64)
    nearest_grey = np.clip(rgb.mean(axis=2), BACKGROUND, 255)
    return np.abs(rgb - nearest_grey[..., None]).max(axis=2) > TRACE_CONTRAST


def gridline_columns(panel: np.ndarray, traces: np.ndarray) -> np.ndarray:
    """Sub-pixel column positions of a panel's vertical gridlines.

    Parameters
    ----------
    panel : ndarray of uint8, shape (h, w, 3)
    traces : ndarray of bool, shape (h, w)
        Its trace pixels (:func:`trace_mask`), counted as background here.

    Returns
    -------
    ndarray of float, shape (k,)
        Each gridline's column (pixel centres at integer columns), left to right.
    """
    grey = np.where(traces, BACKGROUND, panel.mean(axis=2))
    rise = np.median(grey, axis=0) - BACKGROUND
    columns = np.arange(rise.size)
    return np.array([np.average(columns[start:stop], weights=rise[start:stop])
                     for start, stop in runs(rise > GRIDLINE_RISE, 1, 1)])


def column_scale(gridlines: np.ndarray, ticks: tuple[int, ...]) -> tuple[float, float, float]:
    """The straight line from column to iteration through a panel's gridlines.

    Parameters
    ----------
    gridlines : ndarray of float, shape (k,)
        Gridline columns (:func:`gridline_columns`).
    ticks : sequence of float, length k
        Their iterations (the x tick labels).

    Returns
    -------
    slope, intercept, residual : float
        Iterations per pixel, the iteration at column 0, and the fit's largest
        absolute residual at a gridline (iterations).
    """
    ticks = np.asarray(ticks, dtype=np.float64)
    slope, intercept = np.polyfit(gridlines, ticks, 1)
    residual = np.abs(slope * gridlines + intercept - ticks).max()
    return float(slope), float(intercept), float(residual)


def measure_panel(panel: np.ndarray, ticks: tuple[int, ...]) -> dict:
    """Where one panel's traces start and end, in iterations.

    Parameters
    ----------
    panel : ndarray of uint8, shape (h, w, 3)
        The panel's shaded area.
    ticks : sequence of float
        The iterations of its x ticks, left to right.

    Returns
    -------
    dict
        ``last`` and ``first`` (iterations of the last and first trace column),
        ``per_pixel`` (iterations per pixel), ``residual`` (largest gridline
        misfit, iterations).
    """
    traces = trace_mask(panel)
    gridlines = gridline_columns(panel, traces)
    if gridlines.size != len(ticks):
        raise SystemExit(f"found {gridlines.size} vertical gridlines in a panel, expected {len(ticks)} "
                         f"(ticks {ticks}): is this the page of Figs. 4.17/4.18?")
    slope, intercept, residual = column_scale(gridlines, ticks)
    columns = np.flatnonzero(traces.any(axis=0))
    if columns.size == 0:
        raise SystemExit("found a panel without traces: is this the page of Figs. 4.17/4.18?")
    return {"last": slope * columns[-1] + intercept, "first": slope * columns[0] + intercept,
            "per_pixel": slope, "residual": residual}


def measure_page(rgb: np.ndarray, dpi: int) -> list[dict]:
    """Measure every panel of Figs. 4.17/4.18 on the rendered page.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (height, width, 3)
        The rendered page.
    dpi : int
        Its resolution.

    Returns
    -------
    list of dict
        One per panel, in figure then r0 order: ``figure``, ``lam``, ``r0`` and
        the entries of :func:`measure_panel`.
    """
    bands = find_panels(rgb, dpi)
    shape = [len(band) for band in bands]
    expected = [GRID_COLUMNS] * (GRID_ROWS * len(FIGURES))
    if shape != expected:
        raise SystemExit(f"found panel bands of sizes {shape}, expected {expected}: "
                         "is this the page of Figs. 4.17/4.18?")
    rows = []
    for f, (figure, lam) in enumerate(FIGURES):
        boxes = [box for band in bands[f * GRID_ROWS:(f + 1) * GRID_ROWS] for box in band]
        for r0, (top, bottom, left, right) in zip(R0_ORDER, boxes):
            rows.append({"figure": figure, "lam": lam, "r0": r0,
                         **measure_panel(rgb[top:bottom, left:right], TICKS[figure])})
    return rows


def report(rows: list[dict]) -> list[str]:
    """The printed table: each panel's measured end against the package's constant.

    Parameters
    ----------
    rows : list of dict
        :func:`measure_page`'s result.

    Returns
    -------
    list of str
        Lines to print.
    """
    lines = ["Last iteration the traces reach, per panel (last trace pixel column, on the gridlines' scale)",
             f"{'fig.':>5} {'λ':>4} {'r0':>4} {'measured':>9} {'constant':>9} {'diff':>6} "
             f"{'it/px':>6} {'fit resid':>9} {'first':>6}"]
    for row in rows:
        constant = THESIS_SWEEP_LAST_ITERATION[row["lam"]][row["r0"]]
        lines.append(f"{row['figure']:>5} {row['lam']:>4g} {row['r0']:>4.1f} {row['last']:>9,.0f} {constant:>9,d} "
                     f"{row['last'] - constant:>+6.0f} {row['per_pixel']:>6.2f} {row['residual']:>9.1f} "
                     f"{row['first']:>+6.0f}")
    lines += ["it/px: iterations per rendered pixel; fit resid: largest misfit of a gridline to the straight "
              "line (iterations);",
              "first: iteration of the first trace column (0 for a line without width)."]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thesis", type=Path, required=True, help="the thesis PDF")
    parser.add_argument("--page", type=int, default=49,
                        help=f"printed page number of Figs. 4.17/4.18 (PDF page = this + {PDF_PAGE_OFFSET})")
    parser.add_argument("--dpi", type=int, default=500, help="rendering resolution")
    args = parser.parse_args(argv)
    if not args.thesis.is_file():
        raise SystemExit(f"{args.thesis}: no such file")
    rgb = render_page(args.thesis, args.page + PDF_PAGE_OFFSET, args.dpi)
    print(f"{args.thesis}, printed p. {args.page} (PDF p. {args.page + PDF_PAGE_OFFSET}) at {args.dpi} dpi")
    print("\n".join(report(measure_page(rgb, args.dpi))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
