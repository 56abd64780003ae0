"""``python -m refprune``: the same as the ``refprune`` command."""

import sys

from .cli import main

sys.exit(main())
