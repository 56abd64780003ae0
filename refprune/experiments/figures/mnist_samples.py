"""Fig. 3.3: sample MNIST images, drawn from a few images kept in results/ (no data needed to redraw).

The thesis's Fig. 3.3 shows the first ten images of the MNIST training file
(labels 5, 0, 4, 1, 9, 2, 1, 3, 1, 4) in two rows of five, each titled with
its label. The job ``mnist_samples`` (kind ``data_samples``,
:mod:`refprune.experiments.jobs_data`) keeps those ten images in
``results/mnist_samples.npz``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from refprune.experiments.figures.common import entry, save
from refprune.experiments.sweep import load_arrays, load_results

JOB, STEM, COUNT, COLUMNS = "mnist_samples", "fig3_3_mnist_samples", 10, 5


def jobs(quick: bool, data_dir=None) -> list:
    return [{"name": JOB, "kind": "data_samples", "data": "tiny_mnist" if quick else "mnist",
             "data_dir": None if quick else data_dir, "count": COUNT}]


def plot(results, out) -> list:
    recs = [r for r in load_results(results, JOB) if r["job"]["name"] == JOB]
    if not recs:
        return []
    arrays = load_arrays(results, JOB)
    images, labels = arrays["images"], arrays["labels"]
    rows = -(-len(images) // COLUMNS)
    fig, axes = plt.subplots(rows, COLUMNS, figsize=(1.9 * COLUMNS, 2.1 * rows), squeeze=False,
                             layout="constrained")
    for ax, image, label in zip(axes.flat, images, labels):
        ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(f"Label: {int(label)}", fontsize=10)
        ax.set_xticks([0, 10, 20])
        ax.set_yticks([0, 10, 20])
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(images):]:
        ax.axis("off")
    save(fig, out, STEM)
    source = "tiny stand-in data (quick)" if recs[0]["data"] == "tiny_mnist" else "the MNIST training file"
    return [entry(STEM, "Fig. 3.3", f"the first {len(images)} images of {source}, with their labels "
                  f"({', '.join(str(int(v)) for v in labels)})", JOB)]
