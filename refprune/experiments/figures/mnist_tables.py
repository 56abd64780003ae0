"""Tables 4.2–4.5: loss and accuracy per split of the four Table 4.6 runs, soft and hard mask.

Each thesis table reports, for one run, the loss and the accuracy on the
training, validation and test sets (one number each; the thesis does not say
with which mask). The reproduction's numbers come from the committed results
of the Table 4.6 runs (``t46_*``): the last epoch's training and validation
loss and accuracy with the soft and with the hard mask, and the test loss and
accuracy after pruning for real (hard mask). The soft-mask test metrics are
not recorded by the runs: the cell holds a dash and the table a note.
"""

from __future__ import annotations

import csv
import io

import numpy as np

from refprune.experiments.figures.common import entry
from refprune.util.io import atomic_write

# Thesis Tables 4.2–4.5, read from the thesis PDF (printed page numbers):
# (r0, λ) -> (table, page, {split: (loss, accuracy %)}).
THESIS_METRICS = {
    (0.5, 0.0): ("Table 4.2", 41, {"train": (0.00752, 99.8), "val": (0.131, 97.9), "test": (0.156, 97.6)}),
    (0.95, 0.0): ("Table 4.3", 43, {"train": (0.0329, 98.9), "val": (0.0978, 97.5), "test": (0.0964, 97.2)}),
    (0.5, 10.0): ("Table 4.4", 45, {"train": (0.0237, 99.96), "val": (0.101, 98.0), "test": (0.0936, 98.1)}),
    (0.95, 10.0): ("Table 4.5", 46, {"train": (0.0493, 98.6), "val": (0.102, 97.0), "test": (0.0967, 97.2)}),
}
SPLITS = (("train", "train"), ("val", "validation"), ("test", "test"))
MASKS = ("soft", "hard")
DASH = "—"
NOTE = ("Thesis: one number per split, mask not stated. Reproduction: the last (25th) epoch's training and "
        "validation metrics with the soft and the hard mask; test metrics after pruning for real (hard mask). "
        "The runs do not record test metrics with the soft mask (—). Accuracy in %.")


def run_metrics(rec) -> dict:
    """{(quantity, split, mask): value or None} of one Table 4.6 run record (None: not recorded)."""
    last, summary = rec["epochs"][-1], rec["summary"]
    out = {}
    for split, _ in SPLITS:
        for mask in MASKS:
            if split == "test":
                loss = summary.get("test_loss") if mask == "hard" else None
                acc = summary.get("test_accuracy") if mask == "hard" else None
            else:
                loss, acc = last.get(f"{split}_loss_{mask}"), last.get(f"{split}_accuracy_{mask}")
            out[("loss", split, mask)] = loss
            out[("accuracy", split, mask)] = None if acc is None else 100 * acc
    return out


def fmt(quantity: str, value) -> str:
    if value is None:
        return DASH
    if quantity == "accuracy":
        return f"{value:.2f}"
    return np.format_float_positional(value, precision=3, unique=False, fractional=False, trim="k")  # 3 digits


def table_rows(records: dict, r0: float, lam: float) -> list:
    """Rows (quantity × split) with the thesis's number and each variant's soft and hard numbers.

    ``records`` maps a variant to its run record (or None if the run is missing).
    """
    _, _, thesis = THESIS_METRICS[(r0, lam)]
    metrics = {v: run_metrics(rec) if rec else None for v, rec in records.items()}
    rows = []
    for qi, quantity in enumerate(("loss", "accuracy")):
        for split, split_name in SPLITS:
            row = {"quantity": quantity, "split": split_name, "thesis": fmt(quantity, thesis[split][qi])}
            for variant, m in metrics.items():
                for mask in MASKS:
                    row[f"{variant} {mask}"] = fmt(quantity, m[(quantity, split, mask)]) if m else DASH
            rows.append(row)
    return rows


def write_metric_tables(records_of, out, variants) -> list:
    """Write table4_2 … table4_5 (.md, .csv); ``records_of(variant, r0, lam)`` gives a record or None."""
    entries = []
    for (r0, lam), (table, page, _) in THESIS_METRICS.items():
        records = {v: records_of(v, r0, lam) for v in variants}
        if not any(records.values()):
            continue
        rows = table_rows(records, r0, lam)
        keys = list(rows[0])
        md = ["| " + " | ".join(keys) + " |", "|---" * len(keys) + "|"]
        md += ["| " + " | ".join(r[k] for k in keys) + " |" for r in rows]
        md += ["", NOTE + f" Thesis numbers: {table}, p. {page}."]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        stem = "table" + table.split()[1].replace(".", "_")
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / f"{stem}.md", lambda fh, text="\n".join(md) + "\n": fh.write(text.encode()))
        atomic_write(out / f"{stem}.csv", lambda fh, text=buf.getvalue(): fh.write(text.encode()))
        title = f"{table}: LRP r0 = {r0:g}, λ = {lam:g}, loss and accuracy per split, soft and hard mask"
        entries.append(entry(stem, table, f"loss and accuracy (train/validation/test, soft and hard mask) of the "
                             f"run r0 = {r0:g}, λ = {lam:g}, both variants beside the thesis (p. {page})",
                             f"t46_*_r0{r0:.2f}_lam{lam:g}_", files=[f"{stem}.md", f"{stem}.csv"],
                             section=(title, md)))
    return entries
