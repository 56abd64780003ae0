"""Table 4.1 as used: each hyper-parameter of the MNIST runs, the thesis's value and refprune's.

refprune's values are read from the configuration the runs are built from (the
defaults of :class:`~refprune.train.loop.TrainConfig`, the protocol settings of
:mod:`.protocol_settings`, the optimiser's constants, the MNIST loader's split),
so the table follows the code. The thesis's values are cited with their page.
"""

from __future__ import annotations

import inspect
import math

import numpy as np

from refprune.core.optim import BETA1, BETA2, EPS, R_MAX, TAU_MIN
from refprune.data.mnist import PIXEL_MAX, load_mnist
from refprune.data.tasks import DEFAULT_LAYERS
from refprune.experiments.figures.common import entry, write_md_csv
from refprune.experiments.figures.protocol_settings import ADOPTED, SEEDS, protocol_config
from refprune.train.loop import VARIANTS, TrainConfig
from refprune.train.protocol import world_size

SETTINGS_STEM = "table4_1_settings"
MNIST_TRAIN_FILE = 60_000  # images in MNIST's training file (split into training and validation)
MNIST_TEST_FILE = 10_000  # images in MNIST's test file


def sci(value: float) -> str:
    """A power of ten or a short decimal in the thesis's style: 1e-6, 1e-2, 0.5, 25."""
    text = np.format_float_scientific(value, trim="-", exp_digits=1)
    return text if "e-" in text and abs(value) < 1e-1 else f"{value:g}"


def split_sizes() -> tuple[int, int, int]:
    """Training, validation and test images of the MNIST loader's default split."""
    val = round(load_mnist_default("val_fraction") * MNIST_TRAIN_FILE)
    return MNIST_TRAIN_FILE - val, val, MNIST_TEST_FILE


def load_mnist_default(name: str):
    return inspect.signature(load_mnist).parameters[name].default


def steps_per_epoch(cfg: TrainConfig, n_train: int) -> int:
    """Optimiser steps per epoch: each of the protocol's processes cuts its share into batches."""
    return math.ceil(math.ceil(n_train / world_size(cfg.protocol)) / cfg.batch_size)


