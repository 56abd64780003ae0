"""``compare``: no false alarms, every known defect rejected and named, clear errors.

Candidates are built here from a case's inputs and reference outputs with each
defect injected by code written in this file (a plain NumPy LRP pass,
``naive_pass``, written the way a user would, with np.sort, s = m(1 − m) and so
on), not by the diagnosis's own models.
"""

import json
from dataclasses import replace

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import ndtr

from refprune.cli.main import main
from refprune.density.config import density_at
from refprune.density.quantile import smoothed_threshold
from refprune.lrp.reference import lrp_gradients
from refprune.vectors.cases import CASES, case_by_name, make_vectors, reference_outputs
from refprune.vectors.compare import compare_candidate, comparison_dict, format_comparison
from refprune.vectors.defects import smoothed_t_derivatives
from refprune.vectors.files import write_vectors
from refprune.vectors.schema import config_of, n_layers_of, output_keys, scalar, targets_of, text, weights_of

# The naive smoothed threshold's root finder: as tight as float64 allows, so the reference
# adds no error of its own.
ROOT_XTOL = 1e-16
ROOT_RTOL = 1e-15
# Five-point finite difference (step 1e-4, error O(step⁴)) against the h-varying derivative.
FD_DERIVATIVE_RTOL = 1e-6
FD_DERIVATIVE_ATOL = 1e-12
# The fixed-h derivative must miss the finite difference by more than the FD's own error,
# or the bandwidth's dependence would be negligible and the test would show nothing.
BANDWIDTH_TERM_VISIBLE = 1e-6

_CACHE = {}


def vectors(name):
    if name not in _CACHE:
        _CACHE[name] = make_vectors(case_by_name(name))
    return _CACHE[name]


def layers_of(data):
    return range(1, n_layers_of(data["layers"]) + 1)


# --------------------------------------------------------------------------
# an independent implementation (the NumPy twin of the recipe in docs/vectors.md)


def naive_threshold(data, W, r):
    a = np.sort(np.concatenate([np.abs(w).ravel() for w in W]).astype(np.float64))
    n = a.size
    if text(data, "threshold_rule") == "smoothed":
        h = np.std(a, ddof=1) * n ** -0.2
        cdf = lambda s: np.mean(ndtr((s - a) / h) - ndtr((-s - a) / h)) - r
        return brentq(cdf, 0.0, a.max() + 10 * h, xtol=ROOT_XTOL, rtol=ROOT_RTOL), None
    k = min(int(np.floor(r * n)), n - 1)
    lower = a[k - 1] if k > 0 else 0.0
    return (lower + a[k]) / 2, (lower, a[k])


def naive_density(data, W, points):
    a = np.concatenate([np.abs(w).ravel() for w in W]).astype(np.float64)
    if text(data, "kde_method") != "direct":
        return density_at(a, np.array(points), config_of(data).density)
    h = np.std(a, ddof=1) * a.size ** -0.2
    f = []
    for p in points:
        v = np.exp(-0.5 * ((p - a) / h) ** 2)
        if bool(data["kde_reflect"]):
            v = v + np.exp(-0.5 * ((p + a) / h) ** 2)
        f.append(v.sum() / (a.size * h * np.sqrt(2 * np.pi)))
    return np.array(f)


def naive_forward_backward(data, Wm, b, x, dtype):
    L = len(Wm)
    hs, pre = [x], []
    for l in range(L):
        z = hs[-1] @ Wm[l] + b[l]
        pre.append(z)
        hs.append(np.maximum(z, 0) if l < L - 1 else z)
    out = hs[-1]
    if text(data, "loss_kind") == "ce":
        y = data["y"].astype(int)
        sh = out - out.max(1, keepdims=True)
        logp = sh - np.log(np.exp(sh).sum(1, keepdims=True))
        loss = -logp[np.arange(len(y)), y].mean()
        d = np.exp(logp)
        d[np.arange(len(y)), y] -= 1
        d /= len(y)
    else:
        y = data["y"].astype(dtype)
        loss = np.mean((out - y) ** 2)
        d = 2 * (out - y) / out.size
    g, gb = [None] * L, [None] * L
    for l in reversed(range(L)):
        if l < L - 1:
            d = d * (pre[l] > 0)
        g[l], gb[l] = hs[l].T @ d, d.sum(0)
        d = d @ Wm[l].T
    return loss, g, gb


