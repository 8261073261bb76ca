"""In-process simulated venue: the matching engine behind a simulated clock and latencies.

``SimVenue`` is an event-driven simulation. Three kinds of things happen at simulated
times, strictly in time order (ties in the order they were scheduled):

* a market frame reaches the exchange at its own ``ts`` and is applied to the engine's
  market book (which may fill resting bot orders);
* the same frame reaches the bot ``md_latency_ms`` later (:meth:`SimVenue.stream` yields it);
* a bot request reaches the exchange ``order_latency_ms`` after it was sent, and the
  resulting events (acks, fills, position) reach the bot ``response_latency_ms`` after the
  exchange produced them, through the handler set with :meth:`set_handler`.

Optional jitter (uniform in ``[0, jitter_ms]``) is drawn from ``random.Random(seed)``, so a
run is deterministic for a given seed and input. Nothing reads the wall clock.

Requests are counted where the local simulator counts them: at the exchange, in Bybit's
rolling one-second windows per class (create, amend, cancel; cancel-all is a cancel) at
the venue's :attr:`rate_limits`. One that would be one too many is refused with retCode
10006. The bot spaces its sends, but varying latencies can bunch them on arrival. A batch
is one request, as on Bybit: one latency, and its orders admitted to the window together
or refused together.

Latency models
--------------
* :class:`ConstantLatency`: fixed order entry, response and market-data delays.
* :class:`ReplayLatency`: the bot's own recorded order round trips (sent, exchange time,
  received; see :mod:`mmbot.recorder`). The entry and response latencies of a request
  sent at ``t`` are interpolated linearly between the recorded round trips sent just
  before and just after ``t`` (the first/last one outside the recorded span), as
  hftbacktest's ``IntpOrderLatency`` does; an entry latency is at least 1 ms, the
  simulated clock's resolution. Market data reaches the bot at each frame's
  recorded local receive time (receive time minus exchange ``ts``, never negative);
  frames without one use ``md_fallback_ms``.

Examples
--------
>>> from obcore.synthetic import generate_frames                      # doctest: +SKIP
>>> venue = SimVenue(engine, order_latency_ms=5, md_latency_ms=2)    # doctest: +SKIP
>>> for frame, now_ms in venue.stream(generate_frames(messages=1000)):  # doctest: +SKIP
...     runner.on_frame(frame, now_ms)
"""

from __future__ import annotations

import heapq
import random
import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import obcore
from mmbot.sim.dispatch import RateLimiter
from mmbot.sim.engine import MarketDataError, MatchingEngine, OrderRejected
from mmbot.sim.protocol import RET_MSG, RetCode
from mmbot.types import (
    AmendRequest,
    CancelRequest,
    ConnectionEvent,
    Order,
    OrderRequest,
    Position,
    RequestError,
)
from mmbot.venue.base import RateLimits, Venue

__all__ = ["ConstantLatency", "MarketItem", "ReplayLatency", "SimVenue"]

# A raw market frame, or ``(recv_ns, frame)`` with its recorded local receive time (or None).
MarketItem = str | bytes | tuple[int | None, str | bytes]


