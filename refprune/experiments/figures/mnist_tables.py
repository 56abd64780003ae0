"""Tables 4.2–4.5 and the dense baseline: loss and accuracy per split beside the thesis; and the LRP/dense
wall-time ratio beside the thesis's "more than twice as long".

Each thesis table reports, for one run, the loss and the accuracy on the
training, validation and test sets (one number each; the thesis does not say
with which mask). The reproduction gives, per quantity, the last epoch's
training and validation metrics with the soft and with the hard mask and the
test metrics after pruning for real (hard mask; the runs record no soft-mask
test metrics). Under the adopted protocol each cell is the mean ± std over the
seeds, the 95% prediction interval for one new run and whether the thesis's
value, itself one run, lies inside; under the stated protocol it is one run
(seed 0). The dense baseline's table (thesis p. 41, the text under Fig. 4.8)
has the same form.
"""

from __future__ import annotations

import csv
import io

import numpy as np

from refprune.experiments.figures.common import PERCENT_RANGE, entry, prediction_interval, write_md_csv
from refprune.util.io import atomic_write

# Thesis Tables 4.2–4.5, read from the thesis PDF (printed page numbers):
# (r0, λ) -> (table, page, {split: (loss, accuracy %)}).
THESIS_METRICS = {
    (0.5, 0.0): ("Table 4.2", 41, {"train": (0.00752, 99.8), "val": (0.131, 97.9), "test": (0.156, 97.6)}),
    (0.95, 0.0): ("Table 4.3", 43, {"train": (0.0329, 98.9), "val": (0.0978, 97.5), "test": (0.0964, 97.2)}),
    (0.5, 10.0): ("Table 4.4", 45, {"train": (0.0237, 99.96), "val": (0.101, 98.0), "test": (0.0936, 98.1)}),
    (0.95, 10.0): ("Table 4.5", 46, {"train": (0.0493, 98.6), "val": (0.102, 97.0), "test": (0.0967, 97.2)}),
}
# The dense baseline (thesis p. 41, the text under Fig. 4.8): "For the test set, the model obtained a loss
# of 0.0927 and an accuracy of 97.9%, compared to 0.0178 loss and 99.4% accuracy on the training set and
# 0.160 loss and 96.8% accuracy on the validation set."
THESIS_DENSE_METRICS = ("text under Fig. 4.8", 41,
                        {"train": (0.0178, 99.4), "val": (0.160, 96.8), "test": (0.0927, 97.9)})
SPLITS = (("train", "train"), ("val", "validation"), ("test", "test"))
QUANTITIES = ("loss", "accuracy")
MASKS = ("soft", "hard")
DASH = "—"
INSIDE_MARK = {True: "✓", False: "✗"}
NOTE = ("Thesis: one run, one number per split, mask not stated. Reproduction: the last (25th) epoch's training "
        "and validation metrics with the soft and the hard mask; test metrics after pruning for real (hard mask); "
        "the runs do not record test metrics with the soft mask. Loss: mean cross-entropy; accuracy in %. Under "
        "the adopted protocol '{adopted}' (validation and test on rank 0's half of each set, as the published "
        "code logs them) each cell is mean ± std over the seeds, [the 95% prediction interval for one new run] "
        "and ✓ if the thesis's value lies inside it, ✗ if not; the stated protocol's cells are one run "
        "(seed 0) and carry no verdict.")


def run_metrics(rec) -> dict:
    """{(quantity, split, mask): value or None} of one run record (accuracy in %; None: not recorded).

    LRP runs have the masks 'soft' and 'hard', dense runs 'dense'; test metrics are the summary's
    (after pruning for real), so only the hard (or dense) mask has them.
    """
    last, summary = rec["epochs"][-1], rec["summary"]
    modes = ("dense",) if rec.get("config", {}).get("method") == "dense" else MASKS
    out = {}
    for split, _ in SPLITS:
        for mask in modes:
            if split == "test":
                loss = summary.get("test_loss") if mask != "soft" else None
                acc = summary.get("test_accuracy") if mask != "soft" else None
            else:
                loss, acc = last.get(f"{split}_loss_{mask}"), last.get(f"{split}_accuracy_{mask}")
            out[("loss", split, mask)] = loss
            out[("accuracy", split, mask)] = None if acc is None else 100 * acc
    return out


def metric_keys(modes) -> list:
    """The table's rows (quantity, split, mask), the soft-mask test row left out (not recorded)."""
    return [(q, split, mask) for q in QUANTITIES for split, _ in SPLITS for mask in modes
            if not (split == "test" and mask == "soft")]


