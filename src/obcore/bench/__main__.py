"""``python -m obcore.bench``: the same as the ``obcore-bench`` command."""

import sys

from obcore.bench.runner import main

sys.exit(main())
