"""The training steps by name: what :func:`refprune.train.loop.make_step` chooses from.

Every step has the signature ``step(state, ws, x, y, cfg) -> float``
(:mod:`refprune.train.steps.common`): the method's state, the run's workspace, one batch
and a :class:`refprune.train.steps.common.StepConfig`; it updates the state in place and
returns the batch's total loss. The key is what selects the step: the dense baseline, or
an LRP variant. Layer-wise LRP is the exact step on a state whose grouping has one group
per layer (:class:`refprune.core.groups.Grouping`), not a step of its own.
"""

from __future__ import annotations

from refprune.train.steps.common import dense_step
from refprune.train.steps.exact import exact_step
from refprune.train.steps.published import published_step

STEPS = {
    "dense": dense_step,          # plain training, no mask (Adam on weights and biases)
    "exact": exact_step,          # LRP, exact gradients (METHOD §3), any grouping
    "published": published_step,  # LRP, the published code's gradient path (METHOD §6), one group
}


def step_kind(method: str, variant: str) -> str:
    """The key of :data:`STEPS` for a method ("dense" or "lrp") and an LRP variant."""
    return "dense" if method == "dense" else variant
