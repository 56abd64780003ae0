"""The matched-sparsity comparison (:mod:`.matched`): points, per-run comparisons, table, reading, figure.

Every result becomes *points* (one per data set, seed, method and LRP run
the sparsity comes from): sparsity, test accuracy (%), epochs and wall time.
A *comparison* pairs the LRP runs of one data set and source over seeds with
one baseline's runs at their sparsities: the difference of the means and its
95% Welch t-interval (:func:`refprune.experiments.figures.common.welch_interval`).
The verdict says "LRP better" or "LRP worse" where the interval excludes 0,
"not distinguishable" where it contains 0.

Wall time is the training's as each job measured it: a ``train`` job's
summary ``seconds`` (training with its per-epoch evaluation), a
pre-pruning job's ``train_seconds``; post-training pruning counts the dense
training's seconds, plus, with fine-tuning, the pruning, fine-tuning and
evaluation at that ratio.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from refprune.experiments.figures.common import DIFFERENCE_LEVEL, seeds_text, welch_interval

METHOD_LABELS = {
    "lrp-global": "LRP (global r)",
    "lrp-layer": "LRP (layer-wise r_l)",
    "post": "magnitude after training",
    "post-ft": "magnitude after training + fine-tuning",
    "prepruning": "magnitude at initialisation, global",
    "prepruning-layer": "magnitude at initialisation, LRP's sparsity per layer",
    "prepruning-uniform": "magnitude at initialisation, same sparsity in every layer",
    "fixedr": "fixed-ratio soft mask (r frozen, τ learned)",
}
BASELINES = ("post", "post-ft", "prepruning", "prepruning-layer", "prepruning-uniform", "fixedr")
AT_INIT = ("prepruning", "prepruning-layer", "prepruning-uniform")  # pre_pruning jobs, one per point
METHOD_STYLE = {  # marker, line style, colour: each method its own
    "lrp-global": ("o", "-", "tab:blue"), "lrp-layer": ("s", "-", "tab:cyan"),
    "post": ("v", ":", "tab:red"), "post-ft": ("^", "--", "tab:orange"),
    "prepruning": ("D", "-.", "tab:green"), "prepruning-layer": ("X", "-.", "tab:olive"),
    "prepruning-uniform": ("h", ":", "tab:brown"), "fixedr": ("P", (0, (5, 1, 1, 1)), "tab:purple"),
}
# A baseline can fall far below the rest (pruning after training without fine-tuning; global pruning
# at initialisation, which empties the first layer). Points more than this many pp below the lowest
# LRP or dense point go to a lower panel of their own (a broken axis), so every series stays visible.
CLIP_SPAN_PP = 10.0
# A point this close to chance (10 classes: 10%) has collapsed; the reading lists such points.
COLLAPSED_BELOW_PCT = 20.0  # test accuracy (%), twice chance
TABLE_KEYS = ["data", "LRP run", "method", "seeds", "sparsity (%)", "test accuracy (%)", "LRP − method (pp)",
              f"{100 * DIFFERENCE_LEVEL:g}% interval (pp)", "verdict", "epochs", "wall time (min)"]
DIFFERENCE_RULE = (f"each verdict rests on the {100 * DIFFERENCE_LEVEL:g}% t-interval of LRP − method, the difference "
                   "of the mean test accuracies over the seeds both have (Welch: variances not assumed equal, ddof 1, "
                   "Welch–Satterthwaite degrees of freedom): *LRP better* where the interval lies above 0, *LRP worse* "
                   "where it lies below 0, *not distinguishable* where it contains 0; where either side has one seed "
                   "there is no interval and no verdict (*one seed, not judged*)")
BETTER, WORSE, LEVEL_WITH = "LRP better", "LRP worse", "not distinguishable"
ONE_SEED = "one seed, not judged"
NOT_RUN = "not run yet"


def point(rec: dict, method: str, source, sparsity, accuracy, epochs, seconds) -> dict:
    """One run at one sparsity; ``accuracy`` (a fraction) is kept in %."""
    job = rec["job"]
    return {"data": job["data"], "seed": job["seed"], "method": method, "source": source,
            "sparsity": float(sparsity), "accuracy": 100 * float(accuracy), "epochs": int(epochs),
            "seconds": float(seconds)}


def finetune_points(rec: dict) -> list:
    dense = rec["dense"]
    out = []
    for r in rec["by_ratio"]:
        out.append(point(rec, "post", r["source"], r["sparsity"], r["pruned"]["test_accuracy"], dense["epochs"],
                         dense["seconds"]))
        out.append(point(rec, "post-ft", r["source"], r["sparsity"], r["finetuned"]["test_accuracy"],
                         dense["epochs"] + r["finetune_epochs"], dense["seconds"] + r["seconds"]))
    return out


def init_layer_sparsity(rec: dict):
    """Per-layer sparsity of a pre-pruning job's mask: the record's, else (results made before records kept
    it) recomputed from the job's seeded initialisation, which is cheap; None for data that is not MNIST-shaped."""
    if "sparsity_per_layer" in rec:
        return rec["sparsity_per_layer"]
    from refprune.experiments.jobs import MNIST_SHAPED, dense_config, job_layers
    from refprune.train.baselines import layer_magnitude_prune, magnitude_prune
    from refprune.train.loop import init_state

    job = rec["job"]
    if job.get("data") not in MNIST_SHAPED:
        return None
    weights = init_state(job_layers(job), dense_config(job))[0].weights
    ratio = job["ratio"]
    pruned = magnitude_prune(weights, ratio) if np.isscalar(ratio) else layer_magnitude_prune(weights, ratio)
    return [float(np.mean(W == 0)) for W in pruned]


