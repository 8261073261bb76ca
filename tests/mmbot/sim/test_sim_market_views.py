"""The simulator's published orderbook topics, checked against an independent consumer.

:class:`obcore._reference.PyBook` (Decimal and ``json.loads``, no code shared with the
compiled book) replays every frame the simulator publishes on each ``orderbook.{depth}``
topic; after every source frame it must hold exactly the market book's top ``depth``
levels. This covers the cheap path (a view moved by the book's delta) and the full one
(a source snapshot, a restart), on linear and spot symbols, with implied trades.
"""

import functools
import json
import random
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import obcore
from mmbot.sim.account import SimSymbol
from mmbot.sim.market import _advance, touch_trades
from mmbot.sim.routes import SimServer
from obcore._reference import PyBook
from obcore.synthetic import _formatter, _Texts, generate_frames

DEPTHS = (1, 50, 200, 1000)
STEPS = 800


def _server(snapshot_every: int = 0):
    linear = SimSymbol("AAAUSDT")
    spot = SimSymbol("BBBUSDT", category="spot", tick_size="0.01", lot_size="0.000001")

    def source(sym, seed, start):
        return generate_frames(
            symbol=sym.symbol,
            tick_size=sym.tick_size,
            lot_size=sym.lot_size,
            depth=200,
            messages=10**9,
            seed=seed,
            start_price=start,
            category=sym.category,
            snapshot_every=snapshot_every,  # a re-sent whole book takes the full path
        )

    sources = {
        "AAAUSDT": functools.partial(source, linear, 3, "65000.0"),
        "BBBUSDT": functools.partial(source, spot, 4, "65000.00"),
    }
    return SimServer([linear, spot], sources=sources)


def _subscribe_all(market):
    sub = object()  # the market only needs a non-empty subscriber set
    consumers = {}
    for symbol, sym in market.symbols.items():
        for depth in DEPTHS:
            topic = market.topic(f"orderbook.{depth}.{symbol}", sym.category)
            market.on_subscribe(topic, False, 0)
            topic.subscribers.add(sub)
            consumers[topic.name] = (topic, PyBook(sym.tick_size, sym.lot_size))
    return consumers


def _check_top(market, consumers, symbol):
    book = market.book(symbol)
    for topic, ref in consumers.values():
        if topic.symbol != symbol:
            continue
        want_b = [tuple(r) for r in book.bids(topic.depth).tolist()]
        want_a = [tuple(r) for r in book.asks(topic.depth).tolist()]
        got_b = [tuple(r) for r in ref.bids().tolist()]
        got_a = [tuple(r) for r in ref.asks().tolist()]
        assert (got_b, got_a) == (want_b, want_a), topic.name


@pytest.mark.parametrize("snapshot_every", [0, 37])
def test_published_frames_rebuild_the_market_top_n(snapshot_every):
    server = _server(snapshot_every)
    market = server.market
    consumers = _subscribe_all(market)
    for symbol, sym in market.symbols.items():  # the trade frames are built for subscribers
        market.topic(f"publicTrade.{symbol}", sym.category).subscribers.add(object())
    streams = {s: iter(server.sources[s]()) for s in market.symbols}
    for symbol, it in streams.items():  # the first frame is the source's snapshot
        market.on_source_frame(symbol, next(it), 1_700_000_000_000)
    for topic, ref in consumers.values():
        ref.apply(market._snapshot_text(topic, 1_700_000_000_000))
    published = 0
    turnover = dict.fromkeys(market.symbols, Decimal(0))
    for step in range(1, STEPS):
        now = 1_700_000_000_000 + 20 * step
        for symbol, it in streams.items():
            public, _ = market.on_source_frame(symbol, next(it), now)
            for name, text in public:
                if name in consumers:
                    consumers[name][1].apply(text)  # a u gap would raise here
                    published += 1
                elif name.startswith("publicTrade."):
                    price, qty = market.scales(symbol)
                    for trade in json.loads(text)["data"]:
                        # Bybit's text of the exact number, as Scale writes it
                        assert trade["p"] == price.to_str(price.to_units(trade["p"]))
                        assert trade["v"] == qty.to_str(qty.to_units(trade["v"]))
                        turnover[symbol] += Decimal(trade["p"]) * Decimal(trade["v"])
            _check_top(market, consumers, symbol)
        if step == STEPS // 2:  # a restart snapshot resets every view to the book
            for name, text in market.restart_texts(None, now):
                consumers[name][1].apply(text)
    assert published > 4 * STEPS  # every depth but 1 changes on almost every frame
    assert market.trades_sent > 0  # the deltas took size at the touch: trades were implied
    for symbol in market.symbols:  # integer ticks x lots, shown exactly
        ticker = market._ticker(symbol, 1_700_000_000_000 + 20 * STEPS)
        assert Decimal(ticker["turnover24h"]) == turnover[symbol] > 0


