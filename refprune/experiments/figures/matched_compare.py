"""The matched-sparsity comparison (:mod:`.matched`): points, per-run comparisons, table, reading, figure.

Every result becomes *points* (one per data set, seed, method and LRP run
the sparsity comes from): sparsity, test accuracy, epochs and wall time.
A *comparison* pairs the LRP runs of one data set and source over seeds with
one baseline's runs at their sparsities: the difference of the means and the
spread, the larger of the two standard deviations over seeds. The reading
says, from these alone, where LRP wins, loses or is within the spread.

Wall time is the training's as each job measured it: a ``train`` job's
summary ``seconds`` (training with its per-epoch evaluation), a
pre-pruning job's ``train_seconds``; post-training pruning counts the dense
training's seconds, plus, with fine-tuning, the pruning, fine-tuning and
evaluation at that ratio.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

METHOD_LABELS = {
    "lrp-global": "LRP (global r)",
    "lrp-layer": "LRP (layer-wise r_l)",
    "post": "magnitude after training",
    "post-ft": "magnitude after training + fine-tuning",
    "prepruning": "magnitude at initialisation",
    "fixedr": "fixed-ratio soft mask (r frozen, τ learned)",
}
BASELINES = ("post", "post-ft", "prepruning", "fixedr")
METHOD_STYLE = {  # marker, line style, colour: each method its own
    "lrp-global": ("o", "-", "tab:blue"), "lrp-layer": ("s", "-", "tab:cyan"),
    "post": ("v", ":", "tab:red"), "post-ft": ("^", "--", "tab:orange"),
    "prepruning": ("D", "-.", "tab:green"), "fixedr": ("P", (0, (5, 1, 1, 1)), "tab:purple"),
}
# A baseline can fall far below the rest (pruning after training without fine-tuning; pruning
# at initialisation when a whole layer is pruned). Then the accuracy axis ends this many pp below
# the lowest LRP or dense point, and ▼ marks each point cut off (its value is in the table).
CLIP_SPAN_PP = 10.0
# A point this close to chance (10 classes: 10%) has collapsed; the reading lists such points.
COLLAPSED_BELOW = 0.2  # test accuracy, twice chance
TABLE_KEYS = ["data", "LRP run", "method", "seeds", "sparsity (%)", "test accuracy (%)", "LRP − method (pp)",
              "in larger std", "verdict", "epochs", "wall time (min)"]
SPREAD_RULE = ("LRP *wins* where its mean test accuracy over seeds is above the method's by more than the spread "
               "(the larger of the two standard deviations over seeds, ddof 1), *loses* where it is below by more, "
               "and is *within the spread* otherwise; where either side has one seed there is no spread and no verdict "
               "(*one seed, not judged*)")
ONE_SEED = "one seed, not judged"


def point(rec: dict, method: str, source, sparsity, accuracy, epochs, seconds) -> dict:
    job = rec["job"]
    return {"data": job["data"], "seed": job["seed"], "method": method, "source": source,
            "sparsity": float(sparsity), "accuracy": float(accuracy), "epochs": int(epochs), "seconds": float(seconds)}


def finetune_points(rec: dict) -> list:
    dense = rec["dense"]
    out = []
    for r in rec["by_ratio"]:
        out.append(point(rec, "post", r["source"], r["sparsity"], r["pruned"]["test_accuracy"], dense["epochs"],
                         dense["seconds"]))
        out.append(point(rec, "post-ft", r["source"], r["sparsity"], r["finetuned"]["test_accuracy"],
                         dense["epochs"] + r["finetune_epochs"], dense["seconds"] + r["seconds"]))
    return out


def collect_points(records) -> list:
    """Points of every matched-group result (records of :func:`refprune.experiments.sweep.load_results`).

    LRP points also carry ``label`` (granularity and r0), for the table.
    """
    out = []
    for rec in records:
        role = rec["job"].get("role", {})
        method, source = role.get("method"), role.get("source")
        if method == "finetune":
            out += finetune_points(rec)
        elif method == "prepruning":
            out.append(point(rec, method, source, rec["sparsity"], rec["test_accuracy"], rec["job"]["epochs"],
                             rec["train_seconds"]))
        elif method is not None:
            s = rec["summary"]
            p = point(rec, method, source, s["sparsity"], s["test_accuracy"], s["epochs_run"], s["seconds"])
            if method.startswith("lrp-"):
                cfg = rec["job"]["config"]
                p["label"] = f"{cfg['granularity']}, r0 = {cfg['r0']:g}"
            out.append(p)
    return out


def stats(points) -> dict:
    """Seeds, mean and std over seeds (ddof 1; 0 for one seed) of accuracy in %, mean sparsity, epochs, seconds."""
    acc = 100 * np.array([p["accuracy"] for p in points])
    return {"n": len(points), "mean": float(acc.mean()), "std": float(acc.std(ddof=1)) if acc.size > 1 else 0.0,
            "sparsity": float(np.mean([p["sparsity"] for p in points])),
            "epochs": float(np.mean([p["epochs"] for p in points])),
            "seconds": float(np.mean([p["seconds"] for p in points]))}


def verdict(diff: float, spread: float) -> str:
    """"wins" if LRP − method > spread, "loses" if < −spread, else "within the spread"."""
    if diff > spread:
        return "wins"
    if diff < -spread:
        return "loses"
    return "within the spread"


def comparison_rows(points) -> list:
    """Per data set, LRP run (source) and baseline present: LRP's and the baseline's stats, difference, verdict."""
    lrp = [p for p in points if p["method"].startswith("lrp-")]
    keys = list(dict.fromkeys((p["data"], p["source"]) for p in lrp))
    out = []
    for data, source in keys:
        mine = [p for p in lrp if (p["data"], p["source"]) == (data, source)]
        for method in BASELINES:
            theirs = [p for p in points if (p["data"], p["source"], p["method"]) == (data, source, method)]
            if not theirs:
                continue
            # compare the seeds both sides have: an LRP seed whose baselines have not run yet stays out
            seeds = {p["seed"] for p in theirs}
            a, b = stats([p for p in mine if p["seed"] in seeds]), stats(theirs)
            # a spread needs two seeds on both sides: one side's alone would judge nothing
            several = min(a["n"], b["n"]) > 1
            diff, spread = a["mean"] - b["mean"], max(a["std"], b["std"]) if several else 0.0
            judged = verdict(diff, spread) if several else ONE_SEED
            out.append({"data": data, "source": source, "label": mine[0].get("label", source),
                        "lrp_method": mine[0]["method"], "method": method, "lrp": a, "lrp_all": stats(mine), "base": b,
                        "diff": diff, "spread": spread, "verdict": judged})
    return out


def pm(s: dict) -> str:
    return f"{s['mean']:.2f} ± {s['std']:.2f}"


def stat_cells(s: dict) -> dict:
    return {"seeds": s["n"], "sparsity (%)": f"{100 * s['sparsity']:.2f}", "test accuracy (%)": pm(s),
            "epochs": f"{s['epochs']:g}", "wall time (min)": f"{s['seconds'] / 60:.2f}"}


def table_rows(comparisons, points) -> list:
    """The table: per data set the dense run, then per LRP run its row and one row per baseline."""
    rows, seen = [], set()
    for data in dict.fromkeys(c["data"] for c in comparisons):
        dense = [p for p in points if p["data"] == data and p["method"] == "dense"]
        if dense:
            rows.append({"data": data, "LRP run": "—", "method": "dense", **stat_cells(stats(dense))})
        for c in (c for c in comparisons if c["data"] == data):
            if (data, c["source"]) not in seen:
                seen.add((data, c["source"]))
                rows.append({"data": data, "LRP run": c["label"], "method": METHOD_LABELS[c["lrp_method"]],
                             **stat_cells(c["lrp_all"])})
            units = f"{c['diff'] / c['spread']:+.1f}" if c["spread"] > 0 else "—"
            rows.append({"data": data, "LRP run": c["label"], "method": METHOD_LABELS[c["method"]],
                         **stat_cells(c["base"]), "LRP − method (pp)": f"{c['diff']:+.2f}", "in larger std": units,
                         "verdict": c["verdict"]})
    return rows


def summary_line(data: str, method: str, cs: list) -> str:
    counts = {v: sum(c["verdict"] == v for c in cs) for v in ("wins", "loses", "within the spread", ONE_SEED)}
    diffs = [c["diff"] for c in cs]
    spreads = [c["spread"] for c in cs if c["verdict"] != ONE_SEED]
    spread = f"spread {min(spreads):.2f}–{max(spreads):.2f} pp" if spreads else "no spread (one seed)"
    seeds = sorted({min(c["lrp"]["n"], c["base"]["n"]) for c in cs})
    return (f"- **{data}**, against {METHOD_LABELS[method]} ({len(cs)} LRP run(s), "
            f"{'/'.join(map(str, seeds))} seed(s) each): LRP wins {counts['wins']}, loses {counts['loses']}, "
            f"within the spread {counts['within the spread']}, not judged (one seed) {counts[ONE_SEED]}; "
            f"LRP − method from {min(diffs):+.2f} to "
            f"{max(diffs):+.2f} pp (mean {np.mean(diffs):+.2f}), {spread}")


def detail(c: dict) -> str:
    units = f", {abs(c['diff']) / c['spread']:.1f}× the spread" if c["spread"] > 0 else ", one seed: no spread"
    return (f"{c['data']}, {c['label']} (sparsity {100 * c['lrp']['sparsity']:.2f}%), against "
            f"{METHOD_LABELS[c['method']]}: {c['diff']:+.2f} pp{units}")


def cost_line(data: str, points) -> str:
    parts = []
    for method in ("dense", *METHOD_LABELS):
        mine = [p for p in points if p["data"] == data and p["method"] == method]
        if mine:
            s = stats(mine)
            parts.append(f"{METHOD_LABELS.get(method, method)} {s['seconds'] / 60:.1f} min ({s['epochs']:g} epochs)")
    return f"- Cost per run on **{data}** (mean wall time, epochs): " + "; ".join(parts)


def reading_lines(comparisons, points) -> list:
    """The generated reading: the rule, per data set and baseline the verdicts, where LRP loses and wins most, cost."""
    lines = [f"Reading (generated from the results): {SPREAD_RULE}.", ""]
    for data in dict.fromkeys(c["data"] for c in comparisons):
        for method in BASELINES:
            cs = [c for c in comparisons if (c["data"], c["method"]) == (data, method)]
            if cs:
                lines.append(summary_line(data, method, cs))
    if all(c["verdict"] == ONE_SEED for c in comparisons):
        lines.append("- No verdicts yet: every comparison has one seed on at least one side.")
        return lines + collapsed_lines(points) + [cost_line(data, points)
                                                  for data in dict.fromkeys(c["data"] for c in comparisons)]
    losses = [c for c in comparisons if c["verdict"] == "loses"]
    lines.append("- Where LRP loses: " + ("; ".join(detail(c) for c in sorted(losses, key=lambda c: c["diff"]))
                                          if losses else "nowhere by more than the spread") + ".")
    wins = sorted((c for c in comparisons if c["verdict"] == "wins"), key=lambda c: -c["diff"])
    if wins:
        lines.append(f"- Largest win: {detail(wins[0])}.")
    lines += collapsed_lines(points)
    lines += [cost_line(data, points) for data in dict.fromkeys(c["data"] for c in comparisons)]
    return lines


def collapsed_lines(points) -> list:
    """One line per method and data set with points below :data:`COLLAPSED_BELOW` test accuracy."""
    out = []
    for data in dict.fromkeys(p["data"] for p in points):
        for method in METHOD_LABELS:
            low = [p for p in points if (p["data"], p["method"]) == (data, method) and p["accuracy"] < COLLAPSED_BELOW]
            if low:
                at = ", ".join(f"{100 * p['accuracy']:.2f}% at {100 * p['sparsity']:.2f}% (seed {p['seed']})"
                               for p in sorted(low, key=lambda p: p["sparsity"]))
                out.append(f"- Collapsed to near chance (test accuracy below {100 * COLLAPSED_BELOW:g}%) on "
                           f"**{data}**, {METHOD_LABELS[method]}: {at}")
    return out


def draw_method(ax, points, method: str) -> None:
    """Every seed as a light point, the mean per LRP run as a marker, the means joined in order of sparsity."""
    marker, ls, color = METHOD_STYLE[method]
    mine = [p for p in points if p["method"] == method]
    if not mine:
        return
    ax.plot([100 * p["sparsity"] for p in mine], [100 * p["accuracy"] for p in mine], marker, color=color,
            alpha=0.3, ms=4, ls="none")
    means = sorted((stats([p for p in mine if p["source"] == s]) for s in dict.fromkeys(p["source"] for p in mine)),
                   key=lambda s: s["sparsity"])
    ax.plot([100 * s["sparsity"] for s in means], [s["mean"] for s in means], marker=marker, ls=ls, color=color,
            ms=7, lw=1.2, label=METHOD_LABELS[method], mfc="none")


def clip_axis(ax, points) -> None:
    """End the accuracy axis :data:`CLIP_SPAN_PP` below the lowest LRP or dense point if any baseline point
    is below that (and a tenth of the span above the highest point shown); ▼ marks the points cut off."""
    kept = [100 * p["accuracy"] for p in points if p["method"] not in BASELINES]
    if not kept:
        return
    floor = min(kept) - CLIP_SPAN_PP
    shown = [100 * p["accuracy"] for p in points if 100 * p["accuracy"] >= floor]
    if len(shown) == len(points):
        return
    step = CLIP_SPAN_PP / 25  # each method's ▼ row a little above the last, so coinciding ones stay visible
    ax.set_ylim(floor, max(shown) + CLIP_SPAN_PP / 10)
    rows = 0
    for method in BASELINES:
        cut = [p for p in points if p["method"] == method and 100 * p["accuracy"] < floor]
        if cut:
            ax.plot([100 * p["sparsity"] for p in cut], [floor + rows * step] * len(cut), "v",
                    color=METHOD_STYLE[method][2], ms=5, clip_on=False, zorder=5)
            rows += 1


def matched_figure(points):
    """Test accuracy against sparsity, one panel per data set, every method with its own marker and line."""
    datasets = list(dict.fromkeys(p["data"] for p in points if p["method"] != "dense"))  # those with comparisons
    fig, axes = plt.subplots(1, len(datasets), figsize=(6.2 * len(datasets), 4.4), squeeze=False,
                             layout="constrained")
    for ax, data in zip(axes[0], datasets):
        mine = [p for p in points if p["data"] == data]
        dense = [p for p in mine if p["method"] == "dense"]
        if dense:
            ax.axhline(stats(dense)["mean"], color="0.4", ls="--", lw=0.8, label="dense (mean)")
        for method in METHOD_LABELS:
            draw_method(ax, mine, method)
        clip_axis(ax, mine)
        seeds = sorted({p["seed"] for p in mine})
        ax.set(xlabel="sparsity (%)", ylabel="test accuracy (%)",
               title=f"{data} ({len(seeds)} seed(s): {', '.join(map(str, seeds))})")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Matched sparsity: LRP and magnitude-pruning baselines\n(light: seeds; markers: means; "
                 "▼: below the axis)")
    return fig
