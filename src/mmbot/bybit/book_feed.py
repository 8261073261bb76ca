"""Market data feed: pybit's public WebSocket with raw orderbook frames handed to obcore.

:class:`BookFeed` subclasses pybit's ``WebSocket`` and overrides ``_on_message`` (see
pybit's raw-message hook): an ``orderbook.*`` frame goes as raw text straight into its
``obcore.Book`` (no ``json.loads``, no pybit book, no deepcopy); every other message
(acks, pongs, other topics) goes through pybit unchanged.

Threading (one writer per book), two modes:

- default: pybit runs every callback on its websocket-client thread, and that thread is
  the only writer of the books. obcore's ``apply`` holds the GIL for the whole frame and is
  transactional, so readers on other threads always see a whole update.
- forward (``on_frame``): frames are not applied here but handed to a consumer that owns
  its own book on its own thread; ``mmbot run`` (:mod:`mmbot.live`) does this, so the
  book, the runner and the order manager share one writer thread.

Failure policy: the hook never raises into pybit (an exception there kills pybit's
socket for good). A sequence gap, a delta while out of sync, or a frame obcore rejects
marks the book invalid, tells ``on_status`` (the risk layer pulls quotes), and
unsubscribes and resubscribes that one topic, which makes Bybit send a fresh snapshot.
A reconnect marks every book invalid until its snapshot arrives.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import obcore
from mmbot.bybit.clients import LocalWebSocket, RawTextFrames
from mmbot.latency import LatencyStats, age_summary_ms
from mmbot.recorder import FrameRecorder

__all__ = ["DISCONNECTED", "BookFeed", "FeedBook"]

log = logging.getLogger(__name__)

#: ``on_status``'s reason when the public connection dropped (not one book's data)
DISCONNECTED = "disconnected"

_SNAPSHOT = b'"type":"snapshot"'
_frame_topic = obcore.frame_topic
_perf_ns, _time_ns, _monotonic_ns = time.perf_counter_ns, time.time_ns, time.monotonic_ns
# the hook's own latency (latency_us) is taken on one message in 8: each sample costs
# about a microsecond, a sixth of a busy feed's whole per-frame cost
_LATENCY_SAMPLE_MASK = 7


@dataclass
class FeedBook:
    """One subscribed book and its health, written only by the feed's socket thread."""

    topic: str
    symbol: str
    depth: int
    book: obcore.Book
    valid: bool = False  # a snapshot arrived and no frame was lost since
    resyncing: bool = False
    resync_started_ns: int = 0
    last_update_ns: int = 0  # time.monotonic_ns() of the last applied frame
    frame_age_ms: float = 0.0  # the last applied frame's age (see BookFeed.clock_offset_ms)
    frames: int = 0
    rejected: int = 0
    resyncs: int = 0
    last_error: str = ""
    sub_req_id: str = ""
    forward: bool = False  # frames go to a consumer that owns its own book

    @property
    def synced(self) -> bool:
        """Whether the book can be trusted: valid, not resyncing, and obcore-synced.

        In forward mode the stream's health only: the consumer's book is its own.
        """
        return self.valid and not self.resyncing and (self.forward or self.book.synced)

    def age_ms(self, now_ns: int | None = None) -> float:
        """Milliseconds since the last applied frame (inf before the first)."""
        if not self.last_update_ns:
            return float("inf")
        return ((now_ns or time.monotonic_ns()) - self.last_update_ns) / 1e6


StatusHandler = Callable[[str, bool, str], None]
UpdateHandler = Callable[[FeedBook, int], None]


