"""The two tasks of the thesis as :class:`refprune.train.Dataset` objects.

- ``synthetic``: regression on h(x; α) of thesis eq. (3.1), 1 input, 1 output,
  MSE. The thesis uses a train/validation split only (§2.3); the validation
  split also serves as the test split here, so ``test_r2`` is the validation R²
  of the pruned network.
- ``mnist``: classification, 784 inputs, 10 classes, cross-entropy; the 60k
  training images split 80/20 into train/validation from the seed, the 10k
  test images as test (thesis §3.2).
"""

from __future__ import annotations

from ..train import Dataset
from .mnist import load_mnist
from .synthetic import make_synthetic

TASKS = ("synthetic", "mnist", "fashion-mnist")
DEFAULT_LAYERS = {"synthetic": (1, 32, 32, 32, 1), "mnist": (784, 512, 512, 10), "fashion-mnist": (784, 512, 512, 10)}
LOSS_OF_TASK = {"synthetic": "mse", "mnist": "ce", "fashion-mnist": "ce"}


def load_task(name: str, *, alpha: int = 20, data_dir=None, seed: int = 0) -> Dataset:
    """Load a task by name.

    Parameters
    ----------
    name : {"synthetic", "mnist", "fashion-mnist"}
    alpha : int
        Frequency of the synthetic target (thesis eq. (3.1)).
    data_dir : path, optional
        Directory of the four MNIST-format IDX files (required for ``mnist``
        and ``fashion-mnist``, which share the file names).
    seed : int
        Seed of the MNIST train/validation split (the synthetic split is fixed).

    Returns
    -------
    Dataset
    """
    if name == "synthetic":
        s = make_synthetic(alpha)
        return Dataset(f"synthetic(alpha={s.alpha})", "regression", s.x_train, s.y_train,
                       s.x_val, s.y_val, s.x_val, s.y_val)
    if name in ("mnist", "fashion-mnist"):
        if data_dir is None:
            raise ValueError(f"data_dir is required for --data {name} (a directory with the four IDX files)")
        m = load_mnist(data_dir, seed=seed, dataset=name)
        return Dataset(name, "classification", m.x_train, m.y_train, m.x_val, m.y_val, m.x_test, m.y_test)
    raise ValueError(f"data must be one of {list(TASKS)}, got {name!r}")
