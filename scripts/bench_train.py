"""Time dense, exact LRP and published LRP steps inside real training runs, side by side, at each batch size.

Usage: python scripts/bench_train.py [--data-dir DIR] [--batches 32,64] [--points 0,1,5]
       [--window 500] [--turn 20] [--epochs 25,15] [--json] [--quick]

For each batch size of ``--batches`` three runs (dense, LRP exact, LRP published; MNIST
protocol: 784-512-512-10, float32, r0 = 0.5, λ = 10, Table 4.1's learning rates) advance
together, ``--turn`` steps of each in turn (a run's steps follow one another as in a real
run), so a change in machine load lands on all three alike.
Batch 64 is the adopted thesis protocol (two data-parallel processes of batch 32: an
ordinary step on the concatenated 64 rows, 750 steps per epoch, validation on rank 0's
half, :func:`refprune.train.protocol.eval_shard`); any other batch size is one process
(batch 32: the stated protocol, 1,500 steps per epoch). The runs draw their batches as
:func:`refprune.train.protocol.epoch_batches` does for training.

At each point — the first ``--window`` steps (point 0), and the ``--window`` steps after
epoch 1, after epoch 5, ... (``--points``, in epochs of that batch size) — every step is
timed, and then each run's per-epoch evaluation
(:func:`refprune.train.loop.epoch_record`, under the run's protocol); in between the runs
train untimed. Per batch size the script prints, per point, each method's median ms per
step, its ratio to dense, its slowdown since its first point, the seconds of one
evaluation, the share of subnormal float32 numbers in ŵ, ∂L/∂w and Adam's first moments,
and the exact step's median ms per phase; then the projected wall time of a run of each
``--epochs`` length (25: Table 4.6's runs, 15: the r0 sweeps'): each epoch's steps at the
median measured at the last point before it, one evaluation per epoch likewise, plus the
per-run overhead (loading the data and the final test evaluation,
:func:`refprune.train.loop.final_summary`). The load average is printed at the start and
the end. ``--json`` prints all of it: the run-wide keys, and under ``batches`` one report
per batch size (``ms_per_step``, ``evaluation_s``, ``ratio_exact_over_dense``,
``ratio_published_over_dense``, ``slowdown_*``, ``projected_run_s_*``, ...);
``scripts/sweep_time.py --calibration`` reads it.

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
import math
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from refprune.experiments.figures.protocol_settings import ADOPTED, HYPOTHESES
from refprune.train.loop import (
    TrainConfig,
    epoch_record,
    final_summary,
    init_state,
    make_step,
    prune_for_real,
)
from refprune.train.protocol import epoch_batches, world_size
from refprune.train.steps.common import new_workspace
from refprune.train.steps.exact import PHASES
from refprune.train.steps.workspace import buffers
from refprune.train.threads import training_threads

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist"
METHODS = ("dense", "exact", "published")
MNIST_SHAPES = {"train": 48_000, "val": 12_000, "side": 28, "classes": 10}
BORDER = 4  # pixels of always-zero border in the synthetic stand-in (MNIST's digits sit in the 20x20 centre)
ADOPTED_FIELDS = HYPOTHESES[ADOPTED]  # the thesis protocol's TrainConfig fields: two processes of batch 32
ADOPTED_BATCH = ADOPTED_FIELDS["batch_size"] * world_size(ADOPTED_FIELDS["protocol"])  # rows per step: 64
# Steps each run takes in its turn. A run's steps follow one another as in a real run (its arrays
# and the worker thread as its own last step left them; one step of each in turn timed every
# method 5–20% slower, and overestimated the real jobs of scripts/sweep_time.py --run), and a
# change in the machine's load within a window still lands on all three alike.
TURN_STEPS = 20
PROTOCOL_EPOCHS = (25, 15)  # the thesis protocol's runs: Table 4.6 (25 epochs), the r0 sweeps (15)


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
    """(dataset, source, seconds to load it): MNIST if the directory holds it, else the synthetic stand-in."""
    start = time.perf_counter()
    if data_dir.is_dir() and any(data_dir.glob("train-images-idx3-ubyte*")):
        from refprune.data.tasks import load_task
        data, source = load_task("mnist", data_dir=data_dir, seed=seed), f"MNIST from {data_dir}"
    else:
        rng = np.random.default_rng(seed)
        sizes = (640, 160) if quick else (MNIST_SHAPES["train"], MNIST_SHAPES["val"])
        data, source = synthetic_mnist(*sizes, rng), f"synthetic stand-in ({data_dir} absent)"
    seconds = time.perf_counter() - start
    if quick:
        data = SimpleNamespace(**{**vars(data), "x_train": data.x_train[:640], "y_train": data.y_train[:640],
                                  "x_val": data.x_val[:160], "y_val": data.y_val[:160]})
    return data, source, seconds


def batch_protocol(batch: int) -> dict:
    """The TrainConfig fields of a batch size: the thesis protocol's for its batch (64), else one process."""
    return dict(ADOPTED_FIELDS) if batch == ADOPTED_BATCH else {"protocol": "single", "batch_size": batch}