def fmt(quantity: str, value, digits: int = 3) -> str:
    """Accuracy (%) with 2 decimals; a loss with ``digits`` significant digits."""
    if value is None:
        return DASH
    if quantity == "accuracy":
        return f"{value:.2f}"
    return f"{value:#.{digits}g}".rstrip(".")  # '#': trailing zeros kept (0.00690, not 0.0069)


def seed_stats(quantity: str, values, thesis: float) -> dict:
    """n, mean, std (ddof 1), the 95% prediction interval for one new run and whether ``thesis`` lies inside.

    The interval is cut to the quantity's range (accuracy 0–100%, a loss ≥ 0). From one value: n and mean
    only (no spread, no interval).
    """
    v = np.asarray(values, np.float64)
    stats = {"n": int(v.size), "mean": float(v.mean())}
    if v.size > 1:
        lo, hi = prediction_interval(v, bounds=PERCENT_RANGE if quantity == "accuracy" else (0.0, np.inf))
        stats.update(std=float(v.std(ddof=1)), pi_low=lo, pi_high=hi, inside=bool(lo <= thesis <= hi))
    return stats


def stats_cell(quantity: str, stats) -> str:
    """'mean ± std [low, high] ✓ (n = 5)' (one seed: 'mean (n = 1)'); a dash without runs."""
    if stats is None:
        return DASH
    text = fmt(quantity, stats["mean"])
    if "std" in stats:
        text += (f" ± {fmt(quantity, stats['std'], 2)} [{fmt(quantity, stats['pi_low'])}, "
                 f"{fmt(quantity, stats['pi_high'])}] {INSIDE_MARK[stats['inside']]}")
    return text + f" (n = {stats['n']})"


def csv_number(value) -> float | str:
    """A number for the csv, to 6 significant digits; '' when missing."""
    return "" if value is None else float(f"{value:.6g}")


def metric_rows(seeded: dict, stated: dict, thesis: dict, modes) -> tuple[list, list]:
    """Rows of one metric table: (csv rows, Markdown cell rows).

    Parameters
    ----------
    seeded : dict
        column label -> the records of the adopted protocol's seeds (possibly empty).
    stated : dict
        column label -> the stated protocol's seed-0 record or None.
    thesis : dict
        split -> (loss, accuracy %), the thesis's values.
    modes : tuple
        the masks of the rows ('soft', 'hard' or 'dense').
    """
    seeded_metrics = {c: [run_metrics(r) for r in recs] for c, recs in seeded.items()}
    stated_metrics = {c: run_metrics(r) if r else None for c, r in stated.items()}
    csv_rows, md_rows = [], []
    for key in metric_keys(modes):
        quantity, split, mask = key
        value = thesis[split][QUANTITIES.index(quantity)]
        split_name = dict(SPLITS)[split]
        row = {"quantity": quantity, "split": split_name, "mask": mask, "thesis": value}
        cells = [quantity, split_name, mask, fmt(quantity, value)]
        for column, metrics in seeded_metrics.items():
            values = [m[key] for m in metrics if m.get(key) is not None]
            stats = seed_stats(quantity, values, value) if values else None
            row[f"{column} n"] = stats["n"] if stats else 0
            for k in ("mean", "std", "pi_low", "pi_high"):
                row[f"{column} {k}"] = csv_number((stats or {}).get(k))
            inside = (stats or {}).get("inside")
            row[f"{column} thesis inside"] = "" if inside is None else ("yes" if inside else "no")
            cells.append(stats_cell(quantity, stats))
        for column, metrics in stated_metrics.items():
            one = metrics.get(key) if metrics else None
            row[column] = csv_number(one)
            cells.append(fmt(quantity, one))
        csv_rows.append(row)
        md_rows.append(cells)
    return csv_rows, md_rows


def inside_counts(csv_rows, columns) -> str:
    """'exact ddp2: thesis inside 7 of 10 intervals; …' over the rows that have an interval."""
    parts = []
    for column in columns:
        verdicts = [r[f"{column} thesis inside"] for r in csv_rows if r[f"{column} thesis inside"]]
        if verdicts:
            parts.append(f"{column}: thesis inside {verdicts.count('yes')} of {len(verdicts)} intervals")
    return "; ".join(parts)


