"""A sweep runner: independent (configuration, seed) jobs, each with its own result file.

- Each job has a unique name; its result is ``RESULTS/<name>.json`` (plus an
  optional ``<name>.npz``), written atomically, so an interrupted sweep leaves
  either a complete result or none.
- A job whose result file exists is skipped: starting a sweep again resumes it.
- ``jobs=N`` runs N jobs at once in separate processes.
- ``shard=(i, N)`` runs only the jobs whose position in the (sorted) job list
  is i modulo N, so N machines, or the tasks of a cluster job array, can split
  one sweep and write into the same results directory.

A job is a plain dict with at least ``name`` and ``kind``; ``kind`` selects a
function in :data:`JOB_KINDS` that takes the job and returns
``(record, arrays)``: a JSON-serialisable dict and a dict of arrays (may be
empty).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from .io import write_json, write_npz

JOB_KINDS: dict = {}


def job_kind(name: str):
    """Register a job function under ``name`` (decorator)."""
    def register(fn):
        JOB_KINDS[name] = fn
        return fn
    return register


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/N"`` → (i, N) with 0 <= i < N; None → (0, 1)."""
    if text is None:
        return 0, 1
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"shard must look like i/N, got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"shard i/N needs 0 <= i < N, got {text!r}")
    return i, n


def result_path(results: Path, job: dict) -> Path:
    return Path(results) / f"{job['name']}.json"


def is_done(results: Path, job: dict) -> bool:
    return result_path(results, job).exists()


def run_one(job: dict, results: str) -> tuple[str, float]:
    """Run one job and write its result files (npz first, json last: json marks completion).

    A job finished meanwhile by another runner (another shard, machine or
    process sharing the results directory) is not run again: (name, -1.0).
    """
    if is_done(Path(results), job):
        return job["name"], -1.0
    start = time.perf_counter()
    record, arrays = JOB_KINDS[job["kind"]](job)
    results = Path(results)
    if arrays:
        write_npz(results / f"{job['name']}.npz", **arrays)
    seconds = time.perf_counter() - start
    write_json(result_path(results, job), {"job": job, "seconds": seconds, **record})
    return job["name"], seconds


def select(jobs, shard: tuple[int, int]) -> list[dict]:
    """The jobs of one shard, in the given order; names must be unique.

    A job's shard is its position in name order modulo N, so the split does
    not depend on the order the jobs are listed in (the order they run in).
    """
    names = [j["name"] for j in jobs]
    if len(set(names)) != len(names):
        raise ValueError("job names must be unique")
    position = {name: pos for pos, name in enumerate(sorted(names))}
    i, n = shard
    return [j for j in jobs if position[j["name"]] % n == i]


def run_sweep(jobs, results, n_jobs: int = 1, shard=(0, 1), log=print) -> dict:
    """Run the jobs of this shard that have no result yet.

    Parameters
    ----------
    jobs : list of dict
    results : path
        Directory of the result files.
    n_jobs : int
        Jobs run at once (processes); 1 runs in this process.
    shard : (i, N)
    log : callable or None
        Receives one progress line per finished job.

    Returns
    -------
    dict
        Counts: ``total`` (in this shard), ``skipped`` (already done), ``ran``.
    """
    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    mine = select(jobs, shard)
    todo = [j for j in mine if not is_done(results, j)]
    if log:
        log(f"sweep: {len(mine)} jobs in shard {shard[0]}/{shard[1]}, "
            f"{len(mine) - len(todo)} already done, {len(todo)} to run")
    done = 0
    if n_jobs <= 1:
        for job in todo:
            name, sec = run_one(job, str(results))
            done += 1
            if log:
                log(f"  [{done}/{len(todo)}] {name} ({'done elsewhere' if sec < 0 else f'{sec:.1f}s'})")
    else:
        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            futures = [pool.submit(run_one, job, str(results)) for job in todo]
            for fut in as_completed(futures):
                name, sec = fut.result()
                done += 1
                if log:
                    log(f"  [{done}/{len(todo)}] {name} ({'done elsewhere' if sec < 0 else f'{sec:.1f}s'})")
    return {"total": len(mine), "skipped": len(mine) - len(todo), "ran": done}


def load_results(results, prefix: str = "") -> list[dict]:
    """All result records whose job name starts with ``prefix``, in name order."""
    paths = sorted(Path(results).glob(f"{prefix}*.json"))
    return [json.loads(p.read_text()) for p in paths if not p.name.startswith(".")]


def load_arrays(results, name: str) -> dict:
    """The arrays of a job's .npz result."""
    with np.load(Path(results) / f"{name}.npz") as f:
        return {k: f[k] for k in f.files}