def test_advance_equals_a_fresh_read_of_the_book():
    server = _server()
    market = server.market
    consumers = _subscribe_all(market)
    it = iter(server.sources["AAAUSDT"]())
    for step in range(2000):
        market.on_source_frame("AAAUSDT", next(it), 1_700_000_000_000 + 20 * step)
        for topic, _ in consumers.values():
            if topic.symbol == "AAAUSDT":
                assert (topic.view_b, topic.view_a) == market._view(topic), (step, topic.name)


class _Side:
    """A book side after the delta, as ``book.bids``/``book.asks`` read it."""

    def __init__(self, levels: dict, bids: bool, n: int | None = None):
        self.levels, self.is_bids = levels, bids
        self.rows = sorted(levels.items(), reverse=bids)[:n]

    def __call__(self, n):
        return _Side(self.levels, self.is_bids, n)

    def __getitem__(self, rows: slice):
        out = _Side(self.levels, self.is_bids)
        out.rows = self.rows[rows]
        return out

    def tolist(self):
        return [list(r) for r in self.rows]


def test_advance_uncovers_the_next_level_after_a_delete():
    view = {100: 1, 99: 2, 98: 3}  # top 3 of 100, 99, 98 | 97, 96
    after = _Side({101: 7, 100: 1, 98: 3, 97: 4, 96: 5}, True)
    assert _advance(view, {101: 7, 99: 0}, after, 3, True) == {101: 7, 99: 0}
    assert view == {101: 7, 100: 1, 98: 3}
    after = _Side({101: 7, 100: 1, 97: 4, 96: 5}, True)
    assert _advance(view, {98: 0}, after, 3, True) == {98: 0, 97: 4}
    assert view == {101: 7, 100: 1, 97: 4}


def test_advance_pushes_out_and_never_sends_a_level_in_and_out_in_one_frame():
    view = {10: 1, 11: 2, 13: 3}  # asks: top 3
    out = _advance(view, {12: 5, 9: 1, 8: 1}, None, 3, False)
    assert view == {8: 1, 9: 1, 10: 1}
    assert out == {8: 1, 9: 1, 11: 0, 13: 0}  # 12 came and went: its subscribers never saw it
    # a size change and no move, then a delta beyond the window: nothing to send
    assert _advance(view, {9: 4}, None, 3, False) == {9: 4}
    assert _advance(view, {20: 1, 9: 4}, None, 3, False) == {}
    assert view == {8: 1, 9: 4, 10: 1}


@pytest.mark.parametrize(
    ("step", "strip"), [("0.1", False), ("0.01", True), ("0.000001", False), ("5", False)]
)
def test_cached_texts_equal_decimal_formatting(step, strip):
    units = int(step.replace(".", ""))
    decimals = len(step.partition(".")[2])
    texts = _Texts(_formatter(units, decimals, strip), zero="0")
    rng = random.Random(1)
    for n in [1, 9, 10, 11, 100, 123456789] + [rng.randrange(1, 10**12) for _ in range(500)]:
        want = f"{Decimal(n) * Decimal(step):.{decimals}f}"
        if strip and "." in want:
            want = want.rstrip("0").rstrip(".")
        assert texts[n] == want == texts[n]  # a hit returns what the miss formatted
    assert texts[0] == "0"  # a delete's size, as Bybit writes it


def test_cached_texts_stay_bounded():
    texts = _Texts(str, zero="0")
    for n in range(_Texts.LIMIT + 10):
        assert texts[n] == (str(n) if n else "0")
    assert len(texts) <= _Texts.LIMIT
    assert texts[0] == "0"


