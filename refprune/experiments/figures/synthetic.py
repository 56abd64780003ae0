"""The practical example (thesis §3.1, §4.1): datasets, overfitting per α, magnitude pruning.

Figs. 3.1/3.2/4.3 (the data), 4.1/4.2 (one batch overfitted for 1000 epochs
per α, 5 seeds), 4.4/4.5 (post-training pruning, α = 20, 21, 22: fine-tuned after
pruning, the procedure that fits the thesis's figures best, and not fine-tuned; see
:mod:`.synthetic_hypotheses`) and 4.6/4.7 (pre-training pruning, α = 20, 21).

Protocol choices the thesis leaves open (documented in the figure index),
set so that the dense fits reproduce the thesis's capacity curve (R² ≈ 1 up
to α ≈ 20, degrading after; dense R² at α = 20, 21, 22 near the thesis's
Fig. 4.4): Adam at lr 1e-2, minibatches of 32 (the thesis's MNIST batch);
the overfitted subset is the first 256 points of the fixed training split,
1000 epochs; the networks pruned after or before training are trained on the
whole training split for 300 epochs. "p2" in the job names names this
protocol (lr 1e-3 on one batch of 64 fits nothing beyond α ≈ 5).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from refprune.data.synthetic import make_synthetic
from refprune.experiments.figures import synthetic_hypotheses
from refprune.experiments.figures.common import (
    band,
    entry,
    mark_clipped,
    median_iqr,
    minmax,
    save,
    seeds_text,
)
from refprune.experiments.sweep import load_results

# α of the thesis's Figs. 4.1/4.2 (read off Fig. 4.2, thesis p. 38): 1, 5, 10, 11, …, 40, 45, 50.
THESIS_ALPHAS = [1, 5] + list(range(10, 41)) + [45, 50]
# Run: every α from 1 to 40 (1…30 were run first), then the thesis's 45 and 50.
FULL = {"alphas": sorted(set(range(1, 41)) | set(THESIS_ALPHAS)), "seeds": list(range(5)), "overfit_epochs": 1000,
        "prune_epochs": 300, "ratios": [round(0.05 * i, 2) for i in range(20)] + [0.97, 0.99]}
QUICK = {"alphas": [1, 2], "seeds": [0, 1], "overfit_epochs": 20, "prune_epochs": 3,
         "ratios": [0.0, 0.5, 0.9]}
BATCH, LR, OVERFIT_POINTS, TAG = 32, 1e-2, 256, "p2"
PROTOCOL = ("1000 evenly spaced points of eq. (3.1) on [−1, 1] (inputs rescaled to [0, 1], outputs min–max "
            "normalised × 10), one fixed 80/20 split for every α and seed; 1-32-32-32-1 ReLU, MSE, Adam lr 1e-2, "
            "minibatches of 32. The thesis leaves the subset, batch, learning rate and the pruned networks' "
            "training open; they are set here so that the dense fits follow the thesis's capacity curve: the "
            "overfitted subset is the first 256 training points, 1000 epochs; the networks pruned after training "
            "are trained on the whole training split (800 points) for 300 epochs, then pruned, without "
            "fine-tuning and (the procedure that fits the thesis's Figs. 4.4/4.5 best; the thesis does not describe "
            f"it) fine-tuned {synthetic_hypotheses.FINETUNE_EPOCHS} epochs after pruning with the mask fixed; "
            "pre-training pruning trains the same way with the mask fixed. α = 1…40, 45, 50 (every "
            "α of the thesis's Fig. 4.2 — 1, 5, 10…40, 45, 50 — and 2–4, 6–9) and 5 seeds for Figs. 4.1/4.2; pruning ratios 0, 0.05, …, 0.95, 0.97, 0.99. (With lr 1e-3 on one batch of 64 "
            "instead, the dense networks fit nothing beyond α ≈ 5.)")
POST_ALPHAS, PRE_ALPHAS = (20, 21, 22), (20, 21)
R2_FLOOR = -0.2  # lower y limit of the pruning figures: R² below it is clipped and marked ▼


def settings(quick: bool) -> dict:
    return QUICK if quick else FULL


def alphas_for(group: tuple, quick: bool) -> list:
    return [1, 2] if quick else list(group)


def jobs(quick: bool, data_dir=None) -> list:
    s = settings(quick)
    base = {"data": "synthetic", "batch_size": BATCH, "lr": LR}
    out = [{**base, "name": f"overfit_{TAG}_a{a:02d}_s{seed}", "kind": "overfit", "alpha": a, "seed": seed,
            "points": OVERFIT_POINTS, "epochs": s["overfit_epochs"]} for a in s["alphas"] for seed in s["seeds"]]
    out += [{**base, "name": f"postprune_{TAG}_a{a:02d}_s{seed}", "kind": "post_pruning", "alpha": a, "seed": seed,
             "epochs": s["prune_epochs"], "ratios": s["ratios"]}
            for a in alphas_for(POST_ALPHAS, quick) for seed in s["seeds"]]
    out += [{**base, "name": f"preprune_{TAG}_a{a:02d}_s{seed}_p{p:.2f}", "kind": "pre_pruning", "alpha": a,
             "seed": seed, "epochs": s["prune_epochs"], "ratio": p}
            for a in alphas_for(PRE_ALPHAS, quick) for seed in s["seeds"] for p in s["ratios"]]
    return out + synthetic_hypotheses.hypothesis_jobs(alphas_for(POST_ALPHAS, quick), s["seeds"], base,
                                                      s["prune_epochs"], s["ratios"], TAG)


def plot_data(out) -> list:
    entries = []
    for alpha, stem, thesis in ((1, "fig3_1_data_alpha1", "Fig. 3.1"), (25, "fig3_2_data_alpha25", "Fig. 3.2")):
        d = make_synthetic(alpha)
        fig, ax = plt.subplots(figsize=(5, 3.4))
        ax.plot(d.x_all[:, 0], d.y_all[:, 0], lw=1)
        ax.set(xlabel="x (rescaled to [0, 1])", ylabel="y", title=f"Synthetic data set, α = {alpha}")
        save(fig, out, stem)
        entries.append(entry(stem, thesis, f"the synthetic data set (eq. 3.1) for α = {alpha}", "—"))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), sharey=True, layout="constrained")
    for ax, alpha in zip(axes, POST_ALPHAS):
        d = make_synthetic(alpha)
        ax.plot(d.x_all[:, 0], d.y_all[:, 0], lw=1)
        ax.set(xlabel="x", title=f"α = {alpha}")
    axes[0].set_ylabel("y")
    save(fig, out, "fig4_3_data_alpha20_22")
    entries.append(entry("fig4_3_data_alpha20_22", "Fig. 4.3", "the data sets for α = 20, 21, 22", "—"))
    return entries


def by_alpha(records, key) -> tuple[list, np.ndarray]:
    """(alphas, array seeds × alphas) of a scalar field of overfit records."""
    alphas = sorted({r["alpha"] for r in records})
    seeds = sorted({r["seed"] for r in records})
    table = {(r["alpha"], r["seed"]): r[key] for r in records}
    return alphas, np.array([[table[(a, s)] for a in alphas] for s in seeds])


def plot_overfit(results, out) -> list:
    recs = load_results(results, f"overfit_{TAG}_")
    if not recs:
        return []
    alphas, loss = by_alpha(recs, "loss")
    _, r2 = by_alpha(recs, "r2")
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    thesis = [a for a in THESIS_ALPHAS if a in alphas]
    at_thesis = [alphas.index(a) for a in thesis]
    for ax, scale in zip(axes, ("linear", "log")):
        # mean − std goes below 0 where seeds differ a lot: the log panel draws median and IQR instead
        centre = band(ax, alphas, loss, "mean ± std") if scale == "linear" else median_iqr(ax, alphas, loss, "seeds")
        minmax(ax, alphas, loss, "seeds")
        ax.plot(thesis, centre.get_ydata()[at_thesis], "o", ms=3, color="k", label="α of the thesis's Fig. 4.1")
        what = "mean ± std" if scale == "linear" else "median, IQR"
        ax.set(xlabel="α", ylabel="MSE on the batch", yscale=scale, title=f"Overfitted batch loss ({scale}; {what})")
        ax.legend(fontsize=7)
    save(fig, out, "fig4_1_overfit_loss")
    fig, ax = plt.subplots(figsize=(7.5, 3.8), layout="constrained")
    band(ax, alphas, r2, "mean ± std")
    minmax(ax, alphas, r2, "seeds")
    ax.plot(thesis, r2.mean(axis=0)[at_thesis], "o", ms=3, color="k",
            label="α of the thesis's Fig. 4.2")
    ax.set(xlabel="α", ylabel="R²", title="Overfitted batch R² per frequency")
    ax.legend(fontsize=7)
    save(fig, out, "fig4_2_overfit_r2")
    n = loss.shape[0]
    what = (f"after overfitting a subset of {OVERFIT_POINTS} points, {n} seeds, α = {alphas[0]}…{alphas[-1]} "
            f"({len(alphas)} values; the thesis's {len(thesis)} of {len(THESIS_ALPHAS)} marked)")
    return [entry("fig4_1_overfit_loss", "Fig. 4.1", f"loss per α {what}; linear panel mean ± std, log panel "
                  "median and IQR (mean − std is negative at some α)", f"overfit_{TAG}_*"),
            entry("fig4_2_overfit_r2", "Fig. 4.2", f"R² per α {what}", f"overfit_{TAG}_*")]


def curves_of(recs):
    """(ratios, train R² seeds×ratios, val R² seeds×ratios) of post-training records (one per seed)."""
    ratios = [x["ratio"] for x in recs[0]["by_ratio"]] if recs else []
    if any([x["ratio"] for x in r["by_ratio"]] != ratios for r in recs):
        raise ValueError("post-training pruning results of one α must share their ratios")
    tr = np.array([[x["train_r2"] for x in r["by_ratio"]] for r in recs])
    va = np.array([[x["val_r2"] for x in r["by_ratio"]] for r in recs])
    return ratios, tr, va


def post_curves(results, hypothesis: str, alpha: int):
    """(ratios, train, val) of one post-training procedure (a hypothesis of :mod:`.synthetic_hypotheses`)."""
    return curves_of(load_results(results, f"{synthetic_hypotheses.job_prefix(hypothesis, TAG)}{TAG}_a{alpha:02d}_"))


def pre_curves(results, alpha: int):
    """(ratios, train, val) of pruning before training, one job per seed and ratio."""
    recs = load_results(results, f"preprune_{TAG}_a{alpha:02d}_")
    ratios = sorted({r["ratio"] for r in recs})
    seeds = sorted({r["seed"] for r in recs})
    t = {(r["seed"], r["ratio"]): r for r in recs}
    tr = np.array([[t[(s, p)]["train_r2"] for p in ratios] for s in seeds])
    va = np.array([[t[(s, p)]["val_r2"] for p in ratios] for s in seeds])
    return ratios, tr, va


# The two procedures Figs. 4.4/4.5 draw, one row each: the one that fits the thesis's figures best
# (table post_pruning_hypotheses) and the one the thesis's text describes.
POST_ROWS = (("ft", f"Fine-tuned {synthetic_hypotheses.FINETUNE_EPOCHS} epochs after pruning (mask fixed) — the "
                    "procedure that fits the thesis best; the thesis does not describe it"),
             ("shared", "Pruned without fine-tuning (one trained network per seed) — the procedure as the thesis "
                        "describes it"))
SPLIT_COLORS = (("train", "tab:blue"), ("validation", "tab:orange"))


def thesis_points(ax, kind: str, alpha: int) -> None:
    """The thesis's read-off values (Fig. 4.4 mean, Fig. 4.5 min and max) as black markers, where there are some."""
    x = [100 * p for p in synthetic_hypotheses.THESIS_RATIOS]
    if kind == "mean" and alpha in synthetic_hypotheses.THESIS_FIG44:
        ax.plot(x, synthetic_hypotheses.THESIS_FIG44[alpha], "kx", ms=6, label="thesis Fig. 4.4 (read off)")
    elif kind == "minmax" and alpha in synthetic_hypotheses.THESIS_FIG45:
        th = synthetic_hypotheses.THESIS_FIG45[alpha]
        ax.plot(x, [np.nan if v is None else v for v in th["max"]], "k+", ms=8, label="thesis Fig. 4.5 max")
        ax.plot(x, th["min"], "kx", ms=6, label="thesis Fig. 4.5 min")


