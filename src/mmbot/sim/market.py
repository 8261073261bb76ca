"""Market data: sources of raw frames, the implied public trades, and what is published.

Each symbol's market is an iterator of raw Bybit frames (``obcore.synthetic`` or a
recording). The one market book per symbol is the matching engine's ``obcore.Book``;
this module never keeps another. From each book delta it derives the trades the delta
implies (:func:`touch_trades`), publishes them and feeds them to the engine *before* the
delta, then lets the engine apply the delta, and finally publishes what changed on every
subscribed topic:

* ``orderbook.{1,50,200,1000}.{symbol}``: a snapshot on subscribe, then deltas with a
  contiguous ``u`` of the topic's own (level 1: snapshots only), as on Bybit;
* ``publicTrade.{symbol}``: the implied trades, or a recording's own trades;
* ``tickers.{symbol}``: at most every 100 ms, with the mark price (the mid rounded to
  the tick grid) and the configured funding rate;
* ``kline.{interval}.{symbol}``: the open bar at most every second, and each bar once
  more with ``confirm: true`` when it closes (bars are built from the trades).

Sending is the caller's business: :class:`MarketData` returns ``(topic, text)`` pairs.
"""

from __future__ import annotations

import functools
import itertools
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import orjson

import obcore
from mmbot.sim import protocol as P
from mmbot.sim.account import SimAccount, SimSymbol
from mmbot.sim.protocol import Scale

__all__ = ["MarketData", "Topic", "synthetic_source", "recording_source", "touch_trades"]

ORDERBOOK_DEPTHS = {"linear": (1, 50, 200, 1000), "spot": (1, 50, 200, 1000)}
TICKER_INTERVAL_MS = 100
KLINE_PUSH_MS = 1000
#: Bybit kline interval -> minutes
KLINE_INTERVALS = {
    "1": 1,
    "3": 3,
    "5": 5,
    "15": 15,
    "30": 30,
    "60": 60,
    "120": 120,
    "240": 240,
    "360": 360,
    "720": 720,
    "D": 1440,
    "W": 10080,
}
FUNDING_INTERVAL_MS = 8 * 3600 * 1000


def synthetic_source(
    sym: SimSymbol,
    *,
    seed: int = 0,
    depth: int = 200,
    interval_ms: int = 20,
    start_price: str = "65000.0",
) -> Iterator[str]:
    """Return an endless ``obcore.synthetic`` frame stream for ``sym``."""
    from obcore.synthetic import generate_frames  # noqa: PLC0415  (import cost on demand)

    return generate_frames(
        symbol=sym.symbol,
        tick_size=sym.tick_size,
        lot_size=sym.lot_size,
        depth=depth,
        messages=10**12,
        seed=seed,
        start_price=start_price,
        interval_ms=interval_ms,
        category=sym.category,
    )


def recording_source(path: str, symbol: str) -> Callable[[], Iterator[str]]:
    """Return a source replaying one symbol's ``orderbook``/``publicTrade`` frames of a
    recording (``obcore.recording`` format), checked up front. The market stands still
    after the last frame.

    Raises
    ------
    ValueError
        The file cannot be read or holds no orderbook frame of ``symbol``.
    """
    from obcore.recording import read_frames  # noqa: PLC0415

    frames = []
    try:
        for raw in read_frames(path):
            topic = obcore.frame_topic(raw) or ""
            if topic.endswith(f".{symbol}") and topic.startswith(("orderbook.", "publicTrade.")):
                frames.append(raw)
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise ValueError(f"cannot read recording {path}: {exc}") from exc
    if not any((obcore.frame_topic(f) or "").startswith("orderbook.") for f in frames):
        raise ValueError(f"recording {path} has no orderbook frames of {symbol}")
    return lambda: iter(frames)


def touch_trades(
    book, delta_b: dict[int, int], delta_a: dict[int, int]
) -> list[tuple[str, int, int]]:
    """Return the trades a book delta implies: ``[(taker_side, price_ticks, lots)]``.

    ``book`` is the market book *before* the delta; ``delta_b``/``delta_a`` map each
    changed price to its new size (0 deletes). A level that shrank or vanished at or
    beyond the new touch was traded away: bids by a ``Sell`` taker, asks by a ``Buy``
    taker, best price first, as one sweeping order would. Reductions deeper in the book
    are cancels, not trades.
    """
    out: list[tuple[str, int, int]] = []
    for side, delta, taker, better in (("b", delta_b, "Sell", max), ("a", delta_a, "Buy", min)):
        if not delta:
            continue
        new_best = _new_best(book, side, delta, better)
        for t in sorted(delta, reverse=side == "b"):
            if new_best is not None and (t < new_best if side == "b" else t > new_best):
                break  # best first: the rest of the delta is deeper still, cancels
            gone = book.size_at(side, t) - delta[t]
            if gone > 0:
                out.append((taker, t, gone))
    return out


