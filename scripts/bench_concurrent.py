"""Time two training jobs running at once, with one or two elementwise threads each, side by side.

Usage: python scripts/bench_concurrent.py [--data-dir DIR] [--work DIR] [--warm 10]
       [--timed 3] [--trials 3] [--variant exact] [--json] [--quick]

A sweep with ``--jobs 2`` on a 2-core machine runs two training jobs at
once, and each starts the elementwise worker thread that
:func:`refprune.train.threads.worker_threads` gives it (2 threads on 2 cores), so
four threads share two cores. This script measures whether that costs time,
on the workload sweeps run (MNIST, 784-512-512-10, batch 32, float32, r0 =
0.5, λ = 10) in the state training reaches:

1. One run is trained ``--warm`` epochs of a ``--warm + --timed``-epoch run
   and stopped (Ctrl-C, as a user would), so its checkpoint holds a network
   that training has pruned (subnormal-prone weights and Adam moments
   included).
2. Each trial resumes copies of that run, all at once, under three settings
   in turn: one job alone with ``REFPRUNE_WORKER_THREADS`` = 2 (what
   ``refprune train`` uses), two jobs with 1 each, two jobs with 2 each. Each
   resumed run trains the epochs left (``--timed``, or one fewer if an epoch
   ended before the Ctrl-C landed). A trial's time is the slowest job's wall
   time (a sweep waits for both). The settings alternate trial by trial, so a
   change in machine load lands on all alike.

It prints each trial, the median per setting, and two ratios:
``two jobs, 1 thread / two jobs, 2 threads`` (below 1: sweeps should give
each job one elementwise thread) and ``two jobs / one job alone`` (near 1:
``--jobs 2`` doubles a sweep's throughput; near 2: it gains nothing). Results
do not depend on the setting (see :mod:`refprune.train.threads`); the script checks
that every run reaches the same final sparsity.

``--quick`` runs a tiny version (synthetic task, small network) for tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from refprune.train.checkpoint import saved_epoch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist"
# (name, jobs at once, REFPRUNE_WORKER_THREADS per job)
SETTINGS = (("one job, 2 threads", 1, 2), ("two jobs, 1 thread each", 2, 1),
            ("two jobs, 2 threads each", 2, 2))
POLL_S = 0.2  # how often the warm-up run's checkpoint is looked at


def train_args(data_dir: Path, variant: str, epochs: int, quick: bool) -> list[str]:
    """The ``refprune train`` arguments of the benchmarked run (without --out)."""
    if quick:
        task = ["--data", "synthetic", "--layers", "1,16,16,1"]
    else:
        task = ["--data", "mnist", "--data-dir", str(data_dir)]
    return [sys.executable, "-m", "refprune", "train", *task, "--variant", variant, "--lam", "10",
            "--r0", "0.5", "--epochs", str(epochs), "--quiet"]


def checkpoint_epoch(run: Path) -> int:
    """Completed epochs saved in ``run``'s checkpoint (0 if none yet)."""
    return saved_epoch(run / "checkpoint.npz")


