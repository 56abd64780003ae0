"""Profile one method's training step inside a real MNIST run (cProfile, the most expensive functions).

Usage: python scripts/profile_step.py [--variant published] [--warmup 1500] [--steps 400]
       [--data-dir ../shared/data/mnist] [--top 18]

Trains ``--warmup`` steps of batch 32 (784-512-512-10, float32, r0 = 0.5, λ = 10,
Table 4.1 otherwise) unprofiled, so τ reaches the state real training is in, then
profiles ``--steps`` more and prints the functions with the largest own time
(per-step milliseconds are their totals divided by ``--steps``). Complements
``bench_train.py``, which times the exact step's phases but not the published
sequence's parts.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as refprune.train.threads decides; before numpy loads

import argparse
import cProfile
import pstats
import sys
from pathlib import Path

import numpy as np

from refprune.data.tasks import load_task
from refprune.train.loop import TrainConfig, init_state, make_step
from refprune.train.steps.common import new_workspace
from refprune.train.threads import training_threads

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist"
LAYERS = (784, 512, 512, 10)
BATCH = 32


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", default="published", choices=("exact", "published"))
    p.add_argument("--warmup", type=int, default=1500, help="unprofiled steps first (1500: one epoch)")
    p.add_argument("--steps", type=int, default=400, help="profiled steps")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    p.add_argument("--top", type=int, default=18, help="functions listed")
    args = p.parse_args(argv)
    training_threads()
    data = load_task("mnist", data_dir=args.data_dir)
    cfg = TrainConfig(variant=args.variant, lam=10.0)
    state, rng = init_state(LAYERS, cfg)
    step, ws = make_step(cfg), new_workspace(state)
    x, y = data.x_train.astype(np.float32), data.y_train
    order = rng.permutation(x.shape[0])
    per_epoch = x.shape[0] // BATCH

    def run(first, last):
        for k in range(first, last):
            i = (k % per_epoch) * BATCH
            idx = order[i:i + BATCH]
            step(state, ws, x[idx], y[idx])

    run(0, args.warmup)
    prof = cProfile.Profile()
    prof.enable()
    run(args.warmup, args.warmup + args.steps)
    prof.disable()
    print(f"{args.variant} step, steps {args.warmup + 1}-{args.warmup + args.steps}, τ = {state.tau:.3g}; "
          f"divide times by {args.steps} for ms per step")
    pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
