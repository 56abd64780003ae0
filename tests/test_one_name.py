"""One name, one meaning: each module-level constant of refprune is defined in one module and
imported wherever else it is needed (a second definition can drift from the first)."""

import ast
from collections import defaultdict
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "refprune"
# The figure-group interface: every module in refprune/experiments/figures/ that makes a group states its
# own NAME, PROTOCOL and (where it has sizes) FULL and QUICK settings; the same meaning in each,
# read as GROUPS[name].PROTOCOL and so on, so one name per group is the point.
GROUP_INTERFACE = {"NAME", "PROTOCOL", "FULL", "QUICK"}


def constants(path: Path) -> set:
    """UPPER_CASE names assigned at module level in one file."""
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else [])
        names |= {t.id for t in targets if isinstance(t, ast.Name) and t.id.isupper()}
    return names


def test_each_constant_is_defined_in_one_module():
    where = defaultdict(list)
    for path in sorted(PKG.rglob("*.py")):
        for name in constants(path):
            where[name].append(str(path.relative_to(PKG)))
    repeated = {name: files for name, files in where.items() if len(files) > 1}
    assert not {n: f for n, f in repeated.items() if n not in GROUP_INTERFACE}, repeated
    assert where["R_MAX"] == ["core/optim.py"] and where["THRESHOLD_RULES"] == ["density/quantile.py"]
