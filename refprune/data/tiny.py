"""``tiny_mnist``: random 28×28 'images' with MNIST's shapes and classes, for smoke tests.

No figure of the index is made from it; ``refprune figures --quick`` runs on it.
"""

from __future__ import annotations

import numpy as np

from refprune.data.dataset import Dataset


def tiny_mnist(seed: int = 0, n_train: int = 160, n_val: int = 40, n_test: int = 40) -> Dataset:
    """Random 28×28 'images' in [0, 1] with labels 0..9 — a smoke-test stand-in for MNIST."""
    rng = np.random.default_rng(seed)
    def part(n):
        return rng.random((n, 784)).astype(np.float32), rng.integers(0, 10, n)
    (xt, yt), (xv, yv), (xs, ys) = part(n_train), part(n_val), part(n_test)
    return Dataset("tiny_mnist", "classification", xt, yt, xv, yv, xs, ys)
