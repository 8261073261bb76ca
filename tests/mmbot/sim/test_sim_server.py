"""The local Bybit v5 simulator, exercised by the real pybit clients over loopback sockets.

Shapes are checked against Bybit's documented v5 messages;
the streamed book is checked against an independent dict book built from the frames.
"""

import hashlib
import hmac
import json
import threading
import time

import pytest
import websocket
from pybit.exceptions import InvalidRequestError
from support.waiting import wait_for

import obcore
from mmbot.bybit import LocalWebSocket, LocalWebSocketTrading, local_http
from mmbot.sim.protocol import Scale, sign_http, sign_ws_auth
from mmbot.sim.server import touch_trades

pytestmark = pytest.mark.slow  # real sockets to a simulator on 127.0.0.1


@pytest.fixture(scope="module")
def sim(start_module_sim):
    return start_module_sim(speed=1.0, rate_limit_per_s=10_000)


@pytest.fixture(scope="module")
def http(sim):
    return local_http(sim.http_url, api_key=sim.api_key, api_secret=sim.api_secret, retry_delay=0)


class RawWS:
    """A bare websocket-client connection collecting every text message."""

    def __init__(self, url):
        self.ws = websocket.create_connection(url, timeout=5)
        self.msgs = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        try:
            while True:
                self.msgs.append(self.ws.recv())
        except Exception:
            pass

    def send(self, obj):
        self.ws.send(json.dumps(obj))

    def parsed(self):
        out = []
        for m in list(self.msgs):
            try:
                out.append(json.loads(m))
            except ValueError:
                out.append({"_raw": m})
        return out

    def close(self):
        self.ws.close()


def test_scale_is_exact():
    s = Scale("0.10")
    assert s.to_units("65000.30") == 650003
    assert s.to_str(650003) == "65000.30"
    assert Scale("0.01", strip=True).to_str(2932800) == "29328"
    with pytest.raises(ValueError, match="price '1.05' is not a multiple of 0.10"):
        s.to_units("1.05", "price")


def test_signatures_match_hand_computed_hmac():
    # Independent: hashlib directly on Bybit's documented concatenations.
    want = hmac.new(b"s", b"1700000000000k5000a=1&b=2", hashlib.sha256).hexdigest()
    assert sign_http("s", 1700000000000, "k", 5000, "a=1&b=2") == want
    want_ws = hmac.new(b"s", b"GET/realtime1700000001000", hashlib.sha256).hexdigest()
    assert sign_ws_auth("s", 1700000001000) == want_ws


def test_rest_market_endpoints(sim, http):
    t = http.get_server_time()
    assert t["retCode"] == 0 and abs(int(t["result"]["timeSecond"]) - time.time()) < 5
    info = http.get_instruments_info(category="linear", symbol="BTCUSDT")["result"]["list"][0]
    assert info["priceFilter"]["tickSize"] == "0.1"
    assert info["lotSizeFilter"]["qtyStep"] == "0.001"
    assert info["lotSizeFilter"]["minNotionalValue"] == "5"
    sim.pause_market()
    try:
        ob = http.get_orderbook(category="linear", symbol="BTCUSDT", limit=5)["result"]
        bid, ask = sim.best("BTCUSDT")
    finally:
        sim.pause_market(False)
    s = Scale("0.1")
    assert s.to_units(ob["b"][0][0]) == bid and s.to_units(ob["a"][0][0]) == ask
    assert len(ob["b"]) == 5 and bid < ask


def test_rest_auth_is_checked(sim):
    bad_secret = local_http(sim.http_url, api_key=sim.api_key, api_secret="wrong", retry_delay=0)
    with pytest.raises(InvalidRequestError) as e:
        bad_secret.get_open_orders(category="linear", symbol="BTCUSDT")
    assert e.value.status_code == 10004
    bad_key = local_http(sim.http_url, api_key="nope", api_secret=sim.api_secret, retry_delay=0)
    with pytest.raises(InvalidRequestError) as e:
        bad_key.place_order(
            category="linear",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Limit",
            qty="0.001",
            price="1000.0",
        )
    assert e.value.status_code == 10003


