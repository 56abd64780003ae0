"""The training path's fast kernels, each beside the plain function of :mod:`refprune.core` or
:mod:`refprune.density` it must equal.

The plain functions state the method; these compute the same quantities faster on the training
path: a hard cutoff of the soft mask far from t (no subnormal masks), the mask of magnitudes with
that cutoff applied only on the sides of t it reaches (the exact step's full route), a bracketed
selection of t, a one-point KDE sum, Scott's bandwidth from running sums, the gradient sums fused
into one pass, and the flushes that keep Adam's moments out of the subnormal range. Each docstring
names the plain function it equals (or what it computes that the plain path does not: the cutoff,
the flushes) and the test that proves it; the numerical arguments are in docs/derivations.md, §2.5
"The training path's hard cutoff".
"""

from __future__ import annotations

import numpy as np

from refprune.core.masks import EXPONENT_CAP, logit_into, sigmoid_and_slope_into
from refprune.core.optim import BETA2
from refprune.core.threshold import Threshold, midpoint, pruned_count
from refprune.density.kde import _INV_SQRT_2PI, KERNEL_REACH


def mask_cutoff(dtype, t: float, tau: float) -> float:
    """The logit C beyond which the training path takes the mask as hard and its slope as 0.

    C = L + ln(1 + 2(T + L)) with δ = (eps/2)², L = ln(1/δ), T = t²/τ, so e^{−C} = δ/(1 + 2(T + L)).
    The plain :func:`refprune.core.masks.soft_mask_and_slope` has no cutoff; where |z| >= C the
    training path sets m = 1[z > 0] and s = 0 instead, which moves m by less than δ and ∂L/∂w by
    at most 1.25·δ·|g| per weight, leaves no subnormal mask, and lets the work outside the band
    reduce to a hard 0/1 mask (:mod:`refprune.train.steps.softband`). The bounds and why δ is
    half an ulp squared: docs/derivations.md §2.5, "The training path's hard cutoff". Tested by
    tests/test_band.py::test_cutoff_changes_mask_slope_and_weight_factor_within_the_stated_bound.

    Parameters
    ----------
    dtype : numpy dtype or type (float32 or float64)
    t : float, threshold (>= 0)
    tau : float, temperature (> 0)

    Returns
    -------
    float
    """
    base = 2.0 * float(np.log(2.0 / np.finfo(dtype).eps))   # ln(1/δ), δ = (eps/2)²
    return base + float(np.log1p(2.0 * (t * t / tau + base)))


def apply_cutoff(m: np.ndarray, s: np.ndarray, z: np.ndarray, cutoff: float) -> None:
    """In place: m = 1[z > 0] and s = 0 where |z| >= cutoff (see :func:`mask_cutoff`).

    Where z >= cutoff the computed m is already exactly 1 (1 − σ(z) < eps/2). Tested through
    :func:`soft_mask_and_slope_into` by
    tests/test_band.py::test_cutoff_changes_mask_slope_and_weight_factor_within_the_stated_bound.
    """
    np.copyto(m, 0, where=z <= -cutoff)
    np.copyto(s, 0, where=np.abs(z) >= cutoff)


def cutoff_binds(a_max: float, t: float, tau: float, cutoff: float) -> bool:
    """Whether some magnitude in [0, a_max] has |z| >= cutoff.

    When it is False the cutoff changes nothing: :func:`soft_mask_and_slope_into` with the cutoff
    equals :func:`refprune.core.masks.soft_mask_and_slope` bit for bit
    (tests/test_kernels.py::test_an_unbound_cutoff_changes_nothing).
    """
    return t * t / tau >= cutoff or (a_max - t) * (a_max + t) / tau >= cutoff


# Relative slack of cutoff_sides. The logit z of a magnitude, rounded in the array's dtype from
# t rounded to it, differs from the float64 (a² − t²)/τ by less than (t²/τ + |z|)·4u (u = 2⁻²⁴ in
# float32; docs/derivations.md §2.5): 1e-6 is about four times that.
CUTOFF_SIDE_SLACK = 1e-6


