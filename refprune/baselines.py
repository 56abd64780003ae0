"""Plain global magnitude pruning, the practical example's baselines (thesis §2.3, §4.1).

- :func:`magnitude_prune`: zero the fraction p of weights with the smallest
  magnitudes over all layers (the empirical threshold t(p) of
  :mod:`refprune.threshold`, hard mask 1[|w| >= t]).
- :func:`post_training_pruning`: train dense once, then prune at each ratio of
  a grid and evaluate (Figs. 4.4/4.5).
- :func:`pre_training_pruning`: fix the mask from the initial weights at
  ratio p, then train with it (Figs. 4.6/4.7).
"""

from __future__ import annotations

import numpy as np

from .masks import hard_mask
from .steps import layer_views, magnitudes, masked_dense_step
from .threshold import empirical_threshold
from .train import Dataset, TrainConfig, evaluate, init_state, metric_name, train
from .validation import check_ratio


def magnitude_prune(weights, ratio: float) -> list:
    """Weights with the global fraction ``ratio`` of smallest magnitudes set to 0.

    Parameters
    ----------
    weights : list of ndarray
    ratio : float in [0, 1)

    Returns
    -------
    list of ndarray
        New arrays; the inputs are not changed.
    """
    ratio = check_ratio(ratio, "ratio")
    if ratio == 0:
        return [W.copy() for W in weights]
    t = empirical_threshold(magnitudes(weights), ratio).t
    return [hard_mask(W, t) * W for W in weights]


def scores(data: Dataset, weights, biases, loss: str) -> dict:
    """Train and validation loss and metric of a network."""
    name = metric_name(data.task)
    out = {}
    for split in ("train", "val"):
        value, metric = evaluate(getattr(data, f"x_{split}"), getattr(data, f"y_{split}"),
                                 weights, biases, data.task, loss)
        out[f"{split}_loss"], out[f"{split}_{name}"] = value, metric
    return out


def post_training_pruning(data: Dataset, layers, cfg: TrainConfig, ratios, log=None) -> list[dict]:
    """Train dense once (``cfg.method`` must be "dense"), then prune at each ratio and evaluate.

    Returns
    -------
    list of dict
        One record per ratio: ``ratio`` and train/val loss and metric.
    """
    if cfg.method != "dense":
        raise ValueError("post_training_pruning trains a dense network: use TrainConfig(method='dense')")
    result = train(data, layers, cfg, log=log)
    weights, biases = result["weights"], result["biases"]
    return [{"ratio": float(p), **scores(data, magnitude_prune(weights, p), biases, cfg.loss)} for p in ratios]


def pre_training_pruning(data: Dataset, layers, cfg: TrainConfig, ratio: float) -> dict:
    """Prune the initial weights at ``ratio``, keep that mask fixed, train, evaluate.

    Returns
    -------
    dict
        ``ratio``, train/val loss and metric, and the achieved ``sparsity``.
    """
    ratio = check_ratio(ratio, "ratio")
    state, rng = init_state(layers, cfg)
    mask = np.concatenate([M.ravel() for M in magnitude_prune(state.weights, ratio)]) != 0
    mask_flat = mask.astype(state.flat_w.dtype)
    state.flat_w *= mask_flat
    x, y = data.x_train.astype(state.flat_w.dtype), data.y_train
    if data.task == "regression":
        y = y.astype(state.flat_w.dtype)
    for _ in range(cfg.epochs):
        order = rng.permutation(x.shape[0])
        for i in range(0, x.shape[0], cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            masked_dense_step(state, x[idx], y[idx], cfg.loss, mask_flat)
    weights = layer_views(state.flat_w, state.weights)
    return {"ratio": ratio, "sparsity": float(1 - mask.mean()), **scores(data, weights, state.biases, cfg.loss)}
