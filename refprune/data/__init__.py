"""Data for the thesis's experiments: the synthetic task (§3.1) and MNIST (§3.2).

- :mod:`refprune.data.synthetic` — h(x; α) of thesis eq. (3.1) and the fixed
  train/validation data set built from it.
- :mod:`refprune.data.idx` — reader and writer for the IDX file format.
- :mod:`refprune.data.mnist` — MNIST / Fashion-MNIST from the four IDX files.
- :mod:`refprune.data.tiny` — ``tiny_mnist``, random stand-in data with MNIST's shapes (smoke tests).
"""

__all__ = ["dataset", "synthetic", "idx", "mnist", "tasks", "tiny"]
