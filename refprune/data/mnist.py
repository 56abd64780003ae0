"""Loading MNIST or Fashion-MNIST from the four standard IDX files (thesis §3.2).

The thesis's protocol: 28×28 grey-scale images flattened to 784 pixels and
scaled to [0, 1]; the 60,000 training images split 80/20 into 48,000 training
and 12,000 validation images; the 10,000 test images kept apart.

:func:`load_mnist` reads the files from any directory a user points it at,
gzip-compressed or raw. Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017) uses the
same four file names and format; ``dataset="fashion-mnist"`` selects its name
(in messages) and class names (:data:`DATASETS`). The loader checks that the images are 3-D unsigned
bytes, the labels 1-D unsigned bytes in 0..9, and that image and label counts
agree; every problem is reported with the file(s) concerned.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from refprune.data.idx import IdxFormatError, idx_code, idx_dtype_name, read_idx
from refprune.data.synthetic import check_fraction, check_integer, split_indices

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
N_CLASSES = 10
PIXEL_MAX = 255.0


@dataclass(frozen=True)
class IdxDataset:
    """What distinguishes the data sets shipped as the four IDX files."""

    title: str  # the name used in messages and figures
    class_names: tuple  # label k is class_names[k]


DATASETS = {
    "mnist": IdxDataset("MNIST", tuple(str(k) for k in range(N_CLASSES))),
    # Label order of the Fashion-MNIST README (zalandoresearch/fashion-mnist).
    "fashion-mnist": IdxDataset("Fashion-MNIST", ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")),
}


def dataset_info(dataset: str) -> IdxDataset:
    """The :class:`IdxDataset` of a data set name, or ``ValueError`` naming the choices."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}")
    return DATASETS[dataset]


class MnistFormatError(IdxFormatError):
    """A well-formed IDX file whose content does not fit its MNIST role."""