def make_runs(layers, seed: int, batch: int = 32):
    """One training state, workspace, config, step function and batch order per method (the same seed)."""
    base = dict(r0=0.5, lam=10.0, seed=seed, dtype="float32", **batch_protocol(batch))
    configs = {"dense": TrainConfig(method="dense", **base), "exact": TrainConfig(variant="exact", **base),
               "published": TrainConfig(variant="published", **base)}
    runs = {}
    for name, cfg in configs.items():
        state, rng = init_state(layers, cfg)
        runs[name] = SimpleNamespace(cfg=cfg, state=state, ws=new_workspace(state), rng=rng, step=make_step(cfg),
                                     batches=[])
    return runs


def steps_per_epoch(n: int, cfg: TrainConfig) -> int:
    """Steps of an epoch of ``n`` training rows under the config's protocol (as refprune.train.loop counts)."""
    return math.ceil(math.ceil(n / world_size(cfg.protocol)) / cfg.batch_size)


def next_batch(run, x, y):
    """The run's next minibatch, drawn as training draws it (refprune.train.protocol.epoch_batches)."""
    if not run.batches:
        run.batches = epoch_batches(run.rng, x.shape[0], run.cfg.batch_size, run.cfg.protocol)[::-1]
    idx = run.batches.pop()
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


def advance(runs, data, steps: int, timed: bool, times: dict, turn: int = 1) -> None:
    """``steps`` steps of every run, ``turn`` steps of each in turn; with ``timed``, each step's seconds
    appended to ``times``. The runs are independent, so the turns change no run's numbers."""
    x, y = data.x_train, data.y_train
    done = 0
    while done < steps:
        k = min(turn, steps - done)
        for name, run in runs.items():
            for _ in range(k):
                xb, yb = next_batch(run, x, y)
                start = time.perf_counter()
                run.step(run.state, run.ws, xb, yb)
                if timed:
                    times[name].append(time.perf_counter() - start)
        done += k


def exact_breakdown(run, data, steps: int) -> dict:
    """Median seconds of each phase of the exact step (refprune.train.steps.exact.PHASES) in the run's state now."""
    x, y = data.x_train, data.y_train
    times = []
    for _ in range(steps):
        xb, yb = next_batch(run, x, y)
        run.ws.phase_times = []
        run.step(run.state, run.ws, xb, yb)
        times.append(run.ws.phase_times)
    run.ws.phase_times = None
    return dict(zip(PHASES, np.median(np.array(times), axis=0).tolist()))


def evaluation_seconds(runs, data) -> dict:
    """Seconds of one per-epoch evaluation of each run, under its protocol (refprune.train.loop.epoch_record)."""
    out = {}
    for name, run in runs.items():
        start = time.perf_counter()
        epoch_record(0, run.state, data, run.cfg, 0.0)
        out[name] = time.perf_counter() - start
    return out


def final_seconds(runs, data) -> dict:
    """Seconds of each run's end: pruning for real and the test evaluation (refprune.train.loop.final_summary)."""
    out = {}
    for name, run in runs.items():
        start = time.perf_counter()
        weights, t = prune_for_real(run.state, run.cfg)
        final_summary(data, weights, run.state, run.cfg, t, 0.0)
        out[name] = time.perf_counter() - start
    return out


def phase_value(points, values, epoch: int) -> float:
    """The value measured at the last point at or before ``epoch`` (0-based): the phase the epoch is in."""
    return values[max(i for i, p in enumerate(points) if p <= epoch)]


