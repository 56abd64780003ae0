"""Long runs a user can trust: checks before work, checkpoints and --resume, Ctrl-C,
divergence, ignored options, generated options, file modes, byte-stable figures, run plots."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from refprune.cli.main import build_parser, main
from refprune.cli.options import Parser, add_options, given
from refprune.data.dataset import Dataset
from refprune.data.tasks import TaskSpec, load_task
from refprune.train.checkpoint import CHECKPOINT
from refprune.train.export import load_sparse, save_sparse
from refprune.train.loop import TrainConfig, train
from refprune.train.progress import Progress
from refprune.train.rundir import load_params, prepare_run, run_training
from refprune.util.io import atomic_write, write_json
from refprune.util.options import option

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--layers", "1,6,6,1", "--batch-size", "100"]  # 8 steps per epoch of the 800 synthetic rows
SUBPROCESS_TIMEOUT = 120  # seconds; a tiny run takes a few, the margin is for a loaded 2-core machine


def status(argv) -> int:
    """Exit status of ``refprune argv`` (argparse's own errors exit through SystemExit)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def train_cli(tmp_path, *args, name="run"):
    return status(["train", *TINY, "--out", str(tmp_path / name), *args])


def without_seconds(obj):
    """A record with its wall-clock times removed (the only thing a resumed run may change)."""
    if isinstance(obj, dict):
        return {k: without_seconds(v) for k, v in obj.items() if k != "seconds"}
    if isinstance(obj, list):
        return [without_seconds(v) for v in obj]
    return obj


# 1. Fail before work --------------------------------------------------------------------------

def test_existing_run_directory_is_refused_before_training(tmp_path, capsys):
    assert train_cli(tmp_path, "--epochs", "1") == 0
    stray = tmp_path / "run" / "stray.txt"
    stray.write_text("old")
    capsys.readouterr()
    assert train_cli(tmp_path, "--epochs", "1") == 2
    out, err = capsys.readouterr()
    assert "--overwrite" in err and "--resume" in err and "epoch" not in out
    assert stray.exists()
    assert train_cli(tmp_path, "--epochs", "1", "--overwrite") == 0  # replaced whole
    assert not stray.exists()


@pytest.mark.parametrize("make, match", [
    (lambda p: p.write_text("x") and p, "is an existing file"),
    (lambda p: (p.write_text("x"), p / "sub")[1], "cannot be written"),
])
def test_bad_out_is_an_error_before_the_first_step(make, match, tmp_path, capsys):
    out = make(tmp_path / "f")
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 2
    text, err = capsys.readouterr()
    assert match in err and "--out" in err and "epoch" not in text and len(err.strip().splitlines()) == 1


def test_a_directory_that_is_not_a_run_is_never_overwritten(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "precious.txt").write_text("keep")
    assert train_cli(tmp_path, "--epochs", "1", "--overwrite") == 2
    assert "not a run directory" in capsys.readouterr().err
    assert (tmp_path / "run" / "precious.txt").exists()


# 4. Nothing silent ----------------------------------------------------------------------------

@pytest.mark.parametrize("args, match", [
    (["--layers", "1,32,3"], "--layers: the output width 3 does not fit the task's 1"),
    (["--layers", "2,32,1"], "--layers: the input width 2"),
    (["--layers", "1,200000,200000,200000,1"], "--layers: 1,200000,200000,200000,1 need about"),
    (["--deviations", "P2"], "--deviations applies only with --method lrp and --variant published"),
    (["--method", "dense", "--lam", "1"], "--lam applies only with --method lrp"),
    (["--method", "dense", "--r0", "0.3"], "--r0 applies only with --method lrp"),
    (["--method", "dense", "--variant", "exact"], "--variant applies only with --method lrp"),
    (["--variant", "published", "--density", "fft"], "--density applies only with --method lrp and --variant exact"),
    (["--data-dir", "/tmp"], "--data-dir applies only with --data mnist"),
    (["--seed", "-1"], "--seed must be >= 0"),
    (["--epochs", "x"], "argument --epochs: must be an integer, got 'x'"),
    (["--resume"], "--resume"),
])
def test_bad_train_input_is_one_line_naming_its_option(args, match, tmp_path, capsys):
    assert status(["train", "--epochs", "1", "--out", str(tmp_path / "run"), *args]) == 2
    out, err = capsys.readouterr()
    assert match in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing was started


def test_gradcheck_errors_name_their_option(capsys):
    for args, match in ((["--max-coords", "-5"], "--max-coords"), (["--seed", "-1"], "--seed")):
        assert status(["gradcheck", *args]) == 2
        err = capsys.readouterr().err
        assert match in err and len(err.strip().splitlines()) == 1


def test_config_json_records_only_what_applies(tmp_path):
    assert train_cli(tmp_path, "--epochs", "1", name="exact") == 0
    assert train_cli(tmp_path, "--epochs", "1", "--method", "dense", name="dense") == 0
    assert train_cli(tmp_path, "--epochs", "1", "--variant", "published", "--deviations", "P2", name="pub") == 0
    exact, dense, pub = (json.loads((tmp_path / n / "config.json").read_text()) for n in ("exact", "dense", "pub"))
    assert "deviations" not in exact and exact["density"] == "direct" and "data_dir" not in exact
    assert not {"r0", "lam", "tau0", "lr_r", "lr_tau", "variant", "deviations", "density"} & set(dense)
    assert pub["deviations"] == ["P2"] and "density" not in pub


def test_dense_divergence_is_an_error_naming_step_and_quantity(tmp_path, capsys):
    assert train_cli(tmp_path, "--method", "dense", "--lr", "1e5", "--epochs", "3", "--layers", "1,32,32,32,1",
                     "--batch-size", "32") == 3
    err = capsys.readouterr().err
    assert "diverged at step" in err and "loss is" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "summary.json").exists()


