"""Bounded polling for tests that watch real sockets and processes."""

import time


def wait_for(cond, timeout_s=5.0, step_s=0.02):
    """Poll ``cond()`` until it is truthy or ``timeout_s`` passes; return whether it held."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step_s)
    return False
