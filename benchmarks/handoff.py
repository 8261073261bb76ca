"""Where a frame is processed, prototyped for ``python -m benchmarks --feed --handoff``.

Each mode is a stand-in for ``mmbot run``'s session: per frame, apply it to the
symbol's book, read the touch (the quote decision's input), build an order request of
~120 bytes and write it to a socket (UDP to a bound socket on 127.0.0.1 that nobody reads:
the kernel drops what overflows and the writer never blocks). One writer per book in every
mode. Timed with ``time.perf_counter_ns`` from the frame's receive on pybit's socket
thread: the hop to the thread that owns the book, the book updated, and the order written.

Forward modes (the socket thread only enqueues the raw frame; a consumer thread owns the
books and writes the orders, as ``mmbot.live`` does today):

- ``queue``: ``SimpleQueue.get(timeout)``, the default 5 ms switch interval;
- ``switch``: the same with ``sys.setswitchinterval(0.0005)`` (``mmbot.live`` today);
- ``yield``: ``switch`` plus ``time.sleep(0)`` after every put;
- ``wake``: :class:`benchmarks.primitives.Handoff`, a put yields the GIL only when it wakes a
  waiting consumer;
- ``eventfd``: a deque and an eventfd the consumer blocks on, written only when it waits.

Socket-thread modes (the socket thread owns the books and decides):

- ``inline``: the order request goes to a sender thread through a ``Handoff``;
- ``inline-send``: the socket thread writes the order itself (the lower bound; it puts
  the socket thread on the order socket's I/O, which the issue rules out);
- ``gate``: :class:`benchmarks.primitives.Gate`: the socket thread runs the frame itself (book,
  decision, order) when the owner thread is not holding the runner, else queues it for
  the owner; the owner holds the runner for 1 ms every 100 ms (a timer tick with a REST
  call), so some frames take the queue.

All but ``queue`` run with the 0.5 ms switch interval, so they differ only in the
mechanism.
"""

from __future__ import annotations

import collections
import os
import queue
import select
import socket
import sys
import threading
import time

import obcore
from benchmarks.primitives import Handoff
from mmbot.latency import LatencyStats

__all__ = ["MODES", "EventfdQueue", "make_mode"]

MODES = ("queue", "switch", "yield", "wake", "eventfd", "inline", "inline-send", "gate")
GATE_TIMER_S = 0.1  # the gate mode's owner thread holds the runner this often...
GATE_BUSY_S = 0.001  # ...for this long (mmbot.live's timer tick: risk, a REST reconcile)
SWITCH_S = 0.0005  # mmbot.live's


class _OrderSink:
    """A UDP socket connected to a bound socket nobody reads."""

    def __init__(self) -> None:
        self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rx.bind(("127.0.0.1", 0))
        self.tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tx.connect(self.rx.getsockname())
        self.tx.setblocking(False)
        self.n = 0

    def order(self, symbol: str, book) -> bytes:
        self.n += 1
        bid = book.best_bid()  # the decision's input: (ticks, lots) or None
        return b'{"reqId":"%d","op":"order.amend","args":[{"symbol":"%s","price":"%d"}]}' % (
            self.n,
            symbol.encode(),
            bid[0] if bid else 0,
        )

    def send(self, payload: bytes) -> None:
        try:
            self.tx.send(payload)
        except OSError:  # a full send buffer: dropped, like the receiver's overflow
            pass

    def close(self) -> None:
        self.tx.close()
        self.rx.close()


class EventfdQueue:
    """A deque with an eventfd wake-up: the consumer blocks in ``select`` on the eventfd
    (the GIL released) and a put writes it only when the consumer is waiting."""

    def __init__(self) -> None:
        self.items: collections.deque = collections.deque()
        self.fd = os.eventfd(0, os.EFD_NONBLOCK)
        self.waiting = False

    def put(self, item) -> None:
        self.items.append(item)
        if self.waiting:
            self.waiting = False
            os.eventfd_write(self.fd, 1)

    def get(self, timeout: float | None = None):
        try:
            return self.items.popleft()
        except IndexError:
            pass
        self.waiting = True
        if self.items:  # a put between the popleft and the flag did not write the fd
            self.waiting = False
            return self.items.popleft()
        ready, _, _ = select.select([self.fd], [], [], timeout)
        self.waiting = False
        if ready:
            try:
                os.eventfd_read(self.fd)
            except BlockingIOError:
                pass
        try:
            return self.items.popleft()
        except IndexError:
            raise queue.Empty from None

    def close(self) -> None:
        os.close(self.fd)