@pytest.mark.parametrize("quantity", ["loss", "r", "tau"])
def test_divergence_keeps_the_last_good_checkpoint(quantity, tmp_path, capsys, monkeypatch):
    import refprune.train.loop as train_module

    real = train_module.make_step

    def poisoned(cfg):  # a finite run until step 12 (epoch 2 of 8 steps), then a NaN
        step = real(cfg)

        def run(state, ws, x, y):
            value = step(state, ws, x, y)
            if state.step == 12:
                if quantity == "loss":
                    return float("nan")
                getattr(state, {"r": "rs", "tau": "taus"}[quantity])[:] = float("nan")
            return value
        return run

    monkeypatch.setattr(train_module, "make_step", poisoned)
    assert train_cli(tmp_path, "--epochs", "3") == 3
    err = capsys.readouterr().err
    assert f"diverged at step 12: {quantity} is nan" in err and "epoch 1" in err
    with np.load(tmp_path / "run" / CHECKPOINT) as f:
        assert json.loads(str(f["meta"]))["epoch"] == 1


def test_an_internal_failure_is_exit_1_with_a_debug_hint(tmp_path, capsys, monkeypatch):
    import refprune.train.rundir as rundir

    def broken(*args, **kw):
        raise ValueError("cannot convert float NaN to integer")

    monkeypatch.setattr(rundir, "train", broken)
    assert train_cli(tmp_path, "--epochs", "1") == 1
    err = capsys.readouterr().err
    assert "internal error" in err and "--debug" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(ValueError, match="NaN to integer"):
        main(["--debug", "train", *TINY, "--epochs", "1", "--out", str(tmp_path / "other")])


# 2. Checkpoints and resume --------------------------------------------------------------------

@pytest.fixture(scope="module")
def synthetic():
    return load_task("synthetic", alpha=2)


@pytest.mark.parametrize("kw", [dict(method="dense"), dict(), dict(density="fft"),
                                dict(variant="published"), dict(variant="published", deviations=("P4",)),
                                dict(dtype="float64", lam=1.0)], ids=str)