def _new_best(book, side: str, delta: dict[int, int], better) -> int | None:
    """Return the side's best price after ``delta`` (None: the side empties); ``book``
    is before it. Reads past the book's best level only when the delta deleted it and
    put nothing better (a touch taken): the top-N read costs a few µs a frame."""
    candidates = [t for t, lots in delta.items() if lots > 0]
    best = book.best_bid() if side == "b" else book.best_ask()
    if best is None:
        return better(candidates) if candidates else None
    lots = delta.get(best[0])
    if lots is None:  # the delta leaves the best level alone
        candidates.append(best[0])
        return better(candidates)
    if lots > 0:  # it stays (resized): every level the delta left alone is worse
        return better(candidates)
    if candidates:
        top = better(candidates)
        if better(top, best[0]) == top:  # better than the deleted best level
            return top
    # The best level the delta leaves alone is among the top len(delta) + 1: walking
    # book.levels() instead built every level of the side in Python, per frame.
    for t, _ in (book.bids if side == "b" else book.asks)(len(delta) + 1).tolist():
        if t not in delta:
            candidates.append(t)
            break
    return better(candidates) if candidates else None


def _tick_direction(price: int, last: int | None, last_dir: str) -> str:
    if last is None or price > last:
        return "PlusTick"
    if price < last:
        return "MinusTick"
    return "ZeroPlusTick" if last_dir in ("PlusTick", "ZeroPlusTick") else "ZeroMinusTick"


