"""Safety with real money: the worst-case exposure never passes the cap, each fill moves the
position once, nothing stays live while the bot cannot see it.

The venue is tests/support/model_venue.py, a pure-Python model whose requests and pushes the
test delivers by hand (delayed, reordered, lost); its truth is the reference.
"""

from __future__ import annotations

from decimal import Decimal

from support.model_venue import SYM, ModelVenue
from support.runner import INST, make_runner, settle, tick

from mmbot.orders import OrderManager, _fair_order
from mmbot.risk import RiskLimits, RiskManager
from mmbot.strategy.base import Quote
from mmbot.types import BUY, SELL, Execution, ExecutionEvent, Position, PositionEvent


def test_ladder_shrink_keeps_dropped_levels_in_the_exposure():
    # limit 3 lots, three 1-lot bids; the model drops to one level while the deeper two are
    # younger than the minimum quote lifetime, then level 0 fills: a new level-0 bid would
    # make the worst case 4 lots
    runner, venue, model = make_runner(cap_lots=3, lifetime_ms=1000)
    model.want = [Quote(BUY, 999, 1, 0), Quote(BUY, 998, 1, 1), Quote(BUY, 997, 1, 2)]
    tick(runner, venue, 1)
    settle(venue)
    assert len(venue.live()) == 3
    model.want = [Quote(BUY, 999, 1, 0)]
    tick(runner, venue, 2)
    level0 = next(o for o in venue.live() if o.price == 999)
    venue.fill(level0.order_id, 1)
    venue.deliver_all()
    for t in range(3, 10):
        tick(runner, venue, t)
        settle(venue)
        assert venue.worst_case()[0] <= 3


def test_reconcile_keeps_a_create_in_flight():
    # a reconcile (after a routine 110001) must not close an order whose create has not
    # reached the venue yet, or its slot is quoted twice
    runner, venue, model = make_runner(cap_lots=1)
    model.want = [Quote(BUY, 999, 1, 0)]
    tick(runner, venue, 1)
    assert len(venue.inflight) == 1  # the create is on its way
    runner.orders.needs_reconcile = True
    tick(runner, venue, 2)
    tick(runner, venue, 3)
    assert venue.worst_case()[0] <= 1
    settle(venue)
    assert len(venue.live()) == 1


def test_position_push_ahead_of_its_execution_counts_the_fill_once():
    runner, venue, model = make_runner(cap_lots=5)
    model.want = [Quote(BUY, 999, 2, 0)]
    tick(runner, venue, 1)
    settle(venue)
    (order,) = venue.live()
    venue.fill(order.order_id, 2, position_first=True)
    venue.deliver_all()
    assert runner.orders.position_lots == venue.position_lots == 2


def test_a_stale_position_report_does_not_undo_a_newer_fill():
    om = OrderManager(ModelVenue(), SYM)
    x = Execution("x7", "o", "l", SYM, BUY, 1000, 2, Decimal(0), Decimal(0), True, 1, 0, seq=7)
    om.on_event(ExecutionEvent(x, 1))
    om.on_event(PositionEvent(Position(SYM, 0, Decimal(0), 0, seq=6), 2))
    assert om.position_lots == 2
    om.on_event(PositionEvent(Position(SYM, 2, Decimal(1000), 3, seq=7), 3))
    assert om.position_lots == 2


def test_adl_moves_the_position_and_funding_does_not():
    runner, venue, model = make_runner(cap_lots=5)
    model.want = [Quote(BUY, 999, 3, 0)]
    tick(runner, venue, 1)
    settle(venue)
    venue.fill(venue.live()[0].order_id, 3)
    venue.deliver_all()
    venue.adl(2)
    venue.funding("0.25")
    venue.deliver_all()
    assert runner.orders.position_lots == venue.position_lots == 1
    assert runner.pnl.position_lots == 1
    assert runner.pnl.funding == Decimal("0.25")


def test_a_dropped_link_cancels_everything_over_rest_until_confirmed():
    runner, venue, model = make_runner(cap_lots=5)
    model.want = [Quote(BUY, 999, 1, 0), Quote(SELL, 1011, 1, 0)]
    tick(runner, venue, 1)
    venue.process(0)  # the bid reaches the venue, the ask is in flight
    venue.deliver_all()
    venue.drop()
    tick(runner, venue, 2)
    assert venue.rest_cancel_alls >= 1 and venue.live() == []
    venue.process(0)  # the ask lands after the cancel-all
    assert len(venue.live()) == 1
    tick(runner, venue, 1000)  # still blind: cancel again until none is live
    assert venue.live() == []
    venue.reconnect()
    tick(runner, venue, 1001)
    settle(venue)
    tick(runner, venue, 1002)
    settle(venue)
    assert len(venue.live()) == 2  # quoting again once it can see


