"""Fixtures shared by mmbot's socket tests: the local Bybit v5 simulator on 127.0.0.1.

``start_sim(**kwargs)`` starts one with :func:`mmbot.sim.server.start_simulator`'s
arguments, waits until its market has published (a condition, not a sleep), optionally
pauses the market (``paused=True``: nothing fills unless the test says so), and stops it
when the test ends; ``start_module_sim`` does the same for a whole module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from mmbot.sim.server import SimulatorHandle, start_simulator


def _starter(stack: ExitStack) -> Callable[..., SimulatorHandle]:
    def start(*, paused: bool = False, **kwargs) -> SimulatorHandle:
        handle = start_simulator(**kwargs)
        stack.callback(handle.stop)
        handle.wait_market()
        if paused:
            handle.pause_market()
        return handle

    return start


@pytest.fixture
def start_sim() -> Iterator[Callable[..., SimulatorHandle]]:
    with ExitStack() as stack:
        yield _starter(stack)


@pytest.fixture(scope="module")
def start_module_sim() -> Iterator[Callable[..., SimulatorHandle]]:
    with ExitStack() as stack:
        yield _starter(stack)
