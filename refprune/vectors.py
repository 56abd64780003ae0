"""Golden vectors: fixed LRP cases holding every input and every reference output.

A *case* is one LRP pass (METHOD §3, the exact path of :func:`refprune.lrp.lrp_gradients`)
on a small MLP: its inputs (layer sizes, W and b of every layer, a batch x and
targets y, the loss kind, r, τ, λ, the threshold rule and the KDE settings) and
every output an implementation computes on the way (loss, t, soft masks,
g = ∂L/∂ŵ, dt/dr and the density it came from, ∂L/∂t, and the gradients of
every W, b, τ and r). ``refprune vectors --out DIR`` writes one ``.npz`` per
case and ``manifest.json``; ``refprune compare`` checks another
implementation's outputs against them (:mod:`refprune.compare`). The file
format is specified in ``docs/vectors.md``.

Properties every case has
-------------------------
- Inputs come from :func:`refprune.gradcheck.make_problem` with a fixed seed
  (PyTorch-default initialisation), then rounded to float32: every input is
  exactly representable in float32, so a float32 implementation reads the
  same numbers a float64 one does. References are computed in float64.
- The previous optimiser step is stored (``W_prev*``, ``b_prev*``,
  ``r_prev``, ``tau_prev``) so that a candidate whose threshold is one step
  stale (METHOD §6 P4) can be recognised by recomputation.
- Generation is deterministic: the same refprune version writes the same
  bytes (the ``.npz`` archives carry a fixed timestamp).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .density import DensityConfig
from .gradcheck import Case, make_problem
from .io import atomic_write
from .lrp import DT_DR_POINTS, LRPConfig, LRPResult, lrp_gradients
from .threshold import THRESHOLD_RULES, compute_threshold
from .validation import check_choice

SCHEMA_VERSION = 1
TIERS = ("float64", "float32")
TAU_RULES = ("std", "margin", "absolute")
MANIFEST = "manifest.json"

# The previous step is one Adam step back with the learning rates of thesis
# Table 4.1. Adam's first update is lr·g/(|g| + ε) (m̂ = g, v̂ = g²), so
# W_prev = W + lr·g/(|g| + ε): each weight moved by about lr, which moves t by
# a few 1e-4 relative: at least 3× the float32 tier (tests/test_vectors.py checks it).
PREV_LR = {"weights": 1e-3, "r": 1e-4, "tau": 1e-6}
ADAM_EPS = 1e-8
# In the extreme-τ cases lr_τ = 1e-6 exceeds τ itself; the τ step is capped at
# 1% of τ there so that τ_prev stays a plausible previous value of τ.
PREV_TAU_MAX_REL = 1e-2
# r_prev is clamped like r in training (METHOD §4).
R_MAX = 0.9999
# r·n must stay this far from an integer (besides the r step to r_prev), so
# that k = floor(r·n) is the same whether r·n is rounded in float32 or float64
# and for r and r_prev alike: no case sits on a jump of t(r).
K_MARGIN = 1e-3

# The fixed zip timestamp of every archive member (the earliest a zip can hold),
# so that generation is byte-for-byte reproducible.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class VectorCase:
    """One golden-vector case: everything needed to rebuild its inputs.

    Attributes
    ----------
    name : str
        File stem and the ``case`` key.
    description : str
        What the case exercises.
    layers : tuple of int
        (D_0, …, D_L).
    batch : int
    loss : {"ce", "mse"}
    r : float
        Pruning ratio (rounded to float32 before use).
    tau0 : float
        Meaning depends on ``tau_rule``.
    tau_rule : {"std", "margin", "absolute"}
        "std": τ = τ0 × std(all weights) (thesis §2.5); "margin": τ =
        min_i |w_i² − t²| / τ0, so every mask logit has |z| >= τ0 (a near-hard
        mask that stays well conditioned); "absolute": τ = τ0.
    lam : float
        λ of the regulariser (thesis eq. (2.23)).
    threshold : {"empirical", "smoothed"}
    density : DensityConfig
        Density estimate for dt/dr (default: the exact Gaussian sum reflected
        at 0, Scott's bandwidth; every field is set explicitly).
    dt_dr_at : {"t", "order_stats"}
        Where 1/f is evaluated (see :class:`refprune.lrp.LRPConfig`).
    tier : {"float64", "float32"}
        Tolerance tier the case is judged in.
    seed : int
    covers : tuple of str
        Tags listing what the case spans (for the manifest).
    """

    name: str
    description: str
    layers: tuple
    batch: int
    loss: str
    r: float
    tau0: float
    tau_rule: str = "std"
    lam: float = 0.0
    threshold: str = "empirical"
    density: DensityConfig = field(default_factory=lambda: _density("direct", reflect=True))
    dt_dr_at: str = "t"
    tier: str = "float64"
    seed: int = 0
    covers: tuple = ()

    def __post_init__(self):
        """Check the choices (ValueError naming the field)."""
        check_choice(self.tau_rule, "tau_rule", TAU_RULES)
        check_choice(self.tier, "tier", TIERS)
        check_choice(self.threshold, "threshold", THRESHOLD_RULES)
        check_choice(self.dt_dr_at, "dt_dr_at", DT_DR_POINTS)


def _density(method: str, reflect: bool, binning: str = "linear", renormalize: bool = False) -> DensityConfig:
    """A DensityConfig with every field explicit (Scott's rule, m = 1024)."""
    return DensityConfig(rule="scott", grid_size=1024, binning=binning, reflect=reflect,
                         method=method, renormalize=renormalize)


_REFLECTED = _density("direct", reflect=True)  # exact sum reflected at 0 (also the smoothed rule's)
_DIRECT = _density("direct", reflect=False)  # exact sum, thesis eq. (2.17) as printed
_THESIS_FFT = _density("fft", reflect=False)  # binned + FFT, linear binning (Theorem 2.1)
_PUBLISHED = _density("fft", reflect=False, binning="nearest", renormalize=True)  # METHOD §6 P5 (untruncated)

CASES = (
    VectorCase("ce-tiny", "classification, tiny net, moderate τ, λ = 0",
               (4, 3, 3), 5, "ce", 0.5, 0.1, seed=1,
               covers=("classification", "tiny", "moderate-tau", "lam0", "float64")),
    VectorCase("mse-tiny-lam", "regression, tiny net, λ > 0, KDE not reflected at 0",
               (3, 4, 2), 6, "mse", 0.33, 0.1, lam=2.0, density=_DIRECT, seed=2,
               covers=("regression", "tiny", "moderate-tau", "lam>0", "unreflected-kde", "float64")),
    VectorCase("ce-medium-f32", "classification, medium net, thesis τ0 = 1e-2 and λ = 10, "
               "binned FFT KDE (Theorem 2.1), float32 tier",
               (16, 32, 32, 10), 16, "ce", 0.6, 1e-2, lam=10.0, density=_THESIS_FFT, seed=3,
               tier="float32",
               covers=("classification", "medium", "moderate-tau", "lam>0", "fft-kde", "float32")),
    VectorCase("mse-medium-f32", "regression, medium net, float32 tier",
               (8, 32, 32, 4), 16, "mse", 0.4, 0.05, seed=4,
               tier="float32",
               covers=("regression", "medium", "moderate-tau", "lam0", "float32")),
    VectorCase("ce-medium-fft", "classification, medium net, binned FFT KDE, float64 tier",
               (12, 24, 16, 6), 12, "ce", 0.7, 0.05, lam=0.5, density=_THESIS_FFT, seed=5,
               covers=("classification", "medium", "moderate-tau", "lam>0", "fft-kde", "float64")),
    VectorCase("ce-hard-tau", "near-hard mask: τ = min|w² − t²|/10, every |z| >= 10, "
               "every mask within 5e-5 of 0 or 1",
               (10, 16, 8, 4), 8, "ce", 0.52, 10.0, tau_rule="margin", lam=1.0, seed=6,
               covers=("classification", "medium", "extreme-tau", "lam>0", "float64")),
    VectorCase("mse-tau-1e-12", "τ = 1e-12: masks saturated, overflow-free soft mask needed",
               (6, 8, 3), 6, "mse", 0.55, 1e-12, tau_rule="absolute", seed=7,
               covers=("regression", "tiny", "extreme-tau", "lam0", "float64")),
    VectorCase("ce-r-near-0", "r = 0.01 < 1/n: k = 0, a_0 := 0, t = a_1/2",
               (4, 3, 3), 5, "ce", 0.01, 0.1, seed=8,
               covers=("classification", "tiny", "r-near-0", "k=0", "lam0", "float64")),
    VectorCase("mse-r-near-0-f32", "r = 0.01 with k = 1, λ > 0, float32 tier",
               (8, 16, 4), 10, "mse", 0.01, 0.1, lam=1.0, seed=9,
               tier="float32",
               covers=("regression", "medium", "r-near-0", "lam>0", "float32")),
    VectorCase("ce-r-near-1", "r = 0.95, λ = 10",
               (8, 16, 4), 10, "ce", 0.95, 0.1, lam=10.0, seed=10,
               covers=("classification", "medium", "r-near-1", "lam>0", "float64")),
    VectorCase("mse-r-0999", "r = 0.999: t between the 2nd and 3rd largest |w|, density in the tail",
               (16, 32, 32, 1), 12, "mse", 0.999, 0.1, seed=11,
               covers=("regression", "medium", "r-near-1", "lam0", "float64")),
    VectorCase("ce-smoothed-lam", "smoothed threshold t̃ = F̂⁻¹(r) (reflected KDE), λ = 10",
               (6, 5, 4, 3), 8, "ce", 0.5, 0.1, lam=10.0, threshold="smoothed",
               density=_REFLECTED, seed=12,
               covers=("classification", "tiny", "smoothed", "lam>0", "float64")),
    VectorCase("mse-smoothed-f32", "smoothed threshold, regression, float32 tier",
               (5, 8, 2), 8, "mse", 0.3, 0.1, threshold="smoothed", density=_REFLECTED, seed=13,
               tier="float32",
               covers=("regression", "tiny", "smoothed", "lam0", "float32")),
    VectorCase("ce-published-kde", "published density (nearest bins, renormalised) averaged "
               "over a_k, a_{k+1}, with the sign of eq. (2.16)",
               (10, 12, 5), 8, "ce", 0.53, 0.1, lam=1.0, density=_PUBLISHED, dt_dr_at="order_stats",
               seed=14, covers=("classification", "medium", "published-kde", "lam>0", "float64")),
)
CASE_NAMES = tuple(c.name for c in CASES)


# --------------------------------------------------------------------------
# key schema


def n_layers_of(layers) -> int:
    """L, the number of Linear layers, from (D_0, …, D_L)."""
    return len(layers) - 1


def layer_keys(prefix: str, n_layers: int) -> list[str]:
    """``[prefix1, …, prefixL]``: layer numbering is 1-based in key names."""
    return [f"{prefix}{l}" for l in range(1, n_layers + 1)]


KDE_KEYS = ("kde_method", "kde_rule", "kde_grid_size", "kde_binning", "kde_reflect",
            "kde_renormalize", "kde_point")
SCALAR_INPUTS = ("r", "tau", "lam", "r_prev", "tau_prev")
STRING_INPUTS = ("case", "loss_kind", "threshold_rule", "tier")
SCALAR_OUTPUTS = ("loss", "t", "dt_dr", "density", "grad_t", "grad_tau", "grad_r")


def input_keys(n_layers: int) -> list[str]:
    """Every input key of a case with L layers, in file order."""
    return (["schema_version", "case", "tier", "layers"] + layer_keys("W", n_layers)
            + layer_keys("b", n_layers) + ["x", "y", "loss_kind", "r", "tau", "lam",
                                           "threshold_rule", *KDE_KEYS]
            + layer_keys("W_prev", n_layers) + layer_keys("b_prev", n_layers)
            + ["r_prev", "tau_prev"])


def output_keys(n_layers: int) -> list[str]:
    """Every reference-output key of a case with L layers, in file order."""
    return (["loss", "t"] + layer_keys("mask", n_layers) + layer_keys("grad_masked_W", n_layers)
            + ["dt_dr", "density", "grad_t"] + layer_keys("grad_W", n_layers)
            + layer_keys("grad_b", n_layers) + ["grad_tau", "grad_r"])


def output_shapes(layers) -> dict:
    """Expected shape of every output key: weight-shaped keys are (D_{l−1}, D_l)."""
    shapes = {key: () for key in SCALAR_OUTPUTS}
    for l, (fan_in, fan_out) in enumerate(zip(layers[:-1], layers[1:]), start=1):
        for prefix in ("mask", "grad_masked_W", "grad_W"):
            shapes[f"{prefix}{l}"] = (fan_in, fan_out)
        shapes[f"grad_b{l}"] = (fan_out,)
    return shapes


# --------------------------------------------------------------------------
# building a case


def to_float32_grid(a) -> np.ndarray:
    """float64 array of the nearest float32 values (inputs float32 implementations read exactly)."""
    return np.asarray(a, np.float64).astype(np.float32).astype(np.float64)


def f32(value: float) -> float:
    """The nearest float32 value of a scalar, as a Python float."""
    return float(np.float32(value))


def choose_tau(case: VectorCase, weights, t: float) -> float:
    """τ of the case by its ``tau_rule`` (see :class:`VectorCase`), rounded to float32."""
    if case.tau_rule == "absolute":
        return f32(case.tau0)
    flat = np.concatenate([W.ravel() for W in weights])
    if case.tau_rule == "std":
        return f32(case.tau0 * float(np.std(flat)))  # thesis §2.5: τ = τ0 × std(W)
    gap = float(np.min(np.abs((np.abs(flat) - t) * (np.abs(flat) + t))))  # min |w² − t²|
    if not gap > 0:
        raise ValueError(f"case {case.name}: a weight lies exactly at t, no margin τ exists")
    return f32(gap / case.tau0)


def lrp_config(case: VectorCase) -> LRPConfig:
    """The LRPConfig of a case (loss, λ, threshold rule, density, dt/dr point)."""
    return LRPConfig(loss=case.loss, lam=case.lam, threshold=case.threshold,
                     density=case.density, dt_dr_at=case.dt_dr_at)


def adam_first_step(g: np.ndarray) -> np.ndarray:
    """Adam's first update direction m̂/(√v̂ + ε) = g/(|g| + ε) (PyTorch semantics)."""
    g = np.asarray(g, np.float64)
    return g / (np.abs(g) + ADAM_EPS)


def previous_step(weights, biases, r: float, tau: float, res: LRPResult) -> dict:
    """The parameters one Adam step earlier, if that step's gradient equalled this one.

    W_prev = W + lr·g/(|g| + ε) (and likewise b, r, τ; learning rates of
    thesis Table 4.1, ``PREV_LR``), rounded to float32. r_prev is clamped to
    [0, R_MAX]; the τ step is capped at ``PREV_TAU_MAX_REL``·τ.

    Returns
    -------
    dict
        ``W_prev`` and ``b_prev`` (lists), ``r_prev``, ``tau_prev``.
    """
    lr = PREV_LR
    W_prev = [to_float32_grid(W + lr["weights"] * adam_first_step(g))
              for W, g in zip(weights, res.grad_weights)]
    b_prev = [to_float32_grid(b + lr["weights"] * adam_first_step(g))
              for b, g in zip(biases, res.grad_biases)]
    r_prev = f32(min(max(r + lr["r"] * float(adam_first_step(res.grad_r)), 0.0), R_MAX))
    tau_step = lr["tau"] * float(adam_first_step(res.grad_tau))
    tau_step = float(np.clip(tau_step, -PREV_TAU_MAX_REL * tau, PREV_TAU_MAX_REL * tau))
    return {"W_prev": W_prev, "b_prev": b_prev, "r_prev": r_prev, "tau_prev": f32(tau + tau_step)}


def check_k_margin(case: VectorCase, r: float, n: int) -> None:
    """Raise unless r·n and (r ± lr_r)·n lie at least K_MARGIN from an integer (empirical rule)."""
    if case.threshold != "empirical":
        return
    rn = r * n
    room = min(rn - np.floor(rn), np.ceil(rn) - rn) if rn != np.floor(rn) else 0.0
    if room < K_MARGIN + PREV_LR["r"] * n:
        raise ValueError(f"case {case.name}: r·n = {rn!r} is within {room:.3g} of an integer; "
                         f"choose r so that k = floor(r·n) is not on a jump")


def build_inputs(case: VectorCase) -> dict:
    """Inputs of a case: weights, biases, batch, targets, r, τ (float32-representable).

    Returns
    -------
    dict
        ``weights``, ``biases`` (lists of float64 arrays), ``x``, ``y``, ``r``,
        ``tau``, ``config`` (LRPConfig).
    """
    problem = make_problem(Case(layers=case.layers, batch=case.batch, loss=case.loss,
                                r=case.r, tau0=1.0, lam=case.lam, seed=case.seed,
                                threshold=case.threshold, dtype="float64"))
    weights = [to_float32_grid(W) for W in problem.weights]
    biases = [to_float32_grid(b) for b in problem.biases]
    x = to_float32_grid(problem.x)
    y = problem.y.astype(np.int64) if case.loss == "ce" else to_float32_grid(problem.y)
    r = f32(case.r)
    check_k_margin(case, r, sum(W.size for W in weights))
    config = lrp_config(case)
    t = compute_threshold(weights, r, case.threshold, case.density).t
    tau = choose_tau(case, weights, t)
    return {"weights": weights, "biases": biases, "x": x, "y": y, "r": r, "tau": tau, "config": config}


def reference_outputs(res: LRPResult) -> dict:
    """Output keys (``output_keys``) from an LRP pass, as float64 arrays."""
    out = {"loss": res.loss, "t": res.threshold.t, "dt_dr": res.dt_dr, "density": res.density,
           "grad_t": res.grad_t, "grad_tau": res.grad_tau, "grad_r": res.grad_r}
    out = {key: np.array(value, np.float64) for key, value in out.items()}
    for l in range(len(res.masks)):
        out[f"mask{l + 1}"] = np.asarray(res.masks[l], np.float64)
        out[f"grad_masked_W{l + 1}"] = np.asarray(res.grad_masked[l], np.float64)
        out[f"grad_W{l + 1}"] = np.asarray(res.grad_weights[l], np.float64)
        out[f"grad_b{l + 1}"] = np.asarray(res.grad_biases[l], np.float64)
    return out


def kde_inputs(config: LRPConfig) -> dict:
    """The ``kde_*`` keys of a case."""
    d = config.density
    return {"kde_method": np.array(d.method), "kde_rule": np.array(d.rule),
            "kde_grid_size": np.array(d.grid_size, np.int64), "kde_binning": np.array(d.binning),
            "kde_reflect": np.array(d.reflect), "kde_renormalize": np.array(d.renormalize),
            "kde_point": np.array(config.dt_dr_at)}


def make_vectors(case: VectorCase) -> dict:
    """Every key of a case's file (inputs and reference outputs), in file order.

    Parameters
    ----------
    case : VectorCase

    Returns
    -------
    dict
        Key → ndarray; see ``docs/vectors.md`` for the schema.
    """
    inp = build_inputs(case)
    W, b, r, tau, config = inp["weights"], inp["biases"], inp["r"], inp["tau"], inp["config"]
    res = lrp_gradients(W, b, inp["x"], inp["y"], r, tau, config)
    prev = previous_step(W, b, r, tau, res)
    L = len(W)
    data = {"schema_version": np.array(SCHEMA_VERSION, np.int64), "case": np.array(case.name),
            "tier": np.array(case.tier), "layers": np.array(case.layers, np.int64)}
    data.update(zip(layer_keys("W", L), W))
    data.update(zip(layer_keys("b", L), b))
    data.update({"x": inp["x"], "y": inp["y"], "loss_kind": np.array(case.loss),
                 "r": np.array(r), "tau": np.array(tau), "lam": np.array(float(case.lam)),
                 "threshold_rule": np.array(case.threshold)})
    data.update(kde_inputs(config))
    data.update(zip(layer_keys("W_prev", L), prev["W_prev"]))
    data.update(zip(layer_keys("b_prev", L), prev["b_prev"]))
    data.update({"r_prev": np.array(prev["r_prev"]), "tau_prev": np.array(prev["tau_prev"])})
    outputs = reference_outputs(res)
    data.update((key, outputs[key]) for key in output_keys(L))
    return data


def case_by_name(name: str) -> VectorCase:
    """The registered case of that name, or ValueError listing the known names."""
    for case in CASES:
        if case.name == name:
            return case
    raise ValueError(f"case {name!r} does not exist; known cases: {', '.join(CASE_NAMES)}")


# --------------------------------------------------------------------------
# reading a case back


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
                            renormalize=bool(data["kde_renormalize"]))
    return LRPConfig(loss=text(data, "loss_kind"), lam=scalar(data, "lam"),
                     threshold=text(data, "threshold_rule"), density=density,
                     dt_dr_at=text(data, "kde_point"))


def targets_of(data: dict) -> np.ndarray:
    """y as int64 labels of shape (N,) (``ce``) or float64 targets of shape (N, D_L) (``mse``)."""
    y = np.asarray(data["y"])
    return y.astype(np.int64) if text(data, "loss_kind") == "ce" else y.astype(np.float64)


def load_vectors(path) -> dict:
    """Read a case file; check its schema version and that every key is present.

    Raises
    ------
    ValueError
        If the file is not a vectors file of this schema.
    OSError
        If it cannot be read.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise ValueError(f"{path} is not a readable vectors .npz file ({exc})") from None
    if "schema_version" not in data or int(data["schema_version"]) != SCHEMA_VERSION:
        raise ValueError(f"{path}: not a vectors file of schema version {SCHEMA_VERSION}")
    L = n_layers_of(data["layers"])
    missing = [key for key in input_keys(L) + output_keys(L) if key not in data]
    if missing:
        raise ValueError(f"{path}: vectors file lacks keys {', '.join(missing)}")
    return data


# --------------------------------------------------------------------------
# writing


def npz_bytes(arrays: dict) -> bytes:
    """A compressed .npz archive of the arrays with fixed member timestamps (reproducible)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, value in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def manifest_entry(case: VectorCase, data: dict, blob: bytes) -> dict:
    """The manifest's description of one written case."""
    n = int(sum(np.size(data[key]) for key in layer_keys("W", n_layers_of(case.layers))))
    return {"name": case.name, "file": f"{case.name}.npz",
            "sha256": hashlib.sha256(blob).hexdigest(), "description": case.description,
            "tier": case.tier, "covers": list(case.covers), "layers": list(case.layers),
            "batch": case.batch, "loss_kind": case.loss, "n_weights": n,
            "r": scalar(data, "r"), "k": min(int(np.floor(scalar(data, "r") * n)), n - 1),
            "tau": scalar(data, "tau"), "tau_rule": case.tau_rule, "tau0": case.tau0,
            "lam": case.lam, "threshold_rule": case.threshold,
            "kde": {key: np.asarray(data[key]).item() for key in KDE_KEYS},
            "t": scalar(data, "t"), "dt_dr": scalar(data, "dt_dr"), "seed": case.seed}


def merged_entries(manifest_path: Path, entries: list) -> list:
    """``entries`` plus those of an existing manifest whose case files are still there, in case order."""
    new = {e["name"]: e for e in entries}
    if manifest_path.is_file():
        old = json.loads(manifest_path.read_text(encoding="utf-8")).get("cases", [])
        for e in old:
            if e.get("name") not in new and (manifest_path.parent / f"{e.get('name')}.npz").is_file():
                new[e["name"]] = e
    order = {name: i for i, name in enumerate(CASE_NAMES)}
    return sorted(new.values(), key=lambda e: order.get(e["name"], len(order)))


def write_vectors(out_dir, names=None) -> dict:
    """Write the cases (all, or those named) and ``manifest.json`` into ``out_dir``.

    Parameters
    ----------
    out_dir : path
    names : iterable of str, optional
        Case names; unknown names raise ValueError before anything is written.
        Cases already in ``out_dir`` (file present) stay listed in the manifest.

    Returns
    -------
    dict
        The manifest that was written.
    """
    from .compare import tolerance_table

    cases = list(CASES) if names is None else [case_by_name(n) for n in names]
    out_dir = Path(out_dir)
    entries = []
    for case in cases:
        data = make_vectors(case)
        blob = npz_bytes(data)
        atomic_write(out_dir / f"{case.name}.npz", lambda fh, blob=blob: fh.write(blob))
        entries.append(manifest_entry(case, data, blob))
    entries = merged_entries(out_dir / MANIFEST, entries)
    manifest = {"schema_version": SCHEMA_VERSION, "generator": f"refprune {__version__}",
                "format": "docs/vectors.md", "tolerances": tolerance_table(), "cases": entries}
    text_ = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    atomic_write(out_dir / MANIFEST, lambda fh: fh.write(text_.encode()))
    return manifest


def read_manifest(vectors_dir) -> dict:
    """``manifest.json`` of a vectors directory, checked for the schema version."""
    path = Path(vectors_dir) / MANIFEST
    with open(path, encoding="utf-8") as fh:
        try:
            manifest = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON ({exc})") from None
    if manifest.get("schema_version") != SCHEMA_VERSION or "cases" not in manifest:
        raise ValueError(f"{path}: not a vectors manifest of schema version {SCHEMA_VERSION}")
    return manifest


def reference_for(name: str, vectors_dir=None) -> tuple[dict, str]:
    """The reference vectors of a case: from ``vectors_dir`` or generated in memory.

    Returns
    -------
    data : dict
    source : str
        Where it came from (a path, or "generated in memory").
    """
    if vectors_dir is None:
        return make_vectors(case_by_name(name)), "generated in memory"
    manifest = read_manifest(vectors_dir)
    entry = next((e for e in manifest["cases"] if e.get("name") == name), None)
    if entry is None:
        known = ", ".join(e.get("name", "?") for e in manifest["cases"])
        raise ValueError(f"case {name!r} does not exist in {vectors_dir}; known cases: {known}")
    path = Path(vectors_dir) / entry["file"]
    blob = path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != entry.get("sha256"):
        raise ValueError(f"{path} does not match the sha256 in {MANIFEST} (modified or mixed versions)")
    data = load_vectors(path)
    if text(data, "case") != name:
        raise ValueError(f"{path} holds case {text(data, 'case')!r}, not {name!r}")
    return data, str(path)
