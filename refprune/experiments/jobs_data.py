"""Sweep jobs that keep a few images of a data set, so figures of the data redraw without it.

Job kind (registered in :data:`refprune.experiments.jobs.JOB_KINDS`):

``data_samples``
    The first ``count`` images of the training file of ``mnist`` or
    ``fashion-mnist`` (read from ``data_dir``), in file order, as uint8 with
    their labels: thesis Fig. 3.3 shows the first ten MNIST training images.
    ``tiny_mnist`` (the smoke-test stand-in) gives its first images scaled to
    0..255.
"""

from __future__ import annotations

import numpy as np

from refprune.data.mnist import PIXEL_MAX, dataset_info, find_mnist_files, read_pair
from refprune.data.tiny import tiny_mnist


def first_images(data: str, data_dir, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (count, rows, cols), labels uint8 (count,)) from the start of the training file."""
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    if data == "tiny_mnist":
        d = tiny_mnist()
        images = np.rint(d.x_train[:count] * PIXEL_MAX).astype(np.uint8).reshape(-1, 28, 28)
        return images, d.y_train[:count].astype(np.uint8)
    if data_dir is None:
        raise ValueError(f"data_dir is required for the {data} samples (a directory with the four IDX files)")
    paths = find_mnist_files(data_dir, data)
    images, labels = read_pair(paths["train_images"], paths["train_labels"])
    if images.shape[0] < count:
        raise ValueError(f"{paths['train_images']}: {images.shape[0]} images, fewer than the {count} asked for")
    return images[:count], labels[:count]


def run_data_samples_job(job: dict):
    """Kind ``data_samples``: the first ``job["count"]`` images and labels of a data set, for Fig. 3.3."""
    images, labels = first_images(job["data"], job.get("data_dir"), job["count"])
    names = (dataset_info(job["data"]).class_names if job["data"] != "tiny_mnist"
             else dataset_info("mnist").class_names)
    record = {"data": job["data"], "count": int(images.shape[0]), "labels": labels.tolist(),
              "class_names": list(names)}
    return record, {"images": images, "labels": labels}
