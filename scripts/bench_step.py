"""Time one training step, dense and LRP (both variants), side by side in one run.

Usage: python scripts/bench_step.py [--layers 784,512,512,10] [--batch 32]
       [--repeats 200] [--dtypes float32,float64] [--json]

Prints the median step time of each method, their ratio to the dense step,
and a breakdown of the exact LRP step (threshold, masks, forward/backward,
extra gradients, density, Adam) timed with the step's own functions.
Random inputs on a fresh network: τ is still large there, so the exact step
takes its full (fallback) route; ``scripts/bench_train.py`` times the steps
inside real runs, where τ reaches its floor and the band-limited route runs.
Each LRP variant is timed alternately with a dense step (step by step, in the
same loop), so a change in machine load affects both sides of a ratio alike.
The breakdown calls the exact step's own phases and per-part functions
(:mod:`refprune.train.steps.exact`, :mod:`refprune.train.steps.softband`).
"""

from __future__ import annotations

import os

# One BLAS thread unless the caller says otherwise (refprune.train.threads decides;
# the variable must be set before numpy loads, so it is set here too).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import sys
import time

import numpy as np

from refprune.core.mlp import init_mlp
from refprune.density.config import DensityConfig
from refprune.train.steps.common import (
    StepConfig,
    adam_step,
    new_state,
    new_workspace,
    phase_forward_backward,
    update_ratios_temperatures,
)
from refprune.train.steps.exact import group_density, phase_masks, phase_threshold
from refprune.train.steps.registry import STEPS
from refprune.train.steps.softband import part_density_sum, part_gradients
from refprune.train.steps.workspace import buffers, on_parts
from refprune.train.threads import training_threads

# Each timed method: the registered step it runs.
METHOD_STEPS = {"dense": "dense", "lrp_exact": "exact", "lrp_published": "published"}


def make_states(layers, dtype, seed=0):
    """One fresh (training state, workspace) per method, identical initial weights."""
    def state():
        rng = np.random.default_rng(seed)
        W, b = init_mlp(layers, rng, dtype)
        tau = 1e-2 * float(np.std(np.concatenate([w.ravel() for w in W])))
        st = new_state(W, b, 0.5, tau, 1e-3, 1e-4, 1e-6)
        return st, new_workspace(st)
    return {name: state() for name in METHOD_STEPS}


def batches(layers, batch, dtype, count, seed=1):
    rng = np.random.default_rng(seed)
    xs = rng.random((count, batch, layers[0])).astype(dtype)
    ys = rng.integers(0, layers[-1], size=(count, batch))
    return xs, ys


def step_functions():
    """Each method's step as ``fn((state, ws), x, y)`` (λ = 0, the default density, all of P1-P4)."""
    cfg = StepConfig()
    return {name: (lambda sw, x, y, fn=STEPS[kind]: fn(*sw, x, y, cfg)) for name, kind in METHOD_STEPS.items()}


def time_pair(name, layers, batch, dtype, repeats, warmup=10):
    """Median seconds per step of the dense step and of ``name``, timed alternately.

    Each method is paired with dense on its own, so one method's allocations
    and cache footprint do not land on the other's timing.
    """
    states = make_states(layers, dtype)
    xs, ys = batches(layers, batch, dtype, 16)
    fns = step_functions()
    times = {"dense": [], name: []}
    for i in range(warmup + repeats):
        for key in times:
            x, y = xs[i % 16], ys[i % 16]
            start = time.perf_counter()
            fns[key](states[key], x, y)
            if i >= warmup:
                times[key].append(time.perf_counter() - start)
    return {key: float(np.median(v)) for key, v in times.items()}


