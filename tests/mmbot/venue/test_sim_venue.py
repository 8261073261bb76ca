"""SimVenue: latency bookkeeping on a simulated clock, event delivery, determinism."""

from __future__ import annotations

import json

import pytest

from mmbot.sim.engine import MatchingEngine
from mmbot.types import (
    AmendRequest,
    CancelRequest,
    ConnectionEvent,
    ExecutionEvent,
    OrderEvent,
    OrderRequest,
    OrderStatus,
    RequestError,
)
from mmbot.venue.sim import SimVenue
from obcore.synthetic import generate_frames

T0 = 1_700_000_000_000


def book_frame(u: int, ts: int, bids, asks, kind="delta") -> str:
    data = {
        "s": "TEST",
        "b": [[f"{p / 10:.1f}", f"{q / 1000:.3f}"] for p, q in bids],
        "a": [[f"{p / 10:.1f}", f"{q / 1000:.3f}"] for p, q in asks],
        "u": u,
        "seq": u,
    }
    return json.dumps({"topic": "orderbook.50.TEST", "type": kind, "ts": ts, "data": data})


def make_venue(symbol="TEST", **kw) -> tuple[SimVenue, list]:
    eng = MatchingEngine(symbol=symbol, tick_size="0.1", lot_size="0.001")
    venue = SimVenue(eng, **kw)
    got: list = []
    venue.set_handler(lambda ev: got.append((venue.now_ms(), ev)))
    return venue, got


def test_latencies_on_the_simulated_clock():
    venue, got = make_venue(order_latency_ms=5, response_latency_ms=7, md_latency_ms=3)
    frames = [
        book_frame(1, T0, [(999, 2000)], [(1001, 1000)], "snapshot"),
        # trades through 99.9: the bid level went with it (a real book never crosses; obcore
        # marks a crossed book out of sync)
        book_frame(2, T0 + 100, [(999, 0), (998, 100)], [(1001, 0), (999, 500)]),
    ]
    seen = []
    for _frame, now in venue.stream(frames):
        seen.append(now)
        if len(seen) == 1:
            venue.place(OrderRequest("b1", "TEST", "Buy", 999, 400))
    # frames reach the bot md latency after their ts
    assert seen == [T0 + 3, T0 + 103]
    # request sent at T0+3 reaches the engine at T0+8, the ack the bot at T0+15
    (t_ack, ack), *rest = got
    assert t_ack == T0 + 15 and isinstance(ack, OrderEvent)
    assert ack.ts_ms == T0 + 8 and ack.order.status is OrderStatus.NEW
    # the fill happens at the exchange at T0+100 and is seen at T0+107
    fills = [(t, ev) for t, ev in rest if isinstance(ev, ExecutionEvent)]
    assert [(t, ev.execution.qty_lots, ev.ts_ms) for t, ev in fills] == [(T0 + 107, 400, T0 + 100)]
    assert venue.position("TEST").size_lots == 400


def test_order_behind_data_is_placed_on_the_book_as_of_arrival():
    # the request arrives after the book moved: post-only is judged against the newer book
    venue, got = make_venue(order_latency_ms=50, md_latency_ms=0)
    frames = [
        book_frame(1, T0, [(999, 2000)], [(1002, 1000)], "snapshot"),
        book_frame(2, T0 + 20, [], [(1002, 0), (1001, 100)]),
    ]
    for _frame, now in venue.stream(frames):
        if now == T0:
            venue.place(OrderRequest("b1", "TEST", "Buy", 1001, 100))  # fine at T0, not at T0+50
    ((_, ev),) = got
    assert ev.order.status is OrderStatus.CANCELLED
    assert ev.order.reject_reason == "EC_PostOnlyWillTakeLiquidity"


def test_errors_amend_cancel_and_advance():
    venue, got = make_venue(order_latency_ms=1)
    list(venue.stream([book_frame(1, T0, [(999, 2000)], [(1001, 1000)], "snapshot")]))
    venue.place(OrderRequest("b1", "TEST", "Buy", 990, 100))
    venue.amend(AmendRequest("b1", "TEST", price_ticks=995))
    venue.cancel(CancelRequest("nope", "TEST"))
    venue.advance(venue.now_ms() + 10)
    kinds = [type(ev).__name__ for _, ev in got]
    assert kinds == ["OrderEvent", "OrderEvent", "RequestError"]
    assert got[1][1].order.price_ticks == 995
    assert got[2][1].code == 110001 and got[2][1].op == "cancel"
    assert [o.order_link_id for o in venue.open_orders("TEST")] == ["b1"]
    venue.cancel_all("TEST")
    venue.advance(venue.now_ms() + 10)
    assert venue.open_orders("TEST") == []
    with pytest.raises(ValueError, match="trades 'TEST' only"):
        venue.place(OrderRequest("x", "OTHER", "Buy", 990, 1))


def test_disconnect_refuses_requests():
    venue, got = make_venue()
    venue.set_connected(False, "test")
    venue.place(OrderRequest("b1", "TEST", "Buy", 990, 100))
    venue.advance(100)
    assert isinstance(got[0][1], ConnectionEvent) and not got[0][1].connected
    assert isinstance(got[1][1], RequestError) and got[1][1].op == "create"


def test_timer_ticks_and_time_order_check():
    venue, _ = make_venue(md_latency_ms=0)
    frames = [
        book_frame(1, T0, [(999, 1)], [(1001, 1)], "snapshot"),
        book_frame(2, T0 + 250, [(998, 1)], []),
    ]
    out = [(f is None, t) for f, t in venue.stream(frames, timer_ms=100)]
    assert out == [(False, T0), (True, T0 + 100), (True, T0 + 200), (False, T0 + 250)]
    venue2, _ = make_venue()
    with pytest.raises(ValueError, match="time order"):
        list(venue2.stream([book_frame(1, T0 + 5, [], [], "snapshot"), book_frame(2, T0, [], [])]))


def run_once(seed: int) -> list:
    """A tiny quoting loop over synthetic data; returns everything the bot saw."""
    venue, got = make_venue("BTCUSDT", order_latency_ms=3, md_latency_ms=2, jitter_ms=4, seed=seed)
    n = 0
    for frame, _now in venue.stream(generate_frames(messages=400, depth=20, seed=7)):
        book = venue.engine.book
        if frame is None or n >= 30 or book.best_bid() is None:
            continue
        n += 1
        bid = book.best_bid()[0]
        venue.place(OrderRequest(f"o{n}", "BTCUSDT", "Buy", bid, 1))
    return [(t, repr(ev)) for t, ev in got]


def test_deterministic_for_a_seed():
    a = run_once(1)
    assert a == run_once(1)
    assert any("ExecutionEvent" in r for _, r in a)
    assert a != run_once(2)  # jitter draws differ
