"""Which post-training procedure the thesis's Figs. 4.4/4.5 used.

Three hypotheses, each a ``post_pruning`` job kind variant (refprune.experiments.jobs):

- ``shared``: one dense network per seed, pruned at every ratio, no fine-tuning
  (the committed ``postprune_p2_*`` runs, the stated reading of the thesis);
- ``pernet``: a fresh dense network for every ratio (seed 1000·s + k), pruned at its ratio;
- ``ft``: one network per seed, pruned at each ratio, then fine-tuned
  ``FINETUNE_EPOCHS`` epochs with the mask fixed (fresh Adam);
- ``pernetft``: both: a fresh network per ratio, pruned, then fine-tuned.

Each is judged on Fig. 4.5: the minimum and maximum validation R² over the 5 seeds at
the thesis's ratios (dense, 10%, …, 90%) beside the thesis's, read off the figure; the
error is the mean |ours − thesis| over those points.
"""

from __future__ import annotations

import numpy as np

from refprune.experiments.figures.common import entry, write_md_csv
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


def job_prefix(hypothesis: str, tag: str) -> str:
    return "postprune_" if hypothesis == "shared" else f"postprune_{hypothesis}_"


def hypothesis_jobs(alphas, seeds, base: dict, epochs: int, ratios, tag: str) -> list:
    """The ``pernet`` and ``ft`` post-training pruning jobs for every α and seed."""
    return [{**base, "name": f"{job_prefix(h, tag)}{tag}_a{a:02d}_s{seed}", "kind": "post_pruning", "alpha": a,
             "seed": seed, "epochs": epochs, "ratios": ratios, **extra}
            for h, extra in POST_PRUNING_JOBS.items() for a in alphas for seed in seeds]


def val_minmax(results, hypothesis: str, tag: str, alpha: int):
    """(seeds, ratios, min, max) of validation R² over seeds at the THESIS_RATIOS every seed has, or None."""
    recs = load_results(results, f"{job_prefix(hypothesis, tag)}{tag}_a{alpha:02d}_")
    if not recs:
        return None
    by_seed = [{round(x["ratio"], 2): x["val_r2"] for x in rec["by_ratio"]} for rec in recs]
    ratios = [p for p in THESIS_RATIOS if all(p in by for by in by_seed)]
    v = np.array([[by[p] for p in ratios] for by in by_seed])
    return len(recs), ratios, v.min(axis=0), v.max(axis=0)


def rows(results, tag: str, alphas) -> list:
    out = []
    for alpha in alphas:
        thesis = THESIS_FIG45.get(alpha)
        for hyp in ("shared", *POST_PRUNING_JOBS):
            got = val_minmax(results, hyp, tag, alpha)
            row = {"α": alpha, "hypothesis": hyp}
            if got is None:
                out.append({**row, "seeds": 0, "min R² (ours | thesis)": "not run", "max R² (ours | thesis)": "",
                            "mean |error|": "—"})
                continue
            n, ratios, lo, hi = got
            th = {k: [thesis[k][THESIS_RATIOS.index(p)] for p in ratios] if thesis else [None] * len(ratios)
                  for k in ("min", "max")}
            errs = [abs(o - t) for o, t in zip(list(lo) + list(hi), th["min"] + th["max"]) if t is not None]
            fmt = lambda ours, ref: " ".join(f"{o:.2f}|{'—' if t is None else f'{t:.2f}'}" for o, t in zip(ours, ref))  # noqa: E731
            out.append({**row, "seeds": n, "min R² (ours | thesis)": fmt(lo, th["min"]),
                        "max R² (ours | thesis)": fmt(hi, th["max"]),
                        "mean |error|": f"{np.mean(errs):.3f}" if errs else "—"})
    return out


def plot(results, out, tag: str, alphas) -> list:
    table = rows(results, tag, alphas)
    if all(r["seeds"] == 0 for r in table if r["hypothesis"] != "shared"):
        return []
    keys = ["α", "hypothesis", "seeds", "min R² (ours | thesis)", "max R² (ours | thesis)", "mean |error|"]
    md = write_md_csv(out, "post_pruning_hypotheses", keys, table)
    return [entry("post_pruning_hypotheses", "Figs. 4.4/4.5",
                  "post-training pruning under four hypotheses (one shared network; a network per ratio; "
                  f"fine-tuning {FINETUNE_EPOCHS} epochs after pruning; both): min and max validation R² over seeds at "
                  "dense, 10%, …, 90% beside the thesis's Fig. 4.5 (ours|thesis), and the mean |error|",
                  f"postprune_*{tag}_*", files=["post_pruning_hypotheses.md", "post_pruning_hypotheses.csv"],
                  section=("Post-training pruning: which procedure fits Figs. 4.4/4.5", md))]
