"""Export of a pruned network in compressed sparse row (CSR) form.

Each weight matrix W (fan_in, fan_out) is stored as the three CSR arrays of its
nonzeros — ``data`` (the values), ``indices`` (column of each value) and
``indptr`` (where each row starts) — so the file shrinks with sparsity. Biases
are stored dense. Layers are numbered 1…L (``W1_data``, ..., ``b1``, ...), as in
params.npz and the golden vectors. :func:`load_sparse` rebuilds the dense
matrices (also from files numbered 0…L−1, as written before), and the network
gives the same predictions (tested). scipy.sparse is used only in
the tests, as an independent check of the format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from refprune.util.io import check_dtype, read_npz, reading, write_npz


def to_csr(W: np.ndarray):
    """CSR arrays (data, indices, indptr) of a 2-D array."""
    rows, cols = np.nonzero(W)
    data = W[rows, cols]
    indptr = np.zeros(W.shape[0] + 1, dtype=np.int64)
    np.add.at(indptr, rows + 1, 1)
    np.cumsum(indptr, out=indptr)
    return data, cols.astype(index_dtype(W.shape[1])), indptr


def index_dtype(n_cols: int):
    """Smallest unsigned integer type that holds a column index below n_cols."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if n_cols <= np.iinfo(dtype).max + 1:
            return dtype
    return np.uint64


def from_csr(data, indices, indptr, shape) -> np.ndarray:
    """Dense array from CSR arrays."""
    W = np.zeros(shape, dtype=data.dtype)
    rows = np.repeat(np.arange(shape[0]), np.diff(indptr))
    W[rows, indices] = data
    return W


def dense_bytes(weights, biases) -> int:
    """Bytes of the parameters stored densely."""
    return sum(W.nbytes for W in weights) + sum(b.nbytes for b in biases)


def sparse_arrays(weights, biases) -> dict:
    """The arrays written by :func:`save_sparse`, by name."""
    arrays = {"n_layers": np.array(len(weights))}
    for l, (W, b) in enumerate(zip(weights, biases), start=1):
        data, indices, indptr = to_csr(W)
        arrays.update({f"W{l}_data": data, f"W{l}_indices": indices, f"W{l}_indptr": indptr,
                       f"W{l}_shape": np.array(W.shape), f"b{l}": b})
    return arrays


def save_sparse(path, weights, biases) -> dict:
    """Write the network as CSR weights and dense biases to an .npz (atomic).

    Returns
    -------
    dict
        ``dense_bytes`` (parameters stored densely), ``sparse_bytes`` (the CSR
        arrays and biases, uncompressed) and ``file_bytes`` (the .npz on disk).
    """
    arrays = sparse_arrays(weights, biases)
    path = write_npz(path, **arrays)
    return {"dense_bytes": dense_bytes(weights, biases),
            "sparse_bytes": int(sum(a.nbytes for k, a in arrays.items() if k != "n_layers" and not k.endswith("_shape"))),
            "file_bytes": Path(path).stat().st_size}


def load_sparse(path) -> tuple[list, list]:
    """Read a file written by :func:`save_sparse`; returns dense (weights, biases).

    Raises :class:`refprune.util.io.UnreadableFile` naming the file if it is damaged or not such a file.
    """
    what = "a run's sparse model (model_sparse.npz of 'refprune train')"
    f = read_npz(path, what)
    with reading(path, what):
        for key, value in f.items():
            check_dtype(path, key, value)
        n = int(f["n_layers"])
        first = 0 if "W0_data" in f else 1  # files written before layers were numbered from 1
        layers = range(first, first + n)
        weights = [from_csr(f[f"W{l}_data"], f[f"W{l}_indices"], f[f"W{l}_indptr"], tuple(f[f"W{l}_shape"]))
                   for l in layers]
        biases = [f[f"b{l}"] for l in layers]
    return weights, biases