def test_rest_order_lifecycle(sim, http):
    bid, _ = sim.best("BTCUSDT")
    price = Scale("0.1").to_str(bid - 500)
    r = http.place_order(
        category="linear",
        symbol="BTCUSDT",
        side="Buy",
        orderType="Limit",
        qty="0.010",
        price=price,
        timeInForce="PostOnly",
        orderLinkId="rest-1",
    )
    assert r["retCode"] == 0 and r["result"]["orderLinkId"] == "rest-1"
    opened = http.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"]
    mine = [o for o in opened if o["orderLinkId"] == "rest-1"]
    assert mine and mine[0]["price"] == price and mine[0]["qty"] == "0.010"
    http.amend_order(category="linear", symbol="BTCUSDT", orderLinkId="rest-1", qty="0.020")
    opened = http.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert [o["qty"] for o in opened if o["orderLinkId"] == "rest-1"] == ["0.020"]
    with pytest.raises(InvalidRequestError) as e:
        http.cancel_order(category="linear", symbol="BTCUSDT", orderLinkId="no-such")
    assert e.value.status_code == 110001
    done = http.cancel_all_orders(category="linear", symbol="BTCUSDT")["result"]
    assert {"orderId", "orderLinkId"} <= set(done["list"][0])
    assert http.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"] == []
    wallet = http.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]
    assert wallet["accountType"] == "UNIFIED" and wallet["coin"][0]["coin"] == "USDT"


def test_rest_batch_reports_per_order_codes(sim, http):
    bid, _ = sim.best("BTCUSDT")
    s = Scale("0.1")
    r = http.place_batch_order(
        category="linear",
        request=[
            {
                "symbol": "BTCUSDT",
                "side": "Buy",
                "orderType": "Limit",
                "qty": "0.010",
                "price": s.to_str(bid - 400),
                "timeInForce": "PostOnly",
                "orderLinkId": "batch-1",
            },
            {
                "symbol": "BTCUSDT",
                "side": "Buy",
                "orderType": "Limit",
                "qty": "0.0105",
                "price": s.to_str(bid - 400),
                "timeInForce": "PostOnly",
                "orderLinkId": "batch-2",
            },
        ],
    )
    codes = [i["code"] for i in r["retExtInfo"]["list"]]
    assert codes[0] == 0 and codes[1] == 10001  # 0.0105 is off the 0.001 step
    assert r["result"]["list"][0]["orderLinkId"] == "batch-1"
    http.cancel_all_orders(category="linear", symbol="BTCUSDT")


def test_public_stream_acks_pong_and_contiguous_u(sim):
    ws = RawWS(f"{sim.ws_url}/v5/public/linear")
    try:
        ws.send({"op": "subscribe", "req_id": "r1", "args": ["orderbook.50.BTCUSDT"]})
        ws.send({"op": "subscribe", "req_id": "r2", "args": ["orderbook.500.BTCUSDT"]})
        ws.send({"op": "ping", "req_id": "p"})
        assert wait_for(lambda: len(ws.msgs) > 30)
        msgs = ws.parsed()
    finally:
        ws.close()
    acks = [m for m in msgs if m.get("op") == "subscribe"]
    assert {"success": True, "ret_msg": "", "req_id": "r1", "op": "subscribe"}.items() <= acks[
        0
    ].items() and acks[0]["conn_id"]
    assert acks[1]["success"] is False
    assert acks[1]["ret_msg"] == "error:handler not found,topic:orderbook.500.BTCUSDT"
    assert any(m.get("ret_msg") == "pong" and m.get("op") == "ping" for m in msgs)
    frames = [m for m in msgs if m.get("topic") == "orderbook.50.BTCUSDT"]
    assert frames[0]["type"] == "snapshot" and all(f["type"] == "delta" for f in frames[1:])
    us = [f["data"]["u"] for f in frames]
    assert us == list(range(us[0], us[0] + len(us)))
    # Independent book from the frames: never crossed, never more than 50 a side.
    bids, asks = {}, {}
    for f in frames:
        for side, book in (("b", bids), ("a", asks)):
            for p, q in f["data"][side]:
                if q == "0":
                    assert p in book, "delete of an absent level"
                    del book[p]
                else:
                    book[p] = q
        assert len(bids) <= 50 and len(asks) <= 50
        assert max(map(float, bids)) < min(map(float, asks))