def cutoff_sides(a_max: float, t: float, tau: float, cutoff: float) -> tuple[bool, bool]:
    """Whether a computed logit of a magnitude in [0, a_max] can reach −cutoff (low) and +cutoff (high).

    Conservative by :data:`CUTOFF_SIDE_SLACK`: a side reported False has no logit, as rounded in
    float32 or float64, at or beyond the cutoff, so the cutoff's clip and zeroing change nothing
    there and :func:`soft_mask_and_slope_of_magnitudes` skips them
    (tests/test_kernels.py::test_a_side_cutoff_sides_leaves_out_has_no_logit_at_the_cutoff).
    """
    T = t * t / tau
    z_max = (a_max - t) * (a_max + t) / tau
    return (T * (1.0 + 2.0 * CUTOFF_SIDE_SLACK) >= cutoff,
            z_max + (T + abs(z_max)) * CUTOFF_SIDE_SLACK >= cutoff)


def training_soft_mask(w: np.ndarray, t: float, tau: float) -> np.ndarray:
    """The soft mask as the training path evaluates it: exactly 0 or 1 where |z| >= :func:`mask_cutoff`.

    Used wherever a training run applies the soft mask outside its step too
    (the per-epoch soft-mask metrics): the exact sigmoid leaves the masks of
    pruned weights subnormal, and matrix products with subnormal weights are
    many times slower on CPUs of the CI kind (docs/performance.md, "Evaluation"). Equals
    :func:`refprune.core.masks.soft_mask` where |z| < :func:`mask_cutoff` and differs from it by
    less than (eps/2)² elsewhere (tests/test_kernels.py::test_training_soft_mask_is_the_plain_mask_cut_off,
    tests/test_band.py::test_per_epoch_soft_mask_metrics_use_no_subnormal_weights).
    """
    return soft_mask_and_slope_into(w, t, tau, cutoff=mask_cutoff(w.dtype, t, tau))[0]


def bracket_scan(magnitudes: np.ndarray, lo: float, hi: float) -> tuple[int, np.ndarray]:
    """How many magnitudes lie below ``lo``, and those in [lo, hi).

    One pass over the data; additive over any split of it, so halves can be
    scanned on two threads and combined (with :func:`select_in_bracket`, the split scans give
    :func:`refprune.core.threshold.empirical_threshold`:
    tests/test_kernels.py::test_scans_of_parts_select_the_full_threshold).
    """
    a = magnitudes
    return int(np.count_nonzero(a < lo)), a[(a >= lo) & (a < hi)]


def select_in_bracket(r: float, n: int, below: int, inside: np.ndarray) -> Threshold | None:
    """The midpoint threshold from a bracket scan, or None if the bracket misses a_k or a_{k+1}.

    Equals :func:`refprune.core.threshold.empirical_threshold` whenever it is not None
    (tests/test_kernels.py::test_scans_of_parts_select_the_full_threshold).
    """
    k = pruned_count(r, n)
    # positions k − 1 and k (0-based) of the full order must fall inside
    if k == 0 or below > k - 1 or below + inside.size < k + 1:
        return None
    part = np.partition(inside, (k - 1 - below, k - below))
    lower, upper = float(part[k - 1 - below]), float(part[k - below])
    return Threshold(t=midpoint(lower, upper), k=k, lower=lower, upper=upper)


def bracketed_threshold(magnitudes: np.ndarray, r: float, lo: float, hi: float) -> Threshold | None:
    """:func:`refprune.core.threshold.empirical_threshold` by selecting only inside a bracket [lo, hi).

    During training t moves little from step to step, so the order statistics
    a_k and a_{k+1} usually lie in a narrow bracket around the previous t.
    Counting the magnitudes below ``lo`` and partitioning only those inside
    the bracket gives the same a_k, a_{k+1} (hence the same t) at a fraction of
    the cost of partitioning all n. No validation: the training loop's hot path. Tested equal
    by tests/test_train.py::test_bracketed_selection_equals_full_selection.

    Parameters
    ----------
    magnitudes : ndarray, shape (n,)
    r : float in [0, 1)
    lo, hi : float
        The bracket.

    Returns
    -------
    Threshold or None
        None if the bracket does not contain both order statistics (the caller
        then widens it or falls back to :func:`empirical_threshold`).
    """
    below, inside = bracket_scan(magnitudes, lo, hi)
    return select_in_bracket(r, magnitudes.size, below, inside)


