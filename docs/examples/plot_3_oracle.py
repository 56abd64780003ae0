"""
The oracle checks a gradient, and catches a planted bug
=======================================================

:func:`refprune.oracle.gradcheck.check_gradients` compares analytic gradients with float64
central differences of the loss (fourth order, extrapolated once; the step chosen so that no
mask logit moves by more than 0.02), row by row, with the relative error

.. math::

   \\text{rel} = \\frac{|\\text{analytic} - \\text{numeric}|}{\\max(|\\text{analytic}|,
   |\\text{numeric}|, \\text{floor})}, \\qquad \\text{pass} \\iff \\max \\text{rel} \\le 10^{-6}.

First the gradients of one LRP pass as refprune computes them, under the smoothed threshold so
that :math:`\\partial L_T/\\partial r` is checked end to end (R11). Then the same pass with the
weight gradient as thesis eq. (2.3) prints it, :math:`2w/\\tau` where the derivation gives
:math:`2w^2/\\tau` (erratum T2):

.. math::

   \\frac{\\partial L}{\\partial w} = g\\left(m + \\frac{2w^2}{\\tau}\\, s\\right)
   \\quad\\text{(R5)} \\qquad\\text{against}\\qquad
   g\\left(m + \\frac{2w}{\\tau}\\, s\\right) \\quad\\text{(as printed)}.
"""

import matplotlib.pyplot as plt
import numpy as np

from refprune.oracle.case import Case
from refprune.oracle.gradcheck import FD_RTOL, analytic_gradients, check_gradients, prepare

case = Case(threshold="smoothed", lam=10.0, tau0=0.5)
problem, result = prepare(case)
grads = analytic_gradients(result)

planted = dict(grads)
for l, (g, w, m, s) in enumerate(zip(result.grad_masked, problem.weights, result.masks, result.slopes), 1):
    planted[f"W{l}"] = g * (m + (2 * w / problem.tau) * s)  # thesis eq. (2.3) as printed

rows = {}
for label, candidate in (("refprune", grads), ("eq. (2.3) as printed", planted)):
    rows[label] = check_gradients(problem, candidate, result.threshold.t, result.dt_dr, max_coords=20)
    print(f"{label}:")
    for row in rows[label]:
        print(f"  {row.name:6s} max rel err {row.max_rel_err:9.2e}  {row.status}")

# %%
# Only the weight rows fail with the printed formula: the biases, τ, t, dt/dr and r do not
# depend on it. The printed form is off by a relative error of order one, where the correct
# gradients agree with the finite differences to about 1e-8.

names = [row.name for row in rows["refprune"]]
x = np.arange(len(names))
fig, ax = plt.subplots(figsize=(9, 4))
for offset, (label, found) in zip((-0.2, 0.2), rows.items()):
    errors = [max(row.max_rel_err, 1e-17) for row in found]
    ax.bar(x + offset, errors, width=0.4, label=label)
ax.axhline(FD_RTOL["float64"], color="black", linestyle="--", linewidth=1, label="pass: rel ≤ 1e-6")
ax.set_yscale("log")
ax.set_xticks(x, names)
ax.set(ylabel="max relative error against finite differences", title=f"gradcheck, {case.layers}, smoothed t, λ = 10")
ax.legend(fontsize=8)
fig.tight_layout()
