"""Training protocols: batch order of one and two data-parallel processes, DDP's gradient
averaging, evaluation shards and early stopping on r (refprune.train.protocol, docs/protocol.md)."""

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refprune.core.losses import loss_and_grad
from refprune.core.mlp import init_mlp, mlp_backward, mlp_forward
from refprune.train.protocol import EarlyStopOnR, epoch_batches, eval_shard, rank_share

# float64 sums of 64 terms in another order: a few ulps of the gradient's scale
AVERAGING_RTOL = 1e-12


@given(n=st.integers(1, 300), batch=st.integers(1, 40))
def test_single_protocol_is_one_permutation_cut_in_order(n, batch):
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    steps = epoch_batches(rng_a, n, batch, "single")
    order = rng_b.permutation(n)
    assert np.array_equal(np.concatenate(steps), order)
    assert all(len(s) == batch for s in steps[:-1]) and 1 <= len(steps[-1]) <= batch


@given(n=st.integers(2, 300), batch=st.integers(1, 40))
def test_ddp2_visits_every_example_and_halves_the_steps(n, batch):
    steps = epoch_batches(np.random.default_rng(5), n, batch, "ddp2")
    seen = np.concatenate(steps)
    assert set(seen.tolist()) == set(range(n))  # every example, padding repeats at most one
    assert len(seen) == n + (n % 2)
    assert len(steps) == math.ceil(math.ceil(n / 2) / batch)
    for s in steps:  # rank 0's batch then rank 1's, equal in size
        assert len(s) % 2 == 0 and len(s) <= 2 * batch


def test_ddp2_ranks_take_alternate_indices_of_the_permutation():
    order = np.arange(10)[::-1]
    assert rank_share(order, 2, 0).tolist() == [9, 7, 5, 3, 1]
    assert rank_share(order, 2, 1).tolist() == [8, 6, 4, 2, 0]
    assert rank_share(np.arange(5), 2, 1).tolist() == [1, 3, 0]  # padded with the head
    with pytest.raises(ValueError, match="rank"):
        rank_share(order, 2, 2)


def test_mnist_sizes_give_the_traces_step_count():
    """48,000 training images: 1,500 steps per epoch at batch 32, 750 under ddp2 or batch 64."""
    n = 48_000
    rng = np.random.default_rng(0)
    assert len(epoch_batches(rng, n, 32, "single")) == 1500
    assert len(epoch_batches(rng, n, 32, "ddp2")) == 750
    assert len(epoch_batches(rng, n, 64, "single")) == 750


def test_ddp_average_of_rank_gradients_is_the_concatenated_batch_gradient():
    """DDP averages the two ranks' mean gradients: equal to one step on their concatenation."""
    rng = np.random.default_rng(1)
    W, b = init_mlp((6, 5, 3), rng)
    x, y = rng.standard_normal((64, 6)), rng.integers(0, 3, 64)

    def grads(xb, yb):
        out, cache = mlp_forward(xb, W, b)
        dout = loss_and_grad("ce", out, yb)[1]
        return mlp_backward(dout, cache)

    per_rank = [grads(x[:32], y[:32]), grads(x[32:], y[32:])]
    joint = grads(x, y)
    for part in range(2):  # weights, biases
        for layer in range(2):
            avg = 0.5 * (per_rank[0][part][layer] + per_rank[1][part][layer])
            np.testing.assert_allclose(avg, joint[part][layer], rtol=AVERAGING_RTOL, atol=0)


def test_eval_shard_is_rank_zero_of_an_unshuffled_sampler():
    x, y = np.arange(14).reshape(7, 2), np.arange(7)
    xs, ys = eval_shard(x, y, "ddp2")
    assert ys.tolist() == [0, 2, 4, 6]
    assert np.array_equal(xs, x[[0, 2, 4, 6]])
    assert eval_shard(x, y, "single")[1] is y