def naive_pass(data, dtype=np.float64, t_weights=None, t_ratio=None, tau=None):
    """Every output key, computed plainly; ``t_weights``/``t_ratio``/``tau`` inject a stale t or τ."""
    W = [data[f"W{l}"].astype(dtype) for l in layers_of(data)]
    b = [data[f"b{l}"].astype(dtype) for l in layers_of(data)]
    r = scalar(data, "r")
    tau = float(dtype(scalar(data, "tau") if tau is None else tau))
    lam = scalar(data, "lam")
    t, order_stats = naive_threshold(data, W if t_weights is None else t_weights,
                                     r if t_ratio is None else t_ratio)
    td = dtype(t)
    masks = []
    for w in W:
        z = (w * w - td * td) / dtype(tau)
        e = np.exp(-np.abs(z))
        masks.append(np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(dtype))
    slopes = [m * (1 - m) for m in masks]
    masked = [m * w for m, w in zip(masks, W)]
    loss, g, gb = naive_forward_backward(data, masked, b, data["x"].astype(dtype), dtype)
    grad_t = sum(np.sum(gl * w * s) for gl, w, s in zip(g, W, slopes)) * (-2 * t / tau)
    if text(data, "kde_point") == "order_stats" and order_stats is not None:
        f = naive_density(data, W, order_stats)
        dens, dt_dr = f.mean(), np.mean(1 / f)
    else:
        dens = naive_density(data, W, [t])[0]
        dt_dr = 1 / dens
    grad_tau = sum(np.sum(gl * w * s * (td * td - w * w)) for gl, w, s in zip(g, W, slopes)) / tau ** 2
    out = {"loss": loss + lam * (1 - r) ** 2, "t": t, "dt_dr": dt_dr, "density": dens, "grad_t": grad_t,
           "grad_tau": grad_tau, "grad_r": dt_dr * grad_t + 2 * lam * (r - 1)}
    for l, (m, gl, w, s, bl) in enumerate(zip(masks, g, W, slopes, gb), start=1):
        out.update({f"mask{l}": m, f"grad_masked_W{l}": gl, f"grad_W{l}": gl * (m + 2 * w * w / tau * s),
                    f"grad_b{l}": bl})
    out = {key: np.asarray(value, np.float64) for key, value in out.items()}
    out["case"] = data["case"]
    return out


# --------------------------------------------------------------------------
# candidates with one defect injected


def reference_candidate(data):
    cand = {key: np.array(data[key], np.float64) for key in output_keys(n_layers_of(data["layers"]))}
    cand["case"] = data["case"]
    return cand


def reg_grad(data):
    return 2 * scalar(data, "lam") * (scalar(data, "r") - 1)


def slopes_and_logits(data, l):
    m, w = data[f"mask{l}"], data[f"W{l}"]
    t, tau = scalar(data, "t"), scalar(data, "tau")
    return m * (1 - m), (w * w - t * t) / tau


def inject_sign_flip(data):
    cand = reference_candidate(data)
    return {k: (-v if k.startswith("grad_") else v) for k, v in cand.items()}


def inject_dt_dr_sign(data):
    cand = reference_candidate(data)
    cand["dt_dr"] = -cand["dt_dr"]
    cand["grad_r"] = np.array(cand["dt_dr"] * cand["grad_t"] + reg_grad(data))
    return cand


