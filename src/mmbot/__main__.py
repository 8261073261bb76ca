"""``python -m mmbot``: the same as the ``mmbot`` console script."""

import sys

from mmbot.cli import main

sys.exit(main())
