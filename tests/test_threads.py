"""refprune.train.threads: the one place that decides BLAS and worker threads."""

import pytest

from refprune.train import parallel, threads


def test_worker_threads_follow_the_environment(monkeypatch):
    monkeypatch.setenv("REFPRUNE_WORKER_THREADS", "1")
    assert threads.worker_threads() == 1
    assert parallel.make_pool(None, parallel.PARALLEL_MIN_SIZE) is None
    monkeypatch.setenv("REFPRUNE_WORKER_THREADS", "x")
    with pytest.raises(ValueError, match="REFPRUNE_WORKER_THREADS must be an integer"):
        threads.worker_threads()


def test_small_arrays_run_in_the_calling_thread(monkeypatch):
    monkeypatch.setenv("REFPRUNE_WORKER_THREADS", "2")
    assert parallel.make_pool(None, parallel.PARALLEL_MIN_SIZE - 1) is None
    pool = parallel.make_pool(None, parallel.PARALLEL_MIN_SIZE)
    assert pool is not None
    pool.shutdown()


def test_training_threads_respects_a_users_blas_setting(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    got = threads.training_threads()
    assert got["blas_threads"] == "3" and got["blas_set"] is False
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    got = threads.training_threads()
    assert got["blas_threads"] == threads.BLAS_THREADS
