"""The golden-vector file schema: key names, shapes, and reading values back.

Shared by :mod:`refprune.vectors.cases` (writing cases), :mod:`refprune.vectors.compare`
and :mod:`refprune.vectors.diagnose` (reading them); the format is specified in
``docs/vectors.md``.
"""

from __future__ import annotations

import numpy as np

from refprune.core.groups import GRANULARITIES
from refprune.density.config import DensityConfig
from refprune.lrp.reference import LRPConfig

SCHEMA_VERSION = 1
TIERS = ("float64", "float32")
# Weight layouts a file may declare in its optional ``layout`` key: "in_out"
# (D_{l−1}, D_l), the default and this project's; "out_in" (D_l, D_{l−1}),
# PyTorch's nn.Linear.weight.
LAYOUTS = ("in_out", "out_in")
# Input keys a file may omit: kde_ddof (the method's default, files before it existed),
# layout (default "in_out"), and the previous step (needed only by the stale-state
# diagnosis, which is skipped without them).
PREV_KEYS_SCALAR = ("r_prev", "tau_prev")

# --------------------------------------------------------------------------
# key schema


def n_layers_of(layers) -> int:
    """L, the number of Linear layers, from (D_0, …, D_L)."""
    return len(layers) - 1


def layer_keys(prefix: str, n_layers: int) -> list[str]:
    """``[prefix1, …, prefixL]``: layer numbering is 1-based in key names."""
    return [f"{prefix}{l}" for l in range(1, n_layers + 1)]


KDE_KEYS = ("kde_method", "kde_rule", "kde_grid_size", "kde_binning", "kde_reflect",
            "kde_renormalize", "kde_point", "kde_ddof")
# kde_ddof (degrees of freedom of σ̂ in the bandwidth) was added after schema 1's
# first files: a file without it means the method's default (DensityConfig: 1, and
# 0 for "published", whose σ is np.std's).
SCALAR_INPUTS = ("r", "tau", "lam", "r_prev", "tau_prev")
STRING_INPUTS = ("case", "loss_kind", "threshold_rule", "tier")
SCALAR_OUTPUTS = ("loss", "t", "dt_dr", "density", "grad_t", "grad_tau", "grad_r")
# A layer-wise file (its ``granularity`` key is "layer"; a file without the key is
# global) holds these under the same names as arrays of shape (L,), entry l − 1 for
# layer l: r_l, τ_l, t_l, dt_l/dr_l, f_l, ∂L/∂t_l, ∂L/∂τ_l, ∂L/∂r_l (docs/vectors.md).
LAYERWISE_KEYS = ("r", "tau", "t", "dt_dr", "density", "grad_t", "grad_tau", "grad_r")


def granularity_of(data: dict) -> str:
    """A file's granularity: its ``granularity`` key, "global" without one."""
    if "granularity" not in data:
        return "global"
    value = text(data, "granularity")
    if value not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}, got {value!r}")
    return value


def input_keys(n_layers: int, granularity: str = "global") -> list[str]:
    """Every input key of a case with L layers, in file order.

    A layer-wise case adds ``granularity`` and has no previous step (the stale-state
    diagnosis it serves is global only).
    """
    keys = (["schema_version", "case", "tier", "layers"] + layer_keys("W", n_layers)
            + layer_keys("b", n_layers) + ["x", "y", "loss_kind", "r", "tau", "lam", "threshold_rule"])
    if granularity == "layer":
        return keys + ["granularity", *KDE_KEYS]
    return (keys + [*KDE_KEYS] + layer_keys("W_prev", n_layers) + layer_keys("b_prev", n_layers)
            + ["r_prev", "tau_prev"])


def output_keys(n_layers: int) -> list[str]:
    """Every reference-output key of a case with L layers, in file order."""
    return (["loss", "t"] + layer_keys("mask", n_layers) + layer_keys("grad_masked_W", n_layers)
            + ["dt_dr", "density", "grad_t"] + layer_keys("grad_W", n_layers)
            + layer_keys("grad_b", n_layers) + ["grad_tau", "grad_r"])


def output_shapes(layers, granularity: str = "global") -> dict:
    """Expected shape of every output key: weight-shaped keys are (D_{l−1}, D_l); in a
    layer-wise case the ``LAYERWISE_KEYS`` are (L,)."""
    per_layer = LAYERWISE_KEYS if granularity == "layer" else ()
    shapes = {key: (n_layers_of(layers),) if key in per_layer else () for key in SCALAR_OUTPUTS}
    for l, (fan_in, fan_out) in enumerate(zip(layers[:-1], layers[1:]), start=1):
        for prefix in ("mask", "grad_masked_W", "grad_W"):
            shapes[f"{prefix}{l}"] = (fan_in, fan_out)
        shapes[f"grad_b{l}"] = (fan_out,)
    return shapes


def previous_keys(n_layers: int) -> list[str]:
    """The previous-step input keys (optional: only the stale-state diagnosis needs them)."""
    return layer_keys("W_prev", n_layers) + layer_keys("b_prev", n_layers) + list(PREV_KEYS_SCALAR)


def required_input_keys(n_layers: int, granularity: str = "global") -> list[str]:
    """Input keys every case file must hold (``input_keys`` without the optional ones)."""
    optional = set(previous_keys(n_layers)) | {"kde_ddof"}
    return [key for key in input_keys(n_layers, granularity) if key not in optional]


def has_previous_step(data: dict) -> bool:
    """True if the file holds every previous-step key."""
    return all(key in data for key in previous_keys(n_layers_of(data["layers"])))


# --------------------------------------------------------------------------
# reading values back


def text(data: dict, key: str) -> str:
    """A string-valued key of a vectors or candidate dict."""
    value = np.asarray(data[key])
    if value.ndim != 0 or value.dtype.kind not in "US":
        raise ValueError(f"{key} must be a string, got dtype {value.dtype} shape {value.shape}")
    item = value.item()
    return item.decode() if isinstance(item, bytes) else str(item)


def scalar(data: dict, key: str) -> float:
    """A float-valued 0-d key."""
    return float(np.asarray(data[key], np.float64))


def weights_of(data: dict, prefix: str = "W") -> list:
    """Per-layer arrays ``prefix1 … prefixL`` of a vectors dict as float64 (``W``, ``b``, ``W_prev``…)."""
    L = n_layers_of(data["layers"])
    return [np.asarray(data[key], np.float64) for key in layer_keys(prefix, L)]


def config_of(data: dict) -> LRPConfig:
    """The LRPConfig a vectors dict was computed with (from ``loss_kind``, ``lam``, ``kde_*``…)."""
    density = DensityConfig(rule=text(data, "kde_rule"), grid_size=int(data["kde_grid_size"]),
                            binning=text(data, "kde_binning"), reflect=bool(data["kde_reflect"]),
                            method=text(data, "kde_method"),
                            renormalize=bool(data["kde_renormalize"]),
                            ddof=int(data["kde_ddof"]) if "kde_ddof" in data else None)
    return LRPConfig(loss=text(data, "loss_kind"), lam=scalar(data, "lam"),
                     threshold=text(data, "threshold_rule"), density=density,
                     dt_dr_at=text(data, "kde_point"))


def targets_of(data: dict) -> np.ndarray:
    """y as int64 labels of shape (N,) (``ce``) or float64 targets of shape (N, D_L) (``mse``)."""
    y = np.asarray(data["y"])
    return y.astype(np.int64) if text(data, "loss_kind") == "ce" else y.astype(np.float64)
