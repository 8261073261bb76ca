"""What the bot's safety work needs from the simulator, over real sockets with pybit:
fee rates, Bybit's rate windows, disconnect protection, ADL/funding pushes, fault toggles,
mark price, execution/order-history filters. Shapes follow Bybit's v5 docs."""

import json
import time

import pytest
import requests
from pybit.exceptions import InvalidRequestError
from support.waiting import wait_for
from test_sim_server import RawWS

from mmbot.bybit import LocalWebSocketTrading, local_http
from mmbot.sim.protocol import Scale, sign_ws_auth

pytestmark = pytest.mark.slow
S = Scale("0.1")


@pytest.fixture
def sim(start_sim):
    return start_sim(speed=1.0, rate_limit_per_s=10, paused=True)


@pytest.fixture
def http(sim):
    return local_http(
        sim.http_url,
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        retry_delay=0,
        retry_codes={-1},
    )  # no retry: see the 10006


def private_ws(sim, topics):
    ws = RawWS(f"{sim.ws_url}/v5/private")
    expires = int(time.time() * 1000) + 5000
    ws.send({"op": "auth", "args": [sim.api_key, expires, sign_ws_auth(sim.api_secret, expires)]})
    ws.send({"op": "subscribe", "req_id": "s", "args": topics})
    assert wait_for(lambda: any(m.get("op") == "subscribe" for m in ws.parsed()))
    return ws


def pushes(ws, topic):
    return [d for m in ws.parsed() if m.get("topic") == topic for d in m["data"]]


def place(http, sim, link, side="Buy", offset=500, qty="0.001", tif="PostOnly"):
    bid, ask = sim.best("BTCUSDT")
    price = S.to_str(bid - offset if side == "Buy" else ask + offset)
    return http.place_order(
        category="linear",
        symbol="BTCUSDT",
        side=side,
        orderType="Limit",
        qty=qty,
        price=price,
        timeInForce=tif,
        orderLinkId=link,
    )


def test_fee_rate_endpoint_serves_the_configured_fees(http):
    r = http.get_fee_rates(category="linear", symbol="BTCUSDT")
    assert r["result"]["list"] == [
        {"symbol": "BTCUSDT", "takerFeeRate": "0.00055", "makerFeeRate": "0.0002"}
    ]


def test_create_amend_and_cancel_have_separate_rolling_windows(sim, http):
    for i in range(10):
        place(http, sim, f"c{i}")
    for i in range(10):  # the old simulator lumped these with creates
        http.cancel_order(category="linear", symbol="BTCUSDT", orderLinkId=f"c{i}")
    url = f"{sim.http_url}/v5/order/create"
    with pytest.raises(InvalidRequestError) as e:
        place(http, sim, "c-over")
    assert e.value.status_code == 10006 and "Too many visits!" in e.value.message
    # the headers, read raw: pybit drops them unless asked
    body = json.dumps(
        {
            "category": "linear",
            "symbol": "BTCUSDT",
            "side": "Buy",
            "orderType": "Limit",
            "qty": "0.001",
            "price": "1000.0",
        }
    )
    headers = http._prepare_headers(body, 5000)  # pybit signs
    r = requests.post(url, data=body, headers=headers, timeout=5)
    assert r.json()["retCode"] == 10006
    assert r.headers["X-Bapi-Limit"] == "10" and r.headers["X-Bapi-Limit-Status"] == "0"
    assert int(r.headers["X-Bapi-Limit-Reset-Timestamp"]) > int(time.time() * 1000) - 1000


def test_the_trade_socket_shares_the_window_and_answers_10006_with_headers(sim, http):
    for i in range(9):
        place(http, sim, f"r{i}")
    acks, errors = [], []
    trade = LocalWebSocketTrading(
        testnet=False, api_key=sim.api_key, api_secret=sim.api_secret, ws_base=sim.ws_url
    )
    try:
        bid, _ = sim.best("BTCUSDT")
        for i in range(2):
            trade.place_order(
                acks.append,
                error_callback=errors.append,
                category="linear",
                symbol="BTCUSDT",
                side="Buy",
                orderType="Limit",
                qty="0.001",
                price=S.to_str(bid - 600),
                timeInForce="PostOnly",
                orderLinkId=f"w{i}",
            )
        assert wait_for(lambda: len(acks) + len(errors) == 2)
    finally:
        trade.exit()
    assert len(acks) == 1 and acks[0]["header"]["X-Bapi-Limit-Status"] == "0"
    (err,) = errors
    assert (err["retCode"], err["retMsg"]) == (10006, "Too many visits!")
    assert err["header"]["X-Bapi-Limit"] == "10" and err["header"]["X-Bapi-Limit-Status"] == "0"
    assert int(err["header"]["X-Bapi-Limit-Reset-Timestamp"]) > 0


