"""Recordings of market data (and the bot's own order round trips) for backtests.

Format (``mmbot-recording`` version 1)
-------------------------------------
UTF-8 text, one record per line, gzip when the name ends in ``.gz``:

* Line 1, the header: ``#mmbot-recording 1 {JSON}``. The JSON object holds
  ``"instruments"``: the ``result`` of Bybit's ``/v5/market/instruments-info`` for every
  recorded symbol (``{"category": "linear", "list": [...]}``), so a backtest takes the
  tick, the lot, the limits and the category from the recording itself.
* A market frame: ``RECV_NS FRAME``: the local wall-clock receive time in nanoseconds
  since the epoch (``time.time_ns()``), one space, then the raw WebSocket frame exactly
  as received (``orderbook.*`` and ``publicTrade.*``; Bybit's compact JSON never holds a
  newline). Feed latency is ``RECV_NS / 1e6`` minus the frame's exchange ``ts``.
* An order round trip of the bot (``mmbot run --record``): ``RECV_NS #rt {JSON}`` with
  ``"op"`` (create, amend, cancel), ``"link"`` (orderLinkId), ``"sent_ns"`` (request
  sent), ``"exchange_ms"`` (Bybit's ``createdTime``/``updatedTime`` of the order) and
  ``"recv_ns"`` (response received, local). Order entry latency is
  ``exchange_ms + 0.5 - sent_ns / 1e6``, response latency
  ``recv_ns / 1e6 - (exchange_ms + 0.5)`` (the exchange stamps whole milliseconds).

A file of bare frames, one per line (what ``obcore.recording`` writes, and what
``mmbot record`` wrote before this format), still replays: it has no header and no
receive times, so the instruments must come from ``--instruments FILE``.

Public API
----------
FrameRecorder, Recording, RecordingError, RoundTrip, RoundTripVenue, read_recording,
HEADER_PREFIX.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import obcore

__all__ = [
    "HEADER_PREFIX",
    "FrameRecorder",
    "Recording",
    "RecordingError",
    "RoundTrip",
    "RoundTripVenue",
    "read_recording",
]

HEADER_PREFIX = "#mmbot-recording 1 "
_RT = "#rt "
_TOPICS = ('"topic":"orderbook.', '"topic":"publicTrade.')


class RecordingError(ValueError):
    """A recording cannot be used as asked (the message names the file and what it holds)."""


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """One order request of the bot: sent and received locally (ns), seen by the exchange
    (ms)."""

    op: str
    link: str
    sent_ns: int
    exchange_ms: int
    recv_ns: int

    @property
    def entry_ms(self) -> float:
        """Order entry latency: request sent to the exchange's timestamp. The exchange
        stamps whole milliseconds, so the middle of its millisecond is taken (a truncated
        stamp alone would make every order arrive early by half a millisecond on average)."""
        return self.exchange_ms + 0.5 - self.sent_ns / 1e6

    @property
    def response_ms(self) -> float:
        """Response latency: the exchange's timestamp (mid-millisecond) to the response."""
        return self.recv_ns / 1e6 - (self.exchange_ms + 0.5)