def test_a_resumed_run_is_bitwise_the_uninterrupted_run(kw, synthetic, tmp_path):
    cfg = dict(loss="mse", batch_size=100, lr=1e-2, lr_r=1e-2, lr_tau=1e-4, **kw)
    layers = (1, 6, 6, 1)
    whole = train(synthetic, layers, TrainConfig(epochs=4, **cfg), log=None)
    path = tmp_path / CHECKPOINT
    train(synthetic, layers, TrainConfig(epochs=2, **cfg), log=None, checkpoint=path)
    resumed = train(synthetic, layers, TrainConfig(epochs=4, **cfg), log=None, checkpoint=path, resume=True)
    assert without_seconds(resumed["summary"]) == without_seconds(whole["summary"])
    assert without_seconds(resumed["history"].epochs) == without_seconds(whole["history"].epochs)
    for key, values in whole["history"].steps.items():  # dense runs record t as NaN: compare as arrays
        np.testing.assert_array_equal(resumed["history"].steps[key], values)
    for a, b in zip(resumed["weights"] + resumed["biases"], whole["weights"] + whole["biases"]):
        np.testing.assert_array_equal(a, b)


def run_subprocess(args, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "refprune", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.slow
def test_sigint_then_resume_gives_the_summary_of_an_uninterrupted_run(tmp_path):
    # 50 epochs: the run is still training when the SIGINT sent after its first checkpoint lands
    args = ["train", "--layers", "1,8,8,1", "--batch-size", "32", "--epochs", "50", "--variant", "published"]
    out = tmp_path / "stopped"
    # Ctrl-C's default action in the child even when this test runs in a background job, which
    # starts with SIGINT ignored (Python then never raises KeyboardInterrupt)
    proc = run_subprocess([*args, "--out", str(out)],
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT
    while not (out / CHECKPOINT).exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "resume with: refprune train" in err and "--resume" in err
    assert not (out / "summary.json").exists()
    command = err.split("resume with: refprune ", 1)[1].split()
    resumed = run_subprocess(command)
    _, err2 = resumed.communicate(timeout=SUBPROCESS_TIMEOUT)
    assert resumed.returncode == 0, err2
    assert main([*args, "--out", str(tmp_path / "whole"), "--quiet"]) == 0
    a, b = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("stopped", "whole"))
    assert without_seconds(a) == without_seconds(b)
    assert (without_seconds(json.loads((out / "history.json").read_text()))
            == without_seconds(json.loads((tmp_path / "whole" / "history.json").read_text())))


def test_resume_refuses_other_options(tmp_path, capsys):
    assert train_cli(tmp_path, "--epochs", "1") == 0
    assert train_cli(tmp_path, "--epochs", "1", "--lr", "0.01", "--resume") == 2
    assert "--resume: the run in" in capsys.readouterr().err


def test_resume_of_a_checkpoint_of_an_earlier_format_says_to_start_again(tmp_path, capsys):
    import numpy as np

    from refprune.util.io import write_npz
    assert train_cli(tmp_path, "--epochs", "2") == 0
    path = tmp_path / "run" / "checkpoint.npz"
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["meta"]))
    write_npz(path, **{**arrays, "meta": np.array(json.dumps({**meta, "epoch": 1, "format": 1}))})
    assert train_cli(tmp_path, "--epochs", "2", "--resume") == 2
    err = capsys.readouterr().err
    assert "checkpoint format 1, expected 2" in err and "earlier refprune" in err and "--overwrite" in err


# 3. Progress ----------------------------------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.mark.parametrize("tty", [True, False])
def test_progress_shows_step_rate_and_both_etas(tty):
    import io as _io
    clock, stream = FakeClock(), _io.StringIO()
    p = Progress(epochs=2, steps_per_epoch=100, stream=stream, tty=tty, clock=clock)
    for k in range(1, 101):
        clock.now += 1.0  # one step per second
        p.step(1, k)
    text = stream.getvalue()
    assert "steps/s" in text and "epoch ETA" in text and "run ETA" in text
    if tty:  # one self-rewriting line
        assert "\r" in text and "\n" not in text
        assert "step 100/100  1.0 steps/s  epoch ETA 0s  run ETA 1m40s" in text
    else:  # plain periodic lines, not one per step
        lines = text.splitlines()
        assert 1 <= len(lines) <= 100 / 30 + 1 and "\r" not in text


