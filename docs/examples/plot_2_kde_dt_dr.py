"""
t(r) and dt/dr from the KDE on real-looking weights
===================================================

The threshold :math:`t(r)` is the midpoint :math:`r`-quantile of the magnitudes
:math:`a_i = |w_i|` (R1), and the method takes :math:`dt/dr = 1/f(t)` (R9, thesis eq. (2.16)),
:math:`f` the density of the magnitudes, estimated by a Gaussian kernel density estimate
reflected at 0 (R2):

.. math::

   \\hat f_R(x) = \\frac{1}{n}\\sum_i \\big[K_h(x - a_i) + K_h(x + a_i)\\big],
   \\qquad h = \\hat\\sigma_a\\, n^{-1/5}.

The weights here are those of a 784-256-256-10 network at PyTorch's default initialisation
(what LRP starts from): layer :math:`l` is uniform on :math:`\\pm 1/\\sqrt{\\text{fan-in}_l}`, so the
magnitudes are a mixture of uniforms whose density is a step function with a closed form.
Against it: the KDE's :math:`1/\\hat f_R(t)`, and the kernel-free difference quotient
:math:`\\hat q_j = n(a_{k+j} - a_{k-j})/(2j)` of the oracle (R13).
"""

import matplotlib.pyplot as plt
import numpy as np

from refprune.core.mlp import init_mlp
from refprune.core.threshold import all_magnitudes, empirical_threshold
from refprune.density.config import DensityConfig, inverse_density_at
from refprune.oracle.quantile_check import quantile_difference_quotient

layers = (784, 256, 256, 10)
weights, _ = init_mlp(layers, np.random.default_rng(0))
a = all_magnitudes(weights)
n = a.size

# closed form: |U(-c, c)| is U(0, c), so f(x) = sum_l (n_l / n) / c_l over the layers with c_l > x
sizes = np.array([w.size for w in weights]) / n
bounds = np.array([1 / np.sqrt(fan_in) for fan_in in layers[:-1]])


def exact_density(x):
    return ((sizes / bounds)[None, :] * (np.asarray(x)[:, None] < bounds[None, :])).sum(axis=1)


r = np.linspace(0.02, 0.98, 97)
t = np.array([empirical_threshold(a, ri).t for ri in r])
dt_dr_kde, f_kde = inverse_density_at(a, t, DensityConfig())  # direct sum, reflected at 0
q_hat = np.array([quantile_difference_quotient(a, ri, j=500) for ri in r])

fig, (ax_t, ax_d) = plt.subplots(1, 2, figsize=(10, 4))
ax_t.plot(r, t)
for c in bounds:
    ax_t.axhline(c, color="grey", linewidth=0.5)
ax_t.set(xlabel="r", ylabel="t(r)", title=f"the threshold, n = {n:,} weights")
ax_d.plot(r, 1 / exact_density(t), color="black", linewidth=2, label="1/f(t), closed form")
ax_d.plot(r, dt_dr_kde, label="1/f̂_R(t), reflected KDE (refprune)")
ax_d.plot(r, q_hat, linestyle="none", marker=".", label="q̂_j, j = 500 (no kernel)")
ax_d.set(xlabel="r", ylabel="dt/dr", title="dt/dr = 1/f(t)")
ax_d.legend(fontsize=8)
fig.tight_layout()

# %%
# Where the density is flat the KDE is exact to its sampling noise; at each step of the
# density (a layer's bound :math:`c_l`) the kernel smooths over about :math:`h` on either side,
# the region where :math:`1/\hat f_R` and the closed form part:

h_scott = a.std(ddof=1) * n ** -0.2
error = np.abs(dt_dr_kde * exact_density(t) - 1)
near_step = np.min(np.abs(t[:, None] - bounds[None, :]), axis=1) < 3 * h_scott
print(f"bandwidth h = {h_scott:.2e}; layer bounds c_l = {', '.join(f'{c:.4f}' for c in np.unique(bounds))}")
print(f"relative error of 1/f̂_R(t): median {np.median(error[~near_step]):.1e} more than 3h from a step, "
      f"largest {error[near_step].max():.2f} within 3h of one")