def with_hand_formulas(data, cand, G, power=2):
    """Recompute ∂L/∂w, ∂L/∂τ, ∂L/∂t, ∂L/∂r from a weight gradient G (eqs. 2.3, 2.10, 2.11)."""
    t, tau = scalar(data, "t"), scalar(data, "tau")
    grad_t = grad_tau = 0.0
    for l in layers_of(data):
        s, z = slopes_and_logits(data, l)
        w, m = data[f"W{l}"], data[f"mask{l}"]
        cand[f"grad_W{l}"] = G[l] * (m + 2 * w ** power / tau * s)
        grad_t += np.sum(G[l] * w * s) * (-2 * t / tau)
        grad_tau += np.sum(G[l] * w * s * -z) / tau
    cand["grad_t"], cand["grad_tau"] = np.array(grad_t), np.array(grad_tau)
    cand["grad_r"] = np.array(cand["dt_dr"] * grad_t + reg_grad(data))
    return cand


def inject_double_mask(data):
    cand = reference_candidate(data)
    G = {l: data[f"mask{l}"] * data[f"grad_masked_W{l}"] for l in layers_of(data)}
    for l in layers_of(data):
        cand[f"grad_masked_W{l}"] = G[l]  # what autograd leaves on w
    return with_hand_formulas(data, cand, G)


def inject_printed_eq(data):
    cand = reference_candidate(data)
    grads = {k: cand[k] for k in ("grad_t", "grad_tau", "grad_r")}
    cand = with_hand_formulas(data, cand, {l: data[f"grad_masked_W{l}"] for l in layers_of(data)}, power=1)
    cand.update(grads)
    return cand


def inject_t_differentiable(data):
    cand = reference_candidate(data)
    W = [data[f"W{l}"] for l in layers_of(data)]
    flat = np.concatenate([w.ravel() for w in W])
    order = np.argsort(np.abs(flat))
    k = int(np.floor(scalar(data, "r") * flat.size))
    extra = np.zeros(flat.size)
    for i in ([order[k - 1]] if k > 0 else []) + [order[k]]:  # t = (a_k + a_{k+1})/2 through the sort
        extra[i] = 0.5 * np.sign(flat[i]) * scalar(data, "grad_t")
    start = 0
    for l, w in zip(layers_of(data), W):
        cand[f"grad_W{l}"] = cand[f"grad_W{l}"] + extra[start:start + w.size].reshape(w.shape)
        start += w.size
    return cand


def inject_transposed(data):
    return {k: (v.T.copy() if np.ndim(v) == 2 else v) for k, v in reference_candidate(data).items()}


def prev_weights(data):
    return [data[f"W_prev{l}"] for l in layers_of(data)]


def inject_stale_t(data):
    return naive_pass(data, t_weights=prev_weights(data), t_ratio=scalar(data, "r_prev"))


def inject_stale_t_tau(data):
    return naive_pass(data, t_weights=prev_weights(data), t_ratio=scalar(data, "r_prev"),
                      tau=scalar(data, "tau_prev"))


def with_density(data, f):
    cand = reference_candidate(data)
    cand["density"], cand["dt_dr"] = np.array(f), np.array(1 / f)
    cand["grad_r"] = np.array(cand["dt_dr"] * cand["grad_t"] + reg_grad(data))
    return cand


def magnitudes(data):
    return np.concatenate([np.abs(data[f"W{l}"]).ravel() for l in layers_of(data)])


def gaussian_sum(a, t, h, reflect):
    v = np.exp(-0.5 * ((t - a) / h) ** 2) + (np.exp(-0.5 * ((t + a) / h) ** 2) if reflect else 0)
    return v.sum() / (a.size * h * np.sqrt(2 * np.pi))


def inject_silverman(data):
    a = magnitudes(data)
    q75, q25 = np.percentile(a, [75, 25])
    h = 0.9 * min(np.std(a, ddof=1), (q75 - q25) / 1.34) * a.size ** -0.2
    return with_density(data, gaussian_sum(a, scalar(data, "t"), h, bool(data["kde_reflect"])))


def inject_numpy_std(data):
    a = magnitudes(data)
    h = np.std(a) * a.size ** -0.2  # np.std's default ddof = 0
    return with_density(data, gaussian_sum(a, scalar(data, "t"), h, bool(data["kde_reflect"])))


