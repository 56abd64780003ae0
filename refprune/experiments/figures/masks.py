"""Figs. 2.1/2.2: the hard and the soft mask functions (no computation to run)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from refprune.core.masks import hard_mask, soft_mask
from refprune.experiments.figures.common import entry, save

NAME = "masks"
PROTOCOL = "no computation: the mask functions drawn for t = 0.5."
T = 0.5  # threshold drawn
TAUS = (0.01, 0.05, 0.2, 1.0)


def jobs(quick: bool, data_dir=None) -> list:
    return []


def plot(results, out) -> list:
    w = np.linspace(-1.5, 1.5, 1201)
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(w, hard_mask(w, T), color="k")
    ax.set(xlabel="w", ylabel="mask", title=f"Hard mask 1[|w| ≥ t], t = {T}")
    save(fig, out, "fig2_1_hard_mask")
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for tau in TAUS:
        ax.plot(w, soft_mask(w, T, tau), label=f"τ = {tau}")
    ax.set(xlabel="w", ylabel="mask", title=f"Soft mask σ((w² − t²)/τ), t = {T}")
    ax.legend()
    save(fig, out, "fig2_2_soft_mask")
    return [entry("fig2_1_hard_mask", "Fig. 2.1", "hard mask function", "—"),
            entry("fig2_2_soft_mask", "Fig. 2.2", f"soft mask function for τ in {TAUS}", "—")]
