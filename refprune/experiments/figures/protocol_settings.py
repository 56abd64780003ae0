"""The training protocols the MNIST figures are run under, and the job names of each (docs/protocol.md).

- ``stated``: batch 32, one process, 1,500 steps per epoch (the protocol METHOD §5 states);
- ``b64``: batch 64, one process (750 steps per epoch);
- ``ddp2``: two data-parallel processes of batch 32 each (750 steps per epoch; validation
  and test metrics are rank 0's half, as the published code logs them);
- ``ddp2es``: ``ddp2`` with the published example's early stopping on r.

:data:`ADOPTED` is the hypothesis the protocol table supports best (the "thesis
protocol"); the five-seed Table 4.6 and r0 sweeps run under it, beside the stated
protocol's runs. A run of a protocol other than ``stated`` is named
``proto_<protocol>_<the stated run's name>``.
"""

from __future__ import annotations

STATED = "stated"
HYPOTHESES = {
    "b64": {"batch_size": 64},
    "ddp2": {"protocol": "ddp2", "batch_size": 32},
    "ddp2es": {"protocol": "ddp2", "batch_size": 32, "early_stop_r": 10},
}
# Chosen from figures/protocol_hypotheses.md (refprune.experiments.figures.protocols): see the
# index's reading of that table for the numbers it rests on.
ADOPTED = "ddp2"
SEEDS = (0, 1, 2, 3, 4)  # the thesis runs five seeds per setting
# The reproduction's tolerances for Table 4.6: the published variant's mean over the seeds is to be within
# these of the thesis's value (which is one run per row; a reproduction criterion, not a test).
TEST_ACC_TOLERANCE_PP = 1.0
SPARSITY_TOLERANCE_PP = 3.0


def protocol_config(protocol: str) -> dict:
    """The TrainConfig fields a protocol sets (none for the stated one)."""
    return {} if protocol == STATED else dict(HYPOTHESES[protocol])


def run_name(variant: str, r0: float, lam: float, seed: int = 0) -> str:
    """A Table 4.6 run under the stated protocol."""
    return f"t46_{variant}_r0{r0:.2f}_lam{lam:g}_s{seed}"


def sweep_name(variant: str, lam: float, r0: float, epochs: int, seed: int) -> str:
    """An r0-sweep run under the stated protocol."""
    return f"rsweep_{variant}_lam{lam:g}_r0{r0:.1f}_e{epochs}_s{seed}"


def under(protocol: str, name: str) -> str:
    """The name of a stated-protocol run's counterpart under ``protocol``."""
    return name if protocol == STATED else f"proto_{protocol}_{name}"
