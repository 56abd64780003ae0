"""Wall time of the thesis's full protocol: from the committed run times, and predicted from the current code.

Usage: python scripts/sweep_time.py [--results DIR] [--seeds 5] [--workers 1,2,4,...]
       [--calibrate] [--calibration FILE] [--check NAME...] [--run NAME...] [--data-dir DIR] [--quick]

Without ``--calibrate`` or ``--run`` it reads only result files (no training). The
full protocol is every figure group's jobs: the mnist group lists the r0 sweeps (Figs. 4.17/4.18, both
variants, both λ) and Table 4.6 runs with five seeds under the adopted
protocol, and the stated protocol's with seed 0; ``--seeds N`` adds seeds
1..N−1 of the stated protocol's too, each given seed 0's measured run time. The
other groups are taken as committed (the synthetic task already has 5 seeds).

A job kind with no committed run yet is estimated from a committed run of the
same data size and epochs (:data:`ESTIMATES`): the matched group's dense and
pruning-at-initialisation runs (global, per layer, uniform) by the MNIST dense run, its LRP runs (global
and layer-wise) and fixed-ratio soft masks by the exact λ = 10 Table 4.6 run,
its fine-tuning job by the dense run plus each ratio's fine-tuning epochs at
the dense run's time per epoch. Fashion-MNIST has MNIST's sizes. Its stage-2
jobs are listed as if every stage-1 run were done
(:func:`refprune.experiments.figures.matched.planned_jobs`).

The wall time for N workers is the list schedule a sweep actually follows
(``--jobs N``, or a Dask cluster of N single-threaded workers): jobs start in
the sweep's order, each on the first worker that is free, and each takes the
time its committed run took on the project's 2-core machine. Its lower bound
is max(total / N, longest job).

**Calibrated prediction.** ``--calibrate`` times the current code with a short
``scripts/bench_train.py`` run in this process (its ``bench()``: points 0 and 1, windows of
200 steps, batches 32 and 64; with ``--quick`` its tiny version); ``--calibration FILE``
reads a saved ``bench_train.py --json`` report instead (with ``--calibrate``, the new one is
written there). The cost model (:class:`CostModel`, :func:`bench_train.run_cost`) predicts
a train job of MNIST-shaped data on the timed network as: over its epochs, the steps per
epoch × the ms per step of its method at its rows per step, measured at the last point
before the epoch, plus one evaluation per epoch under its protocol (validation on rank 0's
half under ddp2), plus the run's overhead (loading the data, pruning for real and the test
evaluation). Jobs close to a timed kind are predicted as that kind (:func:`timed_as`):
layer-wise, fixed-ratio and FFT-density exact LRP as exact; the published variant with
fewer deviations as the full published step; pruning at initialisation as dense training;
fine-tuning as dense training of its epochs plus each ratio's fine-tuning epochs; an early
stopped run with the epochs its committed result ran. The other jobs (the synthetic task's,
the sample images) keep their committed (or estimated) time. Two jobs at once each take
:data:`TWO_JOBS_SLOWDOWN` times as long as one alone, so the ``--jobs 2`` wall time is the
list schedule of the predicted times × that factor. The prediction is printed beside the
committed times for the thesis protocol (the adopted protocol's LRP jobs of the mnist
group: Table 4.6 and the r0 sweeps) and for the full protocol.

``--check NAME...`` (names or shell patterns of committed results) prints each job's
predicted seconds by part beside its committed ``seconds`` and the relative error.
``--run NAME...`` runs those jobs here and now, one at a time, as a sweep computes them
(:func:`refprune.experiments.sweep.compute`, whose time is a result's ``seconds``; nothing
is written, no checkpoint either; MNIST from ``--data-dir``), and prints each one's measured
seconds beside its prediction and the load average before and after.
"""

from __future__ import annotations

import argparse
import copy
import fnmatch
import heapq
import importlib.util
import json
import math
import os
import re
import sys
from pathlib import Path

from refprune.data.tasks import DEFAULT_FASHION_DIR, IDX_TASKS
from refprune.experiments.figures import GROUPS, all_jobs, matched, mnist
from refprune.experiments.figures.protocol_settings import ADOPTED, SEEDS, under
from refprune.experiments.jobs import (
    JOB_CHECKPOINTS_ENV,
    JOB_KINDS,
    MNIST_SHAPED,
    job_config,
    job_data,
    job_layers,
)
from refprune.experiments.sweep import compute, load_results
from refprune.train.protocol import world_size
from refprune.train.steps.common import DEVIATIONS
from refprune.train.steps.registry import step_kind


