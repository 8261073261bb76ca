"""Prototypes of the hand-off from pybit's socket threads to the one thread that owns the
runner, measured by ``python -m benchmarks --feed --handoff``.

pybit calls every handler on its own socket thread; ``mmbot run`` used to move each frame
and venue event to the session thread through a ``queue.SimpleQueue``, and that thread
alone wrote the book, the runner and the order manager (one writer per book). A plain
``queue.SimpleQueue`` wakes the waiting session thread at once, but the woken thread then
needs the GIL, which the socket thread keeps while it reads the next frames: the session
thread waits until the socket thread blocks on the socket or the switch interval forces a
switch.

:class:`Handoff` is that queue plus one thing: when the consumer is blocked waiting, the
put that wakes it also yields the GIL (``time.sleep(0)``), so the woken thread runs now.
A consumer that is busy is not waiting, and puts to it do not yield, so a burst costs one
yield, not one per item (yielding on every put made the feed fall behind at 5,000
frames/s). ``python -m benchmarks --feed --handoff ...`` measures it against the other
options; see benchmarks/README.md.

The producer never blocks: a put is a ``SimpleQueue.put`` and, at most, a zero-length
sleep, never I/O. Items come out in the order they went in (per producer, and in the
order the puts happened across producers), each exactly once.

Measured, no queue made the hop single-digit microseconds: at one symbol the socket
thread is idle and the hop is the system waking a blocked thread (50-75 µs at p50 here,
whatever the mechanism); ``Handoff`` helps only when the socket thread is busy. What
wins is not hopping: :class:`mmbot.gate.Gate` (re-exported here for the benchmark) runs
the frame on the socket thread that received it whenever the runner is free (8 µs frame
to order at p50 at 100 symbols, against 209 µs through the queue). ``mmbot.live`` now
processes frames through it; see that module's docstring for how the I/O left the frame
path.
"""

from __future__ import annotations

import queue
import time
from typing import Any

from mmbot.gate import Gate  # the library's, re-exported for the benchmark

__all__ = ["Gate", "Handoff"]


class Handoff:
    """A FIFO from any number of producer threads to one consumer thread that yields the
    GIL to the consumer when a put wakes it.

    Drop-in for the ``queue.SimpleQueue`` calls the session loop makes: ``put``,
    ``get(timeout=...)`` and ``get_nowait`` (both raise ``queue.Empty``).

    Parameters
    ----------
    yield_on_wake : bool
        False makes it a plain ``SimpleQueue`` (the benchmark's baseline).

    >>> h = Handoff()
    >>> h.put(1); h.put(2)
    >>> h.get(timeout=0.1), h.get_nowait()
    (1, 2)
    """

    __slots__ = ("_q", "_waiting", "yield_on_wake", "wakes")

    def __init__(self, yield_on_wake: bool = True) -> None:
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._waiting = False
        self.yield_on_wake = yield_on_wake
        #: puts that found the consumer waiting (and yielded to it)
        self.wakes = 0

    def put(self, item: Any) -> None:
        """Append ``item``; never blocks (at most a zero-length sleep that yields the GIL)."""
        self._q.put(item)
        if self._waiting and self.yield_on_wake:
            # Cleared here too, so puts racing the consumer's wake-up yield once between
            # them; the attribute writes are atomic under the GIL.
            self._waiting = False
            self.wakes += 1
            time.sleep(0)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Remove and return the oldest item, waiting up to ``timeout`` seconds (None:
        forever) when ``block``; raise ``queue.Empty`` when there is none."""
        try:
            return self._q.get_nowait()
        except queue.Empty:
            if not block:
                raise
        self._waiting = True
        try:
            return self._q.get(timeout=timeout)
        finally:
            self._waiting = False

    def get_nowait(self) -> Any:
        """Remove and return the oldest item; raise ``queue.Empty`` when there is none."""
        return self._q.get_nowait()

    def qsize(self) -> int:
        """Items waiting (a snapshot: producers may be adding)."""
        return self._q.qsize()

    def empty(self) -> bool:
        """Whether no item is waiting (a snapshot)."""
        return self._q.empty()
