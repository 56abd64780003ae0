"""One optimisation step for each method: dense, LRP exact (METHOD §3–§4, any grouping of the
layers), LRP published (§6); all with the signature ``step(state, ws, x, y, cfg) -> float``.

- :mod:`refprune.train.steps.common` — the step configuration, the training state (what
  the method carries between steps), the threshold selection, forward/backward and Adam
  phases every step shares, the dense and fixed-mask steps;
- :mod:`refprune.train.steps.workspace` — the fast path's scratch (buffers, worker thread,
  selection brackets), made once per run and passed to every step;
- :mod:`refprune.train.steps.softband` — the exact step's work on the soft band only
  (masks, gradients and KDE sum where |z| < cutoff, a hard mask elsewhere);
- :mod:`refprune.train.steps.exact` — the exact LRP step, global or layer-wise;
- :mod:`refprune.train.steps.published` — the published LRP step, with its own
  state (P4) in :class:`~refprune.train.steps.published.PublishedState`;
- :mod:`refprune.train.steps.registry` — the steps by name.
"""

__all__ = ["common", "workspace", "softband", "exact", "published", "registry"]