@dataclass
class FrameRecorder:
    """Write a recording (see the module docstring); thread-safe, called from socket threads.

    Parameters
    ----------
    path : str
        Output file (gzip when it ends in ``.gz``); overwritten.
    instruments : dict or None
        The instruments-info ``result`` (``{"category": ..., "list": [...]}``) for the header.
    all_messages : bool
        Keep every message, not only orderbook and publicTrade frames.
    clock_ns : callable
        Local receive clock (default ``time.time_ns``, comparable with exchange ``ts``).
    """

    path: str
    instruments: dict | None = None
    all_messages: bool = False
    clock_ns: Any = time.time_ns
    frames: int = 0
    round_trips: int = 0
    _fh: TextIO | None = field(default=None, repr=False)

    def __post_init__(self):
        from obcore.recording import open_text  # noqa: PLC0415  (only needed to record)

        self._lock = threading.Lock()
        self._fh = open_text(self.path, "w")
        header = {"instruments": self.instruments} if self.instruments is not None else {}
        self._fh.write(HEADER_PREFIX + json.dumps(header, separators=(",", ":")) + "\n")

    def write(self, message: str, recv_ns: int | None = None):
        """Record one raw frame received now (or at ``recv_ns``)."""
        if not self.all_messages and not any(t in message[:80] for t in _TOPICS):
            return
        if "\n" in message:
            raise ValueError("a raw frame cannot contain a newline")
        ns = self.clock_ns() if recv_ns is None else recv_ns
        with self._lock:
            if self._fh is None:
                return
            self._fh.write(f"{ns} {message}\n")
            self.frames += 1

    def write_round_trip(
        self, op: str, link: str, sent_ns: int, exchange_ms: int, recv_ns: int
    ) -> None:
        """Record one order request's round trip (see :class:`RoundTrip`)."""
        body = json.dumps(
            {
                "op": op,
                "link": link,
                "sent_ns": sent_ns,
                "exchange_ms": exchange_ms,
                "recv_ns": recv_ns,
            },
            separators=(",", ":"),
        )
        with self._lock:
            if self._fh is None:
                return
            self._fh.write(f"{recv_ns} {_RT}{body}\n")
            self.round_trips += 1

    def close(self):
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


class RoundTripVenue:
    """A venue wrapper that records the bot's order round trips into a :class:`FrameRecorder`.

    Every create/amend/cancel request is timed when it is handed to the venue
    (``sent_ns``); the first order event for that orderLinkId afterwards closes the round
    trip with the order's venue ``updated_ms`` (Bybit's ``updatedTime``) and the local
    time the event reached the handler (``recv_ns``). Refused requests record nothing.
    Everything else is the wrapped venue's.
    """

    def __init__(self, venue: Any, recorder: FrameRecorder) -> None:
        self._venue = venue
        self._recorder = recorder
        self._sent: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()
        self._handler = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._venue, name)

    def _mark(self, op: str, link: str) -> None:
        if link:
            with self._lock:
                self._sent[link] = (op, self._recorder.clock_ns())

    def place(self, request) -> None:
        self._mark("create", request.order_link_id)
        self._venue.place(request)

    def amend(self, request) -> None:
        self._mark("amend", request.order_link_id)
        self._venue.amend(request)

    def cancel(self, request) -> None:
        self._mark("cancel", request.order_link_id)
        self._venue.cancel(request)

    def place_batch(self, requests) -> None:
        for r in requests:
            self._mark("create", r.order_link_id)
        self._venue.place_batch(requests)

    def amend_batch(self, requests) -> None:
        for r in requests:
            self._mark("amend", r.order_link_id)
        self._venue.amend_batch(requests)

    def cancel_batch(self, requests) -> None:
        for r in requests:
            self._mark("cancel", r.order_link_id)
        self._venue.cancel_batch(requests)

    def set_handler(self, handler) -> None:
        self._handler = handler
        self._venue.set_handler(None if handler is None else self._on_event)

    def _on_event(self, event) -> None:
        from mmbot.types import OrderEvent, RequestError  # noqa: PLC0415

        if isinstance(event, OrderEvent | RequestError):
            link = (
                event.order.order_link_id if isinstance(event, OrderEvent) else event.order_link_id
            )
            with self._lock:
                sent = self._sent.pop(link, None)
            if sent is not None and isinstance(event, OrderEvent) and event.order.updated_ms:
                self._recorder.write_round_trip(
                    sent[0], link, sent[1], event.order.updated_ms, self._recorder.clock_ns()
                )
        handler = self._handler
        if handler is not None:
            handler(event)


