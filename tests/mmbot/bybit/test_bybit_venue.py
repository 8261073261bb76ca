"""BybitVenue through the real pybit clients against the local simulator (loopback only).

The reference for orders and positions is the simulator's own account state.
"""

import logging
import time
from decimal import Decimal

import pytest
from support.waiting import wait_for

from mmbot.bybit import BybitVenue
from mmbot.sim.server import SimSymbol
from mmbot.types import (
    AmendRequest,
    CancelRequest,
    ConnectionEvent,
    ExecutionEvent,
    OrderEvent,
    OrderRequest,
    OrderStatus,
    PositionEvent,
    RequestError,
)

pytestmark = pytest.mark.slow  # real sockets to a simulator on 127.0.0.1

SYM = "BTCUSDT"


@pytest.fixture(scope="module")
def sim(start_module_sim):
    return start_module_sim(speed=1.0, rate_limit_per_s=None, paused=True)


@pytest.fixture(scope="module")
def venue(sim):
    v = BybitVenue(
        [SYM],
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        http_base=sim.http_url,
        ws_base=sim.ws_url,
        http_retry_delay_s=0,
    )
    v.events = []
    v.set_handler(v.events.append)
    yield v
    v.close()


@pytest.fixture(autouse=True)
def clean(sim, venue):
    venue.events.clear()
    venue.throttled_until_ms = 0
    yield
    venue.cancel_all(SYM)
    assert wait_for(lambda: not sim.open_orders(SYM))


def of(venue, kind, link=None):
    out = [e for e in venue.events if isinstance(e, kind)]
    if link is not None:
        out = [
            e
            for e in out
            if (
                e.order.order_link_id
                if kind is OrderEvent
                else e.order_link_id
                if kind is RequestError
                else e.execution.order_link_id
            )
            == link
        ]
    return out


def test_instrument_rules_come_from_rest(venue):
    inst = venue.instrument(SYM)
    assert (inst.tick_size, inst.lot_size, inst.min_qty_lots) == ("0.1", "0.001", 1)
    assert venue.connected


def test_ack_is_not_a_fill_and_state_comes_from_streams(sim, venue):
    bid, ask = sim.best(SYM)
    venue.place(OrderRequest("v-1", SYM, "Buy", bid - 100, 5))
    assert wait_for(lambda: of(venue, OrderEvent, "v-1"))
    assert wait_for(lambda: venue.acks >= 1)
    time.sleep(0.1)
    assert of(venue, ExecutionEvent) == []  # acknowledged, resting, unfilled
    order = of(venue, OrderEvent, "v-1")[-1].order
    assert order.status is OrderStatus.NEW and order.price_ticks == bid - 100
    assert [o.order_link_id for o in venue.open_orders(SYM)] == ["v-1"]
    venue.amend(AmendRequest("v-1", SYM, price_ticks=bid - 90, qty_lots=7))
    assert wait_for(lambda: any(e.order.qty_lots == 7 for e in of(venue, OrderEvent, "v-1")))
    server = sim.open_orders(SYM)[0]
    assert (server["price"], server["qty"]) == (venue.instrument(SYM).price_str(bid - 90), "0.007")
    venue.cancel(CancelRequest("v-1", SYM))
    assert wait_for(lambda: of(venue, OrderEvent, "v-1")[-1].order.status is OrderStatus.CANCELLED)


def test_post_only_cross_is_cancelled_on_the_order_stream(sim, venue):
    bid, _ = sim.best(SYM)
    venue.place(OrderRequest("v-po", SYM, "Sell", bid, 5))
    assert wait_for(lambda: of(venue, OrderEvent, "v-po"))
    order = of(venue, OrderEvent, "v-po")[-1].order
    assert order.status is OrderStatus.CANCELLED
    assert order.reject_reason == "EC_PostOnlyWillTakeLiquidity"
    assert of(venue, RequestError) == []


def test_fill_updates_position_exactly_like_the_venue(sim, venue):
    bid, ask = sim.best(SYM)
    before = sim.position_lots(SYM)
    venue.place_batch(
        [
            OrderRequest("v-b1", SYM, "Buy", bid - 10, 4),
            OrderRequest("v-b2", SYM, "Sell", ask + 10, 3),
        ]
    )
    assert wait_for(lambda: len(sim.open_orders(SYM)) == 2)
    sim.taker_hit(SYM, "Buy")
    assert wait_for(lambda: of(venue, ExecutionEvent, "v-b1"))
    fill = of(venue, ExecutionEvent, "v-b1")[0].execution
    assert (fill.side, fill.price_ticks, fill.qty_lots, fill.is_maker) == ("Buy", bid - 10, 4, True)
    assert fill.fee == venue.instrument(SYM).notional(bid - 10, 4) * Decimal("0.0002")
    assert wait_for(lambda: of(venue, PositionEvent))
    assert of(venue, PositionEvent)[-1].position.size_lots == before + 4
    assert venue.position(SYM).size_lots == sim.position_lots(SYM) == before + 4
    assert [o.order_link_id for o in venue.open_orders(SYM)] == ["v-b2"]


def test_unknown_order_on_cancel_is_reported_as_gone(venue):
    venue.cancel(CancelRequest("never-sent", SYM))
    assert wait_for(lambda: of(venue, RequestError, "never-sent"))
    err = of(venue, RequestError, "never-sent")[0]
    assert (err.op, err.code) == ("cancel", 110001)