def settings_rows(table_runs) -> list:
    """Rows: hyper-parameter, the thesis's value and where it says so, refprune's under the stated and the
    adopted protocol, and where refprune sets it. ``table_runs``: the Table 4.6 runs' (r0, λ)."""
    stated, adopted = TrainConfig(), TrainConfig(**protocol_config(ADOPTED))
    n_train, n_val, n_test = split_sizes()
    r0s = ", ".join(f"{v:g}" for v in sorted({r0 for r0, _ in table_runs}))
    lams = ", ".join(f"{v:g}" for v in sorted({lam for _, lam in table_runs}))

    def batch(cfg):
        world = world_size(cfg.protocol)
        return f"{cfg.batch_size}" if world == 1 else f"{cfg.batch_size} per process × {world} processes"

    def same(value):
        return value, value

    rows = [
        ("r0 (initial pruning ratio)", "0.5 (0.95 also run)", "Table 4.1, p. 41; pp. 43, 46",
         *same(f"{stated.r0:g} (default); Table 4.6 runs: {r0s}"), "TrainConfig.r0; the Table 4.6 jobs"),
        ("τ0 (× std of all weights)", "1e-2", "Table 4.1, p. 41; W = all weights, §2.5, p. 27",
         *same(sci(stated.tau0)), "TrainConfig.tau0 (× std of the initial weights)"),
        ("learning rate of r", "1e-4 (the column 'lr')", "Table 4.1, p. 41", *same(sci(stated.lr_r)),
         "TrainConfig.lr_r"),
        ("learning rate of τ", "1e-6 (the column 'lτ')", "Table 4.1, p. 41", *same(sci(stated.lr_tau)),
         "TrainConfig.lr_tau"),
        ("learning rate of weights and biases", "not stated", "—", *same(sci(stated.lr)),
         "TrainConfig.lr (METHOD §4)"),
        ("optimiser", "Adam", "p. 6, p. 35", *same(f"Adam (β1 = {BETA1:g}, β2 = {BETA2:g}, ε = {sci(EPS)})"),
         "refprune.core.optim"),
        ("λ (regulariser λ(1 − r)²)", "1e1 with regularisation, 0 without", "p. 44",
         *same(f"{lams} (default {stated.lam:g})"), "TrainConfig.lam; the Table 4.6 jobs"),
        ("epochs", "25", "p. 41", *same(f"{stated.epochs}"), "TrainConfig.epochs"),
        ("batch size", "32", "p. 34, p. 41", batch(stated), batch(adopted),
         f"TrainConfig.batch_size, .protocol ('{ADOPTED}': protocol_settings)"),
        ("optimiser steps per epoch", "1,500 implied (48,000 / 32); its traces fit ≈ 750",
         "p. 34; Fig. 4.12, p. 44 (docs/protocol.md)", f"{steps_per_epoch(stated, n_train):,}",
         f"{steps_per_epoch(adopted, n_train):,}", "from the batch size, protocol and split"),
        ("τ clamp", "τ ≥ 1e-6", "§2.5, p. 27", *same(f"τ ≥ {sci(TAU_MIN)}"), "refprune.core.optim.TAU_MIN"),
        ("r clamp", "not stated", "—", *same(f"0 ≤ r ≤ {R_MAX:g}"), "refprune.core.optim.R_MAX (METHOD §4)"),
        ("loss", "cross-entropy", "p. 35", *same("cross-entropy" if stated.loss == "ce" else stated.loss),
         "the task's loss"),
        ("network", "784-512-512-10", "p. 35", *same("-".join(map(str, DEFAULT_LAYERS["mnist"]))),
         "refprune.data.tasks.DEFAULT_LAYERS"),
        ("train / validation / test images", "48,000 / 12,000 / 10,000", "p. 34",
         *same(f"{n_train:,} / {n_val:,} / {n_test:,} (split seed {load_mnist_default('seed')})"),
         "refprune.data.mnist.load_mnist"),
        ("pixels", "scaled to [0, 1]", "p. 34", *same(f"divided by {PIXEL_MAX:g}: [0, 1]"),
         "refprune.data.mnist.PIXEL_MAX"),
        ("floating point", "not stated", "—", *same(stated.dtype), "TrainConfig.dtype"),
        ("validation and test metrics", "not stated", "—", "the whole set", "rank 0's half of each set",
         "refprune.train.protocol.eval_shard"),
        ("runs per Table 4.6 row", "one (a fixed seed)", "p. 17", "1 (seed 0)",
         f"{len(SEEDS)} (seeds {', '.join(map(str, SEEDS))})", "the mnist group's jobs"),
        ("gradient path", "the published code's", "METHOD §6", *same(" and ".join(VARIANTS)),
         "TrainConfig.variant"),
    ]
    keys = ("hyper-parameter", "thesis", "thesis source", "refprune, stated protocol",
            f"refprune, adopted protocol '{ADOPTED}'", "refprune source")
    return [dict(zip(keys, row)) for row in rows]


def write_settings_table(out, table_runs) -> list:
    """``table4_1_settings``.md/.csv and its index entry."""
    rows = settings_rows(table_runs)
    md = write_md_csv(out, SETTINGS_STEM, list(rows[0]), rows)
    return [entry(SETTINGS_STEM, "Table 4.1", "the hyper-parameters of the MNIST runs as used: the thesis's value "
                  "(with its page) beside refprune's under the stated and the adopted protocol, generated from the "
                  "configuration", "—", files=[f"{SETTINGS_STEM}.md", f"{SETTINGS_STEM}.csv"],
                  section=("Table 4.1 as used", md))]
