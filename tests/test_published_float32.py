"""A float32 run of the published algorithm is judged right: P1 + P2 named, nothing else.

The candidate is a float32 NumPy transcription of one published step (METHOD §6: P1 double
masking, P2 the sign of dt/dr, P5 the density with its own Riemann renormalisation), written
here from METHOD §6 and the published code's density lines, not from refprune. The
reference is set to P5 (``kde_method`` "published", no ``kde_ddof``: the method's own, 0;
dt/dr averaged over a_k, a_{k+1}; the empirical threshold), so the only differences
``compare`` may name are P1 and P2: the density and the float32 arithmetic must pass. It
runs on every global built-in case, the candidate carrying the case's inputs (and previous
step, so the stale-state models are searched too), and on a user case made with
``refprune vectors --from`` from a PyTorch-layout inputs file.
"""

import numpy as np
import pytest
from scipy.signal import fftconvolve
from test_compare import naive_forward_backward

from refprune.cli.main import main
from refprune.vectors.cases import CASES
from refprune.vectors.compare import compare_candidate, format_comparison
from refprune.vectors.schema import n_layers_of, output_keys, previous_keys
from refprune.vectors.testing import case_inputs

P5_INPUTS = {"threshold_rule": np.array("empirical"), "kde_method": np.array("published"),
             "kde_rule": np.array("scott"), "kde_grid_size": np.array(1024),
             "kde_binning": np.array("nearest"), "kde_reflect": np.array(False),
             "kde_renormalize": np.array(True), "kde_point": np.array("order_stats")}
F32 = np.float32


def published_density_f32(a, points):
    """The published density lines on the float32 magnitudes.

    σ is np.std's (ddof 0) of the float32 array. h, the grid, the histogram and the kernel
    are float64, as NumPy 1.x makes them from these lines (a float32 scalar times a Python
    float is float64 there). Under NumPy 2's promotion (NEP 50) the same lines keep the grid
    float32, and f then differs from P5's by 6e-7 to 2e-4 on these cases, beyond the float32
    tolerance of dt/dr: such a run is not covered here.
    """
    n = a.size
    h = float(np.std(a)) * n ** (-1 / 5)
    grid = np.linspace(float(a.min()) - 3 * h, float(a.max()) + 3 * h, 1024)
    dx = grid[1] - grid[0]
    hist = np.zeros(1024)
    for x in a:
        hist[int((x - grid[0]) / dx + 0.5)] += 1
    hist /= n * dx
    kx = np.arange(-3 * h, 3 * h + dx, dx)
    density = fftconvolve(hist, np.exp(-0.5 * (kx / h) ** 2) / (h * np.sqrt(2 * np.pi)), mode="same")
    density /= np.sum(density) * dx  # the published renormalisation: the Riemann sum
    return np.interp(points, grid, density)


def published_step_f32(data):
    """One published step in float32 (outputs in the (in, out) layout, every value float32)."""
    L = n_layers_of(data["layers"])
    W = [np.asarray(data[f"W{l}"], F32) for l in range(1, L + 1)]
    b = [np.asarray(data[f"b{l}"], F32) for l in range(1, L + 1)]
    r, tau, lam = F32(data["r"]), F32(data["tau"]), F32(data["lam"])
    a = np.sort(np.concatenate([np.abs(w).ravel() for w in W]))
    k = int(np.floor(float(r) * a.size))
    a_k = a[k - 1] if k > 0 else F32(0)
    t = (a_k + a[k]) / F32(2)
    masks = []
    for w in W:
        z = (w * w - t * t) / tau
        e = np.exp(-np.abs(z))
        masks.append(np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(F32))
    loss, g, gb = naive_forward_backward(data, [m * w for m, w in zip(masks, W)], b,
                                         np.asarray(data["x"], F32), F32)
    G = [m * gl for m, gl in zip(masks, g)]  # P1: autograd leaves m·g on the weight
    s = [m * (1 - m) for m in masks]
    grad_t = sum(np.sum(Gl * w * sl) for Gl, w, sl in zip(G, W, s)) * (-2 * t / tau)
    f = published_density_f32(a, np.array([a_k, a[k]])).astype(F32)
    dt_dr = -(1 / f[0] + 1 / f[1]) / F32(2)  # P2: the sign of eq. (2.16) flipped
    out = {"loss": loss + lam * (1 - r) ** 2, "t": t, "dt_dr": dt_dr, "density": f.mean(),
           "grad_t": grad_t, "grad_r": dt_dr * grad_t + 2 * lam * (r - 1),
           "grad_tau": sum(np.sum(Gl * w * sl * (t * t - w * w)) for Gl, w, sl in zip(G, W, s)) / tau ** 2}
    for l in range(1, L + 1):
        m, w = masks[l - 1], W[l - 1]
        out.update({f"mask{l}": m, f"grad_masked_W{l}": G[l - 1], f"grad_b{l}": gb[l - 1],
                    f"grad_W{l}": G[l - 1] * (m + 2 * w * w / tau * s[l - 1])})
    return {key: np.asarray(v, F32) for key, v in out.items()}


