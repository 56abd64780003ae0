"""
The soft mask and its slope as τ shrinks
=========================================

placeholder
"""

import matplotlib.pyplot as plt
import numpy as np

from refprune.core.masks import soft_mask_and_slope

w = np.linspace(-1, 1, 401)
fig, ax = plt.subplots()
for tau in (1.0, 0.1):
    m, s, z = soft_mask_and_slope(w, 0.5, tau)
    ax.plot(w, m)
plt.show()
