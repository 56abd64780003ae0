"""The package's import graph, read statically (ast), has no circle; the math modules import
nothing from training, figures or the CLI; no module in refprune/ is over about 500 lines.

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

# The math: pure functions of arrays, the method itself and its numerics (METHOD §1–§6).
MATH = ("layers", "mlp", "losses", "threshold", "masks", "kde", "binned", "published_density",
        "quantile", "density", "gradients", "lrp", "layerwise", "quantile_check", "optim", "band",
        "validation", "tolerances")
# Training, run directories, sweeps, figures and the CLI: the math must not reach any of them.
FORBIDDEN = ("train", "rundir", "steps", "sweep", "sweep_dask", "experiments", "jobs_data",
             "figures", "cli", "cli_options", "cli_vectors", "checkpoint", "progress", "plot_run",
             "protocol", "export")


def module_name(path: Path) -> str:
    """Dotted name of a file of the package: refprune/steps/exact.py -> refprune.steps.exact."""
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
    assert "refprune.sweep" in GRAPH["refprune.figures"]  # imported inside run_figures
    assert "refprune.figures.mnist" in GRAPH["refprune.figures"]  # from . import mnist
    assert "refprune.steps.exact" in GRAPH["refprune.steps"]


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


def test_the_math_and_forbidden_lists_name_real_modules():
    names = {short(n) for n in MODULES}
    assert set(MATH) <= names and set(FORBIDDEN) <= names


@pytest.mark.parametrize("name", MATH)
def test_math_module_imports_no_training_figures_or_cli(name):
    forbidden = {mod for mod in MODULES if short(mod).split(".")[0] in FORBIDDEN}
    reached, todo = set(), [f"refprune.{name}"]
    while todo:  # transitively: a math module may not reach them through another module
        for dep in GRAPH[todo.pop()] - reached:
            reached.add(dep)
            todo.append(dep)
    assert not reached & forbidden, sorted(short(m) for m in reached & forbidden)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_at_most_about_500_lines(name):
    assert len(MODULES[name].read_text(encoding="utf-8").splitlines()) <= MAX_LINES