class _Mode:
    """One mode's state and timings; ``forward`` modes take ``on_frame``, the others
    ``on_update`` (BookFeed's hook after it applied the frame on the socket thread)."""

    def __init__(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown hand-off mode {mode!r}; choose from {MODES}")
        self.mode = mode
        self.forward = not mode.startswith("inline")
        self.switch_s = None if mode == "queue" else SWITCH_S
        self.sink = _OrderSink()
        self.books: dict = {}
        self.applied = 0
        self.stop = False
        self.reset()
        self.q = None
        self.thread = None
        self.gate = None
        if mode == "gate":
            from benchmarks.primitives import Gate  # noqa: PLC0415

            self.gate = Gate(self._process)
            self.thread = threading.Thread(target=self._owner, name="bench-gate", daemon=True)
        elif mode == "eventfd":
            self.q = EventfdQueue()
        elif mode != "inline-send":
            self.q = Handoff(yield_on_wake=mode in ("wake", "inline"))
        if self.q is not None:
            target = self._consume if self.forward else self._sender
            self.thread = threading.Thread(target=target, name=f"bench-{mode}", daemon=True)

    def reset(self) -> None:
        self.hop, self.to_book, self.to_order = LatencyStats(), LatencyStats(), LatencyStats()
        self.age = LatencyStats()

    def start(self) -> None:
        if self.thread is not None:
            self.thread.start()

    def close(self) -> None:
        self.stop = True
        if self.thread is not None:
            self.thread.join(2)
        if isinstance(self.q, EventfdQueue):
            self.q.close()
        self.sink.close()

    # ---------------------------------------------------------- forward modes

    def on_frame(self, symbol: str, raw: bytes, recv_ns: int) -> None:
        if self.gate is not None:
            self.gate.submit((symbol, raw, recv_ns))
            return
        self.q.put((symbol, raw, recv_ns))
        if self.mode == "yield":
            time.sleep(0)

    def _consume(self) -> None:
        get = self.q.get
        while not self.stop:
            try:
                item = get(timeout=0.05)
            except queue.Empty:
                continue
            self._process(item)

    def _owner(self) -> None:
        # the session thread's stand-in: queued frames, and a timer that holds the runner
        gate, next_timer = self.gate, time.monotonic()
        while not self.stop:
            gate.run_pending(0.01)
            if time.monotonic() >= next_timer:
                next_timer += GATE_TIMER_S
                gate.call(time.sleep, GATE_BUSY_S)

    def _process(self, item) -> None:
        symbol, raw, recv_ns = item
        sink = self.sink
        self.hop.add(time.perf_counter_ns() - recv_ns)
        book = self.books.get(symbol)
        if book is None:
            book = self.books[symbol] = obcore.Book("0.1", "0.001")
        book.apply(raw)
        self.applied += 1
        self.to_book.add(time.perf_counter_ns() - recv_ns)
        self.age.add(time.time_ns() - book.cts * 1_000_000)
        sink.send(sink.order(symbol, book))
        self.to_order.add(time.perf_counter_ns() - recv_ns)

    # ---------------------------------------------------------- socket-thread modes

    def on_update(self, entry, recv_ns: int) -> None:
        self.to_book.add(time.perf_counter_ns() - recv_ns)
        payload = self.sink.order(entry.symbol, entry.book)
        if self.q is None:
            self.sink.send(payload)
            self.to_order.add(time.perf_counter_ns() - recv_ns)
        else:
            self.q.put((payload, recv_ns, time.perf_counter_ns()))

    def _sender(self) -> None:
        get, send = self.q.get, self.sink.send
        while not self.stop:
            try:
                payload, recv_ns, put_ns = get(timeout=0.05)
            except queue.Empty:
                continue
            now = time.perf_counter_ns()
            self.hop.add(now - put_ns)
            send(payload)
            self.to_order.add(time.perf_counter_ns() - recv_ns)


def make_mode(mode: str) -> _Mode:
    """Return the stand-in session for ``mode`` (call ``start`` once the feed exists)."""
    return _Mode(mode)


def set_switch(mode: _Mode) -> float:
    """Apply ``mode``'s switch interval; return the one to restore."""
    old = sys.getswitchinterval()
    if mode.switch_s is not None:
        sys.setswitchinterval(mode.switch_s)
    return old
