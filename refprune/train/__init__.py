"""Training with LRP (Algorithm 1, §4.2): the loop and its configuration, the training steps,
checkpoints, run directories, batch-order protocols, the magnitude-pruning baselines and export.
"""

__all__ = ['loop', 'steps', 'checkpoint', 'rundir', 'protocol', 'progress', 'baselines', 'export', 'threads', 'parallel']
