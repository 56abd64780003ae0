"""The arrays of one task, split into train, validation and test."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """Train/validation/test arrays of one task (y: int labels or (N, K) targets)."""

    name: str
    task: str  # "classification" or "regression"
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def n_outputs(self) -> int:
        """Output width the task needs: the number of classes, or of regression targets."""
        if self.task == "classification":
            labels = (self.y_train, self.y_val, self.y_test)
            return int(max(int(np.max(y)) for y in labels if np.size(y))) + 1
        return 1 if self.y_train.ndim == 1 else int(self.y_train.shape[1])