def kde_at_point(samples: np.ndarray, x: float, h: float, out=None, reflect: bool = False) -> float:
    """Gaussian KDE at one point, in the samples' own dtype (training hot path).

    The same sum as :func:`refprune.density.kde.direct_kde` (thesis eq. (2.17)), without
    validation, blocking or the float64 conversion, so a float32 training step stays in
    float32. At a single point the direct sum costs O(n) with no
    approximation; the binned FFT estimate pays off only when the density is
    wanted on a whole grid. Tested equal by
    tests/test_train.py::test_point_kde_and_fast_bandwidth_equal_the_references.

    Parameters
    ----------
    samples : ndarray, shape (n,)
    x : float
    h : float > 0
    out : ndarray, shape (n,), optional
        Scratch buffer (the training loop's, to avoid allocating).
    reflect : bool
        Add the kernel reflected at 0, φ((x + a_i)/h) (samples >= 0, x >= 0);
        skipped when x >= KERNEL_REACH·h, where it is below 1e-14 of the sum.

    Returns
    -------
    float
    """
    total = _kernel_sum(samples, x, h, out)
    if reflect and x < KERNEL_REACH * h:
        total += _kernel_sum(samples, -x, h, out)  # φ((x + a)/h) = φ((a − (−x))/h)
    return total * _INV_SQRT_2PI / (samples.size * h)  # thesis eq. (2.17)


def _kernel_sum(samples: np.ndarray, x: float, h: float, out=None) -> float:
    """Σ_i exp(−(x − a_i)²/(2h²)) in the samples' dtype (pairwise summation, error ~eps·log2 n)."""
    dtype = samples.dtype.type
    u = np.subtract(samples, dtype(x), out=out)
    u *= u
    u *= dtype(-0.5 / (h * h))
    np.exp(u, out=u)
    return float(u.sum())


def scott_bandwidth_fast(samples: np.ndarray) -> float:
    """Scott's h = σ̂·n^(−1/5) (thesis eq. (2.19)) from two sums, unchecked.

    Equal to :func:`refprune.density.kde.bandwidth` with ``rule="scott"`` up to rounding
    (tests/test_train.py::test_point_kde_and_fast_bandwidth_equal_the_references).
    """
    # pairwise summation and a BLAS dot: rounding ~1e-6 relative in float32, far below h's
    return scott_bandwidth_from_sums(float(samples.sum()), float(np.dot(samples, samples)), samples.size)


def scott_bandwidth_from_sums(sum_a: float, sum_a2: float, n: int) -> float:
    """Scott's h from Σa and Σa² (so the sums can be taken over parts of the data).

    Equal to :func:`refprune.density.kde.bandwidth` with ``rule="scott"`` up to rounding, from
    sums over any split (tests/test_kernels.py::test_scott_bandwidth_from_the_sums_of_parts).
    """
    var = max(sum_a2 - sum_a * sum_a / n, 0.0) / (n - 1)  # sample variance, ddof = 1
    return float(np.sqrt(var)) * n ** (-0.2)  # thesis eq. (2.19)


# The training steps flush the moments every FLUSH_PERIOD Adam steps (one pass
# per moment spread over that many steps); see flush_level for why nothing in
# between can decay into the subnormal range.
FLUSH_PERIOD = 16


def flush_level(dtype) -> float:
    """Moments below this magnitude are set to 0: tiny/eps of the dtype (2e-31 in float32).

    The plain :func:`refprune.core.optim.adam_update` has no flush. Flushed every
    ``FLUSH_PERIOD`` steps at tiny/eps, a decaying moment stays above 0.18·tiny/eps between
    flushes (never subnormal), and the weight moves by far less than an ulp
    (docs/derivations.md §2.5). Tested by tests/test_band.py::test_no_hot_path_array_holds_a_subnormal.
    """
    info = np.finfo(dtype)
    return float(info.tiny) / float(info.eps)


def gradient_flush_level(dtype) -> float:
    """Gradients below this magnitude are set to 0 on the training path: sqrt(tiny/(1 − β2)).

    Below it (float32: 3.4e-18) the term (1 − β2)·g² of Adam's second moment
    is subnormal. Flushing such a gradient moves the weight by at most
    lr·level/ε per step (float32, lr 1e-3: 3.4e-13), far below an ulp of any
    weight above 1e-5; the plain path does not flush (docs/derivations.md §2.5). Tested by
    tests/test_band.py::test_no_hot_path_array_holds_a_subnormal.
    """
    return float(np.sqrt(float(np.finfo(dtype).tiny) / (1.0 - BETA2)))