def inject_no_reflection(data):
    a = magnitudes(data)
    return with_density(data, gaussian_sum(a, scalar(data, "t"), np.std(a, ddof=1) * a.size ** -0.2, False))


def inject_float32(data):
    return {k: (v.astype(np.float32).astype(np.float64) if k != "case" else v)
            for k, v in reference_candidate(data).items()}


# --------------------------------------------------------------------------
# no false alarms


@pytest.mark.parametrize("case", [c for c in CASES if c.granularity == "global"], ids=lambda c: c.name)
def test_independent_float64_implementation_passes(case):  # layer-wise cases: tests/test_compare_layer.py
    comp = compare_candidate(naive_pass(vectors(case.name)))
    assert comp.passed, format_comparison(comp)
    assert not comp.missing


@pytest.mark.parametrize("name", [c.name for c in CASES if c.tier == "float32"])
def test_float32_implementations_pass_the_float32_tier(name):
    data = vectors(name)
    comp = compare_candidate(naive_pass(data, np.float32))
    assert comp.passed, format_comparison(comp)
    y = targets_of(data)
    res = lrp_gradients([w.astype(np.float32) for w in weights_of(data)],
                        [b.astype(np.float32) for b in weights_of(data, "b")], data["x"].astype(np.float32),
                        y if y.dtype.kind == "i" else y.astype(np.float32),
                        scalar(data, "r"), scalar(data, "tau"), config_of(data))
    cand = reference_outputs(res)
    cand["case"] = data["case"]
    comp = compare_candidate(cand)
    assert comp.passed, format_comparison(comp)


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in CASES if c.granularity == "global"], ids=lambda c: c.name)
def test_reference_cast_to_float32_is_no_false_alarm(case):  # the diagnosis is global only
    cand = inject_float32(vectors(case.name))
    assert compare_candidate(cand, tier="float32").passed
    comp = compare_candidate(cand)
    if case.tier == "float32":
        assert comp.passed
    else:  # the float64 tier sees the rounding, and says it is not a bug
        assert not comp.passed
        assert comp.diagnosis.causes == ["float32_roundoff"]
        assert "not a bug" in format_comparison(comp)


# --------------------------------------------------------------------------
# every defect rejected and named


DEFECT_CASES = [
    (inject_sign_flip, "sign_flip", ["ce-tiny", "mse-medium-f32", "ce-hard-tau"]),
    (inject_dt_dr_sign, "dt_dr_sign", ["mse-tiny-lam", "ce-r-near-1", "ce-medium-f32"]),
    (inject_double_mask, "double_mask", ["ce-tiny", "mse-tiny-lam", "ce-medium-f32"]),
    (inject_printed_eq, "printed_eq_2_3", ["ce-tiny", "mse-r-near-0-f32"]),
    (inject_t_differentiable, "t_differentiable", ["ce-tiny", "ce-r-near-0", "mse-r-0999"]),
    (inject_transposed, "transposed", ["ce-tiny", "mse-medium-f32"]),
    (inject_stale_t, "stale_t", ["ce-tiny", "ce-medium-f32", "mse-r-0999"]),
    (inject_stale_t_tau, "stale_t_tau", ["mse-tiny-lam", "ce-r-near-1"]),
    (inject_silverman, "density", ["ce-tiny", "mse-medium-f32"]),
    (inject_numpy_std, "density", ["ce-smoothed-lam", "ce-r-near-1"]),
    (inject_no_reflection, "density", ["ce-r-near-0"]),
]


@pytest.mark.slow
@pytest.mark.parametrize("inject,cause,name",
                         [(f, c, n) for f, c, names in DEFECT_CASES for n in names],
                         ids=lambda v: getattr(v, "__name__", str(v)))
def test_each_defect_is_rejected_and_named(inject, cause, name):
    comp = compare_candidate(inject(vectors(name)))
    assert not comp.passed
    diag = comp.diagnosis
    assert diag.explained and diag.causes == [cause], format_comparison(comp)
    assert not diag.alternatives, format_comparison(comp)
    report = format_comparison(comp)
    assert f"diagnosis: {diag.title}" in report and len(diag.evidence) >= 2


