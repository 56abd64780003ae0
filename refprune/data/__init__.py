"""Data for the thesis's experiments: the synthetic task (§3.1) and MNIST (§3.2).

- :mod:`refprune.data.synthetic` — h(x; α) of thesis eq. (3.1) and the fixed
  train/validation data set built from it.
- :mod:`refprune.data.idx` — reader and writer for the IDX file format.
- :mod:`refprune.data.mnist` — MNIST / Fashion-MNIST from the four IDX files.
- :mod:`refprune.data.tiny` — ``tiny_mnist``, random stand-in data with MNIST's shapes (smoke tests).
"""

from .idx import IdxFormatError, read_idx, write_idx
from .mnist import MNIST_FILES, MnistData, MnistFormatError, load_mnist
from .synthetic import (
    DEFAULT_BATCH_SIZE,
    N_POINTS,
    SPLIT_SEED,
    TAU_W,
    VAL_FRACTION,
    SyntheticData,
    make_synthetic,
    target_function,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "IdxFormatError",
    "MNIST_FILES",
    "MnistData",
    "MnistFormatError",
    "N_POINTS",
    "SPLIT_SEED",
    "SyntheticData",
    "TAU_W",
    "VAL_FRACTION",
    "load_mnist",
    "make_synthetic",
    "read_idx",
    "target_function",
    "write_idx",
]
