"""Time dense, exact LRP and published LRP steps inside real training runs, side by side.

Usage: python scripts/bench_train.py [--data-dir DIR] [--points 0,1,5] [--window 500]
       [--epochs 25] [--json] [--quick]

Three runs (dense, LRP exact, LRP published; MNIST protocol: 784-512-512-10,
batch 32, float32, r0 = 0.5, λ = 10, Table 4.1's learning rates) advance
together, one step of each in turn, so a change in machine load lands on all
three alike. At each point — the first ``--window`` steps (point 0), and the
``--window`` steps after epoch 1, after epoch 5, ... (``--points``, in epochs)
— every step is timed; in between the runs train untimed. The script prints,
per point, each method's median ms per step, its ratio to dense, its
slowdown since its first point, and the share of subnormal float32 numbers
in ŵ, ∂L/∂w and Adam's first moments; then the projected wall time of a
``--epochs``-epoch run of each method, each epoch at the speed measured at
the last point before it, plus one evaluation per epoch (timed with
``refprune.train.loop.epoch_record``). ``--json`` prints the same as JSON
(``ratio_exact_over_dense``, ``ratio_published_over_dense``, ``slowdown_*``,
``projected_run_s_*``, ...).

Data: MNIST from ``--data-dir`` (default: ``../shared/data/mnist`` beside the
checkout), or, when it is absent, a synthetic stand-in of the same shapes
(random digits-like images with MNIST's always-zero border). ``--quick`` runs
a tiny version (small network and data, windows of a few steps) for tests.
"""

from __future__ import annotations

import os

# One BLAS thread (refprune.train.threads decides; set before numpy loads as well).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from refprune.train.loop import TrainConfig, epoch_record, init_state, make_step
from refprune.train.steps.common import new_workspace
from refprune.train.steps.exact import PHASES
from refprune.train.steps.workspace import buffers
from refprune.train.threads import training_threads

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist"
METHODS = ("dense", "exact", "published")
MNIST_SHAPES = {"train": 48_000, "val": 12_000, "side": 28, "classes": 10}
BORDER = 4  # pixels of always-zero border in the synthetic stand-in (MNIST's digits sit in the 20x20 centre)


def synthetic_mnist(n_train: int, n_val: int, rng: np.random.Generator, side: int = 28):
    """A stand-in with MNIST's shapes: class-dependent blobs in [0, 1], zero border, int labels."""
    def split(n):
        y = rng.integers(0, 10, size=n)
        centres = rng.random((10, side - 2 * BORDER, side - 2 * BORDER))
        x = np.zeros((n, side, side), np.float32)
        x[:, BORDER:side - BORDER, BORDER:side - BORDER] = np.clip(
            centres[y] + 0.3 * rng.standard_normal((n, side - 2 * BORDER, side - 2 * BORDER)), 0, 1)
        return x.reshape(n, side * side), y
    x_train, y_train = split(n_train)
    x_val, y_val = split(n_val)
    return SimpleNamespace(name="synthetic-mnist", task="classification", x_train=x_train, y_train=y_train,
                           x_val=x_val, y_val=y_val, x_test=x_val, y_test=y_val)


def load_data(data_dir: Path, quick: bool, seed: int):
    """(dataset, source): MNIST if the directory holds it, else the synthetic stand-in."""
    if data_dir.is_dir() and any(data_dir.glob("train-images-idx3-ubyte*")):
        from refprune.data.tasks import load_task
        data, source = load_task("mnist", data_dir=data_dir, seed=seed), f"MNIST from {data_dir}"
    else:
        rng = np.random.default_rng(seed)
        sizes = (640, 160) if quick else (MNIST_SHAPES["train"], MNIST_SHAPES["val"])
        data, source = synthetic_mnist(*sizes, rng), f"synthetic stand-in ({data_dir} absent)"
    if quick:
        data = SimpleNamespace(**{**vars(data), "x_train": data.x_train[:640], "y_train": data.y_train[:640],
                                  "x_val": data.x_val[:160], "y_val": data.y_val[:160]})
    return data, source


def make_runs(layers, seed: int):
    """One training state, workspace, config, step function and batch order per method (the same seed)."""
    base = dict(r0=0.5, lam=10.0, seed=seed, dtype="float32", batch_size=32)
    configs = {"dense": TrainConfig(method="dense", **base), "exact": TrainConfig(variant="exact", **base),
               "published": TrainConfig(variant="published", **base)}
    runs = {}
    for name, cfg in configs.items():
        state, rng = init_state(layers, cfg)
        runs[name] = SimpleNamespace(cfg=cfg, state=state, ws=new_workspace(state), rng=rng, step=make_step(cfg),
                                     order=None, pos=0)
    return runs


