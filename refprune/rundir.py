"""A training run's directory: what ``refprune train`` writes, each file atomically.

    config.json      the configuration (and the data set and layer sizes)
    history.json     one record per epoch (losses, accuracy or R², sparsity, r, τ, t)
    steps.npz        r, tau, t and loss at every step
    params.npz       the final pruned parameters, dense (W0, b0, W1, ...)
    model_sparse.npz the same weights in CSR form (refprune.export)
    summary.json     test metric, sparsity, compression, r, τ, epochs, seconds, bytes
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .data.tasks import DEFAULT_LAYERS, LOSS_OF_TASK, load_task
from .export import save_sparse
from .io import write_json, write_npz
from .train import TrainConfig, config_dict, train


def write_run(out: Path, result: dict, config: dict) -> dict:
    """Write every file of a finished run; returns the summary with sizes added."""
    out.mkdir(parents=True, exist_ok=True)
    history = result["history"]
    write_json(out / "config.json", config)
    write_json(out / "history.json", history.epochs)
    write_npz(out / "steps.npz", **{k: np.asarray(v) for k, v in history.steps.items()})
    params = {f"W{l}": W for l, W in enumerate(result["weights"])}
    params.update({f"b{l}": b for l, b in enumerate(result["biases"])})
    write_npz(out / "params.npz", **params)
    sizes = save_sparse(out / "model_sparse.npz", result["weights"], result["biases"])
    summary = {**result["summary"], **sizes}
    write_json(out / "summary.json", summary)
    return summary


def run_training(args, deviations: tuple, out: Path) -> dict:
    """Load the task, train, write the run directory and print where it is."""
    data = load_task(args.data, alpha=args.alpha, data_dir=args.data_dir, seed=args.seed)
    layers = args.layers or DEFAULT_LAYERS[args.data]
    cfg = TrainConfig(method=args.method, variant=args.variant, deviations=deviations,
                      loss=LOSS_OF_TASK[args.data], r0=args.r0, tau0=args.tau0, lr=args.lr,
                      lr_r=args.lr_r, lr_tau=args.lr_tau, lam=args.lam, epochs=args.epochs,
                      batch_size=args.batch_size, seed=args.seed, dtype=args.dtype, density=args.density)
    print(f"training {cfg.method}{' (' + cfg.variant + ')' if cfg.method == 'lrp' else ''} on {data.name}, "
          f"layers {','.join(map(str, layers))}, {data.x_train.shape[0]} training rows, "
          f"{cfg.epochs} epochs of batch {cfg.batch_size}", flush=True)
    result = train(data, layers, cfg, log=lambda line: print(line, flush=True))
    config = {**config_dict(cfg), "data": args.data, "data_dir": args.data_dir, "alpha": args.alpha,
              "layers": list(layers)}
    summary = write_run(out, result, config)
    metric = "test_accuracy" if "test_accuracy" in summary else "test_r2"
    print(f"done in {summary['seconds']:.1f}s: {metric} {summary[metric]:.4f}, sparsity {summary['sparsity']:.4f} "
          f"(compression {summary['compression']:.2f}x), r {summary['r']:.4f}, tau {summary['tau']:.3e}; "
          f"weights {summary['dense_bytes']} bytes dense, {summary['sparse_bytes']} bytes sparse")
    print(f"results in {out}")
    return summary
