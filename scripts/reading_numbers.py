"""Print the numbers that results/READING.md quotes, computed from the committed results.

Usage: python scripts/reading_numbers.py [--results DIR]

Reads only result files (no training). Prints, for the synthetic task, the
overfit R² per α (mean and min over seeds) and the validation R² per pruning
ratio after and before training; for Table 4.6, r of each run at the step
where the thesis's Fig. 4.12 trace ends (≈18,800) and at the end, and for the
disputed row (r0 = 0.95, λ = 0) under H1 and H2 the seeds' mean sparsity over the
last epochs; and, for the matched group's magnitude pruning at initialisation, how many
weights each layer keeps (re-drawing each job's initial weights from its seed). The r0
sweep's numbers are in the generated figures/rsweep_vs_thesis.md.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from refprune.experiments.figures.mnist import TABLE_RUNS, one
from refprune.experiments.figures.mnist_sweep import r_at
from refprune.experiments.figures.protocol_settings import SEEDS, run_name, under
from refprune.experiments.figures.synthetic import POST_ALPHAS, PRE_ALPHAS, TAG
from refprune.experiments.sweep import load_results
from refprune.train.loop import VARIANTS

THESIS_FIG_4_12_LAST_STEP = 18_800  # where the thesis's r trace of Fig. 4.12 ends (read off the figure)
LAST_EPOCHS = 5  # how many final epochs of the disputed row's sparsity to print


def overfit_lines(results) -> list[str]:
    by_alpha = defaultdict(list)
    for rec in load_results(results, f"overfit_{TAG}_"):
        by_alpha[rec["alpha"]].append(rec["r2"])
    return [f"  α = {a:2d}: mean {np.mean(v):.2f}, min {np.min(v):.2f} ({len(v)} seeds)"
            for a, v in sorted(by_alpha.items())]


def pruning_lines(results, prefix: str, alphas) -> list[str]:
    lines = []
    for alpha in alphas:
        by_ratio = defaultdict(list)
        for rec in load_results(results, f"{prefix}_{TAG}_a{alpha:02d}_"):
            for row in rec.get("by_ratio", [rec]):
                by_ratio[row["ratio"]].append(row["val_r2"])
        cells = ", ".join(f"{p:g}: {np.mean(v):.2f}" for p, v in sorted(by_ratio.items()))
        lines.append(f"  α = {alpha}: {cells}")
    return lines


def table_run_lines(results) -> list[str]:
    lines = []
    for variant in VARIANTS:
        for r0, lam in TABLE_RUNS:
            name = run_name(variant, r0, lam)
            lines.append(f"  {name}: r at step {THESIS_FIG_4_12_LAST_STEP:,} "
                         f"{r_at(results, name, THESIS_FIG_4_12_LAST_STEP):.3f}, at the end {r_at(results, name, np.inf):.3f}")
    return lines


def disputed_row_lines(results) -> list[str]:
    """Mean sparsity over the seeds per epoch, last epochs, and its fall in the last one (r0 = 0.95, λ = 0)."""
    lines = []
    for hyp in ("b64", "ddp2"):
        recs = [one(results, under(hyp, run_name("published", 0.95, 0.0, s))) for s in SEEDS]
        curves = np.array([[100 * e["sparsity"] for e in rec["epochs"]] for rec in recs if rec is not None])
        if curves.size == 0:
            continue
        mean = curves.mean(axis=0)
        last = ", ".join(f"{v:.1f}" for v in mean[-LAST_EPOCHS:])
        lines.append(f"  {hyp} ({len(curves)} seeds): mean sparsity (%) at epochs {len(mean) - LAST_EPOCHS + 1}–"
                     f"{len(mean)}: {last}; fall in the last epoch {mean[-2] - mean[-1]:.2f} pp")
    return lines


def kept_per_layer_lines(results) -> list[str]:
    """Weights kept per layer by each matched global pre-training-pruning job (its initial weights, pruned
    globally at its ratio); the jobs that prune each layer at its own ratio keep every layer by construction."""
    from refprune.experiments.jobs import dense_config, job_layers
    from refprune.train.baselines import magnitude_prune
    from refprune.train.loop import init_state

    lines = []
    for rec in load_results(results, "matched_"):
        job = rec["job"]
        if job["kind"] != "pre_pruning" or job["role"]["method"] != "prepruning":
            continue
        state, _ = init_state(job_layers(job), dense_config(job))
        kept = [int(np.count_nonzero(M)) for M in magnitude_prune(state.weights, job["ratio"])]
        magnitudes = np.concatenate([np.abs(W).ravel() for W in state.weights])
        emptied = [100 * np.mean(magnitudes <= np.abs(W).max()) for W in state.weights]  # layer l holds no weight
        lines.append(f"  {job['name']}: sparsity {100 * job['ratio']:.2f}%, kept per layer {kept} of "
                     f"{[W.size for W in state.weights]}, test accuracy {100 * rec['test_accuracy']:.2f}%; "
                     f"a layer is emptied from sparsity {', '.join(f'{e:.1f}%' for e in emptied)}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path(__file__).resolve().parents[1] / "results")
    args = parser.parse_args()
    sections = [("Overfit R² per α (Fig. 4.2)", overfit_lines(args.results)),
                ("Validation R² per ratio, pruning after training (Fig. 4.4)",
                 pruning_lines(args.results, "postprune", POST_ALPHAS)),
                ("Validation R² per ratio, pruning before training (Fig. 4.6)",
                 pruning_lines(args.results, "preprune", PRE_ALPHAS)),
                ("Table 4.6 runs: r", table_run_lines(args.results)),
                ("Table 4.6, r0 = 0.95, λ = 0, under H1 and H2: sparsity at the end", disputed_row_lines(args.results)),
                ("Matched sparsity: weights kept per layer by magnitude pruning at initialisation",
                 kept_per_layer_lines(args.results))]
    for title, lines in sections:
        print(title)
        print("\n".join(lines) if lines else "  (no results)")


if __name__ == "__main__":
    main()
