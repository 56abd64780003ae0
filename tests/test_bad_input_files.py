"""Bad input: nothing silently wrong or overwritten, every damaged file named, every option range checked.

Two tables, each row one command run through ``refprune.cli.main.main`` with its exit status
and the first line it prints asserted:

- ``CASES``: wrong uses of every command (a float ``y`` for a ``ce`` case, a case name that
  would overwrite one, option values out of range, a text file as a candidate, a damaged data
  directory under ``figures --recompute``, …);
- ``DAMAGE``: every file refprune reads back, damaged each way that applies to its kind
  (truncated, empty, the wrong JSON type, a wrong key, the wrong dtype, the wrong shape):
  exit status 2, one line that begins with the file's path and says what is wrong, and the
  run directory (or the output folder) left as it was.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from refprune.cli.main import build_parser, main
from refprune.data.idx import write_idx
from refprune.data.tasks import TaskSpec
from refprune.experiments.figures import all_jobs
from refprune.oracle.case import Case
from refprune.train.loop import TrainConfig
from refprune.train.rundir import load_params
from refprune.vectors.cases import case_by_name, make_vectors
from refprune.vectors.files import write_vectors
from refprune.vectors.schema import output_keys

# --------------------------------------------------------------------------
# the world the commands run in


def run(argv) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``refprune ARGV`` (argparse's errors exit through SystemExit)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main([str(a) for a in argv])
        except SystemExit as exc:
            status = exc.code
    return status, out.getvalue(), err.getvalue()


def inputs(y=None, layout=None, layers=(5, 7, 3)) -> dict:
    """A user's inputs for ``vectors --from`` (docs/vectors.md §8), (in, out) weights unless told."""
    rng = np.random.default_rng(0)
    data = {"layers": np.array(layers), "loss_kind": np.array("ce"), "x": rng.standard_normal((6, layers[0])),
            "y": rng.integers(0, layers[-1], size=6) if y is None else np.asarray(y),
            "r": np.array(0.45), "tau": np.array(0.02)}
    for l in range(1, len(layers)):
        bound = 1 / np.sqrt(layers[l - 1])
        data[f"W{l}"] = rng.uniform(-bound, bound, (layers[l - 1], layers[l]))
        data[f"b{l}"] = rng.uniform(-bound, bound, layers[l])
    if layout:
        data["layout"] = np.array(layout)
    return data


def save(path: Path, arrays: dict) -> Path:
    np.savez(path, **arrays)
    return path