def test_private_auth_rejects_bad_signature(sim):
    ws = RawWS(f"{sim.ws_url}/v5/private")
    try:
        expires = int(time.time() * 1000) + 5000
        ws.send({"op": "auth", "args": [sim.api_key, expires, "0" * 64]})
        ws.send(
            {"op": "auth", "args": [sim.api_key, expires, sign_ws_auth(sim.api_secret, expires)]}
        )
        ws.send({"op": "ping"})
        assert wait_for(lambda: len(ws.msgs) >= 3)
        msgs = ws.parsed()
    finally:
        ws.close()
    assert msgs[0]["op"] == "auth" and msgs[0]["success"] is False
    assert msgs[1]["op"] == "auth" and msgs[1]["success"] is True
    assert msgs[2]["op"] == "pong" and msgs[2]["args"][0].isdigit()


def test_pybit_trade_and_private_streams(sim):
    got, acks, errors = [], [], []
    priv = LocalWebSocket(
        testnet=False,
        channel_type="private",
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        ws_base=sim.ws_url,
    )
    trade = LocalWebSocketTrading(
        testnet=False, api_key=sim.api_key, api_secret=sim.api_secret, ws_base=sim.ws_url
    )
    try:
        priv.order_stream(got.append)
        # pybit sends the subscribe without waiting for its ack: wait for the simulator
        assert wait_for(
            lambda: sim.call(
                lambda: any("order" in c.topics for c in sim.server.conns if c.kind == "private")
            )
        )
        bid, _ = sim.best("BTCUSDT")
        s = Scale("0.1")
        trade.place_order(
            acks.append,
            error_callback=errors.append,
            category="linear",
            symbol="BTCUSDT",
            side="Sell",
            orderType="Limit",
            qty="0.010",
            price=s.to_str(bid - 50),
            timeInForce="PostOnly",
            orderLinkId="ws-po",
        )
        assert wait_for(lambda: acks and got)
        ack = acks[0]
        # The ack is OK even though the order will not rest: post-only crossed the book.
        assert ack["retCode"] == 0 and ack["op"] == "order.create"
        assert {
            "X-Bapi-Limit",
            "X-Bapi-Limit-Status",
            "X-Bapi-Limit-Reset-Timestamp",
            "Traceid",
            "Timenow",
        } <= set(ack["header"])
        assert ack["data"]["orderLinkId"] == "ws-po" and ack["connId"]
        order = got[0]["data"][0]
        assert got[0]["topic"] == "order" and order["orderStatus"] == "Cancelled"
        assert order["rejectReason"] == "EC_PostOnlyWillTakeLiquidity"
        sim.reject_next(1, 10006)
        trade.place_order(
            acks.append,
            error_callback=errors.append,
            category="linear",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Limit",
            qty="0.010",
            price=s.to_str(bid - 500),
            timeInForce="PostOnly",
            orderLinkId="ws-rl",
        )
        assert wait_for(lambda: errors)
        assert errors[0]["retCode"] == 10006 and errors[0]["retMsg"] == "Too many visits!"
        assert sim.open_orders("BTCUSDT") == []
    finally:
        priv.exit()
        trade.exit()


def _book(bids, asks):
    book = obcore.Book(tick_size="1", lot_size="1")
    for t, lots in bids.items():
        book.set_level("b", t, lots)
    for t, lots in asks.items():
        book.set_level("a", t, lots)
    return book


def test_touch_trades_are_the_levels_a_delta_takes_at_the_touch():
    # before: bids 100 x 5, 99 x 7, 90 x 4; asks 101 x 3, 102 x 8
    before = _book({100: 5, 99: 7, 90: 4}, {101: 3, 102: 8})
    # delta: 100 and 99 deleted, 90 cut to 1 (deep: a cancel), 98 x 2 new; ask 101 cut to 1
    # and a new ask at 99, where the bids were
    trades = touch_trades(before, {100: 0, 99: 0, 90: 1, 98: 2}, {101: 1, 99: 6})
    # 99 (new best ask) < 101: the ask reduction at 101 is behind the touch, not a trade
    assert trades == [("Sell", 100, 5), ("Sell", 99, 7)]
    assert touch_trades(before, {}, {101: 1}) == [("Buy", 101, 2)]
    assert touch_trades(before, {95: 3}, {}) == []  # an insert is no trade


