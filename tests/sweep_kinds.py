"""Job kinds for the sweep tests, in a module of their own so that worker processes
(spawn, forkserver, Dask workers) import them by name, as they do refprune.experiments.jobs.

Each kind appends ``"<name> <pid>"`` to ``job["starts"]`` (a file) when it starts,
so a test can tell which jobs ran, how often and in which process. That log is
test instrumentation; real job kinds write nothing.
"""

import os
import time
from pathlib import Path

BLOCK_TIMEOUT = 60.0  # s; a blocked job gives up after this, so a broken test cannot hang CI


def note_start(job):
    if job.get("starts"):
        with open(job["starts"], "a") as fh:
            fh.write(f"{job['name']} {os.getpid()}\n")


def starts(path) -> list[tuple[str, int]]:
    """The (name, pid) start records, in order."""
    p = Path(path)
    lines = p.read_text().split("\n") if p.exists() else []
    return [(name, int(pid)) for name, pid in (line.split() for line in lines if line)]


def square(job):
    """x² (and x as an array), after an optional sleep; raises if asked to."""
    note_start(job)
    time.sleep(job.get("sleep", 0.0))
    if job.get("fail"):
        raise ValueError(f"job {job['name']} was told to fail")
    return {"value": job["x"] ** 2}, {"x": [job["x"]]}


def blocked(job):
    """Waits until the file ``job["go"]`` exists, then returns like :func:`square`."""
    note_start(job)
    deadline = time.monotonic() + BLOCK_TIMEOUT
    while not os.path.exists(job["go"]):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{job['go']} never appeared")
        time.sleep(0.05)
    return {"value": job["x"] ** 2}, {"x": [job["x"]]}


def die(job):
    """Ends its own process at once, as a crash or the kernel's OOM killer would."""
    note_start(job)
    os._exit(1)


KINDS = {"square": square, "blocked": blocked}


def make_jobs(n, starts=None, overrides=None):
    """n square jobs job00.. with x = 0..n-1; ``overrides`` maps a job index to fields to change."""
    overrides = overrides or {}
    return [{"name": f"job{i:02d}", "kind": "square", "x": i, "starts": str(starts) if starts else None,
             **overrides.get(i, {})} for i in range(n)]


def interrupt_after(n):
    """A log callback that interrupts the client (as Ctrl-C would) once n jobs have finished."""
    finished = []

    def log(line):
        if line.startswith("  ["):
            finished.append(line)
            if len(finished) == n:
                raise KeyboardInterrupt
    return log
