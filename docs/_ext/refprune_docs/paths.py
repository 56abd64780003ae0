"""Where things are: the docs folder, the repository root, the generated pages."""

from pathlib import Path

DOCS = Path(__file__).resolve().parents[2]
ROOT = DOCS.parent
GENERATED = DOCS / "generated"