def test_density_model_is_named_with_its_settings():
    comp = compare_candidate(inject_silverman(vectors("ce-tiny")))
    text_ = " ".join(comp.diagnosis.evidence)
    assert "bandwidth silverman, direct Gaussian sum, reflected at 0, at t" in text_


def test_direct_sum_on_an_fft_case_is_recognised():
    data = vectors("ce-medium-fft")  # reference: binned FFT, linear binning, m = 1024
    a = magnitudes(data)
    direct = gaussian_sum(a, scalar(data, "t"), np.std(a, ddof=1) * a.size ** -0.2, False)
    comp = compare_candidate(with_density(data, direct))
    assert comp.diagnosis.causes == ["density"]
    evidence = " ".join(comp.diagnosis.evidence)
    # far from 0 the reflected and plain sums agree: both are named
    assert "bandwidth scott, direct Gaussian sum" in evidence and "other density models (e.g." in evidence
    assert "ratio" not in evidence and " 1 other" not in evidence  # no count of equal fits, no rounded ratio


def test_stale_threshold_with_saturated_masks_is_ambiguous_about_tau():
    comp = compare_candidate(inject_stale_t(vectors("ce-hard-tau")))
    diag = comp.diagnosis
    assert diag.causes == ["stale_t"] and diag.alternatives == [["stale_t_tau"]]
    assert "no output key tells them apart" in " ".join(diag.evidence)


def test_dt_dr_sign_keeps_regulariser_evidence():
    comp = compare_candidate(inject_dt_dr_sign(vectors("mse-tiny-lam")))
    evidence = " ".join(comp.diagnosis.evidence)
    assert "dt_dr: candidate" in evidence and "= -1 × reference" in evidence
    assert "regulariser term -2.68" in evidence  # 2λ(r − 1) with λ = 2, r = 0.33


def test_published_pair_p1_and_p2_is_named():
    data = vectors("ce-tiny")
    cand = inject_double_mask(data)
    cand["dt_dr"] = -cand["dt_dr"]
    cand["grad_r"] = np.array(cand["dt_dr"] * cand["grad_t"] + reg_grad(data))
    comp = compare_candidate(cand)
    assert comp.diagnosis.causes == ["dt_dr_sign", "double_mask"], format_comparison(comp)


def test_float32_candidate_with_a_defect_is_matched_at_float32_tolerance():
    data = vectors("ce-tiny")
    cand = {k: (v.astype(np.float32) if k != "case" else v) for k, v in inject_double_mask(data).items()}
    comp = compare_candidate(cand)
    assert comp.diagnosis.causes == ["double_mask"]
    assert all(row.tier == "float32" for row in comp.rows)  # float32 values: the float32 tier
    assert "rtol 0.0001" in " ".join(comp.diagnosis.evidence)


def test_smoothed_t_derivative_model_matches_finite_differences():
    data = vectors("ce-smoothed-lam")
    a = magnitudes(data).astype(np.float64)
    t = scalar(data, "t")
    fixed_h, varying_h = smoothed_t_derivatives(a, t, "scott")
    step = 1e-4
    for i in (0, 7, 40):
        def t_at(d):
            b = a.copy()
            b[i] += d
            return smoothed_threshold(b, scalar(data, "r")).t
        fd = (t_at(-2 * step) - 8 * t_at(-step) + 8 * t_at(step) - t_at(2 * step)) / (12 * step)
        assert varying_h[i] == pytest.approx(fd, rel=FD_DERIVATIVE_RTOL, abs=FD_DERIVATIVE_ATOL)
        assert abs(fixed_h[i] - fd) > BANDWIDTH_TERM_VISIBLE * abs(fd)