def collect_points(records) -> list:
    """Points of every matched-group result (records of :func:`refprune.experiments.sweep.load_results`).

    LRP points also carry ``label`` (granularity and r0), for the table; at-initialisation points
    ``emptied``, the (1-based) layers their mask prunes entirely (None where unknown).
    """
    out = []
    for rec in records:
        role = rec["job"].get("role", {})
        method, source = role.get("method"), role.get("source")
        if method == "finetune":
            out += finetune_points(rec)
        elif method in AT_INIT:
            p = point(rec, method, source, rec["sparsity"], rec["test_accuracy"], rec["job"]["epochs"],
                      rec["train_seconds"])
            layers = init_layer_sparsity(rec)
            p["emptied"] = None if layers is None else [l + 1 for l, sp in enumerate(layers) if sp == 1.0]
            out.append(p)
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
    acc = np.array([p["accuracy"] for p in points])
    return {"n": len(points), "mean": float(acc.mean()), "std": float(acc.std(ddof=1)) if acc.size > 1 else 0.0,
            "sparsity": float(np.mean([p["sparsity"] for p in points])),
            "epochs": float(np.mean([p["epochs"] for p in points])),
            "seconds": float(np.mean([p["seconds"] for p in points])), "values": acc}


def verdict(low: float, high: float) -> str:
    """From the interval of LRP − method: better above 0, worse below 0, else not distinguishable."""
    if low > 0:
        return BETTER
    if high < 0:
        return WORSE
    return LEVEL_WITH


def method_label(method: str, points, reference) -> str:
    """The method's label; "— collapses" added where every one of ``points`` (the method's) is near chance
    while some of ``reference`` (LRP's) is not, with the layers every one of them empties, where known."""
    label = METHOD_LABELS[method]
    if (not points or any(p["accuracy"] >= COLLAPSED_BELOW_PCT for p in points)
            or all(p["accuracy"] < COLLAPSED_BELOW_PCT for p in reference)):
        return label
    emptied = [p.get("emptied") for p in points]
    common = sorted(set.intersection(*(set(e) for e in emptied))) if all(emptied) else []
    where = f" (empties layer {', '.join(map(str, common))})" if common else ""
    return f"{label} — collapses{where}"