def test_quiet_prints_nothing(tmp_path, capsys):
    assert train_cli(tmp_path, "--epochs", "2", "--quiet") == 0
    out, err = capsys.readouterr()
    assert out == "" and err == ""


# 5. One source of truth -----------------------------------------------------------------------

def test_train_help_shows_every_option_with_its_default():
    import dataclasses
    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for cls in (TrainConfig, TaskSpec):
        for f in dataclasses.fields(cls):
            if not f.metadata.get("cli", True):
                continue
            assert "--" + f.name.replace("_", "-") in text
    flat = " ".join(text.split())
    for default in ("(default: 0.5)", "(default: 0.0001)", "(default: 1e-06)", "(default: 25)",
                    "(default: 32)", "(default: lrp)", "(default: 0)", "runs/<data>-<method>[-<variant>]"):
        assert default in flat


def test_a_new_dataclass_field_becomes_an_option_by_itself():
    @dataclass(frozen=True)
    class Config:
        width: int = option(3, "a width")
        name: str = option("a", "a name", choices=("a", "b"))
        sizes: tuple = (1, 2)            # no metadata: still an option, default shown
        hidden: str = option("x", "not offered", cli=False)

    p = Parser(prog="t")
    assert add_options(p, Config) == ["width", "name", "sizes"]
    assert "a width (default: 3)" in p.format_help() and "(default: 1,2)" in p.format_help()
    args = p.parse_args(["--width", "5", "--sizes", "4,5"])
    assert given(args, Config) == {"width": 5, "sizes": (4, 5)}
    assert Config(**given(args, Config)) == Config(width=5, sizes=(4, 5))


def test_gradcheck_options_come_from_case():
    import dataclasses

    from refprune.oracle.case import Case
    text = build_parser()._subparsers._group_actions[0].choices["gradcheck"].format_help()
    for f in dataclasses.fields(Case):
        assert "--" + f.name.replace("_", "-") in text


def test_library_takes_a_train_config_not_the_cli(tmp_path):
    cfg = TrainConfig(loss="mse", epochs=1, batch_size=100)
    plan = prepare_run(cfg, TaskSpec(layers=(1, 4, 1)), tmp_path / "lib")
    summary = run_training(plan, log=None)
    assert summary["epochs"] == 1 and (tmp_path / "lib" / "summary.json").exists()
    assert Dataset.__module__ == "refprune.data.dataset"


# 6. Files others can read; byte-stable figures ------------------------------------------------

@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_result_files_follow_the_umask(mask, mode, tmp_path):
    old = os.umask(mask)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        atomic_write(tmp_path / "b.bin", lambda fh: fh.write(b"1"))
    finally:
        os.umask(old)
    for name in ("a.json", "b.bin"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode


@pytest.mark.slow
def test_figures_redraw_to_the_same_bytes(tmp_path, monkeypatch):
    digests = []
    for epoch in ("1000000000", "1700000000"):  # a different "now" for each redraw
        monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch)
        out = tmp_path / epoch
        assert main(["figures", "--only", "masks", "--results", str(ROOT / "results"), "--out", str(out)]) == 0
        digests.append({p.name: p.read_bytes() for p in sorted(out.glob("*.p[nd][gf]"))})
    assert digests[0] and digests[0].keys() == digests[1].keys()
    assert any(name.endswith(".pdf") for name in digests[0])
    for name in digests[0]:
        assert digests[0][name] == digests[1][name], name


# 7. A picture of every run --------------------------------------------------------------------