def run_cost(epochs: int, steps: int, step_ms, evaluation_s, overhead_s: float) -> dict:
    """Seconds of a run of ``epochs`` epochs of ``steps`` steps, by part.

    ``step_ms`` and ``evaluation_s`` are (points in epochs, values per point): each epoch's
    steps cost the ms per step, and its evaluation the seconds, measured at the last point at
    or before it; ``overhead_s`` is paid once. ``total_s`` is the sum of the three parts.
    """
    parts = {"steps_s": sum(steps * phase_value(*step_ms, e) / 1e3 for e in range(epochs)),
             "evaluations_s": sum(phase_value(*evaluation_s, e) for e in range(epochs)),
             "overhead_s": float(overhead_s)}
    return {**parts, "total_s": parts["steps_s"] + parts["evaluations_s"] + parts["overhead_s"]}


def bench_batch(data, layers, batch: int, points, window: int, epochs, seed: int, data_load_s: float,
                log=None, turn: int = TURN_STEPS) -> dict:
    """Run the three methods at one batch size through the points; return its report (module docstring)."""
    runs = make_runs(layers, seed, batch)
    cfg = runs["dense"].cfg
    per_epoch = steps_per_epoch(data.x_train.shape[0], cfg)
    report = {"batch": batch, "protocol": cfg.protocol, "batch_size_per_process": cfg.batch_size,
              "steps_per_epoch": per_epoch, "points_epochs": list(points), "window_steps": window,
              "ms_per_step": {m: [] for m in METHODS}, "evaluation_s": {m: [] for m in METHODS},
              "subnormal_share": {m: [] for m in METHODS}, "exact_breakdown_ms": []}
    done = 0
    for p in points:
        advance(runs, data, max(p * per_epoch - done, 0), False, None, turn)
        done = max(done, p * per_epoch)
        times = {m: [] for m in METHODS}
        advance(runs, data, window, True, times, turn)
        done += window
        evaluation = evaluation_seconds(runs, data)
        for m in METHODS:
            report["ms_per_step"][m].append(float(np.median(times[m])) * 1e3)
            report["evaluation_s"][m].append(evaluation[m])
            report["subnormal_share"][m].append(subnormals(m, runs[m]))
        report["exact_breakdown_ms"].append({k: 1e3 * v for k, v in exact_breakdown(runs["exact"], data,
                                                                                     min(window, 100)).items()})
        if log:
            log(f"  batch {batch}, point {p} epoch(s): "
                + "  ".join(f"{m} {report['ms_per_step'][m][-1]:.2f} ms" for m in METHODS))
    ms = report["ms_per_step"]
    report["ratio_exact_over_dense"] = [e / d for e, d in zip(ms["exact"], ms["dense"])]
    report["ratio_published_over_dense"] = [p / d for p, d in zip(ms["published"], ms["dense"])]
    for m in METHODS:
        report[f"slowdown_{m}"] = [v / ms[m][0] - 1.0 for v in ms[m]]
    report["final_s"] = final_seconds(runs, data)
    for m in METHODS:
        costs = {str(e): run_cost(e, per_epoch, (points, ms[m]), (points, report["evaluation_s"][m]),
                                  data_load_s + report["final_s"][m]) for e in epochs}
        report[f"projected_run_s_{m}"] = {e: c["total_s"] for e, c in costs.items()}
        report[f"projected_parts_s_{m}"] = costs
    report["final_r"] = {m: runs[m].state.r for m in METHODS}
    report["final_tau"] = {m: runs[m].state.tau for m in METHODS}
    return report


def load_average() -> list:
    """The 1, 5 and 15-minute load averages (os.getloadavg), rounded."""
    return [round(v, 2) for v in os.getloadavg()]


def bench(data, layers, batches, points, window: int, epochs, seed: int, data_load_s: float = 0.0,
          log=None, turn: int = TURN_STEPS) -> dict:
    """Every batch size's report (under ``batches``, keyed by the batch as a string) and the load averages."""
    report = {"layers": list(layers), "points_epochs": list(points), "window_steps": window, "turn_steps": turn,
              "epochs": list(epochs), "data_load_s": data_load_s, "load_average_start": load_average(),
              "batches": {}}
    for batch in batches:
        report["batches"][str(batch)] = bench_batch(data, layers, batch, points, window, epochs, seed,
                                                    data_load_s, log, turn)
    report["load_average_end"] = load_average()
    return report


