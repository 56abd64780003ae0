"""Sweeps on a Dask scheduler: a scheduler and two worker processes on 127.0.0.1.

Skipped without the optional ``cluster`` extra; ``.ci/run`` installs it and runs these.
"""

import json
import os
import signal
import threading
import time
from contextlib import contextmanager

import pytest

# A scheduler and worker processes start for each test: seconds each.
pytestmark = pytest.mark.slow

distributed = pytest.importorskip(
    "distributed", reason="the cluster tests need Dask, the optional extra: pip install -e \".[cluster]\"")
import dask  # noqa: E402  (installed with distributed)
from sweep_kinds import KINDS, interrupt_after, make_jobs, starts  # noqa: E402

from refprune.cli.main import main
from refprune.experiments.figures import all_jobs
from refprune.experiments.jobs import JOB_KINDS, job_origin
from refprune.experiments.sweep import run_sweep

WAIT = 120.0  # s; the longest any step of these tests may wait (a few seconds on a loaded 2-core machine)


@contextmanager
def local_cluster(scratch):
    """The cluster, with Dask's scratch space in ``scratch`` (nothing is left in the temporary directory)."""
    with dask.config.set({"temporary-directory": str(scratch)}), distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0",
            local_directory=str(scratch)) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def address(tmp_path_factory):
    """A scheduler and two single-threaded worker processes on 127.0.0.1, shared by this module's tests."""
    with local_cluster(tmp_path_factory.mktemp("dask")) as cluster:
        yield cluster.scheduler_address


def without_run_time(path):
    """A result file's bytes, the line of its measured run time (``"seconds"``) left out of a .json."""
    data = path.read_bytes()
    if path.suffix != ".json":
        return data
    return b"\n".join(line for line in data.split(b"\n") if not line.lstrip().startswith(b'"seconds":'))


def assert_same_files(a, b):
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
    for p in sorted(a.iterdir()):
        assert without_run_time(p) == without_run_time(b / p.name), p.name


def tiny_train_jobs():
    """Two LRP training runs (one per variant) that keep arrays (traces, bit-packed masks) in a .npz."""
    return [{"name": f"train_{variant}", "kind": "train", "data": "synthetic", "seed": 3, "keep_masks": True,
             "config": {"variant": variant, "epochs": 2, "lam": 10.0}} for variant in ("exact", "published")]


def test_figures_on_a_scheduler_write_the_same_result_files_as_a_local_run(tmp_path, address):
    jobs = all_jobs(["synthetic"], True, None)
    # The figures command records each job's origin (its reproducing command): so does the local run.
    run_sweep(jobs, tmp_path / "local", JOB_KINDS, log=None, origin=lambda job: job_origin(job, "synthetic"))
    assert main(["figures", "--quick", "--only", "synthetic", "--recompute", "--scheduler", address,
                 "--results", str(tmp_path / "dask"), "--out", str(tmp_path / "figures")]) == 0
    assert len(list((tmp_path / "dask").glob("*.json"))) == len(jobs)
    assert_same_files(tmp_path / "local", tmp_path / "dask")


def test_training_results_with_arrays_are_byte_identical_on_the_cluster(tmp_path, address):
    run_sweep(tiny_train_jobs(), tmp_path / "local", JOB_KINDS, log=None)
    run_sweep(tiny_train_jobs(), tmp_path / "dask", JOB_KINDS, scheduler=address, log=None)
    assert len(list((tmp_path / "dask").glob("*.npz"))) == 2
    assert_same_files(tmp_path / "local", tmp_path / "dask")


def test_a_failing_job_on_a_worker_is_named_and_the_others_finish(tmp_path, address):
    lines = []
    counts = run_sweep(make_jobs(4, overrides={1: {"fail": True}}), tmp_path, KINDS, scheduler=address,
                       log=lines.append)
    assert (counts["done"], counts["failed"], counts["skipped"]) == (3, 1, 0)
    assert counts["errors"] == {"job01": "ValueError: job job01 was told to fail"}
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == ["job00", "job02", "job03"]
    assert "1 failed" in lines[-1] and "job01 (ValueError: job job01 was told to fail)" in lines[-1]


def test_an_interrupted_client_resumes_without_redoing_finished_jobs(tmp_path, address):
    results = tmp_path / "results"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(make_jobs(6, tmp_path / "first.txt", {i: {"sleep": 0.2} for i in range(6)}), results, KINDS,
                  scheduler=address, log=interrupt_after(2))
    written = {p.stem for p in results.glob("*.json")}
    assert len(written) == 2
    counts = run_sweep(make_jobs(6, tmp_path / "second.txt"), results, KINDS, scheduler=address, log=None)
    assert (counts["done"], counts["skipped"], counts["failed"]) == (4, 2, 0)
    assert {name for name, _ in starts(tmp_path / "second.txt")} == {f"job{i:02d}" for i in range(6)} - written
    assert [json.loads((results / f"job{i:02d}.json").read_text())["value"] for i in range(6)] == [
        i * i for i in range(6)]


def wait_for(condition, what):
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {WAIT:.0f} s for {what}")
        time.sleep(0.05)


def test_a_killed_worker_costs_only_its_running_job(tmp_path):
    """job00 blocks on its worker until the test has killed that worker process; Dask reruns it elsewhere."""
    log, go = tmp_path / "starts.txt", tmp_path / "go"
    jobs = make_jobs(6, log, {0: {"kind": "blocked", "go": str(go)}, **{i: {"sleep": 0.2} for i in range(1, 6)}})
    outcome = {}
    (tmp_path / "dask").mkdir()
    with local_cluster(tmp_path / "dask") as cluster:
        sweep = threading.Thread(target=lambda: outcome.update(run_sweep(
            jobs, tmp_path / "results", KINDS, scheduler=cluster.scheduler_address, log=None)))
        sweep.start()
        wait_for(lambda: any(name == "job00" for name, _ in starts(log)), "job00 to start")
        victim = dict(starts(log))["job00"]
        os.kill(victim, signal.SIGKILL)
        time.sleep(0.5)  # let the kill land before job00 may finish anywhere
        go.touch()
        sweep.join(WAIT)
        assert not sweep.is_alive()
    assert (outcome["done"], outcome["failed"]) == (6, 0)
    runs_of_job00 = [pid for name, pid in starts(log) if name == "job00"]
    assert len(runs_of_job00) == 2 and runs_of_job00[0] == victim != runs_of_job00[1]
    values = [json.loads((tmp_path / "results" / f"job{i:02d}.json").read_text())["value"] for i in range(6)]
    assert values == [i * i for i in range(6)]
