"""refprune: NumPy reference implementation of Learned Ratio Pruning (LRP)."""

__version__ = "0.1.0"