def time_steps(layers, batch, dtype, repeats):
    """Median step times: dense (from the exact pairing) and each LRP variant."""
    exact = time_pair("lrp_exact", layers, batch, dtype, repeats)
    published = time_pair("lrp_published", layers, batch, dtype, max(repeats // 4, 20))
    return {"dense": exact["dense"], "lrp_exact": exact["lrp_exact"],
            "dense_in_published_pair": published["dense"], "lrp_published": published["lrp_published"]}


def breakdown_step(state, ws, x, y, density: DensityConfig = DensityConfig()) -> list:
    """One exact LRP step (one group) from the step's own phases, each timed; returns [seconds per part].

    The step fuses extra gradients, density sum and Adam into one pass per
    part of the weights; here the same per-part functions run one after the
    other so each can be timed (their sum is a little above the fused phase).
    """
    buf, w = buffers(ws), state.flat_w
    t0 = time.perf_counter()
    (p,) = phase_threshold(state, ws, density)
    t1 = time.perf_counter()
    bands = phase_masks(state, ws, [p], density)
    t2 = time.perf_counter()
    _, g, db = phase_forward_backward(state, ws, buf["masked"], x, y, "ce")
    t3 = time.perf_counter()
    parts = on_parts(ws, lambda k, _, sl: part_gradients(sl, bands[k], g, w, p.thr.t, p.tau, buf))
    t4 = time.perf_counter()
    f = on_parts(ws, lambda k, _, sl: part_density_sum(bands[k], p.thr.t, p.h, density.reflect, buf["kde"][sl]))
    t5 = time.perf_counter()
    adam_step(state, ws, buf["dw"], db)
    t6 = time.perf_counter()
    dt_dr = 1.0 / group_density(buf["a"][p.sl], p, sum(f), density)
    update_ratios_temperatures(state, [sum(q[1] for q in parts) * dt_dr], [sum(q[0] for q in parts)])
    state.ts[0] = p.thr.t
    return [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5]


BREAKDOWN_PARTS = ("threshold", "masks", "forward_backward", "extra_gradients", "density", "adam")


def breakdown(layers, batch, dtype, repeats):
    """Median seconds of each part of the exact LRP step (fresh random network)."""
    state, ws = make_states(layers, dtype)["lrp_exact"]
    xs, ys = batches(layers, batch, dtype, 16)
    parts = {k: [] for k in BREAKDOWN_PARTS}
    for i in range(repeats + 5):
        secs = breakdown_step(state, ws, xs[i % 16], ys[i % 16])
        if i >= 5:
            for key, sec in zip(BREAKDOWN_PARTS, secs):
                parts[key].append(sec)
    return {k: float(np.median(v)) for k, v in parts.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", default="784,512,512,10")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    layers = tuple(int(v) for v in args.layers.split(","))
    training_threads()
    report = {"layers": list(layers), "batch": args.batch, "repeats": args.repeats,
              "openblas_num_threads": os.environ["OPENBLAS_NUM_THREADS"]}
    for dtype in args.dtypes.split(","):
        med = time_steps(layers, args.batch, np.dtype(dtype), args.repeats)
        report[dtype] = {"median_seconds": med,
                         "breakdown_lrp_exact_seconds": breakdown(layers, args.batch, np.dtype(dtype), args.repeats)}
        report[f"lrp_exact_over_dense_{dtype}"] = med["lrp_exact"] / med["dense"]
        report[f"lrp_published_over_dense_{dtype}"] = med["lrp_published"] / med["dense_in_published_pair"]
    report["lrp_over_dense_float32"] = report.get("lrp_exact_over_dense_float32")
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"step time, layers {args.layers}, batch {args.batch}, median of {args.repeats} "
          f"(BLAS threads: OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']})")
    for dtype in args.dtypes.split(","):
        med = report[dtype]["median_seconds"]
        print(f"\n{dtype}")
        print(f"  {'dense':<14} {med['dense'] * 1e3:8.3f} ms")
        print(f"  {'lrp_exact':<14} {med['lrp_exact'] * 1e3:8.3f} ms   "
              f"{report[f'lrp_exact_over_dense_{dtype}']:6.2f} x dense (timed alternately with dense)")
        print(f"  {'lrp_published':<14} {med['lrp_published'] * 1e3:8.3f} ms   "
              f"{report[f'lrp_published_over_dense_{dtype}']:6.2f} x dense "
              f"(its own pairing; dense there {med['dense_in_published_pair'] * 1e3:.3f} ms)")
        print("  exact LRP step breakdown (extra gradients, density and Adam timed one after the other;\n"
              "  the step fuses them into one pass per half of the weights):")
        for part, sec in report[dtype]["breakdown_lrp_exact_seconds"].items():
            print(f"    {part:<17} {sec * 1e3:8.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
