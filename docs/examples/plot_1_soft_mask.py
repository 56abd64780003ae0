"""
The soft mask and its slope as τ shrinks
========================================

The soft mask :math:`m(w) = \\sigma\\big((w^2 - t^2)/\\tau\\big)` (thesis eq. (2.2)) keeps a weight
in proportion to how far its magnitude is above the threshold :math:`t`, on a scale set by the
temperature :math:`\\tau` (units of :math:`w^2`). As :math:`\\tau \\to 0` it tends to the hard
mask :math:`\\mathbb{1}[|w| \\ge t]`, and the factor the weight gradient carries,

.. math::

   \\frac{d\\hat w}{dw} = m + \\frac{2w^2}{\\tau}\\, s, \\qquad s = m(1 - m),

(results row R5) grows like :math:`t^2/(2\\tau)` at :math:`|w| = t`: weights in transition get
amplified gradients. :func:`refprune.core.masks.soft_mask_and_slope` computes :math:`m`,
:math:`s` and the logit :math:`z` without overflow for any :math:`\\tau`.
"""

import matplotlib.pyplot as plt
import numpy as np

from refprune.core.masks import hard_mask, soft_mask_and_slope

t = 0.5
w = np.linspace(-1.0, 1.0, 2001)
taus = (0.2, 0.05, 0.01, 0.002)

fig, (ax_m, ax_g) = plt.subplots(1, 2, figsize=(10, 4))
ax_m.plot(w, hard_mask(w, t), color="black", linewidth=1, linestyle="--", label="hard mask")
for tau in taus:
    m, s, z = soft_mask_and_slope(w, t, tau)
    ax_m.plot(w, m, label=f"τ = {tau:g}")
    ax_g.semilogy(w, m + (2 * w * w / tau) * s, label=f"τ = {tau:g}")
ax_m.set(xlabel="w", ylabel="m(w)", title=f"soft mask, t = {t}")
ax_g.set(xlabel="w", ylabel="dŵ/dw = m + (2w²/τ)·s", title="the weight gradient's factor (R5)", ylim=(1e-4, 1e3))
for ax in (ax_m, ax_g):
    ax.axvline(-t, color="grey", linewidth=0.5)
    ax.axvline(t, color="grey", linewidth=0.5)
    ax.legend(fontsize=8)
fig.tight_layout()

# %%
# At :math:`|w| = t` the mask is exactly 1/2 and its slope :math:`s` exactly 1/4, whatever
# :math:`\tau`; the gradient factor there is :math:`1/2 + t^2/(2\tau)`:

for tau in taus:
    m, s, z = soft_mask_and_slope(np.array([t]), t, tau)
    print(f"τ = {tau:<6g} m = {m[0]:.3f}  s = {s[0]:.3f}  dŵ/dw = {m[0] + 2 * t * t / tau * s[0]:8.2f}"
          f"  (1/2 + t²/(2τ) = {0.5 + t * t / (2 * tau):8.2f})")
