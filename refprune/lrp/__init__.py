"""One LRP pass (Algorithm 1, lines 6–14): threshold, masks, forward, loss, backward, density,
gradients. Builds on :mod:`refprune.core` and :mod:`refprune.density`; what the oracle checks
and the golden vectors hold.
"""

__all__ = ['reference']