def comparison_rows(points) -> list:
    """Per data set, LRP run (source) and baseline: LRP's and the baseline's stats, difference, interval, verdict.

    A baseline with no points yet gives a row with ``verdict`` :data:`NOT_RUN`.
    """
    lrp = [p for p in points if p["method"].startswith("lrp-")]
    keys = list(dict.fromkeys((p["data"], p["source"]) for p in lrp))
    out = []
    for data, source in keys:
        mine = [p for p in lrp if (p["data"], p["source"]) == (data, source)]
        head = {"data": data, "source": source, "label": mine[0].get("label", source), "lrp_method": mine[0]["method"],
                "lrp_all": stats(mine), "lrp_points": mine}
        for method in BASELINES:
            theirs = [p for p in points if (p["data"], p["source"], p["method"]) == (data, source, method)]
            if not theirs:
                out.append({**head, "method": method, "verdict": NOT_RUN})
                continue
            # compare the seeds both sides have: an LRP seed whose baselines have not run yet stays out
            seeds = {p["seed"] for p in theirs}
            a, b = stats([p for p in mine if p["seed"] in seeds]), stats(theirs)
            # an interval needs two seeds on both sides
            interval = welch_interval(a["values"], b["values"]) if min(a["n"], b["n"]) > 1 else None
            out.append({**head, "method": method, "label_method": method_label(method, theirs, mine), "lrp": a,
                        "base": b, "points": theirs, "diff": a["mean"] - b["mean"], "interval": interval,
                        "verdict": ONE_SEED if interval is None else verdict(*interval)})
    return out


def judged(comparisons) -> list:
    """The comparisons with a baseline that has run."""
    return [c for c in comparisons if c["verdict"] != NOT_RUN]


def pm(s: dict) -> str:
    """'mean ± std' over the seeds; one seed has no spread: its value alone."""
    return f"{s['mean']:.2f} ± {s['std']:.2f}" if s["n"] > 1 else f"{s['mean']:.2f}"


def stat_cells(s: dict) -> dict:
    return {"seeds": s["n"], "sparsity (%)": f"{100 * s['sparsity']:.2f}", "test accuracy (%)": pm(s),
            "epochs": f"{s['epochs']:g}", "wall time (min)": f"{s['seconds'] / 60:.2f}"}


def interval_text(c: dict) -> str:
    return "—" if c["interval"] is None else f"[{c['interval'][0]:+.2f}, {c['interval'][1]:+.2f}]"


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
            if c["verdict"] == NOT_RUN:
                rows.append({"data": data, "LRP run": c["label"], "method": METHOD_LABELS[c["method"]], "seeds": 0,
                             "verdict": NOT_RUN})
                continue
            rows.append({"data": data, "LRP run": c["label"], "method": c["label_method"], **stat_cells(c["base"]),
                         "LRP − method (pp)": f"{c['diff']:+.2f}", TABLE_KEYS[7]: interval_text(c),
                         "verdict": c["verdict"]})
    return rows


def summary_line(data: str, method: str, cs: list) -> str:
    counts = {v: sum(c["verdict"] == v for c in cs) for v in (BETTER, WORSE, LEVEL_WITH, ONE_SEED)}
    diffs = [c["diff"] for c in cs]
    halves = [(c["interval"][1] - c["interval"][0]) / 2 for c in cs if c["interval"] is not None]
    width = (f"interval half-widths {min(halves):.2f}–{max(halves):.2f} pp" if halves
             else "no interval (one seed)")
    seeds = sorted({min(c["lrp"]["n"], c["base"]["n"]) for c in cs})
    label = method_label(method, [p for c in cs for p in c["points"]], [p for c in cs for p in c["lrp_points"]])
    return (f"- **{data}**, against {label} ({len(cs)} LRP "
            f"run{'' if len(cs) == 1 else 's'}, {'/'.join(map(str, seeds))} seeds each): {BETTER} {counts[BETTER]}, "
            f"{WORSE} {counts[WORSE]}, {LEVEL_WITH} {counts[LEVEL_WITH]}, not judged (one seed) {counts[ONE_SEED]}; "
            f"LRP − method from {min(diffs):+.2f} to {max(diffs):+.2f} pp (mean {np.mean(diffs):+.2f}), {width}")


def detail(c: dict) -> str:
    return (f"{c['data']}, {c['label']} (sparsity {100 * c['lrp']['sparsity']:.2f}%), against "
            f"{METHOD_LABELS[c['method']]}: {c['diff']:+.2f} pp, interval {interval_text(c)}")


