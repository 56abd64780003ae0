"""docs/vectors.md sections 8 and 9 run as written: the own case, and the pytest file."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from refprune.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "vectors.md"

# The stand-in for a user's port: the NumPy implementation of tests/test_compare.py, fed the
# inputs as a port reads them ((in, out), defaults filled in), its outputs written back in the
# inputs' layout. DEFECT is planted on request: P2's sign of dt/dr.
MY_LRP = '''
import numpy as np
from test_compare import naive_pass

from refprune.vectors.schema import scalar
from refprune.vectors.user_cases import layout_of, normalised_inputs

DEFECT = {defect!r}


def lrp_outputs(inputs):
    data = normalised_inputs(inputs)
    out = naive_pass(data)
    if DEFECT:
        out["dt_dr"] = -out["dt_dr"]
        out["grad_r"] = out["dt_dr"] * out["grad_t"] + 2 * scalar(data, "lam") * (scalar(data, "r") - 1)
    if layout_of(inputs) == "out_in":
        out = {{key: (v.T if np.ndim(v) == 2 else v) for key, v in out.items()}}
    return out
'''


def section(title, end=None):
    """The text of one section of docs/vectors.md."""
    text = DOC.read_text(encoding="utf-8").split(title, 1)[1]
    return text.split(end, 1)[0] if end else text


def example_blocks():
    """(language, code) of every fenced block of section 8, in order."""
    return re.findall(r"^```(python|bash)\n(.*?)^```", section("## 8. Your own case", "\n## 9."),
                      flags=re.S | re.M)


def run_section_8(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    blocks = example_blocks()
    assert [lang for lang, _ in blocks] == ["python", "bash", "python", "bash"]
    for lang, code in blocks:
        if lang == "python":
            exec(compile(code, "docs/vectors.md", "exec"), {})
            continue
        for line in code.strip().splitlines():
            args = shlex.split(line)
            assert args[0] == "refprune"
            assert main(args[1:]) == 0, capsys.readouterr()
    return capsys.readouterr().out


def test_the_own_case_example_runs(tmp_path, monkeypatch, capsys):
    out = run_section_8(tmp_path, monkeypatch, capsys)
    assert "verdict: PASS" in out and "computed" not in out  # the reference came from myvectors


def run_pytest_file(folder, defect):
    (folder / "my_lrp.py").write_text(MY_LRP.format(defect=defect), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "-W", "ignore::pytest.PytestUnknownMarkWarning", "test_lrp_port.py"]  # test_compare's marks
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_the_pytest_file_runs_and_a_planted_defect_fails_with_its_diagnosis(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"^```python\n(.*?)^```", section("## 9. In your own test suite"), flags=re.S | re.M)
    assert len(blocks) == 1 and blocks[0].startswith("# test_lrp_port.py")
    run_section_8(tmp_path, monkeypatch, capsys)  # writes inputs.npz (PyTorch layout), as section 9 uses it
    (tmp_path / "test_lrp_port.py").write_text(blocks[0], encoding="utf-8")
    good = run_pytest_file(tmp_path, defect=False)
    assert good.returncode == 0 and "5 passed" in good.stdout, good.stdout + good.stderr
    bad = run_pytest_file(tmp_path, defect=True)
    assert bad.returncode == 1 and "5 failed" in bad.stdout, bad.stdout + bad.stderr
    report = bad.stdout
    assert len(re.findall(r"^E +AssertionError: compare  case=", report, flags=re.M)) == 5, report
    diagnosis = r"^E +diagnosis: sign flip of dt/dr \(the sign of METHOD §6 P2\) \[dt_dr_sign\]$"
    assert len(re.findall(diagnosis, report, flags=re.M)) == 5, report
    assert "FAIL" in report and "max rel err" in report  # the per-quantity table is in the message
