"""The method's plain math (METHOD §1–§4), one equation per line. Imports only NumPy, SciPy and itself.

- :mod:`~refprune.core.validation` — input checks that raise ValueError naming the argument
- :mod:`~refprune.core.layers` — Linear and ReLU forward/backward as pure functions
- :mod:`~refprune.core.mlp` — the MLP: PyTorch-default init, forward, backward
- :mod:`~refprune.core.losses` — cross-entropy, MSE and their gradients; R², accuracy (eqs.
  (2.26)–(2.28))
- :mod:`~refprune.core.masks` — soft mask, its slope and derivatives, hard mask, sparsity (eqs.
  (2.1), (2.2), (2.20)–(2.22))
- :mod:`~refprune.core.threshold` — the empirical threshold t(r), the midpoint r-quantile of |w|
  (eq. (2.12))
- :mod:`~refprune.core.groups` — Grouping: which layers share r, τ and t (global or layer-wise LRP)
- :mod:`~refprune.core.gradients` — ∂L/∂w, ∂L/∂τ, ∂L/∂t, dt/dr, ∂L/∂r and the regulariser (eqs.
  (2.3), (2.10), (2.11), (2.16), (2.23))
- :mod:`~refprune.core.optim` — Adam with PyTorch's semantics, and the τ and r clamps (§2.5)

Read beside docs/derivations.md; every public function has a runnable example.
"""

__all__ = ['validation', 'layers', 'mlp', 'losses', 'masks', 'threshold', 'groups', 'gradients', 'optim']