def load_bench():
    """scripts/bench_train.py as a module (its bench(), run_cost() and data loading)."""
    path = Path(__file__).resolve().parent / "bench_train.py"
    spec = importlib.util.spec_from_file_location("bench_train", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench_train = load_bench()
ROOT = Path(__file__).resolve().parents[1]
SEEDED = re.compile(r"^(rsweep_|t46_).*_s0$")  # jobs the full protocol runs with more seeds
SEED_OF_RUN = re.compile(r"^(proto_[a-z0-9]+_)?(rsweep_|t46_).*_s\d+$")  # a further seed is timed by its seed 0
PROTOCOL_RUN = re.compile(r"^proto_[a-z0-9]+_")  # a protocol hypothesis's run of a stated-protocol job
DENSE_RUN, EXACT_RUN = "mnist_dense_s0", "t46_exact_r00.95_lam10_s0"  # 25 epochs of MNIST each
MATCHED_RATIOS = 6  # LRP runs per data set and seed in the matched group: 3 r0 × 2 granularities
# Two jobs at once on the 2-core machine each take 1.23 times as long as one alone: docs/performance.md,
# "Two jobs at once on two cores" (scripts/bench_concurrent.py, medians of three trials).
TWO_JOBS_SLOWDOWN = 1.23
CALIBRATION_POINTS, CALIBRATION_WINDOW = (0, 1), 200  # --calibrate: the first steps and after epoch 1
QUICK_WINDOW = 5  # --calibrate --quick: steps per point of the tiny run


def finetune_factor(match) -> float:
    """Dense training plus each ratio's fine-tuning, in units of the dense run (same time per epoch)."""
    return 1 + MATCHED_RATIOS * int(match["ft"]) / int(match["e"])


# (name pattern, committed run it is estimated by — a template filled from the pattern's named
# groups —, factor on that run's seconds). A collapse-study run is timed by the published sweep run
# of the same r0 and seed: the same path (one deviation more or less), epochs and protocol.
ESTIMATES = (
    (re.compile(r"^proto_ddp2_devr_[A-Za-z0-9]+_lam0_r0(?P<r0>[0-9.]+)_e15_s(?P<s>\d+)$"),
     "proto_ddp2_rsweep_published_lam0_r0{r0}_e15_s{s}", lambda m: 1.0),
    (re.compile(r"^matched_.*_(dense|prepruning(-layers|-uniform)?)-e\d+"), DENSE_RUN, lambda m: 1.0),
    (re.compile(r"^matched_.*_(lrp-(global|layer)|fixedr)-"), EXACT_RUN, lambda m: 1.0),
    (re.compile(r"^matched_.*_finetune(?P<ft>\d+)-e(?P<e>\d+)_"), DENSE_RUN, finetune_factor),
)


def estimate(measured: dict, name: str):
    """A job's run time from the committed run its kind is estimated by (:data:`ESTIMATES`), or None."""
    for pattern, reference, factor in ESTIMATES:
        match = pattern.match(name)
        if match and reference.format(**match.groupdict()) in measured:
            return measured[reference.format(**match.groupdict())] * factor(match)
    return None


def full_protocol_jobs(seeds: int) -> list[dict]:
    """The jobs of the full protocol, in the order the sweep runs them (further seeds as copies of seed 0's)."""
    out = []
    groups = [g for g in GROUPS if g != "matched"]
    for job in all_jobs(groups, quick=False, data_dir="MNIST_DIR") + matched.planned_jobs(False, "MNIST_DIR"):
        out.append(job)
        if SEEDED.match(job["name"]):
            out += [{**job, "name": f"{job['name'][:-1]}{s}", "seed": s} for s in range(1, seeds)]
    return out


def full_protocol(seeds: int) -> list[str]:
    """Job names of the full protocol, in the order the sweep runs them."""
    return [job["name"] for job in full_protocol_jobs(seeds)]


def thesis_protocol_jobs() -> list[dict]:
    """The thesis protocol: the adopted protocol's LRP jobs of the mnist group (Table 4.6 and the r0 sweeps)."""
    return [job for job in mnist.jobs(False, "MNIST_DIR")
            if job["name"].startswith(under(ADOPTED, "")) and job.get("config", {}).get("method") == "lrp"]


def job_time(measured: dict, name: str) -> float | None:
    """A job's committed run time (``measured``: {name: seconds}); a further seed: its seed 0's; else estimated.

    A protocol-hypothesis run (``proto_<h>_<name>``) whose seed 0 is not run either is estimated
    by the stated protocol's run ``<name>``: the same epochs of the same data, half the steps of
    twice the batch (an overestimate: a step of twice the batch takes less than twice as long).
    """
    seed0 = re.sub(r"_s\d+$", "_s0", name)
    seconds = measured.get(name, measured.get(seed0) if SEED_OF_RUN.match(seed0) else None)
    if seconds is None and PROTOCOL_RUN.match(name):
        stated = re.sub(r"_s\d+$", "_s0", PROTOCOL_RUN.sub("", name))
        seconds = measured.get(stated)
    return seconds if seconds is not None else estimate(measured, name)


def run_times(results, names) -> tuple[list[float], list[str]]:
    """Each name's committed run time (:func:`job_time`); and the names with none."""
    measured = {r["job"]["name"]: r["seconds"] for r in load_results(results) if "job" in r}
    times, missing = [], []
    for name in names:
        seconds = job_time(measured, name)
        if seconds is None:
            missing.append(name)
        else:
            times.append(seconds)
    return times, missing


def makespan(times, workers: int) -> float:
    """Finish time of the list schedule: in order, each job on the first free worker."""
    free = [0.0] * workers
    for t in times:
        heapq.heappush(free, heapq.heappop(free) + t)
    return max(free)


def timed_as(job: dict):
    """(what the cost model times for ``job``, how it stands in), or None for a job it does not model.

    What is timed: the step ``method`` (dense, exact or published), ``batch_size``, ``protocol``,
    ``epochs`` and ``early_stop`` (an early-stopping run). How: ``timed`` (a step bench_train.py
    times), or ``as <method>`` (a kind close to that step, predicted as it).
    """
    if job["kind"] == "train":
        cfg = job_config(job)
        method = step_kind(cfg.method, cfg.variant)
        plain_exact = not cfg.layerwise and cfg.learn_r and cfg.density == "direct"
        same = {"dense": True, "exact": plain_exact, "published": set(cfg.deviations) == set(DEVIATIONS)}[method]
        return ({"method": method, "batch_size": cfg.batch_size, "protocol": cfg.protocol, "epochs": cfg.epochs,
                 "early_stop": cfg.method == "lrp" and cfg.early_stop_r > 0}, "timed" if same else f"as {method}")
    if job["kind"] in ("pre_pruning", "finetune_pruning") and job["data"] in MNIST_SHAPED:
        epochs = job["epochs"] + len(job.get("ratios", [])) * job.get("finetune_epochs", 0)
        return ({"method": "dense", "batch_size": job["batch_size"], "protocol": "single", "epochs": epochs,
                 "early_stop": False}, "as dense")
    return None


def train_rows(job: dict) -> int:
    """Training rows of the job's data: MNIST's 48,000 for an IDX data set (Fashion-MNIST has MNIST's sizes)."""
    return bench_train.MNIST_SHAPES["train"] if job["data"] in IDX_TASKS else job_data(job).x_train.shape[0]


class CostModel:
    """Seconds of a job alone on the machine, from a ``bench_train.py --json`` report (module docstring).

    Parameters
    ----------
    report : dict
        The calibration: ``layers``, ``data_load_s`` and one report per batch size under ``batches``.
    """

    def __init__(self, report: dict):
        self.report, self.layers = report, tuple(report["layers"])
        self.by_rows, self.by_protocol = {}, {}  # steps by rows per step; evaluations by protocol
        for b in report["batches"].values():
            self.by_rows.setdefault(b["batch_size_per_process"] * world_size(b["protocol"]), b)
            self.by_protocol.setdefault(b["protocol"], b)

    def predict(self, job: dict, epochs_run: int | None = None) -> dict | None:
        """The job's predicted seconds by part (bench_train.run_cost) and ``how``, or None if not modelled.

        ``epochs_run``: the epochs an early-stopping run's committed result ran (else its configured epochs).
        """
        found = timed_as(job)
        if found is None or tuple(job_layers(job)) != self.layers:
            return None
        spec, how = found
        steps = self.by_rows.get(spec["batch_size"] * world_size(spec["protocol"]))
        evals = self.by_protocol.get(spec["protocol"])
        if steps is None or evals is None:
            return None
        epochs = epochs_run if spec["early_stop"] and epochs_run else spec["epochs"]
        per_epoch = math.ceil(math.ceil(train_rows(job) / world_size(spec["protocol"])) / spec["batch_size"])
        m = spec["method"]
        cost = bench_train.run_cost(epochs, per_epoch, (steps["points_epochs"], steps["ms_per_step"][m]),
                                    (evals["points_epochs"], evals["evaluation_s"][m]),
                                    self.report["data_load_s"] + evals["final_s"][m])
        return {**cost, "how": how, "epochs": epochs, "steps_per_epoch": per_epoch}


def committed_records(results) -> dict:
    """{job name: result record} of the committed results."""
    return {r["job"]["name"]: r for r in load_results(results) if "job" in r}


def epochs_run(record) -> int | None:
    """The epochs a committed train run ran (an early-stopped run: fewer than configured)."""
    return record.get("summary", {}).get("epochs_run") if record else None


def predicted_times(model: CostModel, results, jobs) -> tuple[list, dict]:
    """[(seconds, alone)] per job, predicted where modelled (alone: True), else its committed time; and counts."""
    records = committed_records(results)
    measured = {name: rec["seconds"] for name, rec in records.items()}
    out, counts = [], {"timed": 0, "as a timed kind": 0, "committed": 0, "none": 0}
    for job in jobs:
        cost = model.predict(job, epochs_run(records.get(job["name"])))
        if cost is not None:
            out.append((cost["total_s"], True))
            counts["timed" if cost["how"] == "timed" else "as a timed kind"] += 1
        elif (seconds := job_time(measured, job["name"])) is not None:
            out.append((seconds, False))
            counts["committed"] += 1
        else:
            counts["none"] += 1
    return out, counts


def wall_two(times) -> float:
    """--jobs 2 wall time of [(seconds, alone)]: a time predicted for a job alone × TWO_JOBS_SLOWDOWN."""
    return makespan([t * TWO_JOBS_SLOWDOWN if alone else t for t, alone in times], 2)


def calibration_lines(report: dict) -> list[str]:
    """What the calibration measured, in short."""
    def per_point(values: dict, unit: str) -> str:
        return ", ".join(f"{m} " + "/".join(f"{v:.2f}" for v in values[m]) + f" {unit}"
                         for m in bench_train.METHODS)

    lines = [f"calibration: bench_train.py on {report.get('source', '?')}, layers {report['layers']}, points "
             f"{report['points_epochs']} epochs, median of {report['window_steps']} steps; load average "
             f"{report['load_average_start']} at start, {report['load_average_end']} at end"]
    for b in report["batches"].values():
        lines.append(f"  batch {b['batch']} ({b['protocol']}, {b['steps_per_epoch']} steps per epoch): per step "
                     f"{per_point(b['ms_per_step'], 'ms')}; per evaluation {per_point(b['evaluation_s'], 's')}")
    lines.append(f"  per job: data loading {report['data_load_s']:.2f} s + pruning and test evaluation; "
                 f"two jobs at once: each ×{TWO_JOBS_SLOWDOWN} (TWO_JOBS_SLOWDOWN)")
    return lines


def calibrated_report(model: CostModel, results, seeds: int) -> list[str]:
    """The prediction beside the committed times, for the thesis protocol and the full protocol."""
    lines = calibration_lines(model.report)
    done = set(committed_records(results))
    lines.append(f"{'':<38}{'jobs':>6}{'job-hours':>11}{'--jobs 1':>10}{'--jobs 2':>10}")
    for label, jobs in ((f"thesis protocol ('{ADOPTED}' Table 4.6 + r0 sweeps)", thesis_protocol_jobs()),
                        ("full protocol", full_protocol_jobs(seeds))):
        committed, missing = run_times(results, [j["name"] for j in jobs])
        predicted, counts = predicted_times(model, results, jobs)
        total = sum(t for t, _ in predicted)
        ran = sum(j["name"] in done for j in jobs)
        lines.append(label + f": {len(jobs)} jobs, {ran} of them committed")
        hours = sum(committed) / 3600
        lines.append(f"{'  committed (as run; else estimated)':<38}{len(committed):>6}{hours:>11.2f}"
                     f"{hours:>8.2f} h{makespan(committed, 2) / 3600:>8.2f} h")
        lines.append(f"{'  predicted now':<38}{len(predicted):>6}{total / 3600:>11.2f}"
                     f"{total / 3600:>8.2f} h{wall_two(predicted) / 3600:>8.2f} h")
        lines.append(f"    predicted: {counts['timed']} timed, {counts['as a timed kind']} as a timed kind, "
                     f"{counts['committed']} at their committed time"
                     + (f"; {counts['none']} without a time (left out)" if counts["none"] else "")
                     + (f"; committed: {len(missing)} without a time (left out)" if missing else ""))
    return lines


def matching(records: dict, patterns) -> list[str]:
    """Names of committed results matching any of the names or shell patterns, in name order."""
    return sorted(n for n in records if any(fnmatch.fnmatchcase(n, p) for p in patterns))


def check_lines(model: CostModel, results, patterns) -> list[str]:
    """Predicted against committed seconds for the committed jobs named."""
    records = committed_records(results)
    names = matching(records, patterns)
    w = max(map(len, names), default=3) + 2
    lines = [f"{'job':<{w}}{'how':>14}{'steps':>8}{'evals':>7}{'other':>6}{'predicted':>10}{'committed':>10}"
             f"{'error':>8}"]
    errors = []
    for name in names:
        rec = records[name]
        cost = model.predict(rec["job"], epochs_run(rec))
        if cost is None:
            lines.append(f"{name:<{w}}{'not modelled':>14}{'':>31}{rec['seconds']:>10.1f}")
            continue
        error = cost["total_s"] / rec["seconds"] - 1.0
        errors.append(error)
        lines.append(f"{name:<{w}}{cost['how']:>14}{cost['steps_s']:>8.1f}{cost['evaluations_s']:>7.1f}"
                     f"{cost['overhead_s']:>6.1f}{cost['total_s']:>10.1f}{rec['seconds']:>10.1f}"
                     f"{100 * error:>7.1f}%")
    if errors:
        within = sum(abs(e) <= 0.15 for e in errors)
        lines.append(f"{len(errors)} jobs predicted; relative error (predicted / committed − 1): median "
                     f"{100 * sorted(errors)[len(errors) // 2]:.1f}%, {within} within ±15%")
    return lines


def run_job_now(record: dict, data_dir, fashion_dir) -> float:
    """Seconds of a committed job run here now, as a sweep computes it (refprune.experiments.sweep.compute).

    Without checkpoints (``REFPRUNE_JOB_CHECKPOINTS`` is ignored): a sweep's checkpoint of the same
    job is neither resumed nor removed, and the job starts from its first epoch.
    """
    job = copy.deepcopy(record["job"])
    if job.get("data") in IDX_TASKS:
        job["data_dir"] = str(fashion_dir if job["data"] == "fashion-mnist" else data_dir)
    saved = os.environ.pop(JOB_CHECKPOINTS_ENV, None)
    try:
        return compute(JOB_KINDS[job["kind"]], job)[2]
    finally:
        if saved is not None:
            os.environ[JOB_CHECKPOINTS_ENV] = saved


def run_lines(model: CostModel, results, patterns, data_dir, fashion_dir, log=None) -> list[str]:
    """Run the committed jobs named, one at a time; their measured seconds beside the prediction."""
    records = committed_records(results)
    names = matching(records, patterns)
    w = max(map(len, names), default=3) + 2
    lines = [f"{'job':<{w}}{'predicted':>10}{'measured':>10}{'error':>8}{'committed':>10}  load average"]
    for name in names:
        rec = records[name]
        cost = model.predict(rec["job"], epochs_run(rec))
        before = bench_train.load_average()
        seconds = run_job_now(rec, data_dir, fashion_dir)
        load = f"{before} → {bench_train.load_average()}"
        if cost is None:
            line = f"{name:<{w}}{'—':>10}{seconds:>10.1f}{'':>8}{rec['seconds']:>10.1f}  {load}"
        else:
            error = cost["total_s"] / seconds - 1
            line = (f"{name:<{w}}{cost['total_s']:>10.1f}{seconds:>10.1f}{100 * error:>7.1f}%"
                    f"{rec['seconds']:>10.1f}  {load}")
        lines.append(line)
        if log:
            log(line)
    return lines


def calibrate(data_dir: Path, quick: bool, log=None) -> dict:
    """A short bench_train.py run in this process (:data:`CALIBRATION_POINTS`, :data:`CALIBRATION_WINDOW`)."""
    threads = bench_train.training_threads()
    data, source, load_s = bench_train.load_data(Path(data_dir), quick, 0)
    layers = (784, 32, 32, 10) if quick else (784, 512, 512, 10)
    report = bench_train.bench(data, layers, (32, bench_train.ADOPTED_BATCH), CALIBRATION_POINTS,
                               QUICK_WINDOW if quick else CALIBRATION_WINDOW, bench_train.PROTOCOL_EPOCHS, 0,
                               load_s, log)
    return {**report, "source": source, "threads": threads}


def report(results, seeds: int, workers) -> list[str]:
    committed = [r["seconds"] for r in load_results(results) if "job" in r]
    names = full_protocol(seeds)
    times, missing = run_times(results, names)
    total = sum(times)
    lines = [f"committed results: {len(committed)} jobs, {sum(committed) / 3600:.1f} job-hours",
             f"full protocol (the adopted '{ADOPTED}' protocol's r0 sweeps and Table 4.6 runs with {len(SEEDS)} "
             f"seeds each, the stated protocol's with {seeds}): {len(names)} jobs, "
             f"{total / 3600:.1f} job-hours; longest job {max(times, default=0) / 60:.1f} min",
             f"{'workers':>7} {'wall time':>10} {'lower bound':>12} {'speed-up':>9}"]
    one = makespan(times, 1)
    for n in workers:
        wall = makespan(times, n)
        bound = max(total / n, max(times, default=0.0))
        lines.append(f"{n:>7d} {wall / 3600:>8.2f} h {bound / 3600:>10.2f} h {one / wall if wall else 0:>8.1f}x")
    done = {r["job"]["name"] for r in load_results(results) if "job" in r}
    left = [n for n in names if n not in done]
    left_times, _ = run_times(results, left)
    lines.append(f"left to run: {len(left)} jobs, {sum(left_times) / 3600:.1f} job-hours "
                 f"({makespan(left_times, 2) / 3600:.1f} h with --jobs 2)")
    if missing:
        lines.append(f"no committed run time for {len(missing)} jobs (left out), e.g. {missing[0]}")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(ROOT / "results"))
    parser.add_argument("--seeds", type=int, default=1,
                        help="seeds of the stated protocol's r0-sweep and Table 4.6 runs (the adopted "
                             "protocol's runs are listed with their five seeds by the mnist group)")
    parser.add_argument("--workers", default="1,2,4,8,16,32,64")
    parser.add_argument("--calibrate", action="store_true",
                        help="time the current code with a short bench_train.py run "
                             "(written to --calibration if given)")
    parser.add_argument("--calibration", type=Path, help="a saved 'bench_train.py --json' report")
    parser.add_argument("--quick", action="store_true", help="with --calibrate: the tiny benchmark (for tests)")
    parser.add_argument("--check", nargs="+", metavar="NAME", help="committed jobs (names or shell patterns): "
                        "predicted against committed seconds")
    parser.add_argument("--run", nargs="+", metavar="NAME", help="committed jobs to run here now, one at a time, "
                        "measured against their prediction (nothing is written)")
    parser.add_argument("--data-dir", type=Path, default=bench_train.DEFAULT_DATA,
                        help="MNIST for --calibrate and --run (default: ../shared/data/mnist beside the checkout)")
    parser.add_argument("--fashion-dir", type=Path, default=Path(DEFAULT_FASHION_DIR),
                        help="Fashion-MNIST for --run")
    args = parser.parse_args(argv)
    results = Path(args.results)
    if (args.check or args.run) and not (args.calibrate or args.calibration):
        parser.error("--check and --run need --calibrate or --calibration FILE")
    print("\n".join(report(results, args.seeds, [int(n) for n in args.workers.split(",")])), flush=True)
    if not (args.calibrate or args.calibration):
        return 0
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    if args.calibrate:
        calibration = calibrate(args.data_dir, args.quick, log)
        if args.calibration:
            args.calibration.write_text(json.dumps(calibration, indent=2) + "\n", encoding="utf-8")
    else:
        calibration = json.loads(args.calibration.read_text(encoding="utf-8"))
    model = CostModel(calibration)
    print("\n".join(["", *calibrated_report(model, results, args.seeds)]), flush=True)
    if args.check:
        print("\n".join(["", *check_lines(model, results, args.check)]), flush=True)
    if args.run:
        print("\n".join(["", *run_lines(model, results, args.run, args.data_dir, args.fashion_dir, log)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