def test_a_batch_counts_each_order(sim, http):
    bid, _ = sim.best("BTCUSDT")
    batch = [
        {
            "symbol": "BTCUSDT",
            "side": "Buy",
            "orderType": "Limit",
            "qty": "0.001",
            "price": S.to_str(bid - 500 - i),
            "timeInForce": "PostOnly",
            "orderLinkId": f"b{i}",
        }
        for i in range(6)
    ]
    r = http.place_batch_order(category="linear", request=batch)
    assert [i["code"] for i in r["retExtInfo"]["list"]] == [0] * 6
    for i in range(4):
        place(http, sim, f"s{i}")
    with pytest.raises(InvalidRequestError) as e:  # 6 + 4 = 10 used: the 11th is over
        place(http, sim, "s-over")
    assert e.value.status_code == 10006
    assert len(sim.open_orders("BTCUSDT")) == 10


def test_disconnect_protection_cancels_after_the_window(sim, http):
    r = http.set_dcp(timeWindow=3, product="DERIVATIVES")
    assert r["retCode"] == 0
    with pytest.raises(InvalidRequestError) as e:
        http.set_dcp(timeWindow=2, product="DERIVATIVES")
    assert e.value.status_code == 10001
    ws = private_ws(sim, ["dcp", "order"])
    place(http, sim, "dcp-1")
    ws.close()
    t0 = time.monotonic()
    assert wait_for(lambda: sim.open_orders("BTCUSDT") == [], timeout_s=8)
    assert time.monotonic() - t0 >= 2.5 and sim.dcp_fired() == 1
    back = private_ws(sim, ["order"])
    try:
        assert wait_for(lambda: pushes(back, "order"))
        (o,) = pushes(back, "order")
        assert (o["orderLinkId"], o["orderStatus"], o["cancelType"]) == (
            "dcp-1",
            "Cancelled",
            "CancelByDCP",
        )
    finally:
        back.close()


def test_adl_and_funding_reach_the_private_stream(sim, http):
    ws = private_ws(sim, ["execution", "position"])
    try:
        place(http, sim, "long", side="Buy", qty="0.003", offset=-100, tif="GTC")  # crosses
        assert sim.position_lots("BTCUSDT") == 3
        mark = sim.mark_price("BTCUSDT")
        sim.inject_adl("BTCUSDT", 1)
        sim.inject_funding("BTCUSDT", "0.0001")
        assert wait_for(lambda: len(pushes(ws, "execution")) >= 3)
        kinds = [(x["execType"], x["orderLinkId"]) for x in pushes(ws, "execution")]
        assert kinds[-2:] == [("AdlTrade", ""), ("Funding", "")]
        fund = pushes(ws, "execution")[-1]
        assert fund["execFee"] == str(
            (
                mark * 2 * Scale("0.001").to_decimal(1) * __import__("decimal").Decimal("0.0001")
            ).normalize()
        )
        assert sim.position_lots("BTCUSDT") == 2
        s = sim.summary("BTCUSDT")
        assert s["position_lots"] == 2 and s["funding"] == __import__("decimal").Decimal(
            fund["execFee"]
        )
        topics = [m.get("topic") for m in ws.parsed() if m.get("topic")]
        adl_at = max(
            i
            for i, m in enumerate(ws.parsed())
            if m.get("topic") == "execution" and m["data"][0]["execType"] == "AdlTrade"
        )
        assert ws.parsed()[adl_at + 1]["topic"] == "position" and topics
    finally:
        ws.close()


def test_position_first_toggle_sends_the_position_ahead(sim, http):
    ws = private_ws(sim, ["execution", "position"])
    try:
        sim.position_first(True)
        place(http, sim, "pf", side="Buy", qty="0.001", offset=-100, tif="GTC")
        assert wait_for(lambda: pushes(ws, "execution"))
        order = [m["topic"] for m in ws.parsed() if m.get("topic")]
        assert order[:2] == ["position", "execution"]
    finally:
        sim.position_first(False)
        ws.close()


def test_drop_each_socket_kind(sim):
    conns = {
        "public": RawWS(f"{sim.ws_url}/v5/public/linear"),
        "private": RawWS(f"{sim.ws_url}/v5/private"),
        "trade": RawWS(f"{sim.ws_url}/v5/trade"),
    }
    for ws in conns.values():
        ws.send({"op": "ping"})
    assert wait_for(lambda: all(ws.msgs for ws in conns.values()))
    for kind, ws in conns.items():
        assert sim.drop(kind) == 1
        assert wait_for(lambda ws=ws: not ws._t.is_alive())
        others = [w for k, w in conns.items() if k != kind]
        assert all(w.ws.connected for w in others if w._t.is_alive())


