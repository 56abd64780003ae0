"""The density f of the weight magnitudes and the one route from it to dt/dr = 1/f (thesis eq. (2.16)):
the direct Gaussian KDE, the binned FFT KDE (Theorem 2.1), the published code's density (METHOD §6 P5)
and the smoothed quantile t̃(r) = F̂⁻¹(r). Builds on :mod:`refprune.core`.
"""

__all__ = ['config', 'kde', 'binned', 'published', 'quantile']
