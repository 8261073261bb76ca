"""Signal handlers a command installs for its run and restores after."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["on_signal"]


@contextmanager
def on_signal(signum: int, handler: Callable[..., Any]) -> Iterator[None]:
    """Run ``handler(signum, frame)`` on ``signum`` inside the block, then restore the
    previous handler.

    A command installs its own even for SIGINT: a shell starts a background job with
    SIGINT ignored, and Python then never raises KeyboardInterrupt, so Ctrl-C (or ``kill
    -INT``) would be lost.
    """
    previous = signal.signal(signum, handler)
    try:
        yield
    finally:
        signal.signal(signum, previous)
