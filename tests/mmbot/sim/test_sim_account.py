"""The simulated account without sockets: time in force, shapes, exposure monitor,
ADL/bust/funding, spot wallet. Numbers are hand-computed from the instrument below."""

from decimal import Decimal

import pytest

from mmbot.sim.account import SimAccount, SimSymbol
from mmbot.sim.engine import OrderRejected

# tick 0.1, lot 0.001: 1000.0 is 10000 ticks, 0.005 is 5 lots
LIN = SimSymbol("BTCUSDT", "linear", "0.1", "0.001", "0.001", "100.000", "0")
SPOT = SimSymbol("ETHUSDT", "spot", "0.01", "0.0001", "0.0001", "100", "0")


def snap(bids, asks, u=1):
    lv = lambda xs: ",".join(f'["{p}","{q}"]' for p, q in xs)  # noqa: E731
    return (
        '{"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":1,"data":{"s":"BTCUSDT",'
        f'"b":[{lv(bids)}],"a":[{lv(asks)}],"u":{u},"seq":1}},"cts":1}}'
    )


@pytest.fixture
def acct():
    a = SimAccount({"BTCUSDT": LIN}, maker_fee="0.0002", taker_fee="0.0005", balance="1000")
    # best bid 999.9 x 0.002, best ask 1000.1 x 0.003
    a.on_frame(
        "BTCUSDT",
        snap([("999.9", "0.002"), ("999.8", "0.010")], [("1000.1", "0.003"), ("1000.2", "0.010")]),
        1,
    )
    return a


def create(a, now=2, **kw):
    args = {"category": "linear", "symbol": "BTCUSDT", "orderType": "Limit", **kw}
    return a.create(args, now)


def orders(pushes):
    return [d for t, d in pushes if t == "order"]


def execs(pushes):
    return [d for t, d in pushes if t == "execution"]


def test_fok_that_cannot_fill_whole_is_killed_without_a_fill(acct):
    # Issue 12 item 1: the old simulator filled 0.002 as taker and rested the rest.
    data, pushes = create(
        acct, side="Sell", qty="0.005", price="999.9", timeInForce="FOK", orderLinkId="fok"
    )
    assert execs(pushes) == []
    last = orders(pushes)[-1]
    assert (
        last["orderStatus"],
        last["timeInForce"],
        last["rejectReason"],
        last["cumExecQty"],
        last["leavesQty"],
    ) == ("Cancelled", "FOK", "EC_CancelForNoFullFill", "0.000", "0.000")
    assert acct.open_order_items() == [] and acct.engines["BTCUSDT"].position_lots == 0


def test_fok_that_can_fill_whole_fills(acct):
    _, pushes = create(acct, side="Sell", qty="0.012", price="999.8", timeInForce="FOK")
    assert [(x["execPrice"], x["execQty"]) for x in execs(pushes)] == [
        ("999.9", "0.002"),
        ("999.8", "0.010"),
    ]
    assert orders(pushes)[-1]["orderStatus"] == "Filled"


def test_ioc_remainder_is_cancelled_not_rested(acct):
    _, pushes = create(
        acct, side="Buy", qty="0.005", price="1000.1", timeInForce="IOC", orderLinkId="ioc"
    )
    (x,) = execs(pushes)
    assert (x["execQty"], x["isMaker"], x["execFee"]) == ("0.003", False, "0.00150015")
    last = orders(pushes)[-1]
    assert (last["orderStatus"], last["timeInForce"], last["cumExecQty"], last["leavesQty"]) == (
        "Cancelled",
        "IOC",
        "0.003",
        "0.000",
    )
    assert last["cumExecValue"] == "3.0003" and last["avgPrice"] == "1000.1"
    assert acct.open_order_items() == []