def _strip(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def _diff(old: dict, new: dict) -> dict:
    """Return ``{ticks: lots}`` that turns ``old`` into ``new`` (0 deletes; unordered).

    Set operations on the dict views run in C."""
    out = dict.fromkeys(old.keys() - new.keys(), 0)
    out.update(new.items() - old.items())
    return out


class _View(dict):
    """One side of an ``orderbook`` topic's view (ticks -> lots), with its worst tick
    cached in ``worst`` (None: not known): finding it was a scan of the view on every
    frame, and most frames leave it where it was."""

    __slots__ = ("worst",)

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.worst: int | None = None


def _advance(view: dict, delta: dict, top, depth: int, bids: bool) -> dict:
    """Move a side's top-``depth`` view by the delta its book just applied, in place;
    return ``{ticks: lots}`` that turns the old view into the new one (0 deletes).

    ``top(n)`` reads the book after the delta (``book.bids``/``book.asks``). The view
    holds every book level at or better than its worst one, so a change there lands in
    it, a change beyond it does not, and what the delta pushed out is the worst of the
    view, what it uncovered the book's next levels. Costs O(changes), where reading
    and diffing the whole view cost O(depth), on every frame of every topic. A
    :class:`_View` keeps its worst tick between calls.
    """
    out: dict[int, int] = {}
    if not delta:
        return out
    full = len(view) >= depth
    worst = 0
    if full:
        cached = getattr(view, "worst", None)
        worst = cached if cached is not None else (min(view) if bids else max(view))
    fresh = []
    for t, lots in delta.items():
        if full and (t < worst if bids else t > worst):
            continue  # beyond the view: neither in it nor entering it (no dict lookup)
        old = view.get(t)
        if old is not None:
            if not lots:
                del view[t]
                out[t] = 0
            elif old != lots:
                view[t] = out[t] = lots
        elif lots:
            view[t] = out[t] = lots
            fresh.append(t)
    new_worst: int | None = worst if full and worst in view else None
    extra = len(view) - depth
    if extra > 0:
        pick = min if bids else max
        for _ in range(extra):
            # an insert lands better than the worst level, so while the worst is still
            # in the view it is the first to go (no scan)
            t = worst if full and worst in view else pick(view)
            del view[t]
            if t in fresh:
                del out[t]  # in and out in one frame: its subscribers never saw it
            else:
                out[t] = 0
        new_worst = None
    elif extra < 0 and full:
        # only the uncovered rows become Python lists (all of them: ~6 µs at depth 50)
        rows = top(depth)[len(view) :].tolist()
        for t, lots in rows:
            view[t] = out[t] = lots
        new_worst = rows[-1][0] if rows and len(view) >= depth else None
    if isinstance(view, _View):
        view.worst = new_worst
    return out


@dataclass
class Topic:
    """One public topic: ``orderbook`` (its own ``u`` and view), ``publicTrade`` or
    ``tickers``; ``subscribers`` are opaque connection objects."""

    name: str
    kind: str
    symbol: str
    depth: int = 0
    u: int = 0
    cs: int = 0
    view_b: dict = field(default_factory=_View)
    view_a: dict = field(default_factory=_View)
    subscribers: set = field(default_factory=set)
    skip_next: int = 0
    interval: str = ""
    last_ms: int = 0
    bar_start: int | None = None


class MarketData:
    """Per-symbol market state derived from the engines' books, and the public topics."""

    def __init__(
        self, symbols: dict[str, SimSymbol], account: SimAccount, *, funding_rate: str = "0.0001"
    ):
        self.symbols = symbols
        self.account = account
        self.funding_rate = P.dec(Decimal(funding_rate))
        self.topics: dict[str, Topic] = {}
        #: the topics of each symbol: a frame publishes on its own symbol's topics
        #: without walking every topic of every symbol
        self._symbol_topics: dict[str, list[Topic]] = {s: [] for s in symbols}
        self.seq = iter(range(1_000_000, 10**18))
        self.recorded_trades: set[str] = set()
        self._last_trade: dict[str, tuple[int | None, str]] = {
            s: (None, "PlusTick") for s in symbols
        }
        self.volume = {s: 0 for s in symbols}
        #: traded notional in ticks x lots (exact, and integer sums are cheap per trade)
        self.turnover_units = {s: 0 for s in symbols}
        self._ticker_ms = {s: 0 for s in symbols}
        #: newest last: ``(id, price, size, side, ts_ms)`` of the last public trades
        self._recent: dict[str, deque] = {s: deque(maxlen=1000) for s in symbols}
        #: per symbol, minute start (ms) -> [open, high, low, close, volume lots,
        #: turnover ticks x lots]
        self._minutes: dict[str, dict[int, list]] = {s: {} for s in symbols}
        self.frames_sent = 0
        self.trades_sent = 0
        #: each engine's market book (an engine keeps its book for life)
        self._books = {s: eng.book for s, eng in account.engines.items()}
        #: per symbol: the book's price and size formatters, and whether prices strip
        self._formats = {
            s: (book.price_str, book.size_str, account.price[s].strip)
            for s, book in self._books.items()
        }
        self._ticker_names = {s: f"tickers.{s}" for s in symbols}
        # Trade ids are UUIDs, as Bybit's: a random one per simulator whose last 12 hex
        # digits count (uuid4() per trade was a tenth of the implied-trade cost)
        self._trade_id_prefix = str(uuid.uuid4())[:24]
        self._trade_ids = itertools.count(1)

    def book(self, symbol: str):
        """Return the symbol's one market book (the engine's ``obcore.Book``)."""
        return self._books[symbol]

    def scales(self, symbol: str) -> tuple[Scale, Scale]:
        return self.account.price[symbol], self.account.qty[symbol]

    def notional(self, symbol: str, units: int) -> Decimal:
        """Return ``units`` ticks x lots as the exact quote amount."""
        ps, qs = self.scales(symbol)
        return Decimal(units) * ps.to_decimal(1) * qs.to_decimal(1)

    def price_text(self, symbol: str, ticks: int) -> str:
        """Return ``ticks`` as Bybit's price text (the same as :meth:`Scale.to_str`,
        formatted in C by the obcore book)."""
        text = self.book(symbol).price_str(ticks)
        return _strip(text) if self.account.price[symbol].strip else text

    # ------------------------------------------------------------------ topics
    def topic(self, name, category: str) -> Topic | None:
        """Return the topic ``name`` of a ``category`` stream, or None if Bybit has none."""
        if not isinstance(name, str):
            return None
        parts = name.split(".")
        interval = ""
        if len(parts) == 2 and parts[0] in ("publicTrade", "tickers"):
            kind, depth, symbol = parts[0], 0, parts[1]
        elif len(parts) == 3 and parts[0] == "kline" and parts[1] in KLINE_INTERVALS:
            kind, depth, interval, symbol = "kline", 0, parts[1], parts[2]
        elif len(parts) == 3 and parts[0] == "orderbook" and parts[1].isdigit():
            kind, depth, symbol = "orderbook", int(parts[1]), parts[2]
            if depth not in ORDERBOOK_DEPTHS[category]:
                return None
        else:
            return None
        sym = self.symbols.get(symbol)
        if sym is None or sym.category != category:
            return None
        topic = self.topics.get(name)
        if topic is None:
            topic = self.topics[name] = Topic(name, kind, symbol, depth, interval=interval)
            self._symbol_topics[symbol].append(topic)
        return topic

    def on_subscribe(self, topic: Topic, ready: bool, now_ms: int) -> str | None:
        """Prepare a new subscriber; return the snapshot text to send it (or None)."""
        if topic.kind == "orderbook":
            if not topic.subscribers:
                topic.view_b, topic.view_a = self._view(topic)
            return self._snapshot_text(topic, now_ms) if ready else None
        if topic.kind == "tickers" and ready:
            return P.ticker_frame(
                self.symbols[topic.symbol].category,
                topic.symbol,
                self._ticker(topic.symbol, now_ms),
                0,
                now_ms,
            )
        return None

    def _view(self, topic: Topic):
        # top-N straight from the obcore book: tolist() makes Python ints in C, where a
        # per-element int() of numpy scalars cost most of the publish path
        book = self.book(topic.symbol)
        return _View(book.bids(topic.depth).tolist()), _View(book.asks(topic.depth).tolist())

    def levels(self, symbol: str, items) -> list:
        """Return ``[[price, size], ...]`` strings; a delete is size "0" exactly, as Bybit.

        Formatted by the obcore book (exact, from integers, in C; the same text as
        :class:`Scale`), with the trailing zeros of prices stripped on spot as Bybit does.
        """
        price_str, size_str, strip = self._formats[symbol]
        if strip:
            return [[_strip(price_str(t)), size_str(lots) if lots else "0"] for t, lots in items]
        return [[price_str(t), size_str(lots) if lots else "0"] for t, lots in items]

    def _snapshot_text(self, topic: Topic, now_ms: int) -> str:
        bids = self.levels(topic.symbol, sorted(topic.view_b.items(), reverse=True))
        asks = self.levels(topic.symbol, sorted(topic.view_a.items()))
        return P.orderbook_frame(
            topic.name,
            "snapshot",
            topic.symbol,
            bids,
            asks,
            topic.u,
            next(self.seq),
            now_ms,
            now_ms - 2,
        )

    def orderbook_rest(self, symbol: str, limit: int, now_ms: int) -> dict:
        """Return ``/v5/market/orderbook``'s result for ``limit`` levels a side."""
        book = self.book(symbol)
        return {
            "s": symbol,
            "b": self.levels(symbol, book.bids(limit).tolist()),
            "a": self.levels(symbol, book.asks(limit).tolist()),
            "ts": now_ms,
            "u": max(book.update_id, 1),
            "seq": next(self.seq),
            "cts": now_ms - 2,
        }

    # ------------------------------------------------------------------ frames
    def on_source_frame(self, symbol: str, raw: str, now_ms: int) -> tuple[list, list]:
        """Take one frame from the symbol's source; return ``(public, pushes)`` where
        ``public`` is ``[(topic, text)]`` to publish, ``pushes`` the private pushes."""
        msg = orjson.loads(raw)
        topic = str(msg.get("topic", ""))
        public: list = []
        pushes: list = []
        if topic.startswith("publicTrade."):
            # A recording's own trades: pass them through, stop synthesizing.
            self.recorded_trades.add(symbol)
            self._count_trades(symbol, msg.get("data", ()))
            public.append((f"publicTrade.{symbol}", raw))
            pushes += self.account.on_frame(symbol, raw, now_ms)
            self.trades_sent += 1
            return public, pushes
        if not topic.startswith("orderbook."):
            raise ValueError(f"market source for {symbol}: unsupported topic {topic!r}")
        book = self.book(symbol)
        delta = None
        if msg.get("type") == "delta" and book.synced:
            # exact decimal -> ticks/lots in C (an off-grid value raises, naming it)
            price, size = book.parse_price, book.parse_size
            data = msg["data"]
            delta = (
                {price(p): size(s) for p, s in data["b"]},
                {price(p): size(s) for p, s in data["a"]},
            )
            u_before = book.update_id
        if delta is not None and symbol not in self.recorded_trades:
            trades = touch_trades(book, *delta)
            if trades:
                # The trade is what happened; the delta after it shows the result.
                text = self._trade_text(symbol, trades, now_ms)
                if text is not None:
                    public.append((f"publicTrade.{symbol}", text))
                for side, ticks, lots in trades:
                    pushes += self.account.on_trade(symbol, side, ticks, lots, now_ms)
                self.trades_sent += 1
        pushes += self.account.on_frame(symbol, raw, now_ms)
        if delta is not None and not (
            book.synced and book.update_id == data["u"] and u_before != data["u"]
        ):
            delta = None  # not applied as the next delta: the views start over from the book
        public += self._publish(symbol, now_ms, delta)
        return public, pushes

    def _count_trades(self, symbol: str, trades) -> None:
        ps, qs = self.scales(symbol)
        for t in trades:
            lots, ticks = qs.to_units(t["v"], "trade size"), ps.to_units(t["p"], "trade price")
            self.volume[symbol] += lots
            self.turnover_units[symbol] += ticks * lots
            self._last_trade[symbol] = (ticks, t.get("L", "PlusTick"))
            self._record(
                symbol,
                t["S"],
                ticks,
                lots,
                str(t.get("i", "")),
                int(t["T"]),
                ps.to_str(ticks),
                qs.to_str(lots),
            )

    def _trade_text(
        self, symbol: str, trades: list[tuple[str, int, int]], now_ms: int
    ) -> str | None:
        """Count ``trades`` (volume, turnover, last price, recent trades, klines) and
        return their ``publicTrade`` frame, or None while nobody subscribes to it (the
        frame would be dropped: building it was a tenth of a frame's cost)."""
        topic = self.topics.get(f"publicTrade.{symbol}")
        wanted = topic is not None and bool(topic.subscribers)
        size_str = self.book(symbol).size_str
        last, last_dir = self._last_trade[symbol]
        items = []
        for side, ticks, lots in trades:
            last_dir = _tick_direction(ticks, last, last_dir)
            last = ticks
            self.volume[symbol] += lots
            self.turnover_units[symbol] += ticks * lots
            trade_id = f"{self._trade_id_prefix}{next(self._trade_ids):012x}"
            seq = next(self.seq)
            price, size = self.price_text(symbol, ticks), size_str(lots)
            if wanted:
                items.append(
                    P.public_trade(symbol, side, size, price, last_dir, trade_id, now_ms, seq)
                )
            self._record(symbol, side, ticks, lots, trade_id, now_ms, price, size)
        self._last_trade[symbol] = (last, last_dir)
        return P.public_trade_frame(symbol, items, now_ms) if wanted else None

    def _publish(self, symbol: str, now_ms: int, delta: tuple[dict, dict] | None = None) -> list:
        """Return the frames of ``symbol``'s subscribed topics after its book changed.

        ``delta`` is the ``({ticks: lots}, {ticks: lots})`` the book just applied as its
        next delta, if it did: each view then moves by it (:func:`_advance`), the cheap
        path. Without it each view is read from the book again and diffed.
        """
        out = []
        topics = self._symbol_topics[symbol]
        book = self.book(symbol)
        for topic in topics:
            if not topic.subscribers or topic.kind != "orderbook":
                continue
            if delta is None:
                new_b, new_a = self._view(topic)
                db, da = _diff(topic.view_b, new_b), _diff(topic.view_a, new_a)
                topic.view_b, topic.view_a = new_b, new_a
            else:
                db = _advance(topic.view_b, delta[0], book.bids, topic.depth, True)
                da = _advance(topic.view_a, delta[1], book.asks, topic.depth, False)
            if not db and not da:
                continue
            topic.u += 1
            if topic.depth == 1:
                text = self._snapshot_text(topic, now_ms)  # level 1 sends snapshots only
            else:
                text = P.orderbook_frame(
                    topic.name,
                    "delta",
                    symbol,
                    self.levels(symbol, sorted(db.items(), reverse=True)),
                    self.levels(symbol, sorted(da.items())),
                    topic.u,
                    next(self.seq),
                    now_ms,
                    now_ms - 2,
                )
            if topic.skip_next > 0:
                topic.skip_next -= 1  # fault: this u never reaches the subscribers
                continue
            out.append((topic.name, text))
            self.frames_sent += 1
        for topic in topics:
            if topic.kind == "kline" and topic.subscribers:
                out += self._kline_texts(topic, now_ms)
        ticker = self.topics.get(self._ticker_names[symbol])
        if (
            ticker is not None
            and ticker.subscribers
            and now_ms - self._ticker_ms[symbol] >= TICKER_INTERVAL_MS
        ):
            self._ticker_ms[symbol] = now_ms
            ticker.cs += 1
            out.append(
                (
                    ticker.name,
                    P.ticker_frame(
                        self.symbols[symbol].category,
                        symbol,
                        self._ticker(symbol, now_ms),
                        ticker.cs,
                        now_ms,
                    ),
                )
            )
        return out

    def _record(
        self,
        symbol: str,
        side: str,
        ticks: int,
        lots: int,
        trade_id: str,
        ts_ms: int,
        price: str,
        size: str,
    ) -> None:
        # the REST item is built when asked for: most trades are never read over REST
        self._recent[symbol].append((trade_id, price, size, side, ts_ms))
        minute = ts_ms // 60_000 * 60_000
        bar = self._minutes[symbol].get(minute)
        value = ticks * lots
        if bar is None:
            self._minutes[symbol][minute] = [ticks, ticks, ticks, ticks, lots, value]
        else:
            bar[1], bar[2], bar[3] = max(bar[1], ticks), min(bar[2], ticks), ticks
            bar[4] += lots
            bar[5] += value

    def _bar(self, symbol: str, start: int, minutes: int) -> list | None:
        bar = None
        for minute in range(start, start + minutes * 60_000, 60_000):
            m = self._minutes[symbol].get(minute)
            if m is None:
                continue
            if bar is None:
                bar = list(m)
            else:
                bar[1], bar[2], bar[3] = max(bar[1], m[1]), min(bar[2], m[2]), m[3]
                bar[4] += m[4]
                bar[5] += m[5]
        return bar

    def _kline_item(self, topic: Topic, start: int, bar: list, confirm: bool, now_ms: int) -> dict:
        ps, qs = self.scales(topic.symbol)
        span = KLINE_INTERVALS[topic.interval] * 60_000
        return {
            "start": start,
            "end": start + span - 1,
            "interval": topic.interval,
            "open": ps.to_str(bar[0]),
            "close": ps.to_str(bar[3]),
            "high": ps.to_str(bar[1]),
            "low": ps.to_str(bar[2]),
            "volume": P.dec(qs.to_decimal(bar[4])),
            "turnover": P.dec(self.notional(topic.symbol, bar[5])),
            "confirm": confirm,
            "timestamp": now_ms,
        }

    def _kline_texts(self, topic: Topic, now_ms: int) -> list:
        minutes = KLINE_INTERVALS[topic.interval]
        span = minutes * 60_000
        start = now_ms // span * span
        items = []
        if topic.bar_start is not None and topic.bar_start != start:
            closed = self._bar(topic.symbol, topic.bar_start, minutes)
            if closed is not None:
                items.append(self._kline_item(topic, topic.bar_start, closed, True, now_ms))
            topic.last_ms = 0
        topic.bar_start = start
        if now_ms - topic.last_ms >= KLINE_PUSH_MS:
            bar = self._bar(topic.symbol, start, minutes)
            if bar is not None:
                items.append(self._kline_item(topic, start, bar, False, now_ms))
                topic.last_ms = now_ms
        if not items:
            return []
        return [(topic.name, P.kline_frame(topic.name, items, now_ms))]

    def recent_trades(self, symbol: str, limit: int) -> list[dict]:
        """Return ``/v5/market/recent-trade``'s list, newest first."""
        recent = self._recent[symbol]
        return [
            {
                "execId": trade_id,
                "symbol": symbol,
                "price": price,
                "size": size,
                "side": side,
                "time": str(ts_ms),
                "isBlockTrade": False,
                "isRPITrade": False,
            }
            for trade_id, price, size, side, ts_ms in itertools.islice(reversed(recent), limit)
        ]

    def klines(
        self, symbol: str, minutes: int, start: int | None, end: int | None, limit: int
    ) -> list[list[str]]:
        """Return ``/v5/market/kline`` rows ``[start, open, high, low, close, volume,
        turnover]`` (strings, newest first) built from the trades seen so far."""
        ps, qs = self.scales(symbol)
        span = minutes * 60_000
        bars: dict[int, list] = {}
        for minute in sorted(self._minutes[symbol]):
            o, h, lo, c, v, t = self._minutes[symbol][minute]
            key = minute // span * span
            bar = bars.get(key)
            if bar is None:
                bars[key] = [o, h, lo, c, v, t]
            else:
                bar[1], bar[2], bar[3] = max(bar[1], h), min(bar[2], lo), c
                bar[4] += v
                bar[5] += t
        rows = [
            [
                str(k),
                ps.to_str(b[0]),
                ps.to_str(b[1]),
                ps.to_str(b[2]),
                ps.to_str(b[3]),
                P.dec(qs.to_decimal(b[4])),
                P.dec(self.notional(symbol, b[5])),
            ]
            for k, b in sorted(bars.items(), reverse=True)
            if (start is None or k >= start) and (end is None or k <= end)
        ]
        return rows[:limit]

    # ------------------------------------------------------------------ tickers
    def mark_str(self, symbol: str) -> str:
        """Return the mark price text ("" before the book has two sides)."""
        mark = self.account.engines[symbol].mark_ticks()
        return "" if mark is None else self.scales(symbol)[0].to_str(mark)

    def _ticker(self, symbol: str, now_ms: int) -> dict:
        book = self.book(symbol)
        ps, qs = self.scales(symbol)
        bid, ask = book.best_bid(), book.best_ask()
        mark = self.mark_str(symbol)
        last_ticks = self._last_trade[symbol][0]
        last = ps.to_str(last_ticks) if last_ticks is not None else mark
        return P.ticker_item(
            self.symbols[symbol].category,
            symbol,
            bid=(ps.to_str(bid[0]), qs.to_str(bid[1])) if bid else None,
            ask=(ps.to_str(ask[0]), qs.to_str(ask[1])) if ask else None,
            last=last,
            mark=mark,
            funding_rate=self.funding_rate,
            next_funding_ms=(now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS,
            volume=P.dec(qs.to_decimal(self.volume[symbol])),
            turnover=P.dec(self.notional(symbol, self.turnover_units[symbol])),
        )

    def tickers(self, category: str, symbol: str | None, now_ms: int) -> list[dict]:
        """Return ``/v5/market/tickers``'s list."""
        return [
            self._ticker(s, now_ms)
            for s, sym in self.symbols.items()
            if sym.category == category and symbol in (None, s)
        ]

    # ------------------------------------------------------------------ faults
    def skip_u(self, symbol: str | None, count: int) -> None:
        for topic in self.topics.values():
            if symbol in (None, topic.symbol) and topic.kind == "orderbook":
                topic.skip_next += count

    def restart_texts(self, symbol: str | None, now_ms: int) -> list:
        """Reset every matching orderbook topic to ``u == 1``; return the snapshots."""
        out = []
        for topic in self.topics.values():
            if symbol in (None, topic.symbol) and topic.kind == "orderbook":
                topic.u = 1
                topic.view_b, topic.view_a = self._view(topic)
                out.append((topic.name, self._snapshot_text(topic, now_ms)))
        return out

    def malformed_texts(self, kind: str, symbol: str | None, now_ms: int) -> list:
        """Return a bad frame for every matching orderbook topic."""
        if kind not in ("truncated", "bad_price", "bad_size"):
            raise ValueError(f"unknown malformed kind {kind!r}")
        out = []
        for topic in self.topics.values():
            if symbol not in (None, topic.symbol) or topic.kind != "orderbook":
                continue
            good = P.orderbook_frame(
                topic.name,
                "delta",
                topic.symbol,
                [["1.0", "abc"]],
                [],
                topic.u + 1,
                next(self.seq),
                now_ms,
                now_ms,
            )
            if kind == "truncated":
                text = good[: len(good) // 2]
            elif kind == "bad_price":
                text = good.replace('"1.0"', '"1.0x"').replace('"abc"', '"1"')
            else:
                text = good
            out.append((topic.name, text))
        return out


def sources_for(
    symbols: dict[str, SimSymbol], *, seed: int, interval_ms: int
) -> dict[str, Callable[[], Iterable[str]]]:
    """Return the default synthetic source of every symbol (seed + index)."""
    return {
        s: functools.partial(synthetic_source, sym, seed=seed + i, interval_ms=interval_ms)
        for i, (s, sym) in enumerate(symbols.items())
    }
