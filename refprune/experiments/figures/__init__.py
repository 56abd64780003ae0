"""Regenerate the thesis's figures and tables: compute (sweep jobs) then plot.

Each figure group is a module with ``jobs(quick, data_dir) -> list[dict]``
(the sweep jobs its figures need) and ``plot(results, out) -> list[dict]``
(reads results, writes figures, returns index entries). :func:`run_figures`
runs the missing jobs when asked, plots the groups named and writes the index, keeping the
entries of the groups not named as they were last drawn (:mod:`.index`).

A group's ``jobs`` may take further keyword arguments, passed only to groups
that name them: ``results`` (the results directory, for a group whose later
jobs are built from earlier jobs' results, e.g. :mod:`.matched`: it lists a
job only once the results it needs exist) and ``fashion_dir`` (the
Fashion-MNIST IDX directory).
"""

from __future__ import annotations

import inspect
from pathlib import Path

from refprune.data.mnist import read_mnist_files
from refprune.data.tasks import IDX_TASKS
from refprune.experiments.figures import collapse, deviations, masks, matched, mnist, protocols, synthetic
from refprune.experiments.figures.index import kept_groups, write_index, write_index_state

GROUPS = {"masks": masks, "synthetic": synthetic, "mnist": mnist, "deviations": deviations, "protocols": protocols,
          "collapse": collapse, "matched": matched}
MAX_STAGES = 8  # rounds of "run the jobs, list the jobs again" one --recompute makes (matched: one per seed and data set, + 1)


def group_jobs(name: str, quick: bool, data_dir, **extra) -> list:
    """The group's jobs; of ``extra`` (e.g. ``results``, ``fashion_dir``) only what its ``jobs`` names is passed."""
    fn = GROUPS[name].jobs
    accepted = inspect.signature(fn).parameters
    return fn(quick, data_dir, **{k: v for k, v in extra.items() if k in accepted})


def all_jobs(names, quick: bool, data_dir, **extra) -> list:
    """Every group's jobs; a job two groups both list (the same dict under the same name) is run once."""
    jobs, seen = [], {}
    for job in (job for name in names for job in group_jobs(name, quick, data_dir, **extra)):
        if job["name"] in seen and seen[job["name"]] == job:
            continue
        seen[job["name"]] = job
        jobs.append(job)
    return jobs


def check_data_dirs(jobs) -> None:
    """An MNIST or Fashion-MNIST job without a data directory is an error before anything runs."""
    if any(j.get("data") in IDX_TASKS and not j.get("data_dir") for j in jobs):
        raise ValueError("--data-dir (the MNIST IDX files) is needed to compute the MNIST figures")


def check_data_files(jobs, checked: set) -> None:
    """Before the jobs run: each data directory they read passes the checks ``refprune train`` makes of
    its files, once (``checked`` holds the (data set, directory) pairs already read, and gets these)."""
    for data, data_dir in sorted({(j["data"], str(j["data_dir"])) for j in jobs if j.get("data") in IDX_TASKS}
                                 - checked):
        read_mnist_files(data_dir, data)
        checked.add((data, data_dir))


def run_stages(names, results: Path, quick, data_dir, fashion_dir, log, **sweep) -> None:
    """Run the missing jobs, list the jobs again from the results now present, run the new ones, and so on.

    A group whose later jobs depend on earlier results (a ``results``
    argument) gets them in the same command; at most :data:`MAX_STAGES` rounds.
    """
    from refprune.experiments.jobs import JOB_KINDS, job_origin
    from refprune.experiments.sweep import SweepFailed, is_done, run_sweep, summary_line

    seen, checked = set(), set()
    for _ in range(MAX_STAGES):
        extra = {"results": Path(results), "fashion_dir": fashion_dir}
        group_of = {job["name"]: name for name in reversed(names) for job in group_jobs(name, quick, data_dir, **extra)}
        jobs = all_jobs(names, quick, data_dir, **extra)
        if seen and {j["name"] for j in jobs} <= seen:
            return
        check_data_dirs(jobs)
        check_data_files([j for j in jobs if not is_done(results, j)], checked)
        seen |= {j["name"] for j in jobs}
        counts = run_sweep(jobs, results, JOB_KINDS, log=log, origin=lambda job: job_origin(job, group_of[job["name"]]),
                           **sweep)
        if counts["failed"]:
            raise SweepFailed(f"{summary_line(counts)}; rerun to retry the failed jobs")


def run_figures(names, results: Path, out: Path, *, quick=False, recompute=False, data_dir=None,
                n_jobs=1, shard=(0, 1), scheduler=None, log=print, fashion_dir=None) -> list:
    """Run missing jobs (with ``recompute``), then plot every group and write the index.

    ``n_jobs`` local processes, or ``scheduler`` (a Dask scheduler address or
    ``local:N``), run the jobs; see :func:`refprune.experiments.sweep.run_sweep`. If any
    job fails, the others' results are written and :class:`~refprune.experiments.sweep.SweepFailed`
    names the failed ones (nothing is plotted; rerunning retries them).
    ``fashion_dir``: the Fashion-MNIST IDX directory (None: the group's default).
    """
    unknown = set(names) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown figure group(s) {sorted(unknown)}; choose from {sorted(GROUPS)}")
    if Path(results).is_dir():  # a damaged result file is named before any work
        from refprune.experiments.sweep import check_results

        check_results(results, all_jobs(names, quick, data_dir, results=Path(results), fashion_dir=fashion_dir))
    if recompute:
        run_stages(names, results, quick, data_dir, fashion_dir, log, n_jobs=n_jobs, shard=shard,
                   scheduler=scheduler)
    entries, groups = [], {}
    for name in names:
        new = GROUPS[name].plot(Path(results), Path(out))
        for e in new:
            e["group"] = name
        entries += new
        groups[name] = {"protocol": GROUPS[name].PROTOCOL, "entries": new}
        if log:
            log(f"figures: {name}: {len(new)} made")
    write_full_index(groups, Path(out), Path(results), quick)
    return entries


def write_full_index(drawn: dict, out: Path, results: Path, quick: bool) -> None:
    """The index of the groups just drawn and, as last drawn, of every other group the folder's index
    state holds (so ``--only GROUP`` does not drop the rest); groups in the order of :data:`GROUPS`."""
    groups = {**kept_groups(out, drawn), **drawn}
    ordered = {name: groups[name] for name in GROUPS if name in groups}
    entries = [e for g in ordered.values() for e in g["entries"]]
    write_index(entries, out, results, quick=quick, protocols={n: g["protocol"] for n, g in ordered.items()})
    write_index_state(out, ordered)
