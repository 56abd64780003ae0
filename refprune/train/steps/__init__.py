"""One optimisation step for each method: dense, LRP exact (METHOD §3–§4), LRP published (§6).

- :mod:`refprune.train.steps.common` — the training state, its flat buffers, the
  threshold selection, forward/backward and Adam phases every step shares,
  the dense and fixed-mask steps;
- :mod:`refprune.train.steps.softband` — the exact step's work on the soft band only
  (masks, gradients and KDE sum where |z| < cutoff, a hard mask elsewhere);
- :mod:`refprune.train.steps.exact` — the exact LRP step;
- :mod:`refprune.train.steps.layerwise` — the layer-wise exact LRP step;
- :mod:`refprune.train.steps.published` — the published LRP step, with its own
  state (P3/P4) in :class:`~refprune.train.steps.published.PublishedState`.
"""

__all__ = ["common", "softband", "exact", "layerwise", "published"]