def next_batch(run, x, y, batch: int):
    """The run's next minibatch (a fresh permutation each epoch, as refprune.train.loop does)."""
    if run.order is None or run.pos >= run.order.size:
        run.order, run.pos = run.rng.permutation(x.shape[0]), 0
    idx = run.order[run.pos:run.pos + batch]
    run.pos += batch
    return x[idx], y[idx]


def subnormal_share(arr: np.ndarray) -> float:
    """Fraction of the array's elements that are subnormal (nonzero, below the smallest normal)."""
    tiny = np.finfo(arr.dtype).tiny
    return float(np.count_nonzero((arr != 0) & (np.abs(arr) < tiny))) / max(arr.size, 1)


def subnormals(name: str, run) -> dict:
    """Subnormal shares in the hot arrays of a run's state: ŵ, ∂L/∂w (or ∂L/∂ŵ for dense), Adam's m."""
    st, buf = run.state, buffers(run.ws)
    if name == "dense":
        arrays = {"masked": st.flat_w, "grad_w": buf["g"]}
    elif name == "exact":
        arrays = {"masked": buf["masked"], "grad_w": buf["dw"]}
    else:  # the published step keeps the next forward pass's masks (P4)
        fm = run.ws.next_forward_masks
        arrays = {"masked": fm.out["masked"] if fm else st.flat_w, "grad_w": buf["dw"]}
    return {**{k: subnormal_share(v) for k, v in arrays.items()}, "adam_m": subnormal_share(st.adam_wb.m[0])}


def advance(runs, data, steps: int, timed: bool, times: dict) -> None:
    """``steps`` steps of every run, in turn; with ``timed``, each step's seconds appended to ``times``."""
    x, y = data.x_train, data.y_train
    for _ in range(steps):
        for name, run in runs.items():
            xb, yb = next_batch(run, x, y, run.cfg.batch_size)
            start = time.perf_counter()
            run.step(run.state, run.ws, xb, yb)
            if timed:
                times[name].append(time.perf_counter() - start)


def exact_breakdown(run, data, steps: int) -> dict:
    """Median seconds of each phase of the exact step (refprune.train.steps.exact.PHASES) in the run's current state."""
    x, y = data.x_train, data.y_train
    times = []
    for _ in range(steps):
        xb, yb = next_batch(run, x, y, run.cfg.batch_size)
        run.ws.phase_times = []
        run.step(run.state, run.ws, xb, yb)
        times.append(run.ws.phase_times)
    run.ws.phase_times = None
    return dict(zip(PHASES, np.median(np.array(times), axis=0).tolist()))


def evaluation_seconds(runs, data) -> dict:
    """Seconds of one per-epoch evaluation of each method (refprune.train.loop.epoch_record)."""
    out = {}
    for name, run in runs.items():
        start = time.perf_counter()
        epoch_record(0, run.state, data, run.cfg, 0.0)
        out[name] = time.perf_counter() - start
    return out


def projected(ms_points, points, steps_per_epoch: int, epochs: int, eval_s: float) -> float:
    """Wall seconds of an ``epochs``-epoch run: each epoch at the last measured point's speed, plus evaluation."""
    total = 0.0
    for epoch in range(epochs):
        k = max(i for i, p in enumerate(points) if p <= epoch)
        total += steps_per_epoch * ms_points[k] / 1e3 + eval_s
    return total


