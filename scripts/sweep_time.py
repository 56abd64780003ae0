"""Wall time of the thesis's full protocol, from the run times of the committed results.

Usage: python scripts/sweep_time.py [--results DIR] [--seeds 5] [--workers 1,2,4,...]

Reads only result files (no training). The full protocol is every figure
group's jobs: the mnist group lists the r0 sweeps (Figs. 4.17/4.18, both
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
"""

from __future__ import annotations

import argparse
import heapq
import re
from pathlib import Path

from refprune.experiments.figures import GROUPS, all_jobs, matched
from refprune.experiments.figures.protocol_settings import ADOPTED, SEEDS
from refprune.experiments.sweep import load_results

ROOT = Path(__file__).resolve().parents[1]
SEEDED = re.compile(r"^(rsweep_|t46_).*_s0$")  # jobs the full protocol runs with more seeds
SEED_OF_RUN = re.compile(r"^(proto_[a-z0-9]+_)?(rsweep_|t46_).*_s\d+$")  # a further seed is timed by its seed 0
PROTOCOL_RUN = re.compile(r"^proto_[a-z0-9]+_")  # a protocol hypothesis's run of a stated-protocol job
DENSE_RUN, EXACT_RUN = "mnist_dense_s0", "t46_exact_r00.95_lam10_s0"  # 25 epochs of MNIST each
MATCHED_RATIOS = 6  # LRP runs per data set and seed in the matched group: 3 r0 × 2 granularities


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


def full_protocol(seeds: int) -> list[str]:
    """Job names of the full protocol, in the order the sweep runs them."""
    names = []
    groups = [g for g in GROUPS if g != "matched"]
    jobs = all_jobs(groups, quick=False, data_dir="MNIST_DIR") + matched.planned_jobs(False, "MNIST_DIR")
    for job in jobs:
        names.append(job["name"])
        if SEEDED.match(job["name"]):
            names += [f"{job['name'][:-1]}{s}" for s in range(1, seeds)]
    return names


def run_times(results, names) -> tuple[list[float], list[str]]:
    """Each name's committed run time (a further seed: its seed 0's); and the names with none.

    A protocol-hypothesis run (``proto_<h>_<name>``) whose seed 0 is not run either is estimated
    by the stated protocol's run ``<name>``: the same epochs of the same data, half the steps of
    twice the batch (an overestimate: a step of twice the batch takes less than twice as long).
    """
    measured = {r["job"]["name"]: r["seconds"] for r in load_results(results) if "job" in r}
    times, missing = [], []
    for name in names:
        seed0 = re.sub(r"_s\d+$", "_s0", name)
        seconds = measured.get(name, measured.get(seed0) if SEED_OF_RUN.match(seed0) else None)
        if seconds is None and PROTOCOL_RUN.match(name):
            stated = re.sub(r"_s\d+$", "_s0", PROTOCOL_RUN.sub("", name))
            seconds = measured.get(stated)
        if seconds is None:
            seconds = estimate(measured, name)
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
    args = parser.parse_args(argv)
    print("\n".join(report(Path(args.results), args.seeds, [int(n) for n in args.workers.split(",")])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
