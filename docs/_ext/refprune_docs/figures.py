"""The thesis figures page, generated from ``figures/index.json`` (what ``refprune figures`` drew).

Each entry: its thesis number, caption, the command that redraws it, the seeds and run time of
the results it was drawn from (read from ``results/`` as the figure index does), the picture
and, where the thesis gives numbers, the generated table of its numbers beside ours.
"""

from __future__ import annotations

import json
from pathlib import Path

from refprune.experiments.figures.index import command_for, commits_of, run_time, seeds_of

INDEX = "figures/index.json"
READING = "results/READING.md"


def entry_lines(entry: dict, root: Path, results: Path) -> list[str]:
    stem = entry["stem"]
    files = entry.get("files") or [f"{stem}.png", f"{stem}.pdf"]
    lines = [f"### {entry['thesis']}: `{stem}`", "", entry["caption"][0].upper() + entry["caption"][1:], ""]
    if f"{stem}.png" in files and (root / "figures" / f"{stem}.png").is_file():
        lines += [f"![{entry['thesis']}: {stem}](../../figures/{stem}.png)", ""]
    lines += [f"- command: {command_for(entry['group'])}",
              f"- seeds: {seeds_of(results, entry['jobs'])}; run time: {run_time(results, entry['jobs'])}; "
              f"code: {commits_of(results, entry['jobs'])}",
              f"- files: {', '.join(f'`figures/{name}`' for name in files)}", ""]
    if "section" in entry:
        title, markdown = entry["section"]
        lines += [f"**{title}**", "", *markdown, ""]
    return lines


def page(root: Path) -> str:
    """The Markdown of the figures page."""
    index = json.loads((root / INDEX).read_text(encoding="utf-8"))
    results = root / "results"
    groups = index["groups"]
    count = sum(len(group["entries"]) for group in groups.values())
    lines = ["# Thesis figures", "",
             f"Every figure and table `refprune figures` regenerated ({count} entries in {len(groups)} groups), "
             f"generated from `{INDEX}` when this site was built: each with the thesis's number, its "
             "caption, the command that redraws it from the committed results (and computes missing "
             "jobs), the seeds, run time and code versions of those results and, where the thesis gives "
             "numbers, the table of its numbers beside ours. The reading at the end is "
             "`results/READING.md`, as in `figures/README.md`.", ""]
    for name, group in groups.items():
        lines += [f"## Group `{name}`", "", f"**Protocol.** {group['protocol']}", ""]
        for entry in group["entries"]:
            lines += entry_lines(entry, root, results)
    reading = root / READING
    if reading.is_file():
        lines += [reading.read_text(encoding="utf-8").strip(), ""]
    return "\n".join(lines) + "\n"
