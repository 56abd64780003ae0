"""The sweep runner: atomic per-job results, resume after interruption, shards, failures."""

import json

import pytest
from sweep_kinds import KINDS, die, interrupt_after, make_jobs, starts

from refprune.experiments.sweep import SweepFailed, load_results, parse_shard, run_one, run_sweep, select


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_interrupted_sweep_resumes_without_redoing_finished_jobs(tmp_path, n_jobs):
    log = tmp_path / "starts.txt"
    results = tmp_path / "results"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(make_jobs(6, log), results, KINDS, n_jobs=n_jobs, log=interrupt_after(3))
    written = sorted(p.stem for p in results.glob("*.json"))
    assert len(written) == 3
    assert not list(results.glob(".*"))  # no half-written file left behind
    before = {p.name: p.stat().st_mtime_ns for p in results.iterdir()}
    log.unlink()
    counts = run_sweep(make_jobs(6, log), results, KINDS, n_jobs=n_jobs, log=None)
    assert (counts["done"], counts["skipped"], counts["failed"]) == (3, 3, 0)
    assert sorted(name for name, _ in starts(log)) == sorted(set(f"job{i:02d}" for i in range(6)) - set(written))
    assert all(results.joinpath(n).stat().st_mtime_ns == t for n, t in before.items())
    assert [r["value"] for r in load_results(results, "job")] == [i * i for i in range(6)]


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_a_failing_job_is_reported_by_name_and_the_others_finish(tmp_path, n_jobs):
    lines = []
    jobs = make_jobs(5, overrides={2: {"fail": True}})
    counts = run_sweep(jobs, tmp_path, KINDS, n_jobs=n_jobs, log=lines.append)
    assert (counts["total"], counts["done"], counts["failed"], counts["skipped"]) == (5, 4, 1, 0)
    assert counts["errors"] == {"job02": "ValueError: job job02 was told to fail"}
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == ["job00", "job01", "job03", "job04"]
    assert lines[-1].startswith("sweep: 4 done, 1 failed, 0 skipped (of 5); failed: job02 (ValueError")
    counts = run_sweep(make_jobs(5), tmp_path, KINDS, n_jobs=n_jobs, log=None)  # rerun: retries only job02
    assert (counts["done"], counts["skipped"], counts["failed"]) == (1, 4, 0)


def test_run_figures_names_the_failed_jobs(tmp_path, monkeypatch):
    import refprune.experiments.jobs as experiments
    from refprune.experiments.figures import run_figures

    def fake(job):  # quick stand-in for every synthetic kind; one job fails
        if job["name"] == "preprune_p2_a01_s0_p0.50":
            raise RuntimeError("no such thing")
        return {}, {}
    for kind in ("overfit", "post_pruning", "pre_pruning"):
        monkeypatch.setitem(experiments.JOB_KINDS, kind, fake)
    with pytest.raises(SweepFailed, match=r"1 failed.*; failed: preprune_p2_a01_s0_p0\.50 \(RuntimeError: no such"):
        run_figures(["synthetic"], tmp_path / "r", tmp_path / "f", quick=True, recompute=True, log=None)
    from refprune.experiments.figures import synthetic
    assert len(load_results(tmp_path / "r")) == len(synthetic.jobs(True)) - 1  # every other job's result is written
    assert not (tmp_path / "f").exists()  # nothing is plotted from an incomplete sweep


def test_an_unknown_kind_is_a_clear_error_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match=r"unknown job kind\(s\) \['nope'\]; registered: \['blocked', 'square'\]"):
        run_sweep(make_jobs(2) + [{"name": "x", "kind": "nope"}], tmp_path, KINDS, log=None)
    assert not list(tmp_path.iterdir())


def test_shards_partition_the_jobs():
    jobs = make_jobs(7)
    shards = [select(jobs, (i, 3)) for i in range(3)]
    names = [j["name"] for s in shards for j in s]
    assert sorted(names) == [j["name"] for j in jobs] and len(set(names)) == 7


def test_jobs_run_in_the_given_order_and_shards_do_not_depend_on_it():
    jobs = make_jobs(7)
    shuffled = [jobs[i] for i in (4, 0, 6, 2, 5, 1, 3)]
    assert select(shuffled, (0, 1)) == shuffled
    for i in range(3):
        assert sorted(j["name"] for j in select(shuffled, (i, 3))) == [j["name"] for j in select(jobs, (i, 3))]


def test_parallel_jobs_write_the_same_result_files(tmp_path):
    run_sweep(make_jobs(4), tmp_path / "a", KINDS, n_jobs=1, log=None)
    run_sweep(make_jobs(4), tmp_path / "b", KINDS, n_jobs=2, log=None)
    for a in sorted((tmp_path / "a").iterdir()):
        b = tmp_path / "b" / a.name
        if a.suffix == ".npz":
            assert a.read_bytes() == b.read_bytes()
        else:
            assert {**json.loads(a.read_text()), "seconds": 0} == {**json.loads(b.read_text()), "seconds": 0}


