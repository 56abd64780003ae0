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


def test_every_training_kind_takes_the_measured_threads(monkeypatch):
    # A sweep worker may start with any job kind: a baseline trained with a fixed mask must set the
    # threads itself, not rely on an earlier LRP or dense run in the same process.
    from refprune.data.tasks import load_task
    from refprune.train import baselines
    from refprune.train.loop import TrainConfig

    calls = []
    monkeypatch.setattr(baselines, "training_threads", lambda: calls.append("set") or {})
    data = load_task("synthetic", seed=0)
    baselines.pre_training_pruning(data, (1, 8, 1), TrainConfig(method="dense", loss="mse", epochs=1), 0.5)
    assert calls == ["set"]
