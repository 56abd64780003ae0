"""The method's plain math (METHOD §1–§4), one equation per line: layers and the MLP, losses,
soft and hard masks, the empirical threshold t(r), the gradients, Adam and the clamps.

Imports only NumPy, SciPy and itself. Read beside docs/derivations.md.
"""

__all__ = ['validation', 'layers', 'mlp', 'losses', 'masks', 'threshold', 'gradients', 'optim']