@pytest.mark.parametrize("text", ["1", "3/3", "-1/2", "a/b"])
def test_bad_shard(text):
    with pytest.raises(ValueError, match="shard"):
        parse_shard(text)


def test_duplicate_job_names_are_rejected():
    with pytest.raises(ValueError, match="unique"):
        select(make_jobs(2) + make_jobs(1), (0, 1))


def test_a_job_finished_by_another_runner_meanwhile_is_not_rerun(tmp_path):
    log = tmp_path / "starts.txt"
    job = make_jobs(1, log)[0]
    run_one(job, tmp_path, KINDS)
    assert run_one(job, tmp_path, KINDS) == ("job00", -1.0)
    assert [name for name, _ in starts(log)] == ["job00"]


def test_a_result_another_runner_wrote_while_the_job_ran_is_kept(tmp_path):
    from refprune.experiments.sweep import write_result
    job = make_jobs(1)[0]
    write_result(tmp_path, job, ({"value": "theirs"}, {}, 1.0))
    assert not write_result(tmp_path, job, ({"value": "mine"}, {}, 1.0))
    assert load_results(tmp_path)[0]["value"] == "theirs"


def test_a_scheduler_without_dask_installed_is_a_clear_error(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the cluster extra were not installed
    with pytest.raises(ValueError, match=r"optional 'cluster' extra: pip install -e \"\.\[cluster\]\""):
        run_sweep(make_jobs(2), tmp_path, KINDS, scheduler="local:2", log=None)
    assert not list(tmp_path.glob("*.json"))


@pytest.mark.parametrize("text", ["local:0", "local:two", "local:", " "])
def test_bad_scheduler(text):
    from refprune.experiments.sweep_dask import parse_scheduler
    with pytest.raises(ValueError, match="--scheduler"):
        parse_scheduler(text)


def test_bad_scheduler_on_the_command_line_is_one_line_and_status_2(tmp_path, capsys):
    from refprune.cli.main import main
    status = main(["figures", "--quick", "--only", "synthetic", "--scheduler", "local:0",
                   "--results", str(tmp_path / "r"), "--out", str(tmp_path / "f")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "local:N needs N >= 1" in err


def test_a_local_process_that_dies_fails_its_jobs_by_name_and_the_sweep_ends(tmp_path):
    jobs = make_jobs(4, overrides={1: {"kind": "die"}})
    counts = run_sweep(jobs, tmp_path, {**KINDS, "die": die}, n_jobs=2, log=None)
    assert counts["failed"] >= 1 and "job01" in counts["errors"]
    assert counts["done"] + counts["failed"] == 4
    assert all("BrokenProcessPool" in err for err in counts["errors"].values())


def test_train_jobs_checkpoint_and_resume_bitwise_when_asked(tmp_path, monkeypatch):
    """REFPRUNE_JOB_CHECKPOINTS: a job stopped after 2 of 4 epochs resumes to the uninterrupted result."""
    from refprune.data.tasks import load_task
    from refprune.experiments.jobs import (
        JOB_CHECKPOINTS_ENV,
        job_checkpoint,
        job_config,
        job_layers,
        run_train_job,
    )
    from refprune.train.loop import train

    job = {"name": "ck_demo", "kind": "train", "data": "synthetic", "layers": [1, 8, 8, 1], "seed": 0,
           "config": {"epochs": 4, "batch_size": 64, "lam": 1.0}}
    whole, _ = run_train_job(job)                         # unset: nothing written
    assert not list(tmp_path.iterdir())
    monkeypatch.setenv(JOB_CHECKPOINTS_ENV, str(tmp_path / "ck"))
    ck = job_checkpoint(job)
    assert ck == tmp_path / "ck" / "ck_demo.npz"
    ck.parent.mkdir()
    first_half = {**job, "config": {**job["config"], "epochs": 2}}
    half = train(load_task("synthetic"), job_layers(job), job_config(first_half), log=None, checkpoint=ck)  # "stopped"
    resumed, _ = run_train_job(job)
    assert resumed["epochs"][0]["seconds"] == half["history"].epochs[0]["seconds"]  # restored, not rerun
    assert resumed["summary"]["r"] == whole["summary"]["r"]
    assert resumed["summary"]["test_r2"] == whole["summary"]["test_r2"]
    assert resumed["epochs"][-1]["val_loss_soft"] == whole["epochs"][-1]["val_loss_soft"]
    assert not ck.exists()                                 # removed once the result is computed