def test_unrealized_pnl_and_the_notional_cap_use_the_venue_mark():
    runner, venue, model = make_runner(cap_lots=100)
    runner.risk = RiskManager(
        RiskLimits(100, Decimal(5000), Decimal(10**9), stale_book_ms=10**9, resume_after_ms=0), INST
    )
    # the book's mid is 1005 ticks; the venue marks at 1250.5: 5000 / 1250.5 -> 3 lots
    runner.on_mark(Decimal("1250.5"))
    assert runner.mark_ticks() == Decimal("1250.5")
    venue.now = 1
    decision = runner._evaluate_risk(1)
    assert decision.cap_lots == 3
    runner.pnl.on_fill(BUY, 1000, 2)
    assert runner.pnl.unrealized(runner.mark_ticks()) == Decimal("501")  # 2 * 250.5


def test_the_budget_goes_to_level_zero_first_and_alternates_sides():
    items = [
        ("Buy", 2, 0),
        ("Buy", 0, 5),
        ("Buy", 1, 0),
        ("Buy", 0, 1),
        ("Sell", 1, 0),
        ("Sell", 0, 3),
    ]
    assert _fair_order(items, lambda it: it) == [
        ("Buy", 0, 1),
        ("Sell", 0, 3),
        ("Buy", 0, 5),
        ("Sell", 1, 0),
        ("Buy", 1, 0),
        ("Buy", 2, 0),
    ]


def test_reconcile_keeps_an_amend_in_flight_in_the_exposure():
    # an amend from 1 to 3 lots is on its way when a reconcile reads the venue (still 1
    # lot): dropping it from the count would let a new 2-lot bid through a 4-lot cap
    runner, venue, model = make_runner(cap_lots=4)
    model.want = [Quote(BUY, 999, 1, 0)]
    tick(runner, venue, 1)
    settle(venue)
    model.want = [Quote(BUY, 999, 3, 0)]
    tick(runner, venue, 2)
    assert [op for op, *_ in venue.inflight] == ["amend"]
    runner.orders.needs_reconcile = True
    model.want = [Quote(BUY, 999, 1, 0), Quote(BUY, 998, 2, 1)]  # the model changed its mind
    tick(runner, venue, 3)
    assert venue.worst_case()[0] <= 4


def test_a_create_in_flight_does_not_make_every_tick_reconcile_over_rest():
    # a reconcile that finds a create still on its way settles it once that create can no
    # longer arrive (the pending timeout), not by asking the venue's REST on every frame
    runner, venue, model = make_runner(cap_lots=1, pending_timeout_ms=1000)
    venue.recv_window_ms = 500  # the order manager's timeout must exceed it
    calls = []
    real = venue.open_orders
    venue.open_orders = lambda symbol: calls.append(venue.now) or real(symbol)
    model.want = [Quote(BUY, 999, 1, 0)]
    tick(runner, venue, 1)
    runner.orders.needs_reconcile = True
    for t in range(2, 500):
        tick(runner, venue, t)
    assert len(calls) == 1
    tick(runner, venue, 1500)  # the create has timed out: noticed on this tick...
    tick(runner, venue, 1501)  # ...and one more reconcile settles it
    assert len(calls) == 2 and venue.worst_case()[0] <= 1


def test_an_execution_a_reconcile_already_counted_does_not_hide_a_later_fill():
    # Found by the exposure state machine. A reconcile counts an order's reported fills as
    # executed (the REST position holds them); the late execution of such a fill then
    # counted again, so the next fill, reported by its order push before its execution,
    # looked executed too and the bot bought past its cap (worst case 5 of 4).
    runner, venue, model = make_runner(cap_lots=4, lifetime_ms=3, pending_timeout_ms=50)
    venue.recv_window_ms = 40
    tick(runner, venue, 1)
    model.want = [Quote(BUY, 995, 2, 0), Quote(BUY, 994, 1, 1)]
    tick(runner, venue, 2)
    venue.process(0)  # the level-1 create stays in flight
    venue.fill(venue.live()[0].order_id, 1, position_first=True)  # order, position, exec, order
    venue.deliver(3)  # only the order push: 1 of 2 filled
    tick(runner, venue, 53)  # the unanswered create: a reconcile reads position 1
    model.want = [Quote(BUY, 995, 3, 0)]
    tick(runner, venue, 54)  # amend to 1 filled + 3 more
    venue.fill(venue.live()[0].order_id, 1)  # the last lot: exec, order Filled, position
    venue.deliver(2)  # the first fill's late execution
    venue.deliver(3)  # the order push: Filled, 2 of 2; the second execution not yet
    assert runner.orders.exposure()[0] == 2  # position 1 and one fill not yet executed
    tick(runner, venue, 55)
    long_worst, _ = venue.worst_case()
    assert long_worst <= 4, long_worst
