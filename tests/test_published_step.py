"""One step of the published code, reproduced from METHOD §6 P1–P5 alone, is diagnosed as such.

The candidate below is written from the text of METHOD §6 and NumPy only (plus the
plain backward pass of tests/test_compare.py and the literal P5 density of
tests/test_published_density.py), not from refprune's defect models: the first
training step (so P4's stale masks do not arise) and the first run of the
gradient hook (so P3's later runs do not either).
"""

import numpy as np
import pytest
from test_compare import layers_of, naive_forward_backward, vectors
from test_published_density import literal_p5

from refprune.vectors.compare import compare_candidate, format_comparison


def published_first_step(data):
    """The published code's outputs on a case's inputs: P1 double masking, P2 sign, P5 density."""
    W = [np.asarray(data[f"W{l}"], np.float64) for l in layers_of(data)]
    b = [np.asarray(data[f"b{l}"], np.float64) for l in layers_of(data)]
    r, tau, lam = float(data["r"]), float(data["tau"]), float(data["lam"])
    a = np.sort(np.concatenate([np.abs(w).ravel() for w in W]))
    k = int(np.floor(r * a.size))
    a_k = a[k - 1] if k > 0 else 0.0
    t = 0.5 * (a_k + a[k])  # METHOD §2: midpoint of the largest pruned and smallest kept
    masks = [1 / (1 + np.exp(-(w * w - t * t) / tau)) for w in W]
    loss, g, gb = naive_forward_backward(data, [m * w for m, w in zip(masks, W)], b,
                                         np.asarray(data["x"], np.float64), np.float64)
    G = [m * gl for m, gl in zip(masks, g)]  # P1: autograd leaves m·g on the weight
    s = [m * (1 - m) for m in masks]
    grad_t = sum(np.sum(Gl * w * sl) for Gl, w, sl in zip(G, W, s)) * (-2 * t / tau)
    f = literal_p5(a, np.array([a_k, a[k]]))  # P5, the real code's density
    dt_dr = -0.5 * (1 / f[0] + 1 / f[1])  # P2: the sign of eq. (2.16) flipped
    out = {"loss": loss + lam * (1 - r) ** 2, "t": t, "dt_dr": dt_dr, "grad_t": grad_t,
           "grad_tau": sum(np.sum(Gl * w * sl * (t * t - w * w)) for Gl, w, sl in zip(G, W, s)) / tau ** 2,
           "grad_r": dt_dr * grad_t + 2 * lam * (r - 1)}
    for l, (m, Gl, w, sl, bl) in enumerate(zip(masks, G, W, s, gb), start=1):
        out.update({f"mask{l}": m, f"grad_masked_W{l}": Gl, f"grad_W{l}": Gl * (m + 2 * w * w / tau * s[l - 1]),
                    f"grad_b{l}": bl})
    out = {key: np.asarray(v, np.float64) for key, v in out.items()}
    out["case"] = data["case"]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name, causes", [
    ("ce-tiny", ["dt_dr_sign", "double_mask", "density"]),  # reference density: direct, reflected
    ("mse-tiny-lam", ["dt_dr_sign", "double_mask", "density"]),
    ("ce-published-kde", ["dt_dr_sign", "double_mask"]),  # reference density is P5 already
])
def test_published_step_is_named_p1_p2_and_p5(name, causes):
    comp = compare_candidate(published_first_step(vectors(name)))
    report = format_comparison(comp)
    assert not comp.passed and comp.diagnosis.causes == causes, report
    if "density" in causes:
        assert "published P5" in report and "averaged over a_k, a_(k+1)" in report