@dataclass
class Recording:
    """A recording opened for replay: its header, symbols and order round trips.

    :meth:`frames` streams ``(recv_ns or None, frame)`` pairs from the file each time it
    is called, so a long recording is never held in memory.
    """

    path: Path
    header: dict[str, Any] | None
    symbols: list[str]
    topics: set[str]
    round_trips: list[RoundTrip]
    frame_count: int

    @property
    def instruments(self) -> dict | None:
        """The instruments-info ``result`` from the header, or None."""
        if self.header is None:
            return None
        return self.header.get("instruments")

    def describe(self) -> str:
        """One line saying what the file holds (for error messages)."""
        kinds = ", ".join(sorted(self.topics)) or "no frames"
        head = "an instruments header" if self.instruments else "no instruments header"
        return f"{self.path} holds {self.frame_count} frames ({kinds}) and {head}"

    def frames(self, symbol: str | None = None) -> Iterator[tuple[int | None, str]]:
        """Yield ``(recv_ns, frame)`` of the orderbook and publicTrade frames (of
        ``symbol`` only, if given), in file order; ``recv_ns`` is None in bare files."""
        from obcore.recording import open_text  # noqa: PLC0415

        with open_text(self.path, "r") as fh:
            for line in fh:
                parsed = _parse_line(line)
                if parsed is None or parsed[1].startswith("#"):
                    continue
                if symbol is not None and f'.{symbol}"' not in parsed[1][:80]:
                    continue
                yield parsed


def _parse_line(line: str) -> tuple[int | None, str] | None:
    line = line.rstrip("\n")
    if not line or line.startswith("#"):
        return None
    if line[0] == "{":
        return None, line
    ns, sep, rest = line.partition(" ")
    if not sep or not ns.isdigit():
        raise RecordingError(f"line is neither a frame nor 'RECV_NS FRAME': {line[:80]!r}")
    return int(ns), rest


def _topic(frame: str) -> str:
    return obcore.frame_topic(frame) or ""


def read_recording(path: str | Path) -> Recording:
    """Open a recording: read its header, the topics and symbols it holds and its round trips.

    Raises
    ------
    RecordingError
        If the file is missing, unreadable, or malformed (the message names the line).
    """
    from obcore.recording import open_text  # noqa: PLC0415

    p = Path(path)
    if not p.is_file():
        raise RecordingError(f"recording {str(path)!r} does not exist")
    header = None
    topics: set[str] = set()
    symbols: list[str] = []
    trips: list[RoundTrip] = []
    count = 0
    try:
        with open_text(p, "r") as fh:
            for n, line in enumerate(fh, 1):
                if n == 1 and line.startswith("#mmbot-recording"):
                    if not line.startswith(HEADER_PREFIX):
                        raise RecordingError(f"{p}: unsupported recording header {line[:40]!r}")
                    try:
                        header = json.loads(line[len(HEADER_PREFIX) :])
                    except json.JSONDecodeError as exc:
                        raise RecordingError(f"{p}: header is not JSON: {exc}") from exc
                    continue
                try:
                    parsed = _parse_line(line)
                except RecordingError as exc:
                    raise RecordingError(f"{p} line {n}: {exc}") from None
                if parsed is None:
                    continue
                ns, text = parsed
                if text.startswith(_RT):
                    try:
                        d = json.loads(text[len(_RT) :])
                        trips.append(
                            RoundTrip(
                                str(d["op"]),
                                str(d["link"]),
                                int(d["sent_ns"]),
                                int(d["exchange_ms"]),
                                int(d["recv_ns"]),
                            )
                        )
                    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                        raise RecordingError(f"{p} line {n}: bad round trip: {exc}") from None
                    continue
                topic = _topic(text)
                if topic.startswith(("orderbook.", "publicTrade.")):
                    count += 1
                    if topic not in topics:
                        topics.add(topic)
                        sym = topic.rsplit(".", 1)[-1]
                        if sym not in symbols:
                            symbols.append(sym)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise RecordingError(f"{p}: cannot read recording: {exc}") from None
    return Recording(p, header, symbols, topics, trips, count)