def test_order_shape_fields_and_cancel_type(acct):
    data, pushes = create(acct, side="Buy", qty="0.001", price="990.0", timeInForce="PostOnly")
    assert data["orderLinkId"] == ""  # Bybit: "" when not given
    o = orders(pushes)[0]
    for key in (
        "tpslMode",
        "createType",
        "stopOrderType",
        "closedPnl",
        "feeCurrency",
        "cumFeeDetail",
        "smpType",
        "placeType",
    ):
        assert key in o
    assert (
        o["createType"],
        o["tpslMode"],
        o["cancelType"],
        o["cumExecValue"],
        o["cumExecQty"],
        o["avgPrice"],
    ) == ("CreateByUser", "UNKNOWN", "UNKNOWN", "0", "0.000", "0")
    _, pushes = acct.cancel(
        {"category": "linear", "symbol": "BTCUSDT", "orderId": data["orderId"]}, 3
    )
    assert orders(pushes)[0]["cancelType"] == "CancelByUser"
    hist = acct.closed_order_items()
    assert hist[0]["orderId"] == data["orderId"] and hist[0]["orderStatus"] == "Cancelled"


def test_requests_are_validated(acct):
    for args, needle in [
        (
            {
                "symbol": "BTCUSDT",
                "side": "Buy",
                "orderType": "Limit",
                "qty": "0.001",
                "price": "1",
            },
            "category is required",
        ),
        (
            {
                "category": "spot",
                "symbol": "BTCUSDT",
                "side": "Buy",
                "orderType": "Limit",
                "qty": "0.001",
                "price": "1",
            },
            "not in category spot",
        ),
        (
            {
                "category": "linear",
                "symbol": "BTCUSDT",
                "side": "Buy",
                "orderType": "Limit",
                "qty": "0.001",
                "price": "1",
                "timeInForce": "GTD",
            },
            "timeInForce",
        ),
        (
            {
                "category": "linear",
                "symbol": "BTCUSDT",
                "side": "Buy",
                "orderType": "Limit",
                "qty": "0.0015",
                "price": "1",
            },
            "not a multiple of 0.001",
        ),
    ]:
        with pytest.raises(OrderRejected, match=needle) as e:
            acct.create(args, 2)
        assert e.value.code == 10001


def test_exposure_monitor_keeps_the_worst_case(acct):
    for i, px in enumerate(("999.0", "998.0", "997.0")):
        create(acct, side="Buy", qty="0.001", price=px, timeInForce="PostOnly", orderLinkId=f"b{i}")
    create(acct, side="Sell", qty="0.002", price="1001.0", timeInForce="PostOnly")
    assert acct.max_exposure("BTCUSDT") == (3, 2)
    acct.taker_hit("BTCUSDT", "Buy", None, 3)  # b0 fills: position 1, buys 2
    assert acct.engines["BTCUSDT"].position_lots == 1
    create(acct, side="Buy", qty="0.002", price="996.0", timeInForce="PostOnly")
    # worst long now 1 + 2 + 2 = 5; short 2 - 1 = 1 (the max stays 2)
    assert acct.max_exposure("BTCUSDT") == (5, 2)
    acct.cancel_all({"category": "linear"}, 4)
    assert acct.max_exposure("BTCUSDT") == (5, 2)


def test_execution_seq_matches_the_position_seq(acct):
    _, pushes = create(acct, side="Buy", qty="0.004", price="1000.2", timeInForce="GTC")
    seqs = [x["seq"] for x in execs(pushes)]
    (pos,) = [d for t, d in pushes if t == "position"]
    assert seqs == [1, 2] and pos["seq"] == 2 and pos["size"] == "0.004"
    assert [t for t, _ in pushes] == [
        "order",
        "execution",
        "execution",
        "order",
        "position",
        "wallet",
    ]