def assert_named_p1_p2(comp):
    report = format_comparison(comp)
    assert not comp.passed and comp.diagnosis.causes == ["dt_dr_sign", "double_mask"], report
    assert not comp.diagnosis.alternatives, report
    assert comp.float32_values and all(row.tier == "float32" for row in comp.rows), report


# Two cases in the fast suite (the smallest, and the one whose own reference is P5), all in the full one.
FAST = ("ce-tiny", "ce-published-kde")


@pytest.mark.parametrize("name", [name if name in FAST else pytest.param(name, marks=pytest.mark.slow)
                                  for name in (c.name for c in CASES if c.granularity == "global")])
def test_float32_published_step_is_p1_and_p2_alone(name):
    inputs = {**case_inputs(name), **P5_INPUTS}
    del inputs["kde_ddof"]  # the method's own: P5's np.std, ddof 0
    cand = {**inputs, **published_step_f32(inputs)}
    comp = compare_candidate(cand)
    assert comp.source == "computed from the candidate's own inputs"
    assert_named_p1_p2(comp)


def test_float32_published_step_on_a_vectors_from_case(tmp_path, capsys):
    """A 6-5-4-3 net in PyTorch's layout, through ``vectors --from``, then ``compare``."""
    rng = np.random.default_rng(7)
    layers = (6, 5, 4, 3)
    inputs = {"case": np.array("seed-like"), "layout": np.array("out_in"), "layers": np.array(layers),
              "loss_kind": np.array("ce"), "x": rng.standard_normal((8, 6)).astype(F32),
              "y": rng.integers(0, 3, size=8), "r": np.array(F32(0.53)), "tau": np.array(F32(0.02)),
              "lam": np.array(F32(1.0)), **P5_INPUTS}
    for l in (1, 2, 3):
        bound = 1 / np.sqrt(layers[l - 1])
        inputs[f"W{l}"] = rng.uniform(-bound, bound, (layers[l], layers[l - 1])).astype(F32)  # (out, in)
        inputs[f"b{l}"] = rng.uniform(-bound, bound, layers[l]).astype(F32)
    np.savez(tmp_path / "inputs.npz", **inputs)
    assert main(["vectors", "--from", str(tmp_path / "inputs.npz"), "--out", str(tmp_path / "vec")]) == 0
    ref = dict(np.load(tmp_path / "vec" / "seed-like.npz"))
    assert int(ref["kde_ddof"]) == 0 and str(ref["kde_method"]) == "published"
    out = published_step_f32(ref)
    cand = {key: (v.T if v.ndim == 2 else v) for key, v in out.items()}  # back to (out, in)
    cand.update({"case": np.array("seed-like"), "layout": np.array("out_in")})
    capsys.readouterr()
    assert_named_p1_p2(compare_candidate(cand, tmp_path / "vec"))
    assert_named_p1_p2(compare_candidate({**inputs, **cand}))  # carrying its own inputs
    assert_named_p1_p2(compare_candidate({**inputs, **cand}, tmp_path / "vec"))  # both: checked equal


def test_the_transcription_uses_every_output_key():
    data = {**case_inputs("ce-tiny"), **P5_INPUTS}
    assert set(published_step_f32(data)) == set(output_keys(2))
    assert set(previous_keys(2)) <= set(data)
