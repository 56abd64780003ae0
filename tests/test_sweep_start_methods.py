"""`--jobs N` under every multiprocessing start method.

Job kinds are found through the explicit registry ``refprune.experiments.jobs.JOB_KINDS``,
which a worker imports by name; registering them as a side effect of importing
``experiments`` failed under spawn and forkserver (KeyError: 'overfit'), since
those workers start from a fresh interpreter.
"""

import json
import multiprocessing

import pytest

import refprune.experiments.figures.synthetic as synthetic
from refprune.experiments.figures import all_jobs, run_figures

METHODS = [m for m in ("fork", "spawn", "forkserver") if m in multiprocessing.get_all_start_methods()]


@pytest.fixture
def start_method(request):
    """Make ``request.param`` the default start method for the test, then restore the previous one."""
    before = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method(request.param, force=True)
    yield request.param
    multiprocessing.set_start_method(before, force=True)


def result_contents(results):
    """Every result file's content, the measured run time (``seconds``) left out."""
    out = {}
    for p in sorted(results.iterdir()):
        out[p.name] = {**json.loads(p.read_text()), "seconds": None} if p.suffix == ".json" else p.read_bytes()
    return out


@pytest.fixture(scope="module")
def serial_results(tmp_path_factory):
    results = tmp_path_factory.mktemp("serial") / "results"
    sweep_synthetic(results, n_jobs=1)
    return result_contents(results)


def sweep_synthetic(results, n_jobs):
    # The sweep is under test, not the plots: plotting is skipped to keep the test quick.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(synthetic, "plot", lambda results, out: [])
        run_figures(["synthetic"], results, results.parent / "figures", quick=True, recompute=True,
                    n_jobs=n_jobs, log=None)


@pytest.mark.slow
@pytest.mark.parametrize("start_method", METHODS, indirect=True)
def test_jobs_2_runs_the_synthetic_sweep_under_every_start_method(tmp_path, start_method, serial_results):
    results = tmp_path / "results"
    sweep_synthetic(results, n_jobs=2)
    names = sorted(f"{j['name']}.json" for j in all_jobs(["synthetic"], True, None))
    assert sorted(p.name for p in results.glob("*.json")) == names
    assert result_contents(results) == serial_results


# kinds that draw no random numbers (data_samples copies the first images of a file)
UNSEEDED_KINDS = ("data_samples",)


@pytest.mark.parametrize("quick", [True, False])
def test_every_job_carries_its_seed_and_its_name_says_it(quick):
    """A job seeds itself from what its unique name says, so a rerun anywhere gives the same result."""
    import re

    from refprune.experiments.figures import GROUPS
    from refprune.experiments.jobs import JOB_KINDS
    for job in all_jobs(list(GROUPS), quick, "MNIST_DIR"):
        assert job["kind"] in JOB_KINDS
        if job["kind"] in UNSEEDED_KINDS:
            assert "seed" not in job, job["name"]
            continue
        assert isinstance(job.get("seed"), int) and re.search(rf"_s{job['seed']}(_|$)", job["name"]), job["name"]