def test_adl_closes_part_of_the_position_with_the_exchanges_order(acct):
    create(acct, side="Buy", qty="0.003", price="1000.1", timeInForce="GTC")  # long 3 @ 1000.1
    pushes = acct.force_close("BTCUSDT", 1, 10050, "AdlTrade", 5)  # 1 lot @ 1005.0
    assert [t for t, _ in pushes] == ["execution", "position", "wallet"]
    x = execs(pushes)[0]
    assert (
        x["execType"],
        x["orderLinkId"],
        x["side"],
        x["execPrice"],
        x["execQty"],
        x["execFee"],
        x["createType"],
        x["closedSize"],
    ) == ("AdlTrade", "", "Sell", "1005.0", "0.001", "0", "CreateByAdl_PassThrough", "0.001")
    assert x["execPnl"] == "0.0049"  # (1005.0 - 1000.1) * 0.001
    pos = pushes[1][1]
    assert (pos["size"], pos["side"]) == ("0.002", "Buy")
    with pytest.raises(ValueError, match="qty_lots must be 1..2"):
        acct.force_close("BTCUSDT", 3, 10050, "BustTrade", 6)


def test_funding_is_position_value_times_rate_and_keeps_the_position(acct):
    create(acct, side="Buy", qty="0.003", price="1000.1", timeInForce="GTC")
    # mark = mid of 999.9 / 1000.2 (the 0.003 ask was taken... the book is the market's:
    # the engine's taker fills have no market impact) = (9999 + 10001) / 2 = 10000 ticks
    assert acct.engines["BTCUSDT"].mark_ticks() == 10000
    pushes = acct.funding("BTCUSDT", "0.0001", 7)
    x = execs(pushes)[0]
    # 0.003 * 1000.0 * 0.0001 = 0.0003 paid by the long
    assert (x["execType"], x["execFee"], x["execQty"], x["execPrice"], x["feeRate"]) == (
        "Funding",
        "0.0003",
        "0.003",
        "1000.0",
        "0.0001",
    )
    s = acct.summary("BTCUSDT")
    assert s["position_lots"] == 3 and s["funding"] == Decimal("0.0003")
    assert s["fees"] == Decimal("0.00150015")  # 3.0003 * 0.0005 taker
    # wallet: 1000 - fees - funding
    assert acct.coin_balances()["USDT"] == Decimal("1000") - Decimal("0.00150015") - Decimal(
        "0.0003"
    )


def test_mark_is_the_mid_rounded_half_even_to_the_tick():
    a = SimAccount({"BTCUSDT": LIN})
    a.on_frame("BTCUSDT", snap([("999.9", "1")], [("1000.2", "1")]), 1)
    assert a.engines["BTCUSDT"].mark_ticks() == 10000  # 10000.5 -> 10000 (even)
    a.on_frame("BTCUSDT", snap([("999.8", "1")], [("1000.1", "1")], u=1), 2)
    assert a.engines["BTCUSDT"].mark_ticks() == 10000  # 9999.5 -> 10000 (even)


def test_spot_fills_move_the_base_coin_balance():
    a = SimAccount(
        {"ETHUSDT": SPOT},
        maker_fee="0",
        taker_fee="0.001",
        balance="1000",
        base_balances={"ETH": "0.5"},
    )
    a.on_frame(
        "ETHUSDT", snap([("99.00", "1")], [("100.00", "1")]).replace("BTCUSDT", "ETHUSDT"), 1
    )
    a.create(
        {
            "category": "spot",
            "symbol": "ETHUSDT",
            "side": "Buy",
            "orderType": "Market",
            "qty": "0.2",
            "marketUnit": "baseCoin",
        },
        2,
    )
    bal = a.coin_balances()
    # bought 0.2 at 100.00: USDT 1000 - 20 - 0.02 fee; ETH 0.5 + 0.2
    assert bal == {"ETH": Decimal("0.7"), "USDT": Decimal("979.98")}
    with pytest.raises(OrderRejected) as e:  # can't sell what isn't there
        a.create(
            {
                "category": "spot",
                "symbol": "ETHUSDT",
                "side": "Sell",
                "orderType": "Limit",
                "qty": "0.8",
                "price": "120.00",
            },
            3,
        )
    assert e.value.code == 170131