def flush_subnormals(x: np.ndarray, level: float, scratch: np.ndarray) -> None:
    """Set to 0, in place, every element of ``x`` with magnitude below ``level``.

    ``scratch`` is a buffer shaped like ``x`` (its contents are overwritten).
    NumPy offers no flush-to-zero mode (FTZ/DAZ are CPU flags it neither sets
    nor exposes), so this is done explicitly; every other element is left as it is
    (tests/test_kernels.py::test_flush_sets_exactly_the_small_elements_to_zero).
    """
    np.abs(x, out=scratch)
    np.copyto(x, 0, where=scratch < level)


def fused_gradients(g, W, m, s, z, t: float, tau: float, out=None):
    """∂L/∂w of one layer and its contributions to ∂L/∂τ and ∂L/∂t, in few passes.

    The training loop's fast form of :func:`refprune.core.gradients.grad_weight`,
    :func:`~refprune.core.gradients.grad_tau` and :func:`~refprune.core.gradients.grad_threshold`
    for one layer (tests/test_train.py::test_fused_gradients_equal_the_separate_formulas). With
    q = g·w·s (computed once):

        ∂L/∂w = g·m + (2/τ)·w·q         (= g·(m + (2w²/τ)·s), eq. (2.3) corrected)
        ∂L/∂τ part = −(q·z)/τ summed    (eq. (2.10))
        ∂L/∂t part = −(2t/τ)·Σ q        (eq. (2.11), inner sum)

    ``out``, optional, is a pair of buffers (dW, scratch) shaped like W.

    Returns
    -------
    dW : ndarray, shape of W
    d_tau, d_t : float
        This layer's terms of the two sums.
    """
    dW, q = out if out is not None else (np.empty_like(W), np.empty_like(W))
    np.multiply(g, W, out=q)
    q *= s
    d_t = float(q.sum()) * (-2.0 * t / tau)                         # thesis eq. (2.11), inner sum
    d_tau = -float(np.dot(q.ravel(), z.ravel())) / tau              # thesis eq. (2.10)
    q *= W
    q *= 2.0 / tau
    np.multiply(g, m, out=dW)
    dW += q                                                          # thesis eq. (2.3), corrected
    return dW, d_tau, d_t


def soft_mask_and_slope_into(w: np.ndarray, t: float, tau: float, out=None, cutoff: float | None = None):
    """:func:`refprune.core.masks.soft_mask_and_slope` into reusable buffers, with the hard cutoff.

    Without ``cutoff`` it equals the plain function bit for bit, with or without ``out``
    (tests/test_kernels.py::test_mask_into_buffers_equals_the_plain_mask); with ``cutoff``
    (:func:`mask_cutoff`) m is 1[z > 0] and s is 0 where |z| >= cutoff, and e^{−z} is clipped
    to e^{±(cutoff + 1)} instead of the plain function's cap
    (tests/test_band.py::test_cutoff_changes_mask_slope_and_weight_factor_within_the_stated_bound).

    Parameters
    ----------
    w : ndarray, any shape
    t : float
        Threshold t (>= 0).
    tau : float
        Temperature τ (> 0).
    out : tuple of 4 ndarray, optional
        Buffers (m, s, z, scratch) shaped like w, reused instead of allocating (the training
        loop's hot path); the results are written into the first three.
    cutoff : float, optional

    Returns
    -------
    m, s, z : ndarray, same shape as w
        The mask σ(z), its slope m(1 − m) and the logit z = (w² − t²)/τ, as the plain function.
    """
    if out is None:
        out = (*(np.empty_like(w) for _ in range(4)), None)
    m, s, z, E = out[:4]
    logit_into(w, t, tau, z, E)  # z = (w² − t²)/τ
    np.negative(z, out=E)
    if cutoff is not None:       # only |z| < C is used below; clip so e^{−z} is never subnormal
        np.clip(E, -(cutoff + 1.0), cutoff + 1.0, out=E)
    else:
        cap = EXPONENT_CAP[w.dtype.type]
        if t * t / tau > cap:        # −z <= t²/τ, so below that the cap cannot bind
            np.minimum(E, cap, out=E)  # the shift of eqs. (2.21)–(2.22)
    sigmoid_and_slope_into(E, m, s)
    if cutoff is not None:
        apply_cutoff(m, s, z, cutoff)
    return m, s, z


