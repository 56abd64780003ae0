"""The training path's fast kernels, each beside the plain function of :mod:`refprune.core` or
:mod:`refprune.density` it must equal.

The plain functions state the method; these compute the same quantities faster on the training
path: a hard cutoff of the soft mask far from t (no subnormal masks), a bracketed selection of t,
a one-point KDE sum, Scott's bandwidth from running sums, the gradient sums fused into one pass,
and the flushes that keep Adam's moments out of the subnormal range. Each docstring names the
plain function it equals and the test that proves it (docs/derivations.md, "The training path").
"""

from __future__ import annotations

import numpy as np

from refprune.core.masks import EXPONENT_CAP
from refprune.core.optim import BETA2
from refprune.core.threshold import Threshold, midpoint, pruned_count
from refprune.density.kde import _INV_SQRT_2PI, KERNEL_REACH


def mask_cutoff(dtype, t: float, tau: float) -> float:
    """The logit C beyond which the training path takes the mask as hard and its slope as 0.

    With eps the dtype's machine epsilon, δ = (eps/2)², L = ln(1/δ) and
    T = t²/τ,

        C = L + ln(1 + 2(T + L)),   so   e^{−C} = δ / (1 + 2(T + L)).

    Where z = (w² − t²)/τ has |z| >= C the training path sets m = 1[z > 0] and
    s = m(1 − m) = 0 (docs/derivations.md, "The training path's hard cutoff").
    Against the exact sigmoid this changes, per weight:

    - m by at most e^{−C} < δ (absolute; for z >= C the computed σ(z) is
      already exactly 1, since 1 − σ(z) < e^{−C} < eps/2), so ŵ = m·w by less
      than δ·|w|;
    - the factor dŵ/dw = m + (2w²/τ)·s of ∂L/∂w by at most
      (1 + 2(T + C))·e^{−C} <= 1.25·δ (w²/τ = z + T, and (z + T)e^{−z} falls for
      z >= C), so ∂L/∂w by at most 1.25·δ·|g|;
    - each weight's term of ∂L/∂τ (−g·w·z·s/τ) by at most C·e^{−C}·|g·w|/τ, and
      of ∂L/∂t (−(2t/τ)·g·w·s) by at most (2t/τ)·e^{−C}·|g·w|.

    δ is the square of half an ulp, not half an ulp, because Adam divides by
    sqrt(v̂) + ε: for a weight whose whole gradient is below ε (a pruned weight
    at the edge of the band) a change Δ of its gradient moves it by up to
    lr·Δ/ε per step; with Δ <= 1.25·δ·|g| that is below an ulp of the weight
    (float32, lr 1e-3, |g| <= 1, |w| >= 1e-3: 2e-11 against 1e-10).

    Masks of pruned weights (m ≈ e^z, z ≪ 0) are then exactly 0 instead of
    subnormal, and the work outside the band |z| < C reduces to a hard 0/1
    mask (:mod:`refprune.train.steps.softband`). Inside the band m >= e^{−C}, far above
    the dtype's smallest normal (float32: C <= 48 for T <= 1e3, e^{−48} = 1e-21).

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

    Where z >= cutoff the computed m is already exactly 1 (1 − σ(z) < eps/2).
    """
    np.copyto(m, 0, where=z <= -cutoff)
    np.copyto(s, 0, where=np.abs(z) >= cutoff)


def cutoff_binds(a_max: float, t: float, tau: float, cutoff: float) -> bool:
    """Whether some magnitude in [0, a_max] has |z| >= cutoff (else the cutoff changes nothing)."""
    return t * t / tau >= cutoff or (a_max - t) * (a_max + t) / tau >= cutoff


def training_soft_mask(w: np.ndarray, t: float, tau: float) -> np.ndarray:
    """The soft mask as the training path evaluates it: exactly 0 or 1 where |z| >= :func:`mask_cutoff`.

    Used wherever a training run applies the soft mask outside its step too
    (the per-epoch soft-mask metrics): the exact sigmoid leaves the masks of
    pruned weights subnormal, and matrix products with subnormal weights are
    many times slower on CPUs of the CI kind (README, "The evaluation fix"). Differs from
    :func:`soft_mask` by less than (eps/2)² per element (see :func:`mask_cutoff`).
    """
    return soft_mask_and_slope_into(w, t, tau, cutoff=mask_cutoff(w.dtype, t, tau))[0]