def test_each_order_push_is_consistent_at_its_own_moment(acct):
    # Issue 12 item 9: a New push carried cumExecQty "0.000" beside the final cumExecValue.
    _, pushes = create(acct, side="Buy", qty="0.004", price="1000.2", timeInForce="GTC")
    first, last = orders(pushes)
    assert (
        first["orderStatus"],
        first["cumExecQty"],
        first["cumExecValue"],
        first["cumExecFee"],
        first["avgPrice"],
    ) == ("New", "0.000", "0", "0", "0")
    # 0.003 @ 1000.1 + 0.001 @ 1000.2 = 3.0003 + 1.0002; taker fee 0.0005
    assert (
        last["orderStatus"],
        last["cumExecQty"],
        last["cumExecValue"],
        last["cumExecFee"],
        last["avgPrice"],
    ) == ("Filled", "0.004", "4.0005", "0.00200025", "1000.125")


def test_spot_ioc_partly_filled_ends_partially_filled_canceled():
    a = SimAccount({"ETHUSDT": SPOT}, maker_fee="0", taker_fee="0", balance="1000")
    a.on_frame(
        "ETHUSDT", snap([("99.00", "1")], [("100.00", "0.1")]).replace("BTCUSDT", "ETHUSDT"), 1
    )
    _, pushes = a.create(
        {
            "category": "spot",
            "symbol": "ETHUSDT",
            "side": "Buy",
            "orderType": "Limit",
            "qty": "0.3",
            "price": "100.00",
            "timeInForce": "IOC",
        },
        2,
    )
    last = orders(pushes)[-1]
    assert (last["orderStatus"], last["cumExecQty"], last["price"]) == (
        "PartiallyFilledCanceled",
        "0.1000",
        "100",
    )  # spot strips trailing zeros


def test_spot_market_buy_qty_is_quote_coin_unless_base_is_said():
    a = SimAccount({"ETHUSDT": SPOT}, maker_fee="0", taker_fee="0", balance="1000")
    a.on_frame(
        "ETHUSDT",
        snap([("99.00", "1")], [("100.00", "0.1"), ("101.00", "1")]).replace("BTCUSDT", "ETHUSDT"),
        1,
    )
    # 20.1 USDT: 0.1 @ 100.00 = 10, then 10.1 / 101.00 = 0.1 exactly -> 0.2 ETH
    _, pushes = a.create(
        {
            "category": "spot",
            "symbol": "ETHUSDT",
            "side": "Buy",
            "orderType": "Market",
            "qty": "20.1",
        },
        2,
    )
    assert [(x["execPrice"], x["execQty"]) for x in execs(pushes)] == [
        ("100", "0.1000"),
        ("101", "0.1000"),
    ]
    assert orders(pushes)[-1]["marketUnit"] == "baseCoin"
    _, pushes = a.create(
        {
            "category": "spot",
            "symbol": "ETHUSDT",
            "side": "Buy",
            "orderType": "Market",
            "qty": "0.05",
            "marketUnit": "baseCoin",
        },
        3,
    )
    assert [x["execQty"] for x in execs(pushes)] == ["0.0500"]
    with pytest.raises(OrderRejected) as e:  # not even one lot
        a.create(
            {
                "category": "spot",
                "symbol": "ETHUSDT",
                "side": "Buy",
                "orderType": "Market",
                "qty": "0.001",
            },
            4,
        )
    assert e.value.code == 170140


def test_a_maximum_off_the_lot_grid_is_whole_lots_like_bybits_spot_btcusdt():
    # Bybit's spot BTCUSDT: maxLimitOrderQty 71.73956243 on basePrecision 0.000001
    sym = SimSymbol("BTCUSDT", "spot", "0.01", "0.000001", "0.000048", "71.73956243", "1")
    assert sym.max_lots == 71_739_562
    account = SimAccount({"BTCUSDT": sym}, "0.001", "0.001", "100000")
    assert account.engines["BTCUSDT"].max_qty_lots == 71_739_562
    with pytest.raises(ValueError, match="max_qty 0.00004 is below min_qty"):
        SimSymbol("BTCUSDT", "spot", "0.01", "0.000001", "0.000048", "0.00004", "1")
