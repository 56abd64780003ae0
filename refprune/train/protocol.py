"""Training protocols: how the steps of an epoch draw their minibatches, and when a run stops.

The thesis states batch 32 (§3.2), i.e. 48,000 / 32 = 1,500 steps per epoch, but its
per-iteration traces fit about 750 (METHOD §5, docs/protocol.md). Two ways the published
code could have made 750 steps per epoch are emulated here, next to the stated protocol:

- ``"single"``: one process; each epoch a permutation of the training set is cut into
  consecutive batches of ``batch_size`` (the stated protocol at batch 32; batch 64 is the
  first hypothesis).
- ``"ddp2"``: two data-parallel processes, as PyTorch Lightning's ``devices="auto"`` gives on
  a machine with two GPUs. Each epoch a permutation is split as ``DistributedSampler``
  splits it (padded to a multiple of the world size by repeating its head; rank k takes
  every world-th index from k), each rank cuts its share into batches of ``batch_size``,
  and one step uses both ranks' batches. DDP averages the per-rank mean gradients; with
  equal per-rank batch sizes that is the mean gradient of the concatenated batch, so a
  step is an ordinary step on the concatenation (docs/protocol.md derives this, and what
  happens to the hand-set gradients of r and τ). Validation and test metrics are those of
  rank 0, which sees every world-th example (``eval_shard``), because the published code
  logs them without ``sync_dist``.

:class:`EarlyStopOnR` is the ``EarlyStopping(monitor="r", mode="max", patience=10,
min_delta=1e-4)`` the published example defines: a check after every epoch, an
improvement only when r exceeds the best value so far by more than ``min_delta``, and a
stop after ``patience`` checks without one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PROTOCOLS = ("single", "ddp2")
DDP_WORLD = 2  # processes of the "ddp2" protocol (two GPUs)
EARLY_STOP_MIN_DELTA = 1e-4  # the published example's EarlyStopping(monitor="r", min_delta=1e-4)


def check_protocol(protocol: str) -> str:
    """Return ``protocol``, or raise naming the accepted ones."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    return protocol


def world_size(protocol: str) -> int:
    """Number of data-parallel processes the protocol emulates."""
    return DDP_WORLD if check_protocol(protocol) == "ddp2" else 1


def rank_share(order: np.ndarray, world: int, rank: int) -> np.ndarray:
    """The indices ``DistributedSampler`` gives one rank of a permutation.

    Parameters
    ----------
    order : ndarray of int, shape (n,)
        The epoch's permutation of the examples.
    world, rank : int
        Number of processes and this process's rank, 0 <= rank < world.

    Returns
    -------
    ndarray of int, shape (ceil(n / world),)
        ``padded[rank::world]``, where ``padded`` repeats the head of ``order`` until its
        length is a multiple of ``world``.
    """
    if not 0 <= rank < world:
        raise ValueError(f"rank must be in [0, {world}), got {rank}")
    n = order.shape[0]
    total = -(-n // world) * world  # ceil to a multiple of world
    padded = np.concatenate([order, order[:total - n]]) if total > n else order
    return padded[rank::world]


def epoch_batches(rng: np.random.Generator, n: int, batch_size: int, protocol: str = "single") -> list:
    """The index arrays of one epoch's steps, in order.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the epoch's permutation (one ``rng.permutation(n)`` call for either protocol).
    n : int
        Number of training examples.
    batch_size : int
        Examples per batch of one process.
    protocol : {"single", "ddp2"}

    Returns
    -------
    list of ndarray of int
        One array per step: ``batch_size`` indices under "single" (the last may be
        shorter); under "ddp2" rank 0's batch followed by rank 1's (2·batch_size indices).
    """
    world = world_size(protocol)
    order = rng.permutation(n)
    if world == 1:
        return [order[i:i + batch_size] for i in range(0, n, batch_size)]
    shares = [rank_share(order, world, k) for k in range(world)]
    per_rank = shares[0].shape[0]
    return [np.concatenate([s[i:i + batch_size] for s in shares]) for i in range(0, per_rank, batch_size)]


def eval_shard(x: np.ndarray, y: np.ndarray, protocol: str) -> tuple[np.ndarray, np.ndarray]:
    """The evaluation examples whose metrics the protocol reports.

    Under "ddp2" this is rank 0's share of an unshuffled ``DistributedSampler``
    (indices 0, 2, 4, … after padding), since the published code logs validation and
    test metrics without synchronising them across processes; otherwise all of (x, y).
    """
    world = world_size(protocol)
    if world == 1:
        return x, y
    idx = rank_share(np.arange(x.shape[0]), world, 0)
    return x[idx], y[idx]


@dataclass
class EarlyStopOnR:
    """Stop when r has not risen by more than ``min_delta`` for ``patience`` epochs.

    Lightning's ``EarlyStopping(mode="max")`` semantics: the best value starts at −∞; a
    check is an improvement when ``value − min_delta > best`` (then ``best = value`` and
    the wait count resets), otherwise the wait count grows; the run stops once the wait
    count reaches ``patience``.

    Attributes
    ----------
    patience : int
    min_delta : float
    best : float
    wait : int
    """

    patience: int = 10
    min_delta: float = 1e-4
    best: float = -np.inf
    wait: int = 0

    def __post_init__(self):
        if int(self.patience) != self.patience or self.patience < 1:
            raise ValueError(f"early-stop patience must be an integer >= 1, got {self.patience!r}")
        if not (np.isfinite(self.min_delta) and self.min_delta >= 0):
            raise ValueError(f"early-stop min_delta must be finite and >= 0, got {self.min_delta!r}")

    def update(self, value: float) -> bool:
        """Record one epoch's r; return True when the run should stop."""
        if value - self.min_delta > self.best:
            self.best, self.wait = float(value), 0
        else:
            self.wait += 1
        return self.wait >= self.patience

    def state(self) -> dict:
        """What a checkpoint needs to resume this rule."""
        return {"patience": self.patience, "min_delta": self.min_delta, "best": self.best, "wait": self.wait}
