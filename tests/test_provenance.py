"""Every result says where it came from: the code version, its data by content (no machine path),
and the `refprune train` command that reproduces it bit for bit — which this test runs."""

import json
import shlex

import numpy as np
import pytest

import refprune
from refprune.cli.main import main
from refprune.data.idx import write_idx
from refprune.data.mnist import MNIST_FILES
from refprune.experiments.jobs import DATA_DIR_PLACEHOLDER, JOB_KINDS, job_origin, train_command
from refprune.experiments.sweep import run_sweep
from refprune.util.provenance import code_version, file_digests

# Fields that hold wall-clock time: the only ones a rerun may change.
TIMED = ("seconds",)


def without_time(obj):
    if isinstance(obj, dict):
        return {k: without_time(v) for k, v in obj.items() if k not in TIMED}
    if isinstance(obj, list):
        return [without_time(v) for v in obj]
    return obj


@pytest.fixture
def idx_dir(tmp_path):
    """A small MNIST-format data set (60 training, 20 test images of 28 x 28 pixels)."""
    rng = np.random.default_rng(7)
    d = tmp_path / "idx"
    d.mkdir()
    for role, n in (("train", 60), ("test", 20)):
        write_idx(d / MNIST_FILES[f"{role}_images"], rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(d / MNIST_FILES[f"{role}_labels"], rng.integers(0, 10, n, dtype=np.uint8))
    return d


def run_job(job, results):
    run_sweep([job], results, JOB_KINDS, log=None, origin=job_origin)
    return json.loads((results / f"{job['name']}.json").read_text())


def rerun(command: str, data_dir, out, capsys):
    words = shlex.split(command.replace(DATA_DIR_PLACEHOLDER, str(data_dir)))
    assert words[:2] == ["refprune", "train"]
    words[words.index("--out") + 1] = str(out)
    assert main(words[1:] + ["--quiet"]) == 0
    capsys.readouterr()
    return json.loads((out / "summary.json").read_text()), json.loads((out / "history.json").read_text())


@pytest.mark.parametrize("config", [
    {"method": "lrp", "r0": 0.3, "lam": 1.0, "epochs": 3},
    {"method": "lrp", "variant": "published", "deviations": ["P2"], "epochs": 2, "batch_size": 16},
    {"method": "dense", "epochs": 2, "protocol": "ddp2"},
])
def test_the_recorded_command_reproduces_a_synthetic_job_bit_for_bit(tmp_path, capsys, config):
    job = {"kind": "train", "data": "synthetic", "alpha": 5, "name": "syn", "seed": 3, "config": config}
    rec = run_job(job, tmp_path / "results")
    summary, history = rerun(rec["reproduce"], None, tmp_path / "run", capsys)
    # The run directory's summary adds the export's file sizes; everything the job kept must match.
    assert without_time({k: summary[k] for k in rec["summary"]}) == without_time(rec["summary"])
    assert without_time(history) == without_time(rec["epochs"])


@pytest.mark.slow
def test_the_recorded_command_reproduces_an_mnist_job_with_its_split(tmp_path, capsys, idx_dir):
    job = {"kind": "train", "data": "mnist", "data_dir": str(idx_dir), "name": "mn", "seed": 2, "split_seed": 5,
           "layers": [784, 6, 10], "config": {"method": "lrp", "r0": 0.4, "epochs": 2, "batch_size": 8}}
    rec = run_job(job, tmp_path / "results")
    assert "data_dir" not in rec["job"] and str(tmp_path) not in json.dumps(rec)
    assert rec["data_sha256"] == file_digests(sorted(idx_dir.iterdir()))
    assert "--split-seed 5" in rec["reproduce"] and "--seed 2" in rec["reproduce"]
    summary, history = rerun(rec["reproduce"], idx_dir, tmp_path / "run", capsys)
    # The run directory's summary adds the export's file sizes; everything the job kept must match.
    assert without_time({k: summary[k] for k in rec["summary"]}) == without_time(rec["summary"])
    assert without_time(history) == without_time(rec["epochs"])


def test_a_result_records_the_code_version(tmp_path):
    job = {"kind": "train", "data": "synthetic", "name": "v", "seed": 0, "config": {"method": "dense", "epochs": 1}}
    rec = run_job(job, tmp_path / "results")
    assert rec["code"] == code_version()
    assert rec["code"]["refprune"] == refprune.__version__ and set(rec["code"]) == {"refprune", "commit", "modified"}


def test_train_command_gives_only_what_differs_from_the_defaults():
    job = {"kind": "train", "data": "mnist", "name": "x", "seed": 4,
           "config": {"method": "lrp", "variant": "exact", "r0": 0.5, "lam": 10.0, "epochs": 15,
                      "protocol": "ddp2", "batch_size": 32}}
    assert train_command(job) == ("refprune train --data mnist --data-dir DATA_DIR --split-seed 0 --lam 10.0 "
                                  "--epochs 15 --seed 4 --protocol ddp2 --out runs/x")
    assert train_command({**job, "data": "tiny_mnist"}) is None


def test_committed_results_name_no_machine_path_and_record_their_origin():
    from pathlib import Path

    results = Path(__file__).resolve().parents[1] / "results"
    for path in sorted(results.glob("*.json")):
        text = path.read_text()
        assert '"/' not in text, f"{path.name} holds an absolute path"
        rec = json.loads(text)
        assert rec.get("code", {}).get("refprune"), f"{path.name} records no code version"
        assert rec.get("code", {}).get("commit") or rec["code"].get("committed_in"), path.name
        assert rec.get("reproduce"), f"{path.name} records no command that reproduces it"
