"""scripts/sweep_time.py: the full protocol's wall time from the committed run times."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("sweep_time", ROOT / "scripts" / "sweep_time.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_list_schedule_starts_each_job_on_the_first_free_worker():
    makespan = load_script().makespan
    assert makespan([3.0, 1.0, 1.0, 1.0], 2) == 3.0   # worker A: 3; worker B: 1 + 1 + 1
    assert makespan([1.0, 1.0, 1.0, 3.0], 2) == 4.0   # the long job last waits for a free worker
    assert makespan([2.0, 2.0], 1) == 4.0 and makespan([2.0, 2.0], 8) == 2.0


def test_further_seeds_take_seed_0s_run_time(tmp_path):
    from refprune.util.io import write_json
    script = load_script()
    for name, seconds in (("rsweep_exact_lam0_r00.1_e15_s0", 10.0), ("overfit_p2_a01_s0", 1.0)):
        write_json(tmp_path / f"{name}.json", {"job": {"name": name}, "seconds": seconds})
    names = ["rsweep_exact_lam0_r00.1_e15_s0", "rsweep_exact_lam0_r00.1_e15_s3", "overfit_p2_a01_s0",
             "overfit_p2_a01_s1"]
    assert script.run_times(tmp_path, names) == ([10.0, 10.0, 1.0], ["overfit_p2_a01_s1"])


def test_a_protocol_runs_further_seed_is_timed_by_its_seed_0_else_by_the_stated_run(tmp_path):
    from refprune.util.io import write_json
    script = load_script()
    for name, seconds in (("proto_ddp2_t46_published_r00.95_lam0_s0", 700.0), ("t46_published_r00.5_lam0_s0", 900.0)):
        write_json(tmp_path / f"{name}.json", {"job": {"name": name}, "seconds": seconds})
    names = ["proto_ddp2_t46_published_r00.95_lam0_s3", "proto_ddp2_t46_published_r00.5_lam0_s2"]
    assert script.run_times(tmp_path, names) == ([700.0, 900.0], [])


@pytest.mark.slow
def test_the_script_covers_every_job_of_the_full_protocol_from_the_committed_results():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "sweep_time.py"), "--workers", "1,2"],
                         capture_output=True, text=True, check=True).stdout
    assert "full protocol (the adopted" in out and "with 5 seeds each" in out and "no committed run time" not in out
    assert "left to run: " in out and len(out.strip().splitlines()) == 6


def test_the_matched_groups_jobs_are_estimated_from_the_committed_dense_and_exact_runs(tmp_path):
    from refprune.util.io import write_json
    script = load_script()
    for name, seconds in ((script.DENSE_RUN, 100.0), (script.EXACT_RUN, 400.0)):
        write_json(tmp_path / f"{name}.json", {"job": {"name": name}, "seconds": seconds})
    src = "lrp-layer-r00.80-lam10-e25"
    names = ["matched_mnist_s0_dense-e25", f"matched_fashion-mnist_s1_{src}", f"matched_mnist_s2_fixedr-e25_at_{src}",
             f"matched_mnist_s0_prepruning-e25_at_{src}", "matched_mnist_s0_finetune5-e25_at_lrp-global+layer-x",
             f"matched_mnist_s0_prepruning-layers-e25_at_{src}", f"matched_mnist_s0_prepruning-uniform-e25_at_{src}"]
    # fine-tuning: the dense run, then 6 ratios × 5 epochs at the dense run's 4 s per epoch
    assert script.run_times(tmp_path, names) == ([100.0, 400.0, 400.0, 100.0, 100.0 * (1 + 6 * 5 / 25), 100.0, 100.0],
                                                 [])


def report_of(points=(0, 1), data_load_s=0.5):
    """A hand-made calibration (a bench_train.py --json report's keys the cost model reads)."""
    def batch(b, protocol, per_process, scale):
        return {"batch": b, "protocol": protocol, "batch_size_per_process": per_process, "steps_per_epoch": 0,
                "points_epochs": list(points),
                "ms_per_step": {"dense": [2.0 * scale, 1.0 * scale], "exact": [8.0 * scale, 4.0 * scale],
                                "published": [16.0 * scale, 8.0 * scale]},
                "evaluation_s": {"dense": [1.0, 1.0], "exact": [3.0, 2.0], "published": [5.0, 4.0]}
                if protocol == "single" else {"dense": [0.5, 0.5], "exact": [1.5, 1.0], "published": [2.5, 2.0]},
                "final_s": {"dense": 0.1, "exact": 0.2, "published": 0.3}}
    return {"layers": [784, 512, 512, 10], "data_load_s": data_load_s, "points_epochs": list(points),
            "window_steps": 10, "load_average_start": [1.0, 1.0, 1.0], "load_average_end": [1.0, 1.0, 1.0],
            "batches": {"32": batch(32, "single", 32, 1.0), "64": batch(64, "ddp2", 32, 1.5)}}


def mnist_job(name="j", **config):
    return {"kind": "train", "data": "mnist", "name": name, "seed": 0, "config": {"method": "lrp", **config}}


def test_a_jobs_prediction_is_the_sum_of_its_steps_evaluations_and_overhead():
    script = load_script()
    model = script.CostModel(report_of())
    # the thesis protocol: 750 steps of 2 x 32 rows an epoch, steps at batch 64's speed, ddp2's evaluation
    cost = model.predict(mnist_job(variant="exact", epochs=3, protocol="ddp2", batch_size=32))
    assert cost["how"] == "timed" and cost["steps_per_epoch"] == 750 and cost["epochs"] == 3
    assert cost["steps_s"] == 750 * (12.0 + 6.0 + 6.0) / 1e3 and cost["evaluations_s"] == 1.5 + 1.0 + 1.0
    assert cost["overhead_s"] == 0.5 + 0.2
    assert cost["total_s"] == cost["steps_s"] + cost["evaluations_s"] + cost["overhead_s"]
    # the stated protocol: 1,500 steps of 32 rows, one process's evaluation
    stated = model.predict(mnist_job(variant="published", epochs=2))
    assert stated["steps_s"] == 1500 * (16.0 + 8.0) / 1e3 and stated["evaluations_s"] == 5.0 + 4.0
    # one process at batch 64: batch 64's steps, the one-process evaluation
    b64 = model.predict(mnist_job(variant="published", epochs=2, batch_size=64))
    assert b64["steps_s"] == 750 * (24.0 + 12.0) / 1e3 and b64["evaluations_s"] == 5.0 + 4.0


def test_kinds_close_to_a_timed_one_are_predicted_as_it_and_the_rest_not_at_all():
    script = load_script()
    model = script.CostModel(report_of())
    exact = model.predict(mnist_job(variant="exact", epochs=25))
    for config in ({"granularity": "layer"}, {"learn_r": False, "lam": 0.0}, {"density": "fft"}):
        other = model.predict(mnist_job(variant="exact", epochs=25, **config))
        assert other["how"] == "as exact" and other["total_s"] == exact["total_s"]
    assert model.predict(mnist_job(variant="published", deviations=["P1"], epochs=25))["how"] == "as published"
    dense = model.predict({"kind": "train", "data": "fashion-mnist", "name": "d", "seed": 0,
                           "config": {"method": "dense", "epochs": 25 + 3 * 5}})
    pre = model.predict({"kind": "pre_pruning", "data": "mnist", "name": "p", "seed": 0, "ratio": 0.9, "epochs": 25,
                         "batch_size": 32})
    finetune = model.predict({"kind": "finetune_pruning", "data": "fashion-mnist", "name": "f", "seed": 0,
                              "ratios": [0.5, 0.8, 0.9], "epochs": 25, "finetune_epochs": 5, "batch_size": 32})
    assert pre["how"] == finetune["how"] == "as dense" and pre["epochs"] == 25
    assert finetune["total_s"] == dense["total_s"]  # dense training, then 3 ratios x 5 epochs
    assert model.predict({"kind": "overfit", "data": "synthetic", "name": "o", "seed": 0}) is None
    assert model.predict({**mnist_job(variant="exact"), "layers": [784, 32, 10]}) is None  # not the timed network


def test_an_early_stopped_run_is_predicted_for_the_epochs_it_ran():
    model = load_script().CostModel(report_of())
    job = mnist_job(variant="published", epochs=25, protocol="ddp2", batch_size=32, early_stop_r=10)
    assert model.predict(job, epochs_run=12)["epochs"] == 12 and model.predict(job)["epochs"] == 25
    assert model.predict(mnist_job(variant="published", epochs=25), epochs_run=12)["epochs"] == 25


def test_the_thesis_protocol_is_the_adopted_protocols_table_4_6_and_r0_sweeps():
    jobs = load_script().thesis_protocol_jobs()
    assert len(jobs) == 220 and all(j["name"].startswith("proto_ddp2_") for j in jobs)
    by_epochs = {}
    for j in jobs:
        by_epochs.setdefault(j["config"]["epochs"], []).append(j)
    assert sorted((e, len(js)) for e, js in by_epochs.items()) == [(15, 180), (25, 40)]
    sweep = {(j["config"]["variant"], j["config"]["lam"], j["config"]["r0"], j["seed"]) for j in by_epochs[15]}
    assert len(sweep) == 180 and {j["config"]["protocol"] for j in jobs} == {"ddp2"}


def test_the_prediction_keeps_a_committed_time_where_it_has_no_model_and_slows_two_jobs_at_once(tmp_path):
    from refprune.util.io import write_json
    script = load_script()
    model = script.CostModel(report_of())
    write_json(tmp_path / "overfit_p2_a01_s0.json", {"job": {"name": "overfit_p2_a01_s0"}, "seconds": 3.0})
    jobs = [mnist_job("a", variant="exact", epochs=1), {"kind": "overfit", "name": "overfit_p2_a01_s0"},
            {"kind": "overfit", "name": "overfit_p2_a01_s1"}]
    times, counts = script.predicted_times(model, tmp_path, jobs)
    alone = model.predict(jobs[0])["total_s"]
    assert times == [(alone, True), (3.0, False)] and counts == {"timed": 1, "as a timed kind": 0, "committed": 1,
                                                                 "none": 1}
    assert script.wall_two(times) == max(alone * script.TWO_JOBS_SLOWDOWN, 3.0)


def test_check_prints_predicted_against_committed_seconds(tmp_path):
    from refprune.util.io import write_json
    script = load_script()
    model = script.CostModel(report_of())
    job = mnist_job("proto_ddp2_t46_exact_r00.50_lam0_s0", variant="exact", epochs=2, protocol="ddp2", batch_size=32)
    predicted = model.predict(job)["total_s"]
    write_json(tmp_path / f"{job['name']}.json", {"job": job, "seconds": predicted / 1.1,
                                                 "summary": {"epochs_run": 2}})
    lines = script.check_lines(model, tmp_path, ["proto_ddp2_t46_*"])
    assert len(lines) == 3 and lines[1].startswith(job["name"]) and lines[1].endswith(" 10.0%")
    assert "1 jobs predicted" in lines[2] and "1 within ±15%" in lines[2]


@pytest.mark.slow
def test_calibrate_quick_then_check_and_run_a_committed_tiny_job(tmp_path, capsys):
    import json

    from refprune.util.io import write_json
    script = load_script()
    results = tmp_path / "results"
    job = {"kind": "train", "data": "tiny_mnist", "name": "tiny_exact_s0", "seed": 0, "layers": [784, 32, 32, 10],
           "config": {"method": "lrp", "variant": "exact", "epochs": 2, "protocol": "ddp2", "batch_size": 32}}
    write_json(results / "tiny_exact_s0.json", {"job": job, "seconds": 1.0, "summary": {"epochs_run": 2}})
    calibration = tmp_path / "calibration.json"
    args = ["--results", str(results), "--workers", "1,2", "--quick", "--data-dir", str(tmp_path / "absent"),
            "--check", "tiny_*", "--run", "tiny_exact_s0"]
    assert script.main([*args, "--calibrate", "--calibration", str(calibration)]) == 0
    out = capsys.readouterr().out
    assert "thesis protocol ('ddp2' Table 4.6 + r0 sweeps): 220 jobs" in out and "full protocol: " in out
    assert "  predicted now" in out and "load average" in out
    run_line = out.strip().splitlines()[-1]
    assert run_line.startswith("tiny_exact_s0") and "→" in run_line
    # the saved calibration is a bench_train.py report the script reads back, with the same prediction
    report = json.loads(calibration.read_text())
    assert set(report["batches"]) == {"32", "64"}
    assert script.main([*args[:-2], "--calibration", str(calibration)]) == 0
    again = capsys.readouterr().out
    check = [line for line in again.splitlines() if line.startswith("tiny_exact_s0")]
    predicted = script.CostModel(report).predict(job)["total_s"]
    assert len(check) == 1 and f"{predicted:.1f}" in check[0]


def test_a_job_run_now_neither_resumes_nor_leaves_a_checkpoint(tmp_path, monkeypatch):
    script = load_script()
    checkpoints = tmp_path / "checkpoints"
    monkeypatch.setenv(script.JOB_CHECKPOINTS_ENV, str(checkpoints))
    job = {"kind": "train", "data": "tiny_mnist", "name": "tiny_dense_s0", "seed": 0, "layers": [784, 8, 10],
           "config": {"method": "dense", "epochs": 1}}
    assert script.run_job_now({"job": job, "seconds": 1.0}, tmp_path / "absent", tmp_path / "absent") > 0
    assert not checkpoints.exists() and script.os.environ[script.JOB_CHECKPOINTS_ENV] == str(checkpoints)
