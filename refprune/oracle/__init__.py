"""The finite-difference oracle: float64 central differences of the loss against every analytic
gradient of an LRP pass, its cases, the placement of weights near t that makes small τ checkable,
and the KDE-free quantile cross-check of dt/dr.
"""

__all__ = ['case', 'evaluator', 'gradcheck', 'placement', 'quantile_check']