def write_table_files(out, stem: str, csv_rows: list, md: list) -> None:
    """Write ``stem``.csv (the rows) and ``stem``.md (the Markdown lines), atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(csv_rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_rows)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / f"{stem}.csv", lambda fh: fh.write(buf.getvalue().encode()))
    atomic_write(out / f"{stem}.md", lambda fh: fh.write(("\n".join(md) + "\n").encode()))


def metric_table(seeded: dict, stated: dict, thesis: dict, modes) -> tuple[list, list] | None:
    """(csv rows, Markdown lines) of one metric table (see :func:`metric_rows`), or None if no run exists."""
    if not any(seeded.values()) and not any(stated.values()):
        return None
    csv_rows, md_rows = metric_rows(seeded, stated, thesis, modes)
    head = ["quantity", "split", "mask", "thesis"] + \
        [f"{c}: mean ± std [95% PI] (n)" for c in seeded] + list(stated)
    md = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    md += ["| " + " | ".join(cells) + " |" for cells in md_rows]
    counts = inside_counts(csv_rows, seeded)
    return csv_rows, md + (["", f"Thesis inside the 95% prediction interval: {counts}."] if counts else [])


def table_columns(variants, adopted: str) -> tuple:
    """Column labels of the adopted protocol's seeds and the stated protocol's run, per variant."""
    return ({v: f"{v} {adopted}" for v in variants}, {v: f"{v} stated (seed 0, one run)" for v in variants})


def write_metric_tables(seeded_of, stated_of, out, variants, adopted: str, jobs_of) -> list:
    """Write table4_2 … table4_5 (.md, .csv).

    ``seeded_of(variant, r0, lam)`` gives the adopted protocol's records (one per seed present),
    ``stated_of(variant, r0, lam)`` the stated protocol's seed-0 record or None, ``jobs_of(r0, lam)``
    the runs' name pattern for the index.
    """
    entries = []
    seeded_cols, stated_cols = table_columns(variants, adopted)
    for (r0, lam), (table, page, thesis) in THESIS_METRICS.items():
        seeded = {seeded_cols[v]: seeded_of(v, r0, lam) for v in variants}
        stated = {stated_cols[v]: stated_of(v, r0, lam) for v in variants}
        made = metric_table(seeded, stated, thesis, MASKS)
        if made is None:
            continue
        csv_rows, md = made
        md += ["", NOTE.format(adopted=adopted) + f" Thesis numbers: {table}, p. {page}."]
        stem = "table" + table.split()[1].replace(".", "_")
        write_table_files(out, stem, csv_rows, md)
        n = max(len(recs) for recs in seeded.values())
        title = f"{table}: LRP r0 = {r0:g}, λ = {lam:g}, loss and accuracy per split, soft and hard mask"
        entries.append(entry(stem, table, f"loss and accuracy (train/validation/test, soft and hard mask) of the "
                             f"run r0 = {r0:g}, λ = {lam:g}, both variants beside the thesis (p. {page}): the "
                             f"adopted '{adopted}' protocol ({n} seeds: mean ± std, 95% prediction interval for one "
                             f"new run, thesis inside or not) and the stated protocol (seed 0, one run)",
                             jobs_of(r0, lam), files=[f"{stem}.md", f"{stem}.csv"], section=(title, md)))
    return entries


DENSE_STEM = "mnist_dense_vs_thesis"
DENSE_NOTE = ("Thesis: one run (p. {page}, the {where}). Reproduction: the last (25th) epoch's training and "
              "validation metrics, the test metrics at the end. Loss: mean cross-entropy; accuracy in %. Under the "
              "adopted protocol '{adopted}' (validation and test on rank 0's half of each set) each cell is mean ± "
              "std over the seeds, [the 95% prediction interval for one new run] and ✓ if the thesis's value lies "
              "inside it, ✗ if not; a dash: no run of it yet. The stated protocol's cells are one run (seed 0).")


def write_dense_table(seeded: list, stated, out, adopted: str, jobs: str) -> list:
    """The dense baseline's loss and accuracy per split beside the thesis (p. 41): the adopted protocol's
    seeds (``seeded``, possibly none yet) and the stated protocol's run (``stated`` or None)."""
    where, page, thesis = THESIS_DENSE_METRICS
    made = metric_table({f"dense {adopted}": seeded}, {"dense stated (seed 0, one run)": stated}, thesis, ("dense",))
    if made is None:
        return []
    csv_rows, md = made
    md += ["", DENSE_NOTE.format(page=page, where=where, adopted=adopted)]
    write_table_files(out, DENSE_STEM, csv_rows, md)
    seeds = (f"{len(seeded)} seeds: mean ± std, 95% prediction interval for one new run, thesis inside or not"
             if seeded else "no runs yet")
    return [entry(DENSE_STEM, "Fig. 4.8 (text, p. 41)", f"dense baseline: loss and accuracy (train/validation/test) "
                  f"beside the thesis; the adopted '{adopted}' protocol ({seeds}) and the stated protocol (seed 0, "
                  f"one run)", jobs, files=[f"{DENSE_STEM}.md", f"{DENSE_STEM}.csv"],
                  section=("Dense baseline: the thesis, the adopted protocol and the stated one", md))]


