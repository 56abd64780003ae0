"""Regenerate the thesis's figures and tables: compute (sweep jobs) then plot.

Each figure group is a module with ``jobs(quick, data_dir) -> list[dict]``
(the sweep jobs its figures need) and ``plot(results, out) -> list[dict]``
(reads results, writes figures, returns index entries). :func:`run_figures`
runs the missing jobs when asked, plots every group and writes the index.
"""

from __future__ import annotations

from pathlib import Path

from . import deviations, masks, mnist, protocols, synthetic
from .index import write_index

GROUPS = {"masks": masks, "synthetic": synthetic, "mnist": mnist, "deviations": deviations, "protocols": protocols}


def all_jobs(names, quick: bool, data_dir) -> list:
    """Every group's jobs; a job two groups both list (the same dict under the same name) is run once."""
    jobs, seen = [], {}
    for job in (job for name in names for job in GROUPS[name].jobs(quick, data_dir)):
        if job["name"] in seen and seen[job["name"]] == job:
            continue
        seen[job["name"]] = job
        jobs.append(job)
    return jobs


def run_figures(names, results: Path, out: Path, *, quick=False, recompute=False, data_dir=None,
                n_jobs=1, shard=(0, 1), scheduler=None, log=print) -> list:
    """Run missing jobs (with ``recompute``), then plot every group and write the index.

    ``n_jobs`` local processes, or ``scheduler`` (a Dask scheduler address or
    ``local:N``), run the jobs; see :func:`refprune.sweep.run_sweep`. If any
    job fails, the others' results are written and :class:`~refprune.sweep.SweepFailed`
    names the failed ones (nothing is plotted; rerunning retries them).
    """
    from ..experiments import JOB_KINDS
    from ..sweep import SweepFailed, run_sweep, summary_line

    unknown = set(names) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown figure group(s) {sorted(unknown)}; choose from {sorted(GROUPS)}")
    if recompute:
        jobs = all_jobs(names, quick, data_dir)
        if any(j.get("data") in ("mnist", "fashion-mnist") for j in jobs) and data_dir is None:
            raise ValueError("--data-dir (the MNIST IDX files) is needed to compute the MNIST figures")
        counts = run_sweep(jobs, results, JOB_KINDS, n_jobs=n_jobs, shard=shard, scheduler=scheduler, log=log)
        if counts["failed"]:
            raise SweepFailed(f"{summary_line(counts)}; rerun to retry the failed jobs")
    entries = []
    for name in names:
        new = GROUPS[name].plot(Path(results), Path(out))
        for e in new:
            e["group"] = name
        entries += new
        if log:
            log(f"figures: {name}: {len(new)} made")
    protocols = {name: GROUPS[name].PROTOCOL for name in names}
    write_index(entries, Path(out), Path(results), quick=quick, protocols=protocols)
    return entries