def tiny_idx_dir(folder: Path) -> Path:
    """The four MNIST IDX files with 20 training and 5 test images of 28×28."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    write_idx(folder / "train-images-idx3-ubyte", rng.integers(0, 256, (20, 28, 28), dtype=np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte", (np.arange(20) % 10).astype(np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte", rng.integers(0, 256, (5, 28, 28), dtype=np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte", (np.arange(5) % 10).astype(np.uint8))
    return folder


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """Made once: a finished run directory, a golden-vectors folder, an MNIST folder, a result."""
    base = tmp_path_factory.mktemp("pristine")
    status, _, err = run(["train", "--epochs", "2", "--layers", "1,8,1", "--quiet", "--out", base / "run"])
    assert status == 0, err
    write_vectors(base / "golden", ["ce-tiny"])
    tiny_idx_dir(base / "mnist")
    job = all_jobs(["synthetic"], False, None)[0]
    (base / "results").mkdir()
    (base / "results" / f"{job['name']}.json").write_text(json.dumps({"job": job, "seconds": 1.5, "code": {}}))
    np.savez(base / "results" / f"{job['name']}.npz", trace=np.arange(4.0))
    return base


@pytest.fixture
def world(pristine, tmp_path):
    """A fresh copy of the pristine files for one row."""
    for name in ("run", "golden", "mnist", "results"):
        shutil.copytree(pristine / name, tmp_path / name)
    return tmp_path


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` with its bytes."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


RESUME = ["train", "--epochs", "2", "--layers", "1,8,1", "--resume", "--out"]

# --------------------------------------------------------------------------
# table 1: the wrong uses


def float_y(w):
    save(w / "inputs.npz", inputs(y=[0.27, 1.09, 2.0, 0.0, 1.0, 2.0]))
    return ["vectors", "--from", w / "inputs.npz", "--out", w / "mine"]


def builtin_name(w):
    save(w / "inputs.npz", inputs())
    return ["vectors", "--from", w / "inputs.npz", "--out", w / "golden", "--name", "ce-tiny"]


def user_name_twice(w):
    save(w / "inputs.npz", inputs())
    assert run(["vectors", "--from", w / "inputs.npz", "--out", w / "golden", "--name", "my-net"])[0] == 0
    return ["vectors", "--from", w / "inputs.npz", "--out", w / "golden", "--name", "my-net"]


def builtin_name_overwrite(w):
    return builtin_name(w) + ["--overwrite"]


def resume_truncated_checkpoint(w):
    path = w / "run" / "checkpoint.npz"
    path.write_bytes(path.read_bytes()[:200])
    return RESUME + [w / "run"]


def config_list(w):
    (w / "run" / "config.json").write_text("[]")


def resume_config_list(w):
    config_list(w)
    return RESUME + [w / "run"]


def plot_config_list(w):
    config_list(w)
    return ["plot", w / "run"]


def plot_truncated_steps(w):
    path = w / "run" / "steps.npz"
    path.write_bytes(path.read_bytes()[:100])
    return ["plot", w / "run"]


def plot_corrupt_history(w):
    (w / "run" / "history.json").write_text("{bad")
    return ["plot", w / "run"]


def idx_wrong_header(w):
    path = w / "mnist" / "train-images-idx3-ubyte"
    raw = bytearray(path.read_bytes())
    raw[8:12] = b"\x05\x00\x00\x01"  # the second dimension says 83886081 rows of 28
    path.write_bytes(bytes(raw))
    return ["train", "--data", "mnist", "--data-dir", w / "mnist", "--epochs", "1", "--out", w / "m"]


def compare_text_file(w):
    (w / "cand.txt").write_text("hello\n")
    return ["compare", w / "cand.txt"]


def figures_damaged_data(w):
    idx_wrong_header(w)
    return ["figures", "--recompute", "--only", "mnist", "--data-dir", w / "mnist", "--results", w / "r",
            "--out", w / "f"]


def direct_sum_on_fft_case(w):
    """A candidate that used the direct Gaussian sum where the case asks for the binned FFT."""
    from refprune.density.config import DensityConfig, density_at
    from refprune.vectors.schema import weights_of

    ref = make_vectors(case_by_name("ce-medium-f32"))  # reference: binned FFT, linear binning
    a = np.concatenate([np.abs(W).ravel() for W in weights_of(ref)])
    f = float(density_at(a, np.array([float(ref["t"])]), DensityConfig(method="direct", reflect=True))[0])
    save(w / "cand.npz", {"case": np.array("ce-medium-f32"), "dt_dr": np.array(1 / f), "density": np.array(f)})
    return ["compare", w / "cand.npz"]


def out_in_given_in_out(w):
    data = inputs(layout="out_in")  # declares (out, in) but holds (in, out) weights
    save(w / "inputs.npz", data)
    return ["vectors", "--from", w / "inputs.npz", "--out", w / "mine"]


def candidate_out_in_given_in_out(w):
    ref = make_vectors(case_by_name("ce-tiny"))
    save(w / "cand.npz", {"case": ref["case"], "layout": np.array("out_in"), "grad_W1": ref["grad_W1"]})
    return ["compare", w / "cand.npz"]


def candidate_transposed_without_layout(w):
    ref = make_vectors(case_by_name("ce-tiny"))
    save(w / "cand.npz", {"case": ref["case"], "grad_W1": ref["grad_W1"].T})
    return ["compare", w / "cand.npz"]


def quick_args(w):
    return ["figures", "--quick", "--only", "masks", "--out", w / "f", "--results", w / "r"]


CASES = [
    # (name, set-up returning argv, exit status, first line of stderr (regex), stdout check)
    ("vectors --from: a float y for a ce case", float_y, 2,
     r"^refprune vectors: error: .*inputs\.npz: y holds 2 non-integer value\(s\) \(first 0\.27 at index 0\); "
     r"a ce case needs integer class labels"),
    ("vectors --from: the name of a built-in case", builtin_name, 2,
     r"^refprune vectors: error: .*golden already holds a built-in case named 'ce-tiny': choose another --name, "
     r"or pass --overwrite to replace it$"),
    ("vectors --from: the name of a user's case", user_name_twice, 2,
     r"^refprune vectors: error: .*golden already holds a case named 'my-net'"),
    ("vectors --from --overwrite replaces the case", builtin_name_overwrite, 0, r"^$"),
    ("train --resume: a truncated checkpoint", resume_truncated_checkpoint, 2,
     r"^refprune train: error: .*run/checkpoint\.npz: is damaged or truncated: not a complete \.npz \(zip\) "
     r"archive .*; the run cannot be resumed from it: start it again with --overwrite$"),
    ("train --resume: config.json holds []", resume_config_list, 2,
     r"^refprune train: error: .*run/config\.json: holds a JSON list where a JSON object is expected"),
    ("plot: config.json holds []", plot_config_list, 2,
     r"^refprune plot: error: .*run/config\.json: holds a JSON list where a JSON object is expected"),
    ("plot: a truncated steps.npz", plot_truncated_steps, 2,
     r"^refprune plot: error: .*run/steps\.npz: is damaged or truncated"),
    ("plot: a corrupt history.json", plot_corrupt_history, 2,
     r"^refprune plot: error: .*run/history\.json: is damaged or truncated: not valid JSON \(Expecting property "
     r"name enclosed in double quotes at line 1, column 2\)$"),
    ("train: an IDX file with a wrong header", idx_wrong_header, 2,
     r"^refprune train: error: .*train-images-idx3-ubyte: its header declares shape \(20, 83886081, 28\) of "
     r"unsigned byte, 46976205360 bytes of data, but 15680 bytes follow it: the file is truncated or its header "
     r"is damaged$"),
    ("compare: a text file", compare_text_file, 2,
     r"^refprune compare: error: .*cand\.txt: is a text file, not a readable \.npz archive"),
    ("figures --recompute: a damaged data directory, named once before any job", figures_damaged_data, 2,
     r"^refprune figures: error: .*train-images-idx3-ubyte: its header declares shape"),
    ("compare: the direct sum on an fft case", direct_sum_on_fft_case, 1, r"^$"),
    ("vectors --from: layout out_in with (in, out) weights", out_in_given_in_out, 2,
     r"^refprune vectors: error: .*inputs\.npz: W1 has shape \(5, 7\); layout out_in .* expects \(7, 5\)$"),
    ("compare: layout out_in with an (in, out) weight", candidate_out_in_given_in_out, 2,
     r"^refprune compare: error: .*cand\.npz: candidate for case ce-tiny: grad_W1 has shape \(4, 3\); layout "
     r"out_in expects \(3, 4\)$"),
    ("compare: a transposed weight without a layout is a mismatch", candidate_transposed_without_layout, 1, r"^$"),
    ("figures --jobs 0", lambda w: quick_args(w) + ["--jobs", "0"], 2,
     r"^refprune figures: error: argument --jobs: must be an integer >= 1, got '0'$"),
    ("figures --jobs -2", lambda w: quick_args(w) + ["--jobs", "-2"], 2,
     r"^refprune figures: error: argument --jobs: must be an integer >= 1, got '-2'$"),
    ("figures --out ''", lambda w: ["figures", "--out", ""], 2,
     r"^refprune figures: error: argument --out: must not be empty$"),
    ("train --out ''", lambda w: ["train", "--epochs", "1", "--out", ""], 2,
     r"^refprune train: error: argument --out: must not be empty$"),
    ("vectors --cases ''", lambda w: ["vectors", "--cases", "", "--out", w / "v"], 2,
     r"^refprune vectors: error: argument --cases: must name at least one case, got ''$"),
    ("vectors --out ''", lambda w: ["vectors", "--out", ""], 2,
     r"^refprune vectors: error: argument --out: must not be empty$"),
    ("train --batch-size 100000 on 800 rows", lambda w: ["train", "--batch-size", "100000", "--out", w / "b"], 2,
     r"^refprune train: error: --batch-size 100000 is larger than the 800 training rows of synthetic\(alpha=20\): "
     r"choose at most 800$"),
    ("train --batch-size 401 under ddp2", lambda w: ["train", "--batch-size", "401", "--protocol", "ddp2", "--out",
                                                     w / "b"], 2,
     r"^refprune train: error: --batch-size 401 is larger than the 400 training rows .* each of the 2 ddp2 "
     r"processes gets \(800 in all\): choose at most 400$"),
    ("train --tau0 1e300", lambda w: ["train", "--tau0", "1e300", "--out", w / "t"], 2,
     r"^refprune train: error: --tau0 1e\+300 gives the initial τ = 1\.27e\+299 .* outside \[1e-12, 1000\] where "
     r"the soft mask is stable: for these layers choose tau0 in \[7\.85e-12, 7\.85e\+03\]$"),
    ("train --tau0 1e-20", lambda w: ["train", "--tau0", "1e-20", "--out", w / "t"], 2,
     r"^refprune train: error: --tau0 1e-20 gives the initial τ = 1\.27e-21"),
    ("train --epochs 0", lambda w: ["train", "--epochs", "0", "--out", w / "t"], 2,
     r"^refprune train: error: --epochs must be >= 1, got 0$"),
    ("train --lr 0", lambda w: ["train", "--lr", "0", "--out", w / "t"], 2,
     r"^refprune train: error: --lr must be > 0, got 0\.0$"),
    ("train --alpha 0", lambda w: ["train", "--alpha", "0", "--out", w / "t"], 2,
     r"^refprune train: error: --alpha must be >= 1, got 0$"),
    ("train --data-dir ''", lambda w: ["train", "--data", "mnist", "--data-dir", "", "--out", w / "t"], 2,
     r"^refprune train: error: argument --data-dir: must not be empty$"),
    ("gradcheck --batch 0", lambda w: ["gradcheck", "--batch", "0"], 2,
     r"^refprune gradcheck: error: --batch must be >= 1, got 0$"),
    ("gradcheck --tau0 1e10", lambda w: ["gradcheck", "--tau0", "1e10"], 2,
     r"^refprune gradcheck: error: --tau0 = 10000000000\.0 gives τ = .*, above 1000, beyond the range where "
     r"the soft mask is stable"),
    ("gradcheck --r-spread 1", lambda w: ["gradcheck", "--granularity", "layer", "--r-spread", "1"], 2,
     r"^refprune gradcheck: error: --r-spread must be in \(-1, 1\), got 1\.0$"),
    ("gradcheck --max-coords 0", lambda w: ["gradcheck", "--max-coords", "0"], 2,
     r"^refprune gradcheck: error: argument --max-coords: must be an integer >= 1, got '0'$"),
]


@pytest.mark.parametrize("name, setup, status, first", CASES, ids=[c[0] for c in CASES])
def test_every_wrong_use_is_refused_in_one_line_or_done_right(name, setup, status, first, world):
    argv = setup(world)
    before = snapshot(world / "golden"), snapshot(world / "run")
    code, out, err = run(argv)
    assert code == status, (code, err)
    assert len(err.splitlines()) <= 1 and "Traceback" not in err, err
    assert re.search(first, err.rstrip("\n")), err
    if status == 2:
        assert (snapshot(world / "golden"), snapshot(world / "run")) == before  # nothing written over
        assert out == ""  # refused before any work: no header, no per-job lines
    if name.startswith("compare: the direct sum"):
        assert "dt/dr model: bandwidth scott, direct Gaussian sum" in out
        assert "other density models (e.g." in out and "tell them apart" in out
        assert "fit as well:" not in out and "ratio 1" not in out and " more" not in out  # no count, no "ratio 1"
    if name.startswith("compare: a transposed weight"):
        assert "is the transpose of the expected (4, 3)" in out
    if name.startswith("vectors --from --overwrite"):
        assert "my" not in out and "user case from inputs.npz" in (world / "golden" / "manifest.json").read_text()


# --------------------------------------------------------------------------
# table 2: every file read back, damaged each way


def rewrite_npz(path: Path, change) -> None:
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    np.savez(path, **arrays)


def rewrite_json(path: Path, change) -> None:
    value = json.loads(path.read_text())
    path.write_text(json.dumps(change(value)))


def rename(arrays: dict, old: str, new: str) -> None:
    arrays[new] = arrays.pop(old)


def as_text(arrays: dict, key: str) -> None:
    arrays[key] = np.array([str(v) for v in np.ravel(arrays[key])])


def candidate(w: Path) -> Path:
    ref = make_vectors(case_by_name("ce-tiny"))
    return save(w / "cand.npz", {"case": ref["case"], **{k: ref[k] for k in output_keys(2)}})


def job_name() -> str:
    return all_jobs(["synthetic"], False, None)[0]["name"]


# kind → (the file to damage, the command that reads it)
KINDS = {
    "checkpoint.npz": (lambda w: w / "run" / "checkpoint.npz", lambda w: RESUME + [w / "run"]),
    "config.json (resume)": (lambda w: w / "run" / "config.json", lambda w: RESUME + [w / "run"]),
    "config.json (plot)": (lambda w: w / "run" / "config.json", lambda w: ["plot", w / "run"]),
    "history.json": (lambda w: w / "run" / "history.json", lambda w: ["plot", w / "run"]),
    "steps.npz": (lambda w: w / "run" / "steps.npz", lambda w: ["plot", w / "run"]),
    "params.npz": (lambda w: w / "run" / "params.npz", None),  # read by load_params (no command reads it)
    "result .json": (lambda w: w / "results" / f"{job_name()}.json",
                     lambda w: ["figures", "--only", "synthetic", "--results", w / "results", "--out", w / "f"]),
    "result .npz": (lambda w: w / "results" / f"{job_name()}.npz",
                    lambda w: ["figures", "--only", "synthetic", "--results", w / "results", "--out", w / "f"]),
    "vectors case": (lambda w: w / "golden" / "ce-tiny.npz",
                     lambda w: ["compare", candidate(w), "--vectors", w / "golden"]),
    "manifest.json": (lambda w: w / "golden" / "manifest.json",
                      lambda w: ["compare", candidate(w), "--vectors", w / "golden"]),
    "candidate": (lambda w: candidate(w), lambda w: ["compare", w / "cand.npz"]),
    "inputs": (lambda w: save(w / "inputs.npz", inputs()),
               lambda w: ["vectors", "--from", w / "inputs.npz", "--out", w / "golden", "--name", "mine"]),
    "IDX": (lambda w: w / "mnist" / "train-labels-idx1-ubyte",
            lambda w: ["train", "--data", "mnist", "--data-dir", w / "mnist", "--epochs", "1", "--out", w / "m"]),
}


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


# (kind, damage) → (how to damage the file, what the message says after the path)
DAMAGE = {
    ("checkpoint.npz", "truncated"): (truncate, "is damaged or truncated"),
    ("checkpoint.npz", "empty"): (empty, r"is empty \(0 bytes\)"),
    ("checkpoint.npz", "wrong key"): (lambda p: rewrite_npz(p, lambda a: rename(a, "meta", "metadata")),
                                      "lacks 'meta': not a refprune training checkpoint"),
    ("checkpoint.npz", "wrong dtype"): (lambda p: rewrite_npz(p, lambda a: as_text(a, "state.flat_w")),
                                        "key 'state.flat_w' holds <U.* data where numbers are expected"),
    ("checkpoint.npz", "wrong shape"): (lambda p: rewrite_npz(p, lambda a: a.update({"state.flat_w": np.zeros(3)})),
                                        r"state\.flat_w has shape \(3,\), the run's is \(16,\)"),
    ("checkpoint.npz", "wrong metadata type"): (lambda p: rewrite_npz(p, lambda a: a.update(meta=np.array("[]"))),
                                                r"its metadata \('meta'\) is a JSON list, not an object"),
    ("config.json (resume)", "truncated"): (truncate, "is damaged or truncated: not valid JSON"),
    ("config.json (resume)", "empty"): (empty, "is empty: expected a run's configuration"),
    ("config.json (resume)", "wrong JSON type"): (lambda p: p.write_text("[]"),
                                                  "holds a JSON list where a JSON object is expected"),
    ("config.json (resume)", "wrong key"): (
        lambda p: rewrite_json(p, lambda c: {("methd" if k == "method" else k): v for k, v in c.items()}),
        "lacks 'method': not a run's configuration"),
    ("config.json (resume)", "wrong dtype"): (lambda p: rewrite_json(p, lambda c: {**c, "layers": "1,8,1"}),
                                              "'layers' is \"1,8,1\" where a list of at least two sizes"),
    ("config.json (plot)", "truncated"): (truncate, "is damaged or truncated: not valid JSON"),
    ("config.json (plot)", "empty"): (empty, "is empty"),
    ("config.json (plot)", "wrong JSON type"): (lambda p: p.write_text("[]"), "holds a JSON list where a JSON object"),
    ("config.json (plot)", "wrong key"): (
        lambda p: rewrite_json(p, lambda c: {k: v for k, v in c.items() if k != "data"}), "lacks 'data'"),
    ("config.json (plot)", "wrong dtype"): (lambda p: rewrite_json(p, lambda c: {**c, "method": 3}),
                                            "'method' is a JSON number where a string is expected"),
    ("history.json", "truncated"): (truncate, "is damaged or truncated: not valid JSON"),
    ("history.json", "empty"): (empty, "is empty: expected a run's per-epoch history"),
    ("history.json", "wrong JSON type"): (lambda p: p.write_text("{}"), "holds a JSON object where a JSON list"),
    ("history.json", "wrong key"): (
        lambda p: rewrite_json(p, lambda h: [{("ep" if k == "epoch" else k): v for k, v in h[0].items()}] + h[1:]),
        "lacks 'epoch': not a run's per-epoch history .*: record 1"),
    ("history.json", "wrong dtype"): (lambda p: rewrite_json(p, lambda h: [{**h[0], "r": "0.5"}] + h[1:]),
                                      "record 1: 'r' is a JSON string where a number"),
    ("steps.npz", "truncated"): (truncate, "is damaged or truncated"),
    ("steps.npz", "empty"): (empty, r"is empty \(0 bytes\)"),
    ("steps.npz", "wrong key"): (lambda p: rewrite_npz(p, lambda a: rename(a, "tau", "temperature")),
                                 "lacks 'tau': not a run's per-step trace"),
    ("steps.npz", "wrong dtype"): (lambda p: rewrite_npz(p, lambda a: as_text(a, "r")),
                                   "key 'r' holds <U.* data where numbers are expected"),
    ("steps.npz", "wrong shape"): (lambda p: rewrite_npz(p, lambda a: a.update(r=np.zeros((2, 2, 2)))),
                                   r"key 'r' has shape \(2, 2, 2\)"),
    ("params.npz", "truncated"): (truncate, "is damaged or truncated"),
    ("params.npz", "empty"): (empty, r"is empty \(0 bytes\)"),
    ("params.npz", "wrong key"): (lambda p: rewrite_npz(p, lambda a: a.pop("b2")), "lacks 'b2'"),
    ("params.npz", "wrong dtype"): (lambda p: rewrite_npz(p, lambda a: a.update(W1=a["W1"].astype(np.int64))),
                                    "key 'W1' holds int64 data where floats are expected"),
    ("params.npz", "wrong shape"): (lambda p: rewrite_npz(p, lambda a: a.update(W2=np.zeros((3, 1), np.float32))),
                                    r"W2 of shape \(3, 1\) and b2 of shape \(1,\) do not chain"),
    ("result .json", "truncated"): (truncate, "is damaged or truncated: not valid JSON"),
    ("result .json", "empty"): (empty, "is empty: expected a sweep result"),
    ("result .json", "wrong JSON type"): (lambda p: p.write_text("[]"), "holds a JSON list where a JSON object"),
    ("result .json", "wrong key"): (lambda p: rewrite_json(p, lambda r: {"jb": r["job"], "seconds": 1.5}),
                                    "lacks its 'job'"),
    ("result .json", "wrong dtype"): (lambda p: rewrite_json(p, lambda r: {**r, "seconds": "fast"}),
                                      "'seconds' is a JSON string where a number is expected"),
    ("result .npz", "truncated"): (truncate, "is damaged or truncated"),
    ("result .npz", "empty"): (empty, r"is empty \(0 bytes\)"),
    ("result .npz", "wrong dtype"): (lambda p: rewrite_npz(p, lambda a: as_text(a, "trace")),
                                     "key 'trace' holds <U.* data where numbers are expected"),
    ("vectors case", "truncated"): (truncate, "is damaged or truncated"),
    ("vectors case", "empty"): (empty, r"is empty \(0 bytes\)"),
    ("vectors case", "wrong key"): (lambda p: rewrite_npz(p, lambda a: a.pop("x")), "vectors file lacks keys x$"),
    ("vectors case", "wrong dtype"): (lambda p: rewrite_npz(p, lambda a: as_text(a, "W1")),
                                      "key 'W1' holds <U.* data where numbers are expected"),
    ("vectors case", "modified"): (lambda p: rewrite_npz(p, lambda a: a.update(loss=a["loss"] + 1)),
                                   "does not match the sha256 in manifest.json"),
    ("manifest.json", "truncated"): (truncate, "is damaged or truncated: not valid JSON"),
    ("manifest.json", "empty"): (empty, "is empty: expected a golden-vectors manifest"),
    ("manifest.json", "wrong JSON type"): (lambda p: p.write_text("[]"), "holds a JSON list where a JSON object"),
    ("manifest.json", "wrong key"): (
        lambda p: rewrite_json(p, lambda m: {("entries" if k == "cases" else k): v for k, v in m.items()}),
        "lacks a list of 'cases'"),
    ("manifest.json", "wrong dtype"): (lambda p: rewrite_json(p, lambda m: {**m, "cases": ["ce-tiny"]}),
                                       "case entry 1 is not an object with a 'name' and a 'file'"),
    ("candidate", "truncated"): (truncate, "is damaged or truncated"),
    ("candidate", "empty"): (empty, r"is empty \(0 bytes\): expected a candidate \.npz"),
    ("candidate", "wrong key"): (lambda p: rewrite_npz(p, lambda a: rename(a, "case", "name")),
                                 "candidate has no 'case' key naming the vectors case"),
    ("candidate", "wrong dtype"): (lambda p: rewrite_npz(p, lambda a: a.update(grad_W2=np.zeros((3, 3), np.int64))),
                                   "grad_W2 has dtype int64; outputs must be float32 or float64"),
    ("candidate", "pickled objects"): (lambda p: np.savez(p, case=np.array("ce-tiny"), t=np.array([None])),
                                       "key 't' holds Python objects"),
    ("inputs", "truncated"): (truncate, "is damaged or truncated"),
    ("inputs", "empty"): (empty, r"is empty \(0 bytes\): expected an inputs \.npz"),
    ("inputs", "wrong key"): (lambda p: rewrite_npz(p, lambda a: rename(a, "x", "X")), "inputs lack x"),
    ("inputs", "wrong dtype"): (lambda p: rewrite_npz(p, lambda a: as_text(a, "W1")),
                                "key 'W1' holds <U.* data where numbers are expected"),
    ("IDX", "truncated"): (truncate, "the file is truncated or its header is damaged"),
    ("IDX", "empty"): (empty, r"too short for an IDX header: 0 byte\(s\)"),
    ("IDX", "wrong dtype"): (lambda p: write_idx(p, np.zeros(20, np.float32)),
                             r"expected labels as 1-D unsigned bytes \(dtype code 0x08\), found 1-D 0x0D"),
    ("IDX", "wrong header"): (lambda p: p.write_bytes(b"\x01\x02" + p.read_bytes()[2:]), "bad magic number"),
}


@pytest.mark.parametrize("kind, damage", list(DAMAGE), ids=[f"{k} {d}" for k, d in DAMAGE])
def test_every_damaged_file_is_named_with_what_is_wrong(kind, damage, world):
    target, command = KINDS[kind]
    path = target(world)
    argv = command(world) if command else None
    spoil, says = DAMAGE[(kind, damage)]
    spoil(path)
    if argv is None:  # a file no command reads back: its reader's error is the same one line
        with pytest.raises(ValueError) as err:
            load_params(path)
        assert re.match(f"{path}: {says}", str(err.value)), str(err.value)
        return
    before = snapshot(world)
    code, out, err = run(argv)
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err and out == "", err
    assert err.startswith(f"refprune {argv[0]}: error: {path}: "), err
    assert re.search(says, err), err
    after = snapshot(world)
    assert {p: b for p, b in after.items() if p in before} == before  # nothing written over
    assert not set(after) - set(before)  # and nothing written (no run.png, no case file, no figure)


def test_the_tables_cover_every_kind_and_damage():
    """The note's count: every listed case, and every file kind damaged each way that applies to it."""
    kinds = {kind for kind, _ in DAMAGE}
    assert kinds == set(KINDS)
    for kind in kinds:  # truncated and empty for every kind; a key and a dtype for every kind that has them
        assert {(kind, "truncated"), (kind, "empty")} <= set(DAMAGE)
    json_kinds = [k for k in KINDS if ".json" in k]
    assert all((k, "wrong JSON type") in DAMAGE and (k, "wrong key") in DAMAGE for k in json_kinds)
    assert all((k, "wrong dtype") in DAMAGE for k in KINDS)
    assert len(CASES) + len(DAMAGE) >= 90


