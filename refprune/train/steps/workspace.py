"""The fast path's scratch for one run: flat buffers, Adam's temporaries, the worker thread, hints.

Nothing here is state of the method. A run handed a fresh :class:`Workspace` at any step
computes the same numbers: the selection brackets only narrow the search for order
statistics that the full selection finds as well, and the masks the published step keeps
for its next forward pass are recomputed when absent (tested in tests/test_train.py). So a
workspace is not checkpointed, and :class:`refprune.train.steps.common.TrainState` holds
only what the method needs. One workspace is made per run
(:func:`refprune.train.steps.common.new_workspace`) and passed to every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from refprune.train.parallel import halves, split_run

# The flat buffers of length n that the steps use (``hard`` is boolean).
BUFFER_NAMES = ("a", "m", "s", "z", "tmp", "masked", "g", "dw", "q", "kde")


@dataclass
class Workspace:
    """Reusable memory and scheduling of the training steps (no state of the method).

    Attributes
    ----------
    size : int
        n, the number of prunable weights.
    dtype : numpy dtype
        The weights' dtype.
    pool : ThreadPoolExecutor or None
        The worker thread of the elementwise phases (:mod:`refprune.train.parallel`).
    slices : list of slice
        Each group's slice of the flat weights.
    parts : list of (int, slice)
        The work units of the grouped passes, (group, slice of the flat weights): the two
        halves of the weights for one group, one unit per group otherwise. Every sum of a
        group is taken per unit and then added in this order, whatever the thread count.
    brackets : ndarray, shape (G,)
        Half-width of each group's next selection bracket around its last t (nan: select in full).
    adam_tmp : list of ndarray
        Temporaries shaped like the weights-and-biases group's moments.
    flat : dict
        The flat buffers (:data:`BUFFER_NAMES`), allocated on first use by :func:`buffers`.
    mask_sets : dict
        The published step's sets of flat mask buffers, by name.
    next_forward_masks : object
        The masks the published step built for its next forward pass (P4), or None.
    phase_times : list or None
        When a list, the exact step appends the seconds of each of its phases (benchmarks).
    """

    size: int
    dtype: np.dtype
    pool: object
    slices: list
    parts: list
    brackets: np.ndarray
    adam_tmp: list
    flat: dict = field(default_factory=dict)
    mask_sets: dict = field(default_factory=dict)
    next_forward_masks: object = None
    phase_times: list | None = None


def buffers(ws: Workspace) -> dict:
    """The workspace's flat buffers (length n), allocated on first use; ``hard`` is boolean."""
    if not ws.flat:
        ws.flat = {name: np.empty(ws.size, ws.dtype) for name in BUFFER_NAMES}
        ws.flat["hard"] = np.empty(ws.size, bool)
    return ws.flat


def on_halves(ws: Workspace, fn):
    """Run ``fn(first_half_slice)`` on the worker and ``fn(second_half_slice)`` here.

    The halves are the same whether or not a worker runs, so sums combined
    from them are too (results do not depend on the thread count).
    """
    first, second = halves(ws.size)
    return split_run(ws.pool, lambda: fn(first), lambda: fn(second))


def on_parts(ws: Workspace, fn) -> list:
    """``[fn(k, g, sl) for k, (g, sl) in enumerate(ws.parts)]``: the first part on the worker, the others here.

    Each part's result depends on that part only, so it does not depend on the thread count.
    """
    parts = list(enumerate(ws.parts))
    first, rest = split_run(ws.pool, lambda: [fn(k, g, sl) for k, (g, sl) in parts[:1]],
                            lambda: [fn(k, g, sl) for k, (g, sl) in parts[1:]])
    return first + rest


def group_total(ws: Workspace, values, g: int):
    """The sum over group g's parts of per-part ``values`` (aligned with ``ws.parts``), in part order."""
    mine = [v for (group, _), v in zip(ws.parts, values) if group == g]
    total = mine[0]
    for v in mine[1:]:
        total = total + v
    return total
