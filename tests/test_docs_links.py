"""docs/derivations.md: every link resolves, every cited symbol exists, every formula section is backed.

Rules checked (they are what keeps the derivations honest as the code moves):

1. Every relative Markdown link ``[label](target)`` in the document points to a
   file or directory that exists (resolved from ``docs/``). Web links
   (``http(s)://``, ``mailto:``) and in-page anchors (``#...``) are not checked.
2. A link whose label has the form ``path: symbol`` is a *code link*: its
   target must be ``../path`` (the same path as the label), and ``symbol`` must
   be defined in that file —
   - in ``tests/``: a test function (``def test_...``) of that name, at module
     level or in a test class;
   - elsewhere (Python): a ``def`` or ``class`` of that name at any depth, or a
     module-level assignment (a constant); ``Class.method`` names a method.
3. A *formula section* is a ``##`` heading whose title starts with a number
   ("## 3. The weight gradient ..."); it runs to the next ``##`` heading and
   includes its ``###`` subsections. Unnumbered ``##`` sections (notation,
   errata) are exempt. Every formula section must hold at least one code link
   into ``refprune/`` and one into ``tests/``, and the numbers must run 1, 2, 3,
   ... in order.
4. The errata section (``## Errata``) exists, and each of its ``###`` items
   carries at least one fenced code block: the command that shows the evidence.

Only the standard library is used; the whole check parses a dozen files once
and runs in a few tens of milliseconds.
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "derivations.md"

# [label](target) — target without spaces; images (![..](..)) are links too.
LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)\)")
# label of a code link: "path/to/file.ext: symbol" (symbol may be dotted)
CODE_LABEL = re.compile(r"^([\w./-]+\.\w+): ([A-Za-z_][\w.]*)$")
NUMBERED = re.compile(r"^(\d+)\.\s")


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def strip_code_blocks(text: str) -> str:
    """The text with fenced code blocks and inline code spans removed (links inside
    code are examples, not links)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]+`", "", text)


def links(text: str) -> list[tuple[str, str]]:
    return LINK.findall(strip_code_blocks(text))


def is_relative(target: str) -> bool:
    return not re.match(r"^(?:[a-z][a-z0-9+.-]*:|#)", target, re.I)


def code_links(text: str) -> list[tuple[str, str, str]]:
    """(label path, symbol, target) of every ``[path: symbol](target)`` link."""
    out = []
    for label, target in links(text):
        m = CODE_LABEL.match(label.strip("`"))
        if m:
            out.append((m.group(1), m.group(2), target))
    return out


@lru_cache(maxsize=None)
def defined_names(path: Path) -> frozenset:
    """Names a Python file defines: defs and classes at any depth (methods also as
    ``Class.method``) and module-level assignment targets."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()

    def visit(node, prefix=""):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(child.name)
                names.add(prefix + child.name)
                visit(child, prefix + child.name + "." if isinstance(child, ast.ClassDef) else prefix)
            else:
                visit(child, prefix)

    visit(tree)
    for node in tree.body:
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            for leaf in ast.walk(target):
                if isinstance(leaf, ast.Name):
                    names.add(leaf.id)
    return frozenset(names)


@lru_cache(maxsize=None)
def defined_tests(path: Path) -> frozenset:
    """Names of the test functions of a test module (module level or in classes)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return frozenset(node.name for node in ast.walk(tree)
                     if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                     and node.name.startswith("test"))


def sections(text: str, level: int = 2) -> list[tuple[str, str]]:
    """(title, body) of each heading of the given level; the body runs to the next
    heading of that level or higher. Headings inside code blocks are ignored."""
    plain = strip_code_blocks(text)
    marks = "#" * level
    pattern = re.compile(rf"^{marks} (?!#)(.+)$", re.M)
    stop = re.compile(rf"^#{{1,{level}}} (?!#)", re.M)
    out = []
    for m in pattern.finditer(plain):
        nxt = stop.search(plain, m.end())
        out.append((m.group(1).strip(), plain[m.end():nxt.start() if nxt else len(plain)]))
    return out


def link_kind(target: str) -> str | None:
    """'code' for a target under refprune/, 'test' under tests/, else None."""
    rel = target[3:] if target.startswith("../") else target
    if rel.startswith("refprune/"):
        return "code"
    if rel.startswith("tests/"):
        return "test"
    return None


# ---------------------------------------------------------------- the checks


def test_document_exists_and_has_links():
    assert DOC.is_file(), f"{DOC} is missing"
    assert len(code_links(doc_text())) >= 20


def test_every_relative_link_resolves():
    broken = []
    for label, target in links(doc_text()):
        if not is_relative(target):
            continue
        path = (DOC.parent / target.split("#", 1)[0]).resolve()
        if not path.exists():
            broken.append(f"[{label}]({target})")
    assert not broken, "links to missing files: " + ", ".join(broken)


def test_every_code_link_names_its_file_and_a_defined_symbol():
    problems = []
    for label_path, symbol, target in code_links(doc_text()):
        if target.split("#", 1)[0] != f"../{label_path}":
            problems.append(f"[{label_path}: {symbol}]({target}): target is not ../{label_path}")
            continue
        path = ROOT / label_path
        if not path.is_file():
            problems.append(f"{label_path}: no such file")
        elif path.suffix != ".py":
            problems.append(f"{label_path}: symbols can only be checked in Python files")
        elif label_path.startswith("tests/"):
            if symbol not in defined_tests(path):
                problems.append(f"{label_path}: no test function {symbol}")
        elif symbol not in defined_names(path):
            problems.append(f"{label_path}: {symbol} is not defined there")
    assert not problems, "\n".join(problems)


def test_every_formula_section_links_code_and_a_test():
    text = doc_text()
    numbered = [(title, body) for title, body in sections(text) if NUMBERED.match(title)]
    assert numbered, "no numbered (formula) sections found"
    numbers = [int(NUMBERED.match(title).group(1)) for title, _ in numbered]
    assert numbers == list(range(1, len(numbers) + 1)), f"sections numbered {numbers}"
    missing = []
    for title, body in numbered:
        kinds = {link_kind(target) for _, _, target in code_links(body)}
        for kind in ("code", "test"):
            if kind not in kinds:
                missing.append(f"'{title}' has no {kind} link")
    assert not missing, "\n".join(missing)


def test_every_erratum_carries_a_command():
    text = doc_text()
    errata = [body for title, body in sections(text) if title.lower().startswith("errata")]
    assert len(errata) == 1, "exactly one '## Errata' section expected"
    # sections() blanks code blocks, so look the items up in the raw text
    raw = text[text.index("## Errata"):]
    nxt = re.search(r"^## (?!#)", raw[3:], re.M)
    raw = raw[:nxt.start() + 3] if nxt else raw
    items = re.split(r"^### ", raw, flags=re.M)[1:]
    assert items, "the errata section has no ### items"
    without = [item.splitlines()[0] for item in items if "```" not in item]
    assert not without, "errata without an evidence command: " + "; ".join(without)


@pytest.mark.parametrize("label, ok", [
    ("refprune/core/masks.py: soft_mask_and_slope", True),
    ("tests/test_masks.py: test_mask_is_even_in_w", True),
    ("refprune/oracle/evaluator.py: Evaluator.derivative", True),
    ("README.md", False), ("refprune/core/masks.py soft_mask", False),
])
def test_code_label_pattern(label, ok):
    assert bool(CODE_LABEL.match(label)) is ok
