"""Running a sweep's jobs as tasks on a Dask cluster (the optional ``cluster`` extra).

``scheduler`` is either the address of a running Dask scheduler (``dask
scheduler`` with ``dask worker``s, or one that dask-jobqueue or a cloud
deployment starts), e.g. ``tcp://10.0.0.5:8786``, or ``local:N``: a
LocalCluster of N single-threaded worker processes on 127.0.0.1, started
here and closed at the end.

Each job is one task: it computes its result on a worker and returns it to
the client, which writes it (:func:`refprune.experiments.sweep.run_sweep`). A task whose
worker is lost (killed process, lost machine) is rescheduled by Dask on
another worker, up to the scheduler's ``distributed.scheduler.allowed-failures``
(default 3); beyond that it is reported as failed (``KilledWorker``). A task
that raises is not retried: the same job raises the same way again.
"""

from __future__ import annotations

import tempfile
import uuid
from contextlib import contextmanager

LOCAL = "local:"
CONNECT_TIMEOUT = "30s"  # a scheduler that does not answer in this time is reported, not waited for
MISSING = ("--scheduler needs Dask, which is the optional 'cluster' extra: "
           "pip install -e \".[cluster]\" (dask, distributed)")


def parse_scheduler(text: str) -> tuple[str, object]:
    """``"local:N"`` → ("local", N); anything else → ("address", text)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"--scheduler needs an address or local:N, got {text!r}")
    if text.startswith(LOCAL):
        try:
            n = int(text[len(LOCAL):])
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"--scheduler local:N needs N >= 1 worker processes, got {text!r}")
        return "local", n
    return "address", text.strip()


def import_distributed():
    """The ``distributed`` module, or a clear error naming the extra."""
    try:
        import distributed
    except ImportError:
        raise ValueError(MISSING) from None
    return distributed


@contextmanager
def dask_client(scheduler: str):
    """A Client of the scheduler (or of a LocalCluster started for ``local:N``), closed on exit."""
    how, what = parse_scheduler(scheduler)
    distributed = import_distributed()
    cluster = None
    if how == "local":
        cluster = distributed.LocalCluster(
            n_workers=what, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address="127.0.0.1:0", local_directory=tempfile.gettempdir())
        client = distributed.Client(cluster)
    else:
        try:
            client = distributed.Client(what, timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            raise OSError(f"cannot reach the Dask scheduler at {what}: {exc}") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def on_dask(calls, scheduler: str, compute):
    """Run (job, function) pairs as Dask tasks; yields (job, outcome or None, error or None) as they finish.

    Tasks are submitted at once with priorities in the given order, so the
    cluster starts them in that order and balances them over its workers.
    Interrupting the client cancels the tasks not yet finished. ``compute(fn, job)`` runs one
    task on a worker (:func:`refprune.experiments.sweep.compute`, passed in so this module imports no sweep).
    """
    distributed = import_distributed()
    if not calls:
        return
    with dask_client(scheduler) as client:
        tag = uuid.uuid4().hex[:8]
        futures = {client.submit(compute, fn, job, key=f"{job['name']}-{tag}", pure=False,
                                 priority=len(calls) - i): job
                   for i, (job, fn) in enumerate(calls)}
        try:
            for fut in distributed.as_completed(futures):
                job = futures[fut]
                if fut.status == "finished":
                    yield job, fut.result(), None
                elif fut.status == "error":
                    yield job, None, fut.exception()
                else:
                    yield job, None, RuntimeError(f"task {fut.status} on the cluster")
                fut.release()
        finally:
            client.cancel(list(futures))