def test_smoothed_t_differentiable_is_named():
    data = vectors("ce-smoothed-lam")
    cand = reference_candidate(data)
    flat = np.concatenate([data[f"W{l}"].ravel() for l in layers_of(data)])
    a = np.abs(flat)
    dt_dw = np.empty(a.size)
    for i in range(a.size):  # ∂t̃/∂|w_i| by a fourth-order central difference
        step = min(1e-4, a[i] / 4)  # |w_i| − 2·step stays >= 0
        vals = []
        for d in (-2 * step, -step, step, 2 * step):
            b = a.copy()
            b[i] += d
            vals.append(smoothed_threshold(b, scalar(data, "r")).t)
        dt_dw[i] = (vals[0] - 8 * vals[1] + 8 * vals[2] - vals[3]) / (12 * step)
    extra = scalar(data, "grad_t") * np.sign(flat) * dt_dw
    start = 0
    for l in layers_of(data):
        size = data[f"W{l}"].size
        cand[f"grad_W{l}"] = cand[f"grad_W{l}"] + extra[start:start + size].reshape(data[f"W{l}"].shape)
        start += size
    comp = compare_candidate(cand)
    assert comp.diagnosis.causes == ["t_differentiable"], format_comparison(comp)


@pytest.mark.slow
def test_unknown_defect_is_not_guessed():
    data = vectors("ce-tiny")
    cand = reference_candidate(data)
    cand["grad_W1"] = 1.37 * cand["grad_W1"]
    comp = compare_candidate(cand)
    assert not comp.passed and not comp.diagnosis.explained and comp.diagnosis.causes == []
    report = format_comparison(comp)
    assert "no known cause matches" in report and "1.37 × reference" in report
    assert "closest model" in report


def test_ambiguous_candidate_lists_alternatives_and_what_would_decide():
    data = vectors("ce-tiny")  # λ = 0: flipping dt/dr, ∂L/∂t or all of ∂L/∂r look alike on grad_r
    comp = compare_candidate({"case": data["case"], "grad_r": -data["grad_r"]})
    diag = comp.diagnosis
    assert diag.explained and diag.alternatives
    found = {tuple(diag.causes)} | {tuple(a) for a in diag.alternatives}
    assert {("sign_flip",), ("dt_dr_sign",), ("grad_t_sign",)} <= found
    assert "supply" in " ".join(diag.evidence) and "dt_dr" in " ".join(diag.evidence)


# --------------------------------------------------------------------------
# partial candidates and transposed shapes


def test_partial_candidate_checks_what_is_there_and_lists_the_rest():
    data = vectors("mse-tiny-lam")
    cand = {"case": data["case"], "loss": data["loss"], "grad_W2": data["grad_W2"], "grad_r": data["grad_r"]}
    comp = compare_candidate(cand)
    assert comp.passed and [r.key for r in comp.rows] == ["loss", "grad_W2", "grad_r"]
    assert "grad_W1" in comp.missing and "t" in comp.missing and len(comp.missing) == 12
    assert "not supplied (not checked): t, mask1" in format_comparison(comp)


def test_partial_candidate_with_a_defect_is_diagnosed():
    data = vectors("ce-tiny")
    full = inject_double_mask(data)
    comp = compare_candidate({k: full[k] for k in ("case", "grad_W1", "grad_W2", "grad_tau")})
    assert comp.diagnosis.causes == ["double_mask"]


def test_transposed_shape_is_a_mismatch_not_an_error():
    data = vectors("mse-tiny-lam")  # layers 3-4-2: no square weight
    cand = reference_candidate(data)
    cand["grad_W1"] = cand["grad_W1"].T.copy()
    comp = compare_candidate(cand)
    row = next(r for r in comp.rows if r.key == "grad_W1")
    assert not row.passed and "transpose" in row.note
    assert comp.diagnosis.causes == ["transposed"]


def test_inputs_in_candidate_are_ignored_and_unknown_keys_listed():
    data = vectors("ce-tiny")
    cand = {**reference_candidate(data), "W1": data["W1"], "x": data["x"], "grad_w1": data["grad_W1"]}
    comp = compare_candidate(cand)
    assert comp.passed and comp.ignored == ["W1", "x"] and comp.unknown == ["grad_w1"]


