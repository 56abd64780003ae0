"""Docstrings as reStructuredText: the plain-text math of refprune's docstrings kept as written.

refprune's docstrings write magnitudes as ``|w|`` (Unicode math in plain text, as in
docs/derivations.md). In reStructuredText ``|w|`` is a substitution reference, and a line that
starts with ``|`` is a line block. Before numpydoc reads a docstring, every ``|`` outside
inline literals, roles, literal blocks and doctest blocks is escaped, so it prints as written.
"""

from __future__ import annotations

import re

# inline literals, roles (:func:`x`), interpreted text and hyperlink references: left as they are
MARKUP = re.compile(r"(``.+?``|:[\w:.+-]+:`[^`]+`|`[^`]+`_{0,2})")


def escape_bars(line: str) -> str:
    """``|`` → ``\\|`` outside the line's inline markup."""
    parts = MARKUP.split(line)
    return "".join(part if i % 2 else part.replace("|", r"\|") for i, part in enumerate(parts))


def indent_of(line: str) -> int:
    return len(line) - len(line.lstrip())


def escape_lines(lines: list) -> list:
    """The lines with ``|`` escaped outside literal blocks (after ``::``) and doctest blocks."""
    out, doctest, literal_at = [], False, None
    for line in lines:
        stripped = line.strip()
        if not stripped:
            doctest = False
            out.append(line)
            continue
        if literal_at is not None and indent_of(line) <= literal_at:
            literal_at = None
        if stripped.startswith(">>>"):
            doctest = True
        if doctest or literal_at is not None:
            out.append(line)
            continue
        out.append(escape_bars(line))
        if stripped.endswith("::"):
            literal_at = indent_of(line)
    return out


def escape_docstring(app, what, name, obj, options, lines) -> None:
    """autodoc-process-docstring, before numpydoc."""
    lines[:] = escape_lines(lines)


def setup(app) -> None:
    app.connect("autodoc-process-docstring", escape_docstring, priority=100)