def test_early_stop_on_r_follows_lightning_max_mode():
    rule = EarlyStopOnR(patience=3, min_delta=1e-4)
    # rises (improvements), then a rise by exactly min_delta (not an improvement), then falls
    values = [0.5, 0.6, 0.6 + 1e-4, 0.59, 0.58]
    stops = [rule.update(v) for v in values]
    assert stops == [False, False, False, False, True]
    assert rule.best == 0.6 and rule.wait == 3


def test_early_stop_resets_on_improvement():
    rule = EarlyStopOnR(patience=2, min_delta=0.0)
    assert [rule.update(v) for v in (0.3, 0.2, 0.4, 0.1, 0.1)] == [False, False, False, False, True]


@pytest.mark.parametrize("kw, match", [(dict(patience=0), "patience"), (dict(patience=2.5), "patience"),
                                       (dict(min_delta=-1.0), "min_delta"), (dict(min_delta=np.nan), "min_delta")])
def test_early_stop_rejects_bad_settings(kw, match):
    with pytest.raises(ValueError, match=match):
        EarlyStopOnR(**kw)


def test_unknown_protocol_is_a_clear_error():
    with pytest.raises(ValueError, match="protocol must be one of single, ddp2"):
        epoch_batches(np.random.default_rng(0), 10, 2, "ddp8")


# ---------------------------------------------------------------- in training (refprune.train.loop)

TINY = (1, 8, 8, 1)


def tiny_run(**kw):
    from refprune.data.tasks import load_task
    from refprune.train.loop import TrainConfig, train

    data = load_task("synthetic", alpha=2)
    cfg = TrainConfig(loss="mse", epochs=kw.pop("epochs", 3), batch_size=kw.pop("batch_size", 32), **kw)
    return train(data, TINY, cfg, log=None)


def test_ddp2_takes_half_the_steps_of_the_same_per_process_batch():
    n_train = 800  # the synthetic task's fixed training split
    single = tiny_run(protocol="single", batch_size=16, epochs=2)
    ddp = tiny_run(protocol="ddp2", batch_size=16, epochs=2)
    assert len(single["history"].steps["r"]) == 2 * math.ceil(n_train / 16)
    assert len(ddp["history"].steps["r"]) == 2 * math.ceil(n_train / 2 / 16)
    assert ddp["summary"]["steps"] == len(ddp["history"].steps["r"])


def test_early_stop_on_r_ends_the_run_and_says_so():
    # lr_r = 1e-7: r moves by at most 25 steps × 1e-7 per epoch, below the 1e-4 that counts
    res = tiny_run(early_stop_r=1, lr_r=1e-7, epochs=5)
    assert res["summary"]["epochs_run"] == 2 and res["summary"]["stopped_early"] is True
    assert len(res["history"].epochs) == 2
    full = tiny_run(early_stop_r=0, lr_r=1e-7, epochs=3)
    assert full["summary"]["epochs_run"] == 3 and full["summary"]["stopped_early"] is False


def test_early_stop_is_replayed_from_the_history_on_resume():
    from refprune.train.loop import EarlyStopper, History, TrainConfig, early_stopper

    history = History()
    history.epochs = [{"r": 0.5}, {"r": 0.5}]
    stopper = early_stopper(TrainConfig(early_stop_r=1), history)
    assert isinstance(stopper, EarlyStopper) and stopper.stopped
    assert early_stopper(TrainConfig(method="dense"), history) is None


def test_cli_protocol_options(tmp_path, capsys):
    from refprune.cli.main import main

    assert main(["train", "--method", "dense", "--early-stop-r", "3", "--out", str(tmp_path / "a")]) == 2
    assert "--early-stop-r applies only with --method lrp" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse rejects the choice itself
        main(["train", "--protocol", "ddp8", "--out", str(tmp_path / "b")])
    assert exit_info.value.code == 2 and "invalid choice: 'ddp8'" in capsys.readouterr().err
    assert main(["train", "--protocol", "ddp2", "--early-stop-r", "2", "--epochs", "2", "--quiet",
                 "--out", str(tmp_path / "c")]) == 0
    config = json.loads((tmp_path / "c" / "config.json").read_text())
    assert config["protocol"] == "ddp2" and config["early_stop_r"] == 2
