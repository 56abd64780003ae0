"""The sweep runner: atomic per-job results, resume after interruption, shards."""

import json

import pytest

from refprune.sweep import job_kind, load_results, parse_shard, run_sweep, select

CALLS = []


@job_kind("test_square")
def square_job(job):
    CALLS.append(job["name"])
    if job.get("explode"):
        raise KeyboardInterrupt  # an interruption in the middle of the sweep
    return {"value": job["x"] ** 2}, {}


def make_jobs(n, explode_at=None):
    return [{"name": f"job{i:02d}", "kind": "test_square", "x": i, "explode": i == explode_at} for i in range(n)]


def test_interrupted_sweep_resumes_without_redoing_finished_jobs(tmp_path):
    CALLS.clear()
    with pytest.raises(KeyboardInterrupt):
        run_sweep(make_jobs(6, explode_at=3), tmp_path, log=None)
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["job00.json", "job01.json", "job02.json"]
    assert not list(tmp_path.glob(".*"))  # no half-written file left behind
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.json")}
    CALLS.clear()
    counts = run_sweep(make_jobs(6), tmp_path, log=None)
    assert counts == {"total": 6, "skipped": 3, "ran": 3}
    assert CALLS == ["job03", "job04", "job05"]
    assert all(tmp_path.joinpath(n).stat().st_mtime_ns == t for n, t in before.items())
    assert [r["value"] for r in load_results(tmp_path, "job")] == [i * i for i in range(6)]


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


def test_parallel_jobs_write_the_same_results(tmp_path):
    run_sweep(make_jobs(4), tmp_path / "a", n_jobs=1, log=None)
    run_sweep(make_jobs(4), tmp_path / "b", n_jobs=2, log=None)
    values = lambda d: [json.loads(p.read_text())["value"] for p in sorted(d.glob("*.json"))]
    assert values(tmp_path / "a") == values(tmp_path / "b")


@pytest.mark.parametrize("text", ["1", "3/3", "-1/2", "a/b"])
def test_bad_shard(text):
    with pytest.raises(ValueError, match="shard"):
        parse_shard(text)


def test_duplicate_job_names_are_rejected():
    with pytest.raises(ValueError, match="unique"):
        select(make_jobs(2) + make_jobs(1), (0, 1))


def test_a_job_finished_by_another_runner_meanwhile_is_not_rerun(tmp_path):
    from refprune.sweep import run_one
    CALLS.clear()
    job = make_jobs(1)[0]
    run_one(job, str(tmp_path))
    assert run_one(job, str(tmp_path)) == ("job00", -1.0)
    assert CALLS == ["job00"]