@dataclass(frozen=True)
class MnistData:
    """MNIST split into training, validation and test sets (arrays read-only).

    Attributes
    ----------
    x_train, x_val, x_test : ndarray, shape (n, rows · cols), floating
        Flattened images scaled to [0, 1] (pixel / 255).
    y_train, y_val, y_test : ndarray of int64, shape (n,)
        Labels in 0..9.
    train_index, val_index : ndarray of int64
        Positions of the training and validation images in the original
        training file.
    image_shape : tuple of int
        (rows, cols) of one image, e.g. (28, 28).
    files : tuple of str
        Paths read: training images, training labels, test images, test labels.
    val_fraction : float
        Fraction of the training file used for validation.
    seed : int or None
        Seed of the split; None if a Generator was passed.
    dataset : str
        Key of :data:`DATASETS` ("mnist" or "fashion-mnist").
    class_names : tuple of str
        Name of each label, 0..9.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    train_index: np.ndarray
    val_index: np.ndarray
    image_shape: tuple
    files: tuple
    val_fraction: float
    seed: int | None
    dataset: str = "mnist"
    class_names: tuple = DATASETS["mnist"].class_names


def expected_file_names() -> list[str]:
    """The four standard file names, each accepted with or without ``.gz``."""
    return [f"{name}[.gz]" for name in MNIST_FILES.values()]


def find_mnist_files(data_dir, dataset: str = "mnist") -> dict:
    """Paths of the four IDX files in ``data_dir``, preferring ``.gz`` if both exist.

    Parameters
    ----------
    data_dir : str or os.PathLike
    dataset : {"mnist", "fashion-mnist"}
        Names the data set in the error messages (the file names are shared).

    Returns
    -------
    dict
        Keys as in ``MNIST_FILES``, values the paths found.

    Raises
    ------
    FileNotFoundError
        If ``data_dir`` is not a directory or any of the four files is absent;
        the message names the directory, the missing files and all four
        expected names.
    """
    title = dataset_info(dataset).title
    data_dir = os.fspath(data_dir)
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(
            f"{data_dir}: {title} data directory not found; it must hold "
            + ", ".join(expected_file_names())
        )
    found, missing = {}, []
    for role, name in MNIST_FILES.items():
        candidates = [os.path.join(data_dir, name + ".gz"), os.path.join(data_dir, name)]
        present = [p for p in candidates if os.path.isfile(p)]
        if present:
            found[role] = present[0]
        else:
            missing.append(name + "[.gz]")
    if missing:
        raise FileNotFoundError(
            f"{data_dir}: missing {title} file(s) {', '.join(missing)}; expected "
            + ", ".join(expected_file_names())
        )
    return found


def _kind(arr: np.ndarray) -> str:
    try:
        return idx_dtype_name(idx_code(arr.dtype))
    except ValueError:
        return str(arr.dtype)


def read_bytes_array(path, ndim: int, what: str) -> np.ndarray:
    """Read an IDX file and check it holds an ``ndim``-D array of unsigned bytes (``what`` names it)."""
    arr = read_idx(path)
    if arr.dtype != np.uint8 or arr.ndim != ndim:
        raise MnistFormatError(
            path,
            f"expected {what} as {ndim}-D unsigned bytes (dtype code 0x08), found "
            f"{arr.ndim}-D {_kind(arr)} of shape {arr.shape}",
        )
    return arr


def read_images(path) -> np.ndarray:
    """Read an image file and check it is a 3-D uint8 array (n, rows, cols)."""
    return read_bytes_array(path, 3, "images")


def read_labels(path) -> np.ndarray:
    """Read a label file and check it is a 1-D uint8 array with values 0..9."""
    labels = read_bytes_array(path, 1, "labels")
    bad = np.flatnonzero(labels >= N_CLASSES)
    if bad.size:
        raise MnistFormatError(
            path,
            f"label values must be in 0..{N_CLASSES - 1}; found {int(labels[bad[0]])} "
            f"at index {int(bad[0])} ({bad.size} such label(s))",
        )
    return labels


def read_pair(image_path, label_path) -> tuple[np.ndarray, np.ndarray]:
    """Read matching image and label files; raise naming both if the counts differ."""
    images, labels = read_images(image_path), read_labels(label_path)
    if images.shape[0] != labels.shape[0]:
        raise MnistFormatError(
            image_path,
            f"{images.shape[0]} images, but {os.fspath(label_path)} holds "
            f"{labels.shape[0]} labels",
        )
    return images, labels


def to_features(images: np.ndarray, dtype) -> np.ndarray:
    """Flatten uint8 images (n, rows, cols) to (n, rows · cols) in [0, 1] (pixel / 255)."""
    x = images.reshape(images.shape[0], -1).astype(dtype)
    x /= PIXEL_MAX  # thesis §3.2: pixels scaled to [0, 1]
    return x


def _float_dtype(dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be a floating NumPy dtype, got {dtype!r}") from None
    if dt.kind != "f":
        raise ValueError(f"dtype must be a floating NumPy dtype, got {dt}")
    return dt


def _split_rng(seed) -> tuple[np.random.Generator, int | None]:
    if isinstance(seed, np.random.Generator):
        return seed, None
    seed = check_integer(seed, "seed", minimum=0)
    return np.random.default_rng(seed), seed


def _read_only(*arrays):
    for a in arrays:
        a.flags.writeable = False
    return arrays


def read_mnist_files(data_dir, dataset: str = "mnist") -> tuple:
    """Read and check the four IDX files of ``data_dir``: (paths, train images, train labels, test
    images, test labels), as stored.

    Every check :func:`load_mnist` makes of the files is made here (so a command can check a data
    directory before any work); the errors are those of :func:`load_mnist`.
    """
    paths = find_mnist_files(data_dir, dataset)
    train_images, train_labels = read_pair(paths["train_images"], paths["train_labels"])
    test_images, test_labels = read_pair(paths["test_images"], paths["test_labels"])
    if train_images.shape[1:] != test_images.shape[1:]:
        raise MnistFormatError(
            paths["train_images"],
            f"images are {train_images.shape[1:]} but {paths['test_images']} holds "
            f"{test_images.shape[1:]} images",
        )
    return paths, train_images, train_labels, test_images, test_labels


def load_mnist(data_dir, val_fraction: float = 0.2, seed=0, dtype=np.float32,
               dataset: str = "mnist") -> MnistData:
    """Load MNIST (or Fashion-MNIST) from the four IDX files in ``data_dir``; split off validation.

    Parameters
    ----------
    data_dir : str or os.PathLike
        Directory holding ``train-images-idx3-ubyte``,
        ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
        ``t10k-labels-idx1-ubyte``, each gzip-compressed (``.gz``) or raw.
    val_fraction : float, optional
        Fraction in (0, 1) of the training file held out for validation;
        round(val_fraction · n) images. 0.2 gives the thesis's 48,000/12,000.
    seed : int or numpy.random.Generator, optional
        The split is ``numpy.random.default_rng(seed).permutation(n)``: the
        first n_val positions validate, the rest train. A Generator is used
        as is.
    dtype : floating dtype, optional
        dtype of the image arrays (default float32).
    dataset : {"mnist", "fashion-mnist"}, optional
        Which data set the files hold: selects the name in messages and the
        class names (:data:`DATASETS`); both use the same file names.

    Returns
    -------
    MnistData
        For the real MNIST or Fashion-MNIST: x_train (48000, 784),
        x_val (12000, 784), x_test (10000, 784), labels int64.

    Raises
    ------
    FileNotFoundError
        Directory or file missing (see :func:`find_mnist_files`).
    IdxFormatError
        A file is malformed; :class:`MnistFormatError` (a subclass) if it is
        well-formed IDX with the wrong content (not 3-D/1-D uint8, a label
        outside 0..9, counts or image sizes that do not match).
    ValueError
        Bad ``val_fraction``, ``seed``, ``dtype`` or ``dataset``.

    References
    ----------
    Thesis §3.2. Y. LeCun, C. Cortes, C. J. C. Burges, "The MNIST database of
    handwritten digits" (IDX format). H. Xiao, K. Rasul, R. Vollgraf,
    "Fashion-MNIST" (2017), arXiv:1708.07747.
    """
    info = dataset_info(dataset)
    val_fraction = check_fraction(val_fraction, "val_fraction")
    dtype = _float_dtype(dtype)
    rng, seed_value = _split_rng(seed)
    paths, train_images, train_labels, test_images, test_labels = read_mnist_files(data_dir, dataset)
    train_index, val_index = split_indices(
        train_images.shape[0], val_fraction, rng, n_name="training images"
    )
    arrays = _read_only(
        to_features(train_images[train_index], dtype),
        train_labels[train_index].astype(np.int64),
        to_features(train_images[val_index], dtype),
        train_labels[val_index].astype(np.int64),
        to_features(test_images, dtype),
        test_labels.astype(np.int64),
        train_index,
        val_index,
    )
    return MnistData(
        *arrays,
        image_shape=tuple(int(s) for s in train_images.shape[1:]),
        files=tuple(paths[role] for role in MNIST_FILES),
        val_fraction=val_fraction,
        seed=seed_value,
        dataset=dataset,
        class_names=info.class_names,
    )
