"""LRP against plain magnitude pruning at the sparsity LRP reaches: the jobs.

Stage 1, per data set and seed: the dense run and the LRP runs (exact variant,
λ = 10, each r0 of the settings, global and layer-wise granularity). Stage 2,
built from the stage-1 results present (:func:`jobs` with ``results``): at the
final sparsity s of each LRP run of that data set and seed,

- ``prepruning``: global magnitude pruning of the initial weights at s, then
  training with the mask fixed, the LRP run's epochs
  (:func:`refprune.train.baselines.pre_training_pruning`). At the sparsities
  LRP reaches it prunes the whole first layer (its initial weights are the
  smallest) and ends at chance;
- ``fixedr``: LRP exact with r frozen at r0 = s and τ learned (a fixed-ratio
  soft mask, PDP-style; ``TrainConfig(learn_r=False)``; λ = 0 since with r
  fixed the regulariser λ(1 − r)² is a constant), the LRP run's epochs;

and, once every LRP run of the data set and seed is done, one
``finetune`` job: dense training (the same configuration and seed as the
stage-1 dense run), then global magnitude pruning at each LRP run's s,
evaluated without fine-tuning and after fine-tuning with the mask fixed
(FULL: 5 epochs, a fresh Adam at the dense learning rate;
:func:`refprune.train.baselines.fine_tuned_pruning`). Then, per LRP run, the
two at-initialisation baselines that keep every layer: ``prepruning-layer``,
magnitude pruning of the initial weights layer by layer at the LRP run's final
sparsity of each layer (its summary's ``sparsity_per_layer``), and
``prepruning-uniform``, every layer at s; each trains the LRP run's epochs with
the mask fixed (listed after the others, so the jobs before them are unchanged).

Job names encode the data set, the seed, the method and the LRP run the
sparsity comes from, so a rerun resumes; a stage-2 job whose stage-1 run is
missing is not listed yet. Jobs are listed one (seed, data set) at a time,
seed 0 of both data sets first, each once the LRP runs before it are done, so
a stopped sweep leaves whole units with their baselines. The table, the reading and the figure:
:mod:`.matched_compare`.
"""

from __future__ import annotations

from pathlib import Path

from refprune.core.groups import GRANULARITIES
from refprune.data.tasks import DEFAULT_FASHION_DIR, DEFAULT_LAYERS
from refprune.experiments.figures.common import entry, save, write_md_csv
from refprune.experiments.figures.matched_compare import (
    CLIP_SPAN_PP,
    DIFFERENCE_RULE,
    TABLE_KEYS,
    collect_points,
    comparison_rows,
    matched_figure,
    reading_lines,
    table_rows,
)
from refprune.experiments.sweep import load_results

NAME = "matched"
PREFIX = "matched_"
FULL = {"datasets": ("mnist", "fashion-mnist"), "seeds": (0, 1, 2), "r0": (0.5, 0.8, 0.95), "lam": 10.0,
        "epochs": 25, "finetune_epochs": 5, "batch_size": 32, "layers": None}
QUICK = {"datasets": ("tiny_mnist",), "seeds": (0,), "r0": (0.5, 0.9), "lam": 10.0,
         "epochs": 1, "finetune_epochs": 1, "batch_size": 32, "layers": (784, 64, 64, 10)}
PROTOCOL = ("MNIST and Fashion-MNIST (default --fashion-dir " + DEFAULT_FASHION_DIR + "), 784-512-512-10, "
            "batch 32, seeds 0-2; LRP exact, λ = 10, r0 = 0.5, 0.8, 0.95, global and layer-wise, 25 epochs; at each "
            "LRP run's final sparsity: magnitude pruning after dense training (25 epochs) without and with 5 "
            "epochs of fine-tuning (mask fixed, fresh Adam at lr 1e-3), magnitude pruning at initialisation "
            "then 25 epochs with the mask fixed (globally; with LRP's sparsity in each layer; with the same sparsity in "
            "every layer), and LRP with r frozen at that sparsity (τ learned), 25 epochs")


def source_tag(granularity: str, r0: float, lam: float, epochs: int) -> str:
    """The LRP run a sparsity comes from, as it appears in job names: ``lrp-global-r00.50-lam10-e25``."""
    return f"lrp-{granularity}-r0{r0:.2f}-lam{lam:g}-e{epochs}"