def print_batch(b: dict) -> None:
    ms = b["ms_per_step"]
    print(f"batch {b['batch']} ({b['protocol']}: {b['batch_size_per_process']} rows per process, "
          f"{b['steps_per_epoch']} steps per epoch)")
    print(f"{'point':<12}" + "".join(f"{m + ' ms':>14}" for m in METHODS)
          + f"{'exact/dense':>13}{'publ/dense':>12}" + "".join(f"{'slow ' + m:>16}" for m in METHODS))
    for i, p in enumerate(b["points_epochs"]):
        label = "first steps" if p == 0 else f"after {p} ep"
        print(f"{label:<12}" + "".join(f"{ms[m][i]:14.2f}" for m in METHODS)
              + f"{b['ratio_exact_over_dense'][i]:13.2f}{b['ratio_published_over_dense'][i]:12.2f}"
              + "".join(f"{100 * b[f'slowdown_{m}'][i]:15.1f}%" for m in METHODS))
    print("seconds per evaluation at each point (under the protocol):")
    for m in METHODS:
        print(f"  {m:<10} " + "  ".join(f"{v:7.3f}" for v in b["evaluation_s"][m]))
    print("subnormal shares at each point (ŵ / ∂L/∂w, dense ∂L/∂ŵ / Adam m):")
    for m in METHODS:
        print(f"  {m:<10} " + "  ".join(
            "/".join(f"{v:.1e}" for v in share.values()) for share in b["subnormal_share"][m]))
    print("exact step, median ms per phase at each point (timed in the exact run after the point's window):")
    for phase in b["exact_breakdown_ms"][0]:
        print(f"  {phase:<24}" + "".join(f"{x[phase]:9.2f}" for x in b["exact_breakdown_ms"]))
    print("projected wall time of a run, s = steps + one evaluation per epoch + overhead "
          "(data loading, final test):")
    for m in METHODS:
        print(f"  {m:<10} " + "   ".join(
            f"{e} epochs: {c['total_s']:8.1f} ({c['total_s'] / 60:5.1f} min) = {c['steps_s']:.1f} + "
            f"{c['evaluations_s']:.1f} + {c['overhead_s']:.2f}" for e, c in b[f"projected_parts_s_{m}"].items()))


def print_report(report: dict) -> None:
    print(f"{report['source']}; layers {report['layers']}, float32, median of {report['window_steps']} steps per "
          f"point in turns of {report.get('turn_steps', 1)}; data loaded in {report['data_load_s']:.2f} s; load average at start "
          f"{report['load_average_start']}, at end {report['load_average_end']}")
    for b in report["batches"].values():
        print()
        print_batch(b)


def int_list(text: str) -> tuple:
    """``"0,1,5"`` → ``(0, 1, 5)``."""
    return tuple(int(v) for v in text.split(","))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    p.add_argument("--batches", default=f"32,{ADOPTED_BATCH}",
                   help=f"rows per step to time (default 32,{ADOPTED_BATCH}: the stated and the thesis protocol)")
    p.add_argument("--points", default=None, help="epochs at which to time (default 0,1,5; --quick 0,1,2)")
    p.add_argument("--window", type=int, default=None, help="timed steps per point (default 500; --quick 5)")
    p.add_argument("--turn", type=int, default=TURN_STEPS,
                   help=f"steps each run takes in its turn (default {TURN_STEPS}; 1: one step each in turn)")
    p.add_argument("--epochs", default=",".join(map(str, PROTOCOL_EPOCHS)), help="lengths of the projected runs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny network and data (for tests)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    points = int_list(args.points or ("0,1,2" if args.quick else "0,1,5"))
    window = args.window or (5 if args.quick else 500)
    batches, epochs = int_list(args.batches), int_list(args.epochs)
    if (points[0] != 0 or list(points) != sorted(set(points)) or window < 1 or min(epochs) < 1 or min(batches) < 1
            or args.turn < 1):
        p.error("--points must start at 0 and increase; --window, --epochs, --batches and --turn must be >= 1")
    layers = (784, 32, 32, 10) if args.quick else (784, 512, 512, 10)
    threads = training_threads()
    data, source, load_s = load_data(args.data_dir, args.quick, args.seed)
    report = bench(data, layers, batches, points, window, epochs, args.seed, load_s,
                   log=lambda line: print(line, file=sys.stderr, flush=True), turn=args.turn)
    report.update(source=source, threads=threads)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