def pruning_panel(ax, curves, kind: str) -> int:
    """Train and validation over seeds: mean ± 1 std (``kind`` "mean") or min and max; returns the ▼ count."""
    ratios, tr, va = curves
    x = [100 * p for p in ratios]
    clipped = 0
    for runs, (label, color) in zip((tr, va), SPLIT_COLORS):
        if kind == "mean":
            band(ax, x, runs, f"{label} mean ± 1 std", color=color)
            low = runs.mean(axis=0)
        else:
            minmax(ax, x, runs, label, color=color)
            low = runs.min(axis=0)
        clipped += mark_clipped(ax, x, low, R2_FLOOR, color=color)
    return clipped


def pruning_figure(rows, alphas, kind: str, title: str, thesis: bool):
    """One row of panels (one per α) per (row title, {α: curves}); every panel the same y range.

    Returns the figure and how many (row, α, split, ratio) points are below the axis (▼).
    """
    fig = plt.figure(figsize=(4.6 * len(alphas), 3.3 * len(rows) + 0.5), layout="constrained")
    subfigs = np.atleast_1d(fig.subfigures(len(rows), 1))
    clipped, first = 0, None
    for sub, (row_title, curves) in zip(subfigs, rows):
        axes = np.atleast_1d(sub.subplots(1, len(alphas), sharey=True))
        for ax, a in zip(axes, alphas):
            clipped += pruning_panel(ax, curves[a], kind)
            if thesis:
                thesis_points(ax, kind, a)
            ax.set(xlabel="pruning ratio (%)", title=f"α = {a}", ylim=(R2_FLOOR, 1.05), xlim=(-2, 101))
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("R²")
        first = first or axes[0]
        if len(rows) > 1:
            sub.suptitle(row_title, fontsize=10)
    first.legend(fontsize=7, loc="lower left")
    fig.suptitle(title)
    return fig, clipped


