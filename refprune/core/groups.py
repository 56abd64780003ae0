"""Which weights share one pruning ratio r, temperature τ and threshold t.

A grouping splits the L weight matrices into groups; each group g has its own r_g, τ_g, its
threshold t_g(r_g) (the r_g-quantile of the group's magnitudes), its soft mask and its
dt_g/dr_g = 1/f_g(t_g) from the density of the group's magnitudes. One group holding every
layer is the thesis's global LRP; one group per layer is layer-wise LRP (thesis §5.3, future
work; docs/derivations.md §9). With n_g weights in group g and n = Σ n_g, the regulariser is

    L_R = λ Σ_g (n_g/n)(1 − r_g)²,

which is the thesis's λ(1 − r)² (eq. (2.23)) for one group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# One r, τ and threshold for all weights (the thesis's method), or one per layer.
GRANULARITIES = ("global", "layer")


@dataclass(frozen=True)
class Grouping:
    """A partition of the layers' weight matrices into groups that share r, τ and t.

    Attributes
    ----------
    layers : tuple of tuple of int
        ``layers[g]``: the indices of the weight matrices in group g, ascending; every layer in
        exactly one group.

    Examples
    --------
    >>> from refprune.core.groups import Grouping
    >>> Grouping(((0, 2), (1,))).layers
    ((0, 2), (1,))
    >>> Grouping(((0,), (0, 1)))
    Traceback (most recent call last):
        ...
    ValueError: a grouping must put each of the layers 0..L-1 in exactly one non-empty group, ...
    """

    layers: tuple

    def __post_init__(self):
        flat = sorted(i for group in self.layers for i in group)
        if not self.layers or any(not group for group in self.layers) or flat != list(range(len(flat))):
            raise ValueError(f"a grouping must put each of the layers 0..L-1 in exactly one non-empty group, "
                             f"got {self.layers!r}")

    @classmethod
    def of(cls, granularity: str, n_layers: int) -> Grouping:
        """One group of all layers (``"global"``) or one group per layer (``"layer"``).

        Examples
        --------
        >>> from refprune.core.groups import Grouping
        >>> Grouping.of("global", 3).layers, Grouping.of("layer", 3).layers
        (((0, 1, 2),), ((0,), (1,), (2,)))
        """
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {list(GRANULARITIES)}, got {granularity!r}")
        if granularity == "global":
            return cls((tuple(range(n_layers)),))
        return cls(tuple((l,) for l in range(n_layers)))

    @property
    def n_groups(self) -> int:
        """G, the number of groups.

        Examples
        --------
        >>> from refprune.core.groups import Grouping
        >>> Grouping.of("global", 3).n_groups, Grouping.of("layer", 3).n_groups
        (1, 3)
        """
        return len(self.layers)

    @property
    def n_layers(self) -> int:
        """L, the number of weight matrices.

        Examples
        --------
        >>> from refprune.core.groups import Grouping
        >>> Grouping(((0, 2), (1,))).n_layers
        3
        """
        return sum(len(group) for group in self.layers)

    def group_of(self, layer: int) -> int:
        """The group that holds weight matrix ``layer``.

        Examples
        --------
        >>> from refprune.core.groups import Grouping
        >>> Grouping(((0, 2), (1,))).group_of(2)
        0
        """
        return next(g for g, group in enumerate(self.layers) if layer in group)

    def members(self, arrays, g: int) -> list:
        """The entries of a per-layer list that belong to group g.

        Examples
        --------
        >>> from refprune.core.groups import Grouping
        >>> Grouping(((0, 2), (1,))).members(["W0", "W1", "W2"], 0)
        ['W0', 'W2']
        """
        return [arrays[l] for l in self.layers[g]]

    def fractions(self, weights) -> np.ndarray:
        """n_g / n for each group, shape (G,): the regulariser's weights (thesis eq. (2.23) per group).

        Examples
        --------
        >>> import numpy as np
        >>> from refprune.core.groups import Grouping
        >>> weights = [np.ones((3, 4)), np.ones((4, 2))]    # 12 and 8 weights
        >>> Grouping.of("layer", 2).fractions(weights).tolist()
        [0.6, 0.4]
        """
        sizes = np.array([sum(weights[l].size for l in group) for group in self.layers], dtype=np.float64)
        return sizes / sizes.sum()
