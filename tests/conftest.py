"""Shared test settings.

Hypothesis: no per-example deadline (a gradient check of a small net takes
tens of milliseconds and timing varies on a loaded 2-core CI machine) and a
derandomised profile on CI so a failure reproduces from the log.
"""

import os

from hypothesis import settings

settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
