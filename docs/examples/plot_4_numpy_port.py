"""
A NumPy port, checked with ``refprune compare``
===============================================

Another implementation of LRP (here forty lines of plain NumPy, as one would port the method
to PyTorch, JAX or C++) reads a golden-vector case's inputs, computes one LRP pass and writes
its outputs to a *candidate* file; ``refprune compare`` checks them quantity by quantity
against the reference and, when something differs, names the known mistake that explains it.
The pass, with :math:`g = \\partial L/\\partial \\hat w` from the ordinary backward pass:

.. math::

   t = \\tfrac12 (a_k + a_{k+1}), \\quad m = \\sigma\\big((w^2 - t^2)/\\tau\\big), \\quad
   \\frac{\\partial L}{\\partial w} = g\\Big(m + \\frac{2w^2}{\\tau} s\\Big), \\quad
   \\frac{\\partial L}{\\partial t} = -\\frac{2t}{\\tau}\\sum g\\, w\\, s, \\quad
   \\frac{\\partial L_T}{\\partial r} = \\frac{1}{\\hat f_R(t)} \\frac{\\partial L}{\\partial t}
   + 2\\lambda (r - 1).
"""

import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np

from refprune.cli.main import main
from refprune.vectors.compare import compare_candidate
from refprune.vectors.files import write_vectors


def numpy_port(case: dict, double_mask: bool = False) -> dict:
    """One LRP pass on a case's inputs (empirical threshold, direct reflected KDE at t)."""
    L = len(case["layers"]) - 1
    W = [case[f"W{l}"] for l in range(1, L + 1)]
    b = [case[f"b{l}"] for l in range(1, L + 1)]
    r, tau, lam = float(case["r"]), float(case["tau"]), float(case["lam"])
    a = np.sort(np.concatenate([np.abs(w).ravel() for w in W]))
    n, k = a.size, int(np.floor(r * a.size))
    t = (a[k - 1] + a[k]) / 2 if k > 0 else a[0] / 2
    masks = [1 / (1 + np.exp(-(w * w - t * t) / tau)) for w in W]
    slopes = [m * (1 - m) for m in masks]
    hs = [case["x"]]
    for l in range(L):  # forward with masked weights, ReLU between layers
        z = hs[-1] @ (masks[l] * W[l]) + b[l]
        hs.append(np.maximum(z, 0) if l < L - 1 else z)
    y = case["y"].astype(int)
    logits = hs[-1] - hs[-1].max(axis=1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    loss = -logp[np.arange(y.size), y].mean() + lam * (1 - r) ** 2
    d = np.exp(logp)
    d[np.arange(y.size), y] -= 1
    d /= y.size
    g, gb = [None] * L, [None] * L
    for l in reversed(range(L)):  # backward: g = dL/dŵ
        g[l], gb[l] = hs[l].T @ d, d.sum(axis=0)
        d = (d @ (masks[l] * W[l]).T) * (hs[l] > 0)
    if double_mask:  # autograd through a constant mask leaves m·g (the published code's P1)
        g = [m * gl for m, gl in zip(masks, g)]
    h = a.std(ddof=1) * n ** -0.2
    f = (np.exp(-0.5 * ((t - a) / h) ** 2) + np.exp(-0.5 * ((t + a) / h) ** 2)).sum() / (n * h * np.sqrt(2 * np.pi))
    grad_t = -2 * t / tau * sum(np.sum(gl * w * s) for gl, w, s in zip(g, W, slopes))
    out = {"case": case["case"], "loss": loss, "t": t, "density": f, "dt_dr": 1 / f, "grad_t": grad_t,
           "grad_r": grad_t / f + 2 * lam * (r - 1),
           "grad_tau": sum(np.sum(gl * w * s * (t * t - w * w)) for gl, w, s in zip(g, W, slopes)) / tau ** 2}
    for l in range(L):
        out.update({f"mask{l + 1}": masks[l], f"grad_W{l + 1}": g[l] * (masks[l] + 2 * W[l] ** 2 / tau * slopes[l]),
                    f"grad_b{l + 1}": gb[l]})
    return out


# %%
# ``refprune vectors`` writes the cases (here its function, for one case); the port reads one, writes its candidate, and
# ``refprune compare`` judges it (exit status 0: every supplied quantity matches).

folder = tempfile.mkdtemp()  # a scratch folder: the commands below write vectors/ and two candidates
os.chdir(folder)
write_vectors("vectors", ["ce-r-near-1"])  # as `refprune vectors --out vectors --cases ce-r-near-1`
case = dict(np.load("vectors/ce-r-near-1.npz"))
assert str(case["threshold_rule"]) == "empirical" and str(case["kde_method"]) == "direct"
np.savez("port.npz", **numpy_port(case))
status = main(["compare", "port.npz", "--vectors", "vectors"])
print("exit status", status)

# %%
# The same port with the weight gradient masked twice, the first deviation of the published
# code (METHOD §6 P1): ``compare`` fails the quantities it touches and names the cause.

os.chdir(folder)
np.savez("port-p1.npz", **numpy_port(case, double_mask=True))
status = main(["compare", "port-p1.npz", "--vectors", "vectors"])
print("exit status", status)

# %%
# Every quantity's largest relative error (against its scale) for the two candidates:

os.chdir(folder)
fig, ax = plt.subplots(figsize=(10, 4))
for offset, name in zip((-0.2, 0.2), ("port.npz", "port-p1.npz")):
    comparison = compare_candidate(name, "vectors", diagnose=False)
    keys = [row.key for row in comparison.rows]
    x = np.arange(len(keys))
    ax.bar(x + offset, [max(row.max_rel_err, 1e-18) for row in comparison.rows], width=0.4, label=name)
ax.axhline(comparison.rtol, color="black", linestyle="--", linewidth=1, label=f"pass: rel ≤ {comparison.rtol:g}")
ax.set_yscale("log")
ax.set_xticks(x, keys, rotation=60, fontsize=8)
ax.set(ylabel="max relative error", title="refprune compare, case ce-r-near-1 (float64 tier)")
ax.legend(fontsize=8)
fig.tight_layout()