def bracket_scan(magnitudes: np.ndarray, lo: float, hi: float) -> tuple[int, np.ndarray]:
    """How many magnitudes lie below ``lo``, and those in [lo, hi).

    One pass over the data; additive over any split of it, so halves can be
    scanned on two threads and combined.
    """
    a = magnitudes
    return int(np.count_nonzero(a < lo)), a[(a >= lo) & (a < hi)]


def select_in_bracket(r: float, n: int, below: int, inside: np.ndarray) -> Threshold | None:
    """The midpoint threshold from a bracket scan, or None if the bracket misses a_k or a_{k+1}."""
    k = pruned_count(r, n)
    # positions k − 1 and k (0-based) of the full order must fall inside
    if k == 0 or below > k - 1 or below + inside.size < k + 1:
        return None
    part = np.partition(inside, (k - 1 - below, k - below))
    lower, upper = float(part[k - 1 - below]), float(part[k - below])
    return Threshold(t=midpoint(lower, upper), k=k, lower=lower, upper=upper)


def bracketed_threshold(magnitudes: np.ndarray, r: float, lo: float, hi: float) -> Threshold | None:
    """:func:`empirical_threshold` by selecting only inside a bracket [lo, hi).

    During training t moves little from step to step, so the order statistics
    a_k and a_{k+1} usually lie in a narrow bracket around the previous t.
    Counting the magnitudes below ``lo`` and partitioning only those inside
    the bracket gives the same a_k, a_{k+1} (hence the same t) at a fraction of
    the cost of partitioning all n. No validation: the training loop's hot path.

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

    The same sum as :func:`direct_kde` (thesis eq. (2.17)), without validation,
    blocking or the float64 conversion, so a float32 training step stays in
    float32. At a single point the direct sum costs O(n) with no
    approximation; the binned FFT estimate pays off only when the density is
    wanted on a whole grid. Tested against :func:`direct_kde`.

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

    Equal to :func:`bandwidth` with ``rule="scott"`` up to rounding; used by
    the training loop.
    """
    # pairwise summation and a BLAS dot: rounding ~1e-6 relative in float32, far below h's
    return scott_bandwidth_from_sums(float(samples.sum()), float(np.dot(samples, samples)), samples.size)


def scott_bandwidth_from_sums(sum_a: float, sum_a2: float, n: int) -> float:
    """Scott's h from Σa and Σa² (so the sums can be taken over parts of the data)."""
    var = max(sum_a2 - sum_a * sum_a / n, 0.0) / (n - 1)  # sample variance, ddof = 1
    return float(np.sqrt(var)) * n ** (-0.2)  # thesis eq. (2.19)


# The training steps flush the moments every FLUSH_PERIOD Adam steps (one pass
# per moment spread over that many steps); see flush_level for why nothing in
# between can decay into the subnormal range.
FLUSH_PERIOD = 16


def flush_level(dtype) -> float:
    """Moments below this magnitude are set to 0: tiny/eps of the dtype (2e-31 in float32).

    A moment of a weight whose gradient is exactly 0 decays by β1 (first) or
    β2 (second moment) per step. Flushed every ``FLUSH_PERIOD`` = 16 steps at
    tiny/eps (tiny = ``np.finfo(dtype).tiny``, the smallest normal number), it
    stays above tiny/eps·β1^16 ≈ 0.18·tiny/eps between flushes: never
    subnormal, and neither is the update step_size·m/(sqrt(v̂) + ε) for any
    sqrt(v̂) below lr/eps (float32 and lr 1e-3: 8e3). Effect of one flush on
    the parameter: at most lr/(1 − β1^k)·(tiny/eps)/ε·1/(1 − β1) over all
    later steps (float32: 2e-25 at lr 1e-3), and on the denominator at most
    sqrt(tiny/eps) = 4e-16 against ε = 1e-8 — far below an ulp of any normal
    weight, so a float32 or float64 run is unchanged at its precision.
    """
    info = np.finfo(dtype)
    return float(info.tiny) / float(info.eps)


