"""The package's import graph, read statically (ast), has no circle; each subpackage imports only
the subpackages its folder may (the layers below); no module in refprune/ is over about 500 lines.

Every ``import``/``from ... import`` of a refprune module counts, at module level and inside
functions alike (an import hidden in a function still closes a circle). An edge goes to the
module named; ``from .pkg import name`` goes to ``pkg.name`` when that is a module of the
package, else to ``pkg`` itself. Importing a submodule also runs its package's __init__, but
that implicit edge is left out: it would make every package a circle with its own members.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "refprune"
# The project's rule: about 500 lines per module at most.
MAX_LINES = 500

# The folder rules: which subpackages each subpackage may import (besides itself). The plain math
# (core) reaches nothing; the density builds on it; the reference pass on both; the oracle, the
# golden vectors and training on those; nothing imports the experiments or the CLI but the CLI.
# util (atomic files, option fields) and data hold no mathematics of the method.
LAYERS = {
    "core": set(),
    "util": {"top"},
    "density": {"core"},
    "lrp": {"core", "density"},
    "data": {"core", "util"},
    "oracle": {"core", "density", "lrp", "data", "util"},
    "vectors": {"core", "density", "lrp", "oracle", "data", "util", "top"},
    "train": {"core", "density", "lrp", "data", "util"},
    "experiments": {"core", "density", "lrp", "data", "util", "train", "oracle", "vectors"},
    "cli": {"core", "density", "lrp", "data", "util", "train", "oracle", "vectors", "experiments", "top"},
}
# The top level holds only these files; everything else lives in a subpackage.
TOP_LEVEL_FILES = {"__init__.py", "__main__.py"}


def module_name(path: Path) -> str:
    """Dotted name of a file of the package: refprune/train/steps/exact.py -> refprune.train.steps.exact."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def resolve(importer: str, node: ast.ImportFrom) -> str:
    """Absolute name of the module a ``from`` import names (relative levels resolved)."""
    if node.level == 0:
        return node.module or ""
    package = importer if MODULES[importer].name == "__init__.py" else importer.rpartition(".")[0]
    base = package.split(".")
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str) -> set:
    """refprune modules that module ``name`` imports anywhere in its source (functions too)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            target = resolve(name, node)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
    return {mod for mod in found if mod in MODULES and mod != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def short(name: str) -> str:
    return name.removeprefix("refprune.")


def test_the_graph_sees_hidden_and_package_imports():
    # Guards the walker itself: an in-function import, and `from . import x` of a submodule.
    assert "refprune.experiments.sweep" in GRAPH["refprune.experiments.figures"]  # imported inside run_figures
    assert "refprune.experiments.figures.mnist" in GRAPH["refprune.experiments.figures"]  # from . import mnist


def test_no_import_circle_in_the_package():
    state = {}

    def visit(name, path):
        if state.get(name) == "done":
            return
        assert state.get(name) != "open", "import circle: " + " -> ".join(
            short(n) for n in path[path.index(name):] + [name])
        state[name] = "open"
        for dep in sorted(GRAPH[name]):
            visit(dep, path + [name])
        state[name] = "done"

    for name in MODULES:
        visit(name, [])


def folder(name: str) -> str:
    """The subpackage a module belongs to ("top" for refprune/__init__.py and __main__.py)."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] != "__main__" else "top"


def test_the_top_level_holds_only_init_main_and_subpackages():
    files = {p.name for p in PKG.glob("*.py")}
    assert files == TOP_LEVEL_FILES, sorted(files - TOP_LEVEL_FILES)
    assert {folder(n) for n in MODULES} - {"top"} == set(LAYERS)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if folder(n) != "top"))
def test_module_imports_only_the_subpackages_its_folder_may(name):
    allowed = LAYERS[folder(name)] | {folder(name)}
    bad = sorted(short(dep) for dep in GRAPH[name] if folder(dep) not in allowed)
    assert not bad, f"{short(name)} ({folder(name)}/) may import only {sorted(allowed)}, imports {bad}"


def test_core_imports_only_numpy_scipy_and_itself():
    for name in (n for n in MODULES if folder(n) == "core"):
        tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            roots = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            for root in (r.split(".")[0] for r in roots):
                assert root in ("numpy", "scipy", "refprune", "__future__", "dataclasses", "math", "typing"), \
                    f"{short(name)} imports {root}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_at_most_about_500_lines(name):
    assert len(MODULES[name].read_text(encoding="utf-8").splitlines()) <= MAX_LINES