def cost_line(data: str, points) -> str:
    parts = []
    for method in ("dense", *METHOD_LABELS):
        mine = [p for p in points if p["data"] == data and p["method"] == method]
        if mine:
            s = stats(mine)
            parts.append(f"{METHOD_LABELS.get(method, method)} {s['seconds'] / 60:.1f} min ({s['epochs']:g} epochs)")
    return f"- Cost per run on **{data}** (mean wall time, epochs): " + "; ".join(parts)


def reading_lines(comparisons, points) -> list:
    """The generated reading: the rule, per data set and baseline the verdicts, where LRP is worse, cost."""
    lines = [f"Reading (generated from the results): {DIFFERENCE_RULE}.", ""]
    done = judged(comparisons)
    datasets = list(dict.fromkeys(c["data"] for c in comparisons))
    for data in datasets:
        for method in BASELINES:
            cs = [c for c in done if (c["data"], c["method"]) == (data, method)]
            if cs:
                lines.append(summary_line(data, method, cs))
            elif any((c["data"], c["method"]) == (data, method) for c in comparisons):
                lines.append(f"- **{data}**, against {METHOD_LABELS[method]}: {NOT_RUN}")
    if all(c["verdict"] == ONE_SEED for c in done):
        lines.append("- No verdicts yet: every comparison has one seed on at least one side.")
    else:
        worse = sorted((c for c in done if c["verdict"] == WORSE), key=lambda c: c["diff"])
        lines.append("- Where LRP is worse (interval below 0): " + ("; ".join(detail(c) for c in worse) if worse
                                                                     else "nowhere") + ".")
        close = [c for c in done if c["verdict"] == BETTER and c["method"] not in collapsed_methods(done)]
        if close:
            smallest = min(close, key=lambda c: c["interval"][0])
            lines.append(f"- {BETTER} by the least (lowest interval bound), among baselines that do not collapse: "
                         f"{detail(smallest)}.")
    return lines + collapsed_lines(points) + [cost_line(data, points) for data in datasets]


def collapsed_methods(comparisons) -> set:
    """Baselines whose every point, on every data set, is near chance."""
    by = {}
    for c in comparisons:
        by.setdefault(c["method"], []).extend(c["points"])
    return {m for m, pts in by.items() if pts and all(p["accuracy"] < COLLAPSED_BELOW_PCT for p in pts)}


def collapsed_lines(points) -> list:
    """One line per method and data set with points below :data:`COLLAPSED_BELOW_PCT` test accuracy."""
    out = []
    for data in dict.fromkeys(p["data"] for p in points):
        for method in METHOD_LABELS:
            low = [p for p in points
                   if (p["data"], p["method"]) == (data, method) and p["accuracy"] < COLLAPSED_BELOW_PCT]
            if low:
                at = ", ".join(f"{p['accuracy']:.2f}% at {100 * p['sparsity']:.2f}% (seed {p['seed']})"
                               for p in sorted(low, key=lambda p: p["sparsity"]))
                emptied = sorted({l for p in low for l in (p.get("emptied") or [])})
                note = f"; the mask empties layer {', '.join(map(str, emptied))}" if emptied else ""
                out.append(f"- Collapsed to near chance (test accuracy below {COLLAPSED_BELOW_PCT:g}%) on "
                           f"**{data}**, {METHOD_LABELS[method]}: {at}{note}")
    return out


def axis_ranges(points) -> tuple:
    """(upper range, lower range or None) of the accuracy axis, in %, shared by every panel.

    The upper range holds every point within :data:`CLIP_SPAN_PP` of the lowest LRP or dense point
    and any point above; the points further down get a lower range of their own (a broken axis).
    Each range is padded by a twentieth of its span (at least 0.2 pp).
    """
    acc = [p["accuracy"] for p in points]
    kept = [p["accuracy"] for p in points if p["method"] not in BASELINES] or acc
    floor = min(kept) - CLIP_SPAN_PP
    high, low = [a for a in acc if a >= floor], [a for a in acc if a < floor]

    def padded(values):
        pad = max(0.05 * (max(values) - min(values)), 0.2)
        return min(values) - pad, max(values) + pad
    return padded(high), (padded(low) if low else None)


