"""Shared data for the pytest-benchmark suite, generated once per session.

Timing policy: pytest-benchmark's own ``--benchmark-disable`` is in the project's pytest
options, so a plain ``pytest`` (what CI runs) executes every benchmark once as a
correctness check, untimed; ``pytest benchmarks/ --benchmark-enable`` times them.

Sizes: ``OBCORE_BENCH_MESSAGES`` (default 300) frames per workload;
``OBCORE_BENCH_RECORDING=path`` adds a recorded workload (see README.md), with
``OBCORE_BENCH_TICK_SIZE`` / ``OBCORE_BENCH_LOT_SIZE`` when they cannot be inferred.
"""

from __future__ import annotations

import functools
import os

import pytest

from obcore.bench.peers import ExactBook, peer_names
from obcore.bench.workloads import Workload, from_recording, synthetic

MESSAGES = int(os.environ.get("OBCORE_BENCH_MESSAGES", "300"))
MAIN_DEPTH = 200
SCALE_DEPTHS = (50, 200, 1000, 10_000)
RECORDING = os.environ.get("OBCORE_BENCH_RECORDING")
PEERS = peer_names()
# pybit scans a side 2-3 times per level change: at 10,000 levels one replay takes minutes.
PYBIT_MAX_DEPTH = 1000


@functools.cache
def workload(name: str) -> Workload:
    """Return a cached workload: ``"synthetic-<depth>"`` or ``"recording"``."""
    if name == "recording":
        return from_recording(
            RECORDING,
            tick_size=os.environ.get("OBCORE_BENCH_TICK_SIZE"),
            lot_size=os.environ.get("OBCORE_BENCH_LOT_SIZE"),
            max_messages=MESSAGES,
        )
    depth = int(name.rsplit("-", 1)[1])
    return synthetic(depth=depth, messages=MESSAGES, seed=depth)


@functools.cache
def oracle(name: str) -> ExactBook:
    """The exact reference book after replaying the whole workload."""
    wl = workload(name)
    book = ExactBook(wl.tick_size, wl.lot_size)
    for m in wl.msgs:
        book.apply_levels(m)
    return book


REPLAY_WORKLOADS = [f"synthetic-{MAIN_DEPTH}"] + (["recording"] if RECORDING else [])


def skip_slow(peer_name: str, wl: Workload) -> None:
    if peer_name.startswith("pybit") and wl.depth > PYBIT_MAX_DEPTH:
        pytest.skip(f"pybit is O(levels) per change; skipped above {PYBIT_MAX_DEPTH} levels")