def _reference_touch_trades(book, delta_b, delta_a):
    """touch_trades by its definition, over whole dict copies of the book's sides."""
    out = []
    for side, delta, taker, better in (("b", delta_b, "Sell", max), ("a", delta_a, "Buy", min)):
        old = dict(book.levels(side))
        new = {**old, **delta}
        new = {t: lots for t, lots in new.items() if lots}
        best = better(new) if new else None
        for t in sorted(delta, reverse=side == "b"):
            at_touch = best is None or (t >= best if side == "b" else t <= best)
            if old.get(t, 0) - delta[t] > 0 and at_touch:
                out.append((taker, t, old.get(t, 0) - delta[t]))
    return out


@pytest.mark.parametrize("trades_per_s", [0.0, 50.0])
def test_touch_trades_equal_their_definition_on_a_stream(trades_per_s):
    book = obcore.Book("0.1", "0.001")
    implied = 0
    for raw in generate_frames(depth=50, messages=1500, seed=11, trades_per_s=trades_per_s):
        msg = json.loads(raw)
        if msg["topic"].startswith("orderbook.") and msg["type"] == "delta":
            delta_b = {book.parse_price(p): book.parse_size(s) for p, s in msg["data"]["b"]}
            delta_a = {book.parse_price(p): book.parse_size(s) for p, s in msg["data"]["a"]}
            got = touch_trades(book, delta_b, delta_a)
            assert got == _reference_touch_trades(book, delta_b, delta_a)
            implied += len(got)
        if msg["topic"].startswith("orderbook."):
            book.apply(raw)
    assert implied > 100


def test_a_running_simulator_keeps_no_mid_history():
    # The engines' mid log (one entry per mid change) feeds backtest markouts; the
    # simulator never reads it, and at 200 symbols it grew by ~4,000 entries a second
    # without bound.
    server = _server()
    it = iter(server.sources["AAAUSDT"]())
    for step in range(500):
        server.market.on_source_frame("AAAUSDT", next(it), 1_700_000_000_000 + 20 * step)
    engine = server.account.engines["AAAUSDT"]
    assert engine.market_frames == 500
    assert engine.mid_log == []


def test_trades_count_without_a_public_trade_subscriber():
    server = _server()
    market = server.market
    it = iter(server.sources["AAAUSDT"]())
    for step in range(300):
        public, _ = market.on_source_frame("AAAUSDT", next(it), 1_700_000_000_000 + 20 * step)
        assert not [name for name, _ in public if name.startswith("publicTrade.")]
    assert market.trades_sent > 0 and market.volume["AAAUSDT"] > 0
    assert market.recent_trades("AAAUSDT", 5)[0]["symbol"] == "AAAUSDT"


@settings(max_examples=300, deadline=None)
@given(
    bids=st.dictionaries(st.integers(90, 100), st.integers(1, 5), min_size=0, max_size=8),
    asks=st.dictionaries(st.integers(101, 111), st.integers(1, 5), min_size=0, max_size=8),
    delta_b=st.dictionaries(st.integers(86, 104), st.integers(0, 5), max_size=6),
    delta_a=st.dictionaries(st.integers(97, 115), st.integers(0, 5), max_size=6),
)
@example(  # the best bid taken, the next one left alone, a deeper one cancelled
    bids={100: 1, 99: 1, 98: 1}, asks={}, delta_b={100: 0, 98: 0, 95: 3}, delta_a={}
)
@example(bids={}, asks={101: 1, 102: 1, 103: 1}, delta_b={}, delta_a={101: 0, 103: 0, 107: 3})
def test_touch_trades_equal_their_definition_on_any_small_book(bids, asks, delta_b, delta_a):
    # every way a delta meets the touch: the best level kept, resized, deleted with or
    # without something better, a whole side emptied
    book = obcore.Book("1", "1")
    book.apply(
        {
            "topic": "orderbook.50.X",
            "type": "snapshot",
            "ts": 1,
            "data": {
                "s": "X",
                "b": [[str(t), str(q)] for t, q in bids.items()],
                "a": [[str(t), str(q)] for t, q in asks.items()],
                "u": 5,
                "seq": 1,
            },
        }
    )
    assert touch_trades(book, delta_b, delta_a) == _reference_touch_trades(book, delta_b, delta_a)