def draw_method(ax, points, method: str, label: str) -> None:
    """Every seed as a light point, the mean per LRP run as a marker, the means joined in order of sparsity."""
    marker, ls, color = METHOD_STYLE[method]
    mine = [p for p in points if p["method"] == method]
    if not mine:
        return
    ax.plot([100 * p["sparsity"] for p in mine], [p["accuracy"] for p in mine], marker, color=color,
            alpha=0.3, ms=4, ls="none")
    means = sorted((stats([p for p in mine if p["source"] == s]) for s in dict.fromkeys(p["source"] for p in mine)),
                   key=lambda s: s["sparsity"])
    ax.plot([100 * s["sparsity"] for s in means], [s["mean"] for s in means], marker=marker, ls=ls, color=color,
            ms=7, lw=1.2, label=label, mfc="none")


def break_marks(upper, lower) -> None:
    """The usual diagonal strokes where the accuracy axis is broken between two stacked panels."""
    upper.spines.bottom.set_visible(False)
    lower.spines.top.set_visible(False)
    upper.tick_params(axis="x", which="both", bottom=False, labelbottom=False)
    kw = dict(marker=[(-1, -0.5), (1, 0.5)], markersize=10, linestyle="none", color="k", mec="k", mew=1,
              clip_on=False)
    upper.plot([0, 1], [0, 0], transform=upper.transAxes, **kw)
    lower.plot([0, 1], [1, 1], transform=lower.transAxes, **kw)


def matched_figure(points):
    """Test accuracy (%) against sparsity (%), one column per data set, the accuracy axis shared by all panels.

    Points far below LRP (collapsed baselines) are drawn in a lower panel, the axis broken between.
    """
    datasets = list(dict.fromkeys(p["data"] for p in points if p["method"] != "dense"))  # those with comparisons
    upper_range, lower_range = axis_ranges(points)
    rows = 2 if lower_range else 1
    fig, axes = plt.subplots(rows, len(datasets), figsize=(6.2 * len(datasets), 5.6 if rows == 2 else 4.4),
                             squeeze=False, sharey="row", sharex="col", layout="constrained",
                             gridspec_kw={"height_ratios": [3, 1][:rows]})
    lrp = [p for p in points if p["method"].startswith("lrp-")]
    labels = {m: method_label(m, [p for p in points if p["method"] == m], lrp) for m in METHOD_LABELS}
    for col, data in enumerate(datasets):
        mine = [p for p in points if p["data"] == data]
        seeds = sorted({p["seed"] for p in mine})
        for row in range(rows):
            ax = axes[row][col]
            dense = [p for p in mine if p["method"] == "dense"]
            if dense:
                ax.axhline(stats(dense)["mean"], color="0.4", ls="--", lw=0.8, label="dense (mean)")
            if row == 1:
                ax.axhline(10.0, color="0.6", ls=":", lw=0.8, label="chance (10 classes)")
            for method in METHOD_LABELS:
                draw_method(ax, mine, method, labels[method])
            ax.set_ylim(*(upper_range if row == 0 else lower_range))
            ax.grid(alpha=0.3)
        per_method = sorted({len({p["seed"] for p in mine if p["method"] == m}) for m in METHOD_LABELS} - {0})
        counts = "" if len(per_method) < 2 else f"; {per_method[0]}–{per_method[-1]} per method"
        axes[0][col].set_title(f"{data} ({seeds_text(len(seeds))}: {', '.join(map(str, seeds))}{counts})")
        axes[-1][col].set_xlabel("sparsity (%)")
        if rows == 2:
            break_marks(axes[0][col], axes[1][col])
    for row in range(rows):
        axes[row][0].set_ylabel("test accuracy (%)")
    handles, names = {}, []
    for ax in axes.ravel():
        for h, n in zip(*ax.get_legend_handles_labels()):
            if n not in handles:
                handles[n] = h
                names.append(n)
    fig.legend([handles[n] for n in names], names, loc="outside lower center", ncol=3, fontsize=7)
    broken = " the axis breaks between the panels of a column;" if rows == 2 else ""
    fig.suptitle(f"Matched sparsity: LRP and magnitude-pruning baselines\n(light: seeds; markers: means over seeds;"
                 f"{broken} accuracy axes shared)")
    return fig