def test_race_next_makes_a_cancel_find_its_order_filled(sim, http):
    place(http, sim, "race")
    sim.race_next(1)
    with pytest.raises(InvalidRequestError) as e:
        http.cancel_order(category="linear", symbol="BTCUSDT", orderLinkId="race")
    assert e.value.status_code == 110001
    assert [x["orderLinkId"] for x in sim.executions("BTCUSDT")] == ["race"]


def test_execution_list_filters_and_order_history(sim, http):
    place(http, sim, "x1", offset=-100, tif="GTC")
    place(http, sim, "x2", offset=-100, tif="GTC")
    place(http, sim, "rest-then-cancel")
    http.cancel_order(category="linear", symbol="BTCUSDT", orderLinkId="rest-then-cancel")
    q = dict(category="linear", symbol="BTCUSDT")
    assert http.get_executions(**q, orderId="no-such-order")["result"]["list"] == []
    got = http.get_executions(**q, orderLinkId="x2")["result"]["list"]
    assert got and {x["orderLinkId"] for x in got} == {"x2"}
    assert http.get_executions(**q, execType="Funding")["result"]["list"] == []
    hist = http.get_order_history(**q)["result"]["list"]
    by_link = {o["orderLinkId"]: o for o in hist}
    assert by_link["rest-then-cancel"]["orderStatus"] == "Cancelled"
    assert by_link["rest-then-cancel"]["cancelType"] == "CancelByUser"
    assert by_link["x1"]["orderStatus"] == "Filled" and by_link["x1"]["timeInForce"] == "GTC"
    page = http.get_order_history(**q, limit=1)["result"]
    assert len(page["list"]) == 1 and page["nextPageCursor"]


def test_fok_over_rest_is_killed_whole(sim, http):
    bid, _ = sim.best("BTCUSDT")
    levels = sim.book_levels("BTCUSDT", 1)[0]
    too_big = Scale("0.001").to_str(levels[0][1] + 1)
    http.place_order(
        category="linear",
        symbol="BTCUSDT",
        side="Sell",
        orderType="Limit",
        qty=too_big,
        price=S.to_str(bid),
        timeInForce="FOK",
        orderLinkId="fok",
    )
    assert [x for x in sim.executions() if x["orderLinkId"] == "fok"] == []
    (o,) = http.get_order_history(category="linear", symbol="BTCUSDT", orderLinkId="fok")["result"][
        "list"
    ]
    assert (o["orderStatus"], o["timeInForce"]) == ("Cancelled", "FOK")


def test_mark_price_on_tickers(sim, http):
    (t,) = http.get_tickers(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert t["markPrice"] == S.to_str(S.to_units(str(sim.mark_price("BTCUSDT"))))
    assert all(isinstance(v, str) for v in t.values())
    ws = RawWS(f"{sim.ws_url}/v5/public/linear")
    try:
        ws.send({"op": "subscribe", "req_id": "t", "args": ["tickers.BTCUSDT"]})
        assert wait_for(lambda: any(m.get("topic") == "tickers.BTCUSDT" for m in ws.parsed()))
        m = next(m for m in ws.parsed() if m.get("topic") == "tickers.BTCUSDT")
        assert m["type"] == "snapshot" and m["data"]["markPrice"] == t["markPrice"]
    finally:
        ws.close()


def test_position_rest_shape_and_unknown_paths(sim, http):
    place(http, sim, "p", offset=-100, tif="GTC")
    (p,) = http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert "entryPrice" not in p and p["seq"] == 1 and p["size"] == "0.001"
    for key in ("avgPrice", "tradeMode", "riskId", "liqPrice", "curRealisedPnl", "createdTime"):
        assert key in p
    r = requests.get(f"{sim.http_url}/v5/no/such/path", timeout=5)
    assert r.status_code == 404 and r.json()["retCode"] == 10404
    for call in (
        lambda: http.get_open_orders(symbol="BTCUSDT"),  # category missing
        lambda: http.get_positions(symbol="BTCUSDT"),
        lambda: http.get_wallet_balance(accountType="CONTRACT"),
    ):
        with pytest.raises(InvalidRequestError) as e:
            call()
        assert e.value.status_code == 10001


def test_category_topics_get_only_their_category(sim, http):
    ws = private_ws(sim, ["order.linear", "order.spot"])
    try:
        place(http, sim, "cat")
        assert wait_for(lambda: any(m.get("topic") == "order.linear" for m in ws.parsed()))
        assert not any(m.get("topic") == "order.spot" for m in ws.parsed())
    finally:
        ws.close()