def test_json_report_is_serialisable():
    comp = compare_candidate(inject_sign_flip(vectors("ce-tiny")))
    d = json.loads(json.dumps(comparison_dict(comp)))
    assert d["passed"] is False and d["diagnosis"]["causes"] == ["sign_flip"]
    assert {r["quantity"] for r in d["rows"]} >= {"grad_W1", "grad_r"}


# --------------------------------------------------------------------------
# the command line


def save(path, arrays):
    np.savez(path, **arrays)
    return str(path)


def test_cli_three_command_workflow(tmp_path, capsys):
    vdir = tmp_path / "vectors"
    assert main(["vectors", "--out", str(vdir)]) == 0
    data = dict(np.load(vdir / "ce-tiny.npz"))
    good = save(tmp_path / "good.npz", naive_pass(data))
    capsys.readouterr()
    assert main(["compare", good, "--vectors", str(vdir)]) == 0
    out = capsys.readouterr().out
    assert "verdict: PASS" in out and "max rel err" in out
    assert main(["compare", good]) == 0  # reference generated in memory
    bad = save(tmp_path / "bad.npz", inject_printed_eq(data))
    capsys.readouterr()
    assert main(["compare", bad, "--vectors", str(vdir)]) == 1
    out = capsys.readouterr().out
    assert "verdict: FAIL" in out and "[printed_eq_2_3]" in out
    assert main(["compare", bad, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["diagnosis"]["causes"] == ["printed_eq_2_3"]


def cli_error(tmp_path, capsys, arrays, *extra):
    path = save(tmp_path / "cand.npz", arrays) if isinstance(arrays, dict) else str(arrays)
    capsys.readouterr()
    assert main(["compare", path, *extra]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("refprune compare: error:"), err
    assert "Traceback" not in captured.err and captured.out == ""
    return err


def test_cli_bad_candidates_get_one_line_errors(tmp_path, capsys):
    data = vectors("ce-tiny")
    ref = reference_candidate(data)
    err = cli_error(tmp_path, capsys, {**ref, "grad_W1": np.zeros((5, 3))})
    assert "grad_W1 has shape (5, 3); case ce-tiny expects (4, 3)" in err
    err = cli_error(tmp_path, capsys, {**ref, "grad_W2": np.zeros((3, 3), np.int64)})
    assert "grad_W2 has dtype int64" in err
    nan = ref["grad_b1"].copy()
    nan[1] = np.nan
    err = cli_error(tmp_path, capsys, {**ref, "grad_b1": nan})
    assert "grad_b1 contains 1 NaN/inf" in err
    err = cli_error(tmp_path, capsys, {**ref, "case": np.array("ce-huge")})
    assert "'ce-huge' does not exist" in err and "ce-tiny" in err
    err = cli_error(tmp_path, capsys, {k: v for k, v in ref.items() if k != "case"})
    assert "no 'case' key" in err
    err = cli_error(tmp_path, capsys, {"case": data["case"], "t": np.zeros(3)})
    assert "t must be a scalar" in err
    err = cli_error(tmp_path, capsys, {"case": data["case"]})
    assert "supplies none of its output keys" in err
    (tmp_path / "junk.npz").write_text("junk")
    err = cli_error(tmp_path, capsys, tmp_path / "junk.npz")
    assert "not a readable .npz" in err
    err = cli_error(tmp_path, capsys, tmp_path / "missing.npz")
    assert "missing.npz: no such file" in err
    np.savez(tmp_path / "obj.npz", case=data["case"], t=np.array([object()], dtype=object))
    err = cli_error(tmp_path, capsys, tmp_path / "obj.npz")
    assert "Python objects" in err
    write_vectors(tmp_path / "v", ["ce-tiny"])
    err = cli_error(tmp_path, capsys, {**ref, "case": np.array("mse-tiny-lam")},
                    "--vectors", str(tmp_path / "v"))
    assert "does not exist in" in err


def test_cli_several_problems_stay_on_one_line(tmp_path, capsys):
    ref = reference_candidate(vectors("ce-tiny"))
    bad = {**ref, "grad_W1": np.zeros((2, 2)), "grad_W2": np.full((3, 3), np.inf), "t": np.zeros(2),
           "mask1": np.zeros((4, 3), np.int32)}
    err = cli_error(tmp_path, capsys, bad)
    assert "and 1 more" in err


def test_cli_tier_override(tmp_path, capsys):
    path = save(tmp_path / "f32.npz", inject_float32(vectors("ce-tiny")))
    assert main(["compare", path]) == 1
    assert main(["compare", path, "--tier", "float32"]) == 0


# --------------------------------------------------------------------------
# float32-tier power on dt/dr


def dt_dr_changed(data, factor):
    cand = reference_candidate(data)
    cand["dt_dr"] = cand["dt_dr"] * factor
    cand["density"] = cand["density"] / factor
    cand["grad_r"] = np.array(cand["dt_dr"] * cand["grad_t"] + reg_grad(data))
    return {k: (v.astype(np.float32) if k != "case" else v) for k, v in cand.items()}


F32_DT_DR_CASES = [c.name for c in CASES if c.tier == "float32"]


@pytest.mark.parametrize("name", F32_DT_DR_CASES)
def test_ddof0_bandwidth_fails_on_every_float32_case(name):
    data = vectors(name)
    a = magnitudes(data)
    cfg = config_of(data)
    h0 = np.std(a) * a.size ** -0.2  # NumPy's default ddof = 0
    if text(data, "threshold_rule") == "smoothed" or cfg.density.method == "direct":
        f = gaussian_sum(a, scalar(data, "t"), h0, cfg.threshold == "smoothed" or cfg.density.reflect)
    else:  # the binned estimate with the ddof-0 bandwidth
        f = density_at(a, np.array([scalar(data, "t")]), replace(cfg.density, ddof=0))[0]
    cand = {k: (v.astype(np.float32) if k != "case" else v) for k, v in with_density(data, f).items()}
    comp = compare_candidate(cand)
    assert not {r.key: r for r in comp.rows}["dt_dr"].passed, format_comparison(comp)
    assert comp.diagnosis.causes == ["density"], format_comparison(comp)
    assert "ddof 0" in " ".join(comp.diagnosis.evidence)


@pytest.mark.parametrize("name", F32_DT_DR_CASES)
def test_a_1e_minus_5_change_of_dt_dr_fails_at_float32(name):
    comp = compare_candidate(dt_dr_changed(vectors(name), 1 + 1e-5))
    rows = {r.key: r for r in comp.rows}
    assert not rows["dt_dr"].passed and rows["dt_dr"].tier == "float32"


# --------------------------------------------------------------------------
# mixed precision and an honest closest model


@pytest.mark.slow
def test_mixed_precision_candidate_passes_each_quantity_at_its_own_tier():
    data = vectors("ce-tiny")  # a float64-tier case
    cand = reference_candidate(data)
    for key in ("t", "dt_dr", "density", "grad_tau", "grad_r"):  # as the published code writes them
        cand[key] = cand[key].astype(np.float32)
    comp = compare_candidate(cand)
    report = format_comparison(comp)
    assert comp.passed, report
    tiers = {r.key: r.tier for r in comp.rows}
    assert tiers["grad_tau"] == "float32" and tiers["grad_W1"] == "float64"
    assert "mixed precision: each quantity is judged at the tier of its own dtype" in report
    cand["grad_W1"] = cand["grad_W1"] * (1 + 1e-8)  # a float64 quantity keeps the float64 tier
    assert not compare_candidate(cand).passed


@pytest.mark.slow
def test_closest_model_is_named_only_when_it_touches_the_mismatch():
    data = vectors("ce-tiny")
    cand = reference_candidate(data)
    cand["grad_tau"] = 1.37 * cand["grad_tau"]  # a defect no model has, on ∂L/∂τ only
    report = format_comparison(compare_candidate(cand))
    assert "closest model: none — no known model touches the mismatching quantities (grad_tau)" in report
    assert "sign flip of ∂L/∂t" not in report
