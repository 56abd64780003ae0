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