@pytest.mark.slow
def test_plot_draws_a_run_and_train_plot_does_it_at_the_end(tmp_path, capsys):
    assert train_cli(tmp_path, "--epochs", "2", "--plot") == 0
    png = tmp_path / "run" / "run.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    png.unlink()
    assert main(["plot", str(tmp_path / "run")]) == 0
    assert png.exists() and f"plot in {png}" in capsys.readouterr().out
    assert main(["plot", str(tmp_path / "nothing")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_plot_keeps_coinciding_curves_apart(tmp_path):
    import matplotlib.pyplot as plt

    from refprune.experiments.plot_run import draw, load_run
    assert train_cli(tmp_path, "--epochs", "2") == 0
    fig = draw(load_run(tmp_path / "run"))
    for ax in fig.axes[:3]:  # loss, metric, sparsity per layer: every line looks different
        looks = [(line.get_linestyle(), line.get_marker(), line.get_color()) for line in ax.get_lines()]
        assert len(looks) >= 2 and len(set((s, m) for s, m, _ in looks)) == len(looks)
    names = {t.get_text() for t in fig.axes[0].get_legend().get_texts()}
    assert names == {"train (soft mask)", "val (soft mask)", "train (hard mask)", "val (hard mask)"}
    assert [ax.get_ylabel() for ax in fig.axes[3:]] == ["r", "τ", "t"]
    plt.close(fig)


# 8. Small things ------------------------------------------------------------------------------

def test_vectors_list_needs_no_out_and_cases_merge_into_the_manifest(tmp_path, capsys):
    assert main(["vectors", "--list"]) == 0
    assert main(["vectors", "--out", str(tmp_path), "--cases", "ce-tiny"]) == 0
    assert main(["vectors", "--out", str(tmp_path), "--cases", "mse-tiny-lam"]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [c["name"] for c in manifest["cases"]] == ["ce-tiny", "mse-tiny-lam"]
    capsys.readouterr()
    assert main(["vectors"]) == 2 and "--out is required" in capsys.readouterr().err


def test_weights_are_numbered_one_to_l_and_old_files_still_load(tmp_path):
    assert train_cli(tmp_path, "--epochs", "1") == 0
    with np.load(tmp_path / "run" / "params.npz") as f:
        assert sorted(f.files) == ["W1", "W2", "W3", "b1", "b2", "b3"]
    with np.load(tmp_path / "run" / "model_sparse.npz") as f:
        assert "W1_data" in f.files and "W0_data" not in f.files
    weights, biases = load_params(tmp_path / "run" / "params.npz")
    assert [W.shape for W in weights] == [(1, 6), (6, 6), (6, 1)]
    rng = np.random.default_rng(0)
    W, b = [rng.standard_normal((3, 2))], [rng.standard_normal(2)]
    np.savez(tmp_path / "old_params.npz", W0=W[0], b0=b[0])            # the numbering before
    np.testing.assert_array_equal(load_params(tmp_path / "old_params.npz")[0][0], W[0])
    save_sparse(tmp_path / "new.npz", W, b)
    with np.load(tmp_path / "new.npz") as f:
        old = {k.replace("W1", "W0").replace("b1", "b0"): f[k] for k in f.files}
    np.savez(tmp_path / "old.npz", **old)
    np.testing.assert_array_equal(load_sparse(tmp_path / "old.npz")[0][0], W[0])


@pytest.mark.parametrize("make", [lambda p: p / "missing", lambda p: (p / "empty").mkdir() or p / "empty"])
def test_figures_on_a_missing_or_empty_results_folder_is_an_error(make, tmp_path, capsys):
    results = make(tmp_path)
    assert main(["figures", "--results", str(results), "--out", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert "--results" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "f").exists()


def test_readme_shows_the_venv_resume_plot_and_measured_times():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "python3 -m venv .venv" in text and "--resume" in text and "refprune plot" in text
    assert "TIME_" not in text and "TIMES_TABLE" not in text and "measured" in text
    assert (ROOT / "docs" / "METHOD.md").is_file() and "(docs/METHOD.md)" in text
