"""``python -m benchmarks``: see benchmarks/README.md and ``--help``."""

import sys

from benchmarks.runner import main

sys.exit(main())