# --------------------------------------------------------------------------
# the ranges are a property of each configuration field


@pytest.mark.parametrize("cls, command", [(TrainConfig, "train"), (TaskSpec, "train"), (Case, "gradcheck")])
def test_every_numeric_field_has_a_range_that_help_states(cls, command):
    import dataclasses

    text = " ".join(build_parser()._subparsers._group_actions[0].choices[command].format_help().split())
    for f in dataclasses.fields(cls):
        if isinstance(f.default, (int, float)) and not isinstance(f.default, bool) or f.name in ("band",):
            bounds = f.metadata.get("range")
            assert bounds is not None, f"{cls.__name__}.{f.name} has no range"
            if f.metadata.get("cli", True):
                assert f"must be {bounds.text()}" in text, f.name


def test_quick_figures_with_out_and_results_leave_nothing_in_the_temp_directory(tmp_path, monkeypatch):
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    code, _, err = run(["figures", "--quick", "--only", "synthetic", "--scheduler", "local:0",
                        "--results", tmp_path / "r", "--out", tmp_path / "f"])
    assert code == 2 and "local:N needs N >= 1" in err
    assert not list(temp.iterdir())
    code, _, _ = run(["figures", "--quick", "--only", "synthetic", "--scheduler", "local:0"])
    assert code == 2 and not list(temp.iterdir())  # a temporary directory that stayed empty is removed