def soft_mask_and_slope_of_magnitudes(a: np.ndarray, t: float, tau: float, out, cutoff: float | None = None):
    """Mask, slope and logit of magnitudes a = |w|, with the cutoff only where it can bind.

    The full route's form of :func:`soft_mask_and_slope_into`
    (:func:`refprune.train.steps.softband.part_masks`): it equals
    ``soft_mask_and_slope_into(w, t, tau, cutoff=C)`` bit for bit (a = |w|), where C is
    ``cutoff`` if :func:`cutoff_binds` holds for the largest magnitude and None otherwise
    (tests/test_kernels.py::test_mask_of_magnitudes_equals_the_mask_into_buffers,
    tests/test_kernels.py::test_mask_of_magnitudes_low_side_only_and_cap). It takes the
    magnitudes the threshold pass computed instead of forming |w| again, clips e^{−z} and
    zeroes m and s only on the sides of t that :func:`cutoff_sides` says the cutoff can reach,
    and zeroes by multiplying with a boolean array rather than by masked assignment.

    Parameters
    ----------
    a : ndarray, shape (n,)
        Magnitudes (>= 0).
    t, tau : float
        Threshold (>= 0) and temperature (> 0).
    out : tuple (m, s, z, scratch, flags)
        Arrays shaped like a, the results written into the first three; ``scratch`` is
        overwritten, ``flags`` is a boolean scratch array.
    cutoff : float, optional
        :func:`mask_cutoff`.

    Returns
    -------
    m, s, z : ndarray
        The first three arrays of ``out``.
    """
    m, s, z, E, flags = out
    low = high = False
    if cutoff is not None and a.size:
        a_max = float(a.max())
        if cutoff_binds(a_max, t, tau, cutoff):
            low, high = cutoff_sides(a_max, t, tau, cutoff)
    np.subtract(a, a.dtype.type(t), out=z)
    np.add(a, a.dtype.type(t), out=E)
    z *= E                       # (|w| − t)(|w| + t) = w² − t²
    z *= 1.0 / tau               # thesis eq. (2.2), as logit_into
    np.negative(z, out=E)
    if low and high:             # only |z| < C is used below; clip so e^{−z} is never subnormal
        np.clip(E, -(cutoff + 1.0), cutoff + 1.0, out=E)
    elif high:
        np.maximum(E, -(cutoff + 1.0), out=E)
    elif low:
        np.minimum(E, cutoff + 1.0, out=E)
    elif t * t / tau > EXPONENT_CAP[a.dtype.type]:   # no cutoff: the plain function's cap
        np.minimum(E, EXPONENT_CAP[a.dtype.type], out=E)
    sigmoid_and_slope_into(E, m, s)
    if low:                      # m = 0 and s = 0 where z <= −C (apply_cutoff)
        np.greater(z, -cutoff, out=flags)
        m *= flags
        s *= flags
    if high:                     # s = 0 where z >= C; there m is exactly 1 already
        np.less(z, cutoff, out=flags)
        s *= flags
    return m, s, z


def network_output(x: np.ndarray, weights, biases) -> np.ndarray:
    """The output of :func:`refprune.core.mlp.mlp_forward` without the caches a backward pass needs.

    The evaluation's forward pass: each layer's bias and ReLU are applied in place to its
    product (one pass each), where the plain forward allocates new arrays and keeps the ReLU's
    mask. The values are the plain forward's, bit for bit, except that a NaN pre-activation
    stays NaN (the plain ReLU maps it to 0) and a zero may differ in sign
    (tests/test_kernels.py::test_network_output_equals_the_plain_forward).

    Parameters
    ----------
    x : ndarray, shape (N, D_in)
    weights, biases : lists of ndarray
        As for :func:`refprune.core.mlp.mlp_forward` (the masked weights ŵ for LRP).

    Returns
    -------
    ndarray, shape (N, D_out)
    """
    h, last = x, len(weights) - 1
    for l, (W, b) in enumerate(zip(weights, biases)):
        h = h @ W
        h += b
        if l < last:
            np.maximum(h, 0, out=h)   # ReLU
    return h
