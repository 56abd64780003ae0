"""Gradient-check cases: the settings of one check and the concrete problem they build.

A :class:`Case` (layer sizes, batch, loss, r, τ0, λ, seed, threshold rule,
dtype, band, granularity) rebuilds its inputs deterministically with
:func:`make_problem`: PyTorch-default weights, a standard-normal batch,
τ = τ0 × std(W), and at small τ0 a populated transition band
(:mod:`refprune.oracle.placement`). The golden vectors build their inputs with it too.
A layer-wise case (``granularity = "layer"``, docs/derivations.md §9) takes
the same weights and batch, one group per layer, and gives layer l its own r_l
(:func:`layer_ratios`) and τ_l = τ0 × std(W_l) (:func:`layer_taus`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refprune.core.groups import GRANULARITIES, Grouping
from refprune.core.losses import LOSSES
from refprune.core.masks import TAU_STABLE_MAX
from refprune.core.mlp import check_layer_sizes, init_mlp
from refprune.core.validation import check_choice
from refprune.data.tasks import parse_layers
from refprune.density.quantile import THRESHOLD_RULES
from refprune.lrp.reference import LRPConfig
from refprune.oracle.placement import BAND_AUTO_TAU0, DEFAULT_BAND, populate_band
from refprune.util.options import NONNEGATIVE, POSITIVE, RATIO, Range, check_ranges, option

DTYPES = ("float64", "float32")
# Below this τ the analytic path is not accurate: the soft mask caps its
# exponent at 700 (masks.EXPONENT_CAP), so a pruned weight keeps
# s ≈ e^{-700} ≈ 1e-304 instead of ~0, and ∂L/∂τ gains a spurious
# Σ g·w·s·z/τ ~ 1e-304·w²/τ², above FD_ABS_FLOOR once τ < ~1e-150 (METHOD §2
# asks for τ down to 1e-12; 1e-140 leaves 1e10 of room below it).
TAU_MIN_CHECKABLE = 1e-140


@dataclass(frozen=True)
class Case:
    """One gradient-check case: everything needed to rebuild its inputs."""

    layers: tuple = option((6, 5, 4, 3), "layer sizes, comma-separated, at least two, each >= 1", parse=parse_layers)
    batch: int = option(8, "batch size", range=Range(1, integer=True))
    loss: str = option("ce", "loss", choices=LOSSES)
    r: float = option(0.5, "pruning ratio", range=RATIO)
    tau0: float = option(0.1, "τ as a multiple of std(weights) (τ itself must lie in "
                         f"[{TAU_MIN_CHECKABLE:g}, {TAU_STABLE_MAX:g}], checked when the case is built)", range=POSITIVE)
    lam: float = option(0.0, "regulariser weight λ", range=NONNEGATIVE)
    seed: int = option(0, "seed of the case's weights and batch", range=Range(0, integer=True))
    threshold: str = option("empirical", "threshold rule", choices=THRESHOLD_RULES)
    dtype: str = option("float64", "dtype of the analytic gradients (finite differences are always float64)",
                        choices=DTYPES)
    band: int | None = option(None, "place N weights within the transition band of t", parse=int,
                              show=f"{DEFAULT_BAND} when tau0 < {BAND_AUTO_TAU0:g}, else 0",
                              range=Range(0, integer=True))
    granularity: str = option("global", "one r, τ and threshold for all weights, or one per layer "
                              "(docs/derivations.md §9)", choices=GRANULARITIES)
    r_spread: float = option(0.1, "layer-wise: r_l = r + r_spread × (l − (L + 1)/2), l = 1…L, so "
                             "every layer has its own r_l (each must be in [0, 1))", applies={"granularity": "layer"},
                             range=Range(-1.0, 1.0, low_open=True, high_open=True))

    def __post_init__(self):
        object.__setattr__(self, "layers", check_layer_sizes(self.layers))
        check_ranges(self)
        check_choice(self.threshold, "threshold", THRESHOLD_RULES)
        check_choice(self.dtype, "dtype", DTYPES)
        check_choice(self.granularity, "granularity", GRANULARITIES)
        if self.granularity == "layer":
            layer_ratios(self)
        LRPConfig(loss=self.loss, lam=self.lam, threshold=self.threshold)


@dataclass(frozen=True)
class Problem:
    """The concrete inputs of a case (arrays in the case's dtype).

    ``grouping`` is None for a global case, whose ``r`` and ``tau`` are floats; a
    layer-wise case has one group per layer, and ``r`` and ``tau`` hold one value per layer
    (the form :func:`refprune.lrp.reference.lrp_gradients` takes them in).
    """

    weights: list
    biases: list
    x: np.ndarray
    y: np.ndarray
    r: float | tuple
    tau: float | tuple
    config: LRPConfig
    grouping: Grouping | None = None


def layer_ratios(case: Case) -> tuple:
    """r_l = r + r_spread × (l − (L + 1)/2) for l = 1…L: centred on r, one step apart.

    Returns
    -------
    tuple of float, length L

    Raises
    ------
    ValueError
        If some r_l leaves [0, 1).
    """
    L = len(case.layers) - 1
    rs = tuple(float(case.r + case.r_spread * (l - (L + 1) / 2)) for l in range(1, L + 1))
    for l, r in enumerate(rs, start=1):
        if not 0.0 <= r < 1.0:
            raise ValueError(f"r_spread = {case.r_spread!r} puts r_{l} = {r:.6g} outside [0, 1) "
                             f"for r = {case.r!r} and {L} layers; choose a smaller r_spread")
    return rs


def layer_taus(weights, tau0: float) -> tuple:
    """τ_l = τ0 × std(W_l) per layer, as training initialises them (thesis §2.5, per layer)."""
    return tuple(tau0 * float(np.std(np.asarray(W, np.float64))) for W in weights)


def band_count(case: Case) -> int:
    """Weights the case places within the band: ``case.band``, or by default
    DEFAULT_BAND when τ0 < BAND_AUTO_TAU0 and 0 otherwise."""
    if case.band is not None:
        return case.band
    return DEFAULT_BAND if case.tau0 < BAND_AUTO_TAU0 else 0


def make_problem(case: Case) -> Problem:
    """Build weights (PyTorch init), a batch and targets from the case's seed.

    τ = τ0 × std(all initial weights), as in training (thesis §2.5); a layer-wise case
    then takes r_l from :func:`layer_ratios` and τ_l = τ0 × std(W_l) from
    :func:`layer_taus`. Then :func:`band_count` weights are moved within the band (of each
    layer's (t_l, τ_l), at most all of it, for a layer-wise case; see
    :mod:`refprune.oracle.placement`); by default this happens only at small τ0. When the
    default cannot place them (τ below float64's resolution near t) the band stays empty
    and the τ and t rows are vacuous; an explicit ``band`` raises instead.

    Examples
    --------
    >>> from refprune.oracle.case import Case, make_problem
    >>> p = make_problem(Case(layers=(6, 5, 4, 3), batch=8))
    >>> [W.shape for W in p.weights], p.x.shape, p.r
    ([(6, 5), (5, 4), (4, 3)], (8, 6), 0.5)
    """
    rng = np.random.default_rng(case.seed)
    dtype = np.dtype(case.dtype)
    weights, biases = init_mlp(case.layers, rng, dtype)
    x = rng.standard_normal((case.batch, case.layers[0])).astype(dtype)
    if case.loss == "ce":
        y = rng.integers(0, case.layers[-1], size=case.batch)
    else:
        y = rng.standard_normal((case.batch, case.layers[-1])).astype(dtype)
    tau = case.tau0 * float(np.std(np.concatenate([W.ravel() for W in weights])))
    if not tau >= TAU_MIN_CHECKABLE:
        raise ValueError(
            f"tau0 = {case.tau0!r} gives τ = {tau:.3g}, below {TAU_MIN_CHECKABLE:g}: there the soft "
            f"mask's capped exponent (s >= e^-700 for pruned weights) makes the analytic ∂L/∂w and "
            f"∂L/∂τ inexact, so no verdict would be meaningful (use tau0 >= "
            f"{TAU_MIN_CHECKABLE / max(tau / case.tau0, 1e-300):.1g})")
    if tau > TAU_STABLE_MAX:
        raise ValueError(f"tau0 = {case.tau0!r} gives τ = {tau:.3g}, above {TAU_STABLE_MAX:g}, beyond the range "
                         f"where the soft mask is stable (use tau0 <= {TAU_STABLE_MAX / (tau / case.tau0):.3g})")
    config = LRPConfig(loss=case.loss, lam=case.lam, threshold=case.threshold)
    r, grouping = case.r, None
    if case.granularity == "layer":
        grouping = Grouping.of("layer", len(weights))
        r, tau = layer_ratios(case), layer_taus(weights, case.tau0)
        for l, tau_l in enumerate(tau, start=1):
            if not TAU_MIN_CHECKABLE <= tau_l <= TAU_STABLE_MAX:
                raise ValueError(f"tau0 = {case.tau0!r} gives τ_{l} = {tau_l:.3g}, outside [{TAU_MIN_CHECKABLE:g}, "
                                 f"{TAU_STABLE_MAX:g}]: the analytic gradients are not exact below it "
                                 f"(refprune.oracle.case.TAU_MIN_CHECKABLE), the soft mask not stable above it")
    count = band_count(case)
    if count:
        try:
            weights = populate_band(weights, r, tau, case.threshold, config.density, count, grouping)
        except ValueError:
            if case.band is not None:
                raise
    return Problem(weights, biases, x, y, r, tau, config, grouping)
