"""The one place that decides how many threads training uses.

A training step of the MLP multiplies batch-32 matrices (BLAS) and does
elementwise work over all n weights (NumPy ufuncs, which release the GIL).
``scripts/bench_step.py`` and ``scripts/bench_train.py`` measured, on the
2-core machines this project runs on: one BLAS thread, and a second core for
the elementwise phases (:mod:`refprune.train.parallel`). A second BLAS thread gains
nothing at batch 32 and its spinning competes with the elementwise worker.

:func:`training_threads` applies that choice: every training run calls it
(:func:`refprune.train.loop.train` and the baselines trained with a fixed mask), the
benchmarks call it, and :func:`refprune.train.steps.common.new_workspace` takes its worker
count from :func:`worker_threads`. A user's explicit ``OPENBLAS_NUM_THREADS``
(or ``REFPRUNE_WORKER_THREADS``) is respected.

Results do not depend on these settings: elementwise results are the same
whatever the split, the sums are split at fixed positions (the two halves of
the flat weights) whether or not the worker runs, and OpenBLAS computes each
entry of a product in one thread with a fixed order (docs/performance.md,
"Determinism").
"""

from __future__ import annotations

import ctypes
import os

# What the benchmarks measured (see the module notes).
BLAS_THREADS = 1
WORKER_THREADS = 2
# Names under which OpenBLAS builds export their thread setter (NumPy's wheels
# bundle scipy-openblas, with a 64-bit-integer suffix).
_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads_64_",
            "openblas_set_num_threads64_", "openblas_set_num_threads")


def worker_threads() -> int:
    """Threads for the elementwise phases: REFPRUNE_WORKER_THREADS, else 2 if the machine has 2 cores."""
    value = os.environ.get("REFPRUNE_WORKER_THREADS")
    if value is not None:
        try:
            return max(1, int(value))
        except ValueError:
            raise ValueError(f"REFPRUNE_WORKER_THREADS must be an integer, got {value!r}") from None
    return min(WORKER_THREADS, os.cpu_count() or 1)


def _openblas_libraries() -> list[str]:
    """Paths of the OpenBLAS libraries loaded into this process (Linux: /proc/self/maps)."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line}
    except OSError:
        return []
    return sorted(paths)


def set_blas_threads(count: int) -> bool:
    """Set the loaded OpenBLAS's thread count (ctypes, as threadpoolctl does); True if one was set.

    Without a loaded OpenBLAS (another BLAS, or a platform without
    /proc/self/maps) nothing happens and False is returned: the environment
    variable OPENBLAS_NUM_THREADS, read when NumPy loads, is then the way.
    """
    import numpy  # noqa: F401  (the BLAS is loaded with numpy)
    done = False
    for path in _openblas_libraries():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _SETTERS:
            setter = getattr(lib, name, None)
            if setter is not None:
                setter(ctypes.c_int(int(count)))
                done = True
                break
    return done


def training_threads() -> dict:
    """Apply the measured settings (one BLAS thread unless the user set OPENBLAS_NUM_THREADS).

    Returns
    -------
    dict
        ``blas_threads`` (int, or the user's setting as a string),
        ``blas_set`` (whether a running OpenBLAS was changed) and
        ``worker_threads``.
    """
    user = os.environ.get("OPENBLAS_NUM_THREADS")
    if user is not None:
        return {"blas_threads": user, "blas_set": False, "worker_threads": worker_threads()}
    return {"blas_threads": BLAS_THREADS, "blas_set": set_blas_threads(BLAS_THREADS),
            "worker_threads": worker_threads()}