def test_rate_limit_backs_off_until_reset(sim, venue):
    bid, _ = sim.best(SYM)
    sim.reject_next(1, 10006)
    venue.place(OrderRequest("v-rl1", SYM, "Buy", bid - 50, 2))
    assert wait_for(lambda: of(venue, RequestError, "v-rl1"))
    assert of(venue, RequestError, "v-rl1")[0].code == 10006
    assert venue.throttled_until_ms > time.time() * 1000 - 1000
    # Inside the window the request is refused locally and never reaches the venue.
    venue.throttled_until_ms = int(time.time() * 1000) + 10_000
    venue.place(OrderRequest("v-rl2", SYM, "Buy", bid - 50, 2))
    assert of(venue, RequestError, "v-rl2")[0].message.endswith("(not sent)")
    time.sleep(0.2)
    assert sim.open_orders(SYM) == []


def test_trade_service_restart_reconnects(sim, venue):
    bid, _ = sim.best(SYM)
    sim.reject_next(1, 10019)
    venue.place(OrderRequest("v-rs", SYM, "Buy", bid - 50, 2))
    assert wait_for(lambda: [e for e in of(venue, ConnectionEvent) if e.connected])
    assert [e.connected for e in of(venue, ConnectionEvent)] == [False, True]
    assert venue.connected
    venue.place(OrderRequest("v-rs2", SYM, "Buy", bid - 50, 2))
    assert wait_for(lambda: of(venue, OrderEvent, "v-rs2"))


def test_delayed_private_messages_arrive_in_order(sim, venue):
    bid, _ = sim.best(SYM)
    sim.delay_private(0.4)
    try:
        t0 = time.monotonic()
        venue.place(OrderRequest("v-d", SYM, "Buy", bid - 60, 2))
        venue.cancel(CancelRequest("v-d", SYM))
        assert wait_for(lambda: len(of(venue, OrderEvent, "v-d")) >= 2)
        assert time.monotonic() - t0 >= 0.35
        statuses = [e.order.status for e in of(venue, OrderEvent, "v-d")]
        assert statuses[0] is OrderStatus.NEW and statuses[-1] is OrderStatus.CANCELLED
    finally:
        sim.delay_private(0)


def test_private_drop_reports_connection_and_recovers(sim, venue):
    sim.drop("private")
    assert wait_for(lambda: [e.connected for e in of(venue, ConnectionEvent)][-2:] == [False, True])
    assert wait_for(lambda: venue.connected)
    bid, _ = sim.best(SYM)
    venue.place(OrderRequest("v-after-drop", SYM, "Buy", bid - 70, 2))
    assert wait_for(lambda: of(venue, OrderEvent, "v-after-drop"))


def test_secrets_never_logged(sim, caplog):
    caplog.set_level(logging.DEBUG)
    v = BybitVenue(
        [SYM],
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        http_base=sim.http_url,
        ws_base=sim.ws_url,
        http_retry_delay_s=0,
    )
    try:
        sim.reject_next(1, 10001)
        bid, _ = sim.best(SYM)
        v.place(OrderRequest("v-sec", SYM, "Buy", bid - 80, 2))
        time.sleep(0.3)
    finally:
        v.close()
    assert sim.api_secret not in caplog.text and sim.api_secret not in repr(v)


def test_adl_and_funding_executions_reach_the_bot(sim, venue):
    bid, ask = sim.best(SYM)
    venue.place(OrderRequest("v-adl", SYM, "Buy", bid - 10, 2))
    assert wait_for(lambda: sim.open_orders(SYM))
    sim.taker_hit(SYM, "Buy")
    assert wait_for(lambda: of(venue, ExecutionEvent, "v-adl"))
    sim.inject_adl(SYM, 1)
    sim.inject_funding(SYM, "0.0001")
    kinds = lambda: [e.execution.exec_type for e in of(venue, ExecutionEvent)]  # noqa: E731
    assert wait_for(lambda: {"AdlTrade", "Funding"} <= set(kinds()))
    adl = next(
        e.execution for e in of(venue, ExecutionEvent) if e.execution.exec_type == "AdlTrade"
    )
    assert (adl.side, adl.qty_lots, adl.order_link_id) == ("Sell", 1, "")
    funding = next(
        e.execution for e in of(venue, ExecutionEvent) if e.execution.exec_type == "Funding"
    )
    assert funding.fee == sim.summary(SYM)["funding"] and funding.fee != 0
    # the REST read-back has every type too
    back = venue.executions(SYM, 0)
    assert {x.exec_type for x in back} >= {"Trade", "AdlTrade", "Funding"}


def test_fee_rates_and_order_status_come_from_the_venue(sim, venue):
    assert venue.fee_rates(SYM) == (Decimal("0.0002"), Decimal("0.00055"))
    bid, _ = sim.best(SYM)
    venue.place(OrderRequest("v-status", SYM, "Buy", bid - 20, 1))
    assert wait_for(lambda: sim.open_orders(SYM))
    venue.cancel(CancelRequest("v-status", SYM))
    assert wait_for(lambda: not sim.open_orders(SYM))
    closed = venue.order_status(SYM, "v-status")
    assert closed is not None and closed.status is OrderStatus.CANCELLED
    assert venue.order_status(SYM, "never-sent") is None


def test_spot_inventory_is_the_wallet_base_coin_not_zero(start_sim):
    sim = start_sim(symbols=[SimSymbol(SYM, category="spot")], speed=1.0, paused=True)
    v = BybitVenue(
        [SYM],
        category="spot",
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        http_base=sim.http_url,
        ws_base=sim.ws_url,
        http_retry_delay_s=0,
    )
    try:
        bid, _ = sim.best(SYM)
        v.place(OrderRequest("s-1", SYM, "Buy", bid - 10, 3))
        assert wait_for(lambda: sim.open_orders(SYM))
        sim.taker_hit(SYM, "Buy")
        assert wait_for(lambda: not sim.open_orders(SYM))
        assert v.position(SYM).size_lots == 3  # reconcile takes this, not 0
    finally:
        v.close()
