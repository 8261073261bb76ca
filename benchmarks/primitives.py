"""Prototypes of the hand-off from pybit's socket threads to the one thread that owns the
runner, measured by ``python -m benchmarks --feed --handoff``. Not used by ``mmbot run``
yet: it keeps its ``queue.SimpleQueue`` (``Handoff`` measured no better end to end), and
:class:`Gate` needs the I/O moved off the frame path first (below).

pybit calls every handler on its own socket thread; ``mmbot run`` moves each frame and
venue event to the session thread, which alone writes the book, the runner and the order
manager (one writer per book). A plain ``queue.SimpleQueue`` wakes the waiting session
thread at once, but the woken thread then needs the GIL, which the socket thread keeps
while it reads the next frames: the session thread waits until the socket thread blocks
on the socket or the switch interval forces a switch.

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
wins is not hopping: :class:`Gate` runs the frame on the socket thread that received it
whenever the runner is free (8 µs frame to order at p50 at 100 symbols, against 209 µs
through the queue). Wiring it into ``mmbot.live``:

- ``gate = Gate(self._process)`` where ``_process((kind, item, recv_ns))`` is the body
  of ``LiveSession.step``'s loop (frame, event, link, mark);
- every ``self.q.put(x)`` (the feed's ``on_frame``, the venue handler, ``_on_status``,
  the mark callback) becomes ``gate.submit(x)``;
- ``step(timeout)`` becomes ``gate.run_pending(timeout)``; the timer tick, reload,
  ``close`` and the dashboard's reads run inside ``gate.call(...)``;
- whatever ``_process`` can reach must not do I/O that can block: the runner's REST
  calls (reconcile, a kill's cancel-all) and SQLite snapshots move to the timer
  (``gate.call`` on the session thread), and the trade socket's write must not block.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

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


class Gate:
    """Run each item on the thread that submits it when no other thread is running items,
    else queue it for the owner thread: one runner at a time, in order, and a submitter
    that never waits.

    This is the measured winner of ``python -m benchmarks --feed --handoff`` (``gate``,
    ``inline-send``): the socket thread that received a frame applies it and writes the
    order itself, with no thread hop, whenever the session thread is not busy with the
    runner (a timer, a reconcile over REST, a venue event). When it is, the frame is
    queued and whoever holds the runner next, either thread, runs the queued items first.

    Parameters
    ----------
    process : callable(item)
        Runs one item; called with the gate held, so calls never overlap. An exception
        propagates to the caller (the item is consumed).

    Ordering: an item submitted after another (by the same thread, or by another thread
    after the first submit returned) is processed after it. A submit either runs its item
    at once, after every queued item, or appends it to the queue.
    """

    __slots__ = ("process", "_lock", "_items", "_tokens", "inline", "queued")

    def __init__(self, process: Callable[[Any], None]) -> None:
        self.process = process
        self._lock = threading.Lock()
        self._items: collections.deque = collections.deque()
        self._tokens = Handoff()  # one per queued item: wakes the owner thread
        self.inline = 0  # items run by their submitter
        self.queued = 0  # items queued because the gate was held

    def submit(self, item: Any) -> bool:
        """Run ``item`` now if the gate is free (return True), else queue it (False).

        Never blocks on the gate; safe from any thread (pybit's socket threads).
        """
        if self._lock.acquire(blocking=False):
            try:
                self._drain()
                self.process(item)
                self.inline += 1
            finally:
                self._lock.release()
            return True
        self._items.append(item)
        self.queued += 1
        self._tokens.put(None)
        return False

    def run_pending(self, timeout: float | None = None) -> int:
        """Wait up to ``timeout`` s for a queued item, then run every queued item; return
        how many ran here (0: none was queued, or a submitter ran them first)."""
        try:
            self._tokens.get(timeout=timeout)
        except queue.Empty:
            return 0
        with self._lock:
            return self._drain()

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Hold the gate, run the queued items, then return ``fn(*args)`` (the owner's
        timer and reads: whatever touches what ``process`` writes)."""
        with self._lock:
            self._drain()
            return fn(*args)

    def _drain(self) -> int:
        n = 0
        items = self._items
        while items:
            self.process(items.popleft())
            n += 1
        return n
