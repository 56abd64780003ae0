"""Plain global magnitude pruning, the practical example's baselines (thesis §2.3, §4.1).

- :func:`magnitude_prune`: zero the fraction p of weights with the smallest
  magnitudes over all layers (the empirical threshold t(p) of
  :mod:`refprune.core.threshold`, hard mask 1[|w| >= t]).
- :func:`post_training_pruning`: train dense once, then prune at each ratio of
  a grid and evaluate (Figs. 4.4/4.5).
- :func:`layer_magnitude_prune`: the same within each layer, at each layer's own ratio.
- :func:`pre_training_pruning`: fix the mask from the initial weights at
  ratio p (or at per-layer ratios), then train with it (Figs. 4.6/4.7; the
  matched-sparsity comparison's at-initialisation baselines).
- :func:`fine_tuned_pruning`: train dense once, then at each ratio prune,
  evaluate, fine-tune with the mask fixed and evaluate again (the matched
  sparsity comparison, :mod:`refprune.experiments.figures.matched`).
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from refprune.core.masks import hard_mask
from refprune.core.threshold import empirical_threshold
from refprune.core.validation import check_ratio
from refprune.data.dataset import Dataset
from refprune.train.loop import TrainConfig, evaluate, init_state, metric_name, train
from refprune.train.steps.common import layer_views, magnitudes, masked_dense_step, new_state, new_workspace
from refprune.train.threads import training_threads


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


def layer_magnitude_prune(weights, ratios) -> list:
    """Weights with the fraction ``ratios[l]`` of layer l's smallest magnitudes set to 0, layer by layer.

    Parameters
    ----------
    weights : list of ndarray
    ratios : sequence of float in [0, 1), one per layer

    Returns
    -------
    list of ndarray
        New arrays; the inputs are not changed.
    """
    if len(ratios) != len(weights):
        raise ValueError(f"one ratio per layer: {len(weights)} layers, got {len(ratios)} ratios")
    return [magnitude_prune([W], check_ratio(p, f"ratio of layer {l + 1}"))[0]
            for l, (W, p) in enumerate(zip(weights, ratios))]


def scores(data: Dataset, weights, biases, loss: str, splits=("train", "val")) -> dict:
    """Loss and metric of a network on each split of ``splits`` (keys ``<split>_loss``, ``<split>_<metric>``)."""
    name = metric_name(data.task)
    out = {}
    for split in splits:
        value, metric = evaluate(getattr(data, f"x_{split}"), getattr(data, f"y_{split}"),
                                 weights, biases, data.task, loss)
        out[f"{split}_loss"], out[f"{split}_{name}"] = value, metric
    return out


def train_with_mask(state, mask_flat: np.ndarray, data: Dataset, cfg: TrainConfig, epochs: int, rng) -> None:
    """``epochs`` epochs of minibatch steps with the 0/1 mask fixed (:func:`masked_dense_step`), in place.

    Parameters
    ----------
    state : TrainState
        Its flat weights are multiplied by the mask first, so pruned weights start and stay at 0.
    mask_flat : ndarray, shape (n,)
        1 for a kept weight, 0 for a pruned one, in the weights' dtype.
    data : Dataset
    cfg : TrainConfig
        Its ``loss`` and ``batch_size`` are used.
    epochs : int
    rng : numpy.random.Generator
        Draws the batch order of each epoch.
    """
    training_threads()  # one BLAS thread, as for every training run (refprune.train.threads)
    state.flat_w *= mask_flat
    ws = new_workspace(state)
    x, y = data.x_train.astype(state.flat_w.dtype), data.y_train
    if data.task == "regression":
        y = y.astype(state.flat_w.dtype)
    for _ in range(epochs):
        order = rng.permutation(x.shape[0])
        for i in range(0, x.shape[0], cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            masked_dense_step(state, ws, x[idx], y[idx], cfg.loss, mask_flat)


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


def fine_tune(weights, biases, mask_flat: np.ndarray, data: Dataset, cfg: TrainConfig, epochs: int, rng) -> tuple:
    """Pruned weights trained further with the mask fixed, from a fresh Adam (zero moments) at ``cfg.lr``.

    Returns
    -------
    (list of ndarray, list of ndarray)
        The fine-tuned weights (pruned ones exactly 0) and biases; the inputs are not changed.
    """
    state = new_state(weights, biases, 0.0, 1.0, cfg.lr, cfg.lr_r, cfg.lr_tau)  # r, τ unused by the masked step
    train_with_mask(state, mask_flat, data, cfg, epochs, rng)
    return layer_views(state.flat_w, state.weights), state.biases


def fine_tuned_pruning(data: Dataset, layers, cfg: TrainConfig, ratios, finetune_epochs: int,
                       splits=("val", "test"), log=None) -> dict:
    """Train dense once; then, per ratio, prune globally by magnitude, evaluate, fine-tune, evaluate again.

    Fine-tuning runs ``finetune_epochs`` epochs with the mask fixed
    (:func:`masked_dense_step`) from the pruned dense weights and the dense
    biases, with a fresh Adam (zero moments) at the dense learning rate
    ``cfg.lr`` and the dense batch size; ratio k's batch order comes from
    ``numpy.random.default_rng([cfg.seed, k])``.

    Parameters
    ----------
    data : Dataset
    layers : sequence of int
    cfg : TrainConfig
        The dense training (``method`` must be "dense").
    ratios : sequence of float in [0, 1)
    finetune_epochs : int >= 0
    splits : sequence of str
        The splits evaluated before and after fine-tuning.

    Returns
    -------
    dict
        ``dense``: the dense network's scores, ``seconds`` (its training) and ``epochs``;
        ``by_ratio``: per ratio, ``ratio``, achieved ``sparsity``, ``pruned`` and ``finetuned``
        scores, ``finetune_epochs`` and ``seconds`` (pruning, fine-tuning and evaluation).
    """
    if cfg.method != "dense":
        raise ValueError("fine_tuned_pruning trains a dense network: use TrainConfig(method='dense')")
    if isinstance(finetune_epochs, bool) or not isinstance(finetune_epochs, (int, np.integer)) or finetune_epochs < 0:
        raise ValueError(f"finetune_epochs must be an integer >= 0, got {finetune_epochs!r}")
    result = train(data, layers, cfg, log=log)
    weights, biases = result["weights"], result["biases"]
    dense = {**scores(data, weights, biases, cfg.loss, splits), "seconds": result["summary"]["seconds"],
             "epochs": cfg.epochs}
    records = []
    for k, p in enumerate(ratios):
        start = time.perf_counter()
        pruned = magnitude_prune(weights, p)
        mask = np.concatenate([W.ravel() for W in pruned]) != 0
        before = scores(data, pruned, biases, cfg.loss, splits)
        tuned_w, tuned_b = fine_tune(pruned, biases, mask.astype(pruned[0].dtype), data, cfg, int(finetune_epochs),
                                     np.random.default_rng([cfg.seed, k]))
        records.append({"ratio": float(p), "sparsity": float(1 - mask.mean()), "pruned": before,
                        "finetuned": scores(data, tuned_w, tuned_b, cfg.loss, splits),
                        "finetune_epochs": int(finetune_epochs), "seconds": time.perf_counter() - start})
    return {"dense": dense, "by_ratio": records}


# Seeds of the per-ratio networks: ratio k of a job with seed s trains from seed
# PER_RATIO_SEED_STRIDE·s + k, so no two (s, k) share one (k < 1000).
PER_RATIO_SEED_STRIDE = 1000


def per_ratio_network_pruning(data: Dataset, layers, cfg: TrainConfig, ratios, finetune_epochs: int = 0) -> list[dict]:
    """One dense network trained per ratio, each pruned at its own ratio (and fine-tuned), evaluated.

    The hypothesis that the thesis's Figs. 4.4/4.5 train a fresh network for
    every pruning ratio: ratio k trains with seed
    ``PER_RATIO_SEED_STRIDE·cfg.seed + k`` (its own initialisation and batch
    order; the data split is the task's, unchanged). With ``finetune_epochs``,
    each pruned network is fine-tuned as :func:`fine_tuned_pruning` does.

    Returns
    -------
    list of dict
        As :func:`post_training_pruning`: ``ratio`` and train/val loss and metric
        (after fine-tuning, if any).
    """
    if cfg.method != "dense":
        raise ValueError("per_ratio_network_pruning trains dense networks: use TrainConfig(method='dense')")
    if len(ratios) > PER_RATIO_SEED_STRIDE:
        raise ValueError(f"at most {PER_RATIO_SEED_STRIDE} ratios per job, got {len(ratios)}")
    records = []
    for k, p in enumerate(ratios):
        cfg_k = replace(cfg, seed=PER_RATIO_SEED_STRIDE * cfg.seed + k)
        if finetune_epochs:
            tuned = fine_tuned_pruning(data, layers, cfg_k, [p], finetune_epochs, splits=("train", "val"))
            records.append({"ratio": float(p), **tuned["by_ratio"][0]["finetuned"]})
            continue
        result = train(data, layers, cfg_k, log=None)
        pruned = magnitude_prune(result["weights"], p)
        records.append({"ratio": float(p), **scores(data, pruned, result["biases"], cfg.loss)})
    return records


def pre_training_pruning(data: Dataset, layers, cfg: TrainConfig, ratio, splits=("train", "val")) -> dict:
    """Prune the initial weights by magnitude, keep that mask fixed, train, evaluate.

    Parameters
    ----------
    data : Dataset
    layers : sequence of int
    cfg : TrainConfig
    ratio : float in [0, 1), or sequence of float in [0, 1)
        A float prunes globally (:func:`magnitude_prune`); a sequence, one ratio per weight
        matrix, prunes each layer at its own ratio (:func:`layer_magnitude_prune`).
    splits : sequence of str

    Returns
    -------
    dict
        ``ratio`` (as given), loss and metric on each split of ``splits``, the achieved
        ``sparsity`` and ``sparsity_per_layer``.
    """
    per_layer = not np.isscalar(ratio)
    ratio = [float(p) for p in ratio] if per_layer else check_ratio(ratio, "ratio")
    state, rng = init_state(layers, cfg)
    pruned = layer_magnitude_prune(state.weights, ratio) if per_layer else magnitude_prune(state.weights, ratio)
    mask = np.concatenate([M.ravel() for M in pruned]) != 0
    train_with_mask(state, mask.astype(state.flat_w.dtype), data, cfg, cfg.epochs, rng)
    weights = layer_views(state.flat_w, state.weights)
    return {"ratio": ratio, "sparsity": float(1 - mask.mean()),
            "sparsity_per_layer": [float(np.mean(M == 0)) for M in pruned],
            **scores(data, weights, state.biases, cfg.loss, splits)}