# ---------------------------------------------------------------- wall time

# Thesis p. 43, on LRP with r0 = 0.5 and no regularisation: "Although the final performance matched that of
# the dense baseline, the training took more than twice as long." The ratio it states is a lower bound.
THESIS_TIME_RATIO = 2.0
THESIS_TIME_RUN = (0.5, 0.0)
THESIS_TIME_PAGE = 43
TIME_STEM = "lrp_dense_wall_time"
TIME_NOTE = ("Wall time of each run (its record's 'seconds': loading, 25 epochs of training and evaluation). Ratio: "
             "every LRP run's seconds over every dense run's of the same protocol (all pairs); median and range "
             "over the pairs. The thesis's statement (p. {page}) is about r0 = 0.5, λ = 0 against the dense "
             "baseline: 'the training took more than twice as long'. The runs were made on one kind of machine, "
             "two at a time on 2 cores beside other jobs, by several code versions (see the index's 'code'), so "
             "the times carry the machine's load as well as the method's cost.")


def time_summary(seconds) -> str:
    """'median [min–max]' of seconds, or the one value."""
    s = np.asarray(seconds, np.float64)
    return f"{s[0]:.0f}" if s.size == 1 else f"{np.median(s):.0f} [{s.min():.0f}–{s.max():.0f}]"


def time_row(protocol: str, variant: str, run: str, lrp: list, dense: list, thesis: str) -> dict:
    """One row: the LRP and dense seconds and the ratio over every (LRP run, dense run) pair."""
    ratios = np.array([a / b for a in lrp for b in dense])
    return {"protocol": protocol, "variant": variant, "run": run, "thesis": thesis,
            "LRP runs": len(lrp), "dense runs": len(dense), "LRP seconds": time_summary(lrp),
            "dense seconds": time_summary(dense), "ratio median": f"{np.median(ratios):.2f}",
            "ratio range": f"{ratios.min():.2f}–{ratios.max():.2f}",
            f"pairs with ratio > {THESIS_TIME_RATIO:g}": f"{int((ratios > THESIS_TIME_RATIO).sum())} of {ratios.size}"}


def time_rows(protocols: dict, table_runs, variants) -> list:
    """Per protocol, variant and Table 4.6 run, then per protocol and variant over the four runs.

    ``protocols``: {label: (lrp_of, dense)}: ``lrp_of(variant, r0, lam)`` the protocol's LRP records (one
    per seed present), ``dense`` its dense records. A protocol without dense runs has no rows.
    """
    rows = []
    for protocol, (lrp_of, dense) in protocols.items():
        dense_s = [rec["seconds"] for rec in dense]
        if not dense_s:
            continue
        for variant in variants:
            every = []
            for r0, lam in table_runs:
                lrp_s = [rec["seconds"] for rec in lrp_of(variant, r0, lam)]
                every += lrp_s
                if lrp_s:
                    thesis = (f"> {THESIS_TIME_RATIO:g} (p. {THESIS_TIME_PAGE})" if (r0, lam) == THESIS_TIME_RUN
                              else "not stated")
                    rows.append(time_row(protocol, variant, f"r0 = {r0:g}, λ = {lam:g}", lrp_s, dense_s, thesis))
            if every:
                rows.append(time_row(protocol, variant, "all four runs", every, dense_s, "not stated"))
    return rows


def write_time_table(protocols: dict, table_runs, variants, out, jobs: str) -> list:
    """``lrp_dense_wall_time``.md/.csv (see :func:`time_rows`), or nothing if no protocol has both kinds of run."""
    rows = time_rows(protocols, table_runs, variants)
    if not rows:
        return []
    md = write_md_csv(out, TIME_STEM, list(rows[0]), rows)
    md += ["", TIME_NOTE.format(page=THESIS_TIME_PAGE)]
    return [entry(TIME_STEM, f"p. {THESIS_TIME_PAGE} ('more than twice as long')",
                  "LRP/dense wall-time ratio per variant and Table 4.6 run, median and range over every (LRP run, "
                  f"dense run) pair, per protocol ({', '.join(sorted({r['protocol'] for r in rows}))}), beside the "
                  "thesis's 'more than twice as long'", jobs, files=[f"{TIME_STEM}.md", f"{TIME_STEM}.csv"],
                  section=("LRP/dense wall time", md))]
