"""The two tasks of the thesis as :class:`refprune.data.dataset.Dataset` objects.

- ``synthetic``: regression on h(x; α) of thesis eq. (3.1), 1 input, 1 output,
  MSE. The thesis uses a train/validation split only (§2.3); the validation
  split also serves as the test split here, so ``test_r2`` is the validation R²
  of the pruned network.
- ``mnist``: classification, 784 inputs, 10 classes, cross-entropy; the 60k
  training images split 80/20 into train/validation by the split seed (one
  split for every training seed), the 10k test images as test (thesis §3.2).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from refprune.data.dataset import Dataset
from refprune.data.mnist import load_mnist
from refprune.data.synthetic import make_synthetic
from refprune.util.options import Range, check_ranges, option

TASKS = ("synthetic", "mnist", "fashion-mnist")
IDX_TASKS = ("mnist", "fashion-mnist")  # read from the four MNIST-format IDX files
DEFAULT_LAYERS = {"synthetic": (1, 32, 32, 32, 1), "mnist": (784, 512, 512, 10), "fashion-mnist": (784, 512, 512, 10)}
# Where the Debian package dataset-fashion-mnist installs the four IDX files.
DEFAULT_FASHION_DIR = "/usr/share/datasets/fashion-mnist"
LOSS_OF_TASK = {"synthetic": "mse", "mnist": "ce", "fashion-mnist": "ce"}
# Bytes a training run holds per parameter, in units of the dtype's size: the
# parameters, Adam's two moments, the gradient and about ten flat scratch buffers.
BUFFERS_PER_PARAMETER = 16


def parse_layers(text: str) -> tuple[int, ...]:
    """``"784,512,10"`` → ``(784, 512, 10)``."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"layers must be comma-separated integers, got {text!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"layers needs at least two sizes, all >= 1, got {text!r}")
    return sizes


@dataclass(frozen=True)
class TaskSpec:
    """Which task a run trains on and the network's layer sizes (the run's data side)."""

    data: str = option("synthetic", "task (synthetic needs no files)", choices=TASKS)
    data_dir: str | None = option(None, "directory with the four MNIST-format IDX files (gzip or raw)", parse=str,
                                  applies={"data": IDX_TASKS})
    alpha: int = option(20, "frequency of the synthetic target, eq. (3.1)", applies={"data": "synthetic"},
                        range=Range(1, integer=True))
    split_seed: int = option(0, "seed of the 80/20 train/validation split of the 60k training images (the "
                             "same split for every --seed, as in every figure's runs)", applies={"data": IDX_TASKS},
                             range=Range(0, integer=True))
    layers: tuple | None = option(None, "layer sizes, comma-separated, at least two, each >= 1", parse=parse_layers,
                                  show="1,32,32,32,1 for synthetic, 784,512,512,10 for mnist and fashion-mnist")

    def __post_init__(self):
        if self.data not in TASKS:
            raise ValueError(f"data must be one of {list(TASKS)}, got {self.data!r}")
        check_ranges(self)
        if self.data in IDX_TASKS:
            if self.data_dir is None:
                raise ValueError(f"data_dir is required for --data {self.data} (a directory with the four IDX files)")
            if not Path(self.data_dir).is_dir():
                raise ValueError(f"data_dir {self.data_dir} is not a directory")
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(self.layers))

    def layer_sizes(self) -> tuple:
        """The layer sizes: given, or the task's default."""
        return self.layers or DEFAULT_LAYERS[self.data]

    def load(self) -> Dataset:
        """The task's data (MNIST split by ``split_seed``)."""
        return load_task(self.data, alpha=self.alpha, data_dir=self.data_dir, seed=self.split_seed)


def physical_memory() -> int | None:
    """Bytes of RAM of this machine, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(layers, itemsize: int, eval_rows: int, memory: int | None = None) -> None:
    """Raise if a network of these layer sizes cannot fit in this machine's memory."""
    memory = physical_memory() if memory is None else memory
    params = sum(a * b + b for a, b in zip(layers[:-1], layers[1:]))
    need = itemsize * (BUFFERS_PER_PARAMETER * params + 2 * eval_rows * max(layers))
    if memory is not None and need > memory:
        raise ValueError(f"layers: {','.join(map(str, layers))} need about {need / 2**30:.1f} GiB to train, "
                         f"more than this machine's {memory / 2**30:.1f} GiB")


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
