"""A sweep runner: independent (configuration, seed) jobs, each with its own result file.

- A job is a plain dict with at least a unique ``name`` and a ``kind``. The
  kind names a function in an explicit registry, a plain dict passed to
  :func:`run_sweep` (the thesis's experiments: :data:`refprune.experiments.jobs.JOB_KINDS`).
  The function takes the job and returns ``(record, arrays)``: a
  JSON-serialisable dict and a dict of arrays (may be empty). The client looks
  the function up and ships it with the job, so a worker finds it by importing
  its module, whatever its start method (fork, spawn, forkserver) or machine.
- A job's result is a pure function of the job dict, which its name
  determines (seed included): where it runs and how often changes nothing.
- Results come home: a job returns its result to the client (this process),
  which writes ``RESULTS/<name>.npz`` (if any arrays) and then
  ``RESULTS/<name>.json``, each atomically; the json marks completion. Workers
  need no shared file system and write nothing.
- A job whose result file exists is skipped: starting a sweep again resumes it.
- A job that raises is reported with its name and error; the others go on.
  The sweep ends with a summary: done, failed, skipped.
- Where jobs run: in this process (``n_jobs=1``), in ``n_jobs`` local
  processes, or on a Dask scheduler (``scheduler``, see :mod:`refprune.experiments.sweep_dask`).
- ``shard=(i, N)`` runs only the jobs whose position in the (sorted) job list
  is i modulo N, so N machines, or the tasks of a cluster job array, can split
  one sweep and write into the same results directory.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from refprune.util.io import (
    UnreadableFile,
    check_dtype,
    json_type,
    read_json,
    read_npz,
    write_json,
    write_npz,
)
from refprune.util.provenance import code_version

# Fields of a job that say where things lie on the machine that ran it: used to run the job, not
# stored with its result (the result identifies its data by content instead, see ``origin``).
LOCAL_FIELDS = ("data_dir",)


class SweepFailed(ValueError):
    """Some jobs of a sweep failed (the others' results are written); rerunning retries them.

    A ValueError so that the command line reports it as one line, exit status 2.
    """


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
    """Where a job's result record goes: ``results/<job name>.json``."""
    return Path(results) / f"{job['name']}.json"


def is_done(results: Path, job: dict) -> bool:
    """Whether the job's result record exists (a sweep skips the job then)."""
    return result_path(results, job).exists()


def compute(fn, job: dict) -> tuple[dict, dict, float]:
    """Run ``fn(job)`` where it is called (a worker); (record, arrays, seconds). Writes nothing."""
    start = time.perf_counter()
    record, arrays = fn(job)
    return {**record, "code": code_version()}, arrays, time.perf_counter() - start


def stored_job(job: dict) -> dict:
    """The job as its result file keeps it: without :data:`LOCAL_FIELDS`."""
    return {k: v for k, v in job.items() if k not in LOCAL_FIELDS}


def write_result(results: Path, job: dict, outcome: tuple, origin=None) -> bool:
    """Write a job's result (npz first, json last); False if it was already there.

    ``origin(job) -> dict``, if given, adds what identifies the job's inputs (e.g. its data
    files' digests and the command that reproduces it) to the record.

    A result written meanwhile by another runner (another shard or machine
    sharing the results directory) is kept as it is.
    """
    if is_done(results, job):
        return False
    record, arrays, seconds = outcome
    if arrays:
        write_npz(Path(results) / f"{job['name']}.npz", **arrays)
    extra = origin(job) if origin is not None else {}
    write_json(result_path(results, job), {"job": stored_job(job), "seconds": seconds, **record, **extra})
    return True


def run_one(job: dict, results, kinds: dict, origin=None) -> tuple[str, float]:
    """Run one job here and write its result: (name, seconds), or (name, -1.0) if already done."""
    if is_done(Path(results), job):
        return job["name"], -1.0
    outcome = compute(kinds[job["kind"]], job)
    write_result(Path(results), job, outcome, origin)
    return job["name"], outcome[2]


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


def resolve(jobs, kinds: dict) -> list[tuple[dict, object]]:
    """(job, function) pairs; a clear error, before anything runs, for an unknown kind."""
    unknown = sorted({j["kind"] for j in jobs} - set(kinds))
    if unknown:
        raise ValueError(f"unknown job kind(s) {unknown}; registered: {sorted(kinds)}")
    return [(job, kinds[job["kind"]]) for job in jobs]


def in_process(calls, results):
    """Run each job here, in order; yields (job, outcome or None, error or None)."""
    for job, fn in calls:
        if is_done(results, job):
            yield job, None, None
            continue
        try:
            outcome = compute(fn, job)
        except Exception as exc:  # reported by name; the sweep goes on
            yield job, None, exc
            continue
        yield job, outcome, None


def in_processes(calls, results, n_jobs: int):
    """Run the jobs in ``n_jobs`` local processes, at most ``n_jobs`` in flight, in order.

    The processes use the platform's start method (fork, spawn or forkserver);
    a job not yet submitted is checked for a result written meanwhile.
    """
    queue, pending = list(calls)[::-1], {}
    pool = ProcessPoolExecutor(max_workers=n_jobs)
    try:
        while queue or pending:
            while queue and len(pending) < n_jobs:
                job, fn = queue.pop()
                if is_done(results, job):
                    yield job, None, None
                    continue
                try:
                    pending[pool.submit(compute, fn, job)] = job
                except BrokenProcessPool as exc:  # a process died (e.g. killed): report, go on
                    yield job, None, exc
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                job, exc = pending.pop(fut), fut.exception()
                yield job, (None if exc else fut.result()), exc
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def describe(exc: BaseException) -> str:
    """One line for a job's error: its type and message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def run_sweep(jobs, results, kinds: dict, n_jobs: int = 1, shard=(0, 1), scheduler=None,
              log=print, origin=None) -> dict:
    """Run the jobs of this shard that have no result yet; write each result as it comes home.

    Parameters
    ----------
    jobs : list of dict
    results : path
        Directory of the result files (written by this process only).
    kinds : dict
        The job registry: kind → function(job) -> (record, arrays).
    n_jobs : int
        Jobs run at once in local processes; 1 runs them in this process.
    shard : (i, N)
    scheduler : str or None
        A Dask scheduler address, or ``"local:N"`` for a local cluster of N
        single-threaded worker processes (needs the ``cluster`` extra);
        overrides ``n_jobs``.
    log : callable or None
        Receives one progress line per finished job and the summary.
    origin : callable, optional
        ``origin(job) -> dict`` of what to record beside each result (see :func:`write_result`).

    Returns
    -------
    dict
        ``total`` (jobs in this shard), ``done`` (run now), ``skipped``
        (already done, here or elsewhere), ``failed`` and ``errors``
        (failed job name → one-line error).
    """
    if scheduler:
        from refprune.experiments.sweep_dask import on_dask, parse_scheduler
        parse_scheduler(scheduler)
    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    mine = select(jobs, shard)
    calls = resolve([j for j in mine if not is_done(results, j)], kinds)
    say = log or (lambda line: None)
    where = f"on {scheduler}" if scheduler else f"{max(n_jobs, 1)} at a time"
    say(f"sweep: {len(mine)} jobs in shard {shard[0]}/{shard[1]}, {len(mine) - len(calls)} already done, "
        f"{len(calls)} to run ({where})")
    if scheduler:
        outcomes = on_dask(calls, scheduler, compute)
    elif n_jobs > 1 and len(calls) > 1:
        outcomes = in_processes(calls, results, n_jobs)
    else:
        outcomes = in_process(calls, results)
    counts = {"total": len(mine), "done": 0, "skipped": len(mine) - len(calls), "failed": 0, "errors": {}}
    try:
        for i, (job, outcome, exc) in enumerate(outcomes, 1):
            tally(counts, results, job, outcome, exc, f"  [{i}/{len(calls)}] {job['name']}", say, origin)
    finally:
        outcomes.close()  # an interrupted client stops its workers or tasks now
    say(summary_line(counts))
    return counts


def tally(counts: dict, results: Path, job: dict, outcome, exc, head: str, say, origin=None) -> None:
    """Write one finished job's result (or note its error) and count it."""
    if exc is not None:
        counts["failed"] += 1
        counts["errors"][job["name"]] = describe(exc)
        say(f"{head} FAILED: {describe(exc)}")
    elif outcome is None or not write_result(results, job, outcome, origin):
        counts["skipped"] += 1
        say(f"{head} (done elsewhere)")
    else:
        counts["done"] += 1
        say(f"{head} ({outcome[2]:.1f}s)")


def summary_line(counts: dict) -> str:
    """``sweep: D done, F failed, S skipped (of T)`` and the failed jobs' names."""
    line = (f"sweep: {counts['done']} done, {counts['failed']} failed, {counts['skipped']} skipped "
            f"(of {counts['total']})")
    if counts["errors"]:
        line += "; failed: " + "; ".join(f"{name} ({err})" for name, err in counts["errors"].items())
    return line


RESULT = "a sweep result (<job name>.json of 'refprune figures')"


def read_result(path) -> dict:
    """One job's result record, checked: a JSON object whose ``job`` names the file's job.

    Raises :class:`refprune.util.io.UnreadableFile` naming the file otherwise.
    """
    path = Path(path)
    rec = read_json(path, dict, RESULT)
    job = rec.get("job")
    if not isinstance(job, dict) or not isinstance(job.get("name"), str):
        raise UnreadableFile(path, f"lacks its 'job' (an object naming the job): not {RESULT}")
    if job["name"] != path.stem:
        raise UnreadableFile(path, f"holds the result of job {job['name']!r}, not of {path.stem!r}")
    seconds = rec.get("seconds", 0.0)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise UnreadableFile(path, f"'seconds' is a JSON {json_type(seconds)} where a number is expected")
    return rec


def load_results(results, prefix: str = "") -> list[dict]:
    """All result records whose job name starts with ``prefix``, in name order.

    With a ``prefix`` each is checked to be that job's result (:func:`read_result`); without one,
    every JSON object of the folder is returned (other studies' records among them).
    """
    paths = [p for p in sorted(Path(results).glob(f"{prefix}*.json")) if not p.name.startswith(".")]
    return [read_result(p) if prefix else read_json(p, dict, "a JSON object") for p in paths]


def load_arrays(results, name: str) -> dict:
    """The arrays of a job's .npz result, checked to hold numbers."""
    path = Path(results) / f"{name}.npz"
    arrays = read_npz(path, "a sweep result's arrays (<job name>.npz of 'refprune figures')")
    for key, value in arrays.items():
        check_dtype(path, key, value)
    return arrays


def check_results(results, jobs) -> None:
    """Before any work: every result these jobs have in ``results`` reads and is the job's result.

    Raises :class:`refprune.util.io.UnreadableFile` naming the first file that is damaged.
    """
    for job in jobs:
        if is_done(results, job):
            read_result(result_path(results, job))
            if (Path(results) / f"{job['name']}.npz").exists():
                load_arrays(results, job["name"])
