"""scripts/bench_train.py and scripts/bench_step.py run at tiny size and report what the README quotes."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_bench_train_quick_json_has_the_reported_keys_per_batch_size(tmp_path, capsys):
    bench = load_script("bench_train")
    assert bench.main(["--quick", "--json", "--data-dir", str(tmp_path / "absent")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["source"].startswith("synthetic stand-in") and report["epochs"] == [25, 15]
    assert len(report["load_average_start"]) == 3 and len(report["load_average_end"]) == 3
    assert list(report["batches"]) == ["32", "64"]
    # 640 stand-in rows: 20 steps an epoch of batch 32, 10 of the thesis protocol's 2 x 32
    for key, protocol, per_epoch in (("32", "single", 20), ("64", "ddp2", 10)):
        b = report["batches"][key]
        points = b["points_epochs"]
        assert points == [0, 1, 2] and b["protocol"] == protocol and b["steps_per_epoch"] == per_epoch
        for k in ("ratio_exact_over_dense", "ratio_published_over_dense",
                  "slowdown_dense", "slowdown_exact", "slowdown_published"):
            assert len(b[k]) == len(points) and all(v == v for v in b[k])  # no NaN
        ms = b["ms_per_step"]
        assert b["ratio_exact_over_dense"] == [e / d for e, d in zip(ms["exact"], ms["dense"])]
        for m in ("dense", "exact", "published"):
            assert b[f"slowdown_{m}"][0] == 0.0 and len(b["evaluation_s"][m]) == len(points)
            for epochs in ("25", "15"):
                parts = b[f"projected_parts_s_{m}"][epochs]
                assert b[f"projected_run_s_{m}"][epochs] == parts["total_s"] > 0
                assert parts["total_s"] == parts["steps_s"] + parts["evaluations_s"] + parts["overhead_s"]
                assert parts["overhead_s"] == report["data_load_s"] + b["final_s"][m]
        assert len(b["exact_breakdown_ms"]) == len(points) and b["final_r"]["exact"] != 0.5  # it trained


def test_a_run_costs_each_epoch_at_the_last_point_before_it_plus_its_evaluation():
    bench = load_script("bench_train")
    cost = bench.run_cost(4, 10, ((0, 1, 3), (3.0, 2.0, 1.0)), ((0, 2), (0.5, 0.25)), 7.0)
    assert cost["steps_s"] == 10 * (3.0 + 2.0 + 2.0 + 1.0) / 1e3
    assert cost["evaluations_s"] == 0.5 + 0.5 + 0.25 + 0.25 and cost["overhead_s"] == 7.0
    assert cost["total_s"] == cost["steps_s"] + cost["evaluations_s"] + cost["overhead_s"]


def test_batch_64_is_the_thesis_protocol_and_draws_its_batches_as_training_does():
    import numpy as np

    from refprune.train.loop import init_state
    from refprune.train.protocol import epoch_batches
    bench = load_script("bench_train")
    assert bench.batch_protocol(64) == {"protocol": "ddp2", "batch_size": 32}
    assert bench.batch_protocol(32) == {"protocol": "single", "batch_size": 32}
    data = bench.synthetic_mnist(256, 64, np.random.default_rng(0))
    runs = bench.make_runs((784, 8, 10), 0, 64)
    run = runs["exact"]
    assert run.cfg.protocol == "ddp2" and bench.steps_per_epoch(256, run.cfg) == 4
    _, rng = init_state((784, 8, 10), run.cfg)  # the run's batch order starts where its initialisation left it
    for idx in epoch_batches(rng, 256, 32, "ddp2"):  # rank 0's 32 rows, then rank 1's
        xb, yb = bench.next_batch(run, data.x_train, data.y_train)
        assert xb.shape == (64, 784) and np.array_equal(xb, data.x_train[idx])


def test_the_benchmark_reports_every_batch_size_at_tiny_size():
    import numpy as np
    bench = load_script("bench_train")
    data = bench.synthetic_mnist(128, 32, np.random.default_rng(0))
    report = bench.bench(data, (784, 8, 8, 10), (32, 64), (0, 1), 2, (3,), 0, 0.5)
    assert list(report["batches"]) == ["32", "64"] and report["data_load_s"] == 0.5
    for b in report["batches"].values():
        assert set(b["ms_per_step"]) == set(bench.METHODS) and all(len(v) == 2 for v in b["evaluation_s"].values())
        assert b["projected_parts_s_exact"]["3"]["overhead_s"] == 0.5 + b["final_s"]["exact"]


def test_the_turns_change_no_runs_numbers():
    import numpy as np
    bench = load_script("bench_train")
    data = bench.synthetic_mnist(128, 32, np.random.default_rng(0))
    reports = [bench.bench(data, (784, 8, 8, 10), (32,), (0, 1), 3, (3,), 0, turn=turn) for turn in (1, 2)]
    one, two = (r["batches"]["32"] for r in reports)
    assert reports[1]["turn_steps"] == 2
    assert one["final_r"] == two["final_r"] and one["final_tau"] == two["final_tau"]  # each run trains alone


def test_bench_train_default_data_dir_is_beside_the_checkout_not_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bench = load_script("bench_train")
    assert bench.DEFAULT_DATA == ROOT.parent / "shared" / "data" / "mnist"


def test_bench_step_runs_its_phases(capsys):
    bench = load_script("bench_step")
    assert bench.main(["--layers", "20,16,4", "--repeats", "3", "--dtypes", "float64", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    parts = report["float64"]["breakdown_lrp_exact_seconds"]
    assert set(parts) == set(bench.BREAKDOWN_PARTS) and all(v >= 0 for v in parts.values())


@pytest.mark.slow
def test_bench_concurrent_quick_resumes_every_setting_to_the_same_result(tmp_path, capsys):
    bench = load_script("bench_concurrent")
    assert bench.main(["--quick", "--json", "--trials", "1", "--work", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["same_results"] is True
    assert set(report["median_s"]) == {name for name, _, _ in bench.SETTINGS}
    assert report["warm_epochs"] >= 1 and report["timed_epochs"] >= 1
    assert report["ratio_pair_1_over_pair_2"] > 0 and report["ratio_pair_2_over_alone"] > 0
    # the warm-up was stopped partway, and each resumed copy trained the rest of the run
    summary = json.loads((tmp_path / "job0" / "summary.json").read_text())
    assert summary["epochs_run"] == report["warm_epochs"] + report["timed_epochs"]


def test_bench_concurrent_rejects_a_missing_data_dir(tmp_path):
    bench = load_script("bench_concurrent")
    with pytest.raises(SystemExit):
        bench.main(["--data-dir", str(tmp_path / "absent")])
