"""MatchingEngine: hand-built scenarios (numbers worked out by hand) and a stateful property."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mmbot.sim.engine import REJECT_POST_ONLY, MatchingEngine, OrderRejected
from mmbot.types import ExecutionEvent, OrderEvent, OrderStatus, PositionEvent

# tick 0.1, lot 0.001: price 100.0 is 1000 ticks, size 1.000 is 1000 lots
TICK, LOT = "0.1", "0.001"


class Feed:
    """Builds Bybit orderbook frames with consecutive update ids."""

    def __init__(self) -> None:
        self.u = 0
        self.ts = 1_700_000_000_000

    def _frame(self, kind: str, bids, asks) -> str:
        self.u += 1
        self.ts += 10
        data = {
            "s": "TEST",
            "b": [[f"{p / 10:.1f}", f"{q / 1000:.3f}"] for p, q in bids],
            "a": [[f"{p / 10:.1f}", f"{q / 1000:.3f}"] for p, q in asks],
            "u": self.u,
            "seq": self.u * 7,
        }
        return json.dumps(
            {"topic": "orderbook.50.TEST", "type": kind, "ts": self.ts, "data": data},
            separators=(",", ":"),
        )

    def snapshot(self, bids, asks) -> str:
        return self._frame("snapshot", bids, asks)

    def delta(self, bids=(), asks=()) -> str:
        return self._frame("delta", bids, asks)


def make_engine(**kw) -> MatchingEngine:
    kw.setdefault("maker_fee_rate", 0.0002)
    kw.setdefault("taker_fee_rate", 0.00055)
    return MatchingEngine(symbol="TEST", tick_size=TICK, lot_size=LOT, **kw)


@pytest.fixture
def setup():
    eng = make_engine()
    feed = Feed()
    # bids 99.9 x 2, 99.8 x 3; asks 100.1 x 1, 100.2 x 4
    eng.on_frame(feed.snapshot([(999, 2000), (998, 3000)], [(1001, 1000), (1002, 4000)]), 1)
    return eng, feed


def execs(events):
    return [e.execution for e in events if isinstance(e, ExecutionEvent)]


def orders(events):
    return [e.order for e in events if isinstance(e, OrderEvent)]


def test_optimistic_queue_takes_every_reduction_from_ahead():
    eng = make_engine(queue_model="optimistic")
    feed = Feed()
    eng.on_frame(feed.snapshot([(999, 2000), (998, 3000)], [(1001, 1000), (1002, 4000)]), 1)
    eng.place(order_link_id="b1", side="Buy", price_ticks=999, qty_lots=500, now_ms=2)
    assert eng.queue_ahead(order_link_id="b1") == 2000
    # someone joins behind us: queue ahead unchanged
    assert eng.on_frame(feed.delta(bids=[(999, 2600)]), 3) == []
    assert eng.queue_ahead(order_link_id="b1") == 2000
    # level shrinks by 1500 -> consumed from the 2000 ahead of us
    assert eng.on_frame(feed.delta(bids=[(999, 1100)]), 4) == []
    assert eng.queue_ahead(order_link_id="b1") == 500
    # shrinks by 900 more: only 500 were ahead, so nothing is ahead; no fill without a trade
    assert eng.on_frame(feed.delta(bids=[(999, 200)]), 5) == []
    assert eng.queue_ahead(order_link_id="b1") == 0
    assert eng.get_order(order_link_id="b1").status is OrderStatus.NEW


def test_public_trade_fills_after_queue(setup):
    eng, feed = setup
    eng.place(order_link_id="b1", side="Buy", price_ticks=999, qty_lots=500, now_ms=2)
    eng.place(order_link_id="b2", side="Buy", price_ticks=999, qty_lots=300, now_ms=3)
    # b2 arrived behind the same 2000 market lots plus b1's 500
    trade = {
        "topic": "publicTrade.TEST",
        "type": "snapshot",
        "ts": 5,
        "data": [{"T": 5, "s": "TEST", "S": "Sell", "v": "2.300", "p": "99.9"}],
    }
    ev = eng.on_frame(json.dumps(trade), 5)
    fills = execs(ev)
    # 2000 ahead consumed, then 300 of b1's 500; b2 untouched
    assert [(f.order_link_id, f.qty_lots, f.is_maker) for f in fills] == [("b1", 300, True)]
    assert eng.get_order(order_link_id="b1").status is OrderStatus.PARTIALLY_FILLED
    ev = eng.on_trade("Sell", 999, 400, 6)
    # the rest of b1 (200) then 200 of b2
    assert [(f.order_link_id, f.qty_lots) for f in execs(ev)] == [("b1", 200), ("b2", 200)]
    assert eng.position_lots == 700


def test_trade_then_its_book_delta_consume_the_queue_once():
    eng = make_engine(queue_model="optimistic")
    feed = Feed()
    eng.on_frame(feed.snapshot([(999, 2000), (998, 3000)], [(1001, 1000), (1002, 4000)]), 1)
    eng.place(order_link_id="b1", side="Buy", price_ticks=999, qty_lots=500, now_ms=2)
    # 2000 lots ahead; a Sell trade takes 800 of them, then the delta shows 99.9 at 1200
    assert execs(eng.on_trade("Sell", 999, 800, 3)) == []
    assert eng.queue_ahead(order_link_id="b1") == 1200
    eng.on_frame(feed.delta(bids=[(999, 1200)]), 4)
    assert eng.queue_ahead(order_link_id="b1") == 1200  # not 400: counted once
    # a later reduction without a trade (a cancel ahead of us) still consumes the queue
    eng.on_frame(feed.delta(bids=[(999, 1000)]), 5)
    assert eng.queue_ahead(order_link_id="b1") == 1000
    # 1000 ahead then 300 of ours
    fills = execs(eng.on_trade("Sell", 999, 1300, 6))
    assert [(f.order_link_id, f.qty_lots) for f in fills] == [("b1", 300)]


def test_trade_through_fills_completely_at_own_price(setup):
    eng, feed = setup
    eng.place(order_link_id="b1", side="Buy", price_ticks=999, qty_lots=500, now_ms=2)
    # asks move down to 99.9: the bids at 99.9 were traded away, including ours
    ev = eng.on_frame(feed.delta(bids=[(999, 0)], asks=[(1001, 0), (999, 700)]), 3)
    (fill,) = execs(ev)
    assert (fill.price_ticks, fill.qty_lots, fill.is_maker) == (999, 500, True)
    # maker fee: 99.9 * 0.5 * 0.0002 = 0.00999
    assert fill.fee == Decimal("0.00999")
    assert [o.status for o in orders(ev)] == [OrderStatus.FILLED]
    assert isinstance(ev[-1], PositionEvent) and ev[-1].position.size_lots == 500
    assert eng.open_orders() == []


def test_sell_trade_through_and_realized_pnl(setup):
    eng, feed = setup
    eng.place(order_link_id="b1", side="Buy", price_ticks=999, qty_lots=1000, now_ms=2)
    eng.on_frame(feed.delta(bids=[(999, 0)], asks=[(1001, 0), (999, 500)]), 3)
    eng.place(order_link_id="s1", side="Sell", price_ticks=1003, qty_lots=1000, now_ms=4)
    ev = eng.on_frame(feed.delta(bids=[(1004, 100)], asks=[(999, 0), (1002, 0), (1005, 10)]), 5)
    (fill,) = execs(ev)
    assert (fill.side, fill.price_ticks, fill.qty_lots) == ("Sell", 1003, 1000)
    assert eng.position_lots == 0
    # bought 1.000 at 99.9, sold 1.000 at 100.3: +0.4
    assert eng.realized_pnl == Decimal("0.4")
    # fees 0.0002 * (99.9 + 100.3) = 0.04004
    assert eng.fees_paid == Decimal("0.04004")


def test_post_only_reject_when_crossing_or_touching(setup):
    eng, _ = setup
    ev = eng.place(order_link_id="x", side="Buy", price_ticks=1001, qty_lots=100, now_ms=2)
    (order,) = orders(ev)
    assert order.status is OrderStatus.CANCELLED and order.reject_reason == REJECT_POST_ONLY
    assert (
        eng.place(order_link_id="y", side="Sell", price_ticks=998, qty_lots=100, now_ms=2)[
            0
        ].order.status
        is OrderStatus.CANCELLED
    )
    # one tick inside is fine
    ev = eng.place(order_link_id="z", side="Buy", price_ticks=1000, qty_lots=100, now_ms=2)
    assert orders(ev)[0].status is OrderStatus.NEW
    # a post-only sell onto the bot's own bid at 100.0 would take liquidity too
    ev = eng.place(order_link_id="w", side="Sell", price_ticks=1000, qty_lots=100, now_ms=2)
    assert orders(ev)[0].reject_reason == REJECT_POST_ONLY
    assert execs(ev) == []


def test_taker_limit_walks_levels_and_rests_remainder(setup):
    eng, _ = setup
    ev = eng.place(
        order_link_id="t", side="Buy", price_ticks=1002, qty_lots=6000, post_only=False, now_ms=2
    )
    fills = execs(ev)
    assert [(f.price_ticks, f.qty_lots, f.is_maker) for f in fills] == [
        (1001, 1000, False),
        (1002, 4000, False),
    ]
    # taker fees: 0.00055 * (100.1*1 + 100.2*4) = 0.00055 * 500.9 = 0.275495
    assert sum(f.fee for f in fills) == Decimal("0.275495")
    order = eng.get_order(order_link_id="t")
    assert order.status is OrderStatus.PARTIALLY_FILLED and order.leaves_lots == 1000
    assert [o.order_link_id for o in eng.open_orders()] == ["t"]


def test_market_order_cancels_unfilled_rest(setup):
    eng, _ = setup
    ev = eng.place(
        order_link_id="m",
        side="Sell",
        price_ticks=0,
        qty_lots=6000,
        post_only=False,
        order_type="Market",
        now_ms=2,
    )
    assert [(f.price_ticks, f.qty_lots) for f in execs(ev)] == [(999, 2000), (998, 3000)]
    assert orders(ev)[-1].status is OrderStatus.CANCELLED
    assert eng.position_lots == -5000


def test_amend_priority_rules(setup):
    eng, feed = setup
    eng.place(order_link_id="a", side="Buy", price_ticks=999, qty_lots=500, now_ms=2)
    eng.on_frame(feed.delta(bids=[(999, 3000)]), 3)  # 1000 join behind a
    assert eng.queue_ahead(order_link_id="a") == 2000
    # size down at the same price keeps the place in the queue
    ev = eng.amend(order_link_id="a", qty_lots=400, now_ms=4)
    assert orders(ev)[0].qty_lots == 400
    assert eng.queue_ahead(order_link_id="a") == 2000
    # size up loses it: behind everything resting now (3000)
    eng.amend(order_link_id="a", qty_lots=600, now_ms=5)
    assert eng.queue_ahead(order_link_id="a") == 3000
    # a price change loses it too: behind the 3000 at 99.8
    eng.amend(order_link_id="a", price_ticks=998, now_ms=6)
    assert eng.queue_ahead(order_link_id="a") == 3000
    assert eng.get_order(order_link_id="a").price_ticks == 998


def test_amend_and_cancel_errors(setup):
    eng, _ = setup
    eng.place(order_link_id="a", side="Buy", price_ticks=999, qty_lots=500, now_ms=2)
    with pytest.raises(OrderRejected) as err:
        eng.amend(order_link_id="a", price_ticks=999, now_ms=3)
    assert err.value.code == 10001
    with pytest.raises(OrderRejected):
        eng.amend(order_link_id="a", price_ticks=1001, now_ms=3)  # post-only would cross
    assert eng.get_order(order_link_id="a").price_ticks == 999
    with pytest.raises(OrderRejected) as err:
        eng.cancel(order_link_id="nope", now_ms=3)
    assert err.value.code == 110001
    with pytest.raises(OrderRejected) as err:
        eng.place(order_link_id="a", side="Buy", price_ticks=990, qty_lots=1, now_ms=3)
    assert err.value.code == 110072
    (ev,) = eng.cancel(order_link_id="a", now_ms=4)
    assert ev.order.status is OrderStatus.CANCELLED and ev.order.leaves_lots == 0
    with pytest.raises(OrderRejected) as err:
        eng.cancel(order_link_id="a", now_ms=5)
    assert err.value.code == 110001


def test_min_qty_and_notional():
    eng = make_engine(min_qty_lots=10, min_notional="5")
    eng.on_frame(Feed().snapshot([(999, 2000)], [(1001, 1000)]), 1)
    with pytest.raises(OrderRejected, match="below the minimum 10"):
        eng.place(order_link_id="a", side="Buy", price_ticks=999, qty_lots=9, now_ms=2)
    # 99.9 * 0.050 = 4.995 < 5
    with pytest.raises(OrderRejected, match="minimum notional"):
        eng.place(order_link_id="b", side="Buy", price_ticks=999, qty_lots=50, now_ms=2)
    eng.place(order_link_id="c", side="Buy", price_ticks=999, qty_lots=51, now_ms=2)


def test_gap_in_data_is_counted_and_blocks_fills(setup):
    eng, feed = setup
    eng.place(order_link_id="b1", side="Buy", price_ticks=999, qty_lots=500, now_ms=2)
    feed.u += 5  # skip update ids
    assert eng.on_frame(feed.delta(asks=[(999, 100)]), 3) == []
    assert eng.market_errors == 1 and not eng.book.synced
    assert eng.get_order(order_link_id="b1").status is OrderStatus.NEW


class EngineMachine(RuleBasedStateMachine):
    """Random orders and book moves: fills never exceed order size; position == sum of fills."""

    def __init__(self) -> None:
        super().__init__()
        self.eng = make_engine()
        self.feed = Feed()
        self.eng.on_frame(self.feed.snapshot([(999, 2000)], [(1001, 1000)]), 1)
        self.t = 1
        self.n = 0
        self.fills: dict[str, int] = {}
        self.sizes: dict[str, int] = {}
        self.signed_fill_sum = 0
        self.seen_exec_ids: set[str] = set()

    def _record(self, events) -> None:
        for ev in events:
            if isinstance(ev, ExecutionEvent):
                x = ev.execution
                assert x.exec_id not in self.seen_exec_ids
                self.seen_exec_ids.add(x.exec_id)
                assert x.qty_lots > 0
                self.fills[x.order_link_id] = self.fills.get(x.order_link_id, 0) + x.qty_lots
                self.signed_fill_sum += x.qty_lots if x.side == "Buy" else -x.qty_lots

    @rule(
        side=st.sampled_from(["Buy", "Sell"]),
        off=st.integers(-3, 3),
        qty=st.integers(1, 3000),
        post_only=st.booleans(),
    )
    def place(self, side, off, qty, post_only):
        self.t += 1
        self.n += 1
        link = f"o{self.n}"
        best = self.eng.book.best_bid() if side == "Buy" else self.eng.book.best_ask()
        ref = best[0] if best else 1000
        price = max(ref + off, 1)
        try:
            ev = self.eng.place(
                order_link_id=link,
                side=side,
                price_ticks=price,
                qty_lots=qty,
                post_only=post_only,
                now_ms=self.t,
            )
        except OrderRejected:
            return
        self.sizes[link] = self.eng.get_order(order_link_id=link).qty_lots
        self._record(ev)

    @rule(
        bid=st.integers(990, 1010),
        width=st.integers(1, 5),
        bq=st.integers(0, 5000),
        aq=st.integers(0, 5000),
    )
    def move(self, bid, width, bq, aq):
        self.t += 1
        ask = bid + width
        frame = self.feed.snapshot([(bid, max(bq, 1))], [(ask, max(aq, 1))])
        self._record(self.eng.on_frame(frame, self.t))

    @rule(side=st.sampled_from(["Buy", "Sell"]), off=st.integers(-2, 2), qty=st.integers(1, 4000))
    def trade(self, side, off, qty):
        self.t += 1
        best = self.eng.book.best_bid() if side == "Sell" else self.eng.book.best_ask()
        self._record(self.eng.on_trade(side, best[0] + off, qty, self.t))

    @precondition(lambda self: self.eng.open_orders())
    @rule(data=st.data())
    def amend_or_cancel(self, data):
        self.t += 1
        order = data.draw(st.sampled_from(self.eng.open_orders()))
        try:
            if data.draw(st.booleans()):
                ev = self.eng.cancel(order_link_id=order.order_link_id, now_ms=self.t)
            else:
                ev = self.eng.amend(
                    order_link_id=order.order_link_id,
                    qty_lots=data.draw(st.integers(1, 3000)),
                    now_ms=self.t,
                )
                self.sizes[order.order_link_id] = self.eng.get_order(
                    order_link_id=order.order_link_id
                ).qty_lots
        except OrderRejected:
            return
        self._record(ev)

    @invariant()
    def fills_bounded_and_position_consistent(self):
        for link, filled in self.fills.items():
            order = self.eng.get_order(order_link_id=link)
            assert filled == order.filled_lots <= order.qty_lots
        assert self.eng.position_lots == self.signed_fill_sum
        for order in self.eng.open_orders():
            assert 0 < order.leaves_lots <= order.qty_lots


TestEngineMachine = EngineMachine.TestCase
TestEngineMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


# --------------------------------------------------------------------------- queue models
def _issue_example(model: str, **kw) -> float:
    """Join with 10 lots ahead; the level grows 10 -> 20, then shrinks to 15 with no trade."""
    eng = make_engine(queue_model=model, **kw)
    feed = Feed()
    eng.on_frame(feed.snapshot([(999, 10)], [(1001, 10)]), 1)
    eng.place(order_link_id="b", side="Buy", price_ticks=999, qty_lots=1, now_ms=2)
    assert eng.queue_ahead(order_link_id="b") == 10
    eng.on_frame(feed.delta(bids=[(999, 20)]), 3)
    assert eng.queue_ahead(order_link_id="b") == 10
    eng.on_frame(feed.delta(bids=[(999, 15)]), 4)
    return eng.queue_ahead(order_link_id="b")


def test_queue_models_on_the_issue_example():
    # hand-computed: risk_averse keeps 10 (cancels are behind us); optimistic 10 - 5 = 5;
    # prob_power n=3: (10/20)**3 = 1/8 of the 5 lots came from ahead -> 10 - 0.625
    assert _issue_example("risk_averse") == 10
    assert _issue_example("optimistic") == 5
    assert _issue_example("prob_power") == 9.375
    assert _issue_example("prob_power", queue_power=1) == 7.5  # (10/20)**1 * 5 = 2.5
    assert _issue_example("prob_power", queue_power=2) == 8.75  # (10/20)**2 * 5 = 1.25


def test_default_queue_model_is_prob_power_3():
    eng = make_engine()
    assert (eng.queue_model, eng.queue_power) == ("prob_power", 3.0)


def test_prob_power_back_too_small_takes_the_rest_from_ahead():
    # front 2000 of 2600 (back 600); 1500 vanish with no trade. share ahead (2000/2600)**3;
    # the back can only lose 600, so what it cannot absorb is also ahead: front = after
    front, back, chg = 2000, 600, 1500
    ahead = (front / (front + back)) ** 3
    expect = front - ahead * chg + min(back - (1 - ahead) * chg, 0)
    assert expect == pytest.approx(1100)
    eng = make_engine()
    feed = Feed()
    eng.on_frame(feed.snapshot([(999, 2000)], [(1001, 1000)]), 1)
    eng.place(order_link_id="b", side="Buy", price_ticks=999, qty_lots=500, now_ms=2)
    eng.on_frame(feed.delta(bids=[(999, 2600)]), 3)
    eng.on_frame(feed.delta(bids=[(999, 1100)]), 4)
    assert eng.queue_ahead(order_link_id="b") == pytest.approx(expect)


@pytest.mark.parametrize("model", ["risk_averse", "prob_power", "optimistic"])
def test_trades_advance_every_model_and_fill_partially(model):
    eng = make_engine(queue_model=model)
    feed = Feed()
    eng.on_frame(feed.snapshot([(999, 10)], [(1001, 10)]), 1)
    eng.place(order_link_id="b", side="Buy", price_ticks=999, qty_lots=4, now_ms=2)
    # a Sell trade of 12 at our price: 10 ahead, then 2 of our 4
    fills = execs(eng.on_trade("Sell", 999, 12, 3))
    assert [(f.qty_lots, f.is_maker) for f in fills] == [(2, True)]
    assert eng.queue_ahead(order_link_id="b") == 0
    # its delta (10 -> 0 at 99.9) is explained by the trade: no double count, no fill
    assert execs(eng.on_frame(feed.delta(bids=[(999, 0), (998, 5)]), 4)) == []
    assert eng.get_order(order_link_id="b").leaves_lots == 2


def test_unknown_queue_model_names_the_accepted_ones():
    with pytest.raises(ValueError, match="risk_averse, prob_power, optimistic"):
        make_engine(queue_model="fifo")


def test_fill_log_records_the_mid_at_the_fill(setup):
    eng, feed = setup
    eng.place(order_link_id="b1", side="Buy", price_ticks=999, qty_lots=500, now_ms=2)
    eng.on_trade("Sell", 999, 2500, 3)
    (rec,) = eng.fill_log
    # best bid 999 + best ask 1001: mid 100.0 -> mid2 2000 ticks
    assert (rec.side, rec.price_ticks, rec.qty_lots, rec.mid2_ticks) == ("Buy", 999, 500, 2000)
    assert rec.fee == Decimal("0.00999")
    assert eng.mid_log == [(1, 2000)]


def test_a_broken_trade_frame_is_a_market_data_error(setup):
    from mmbot.sim.engine import MarketDataError  # noqa: PLC0415

    eng, _ = setup
    with pytest.raises(MarketDataError, match="not JSON"):
        eng.on_frame('{"topic":"publicTrade.TEST","ts":5,"data":[{"S":"Sell",', 5)
    with pytest.raises(MarketDataError, match="misses field 'p'"):
        eng.on_frame('{"topic":"publicTrade.TEST","ts":5,"data":[{"S":"Sell","v":"1"}]}', 5)


class QueueModelsMachine(RuleBasedStateMachine):
    """The three queue models fed the same level changes and trades. After every step:
    each queue estimate is within [0, the level's size]; risk_averse is never ahead of
    prob_power, which is never ahead of optimistic, and fills are ordered the other way."""

    MODELS = ("risk_averse", "prob_power", "optimistic")

    def __init__(self) -> None:
        super().__init__()
        self.feed = Feed()
        self.engines = [make_engine(queue_model=m) for m in self.MODELS]
        snap = self.feed.snapshot([(999, 40), (998, 30)], [(1005, 50)])
        self.t = 1
        for eng in self.engines:
            eng.on_frame(snap, self.t)
            eng.place(order_link_id="b", side="Buy", price_ticks=999, qty_lots=50, now_ms=2)
        self.size = 40

    @rule(size=st.integers(0, 120))
    def level_changes(self, size):
        self.t += 1
        frame = self.feed.delta(bids=[(999, size)]) if size or self.size else None
        if frame is None:
            return
        self.size = size
        for eng in self.engines:
            eng.on_frame(frame, self.t)

    @rule(qty=st.integers(1, 60), through=st.booleans())
    def trade(self, qty, through):
        self.t += 1
        for eng in self.engines:
            eng.on_trade("Sell", 998 if through else 999, qty, self.t)

    @invariant()
    def ordered_and_bounded(self):
        ahead, filled = [], []
        for eng in self.engines:
            order = eng.get_order(order_link_id="b")
            filled.append(order.filled_lots)
            if order.status.is_done:
                ahead.append(0.0)
            else:
                a = eng.queue_ahead(order_link_id="b")
                assert 0 <= a <= eng.book.size_at("b", 999)
                ahead.append(a)
        assert ahead[0] >= ahead[1] - 1e-9 and ahead[1] >= ahead[2] - 1e-9
        assert filled[0] <= filled[1] <= filled[2]


TestQueueModelsMachine = QueueModelsMachine.TestCase
TestQueueModelsMachine.settings = settings(max_examples=80, stateful_step_count=25, deadline=None)