def test_public_trades_match_the_book_deltas_that_follow(sim):
    ws = RawWS(f"{sim.ws_url}/v5/public/linear")
    try:
        ws.send(
            {
                "op": "subscribe",
                "req_id": "t",
                "args": ["orderbook.50.BTCUSDT", "publicTrade.BTCUSDT"],
            }
        )
        assert wait_for(
            lambda: sum('"publicTrade.BTCUSDT"' in m for m in ws.msgs) >= 5, timeout_s=15
        )
    finally:
        ws.close()
    msgs = [m for m in ws.parsed() if "topic" in m]
    trade_msgs = [m for m in msgs if m["topic"] == "publicTrade.BTCUSDT"]
    assert trade_msgs[0]["type"] == "snapshot" and isinstance(trade_msgs[0]["ts"], int)
    t0 = trade_msgs[0]["data"][0]
    assert list(t0) == ["T", "s", "S", "v", "p", "L", "i", "BT", "seq"]
    assert t0["s"] == "BTCUSDT" and t0["S"] in ("Buy", "Sell") and t0["BT"] is False
    assert t0["L"] in ("PlusTick", "ZeroPlusTick", "MinusTick", "ZeroMinusTick")
    assert len(t0["i"]) == 36 and isinstance(t0["T"], int)
    # Replay on an independent dict book: each trade message is followed by the delta
    # that shrinks exactly those levels, and trades sit at (or beyond) the new touch.
    s = Scale("0.1")
    q = Scale("0.001")
    book = {"b": {}, "a": {}}
    pending = None
    checked = 0
    for m in msgs:
        if m["topic"] == "publicTrade.BTCUSDT":
            if book["b"]:
                pending = m["data"]
            continue
        d = m["data"]
        if m["type"] == "snapshot":
            book = {"b": {}, "a": {}}
        before = {k: dict(v) for k, v in book.items()}
        for side in ("b", "a"):
            for p, size in d[side]:
                t, lots = s.to_units(p), q.to_units(size)
                if lots:
                    book[side][t] = lots
                else:
                    book[side].pop(t, None)
        if pending is None:
            continue
        for tr in pending:
            side = "b" if tr["S"] == "Sell" else "a"
            t, lots = s.to_units(tr["p"]), q.to_units(tr["v"])
            assert before[side].get(t, 0) - book[side].get(t, 0) == lots
            if side == "b":
                assert not book["b"] or t >= max(book["b"])
            else:
                assert not book["a"] or t <= min(book["a"])
            checked += 1
        pending = None
    assert checked >= 3


def test_execution_list_pages_newest_first(sim, http):
    bid, _ = sim.best("BTCUSDT")
    price = Scale("0.1").to_str(bid - 300)
    for i in range(2):
        http.place_order(
            category="linear",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Limit",
            qty="0.001",
            price=price,
            timeInForce="PostOnly",
            orderLinkId=f"exec-{i}",
        )
    sim.taker_hit("BTCUSDT", "Buy")  # both at one price: both fill
    mine = [x for x in sim.executions("BTCUSDT") if x["orderLinkId"].startswith("exec-")]
    assert [x["orderLinkId"] for x in mine] == ["exec-0", "exec-1"]
    start = int(mine[0]["execTime"])
    first = http.get_executions(category="linear", symbol="BTCUSDT", startTime=start, limit=1)[
        "result"
    ]
    assert len(first["list"]) == 1 and first["nextPageCursor"]
    rest = http.get_executions(
        category="linear",
        symbol="BTCUSDT",
        startTime=start,
        limit=100,
        cursor=first["nextPageCursor"],
    )["result"]
    got = [x["execId"] for x in first["list"] + rest["list"]]
    want = [x["execId"] for x in sim.executions("BTCUSDT") if int(x["execTime"]) >= start]
    assert got == want[::-1]  # newest first, each once
    x = first["list"][0]
    assert {
        "execId",
        "orderId",
        "orderLinkId",
        "side",
        "execPrice",
        "execQty",
        "execFee",
        "execTime",
        "isMaker",
        "execType",
    } <= set(x) and x["execPrice"] == price
    http.cancel_all_orders(category="linear", symbol="BTCUSDT")