class BookFeed(RawTextFrames, LocalWebSocket):
    """pybit public WebSocket feeding raw orderbook frames to obcore books.

    Frames arrive as ``bytes`` (:class:`~mmbot.bybit.clients.RawTextFrames`): book frames
    go to obcore, whose parser validates UTF-8 in C; every other message is decoded with
    the C codec before pybit sees it.

    Parameters
    ----------
    channel_type : str
        ``"linear"`` or ``"spot"``.
    testnet : bool
    ws_base : str or None
        ``ws://127.0.0.1:<port>`` for the local simulator; None for Bybit itself.
    on_update : callable(FeedBook, recv_ns) or None
        Called on the socket thread after each applied frame (keep it short).
    on_status : callable(symbol, synced, reason) or None
        Called when a book becomes invalid (gap, rejected frame, or :data:`DISCONNECTED`)
        and when it is valid again (snapshot applied). The risk layer listens here.
    recorder : FrameRecorder or None
        Receives every raw frame (``mmbot record``).
    on_frame : callable(symbol, raw_bytes, recv_ns) or None
        Forward mode: when given, frames are *not* applied here but handed to this
        callable (e.g. queued to a runner thread that owns the book and calls
        :meth:`resync` on a gap). Resync filtering still applies.
    stale_after_ms : float
        Age after which :meth:`stale` reports a book as stale.
    resync_timeout_s : float
        A resync with no snapshot after this long is retried by the watchdog.
    raw_frames : bool
        False keeps websocket-client's pure-Python UTF-8 check (the benchmark baseline).
    **kwargs
        Passed to pybit's ``WebSocket`` (``retries``, ``ping_interval``...).
    """

    def __init__(
        self,
        channel_type: str = "linear",
        testnet: bool = False,
        *,
        ws_base: str | None = None,
        on_update: UpdateHandler | None = None,
        on_status: StatusHandler | None = None,
        recorder: FrameRecorder | None = None,
        stale_after_ms: float = 5000.0,
        resync_timeout_s: float = 3.0,
        latency_samples: int = 100_000,
        on_frame: Callable[[str, bytes, int], None] | None = None,
        raw_frames: bool = True,
        **kwargs,
    ):
        if channel_type not in ("linear", "spot"):
            raise ValueError(f"channel_type must be 'linear' or 'spot', got {channel_type!r}")
        self.books: dict[str, FeedBook] = {}
        self.by_symbol: dict[str, FeedBook] = {}
        self.on_update = on_update
        self.on_status = on_status
        self.recorder = recorder
        self.on_frame = on_frame
        self.stale_after_ms = stale_after_ms
        self.resync_timeout_s = resync_timeout_s
        self.latency = LatencyStats(max_samples=latency_samples)
        # Frame age: local receive time (wall clock, plus clock_offset_ms: the exchange's
        # clock minus ours, from its server time endpoint) minus the frame's cts (ts when
        # absent). Kept in ns so LatencyStats serves; only frames applied here (not
        # forwarded, whose consumer owns the book and the age).
        self.clock_offset_ms = 0.0
        self.frame_age = LatencyStats(max_samples=latency_samples)
        self.raw_frames = raw_frames
        self.messages = 0
        self.reconnects = 0
        self._lock = threading.RLock()
        self._pending_resub: dict[str, FeedBook] = {}  # unsubscribe req_id -> book
        self._closing = False
        super().__init__(testnet=testnet, channel_type=channel_type, ws_base=ws_base, **kwargs)
        self._watchdog = threading.Thread(target=self._watch, name="feed-watchdog", daemon=True)
        self._watchdog.start()

    # ------------------------------------------------------------------ books

    def add_book(
        self, symbol: str, tick_size: str, lot_size: str, depth: int = 50, kind: str | None = None
    ) -> FeedBook:
        """Create the obcore book for ``symbol`` and subscribe ``orderbook.{depth}.{symbol}``.

        Each symbol is its own subscribe request so one book can be resynced alone
        (pybit's unsubscribe re-sends a whole request).
        """
        topic = f"orderbook.{depth}.{symbol}"
        if topic in self.books:
            raise ValueError(f"already subscribed to {topic}")
        book = obcore.Book(tick_size=tick_size, lot_size=lot_size, kind=kind)
        entry = FeedBook(
            topic=topic, symbol=symbol, depth=depth, book=book, forward=self.on_frame is not None
        )
        with self._lock:
            self.books[topic] = entry
            self.by_symbol[symbol] = entry
            self._subscribe_book(entry)
        return entry

    def add_ticker(self, symbol: str, on_mark: Callable[[str, Decimal], None]) -> None:
        """Subscribe ``tickers.{symbol}`` and call ``on_mark(symbol, mark_price)`` on the
        socket thread whenever the venue's mark price changes (keep it short: enqueue)."""
        last: list[Decimal | None] = [None]

        def on_ticker(message: dict) -> None:
            try:
                text = (message.get("data") or {}).get("markPrice")
                mark = Decimal(text) if text else None
                if mark is not None and mark != last[0]:
                    last[0] = mark
                    on_mark(symbol, mark)
            except Exception:  # never into pybit: it would close the socket for good
                log.exception("feed: bad ticker for %s: %.200s", symbol, message)

        self.ticker_stream(symbol, on_ticker)

    def book(self, symbol: str) -> obcore.Book:
        """Return the obcore book of ``symbol``."""
        return self.by_symbol[symbol].book

    def synced(self, symbol: str) -> bool:
        """Whether ``symbol``'s book is valid right now."""
        return self.by_symbol[symbol].synced

    def stale(self, symbol: str) -> bool:
        """Whether ``symbol``'s book has not changed for ``stale_after_ms``."""
        return self.by_symbol[symbol].age_ms() > self.stale_after_ms

    def _subscribe_book(self, entry: FeedBook):
        self.subscribe(
            f"orderbook.{entry.depth}.{{symbol}}", self._unexpected_callback, entry.symbol
        )
        entry.sub_req_id = self._req_id_of(entry.topic, newest=True) or ""

    def _req_id_of(self, topic: str, newest: bool = False) -> str | None:
        # pybit keys subscriptions by req_id in the order it sent them: right after a
        # subscribe, the newest is ours (a full scan per book made adding N books O(N^2):
        # seconds at 1,000, while the books already subscribed fell behind)
        if newest and self.subscriptions:
            req_id = next(reversed(self.subscriptions))
            if json.loads(self.subscriptions[req_id]).get("args") == [topic]:
                return req_id
        for req_id, text in list(self.subscriptions.items()):
            if json.loads(text).get("args") == [topic]:
                return req_id
        return None

    @staticmethod
    def _unexpected_callback(message):
        # Orderbook frames never reach pybit's dispatcher (see _on_message).
        log.warning("orderbook message reached pybit's path: %.200s", message)

    # ------------------------------------------------------------------ the hook

    def _on_message(self, message):
        recv_ns = _perf_ns()
        self.messages += 1
        try:
            if type(message) is str:  # raw_frames=False: websocket-client decoded it
                message = message.encode()
            if self.recorder is not None:
                self.recorder.write(message.decode())
            # obcore's parser reads the topic (as the engine, recorder and backtest route)
            topic = _frame_topic(message)
            entry = self.books.get(topic)  # None for a frame with no topic
            if entry is not None:
                self._on_book_frame(entry, message, recv_ns)
                return
            if topic is not None and topic.startswith("orderbook."):
                log.warning("frame for unsubscribed topic %r dropped", topic)
                return
            text = message.decode()  # the C codec; invalid UTF-8 is logged below
            if '"op":"unsubscribe"' in text:
                parsed = json.loads(text)
                if parsed.get("req_id") in self._pending_resub:
                    self._on_unsubscribe_ack(parsed)
                    return
            super()._on_message(text)
        except Exception as exc:  # never into pybit: it would kill the socket for good
            log.exception("feed: message handling failed (%s): %.200r", exc, message)

    def _on_book_frame(self, entry: FeedBook, message: bytes, recv_ns: int):
        if entry.resyncing and _SNAPSHOT not in message[:80]:
            return  # deltas from before the resubscribe cannot be trusted
        if self.on_frame is not None:
            entry.frames += 1
            entry.last_update_ns = time.monotonic_ns()
            if entry.resyncing or not entry.valid:
                entry.valid, entry.resyncing = True, False
                self._status(entry, True, "snapshot")
            self.on_frame(entry.symbol, message, recv_ns)
            return
        # the hook starts microseconds after the read, against ages in milliseconds
        recv_wall_ns = _time_ns()
        book = entry.book
        try:
            book.apply(message)
        except obcore.ObcoreError as exc:
            entry.rejected += 1
            self._resync(entry, f"{type(exc).__name__}: {exc}")
            return
        if not self.messages & _LATENCY_SAMPLE_MASK:
            self.latency.add(_perf_ns() - recv_ns)
        stamp_ms = book.cts or book.ts
        if stamp_ms:
            age_ns = int(recv_wall_ns + self.clock_offset_ms * 1e6) - stamp_ms * 1_000_000
            entry.frame_age_ms = age_ns / 1e6
            self.frame_age.add(age_ns)
        entry.frames += 1
        entry.last_update_ns = _monotonic_ns()
        if not entry.valid or entry.resyncing:
            if book.synced:
                entry.valid, entry.resyncing = True, False
                self._status(entry, True, "snapshot")
        if self.on_update is not None:
            try:
                self.on_update(entry, recv_ns)
            except Exception:
                log.exception("feed: on_update raised for %s", entry.topic)

    # ------------------------------------------------------------------ resync

    def _status(self, entry: FeedBook, synced: bool, reason: str):
        if self.on_status is not None:
            try:
                self.on_status(entry.symbol, synced, reason)
            except Exception:
                log.exception("feed: on_status raised for %s", entry.symbol)

    def resync(self, symbol: str, reason: str = "requested"):
        """Mark ``symbol``'s book invalid and resubscribe it for a fresh snapshot."""
        self._resync(self.by_symbol[symbol], reason)

    def _resync(self, entry: FeedBook, reason: str):
        with self._lock:
            entry.last_error = reason
            was_valid = entry.valid and not entry.resyncing
            entry.valid = False
            if entry.resyncing:
                return
            entry.resyncing = True
            entry.resyncs += 1
            entry.resync_started_ns = time.monotonic_ns()
            log.warning("feed: %s out of sync (%s); resubscribing", entry.topic, reason)
            if was_valid:
                self._status(entry, False, reason)
            self._send_unsubscribe(entry)

    def _send_unsubscribe(self, entry: FeedBook):
        req_id = self._req_id_of(entry.topic)
        if req_id is None:
            # Not subscribed any more (an unsubscribe already completed): subscribe again.
            self._subscribe_book(entry)
            return
        self._pending_resub[req_id] = entry
        try:
            self.ws.send(json.dumps({"op": "unsubscribe", "req_id": req_id, "args": [entry.topic]}))
        except Exception as exc:  # socket down: the reconnect resubscribes everything
            log.warning("feed: unsubscribe of %s not sent (%s)", entry.topic, exc)

    def _on_unsubscribe_ack(self, message: dict):
        req_id = str(message.get("req_id"))
        with self._lock:
            entry = self._pending_resub.pop(req_id, None)
            if message.get("success") is True and req_id in self.subscriptions:
                self.subscriptions.pop(req_id)
                topic = entry.topic if entry else None
                if topic is not None:
                    self.callback_directory.pop(topic, None)
            else:
                log.error("feed: unsubscribe %s failed: %s", req_id, message)
            if entry is not None:
                self._subscribe_book(entry)

    def _reset(self):
        # pybit calls _reset() before every (re)connect: every book is suspect until the
        # snapshot that follows the automatic resubscribe. Every book hears DISCONNECTED,
        # also one that was already resyncing or never synced: the link is down for all
        # of them, and their runners mark it so.
        super()._reset()
        if not getattr(self, "books", None):
            return
        self.reconnects += 1
        with self._lock:
            self._pending_resub.clear()
            for entry in self.books.values():
                entry.valid = False
                entry.resyncing = True
                entry.resync_started_ns = time.monotonic_ns()
                self._status(entry, False, DISCONNECTED)

    def _watch(self):
        while not self._closing:
            time.sleep(0.25)
            try:
                now = time.monotonic_ns()
                for entry in list(self.books.values()):
                    if (
                        entry.resyncing
                        and self.is_connected()
                        and now - entry.resync_started_ns > self.resync_timeout_s * 1e9
                    ):
                        log.warning(
                            "feed: no snapshot for %s after %.1f s; retrying",
                            entry.topic,
                            self.resync_timeout_s,
                        )
                        with self._lock:
                            entry.resync_started_ns = now
                            self._send_unsubscribe(entry)
            except Exception:
                log.exception("feed watchdog")

    # ------------------------------------------------------------------ stats

    def latency_us(self) -> dict:
        """Return frame-received-to-book-updated latency percentiles in microseconds,
        sampled on one message in 8 (the frames' ages, :meth:`frame_age_ms`, are all
        recorded)."""
        return self.latency.summary()

    def frame_age_ms(self) -> dict:
        """Return the applied frames' ages (see ``clock_offset_ms``): p50/p99/max in ms."""
        return age_summary_ms(self.frame_age)

    def exit(self):
        self._closing = True
        super().exit()