WHAT = {"mean": "mean ± 1 std (ddof 0)", "minmax": "min and max"}


def caption(kind: str, n: int, alphas, when: str, clipped: int, extra: str = "") -> str:
    below = "mean" if kind == "mean" else "minimum"
    note = (f"; the y axis ends at R² = {R2_FLOOR:g}, ▼ marks the {clipped} (procedure, α, split, ratio) points whose "
            f"{below} lies below" if clipped else "")
    return (f"{when} global magnitude pruning, train and validation R² {WHAT[kind]} over {seeds_text(n)} per pruning "
            f"ratio, α = {', '.join(map(str, alphas))}{extra}{note}")


def post_fit_text(results, alphas, kind: str, hypotheses) -> str:
    """The validation mean |error| against the thesis's figure, per α, for each procedure drawn."""
    table = {(r["α"], r["hypothesis"]): r for r in synthetic_hypotheses.rows(results, TAG, alphas)}
    col = "Fig. 4.4 mean |error|" if kind == "mean" else "Fig. 4.5 mean |error|"
    parts = [f"{hyp} {' / '.join(table[(a, hyp)][col] for a in alphas)}" for hyp in hypotheses]
    return (f"; black: the thesis's Fig. 4.{4 if kind == 'mean' else 5} read off; validation mean |error| against it "
            f"at dense, 10%, …, 90% (α = {' / '.join(map(str, alphas))}): {'; '.join(parts)}")