def job_name(data: str, seed: int, what: str) -> str:
    return f"{PREFIX}{data}_s{seed}_{what}"


def sources(s: dict) -> list:
    """(granularity, r0) of every LRP run of the settings, in run order."""
    return [(g, r0) for r0 in s["r0"] for g in GRANULARITIES]


def base_job(s: dict, data: str, seed: int, data_dirs: dict) -> dict:
    job = {"data": data, "data_dir": data_dirs.get(data), "seed": seed}
    if s["layers"]:
        job["layers"] = list(s["layers"])
    return job


def stage1_jobs(s: dict, data: str, seed: int, data_dirs: dict) -> list:
    """The dense run and the LRP runs of one data set and seed."""
    base = {**base_job(s, data, seed, data_dirs), "kind": "train"}
    out = [{**base, "name": job_name(data, seed, f"dense-e{s['epochs']}"), "role": {"method": "dense"},
            "config": {"method": "dense", "epochs": s["epochs"], "batch_size": s["batch_size"]}}]
    for g, r0 in sources(s):
        tag = source_tag(g, r0, s["lam"], s["epochs"])
        out.append({**base, "name": job_name(data, seed, tag), "role": {"method": f"lrp-{g}", "source": tag},
                    "config": {"method": "lrp", "variant": "exact", "granularity": g, "r0": r0, "lam": s["lam"],
                               "epochs": s["epochs"], "batch_size": s["batch_size"]}})
    return out


def stage1_summaries(results, s: dict, data: str, seed: int) -> dict:
    """{source tag: summary} of the LRP runs of one data set and seed whose results exist."""
    if results is None or not Path(results).is_dir():
        return {}
    done = {r["job"]["name"]: r for r in load_results(results, job_name(data, seed, "lrp-"))}
    out = {}
    for g, r0 in sources(s):
        tag = source_tag(g, r0, s["lam"], s["epochs"])
        rec = done.get(job_name(data, seed, tag))
        if rec is not None:
            out[tag] = rec["summary"]
    return out


def n_weight_layers(s: dict) -> int:
    return len(s["layers"] or DEFAULT_LAYERS["mnist"]) - 1


def stage2_jobs(s: dict, data: str, seed: int, data_dirs: dict, found: dict, per_layer: dict | None = None) -> list:
    """The baselines at each stage-1 sparsity in ``found``; the fine-tuning job once all are there; then the
    per-layer at-initialisation baselines (LRP's sparsity per layer, from ``per_layer``, where known; the
    overall sparsity in every layer)."""
    base, e = base_job(s, data, seed, data_dirs), s["epochs"]
    out = []
    for tag, sp in found.items():
        out.append({**base, "kind": "pre_pruning", "name": job_name(data, seed, f"prepruning-e{e}_at_{tag}"),
                    "role": {"method": "prepruning", "source": tag}, "ratio": sp, "epochs": e,
                    "batch_size": s["batch_size"]})
        out.append({**base, "kind": "train", "name": job_name(data, seed, f"fixedr-e{e}_at_{tag}"),
                    "role": {"method": "fixedr", "source": tag},
                    "config": {"method": "lrp", "variant": "exact", "r0": sp, "learn_r": False, "lam": 0.0,
                               "epochs": e, "batch_size": s["batch_size"]}})
    if len(found) == len(sources(s)):
        r0s = "+".join(f"{r0:.2f}" for r0 in s["r0"])
        every = f"lrp-{'+'.join(GRANULARITIES)}-r0{r0s}-lam{s['lam']:g}-e{e}"
        out.append({**base, "kind": "finetune_pruning", "name": job_name(data, seed, f"finetune{s['finetune_epochs']}"
                                                                                      f"-e{e}_at_{every}"),
                    "role": {"method": "finetune"}, "ratios": list(found.values()), "sources": list(found),
                    "epochs": e, "finetune_epochs": s["finetune_epochs"], "batch_size": s["batch_size"]})
    for tag, sp in found.items():
        layer_ratios = (per_layer or {}).get(tag)
        if layer_ratios is not None:
            out.append({**base, "kind": "pre_pruning", "name": job_name(data, seed, f"prepruning-layers-e{e}_at_{tag}"),
                        "role": {"method": "prepruning-layer", "source": tag}, "ratio": list(layer_ratios),
                        "epochs": e, "batch_size": s["batch_size"]})
        out.append({**base, "kind": "pre_pruning", "name": job_name(data, seed, f"prepruning-uniform-e{e}_at_{tag}"),
                    "role": {"method": "prepruning-uniform", "source": tag}, "ratio": [sp] * n_weight_layers(s),
                    "epochs": e, "batch_size": s["batch_size"]})
    return out


