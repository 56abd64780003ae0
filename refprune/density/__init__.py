"""The density f of the weight magnitudes and the route from it to dt/dr = 1/f(t) (thesis eq. (2.16)).

- :mod:`~refprune.density.kde` — the direct Gaussian KDE, its CDF and the bandwidth rules (eqs.
  (2.17)–(2.19))
- :mod:`~refprune.density.binned` — the binned FFT KDE of Theorem 2.1 and its O(m²) reference
- :mod:`~refprune.density.published` — the published code's density estimate (METHOD §6 P5)
- :mod:`~refprune.density.config` — DensityConfig, the one way to name an estimate, and the one
  route from it to dt/dr
- :mod:`~refprune.density.quantile` — the smoothed threshold t̃(r) = F̂⁻¹(r), and the threshold of a
  list of weights

Builds on :mod:`refprune.core`; read beside docs/derivations.md §5 and §7.
"""

__all__ = ['config', 'kde', 'binned', 'published', 'quantile']