def lower_first(text: str) -> str:
    return text[0].lower() + text[1:]


def plot_post_pruning(results, out, alphas) -> list:
    """Figs. 4.4/4.5: a row for the best-fitting procedure (fine-tuned) and a row for no fine-tuning, those run."""
    curves = {hyp: {a: post_curves(results, hyp, a) for a in alphas} for hyp, _ in POST_ROWS}
    drawn = [(hyp, title) for hyp, title in POST_ROWS if alphas and all(len(c[0]) for c in curves[hyp].values())]
    if not drawn:
        return []
    rows = [(title, curves[hyp]) for hyp, title in drawn]
    n = curves[drawn[0][0]][alphas[0]][1].shape[0]
    jobs = "postprune_*"  # the index takes one prefix: the jobs of every post-training procedure
    where = ("top row: ", "bottom row: ") if len(drawn) > 1 else ("", "")
    procedures = "; ".join(w + lower_first(title) for w, (_, title) in zip(where, drawn))
    entries = []
    for kind, stem, thesis in (("mean", "fig4_4_post_pruning_mean", "Fig. 4.4"),
                               ("minmax", "fig4_5_post_pruning_minmax", "Fig. 4.5")):
        fig, clipped = pruning_figure(rows, alphas, kind, f"Post-training pruning: R² {WHAT[kind]} over "
                                      f"{seeds_text(n)}" + ("" if len(drawn) > 1 else f"\n{drawn[0][1]}"), thesis=True)
        save(fig, out, stem)
        extra = f"; {procedures}" + post_fit_text(results, alphas, kind, [h for h, _ in drawn])
        entries.append(entry(stem, thesis, caption(kind, n, alphas, "post-training", clipped, extra), jobs))
    return entries


def plot_pre_pruning(results, out, alphas) -> list:
    """Figs. 4.6/4.7: pruning before training (mask fixed from the initialisation)."""
    curves = {a: pre_curves(results, a) for a in alphas}
    if not alphas or not all(len(c[0]) for c in curves.values()):
        return []
    n = curves[alphas[0]][1].shape[0]
    entries = []
    for kind, stem, thesis in (("mean", "fig4_6_pre_pruning_mean", "Fig. 4.6"),
                               ("minmax", "fig4_7_pre_pruning_minmax", "Fig. 4.7")):
        fig, clipped = pruning_figure([("", curves)], alphas, kind, f"Pruning before training (mask fixed from the "
                                      f"initialisation): R² {WHAT[kind]} over {seeds_text(n)}", thesis=False)
        save(fig, out, stem)
        entries.append(entry(stem, thesis, caption(kind, n, alphas, "pre-training", clipped), f"preprune_{TAG}_*"))
    return entries


def plot(results, out) -> list:
    entries = plot_data(out) + plot_overfit(results, out)
    post = sorted({r["alpha"] for r in load_results(results, f"postprune_{TAG}_")})
    pre = sorted({r["alpha"] for r in load_results(results, f"preprune_{TAG}_")})
    entries += plot_post_pruning(results, out, post) + plot_pre_pruning(results, out, pre)
    return entries + synthetic_hypotheses.plot(results, out, TAG, post)
