"""docs/vectors.md section 8 ("Your own case") runs as written and its comparison passes."""

import re
import shlex
from pathlib import Path

from refprune.cli.main import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "vectors.md"


def example_blocks():
    """(language, code) of every fenced block of section 8, in order."""
    section = DOC.read_text(encoding="utf-8").split("## 8. Your own case", 1)[1]
    return re.findall(r"^```(python|bash)\n(.*?)^```", section, flags=re.S | re.M)


def test_the_own_case_example_runs(tmp_path, monkeypatch, capsys):
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
    out = capsys.readouterr().out
    assert "verdict: PASS" in out and "computed" not in out  # the reference came from myvectors