class ConstantLatency:
    """Fixed delays in ms: bot -> exchange (``order_ms``), exchange -> bot
    (``response_ms``), market data exchange -> bot (``md_ms``)."""

    def __init__(self, order_ms: int, response_ms: int, md_ms: int) -> None:
        for name, value in (("order_ms", order_ms), ("response_ms", response_ms), ("md_ms", md_ms)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.order_ms, self.response_ms_, self.md_ms = int(order_ms), int(response_ms), int(md_ms)

    def entry(self, now_ms: int) -> int:
        return self.order_ms

    def response(self, now_ms: int) -> int:
        return self.response_ms_

    def feed(self, ts_ms: int, recv_ns: int | None) -> int:
        return self.md_ms

    def describe(self) -> dict:
        return {
            "model": "constant",
            "order_ms": self.order_ms,
            "response_ms": self.response_ms_,
            "market_data_ms": self.md_ms,
        }


class ReplayLatency:
    """Recorded latencies (see the module docstring).

    Parameters
    ----------
    round_trips : sequence of mmbot.recorder.RoundTrip
        At least one.
    md_fallback_ms : int
        Market-data delay of frames without a recorded receive time.
    """

    def __init__(self, round_trips, md_fallback_ms: int = 0) -> None:
        rows = sorted(
            (rt.sent_ns / 1e6, max(rt.entry_ms, 0.0), max(rt.response_ms, 0.0))
            for rt in round_trips
        )
        if not rows:
            raise ValueError(
                "latency replay needs recorded order round trips; the recording "
                "has none (record with `mmbot run --record FILE`)"
            )
        self._t = [r[0] for r in rows]
        self._entry = [r[1] for r in rows]
        self._resp = [r[2] for r in rows]
        self.md_fallback_ms = md_fallback_ms
        self.count = len(rows)

    def _interp(self, values: list[float], now_ms: int) -> int:
        t = self._t
        i = bisect_right(t, now_ms)
        if i == 0:
            return round(values[0])
        if i == len(t):
            return round(values[-1])
        t0, t1 = t[i - 1], t[i]
        v0, v1 = values[i - 1], values[i]
        if t1 == t0:
            return round(v1)
        return round(v0 + (v1 - v0) * (now_ms - t0) / (t1 - t0))

    def entry(self, now_ms: int) -> int:
        # at least one tick of the millisecond clock: a request never reaches the exchange
        # in the instant the bot decided it (rounding sub-ms latencies to 0 did, and made
        # replayed backtests fill ~30% more than the sessions they replayed)
        v = self._interp(self._entry, now_ms)
        return v if v > 1 else 1

    def response(self, now_ms: int) -> int:
        return self._interp(self._resp, now_ms)

    def feed(self, ts_ms: int, recv_ns: int | None) -> int:
        if recv_ns is None:
            return self.md_fallback_ms
        delay = recv_ns // 1_000_000 - ts_ms
        return delay if delay > 0 else 0

    def describe(self) -> dict:
        return {
            "model": "replay",
            "round_trips": self.count,
            "entry_ms_median": round(sorted(self._entry)[self.count // 2], 3),
            "response_ms_median": round(sorted(self._resp)[self.count // 2], 3),
            "market_data": "recorded receive time - exchange ts",
            "market_data_fallback_ms": self.md_fallback_ms,
        }


_TS_RE = re.compile(rb'"ts":\s*(\d+)')
_TS_RE_STR = re.compile(r'"ts":\s*(\d+)')

# heap item kinds, ordered only by (time, seq)
_MD_EXCHANGE = 0
_MD_BOT = 1
_REQUEST = 2
_DELIVER = 3
_TIMER = 4


class SimVenue(Venue):
    """A :class:`~mmbot.venue.base.Venue` backed by a :class:`MatchingEngine`.

    Parameters
    ----------
    engine : MatchingEngine
    order_latency_ms : int
        Bot -> exchange delay of every request.
    response_latency_ms : int or None
        Exchange -> bot delay of order/execution/position events (default: the order
        latency).
    md_latency_ms : int
        Exchange -> bot delay of market frames.
    jitter_ms : int
        Extra uniform random delay ``0..jitter_ms`` added to each latency, seeded.
    seed : int
    latency : ConstantLatency or ReplayLatency, optional
        Replaces the three constant latencies above.
    instrument_info : dict or None
        What :meth:`instrument_info` returns (a Bybit ``get_instruments_info`` list item);
        by default one is made from the engine's scales.
    rate_limits : RateLimits or None
        The exchange's per-account order limits; None: Bybit's default for the category.
    """

    def __init__(
        self,
        engine: MatchingEngine,
        *,
        order_latency_ms: int = 5,
        response_latency_ms: int | None = None,
        md_latency_ms: int = 2,
        jitter_ms: int = 0,
        seed: int = 0,
        latency: ConstantLatency | ReplayLatency | None = None,
        instrument_info: dict | None = None,
        rate_limits: RateLimits | None = None,
    ) -> None:
        self.category = engine.category
        super().__init__()
        if rate_limits is not None:  # an account above Bybit's default tier
            self.rate_limits = rate_limits
        for name, value in (
            ("order_latency_ms", order_latency_ms),
            ("md_latency_ms", md_latency_ms),
            ("jitter_ms", jitter_ms),
        ):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if response_latency_ms is not None and response_latency_ms < 0:
            raise ValueError(f"response_latency_ms must be >= 0, got {response_latency_ms}")
        self.engine = engine
        #: every symbol's engine (:meth:`add_engine`); one clock and one latency model
        self.engines = {engine.symbol: engine}
        self.order_latency_ms = int(order_latency_ms)
        self.response_latency_ms = int(
            order_latency_ms if response_latency_ms is None else response_latency_ms
        )
        self.md_latency_ms = int(md_latency_ms)
        self.latency = (
            latency
            if latency is not None
            else ConstantLatency(
                self.order_latency_ms, self.response_latency_ms, self.md_latency_ms
            )
        )
        self.jitter_ms = int(jitter_ms)
        self._rng = random.Random(seed)
        self._info = instrument_info
        self._now_ms = 0
        # (time, seq, kind, payload); the payload's type depends on the kind (see stream())
        self._heap: list[tuple[int, int, int, Any]] = []
        self._seq = 0
        self._connected = True
        self._last_arrival = {_MD_BOT: 0, _REQUEST: 0, _DELIVER: 0}
        self.requests_sent = 0
        self.request_errors = 0
        self.frames_delivered = 0
        self._limiter = RateLimiter(self.rate_limits.per_class())

    # ------------------------------------------------------------------ Venue API
    def now_ms(self) -> int:
        """Return the simulated clock (epoch ms of the event being processed)."""
        return self._now_ms

    @property
    def connected(self) -> bool:
        """Whether the simulated trading connection is up (see :meth:`set_connected`)."""
        return self._connected

    def set_connected(self, connected: bool, reason: str = "") -> None:
        """Simulate a drop or recovery of the trading connection; emits a ConnectionEvent."""
        if connected != self._connected:
            self._connected = connected
            self.emit(
                ConnectionEvent(connected, reason or ("up" if connected else "down"), self._now_ms)
            )

    def instrument_info(self, symbol: str) -> dict:
        """Return a Bybit-shaped instrument for the engine's symbol."""
        eng = self._engine(symbol)
        if self._info is not None and eng is self.engine:
            return self._info
        lot = eng.lot_size
        if eng.category == "spot":
            lot_filter = {
                "basePrecision": lot,
                "minOrderQty": eng.book.size_str(eng.min_qty_lots),
                "maxLimitOrderQty": eng.book.size_str(eng.max_qty_lots or 10**12),
                "minOrderAmt": str(eng.min_notional),
            }
        else:
            lot_filter = {
                "qtyStep": lot,
                "minOrderQty": eng.book.size_str(eng.min_qty_lots),
                "maxOrderQty": eng.book.size_str(eng.max_qty_lots or 10**12),
                "minNotionalValue": str(eng.min_notional),
            }
        return {
            "symbol": eng.symbol,
            "status": "Trading",
            "priceFilter": {"tickSize": eng.tick_size},
            "lotSizeFilter": lot_filter,
        }

    def open_orders(self, symbol: str) -> list[Order]:
        """Return the engine's open orders now (no latency: a synchronous REST query)."""
        return self._engine(symbol).open_orders()

    def order_status(self, symbol: str, order_link_id: str) -> Order | None:
        """Return the engine's state of an order by client id now, or None."""
        eng = self._engine(symbol)
        try:
            return eng.get_order(order_link_id=order_link_id)
        except OrderRejected:
            return None

    def executions(self, symbol: str, start_ms: int) -> list:
        """Return the engine's executions since ``start_ms`` (a REST read-back)."""
        return self._engine(symbol).executions_since(start_ms)

    def position(self, symbol: str) -> Position:
        """Return the engine's position now."""
        return self._engine(symbol).position()

    def place(self, request: OrderRequest) -> None:
        """Schedule a new order to reach the engine after the order latency."""
        self._engine(request.symbol)
        self._send("create", (request,))

    def amend(self, request: AmendRequest) -> None:
        """Schedule an amend to reach the engine after the order latency."""
        self._engine(request.symbol)
        self._send("amend", (request,))

    def cancel(self, request: CancelRequest) -> None:
        """Schedule a cancel to reach the engine after the order latency."""
        self._engine(request.symbol)
        self._send("cancel", (request,))

    def cancel_all(self, symbol: str) -> None:
        """Schedule a cancel of every open order."""
        self._engine(symbol)
        self._send("cancel_all", (symbol,))

    def place_batch(self, requests: Sequence[OrderRequest]) -> None:
        """Schedule several new orders as one request (see :meth:`_send_batch`)."""
        self._send_batch("create", requests)

    def amend_batch(self, requests: Sequence[AmendRequest]) -> None:
        """Schedule several amends as one request (see :meth:`_send_batch`)."""
        self._send_batch("amend", requests)

    def cancel_batch(self, requests: Sequence[CancelRequest]) -> None:
        """Schedule several cancels as one request (see :meth:`_send_batch`)."""
        self._send_batch("cancel", requests)

    def _send_batch(self, op: str, requests: Sequence) -> None:
        # Bybit's batch endpoints, and the local simulator, take a batch as one request:
        # one entry latency, one admission of all its orders to the rate window (refused
        # whole with 10006), then each order on its own
        self._check_batch(requests)
        for request in requests:
            self._engine(request.symbol)
        if requests:
            self._send(op, tuple(requests))

    # ------------------------------------------------------------------ driving the clock
    def stream(
        self,
        frames: Iterable[MarketItem],
        *,
        timer_ms: int = 0,
        until_ms: int | None = None,
    ) -> Iterator[tuple[str | bytes | None, int]]:
        """Run the simulation over ``frames`` and yield what the bot sees, in time order.

        Yields ``(frame, now_ms)`` when a market frame reaches the bot, and
        ``(None, now_ms)`` every ``timer_ms`` of simulated time (if > 0) so the caller can
        run periodic checks. Venue events are delivered to the handler between yields.
        After the last frame, pending requests and events are still processed.

        Each frame's exchange time is its ``"ts"`` field; frames must be in time order.
        An item may also be ``(recv_ns, frame)``: the frame's recorded local receive time
        (or None), which :class:`ReplayLatency` turns into its market-data delay.
        """
        it = iter(frames)
        heap = self._heap
        pending = self._pull(it)
        next_timer = None
        if timer_ms > 0 and pending is not None:
            next_timer = pending[0] + timer_ms
        while True:
            if pending is not None and (not heap or pending[0] < heap[0][0]):
                ts, frame, recv_ns = pending
                self._push(ts, _MD_EXCHANGE, (frame, self.latency.feed(ts, recv_ns)))
                pending = self._pull(it)
                if pending is not None and pending[0] < ts:
                    raise MarketDataError(
                        f"market frames must be in time order: ts {pending[0]} after {ts}"
                    )
                continue
            if next_timer is not None and (not heap or next_timer < heap[0][0]):
                if pending is None and not heap:
                    break
                self._push(next_timer, _TIMER, None)
                next_timer += timer_ms
                continue
            if not heap:
                break
            t, _, kind, payload = heapq.heappop(heap)
            if until_ms is not None and t > until_ms:
                heapq.heappush(heap, (t, _, kind, payload))
                break
            self._now_ms = t
            if kind == _MD_EXCHANGE:
                frame, feed_ms = payload
                events = self._engine_of(frame).on_frame(frame, t)
                self._respond(events)
                self._push(self._arrival(_MD_BOT, feed_ms), _MD_BOT, frame)
            elif kind == _MD_BOT:
                self.frames_delivered += 1
                yield payload, t
            elif kind == _REQUEST:
                self._execute(payload)
            elif kind == _DELIVER:
                self.emit(payload)
            else:  # _TIMER
                yield None, t

    def advance(self, until_ms: int) -> None:
        """Process queued requests and events up to ``until_ms`` without market data."""
        for _ in self.stream((), until_ms=until_ms):
            pass
        self._now_ms = max(self._now_ms, until_ms)

    def latency_description(self) -> dict:
        """Name the latency model and its parameters (for reports)."""
        return {**self.latency.describe(), "jitter_ms": self.jitter_ms}

    # ------------------------------------------------------------------ internals
    def add_engine(self, engine: MatchingEngine) -> None:
        """Trade ``engine``'s symbol too, on the same clock: market frames go to the
        engine of their topic's symbol, requests to the engine of theirs."""
        if engine.symbol in self.engines:
            raise ValueError(f"SimVenue already trades {engine.symbol!r}")
        if engine.category != self.category:
            raise ValueError(f"{engine.symbol} is {engine.category}, this venue {self.category}")
        self.engines[engine.symbol] = engine

    def _engine(self, symbol: str) -> MatchingEngine:
        eng = self.engines.get(symbol)
        if eng is None:
            names = ", ".join(repr(n) for n in self.engines)
            raise ValueError(f"SimVenue trades {names} only, got {symbol!r}")
        return eng

    def _engine_of(self, frame: str | bytes) -> MatchingEngine:
        if len(self.engines) == 1:
            return self.engine
        topic = obcore.frame_topic(frame) or ""
        eng = self.engines.get(topic.rpartition(".")[2])
        if eng is None:
            raise MarketDataError(f"market frame of no simulated symbol: topic {topic!r}")
        return eng

    def _arrival(self, channel: int, base_ms: int) -> int:
        """Arrival time of a message sent now on ``channel`` (FIFO per channel, like a socket)."""
        t = self._now_ms + base_ms
        if self.jitter_ms:
            t += self._rng.randint(0, self.jitter_ms)
        t = max(t, self._last_arrival[channel])
        self._last_arrival[channel] = t
        return t

    def _push(self, t: int, kind: int, payload: object) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, kind, payload))

    def _pull(self, it: Iterator[MarketItem]) -> tuple[int, str | bytes, int | None] | None:
        for item in it:
            if isinstance(item, tuple):
                recv_ns, frame = item
            else:
                recv_ns, frame = None, item
            m: re.Match[bytes] | re.Match[str] | None
            if isinstance(frame, bytes):
                m = _TS_RE.search(frame)
            else:
                m = _TS_RE_STR.search(frame)
            if m is None:
                raise MarketDataError(f'market frame has no "ts" field: {frame[:80]!r}')
            return int(m.group(1)), frame, recv_ns
        return None

    def _send(self, op: str, items: tuple) -> None:
        """Schedule one request: ``items`` holds its one order request (a symbol for
        ``cancel_all``), or a batch's."""
        if not self._connected:
            message = "simulated venue is disconnected"
            self._respond([self._refusal(op, req, 10016, message) for req in items])
            return
        self.requests_sent += 1
        self._push(self._arrival(_REQUEST, self.latency.entry(self._now_ms)), _REQUEST, (op, items))

    def _execute(self, request: tuple[str, tuple]) -> None:
        op, items = request
        admitted, _ = self._limiter.admit(
            "cancel" if op == "cancel_all" else op, self._now_ms, len(items)
        )
        if not admitted:
            code, message = RetCode.RATE_LIMIT, RET_MSG[RetCode.RATE_LIMIT]
            self._respond([self._refusal(op, req, code, message) for req in items])
            return
        events: list = []
        for req in items:
            try:
                events += self._apply(op, req)
            except OrderRejected as exc:
                events.append(self._refusal(op, req, exc.code, exc.message))
        self._respond(events)

    def _apply(self, op: str, req: Any) -> list:
        """Run one admitted request on its engine now; return the events (raises
        :class:`OrderRejected`)."""
        eng = self._engine(req if op == "cancel_all" else req.symbol)
        now = self._now_ms
        if op == "create":
            return eng.place(
                order_link_id=req.order_link_id,
                side=req.side,
                price_ticks=req.price_ticks,
                qty_lots=req.qty_lots,
                now_ms=now,
                post_only=req.post_only,
                reduce_only=req.reduce_only,
                order_type=req.order_type,
            )
        if op == "amend":
            return eng.amend(
                now_ms=now,
                order_link_id=req.order_link_id,
                order_id=req.order_id,
                price_ticks=req.price_ticks,
                qty_lots=req.qty_lots,
            )
        if op == "cancel":
            return eng.cancel(now_ms=now, order_link_id=req.order_link_id, order_id=req.order_id)
        return eng.cancel_all(now_ms=now)

    def _refusal(self, op: str, req: object, code: int, message: str) -> RequestError:
        self.request_errors += 1
        return RequestError(op, getattr(req, "order_link_id", ""), code, message, self._now_ms)

    def _respond(self, events: list) -> None:
        if not events:
            return
        t = self._arrival(_DELIVER, self.latency.response(self._now_ms))
        for event in events:
            self._push(t, _DELIVER, event)