def bench(data, layers, points, window: int, epochs: int, seed: int, log=None) -> dict:
    """Run the three methods through the points; return the report (see the module docstring)."""
    runs = make_runs(layers, seed)
    steps_per_epoch = -(-data.x_train.shape[0] // 32)
    done, report = 0, {"points_epochs": list(points), "window_steps": window, "ms_per_step": {m: [] for m in METHODS},
                       "subnormal_share": {m: [] for m in METHODS}, "steps_per_epoch": steps_per_epoch,
                       "exact_breakdown_ms": []}
    for p in points:
        advance(runs, data, max(p * steps_per_epoch - done, 0), False, None)
        done = max(done, p * steps_per_epoch)
        times = {m: [] for m in METHODS}
        advance(runs, data, window, True, times)
        done += window
        for m in METHODS:
            report["ms_per_step"][m].append(float(np.median(times[m])) * 1e3)
            report["subnormal_share"][m].append(subnormals(m, runs[m]))
        report["exact_breakdown_ms"].append({k: 1e3 * v for k, v in exact_breakdown(runs["exact"], data,
                                                                                     min(window, 100)).items()})
        if log:
            log(f"  point {p} epoch(s): " + "  ".join(f"{m} {report['ms_per_step'][m][-1]:.2f} ms" for m in METHODS))
    ms = report["ms_per_step"]
    report["ratio_exact_over_dense"] = [e / d for e, d in zip(ms["exact"], ms["dense"])]
    report["ratio_published_over_dense"] = [p / d for p, d in zip(ms["published"], ms["dense"])]
    for m in METHODS:
        report[f"slowdown_{m}"] = [v / ms[m][0] - 1.0 for v in ms[m]]
    report["evaluation_s"] = evaluation_seconds(runs, data)
    for m in METHODS:
        report[f"projected_run_s_{m}"] = projected(ms[m], points, steps_per_epoch, epochs,
                                                   report["evaluation_s"][m])
    report["final_r"] = {m: runs[m].state.r for m in METHODS}
    report["final_tau"] = {m: runs[m].state.tau for m in METHODS}
    return report


def print_report(report: dict) -> None:
    ms = report["ms_per_step"]
    print(f"{report['source']}; layers {report['layers']}, batch 32, float32, median of "
          f"{report['window_steps']} steps per point; load average {report['load_average']}")
    print(f"{'point':<12}" + "".join(f"{m + ' ms':>14}" for m in METHODS)
          + f"{'exact/dense':>13}{'publ/dense':>12}" + "".join(f"{'slow ' + m:>16}" for m in METHODS))
    for i, p in enumerate(report["points_epochs"]):
        label = "first steps" if p == 0 else f"after {p} ep"
        print(f"{label:<12}" + "".join(f"{ms[m][i]:14.2f}" for m in METHODS)
              + f"{report['ratio_exact_over_dense'][i]:13.2f}{report['ratio_published_over_dense'][i]:12.2f}"
              + "".join(f"{100 * report[f'slowdown_{m}'][i]:15.1f}%" for m in METHODS))
    print("subnormal shares at each point (ŵ / ∂L/∂w, dense ∂L/∂ŵ / Adam m):")
    for m in METHODS:
        print(f"  {m:<10} " + "  ".join(
            "/".join(f"{v:.1e}" for v in share.values()) for share in report["subnormal_share"][m]))
    print("exact step, median ms per phase at each point (timed in the exact run after the point's window):")
    for phase in report["exact_breakdown_ms"][0]:
        print(f"  {phase:<24}" + "".join(f"{b[phase]:9.2f}" for b in report["exact_breakdown_ms"]))
    print(f"projected {report['epochs']}-epoch wall time incl. evaluation ("
          + ", ".join(f"{m} {report['evaluation_s'][m]:.1f} s" for m in METHODS) + " per evaluation):")
    for m in METHODS:
        print(f"  {m:<10} {report[f'projected_run_s_{m}']:8.0f} s  ({report[f'projected_run_s_{m}'] / 60:.1f} min)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    p.add_argument("--points", default=None, help="epochs at which to time (default 0,1,5; --quick 0,1,2)")
    p.add_argument("--window", type=int, default=None, help="timed steps per point (default 500; --quick 5)")
    p.add_argument("--epochs", type=int, default=25, help="length of the projected run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny network and data (for tests)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    points = tuple(int(v) for v in (args.points or ("0,1,2" if args.quick else "0,1,5")).split(","))
    window = args.window or (5 if args.quick else 500)
    if points[0] != 0 or list(points) != sorted(set(points)) or window < 1 or args.epochs < 1:
        p.error("--points must start at 0 and increase; --window and --epochs must be >= 1")
    layers = (784, 32, 32, 10) if args.quick else (784, 512, 512, 10)
    threads = training_threads()
    data, source = load_data(args.data_dir, args.quick, args.seed)
    report = bench(data, layers, points, window, args.epochs, args.seed,
                   log=lambda line: print(line, file=sys.stderr, flush=True))
    report.update(source=source, layers=list(layers), epochs=args.epochs, threads=threads,
                  load_average=[round(v, 2) for v in os.getloadavg()])
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
