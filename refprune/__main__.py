"""``python -m refprune``: the same as the ``refprune`` command."""

import sys

from refprune.cli.main import main

sys.exit(main())
