"""Sphinx extension of refprune's documentation site.

- :mod:`.apipages` — one API page per package, generated from the packages' ``__all__``, and
  the check that every public function and class of those modules has a docstring;
- :mod:`.codelinks` — the Markdown pages' links to files of the repository
  (``[refprune/core/masks.py: soft_mask](../refprune/core/masks.py)``) become links to the
  API reference, or to a highlighted source page with an anchor per definition; each API
  object lists the derivation sections that link to it;
- :mod:`.cli` — the ``refprune-cli`` directive: every command of ``refprune`` with its options,
  read from :func:`refprune.cli.main.build_parser`;
- :mod:`.figures` — the thesis figures page, generated from ``figures/index.json``.
"""

from __future__ import annotations

from pathlib import Path

from refprune_docs import apipages, cli, codelinks, docstrings, figures
from refprune_docs.paths import GENERATED, ROOT


def write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` unless it already holds exactly that (Sphinx rebuilds by mtime)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def generate_pages(app) -> None:
    """builder-inited: write the generated pages before Sphinx looks for sources."""
    for name, text in apipages.pages().items():
        write_if_changed(GENERATED / "api" / f"{name}.rst", text)
    write_if_changed(GENERATED / "figures.md", figures.page(ROOT))
    apipages.check_docstrings()


def setup(app):
    app.connect("builder-inited", generate_pages)
    apipages.setup(app)
    codelinks.setup(app)
    cli.setup(app)
    docstrings.setup(app)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