def gradient_flush_level(dtype) -> float:
    """Gradients below this magnitude are set to 0 on the training path: sqrt(tiny/(1 − β2)).

    Below it (float32: 3.4e-18) the term (1 − β2)·g² of Adam's second moment
    is subnormal. Flushing such a gradient moves the weight by at most
    lr·level/ε per step (float32, lr 1e-3: 3.4e-13), far below an ulp of any
    weight above 1e-5.
    """
    return float(np.sqrt(float(np.finfo(dtype).tiny) / (1.0 - BETA2)))


def flush_subnormals(x: np.ndarray, level: float, scratch: np.ndarray) -> None:
    """Set to 0, in place, every element of ``x`` with magnitude below ``level``.

    ``scratch`` is a buffer shaped like ``x`` (its contents are overwritten).
    NumPy offers no flush-to-zero mode (FTZ/DAZ are CPU flags it neither sets
    nor exposes), so this is done explicitly.
    """
    np.abs(x, out=scratch)
    np.copyto(x, 0, where=scratch < level)


def fused_gradients(g, W, m, s, z, t: float, tau: float, out=None):
    """∂L/∂w of one layer and its contributions to ∂L/∂τ and ∂L/∂t, in few passes.

    The training loop's fast form of :func:`grad_weight`, :func:`grad_tau` and
    :func:`grad_threshold` for one layer; tested equal to them. With
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

    Without ``out`` and ``cutoff`` it equals the plain function bit for bit
    (tests/test_band.py); with ``cutoff`` (:func:`mask_cutoff`) m is 1[z > 0] and s is 0
    where |z| >= cutoff.

    Parameters
    ----------
    w : ndarray, any shape
    t : float
        Threshold t (>= 0).
    tau : float
        Temperature τ (> 0).
    out : tuple of 4 ndarray, optional
        Buffers (m, s, z, scratch) shaped like w, reused instead of
        allocating (the training loop's hot path). Results are written into
        the first three.

    Returns
    -------
    m : ndarray, same shape as w
        σ((w² − t²)/τ), in [0, 1].
    s : ndarray, same shape as w
        m(1 − m) = σ'(z), in [0, 1/4]; it is the factor every mask derivative
        carries (METHOD §3).
    z : ndarray, same shape as w
        The logit (w² − t²)/τ.

    Notes
    -----
    With E = e^{−z}: m = 1/(1 + E) and s = m(1 − m) = E·m², since
    1 − m = E·m. Both are accurate to an ulp for every z (s stays accurate
    where m rounds to 1, unlike m·(1 − m)). Overflow of E is the hazard eq.
    (2.20) has as τ → 0; thesis eqs. (2.21)–(2.22) shift the exponents, and
    the equivalent here caps −z at ``EXPONENT_CAP[dtype]``: where z is below
    −cap the true m is below e^{−cap} (1e-35 in float32, 1e-304 in float64)
    and the computed one is about that, instead of the unrepresentable
    value.
    """
    if out is None:
        out = (*(np.empty_like(w) for _ in range(4)), None)
    m, s, z, E = out[:4]
    np.abs(w, out=E)
    np.subtract(E, t, out=z)
    E += t
    z *= E                       # (|w| − t)(|w| + t) = w² − t²
    z *= 1.0 / tau               # thesis eq. (2.2), argument of σ (one division, not n)
    np.negative(z, out=E)
    if cutoff is not None:       # only |z| < C is used below; clip so e^{−z} is never subnormal
        np.clip(E, -(cutoff + 1.0), cutoff + 1.0, out=E)
    else:
        cap = EXPONENT_CAP[w.dtype.type]
        if t * t / tau > cap:        # −z <= t²/τ, so below that the cap cannot bind
            np.minimum(E, cap, out=E)  # the shift of eqs. (2.21)–(2.22)
    np.exp(E, out=E)             # E = e^{−z}, finite
    np.add(E, 1, out=m)
    np.reciprocal(m, out=m)      # m = 1/(1 + e^{−z})   (thesis eq. (2.2))
    np.multiply(E, m, out=s)     # E·m = 1 − m
    s *= m                       # s = m(1 − m)
    if cutoff is not None:
        apply_cutoff(m, s, z, cutoff)
    return m, s, z
