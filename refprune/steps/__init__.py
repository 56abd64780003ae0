"""One optimisation step for each method: dense, LRP exact (METHOD §3–§4), LRP published (§6).

Modules:

- :mod:`refprune.steps.common` — the training state, its flat buffers, the
  threshold selection, forward/backward and Adam phases every step shares,
  the dense and fixed-mask steps;
- :mod:`refprune.steps.band` — the exact step's work on the soft band only
  (masks, gradients and KDE sum where |z| < cutoff, a hard mask elsewhere);
- :mod:`refprune.steps.exact` — the exact LRP step;
- :mod:`refprune.steps.published` — the published LRP step, with its own
  state (P3/P4) in :class:`PublishedState`.

The names below are re-exported so ``from refprune.steps import ...`` works
for each of them.
"""

from .common import (TrainState, adam_step, buffers, dense_step, layer_views, magnitudes,
                     masked_dense_step, new_state, on_halves, phase_forward_backward, step_threshold,
                     update_r_tau)
from .exact import exact_step, phase_gradients_density_adam, phase_masks, phase_threshold
from .published import (DEVIATIONS, FlatMasks, PublishedPath, PublishedState, flat_masks, layer_masks,
                        published_dt_dr, published_gradients, published_hook, published_inverse_density,
                        published_state, published_step)

__all__ = [
    "TrainState", "adam_step", "buffers", "dense_step", "layer_views", "magnitudes", "masked_dense_step",
    "new_state", "on_halves", "phase_forward_backward", "step_threshold", "update_r_tau",
    "exact_step", "phase_gradients_density_adam", "phase_masks", "phase_threshold",
    "DEVIATIONS", "FlatMasks", "PublishedPath", "PublishedState", "flat_masks", "layer_masks", "published_dt_dr",
    "published_gradients", "published_hook", "published_inverse_density", "published_state", "published_step",
]
