"""Which post-training procedure the thesis's Figs. 4.4/4.5 used.

Four hypotheses, each a variant of the ``post_pruning`` job kind (refprune.experiments.jobs):

- ``shared``: one dense network per seed, pruned at every ratio, no fine-tuning
  (the committed ``postprune_p2_*`` runs, the stated reading of the thesis);
- ``pernet``: a fresh dense network for every ratio (seed 1000·s + k), pruned at its ratio;
- ``ft``: one network per seed, pruned at each ratio, then fine-tuned
  ``FINETUNE_EPOCHS`` epochs with the mask fixed (fresh Adam);
- ``pernetft``: both: a fresh network per ratio, pruned, then fine-tuned.

Each is judged on Fig. 4.5: the minimum and maximum validation R² over the 5 seeds at
the thesis's ratios (dense, 10%, …, 90%) beside the thesis's, read off the figure; the
error is the mean |ours − thesis| over those points. And on Fig. 4.4: the mean validation
R² over the seeds beside the thesis's mean curve, read off the figure: the mean |error|, and
at how many of the ten ratios the thesis's mean lies inside the 95% prediction interval for
the mean of 5 new runs (the thesis's means are over 5 runs, p. 39).
"""

from __future__ import annotations

import numpy as np

from refprune.experiments.figures.common import PREDICTION_LEVEL, entry, prediction_interval, write_md_csv
from refprune.experiments.sweep import load_results

FINETUNE_EPOCHS = 30  # a tenth of the 300 training epochs; the thesis states no fine-tuning at all
POST_PRUNING_JOBS = {"pernet": {"hypothesis": "per_ratio_network"},
                     "ft": {"hypothesis": "finetune", "finetune_epochs": FINETUNE_EPOCHS},
                     "pernetft": {"hypothesis": "per_ratio_network", "finetune_epochs": FINETUNE_EPOCHS}}
THESIS_RATIOS = [round(0.1 * i, 1) for i in range(10)]  # dense, 10%, …, 90% (the thesis's x axis)
# Fig. 4.5 (thesis p. 39), read off by eye at 220 dpi (±0.02): min and max R² over 5 seeds
# per ratio. The max curve has no point at "dense" (None).
THESIS_FIG45 = {
    20: {"min": [0.85, 0.95, 0.94, 0.98, 0.98, 0.975, 0.985, 0.98, 0.965, 0.59],
         "max": [None, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.985]},
    21: {"min": [0.62, 0.63, 0.615, 0.65, 0.82, 0.815, 0.845, 0.81, 0.815, 0.51],
         "max": [None, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.99]},
    22: {"min": [0.0, 0.005, -0.01, 0.46, 0.44, 0.94, 0.47, 0.97, 0.005, -0.01],
         "max": [None, 0.995, 0.995, 1.0, 1.0, 0.995, 1.0, 0.99, 0.995, 0.975]},
}
# Fig. 4.4 (thesis p. 39), read off by eye at 250 dpi: the mean R² curve labelled "Test" (the
# "Train" curve lies under it), ±0.01 at α = 20 and 21, ±0.02 at α = 22 (a wider axis).
THESIS_FIG44 = {
    20: [0.955, 0.978, 0.98, 0.99, 0.99, 0.993, 0.994, 0.992, 0.983, 0.852],
    21: [0.88, 0.883, 0.882, 0.89, 0.938, 0.948, 0.948, 0.925, 0.948, 0.778],
    22: [0.58, 0.58, 0.575, 0.825, 0.86, 0.965, 0.87, 0.98, 0.76, 0.685],
}
THESIS_SEEDS = 5  # the runs behind each of the thesis's curves ("all the 5 experiments", p. 39)


def job_prefix(hypothesis: str, tag: str) -> str:
    return "postprune_" if hypothesis == "shared" else f"postprune_{hypothesis}_"


def hypothesis_jobs(alphas, seeds, base: dict, epochs: int, ratios, tag: str) -> list:
    """The ``pernet`` and ``ft`` post-training pruning jobs for every α and seed."""
    return [{**base, "name": f"{job_prefix(h, tag)}{tag}_a{a:02d}_s{seed}", "kind": "post_pruning", "alpha": a,
             "seed": seed, "epochs": epochs, "ratios": ratios, **extra}
            for h, extra in POST_PRUNING_JOBS.items() for a in alphas for seed in seeds]


def val_runs(results, hypothesis: str, tag: str, alpha: int):
    """(ratios, seeds × ratios validation R²) at the THESIS_RATIOS every seed has, or None without results."""
    recs = load_results(results, f"{job_prefix(hypothesis, tag)}{tag}_a{alpha:02d}_")
    if not recs:
        return None
    by_seed = [{round(x["ratio"], 2): x["val_r2"] for x in rec["by_ratio"]} for rec in recs]
    ratios = [p for p in THESIS_RATIOS if all(p in by for by in by_seed)]
    return ratios, np.array([[by[p] for p in ratios] for by in by_seed])