def warm_up(args_: list[str], run: Path, warm: int) -> int:
    """Train until ``warm`` epochs are saved, then stop the run with Ctrl-C (SIGINT).

    Returns the epochs the stopped run saved: ``warm``, or more if an epoch
    ended before the signal arrived.
    """
    if run.exists():
        shutil.rmtree(run)
    # A shell's background job inherits SIGINT ignored, and Python then installs no
    # KeyboardInterrupt handler: give the run the default disposition back.
    proc = subprocess.Popen([*args_, "--out", str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    while checkpoint_epoch(run) < warm:
        if proc.poll() is not None:
            raise RuntimeError(f"the warm-up run ended before {warm} epochs: {proc.stderr.read()}")
        time.sleep(POLL_S)
    proc.send_signal(signal.SIGINT)
    proc.wait()
    return checkpoint_epoch(run)


def one_trial(args_: list[str], base: Path, work: Path, threads: int, n_jobs: int = 2) -> tuple[float, list[float]]:
    """Resume ``n_jobs`` copies of ``base`` at once; returns (slowest wall time, the finals' sparsity)."""
    env = dict(os.environ, REFPRUNE_WORKER_THREADS=str(threads))
    runs = [work / f"job{i}" for i in range(n_jobs)]
    for run in runs:
        if run.exists():
            shutil.rmtree(run)
        shutil.copytree(base, run)
    start = time.perf_counter()
    procs = [subprocess.Popen([*args_, "--out", str(run), "--resume"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for run in runs]
    walls = []
    for proc in procs:
        _, err = proc.communicate()
        walls.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise RuntimeError(f"a resumed run failed: {err}")
    sparsity = [json.loads((run / "summary.json").read_text())["sparsity"] for run in runs]
    return max(walls), sparsity


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    p.add_argument("--work", type=Path, default=None, help="scratch directory (default: a new temporary one)")
    p.add_argument("--warm", type=int, default=None, help="epochs trained before timing (default 10; --quick 1)")
    p.add_argument("--timed", type=int, default=None, help="epochs timed per job (default 3; --quick 200)")
    p.add_argument("--trials", type=int, default=3, help="trials per setting (the median is reported)")
    p.add_argument("--variant", choices=("exact", "published"), default="exact")
    p.add_argument("--quick", action="store_true", help="tiny synthetic run (for tests)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    warm = a.warm if a.warm is not None else (1 if a.quick else 10)
    timed = a.timed if a.timed is not None else (200 if a.quick else 3)
    if warm < 1 or timed < 1 or a.trials < 1:
        p.error("--warm, --timed and --trials must be at least 1")
    if not a.quick and not a.data_dir.is_dir():
        p.error(f"--data-dir {a.data_dir} is not a directory (MNIST's IDX files are needed)")
    work = a.work if a.work is not None else Path(tempfile.mkdtemp(prefix="bench_concurrent_"))
    work.mkdir(parents=True, exist_ok=True)
    args_ = train_args(a.data_dir, a.variant, warm + timed, a.quick)
    say = (lambda *x: None) if a.json else print
    say(f"warm-up: {warm} of {warm + timed} epochs ({a.variant}) in {work / 'base'}")
    done = warm_up(args_, work / "base", warm)
    timed = warm + timed - done  # an epoch may end before the Ctrl-C lands
    if timed < 1:
        raise RuntimeError(f"the warm-up run saved all {done} epochs; raise --timed")
    times = {name: [] for name, _, _ in SETTINGS}
    finals = set()
    for trial in range(a.trials):
        for name, n_jobs, threads in SETTINGS:
            wall, sparsity = one_trial(args_, work / "base", work, threads, n_jobs)
            times[name].append(wall)
            finals.update(sparsity)
            say(f"trial {trial + 1}  {name:<25} ({timed} epochs per job): {wall:.1f} s")
    med = {name: statistics.median(v) for name, v in times.items()}
    out = {"trials": a.trials, "timed_epochs": timed, "warm_epochs": done, "variant": a.variant,
           "median_s": med, "times_s": times,
           "ratio_pair_1_over_pair_2": med["two jobs, 1 thread each"] / med["two jobs, 2 threads each"],
           "ratio_pair_2_over_alone": med["two jobs, 2 threads each"] / med["one job, 2 threads"],
           "same_results": len(finals) == 1}
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        for name, value in med.items():
            print(f"median  {name:<25} {value:.1f} s")
        print(f"two jobs: 1 thread each / 2 threads each = {out['ratio_pair_1_over_pair_2']:.3f} "
              "(below 1: one elementwise thread per job is faster)")
        print(f"two jobs at once / one job alone (2 threads) = {out['ratio_pair_2_over_alone']:.3f} "
              "(1: running two at once costs each nothing; 2: no gain over one at a time)")
        print("final sparsity: " + ("the same in every run" if out["same_results"] else f"DIFFERS: {sorted(finals)}"))
    return 0 if out["same_results"] else 1

if __name__ == "__main__":
    sys.exit(main())
