"""A gate that lets whichever thread receives an item run it, one thread at a time.

``mmbot run`` gets its frames and venue events on pybit's socket threads. Handing each one
to the session thread through a queue costs the operating system's wake-up of a blocked
thread, 50-75 µs at p50 on the 2-vCPU machine of ``python -m benchmarks --feed --handoff``
whatever the queue, more than the rest of the frame path. :class:`Gate` skips the hop
when it can: the thread that received the item runs it at once if no other thread is
running items, and queues it for the owner thread otherwise. The mutual exclusion keeps
one writer per book, runner and order manager; the queue keeps the items in order.

What a gate's ``process`` may do is the caller's contract: it runs on socket threads, so
it must never block on I/O (``mmbot.live`` moves REST calls and SQLite writes to the
owner thread and writes orders with a non-blocking send).
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["Gate"]

_R = TypeVar("_R")


class Gate:
    """Run each item on the thread that submits it when no other thread is running items,
    else queue it for the owner thread: one runner at a time, in order, and a submitter
    that never waits.

    Parameters
    ----------
    process : callable(item)
        Runs one item; called with the gate held, so calls never overlap.
    allow_inline : bool
        False: every submit queues for the owner until :attr:`allow_inline` is set (a
        session not running yet, or stopping).

    Ordering: an item submitted after another (by the same thread, or by another thread
    after the first submit returned) is processed after it, exactly once. A submit runs
    the queued items and then its own, or appends its own to the queue.

    Exceptions: the owner thread (the one calling :meth:`run_pending` and :meth:`call`)
    sees every exception ``process`` raises. One raised on the owner propagates there at
    once. One raised on a submitting thread (a socket thread, whose caller would only log
    it) is kept and raised by the owner's next :meth:`run_pending` or :meth:`call`; from
    then on submitters only queue (the gate is :attr:`failed`), so nothing more runs off
    the owner thread. The item that raised is consumed; the items behind it stay queued
    for the owner.

    >>> ran = []
    >>> gate = Gate(ran.append)
    >>> gate.submit(1), gate.call(len, ran)
    (True, 1)
    """

    __slots__ = (
        "process",
        "allow_inline",
        "_lock",
        "_items",
        "_tokens",
        "_error",
        "failed",
        "inline",
        "queued",
    )

    def __init__(self, process: Callable[[Any], None], *, allow_inline: bool = True) -> None:
        self.process = process
        #: whether a submitter may run its item itself (else it always queues)
        self.allow_inline = allow_inline
        self._lock = threading.Lock()
        self._items: collections.deque = collections.deque()
        # one token per queued item (and per wake): what the owner blocks on
        self._tokens: queue.SimpleQueue = queue.SimpleQueue()
        self._error: BaseException | None = None
        #: a submitter's ``process`` raised: from then on only the owner runs items
        self.failed = False
        self.inline = 0  # items run by their submitter
        self.queued = 0  # items queued because the gate was held (or had failed)

    def submit(self, item: Any) -> bool:
        """Run ``item`` now if the gate is free (return True), else queue it (False; also
        when an item queued before it raised first).

        Never blocks on the gate; safe from any thread. Never raises what ``process``
        raises (that goes to the owner, see the class docstring).
        """
        if self.allow_inline and not self.failed and self._lock.acquire(blocking=False):
            mine = False  # whether this item's own processing has started
            try:
                self._drain()
                mine = True
                self.process(item)
                self.inline += 1
                # what the item itself submitted (an event raised by an order's send)
                self._drain()
            except BaseException as exc:  # noqa: BLE001  (handed to the owner, raised there)
                if not mine:
                    # an item queued before it raised: this one waits for the owner, after
                    # the rest of the queue, never lost
                    self._items.append(item)
                    self.queued += 1
                    self._tokens.put(None)
                self._fail(exc)
            finally:
                self._lock.release()
            return mine
        self._items.append(item)
        self.queued += 1
        self._tokens.put(None)
        return False

    def wake(self) -> None:
        """Make the owner's :meth:`run_pending` return now (thread-safe, never blocks)."""
        self._tokens.put(None)

    def run_pending(self, timeout: float | None = None) -> int:
        """Wait up to ``timeout`` s for a queued item (or a :meth:`wake`), then run every
        queued item; return how many ran here (0: none was queued, or a submitter ran
        them first). Owner thread only: raises a submitter's exception first."""
        try:
            self._tokens.get(timeout=timeout)
        except queue.Empty:
            pass
        with self._lock:
            self._raise_failure()
            return self._drain()

    def call(self, fn: Callable[..., _R], *args: Any) -> _R:
        """Hold the gate, run the queued items, then return ``fn(*args)`` (the owner's
        timer and reads: whatever touches what ``process`` writes). Owner thread only:
        raises a submitter's exception first."""
        with self._lock:
            self._raise_failure()
            self._drain()
            return fn(*args)

    def hold(self, fn: Callable[..., _R], *args: Any) -> _R:
        """Return ``fn(*args)`` with the gate held, and nothing else: no queued item runs
        and no submitter's exception is raised here (any thread: a reader wanting the
        values of one moment, or a shutdown that must cancel whatever happened before)."""
        with self._lock:
            return fn(*args)

    def pending(self) -> int:
        """Items queued and not run yet (a snapshot)."""
        return len(self._items)

    def _fail(self, exc: BaseException) -> None:
        if self._error is None and not self.failed:
            self._error = exc
        self.failed = True
        self._tokens.put(None)  # the owner raises it now, not at its next timeout

    def _raise_failure(self) -> None:
        exc, self._error = self._error, None
        if exc is not None:
            raise exc

    def _drain(self) -> int:
        n = 0
        items = self._items
        process = self.process
        while items:
            process(items.popleft())
            n += 1
        return n