def val_minmax(results, hypothesis: str, tag: str, alpha: int):
    """(seeds, ratios, min, max) of validation R² over seeds at the THESIS_RATIOS every seed has, or None."""
    got = val_runs(results, hypothesis, tag, alpha)
    if got is None:
        return None
    ratios, v = got
    return v.shape[0], ratios, v.min(axis=0), v.max(axis=0)


def fig44_fit(ratios, v, thesis) -> dict:
    """Our mean validation R² against the thesis's Fig. 4.4 mean at ``ratios``: the means, mean |error|,
    and how many thesis means lie in the prediction interval for the mean of THESIS_SEEDS new runs."""
    th = [thesis[THESIS_RATIOS.index(p)] for p in ratios]
    means = v.mean(axis=0)
    inside = None
    if v.shape[0] > 1:
        bounds = [prediction_interval(v[:, j], new_runs=THESIS_SEEDS) for j in range(len(ratios))]
        inside = sum(lo <= t <= hi for (lo, hi), t in zip(bounds, th))
    return {"means": means, "thesis": th, "error": float(np.mean(np.abs(means - th))), "inside": inside}


def fmt_pairs(ours, ref) -> str:
    """"ours|thesis" per ratio, "—" where the thesis has no point."""
    return " ".join(f"{o:.2f}|{'—' if t is None else f'{t:.2f}'}" for o, t in zip(ours, ref))


EMPTY_CELLS = {"min R² (ours | thesis)": "not run", "max R² (ours | thesis)": "", "Fig. 4.5 mean |error|": "—",
           "mean R² (ours | thesis)": "", "Fig. 4.4 mean |error|": "—", "Fig. 4.4 thesis means in interval": "—"}


def rows(results, tag: str, alphas) -> list:
    out = []
    for alpha in alphas:
        thesis = THESIS_FIG45.get(alpha)
        for hyp in ("shared", *POST_PRUNING_JOBS):
            got = val_runs(results, hyp, tag, alpha)
            row = {"α": alpha, "hypothesis": hyp}
            if got is None:
                out.append({**row, "seeds": 0, **EMPTY_CELLS})
                continue
            ratios, v = got
            lo, hi = v.min(axis=0), v.max(axis=0)
            th = {k: [thesis[k][THESIS_RATIOS.index(p)] for p in ratios] if thesis else [None] * len(ratios)
                  for k in ("min", "max")}
            errs = [abs(o - t) for o, t in zip(list(lo) + list(hi), th["min"] + th["max"]) if t is not None]
            row.update({"seeds": v.shape[0], "min R² (ours | thesis)": fmt_pairs(lo, th["min"]),
                        "max R² (ours | thesis)": fmt_pairs(hi, th["max"]),
                        "Fig. 4.5 mean |error|": f"{np.mean(errs):.3f}" if errs else "—"})
            if alpha in THESIS_FIG44:
                fit = fig44_fit(ratios, v, THESIS_FIG44[alpha])
                row.update({"mean R² (ours | thesis)": fmt_pairs(fit["means"], fit["thesis"]),
                            "Fig. 4.4 mean |error|": f"{fit['error']:.3f}",
                            "Fig. 4.4 thesis means in interval": "—" if fit["inside"] is None else
                            f"{fit['inside']} of {len(ratios)}"})
            out.append({**EMPTY_CELLS, **row})
    return out


HYPOTHESIS_KEYS = ["α", "hypothesis", "seeds", "min R² (ours | thesis)", "max R² (ours | thesis)", "Fig. 4.5 mean |error|",
              "mean R² (ours | thesis)", "Fig. 4.4 mean |error|", "Fig. 4.4 thesis means in interval"]


def plot(results, out, tag: str, alphas) -> list:
    table = rows(results, tag, alphas)
    if all(r["seeds"] == 0 for r in table if r["hypothesis"] != "shared"):
        return []
    md = write_md_csv(out, "post_pruning_hypotheses", HYPOTHESIS_KEYS, table)
    return [entry("post_pruning_hypotheses", "Figs. 4.4/4.5",
                  "post-training pruning under four hypotheses (one shared network; a network per ratio; "
                  f"fine-tuning {FINETUNE_EPOCHS} epochs after pruning; both): at dense, 10%, …, 90%, the min and max "
                  "validation R² over seeds beside the thesis's Fig. 4.5 and the mean beside its Fig. 4.4 "
                  "(ours|thesis), each with the mean |error|; for Fig. 4.4 also at how many ratios the thesis's mean "
                  f"lies in the {100 * PREDICTION_LEVEL:g}% prediction interval for the mean of {THESIS_SEEDS} new runs",
                  f"postprune_*{tag}_*", files=["post_pruning_hypotheses.md", "post_pruning_hypotheses.csv"],
                  section=("Post-training pruning: which procedure fits Figs. 4.4/4.5", md))]
