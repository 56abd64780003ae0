"""The collapse study's table: r's prediction interval stays inside r's range."""

import numpy as np

from refprune.core.optim import R_MAX
from refprune.experiments.figures.collapse import COLLAPSE_R0, ORDER, rows
from refprune.experiments.figures.common import prediction_interval


def test_the_interval_is_cut_to_r_range_and_kept_where_inside():
    spread = np.array([0.933, 0.9998])           # two seeds far apart near the clamp
    low = np.array([0.0, 0.02])                  # two seeds near r = 0
    inside = np.array([0.40, 0.41, 0.42])
    values = {(label, r0): np.array([]) for label in ORDER for r0 in COLLAPSE_R0}
    values["P3", 0.9], values["P3", 0.1], values["exact", 0.5] = spread, low, inside
    values["P2", 0.9] = np.array([R_MAX, R_MAX])  # both seeds at the clamp
    table = {row["configuration"]: row for row in rows(values)}
    lo, hi = prediction_interval(spread)
    assert hi > R_MAX and lo > 0.0              # the raw interval reaches past the clamp
    assert table["P3"]["r0 = 0.9"] == f"0.966 [{lo:.3f}, {R_MAX:g}] (0.933–0.9998, n = 2)"
    lo, hi = prediction_interval(low)
    assert lo < 0.0
    assert table["P3"]["r0 = 0.1"].startswith(f"0.010 [0.000, {hi:.3f}] ")
    lo, hi = prediction_interval(inside)
    assert table["exact"]["r0 = 0.5"] == f"0.410 [{lo:.3f}, {hi:.3f}] (0.400–0.420, n = 3)"
    assert table["P1"]["r0 = 0.5"] == "—"
    assert table["P2"]["r0 = 0.9"] == "0.9999 [0.9999, 0.9999] (0.9999–0.9999, n = 2)"
