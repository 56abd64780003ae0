"""Sphinx configuration of refprune's documentation site.

Build (from the repository root, after ``pip install -e ".[docs]"``)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The Markdown pages of docs/ are the source (MyST); the API reference, the command reference
and the thesis figures page are generated at build time (docs/_ext/refprune_docs.py, into
docs/generated/); the gallery's scripts under docs/examples/ run at build time
(sphinx-gallery).
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # document this checkout's refprune, whatever is installed
sys.path.insert(0, str(DOCS / "_ext"))

import refprune  # noqa: E402

project = "refprune"
author = "refprune contributors"
copyright = "refprune contributors"
release = version = refprune.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "refprune_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "examples/GALLERY_HEADER.rst", "generated/gallery/*.ipynb",
                    "generated/gallery/*.py", "generated/gallery/*.zip", "generated/gallery/*.json"]
templates_path = []

# --- MyST: the Markdown pages as they are on a code host, with $$ … $$ display math.
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 6  # [text](page.md#a-heading) links, GitHub's anchors
myst_dmath_double_inline = True

# --- autodoc / numpydoc
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"  # the numpydoc Parameters sections give the types
autodoc_mock_imports = []
autosummary_generate = False
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()

# Broken references fail the build: every reference into refprune must resolve. Names outside
# refprune (NumPy, the standard library) are not linked (no network at build time).
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"(?!refprune\b).*")]

# --- HTML
html_theme = "pydata_sphinx_theme"
html_title = f"refprune {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_align": "left",
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_static_path = []
# The long single pages have no section navigation: give their width to the text and equations.
html_sidebars = {page: [] for page in ("index", "METHOD", "derivations", "studies", "cli", "training", "vectors",
                                       "performance", "protocol", "sweeps", "generated/figures")}
html_show_sourcelink = False

# --- sphinx-gallery: docs/examples/*.py, run at build time
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "generated/gallery",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "within_subsection_order": "FileNameSortKey",
    "write_computation_times": False,
    "min_reported_time": 1e9,
    "show_memory": False,
    "reference_url": {},
}
