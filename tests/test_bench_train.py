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
def test_bench_train_quick_json_has_the_reported_keys(tmp_path, capsys):
    bench = load_script("bench_train")
    assert bench.main(["--quick", "--json", "--data-dir", str(tmp_path / "absent")]) == 0
    report = json.loads(capsys.readouterr().out)
    points = report["points_epochs"]
    assert points == [0, 1, 2] and report["source"].startswith("synthetic stand-in")
    for key in ("ratio_exact_over_dense", "ratio_published_over_dense",
                "slowdown_dense", "slowdown_exact", "slowdown_published"):
        assert len(report[key]) == len(points) and all(v == v for v in report[key])  # no NaN
    for m in ("dense", "exact", "published"):
        assert report[f"slowdown_{m}"][0] == 0.0
        assert report[f"projected_run_s_{m}"] > 0
    # the runs really train through the points (20 steps an epoch at 640 samples, batch 32)
    assert report["steps_per_epoch"] == 20 and report["final_r"]["exact"] != 0.5


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