def jobs(quick: bool, data_dir=None, results=None, fashion_dir=None) -> list:
    """The jobs the results in ``results`` allow, one (seed, data set) at a time: its stage 1, then its stage 2.

    The units run in the order seed 0 MNIST, seed 0 Fashion-MNIST, seed 1
    MNIST, ...; a unit's jobs are listed only once every LRP run of the units
    before it is done (in ``results``), so a sweep stopped part-way leaves whole
    units of the comparison, not stage 1 of everything and no baseline. Each
    round of :func:`refprune.experiments.figures.run_stages` runs one unit's stage 2
    together with the next unit's stage 1.

    Parameters
    ----------
    quick : bool
    data_dir : path or None
        The MNIST IDX directory.
    results : path or None
        The results directory the stage-2 jobs are built from (None: stage 1 of the first unit only).
    fashion_dir : path or None
        The Fashion-MNIST IDX directory (None: :data:`refprune.data.tasks.DEFAULT_FASHION_DIR`).
    """
    s = QUICK if quick else FULL
    dirs = data_dirs(quick, data_dir, fashion_dir)
    out = []
    for seed in s["seeds"]:
        for data in s["datasets"]:
            summaries = stage1_summaries(results, s, data, seed)
            found = {tag: float(summary["sparsity"]) for tag, summary in summaries.items()}
            per_layer = {tag: summary["sparsity_per_layer"] for tag, summary in summaries.items()
                         if "sparsity_per_layer" in summary}
            out += stage1_jobs(s, data, seed, dirs) + stage2_jobs(s, data, seed, dirs, found, per_layer)
            if len(found) < len(sources(s)):
                return out  # the later units wait for this one's LRP runs
    return out


def data_dirs(quick: bool, data_dir, fashion_dir) -> dict:
    """{data set: IDX directory} of the jobs."""
    return {} if quick else {"mnist": data_dir, "fashion-mnist": str(fashion_dir or DEFAULT_FASHION_DIR)}


def planned_jobs(quick: bool, data_dir=None, fashion_dir=None) -> list:
    """Every job of the settings as if all stage-1 runs were done (sparsity r0 as a stand-in), for time estimates."""
    s = QUICK if quick else FULL
    dirs = data_dirs(quick, data_dir, fashion_dir)
    every = {source_tag(g, r0, s["lam"], s["epochs"]): r0 for g, r0 in sources(s)}
    layers = {tag: [r0] * n_weight_layers(s) for tag, r0 in every.items()}
    return [j for seed in s["seeds"] for data in s["datasets"]
            for j in stage1_jobs(s, data, seed, dirs) + stage2_jobs(s, data, seed, dirs, every, layers)]


STEM = "matched_sparsity"


def plot(results, out) -> list:
    """The table (with the reading) and the accuracy-against-sparsity figure, from whatever results are there."""
    points = collect_points(load_results(results, PREFIX)) if Path(results).is_dir() else []
    comparisons = comparison_rows(points)
    if not comparisons:
        return []
    md = write_md_csv(out, STEM, TABLE_KEYS, table_rows(comparisons, points))
    files = save(matched_figure(points), out, STEM)
    reading = reading_lines(comparisons, points)
    caption = ("test accuracy (%) against sparsity (%): LRP (exact, λ = 10, global and layer-wise) and, at each LRP "
               "run's sparsity, magnitude pruning after training (without / with fine-tuning), at initialisation "
               "(globally; with LRP's sparsity per layer; with the same sparsity in every layer), and a fixed-ratio "
               "soft mask; light points: seeds, markers and lines: means; the accuracy axis is shared by both data "
               f"sets, and points more than {CLIP_SPAN_PP:g} pp below the lowest LRP or dense point are drawn in a "
               f"lower panel (broken axis); the table's verdicts: {DIFFERENCE_RULE}")
    return [entry(STEM, "— (beyond the thesis)", caption, f"{PREFIX}*", files=files + [f"{STEM}.md", f"{STEM}.csv"],
                  section=("LRP against the baselines at matched sparsity", reading + [""] + md))]
