"""dt/dr = 1/f(t) is refused exactly where it is not a finite positive number.

`refprune.core.gradients.threshold_derivative` is the last step of every dt/dr route.
The rule (docs/derivations.md §5): f(t) must be a finite, positive, normal float of
its own dtype. Refusing only f <= 0 (and NaN) would let f = inf give dt/dr = 0
silently, and a subnormal f give dt/dr = inf.
"""

import numpy as np
import pytest

from refprune.core.gradients import threshold_derivative


@pytest.mark.parametrize("f", [0.0, -1.0, float("nan"), float("inf"), -float("inf"),
                               5e-324, 1e-310, np.float32(1e-39), np.float32(0.0),
                               np.float32(np.inf)])
def test_refuses_where_one_over_f_is_not_a_finite_positive_number(f):
    with pytest.raises(ValueError, match="dt/dr"):
        threshold_derivative(f)


@pytest.mark.parametrize("f", [1.0, 3, 2.5e-308, np.float64(1e300), np.float32(2.0),
                               np.float32(1.2e-38)])
def test_accepts_every_normal_positive_density(f):
    dt_dr = threshold_derivative(f)
    assert isinstance(dt_dr, float) and np.isfinite(dt_dr) and dt_dr > 0
    assert dt_dr == 1.0 / float(f)    # the reciprocal, formed in float64
