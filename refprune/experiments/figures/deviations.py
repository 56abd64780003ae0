"""Study: exact versus published dynamics, one deviation of METHOD §6 at a time.

LRP on MNIST with the exact path, each of P1, P2, P3, P4 alone, and all four
(the published path), for λ = 0 and λ = 10 (r0 = 0.5, Table 4.1 otherwise):
r, τ and sparsity per backward pass, so a reader sees which deviation drives
the thesis's observed behaviour (r collapsing without λ, converging with it).

Reduced protocol (compute time): one seed, ``EPOCHS`` epochs per run; the
epoch count is part of each job name.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from refprune.experiments.figures.common import entry, save
from refprune.experiments.sweep import load_arrays, load_results

NAME = "deviations"
EPOCHS = 2
PROTOCOL = (f"MNIST as in Table 4.1, r0 = 0.5, λ = 0 and 10, seed 0, reduced to {EPOCHS} epochs per run; "
            "'P1'…'P4' each apply one deviation with the published density (P5); 'published' applies all four.")
PATHS = {"exact": None, "P1": ("P1",), "P2": ("P2",), "P3": ("P3",), "P4": ("P4",),
         "published": ("P1", "P2", "P3", "P4")}


def job_name(label, lam, epochs):
    return f"devstudy_{label}_lam{lam:g}_e{epochs}_s0"


def jobs(quick: bool, data_dir=None) -> list:
    epochs = 1 if quick else EPOCHS
    out = []
    for label, devs in PATHS.items():
        for lam in (0.0, 10.0):
            config = {"method": "lrp", "r0": 0.5, "lam": lam, "epochs": epochs}
            if devs is not None:
                config.update(variant="published", deviations=list(devs))
            out.append({"name": job_name(label, lam, epochs), "kind": "train", "seed": 0, "config": config,
                        "data": "tiny_mnist" if quick else "mnist", "data_dir": None if quick else data_dir})
    return out


def plot(results, out) -> list:
    entries = []
    for lam in (0.0, 10.0):
        recs = {label: [r for r in load_results(results, f"devstudy_{label}_lam{lam:g}_")] for label in PATHS}
        if not all(recs.values()):
            continue
        fig, axes = plt.subplots(1, 3, figsize=(16, 4.3), layout="constrained")
        for label, rs in recs.items():
            rec = rs[0]
            arrays = load_arrays(results, rec["job"]["name"])
            style = "-" if label in ("exact", "published") else "--"
            axes[0].plot(arrays["step_index"], arrays["step_r"], style, label=label)
            axes[1].plot(arrays["step_index"], arrays["step_tau"], style, label=label)
            axes[2].plot([e["epoch"] for e in rec["epochs"]], [e["sparsity"] for e in rec["epochs"]],
                         style, marker="o", label=label)
        axes[0].set(xlabel="backward pass", ylabel="r", title="r")
        axes[1].set(xlabel="backward pass", ylabel="τ", yscale="log", title="τ")
        axes[2].set(xlabel="epoch", ylabel="sparsity (hard mask)", title="sparsity")
        axes[0].legend(fontsize=8)
        epochs = rs[0]["job"]["config"]["epochs"]
        fig.suptitle(f"Exact vs published dynamics, one deviation at a time (MNIST, r0 = 0.5, λ = {lam:g}, "
                     f"{epochs} epochs)")
        stem = f"study_deviations_lam{lam:g}"
        save(fig, out, stem)
        entries.append(entry(stem, "— (study)", f"r, τ, sparsity under each of P1–P4 alone, all, none; λ = {lam:g}; "
                             f"1 seed, {epochs} epochs", f"devstudy_*_lam{lam:g}_",
                             seconds=sum(r[0]["seconds"] for r in recs.values())))
    return entries
