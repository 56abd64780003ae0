"""The oracle's modules (gradcheck, vectors, compare, diagnosis, density) form no import circle,
depend on no training, figures or CLI code, and stay small (one concept each)."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "refprune"
ORACLE = ("band", "gradcheck", "gradcheck_case", "vectors", "vectors_schema", "vectors_files",
          "vectors_from", "tolerances", "compare", "defects", "diagnose_search", "diagnose",
          "density", "kde", "binned", "published_density", "quantile")
FORBIDDEN = ("train", "steps", "figures", "cli", "cli_vectors", "experiments", "sweep", "rundir")
# The project's rule: about 500 lines per module at most.
MAX_LINES = 500


def imports_of(name: str) -> set:
    """Package-relative modules imported anywhere in refprune/<name>.py (in functions too)."""
    tree = ast.parse((PKG / f"{name}.py").read_text(encoding="utf-8"))
    return {node.module.split(".")[0] for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module}


def test_no_import_circle_among_the_oracle_modules():
    graph = {name: imports_of(name) & set(ORACLE) for name in ORACLE}
    state = {}

    def visit(name, path):
        if state.get(name) == "done":
            return
        assert state.get(name) != "open", " -> ".join(path + [name])
        state[name] = "open"
        for dep in sorted(graph[name]):
            visit(dep, path + [name])
        state[name] = "done"

    for name in ORACLE:
        visit(name, [])


@pytest.mark.parametrize("name", ORACLE)
def test_oracle_module_is_small_and_independent_of_training(name):
    assert not imports_of(name) & set(FORBIDDEN)
    assert len((PKG / f"{name}.py").read_text(encoding="utf-8").splitlines()) <= MAX_LINES
