"""Two-way splitting of elementwise work across threads.

NumPy's ufuncs release the GIL on large arrays, and the BLAS threads sit idle
between matrix products, so the elementwise phases of a training step
(masks, extra gradients, density sum, Adam) can use a second core. Work is
split into a part submitted to a worker thread and a part run in the calling
thread; with ``pool`` None everything runs in the calling thread. Elementwise
results do not depend on the split; sums are split at fixed positions, so they
are deterministic too.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from refprune.train.threads import worker_threads

# Below this many elements a hand-off to the worker (tens of microseconds)
# costs more than the elementwise work it would take over.
PARALLEL_MIN_SIZE = 65536


def make_pool(threads: int | None, size: int = PARALLEL_MIN_SIZE):
    """A one-worker pool when two or more threads are wanted (the caller is the other).

    ``threads`` None means: :func:`refprune.train.threads.worker_threads` (two if the
    machine has them) when the arrays have at least ``PARALLEL_MIN_SIZE``
    elements, else one.
    """
    if threads is None:
        threads = worker_threads() if size >= PARALLEL_MIN_SIZE else 1
    return ThreadPoolExecutor(max_workers=1) if threads >= 2 else None


def split_run(pool, first, rest):
    """Run ``first()`` on the worker and ``rest()`` here; return (first's, rest's) results."""
    if pool is None:
        return first(), rest()
    future = pool.submit(first)
    rest_result = rest()
    return future.result(), rest_result


def halves(n: int) -> tuple[slice, slice]:
    """The two halves of range(n) as slices."""
    mid = n // 2
    return slice(0, mid), slice(mid, n)
