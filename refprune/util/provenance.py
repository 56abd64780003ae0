"""Where a result came from: the code that made it and the data it read, without machine paths.

- :func:`code_version`: refprune's version, the git commit of the checkout it runs from and
  whether the package's files differ from that commit (``None`` outside a git checkout).
- :func:`file_digests`: the SHA-256 of data files, named by their base names, so a data set is
  identified by its content wherever it lies.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
from pathlib import Path

import refprune

PACKAGE_DIR = Path(refprune.__file__).resolve().parent
HASH_CHUNK = 1 << 20  # bytes read at a time when hashing a data file


def git(*args: str) -> str | None:
    """Output of a git command run in the package's checkout, or None if there is none (or no git)."""
    try:
        done = subprocess.run(["git", "-C", str(PACKAGE_DIR.parent), *args], capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def code_version() -> dict:
    """``{"refprune": version, "commit": sha or None, "modified": bool or None}`` of the running code.

    ``modified`` is True when tracked files of the package or pyproject.toml differ from the
    commit (untracked result and figure files do not count). Computed once per process.
    """
    commit = git("rev-parse", "HEAD")
    changes = git("status", "--porcelain", "--untracked-files=no", "--", "refprune", "pyproject.toml")
    return {"refprune": refprune.__version__, "commit": commit,
            "modified": None if commit is None or changes is None else bool(changes)}


@functools.lru_cache(maxsize=16)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(HASH_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def file_digests(paths) -> dict:
    """``{base name: SHA-256 hex digest}`` of the given files, in name order (cached per file state)."""
    out = {}
    for p in paths:
        st = os.stat(p)
        out[os.path.basename(p)] = _digest(os.fspath(p), st.st_size, st.st_mtime_ns)
    return dict(sorted(out.items()))
