"""Bybit v5 wire shapes and signing, shared by the local simulator and its tests.

Every builder here returns exactly the JSON shape Bybit sends (key names, string vs
number types, envelope fields), because pybit dispatches on those shapes: a public
ack without ``success`` or a trade reply without ``reqId`` silently breaks its
callbacks.

Nothing here touches a socket; :mod:`mmbot.sim.routes` does the I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

import orjson

import obcore

__all__ = [
    "Scale",
    "now_ms",
    "sign_http",
    "sign_ws_auth",
    "orderbook_frame",
    "public_trade_frame",
    "public_trade",
    "public_ack",
    "public_pong",
    "private_auth_ack",
    "private_pong",
    "private_push",
    "trade_auth_ack",
    "trade_pong",
    "trade_response",
    "rest_response",
    "instrument_info",
    "RetCode",
]


def now_ms() -> int:
    """Return the wall clock in integer milliseconds, as Bybit stamps messages."""
    return time.time_ns() // 1_000_000


class RetCode:
    """Bybit v5 retCodes the simulator answers with (names follow Bybit's messages)."""

    OK = 0
    PARAMS_ERROR = 10001
    TIMESTAMP_WINDOW = 10002
    INVALID_API_KEY = 10003
    SIGN_ERROR = 10004
    RATE_LIMIT = 10006
    SERVICE_RESTARTING = 10016
    TRADE_RESTARTING = 10019
    BAD_OP = 10404
    ORDER_NOT_EXISTS = 110001
    INSUFFICIENT_BALANCE = 110007
    ORDER_LINK_ID_DUPLICATE = 110072


RET_MSG = {
    RetCode.OK: "OK",
    RetCode.PARAMS_ERROR: "params error",
    RetCode.TIMESTAMP_WINDOW: (
        "invalid request, please check your server timestamp or recv_window param"
    ),
    RetCode.INVALID_API_KEY: "API key is invalid.",
    RetCode.SIGN_ERROR: "error sign! origin_string[...]",
    RetCode.RATE_LIMIT: "Too many visits!",
    RetCode.SERVICE_RESTARTING: "Internal server error.",
    RetCode.TRADE_RESTARTING: "Trade service is restarting, please open a new connection.",
    RetCode.BAD_OP: "Invalid op.",
    RetCode.ORDER_NOT_EXISTS: "order not exists or too late to cancel",
    RetCode.INSUFFICIENT_BALANCE: "ab not enough for new order",
    RetCode.ORDER_LINK_ID_DUPLICATE: "OrderLinkedID is duplicate",
}


def _dumps(obj) -> str:
    # Bybit sends compact JSON; pybit and obcore both accept it, and recordings stay small.
    return json.dumps(obj, separators=(",", ":"))


# --------------------------------------------------------------------------- numbers


@dataclass(frozen=True)
class Scale:
    """Exact conversion between a decimal step string and integer units of that step, with
    Bybit's output format: :class:`obcore.Scale` (the books' own C parser and formatter)
    plus the trailing-zero stripping of Bybit's spot streams.

    Parameters
    ----------
    step : str
        The tick size or lot step as Bybit writes it, e.g. ``"0.10"``. The number of
        decimals written sets the output format (Bybit's ``priceScale``).
    strip : bool
        Strip trailing zeros on output, as Bybit's spot streams do.
    """

    step: str
    strip: bool = False
    _grid: obcore.Scale = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        try:
            grid = obcore.Scale(self.step)
        except (obcore.ParseError, TypeError) as exc:
            raise ValueError(f"step must be a positive decimal, got {self.step!r}") from exc
        object.__setattr__(self, "_grid", grid)

    @property
    def decimals(self) -> int:
        """Number of decimals written in the step string."""
        return self._grid.decimals

    def to_units(self, text: str, what: str = "value") -> int:
        """Return ``text`` as an integer number of steps; raise ValueError naming ``what``."""
        if not isinstance(text, str):
            raise ValueError(f"{what} is not a decimal string: {text!r}")
        try:
            return self._grid.parse(text, what)
        except obcore.OffGridError as exc:
            raise ValueError(f"{what} {text!r} is not a multiple of {self.step}") from exc
        except obcore.ParseError as exc:
            raise ValueError(str(exc)) from exc

    def to_str(self, units: int) -> str:
        """Format an integer number of steps back to Bybit's decimal string."""
        text = self._grid.format(units)
        if self.strip and "." in text:
            text = text.rstrip("0").rstrip(".")
        return text

    def to_decimal(self, units: int) -> Decimal:
        """Return the exact Decimal value of ``units`` steps."""
        return Decimal(self._grid.format(units))


# --------------------------------------------------------------------------- signing


def sign_http(
    secret: str, timestamp_ms: str | int, api_key: str, recv_window: str | int, payload: str
) -> str:
    """Return pybit's HTTP HMAC-SHA256 signature (hex) for one request.

    ``payload`` is the sorted ``k=v&...`` query for GET and the exact JSON body for POST.
    """
    text = f"{timestamp_ms}{api_key}{recv_window}{payload}"
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def sign_ws_auth(secret: str, expires_ms: int | str) -> str:
    """Return the WebSocket auth signature: HMAC-SHA256 of ``"GET/realtime" + expires``."""
    return hmac.new(
        secret.encode(), f"GET/realtime{expires_ms}".encode(), hashlib.sha256
    ).hexdigest()


# --------------------------------------------------------------------------- public stream


def orderbook_frame(
    topic: str,
    kind: str,
    symbol: str,
    bids: list,
    asks: list,
    u: int,
    seq: int,
    ts_ms: int,
    cts_ms: int,
) -> str:
    """Return one ``orderbook.{depth}.{symbol}`` frame as compact JSON text.

    Key order is Bybit's futures order: ``topic, type, ts, data{s,b,a,u,seq}, cts``.
    ``bids``/``asks`` are lists of ``[price_str, size_str]`` best first.
    """
    # orjson: the same compact text as _dumps for these ASCII fields, ~10x faster on the
    # simulator's hottest path
    return orjson.dumps(
        {
            "topic": topic,
            "type": kind,
            "ts": ts_ms,
            "data": {"s": symbol, "b": bids, "a": asks, "u": u, "seq": seq},
            "cts": cts_ms,
        }
    ).decode()


def public_trade_frame(symbol: str, trades: list[dict], ts_ms: int) -> str:
    """Return one ``publicTrade.{symbol}`` message as compact JSON text.

    ``trades`` are Bybit trade entries (``T, s, S, v, p, L, i, BT, seq``, see
    :func:`public_trade`), oldest first; the message type is always ``snapshot``.
    """
    # orjson: the same compact text as _dumps for these ASCII fields, ~10x faster; the
    # simulator sends one with most book deltas
    return orjson.dumps(
        {"topic": f"publicTrade.{symbol}", "type": "snapshot", "ts": ts_ms, "data": trades}
    ).decode()


def public_trade(
    symbol: str,
    taker_side: str,
    qty: str,
    price: str,
    tick_direction: str,
    trade_id: str,
    ts_ms: int,
    seq: int,
) -> dict:
    """Return one entry of a ``publicTrade`` message in Bybit's key order.

    ``taker_side`` is the side of the taker (``"Sell"`` hit the bids); ``tick_direction``
    is ``PlusTick``, ``ZeroPlusTick``, ``MinusTick`` or ``ZeroMinusTick``.
    """
    return {
        "T": ts_ms,
        "s": symbol,
        "S": taker_side,
        "v": qty,
        "p": price,
        "L": tick_direction,
        "i": trade_id,
        "BT": False,
        "seq": seq,
    }


def public_ack(
    op: str, req_id, conn_id: str, category: str, success: bool = True, ret_msg: str = ""
) -> str:
    """Return a public subscribe/unsubscribe ack; spot echoes the op in ``ret_msg``."""
    if success and category == "spot":
        ret_msg = op
    msg = {"success": success, "ret_msg": ret_msg, "conn_id": conn_id, "op": op}
    if req_id is not None:
        msg["req_id"] = req_id
    return _dumps(msg)


def public_pong(conn_id: str, req_id="") -> str:
    """Return the public stream's reply to ``{"op":"ping"}``."""
    return _dumps(
        {
            "success": True,
            "ret_msg": "pong",
            "conn_id": conn_id,
            "req_id": req_id or "",
            "op": "ping",
        }
    )


# --------------------------------------------------------------------------- private stream


def private_auth_ack(conn_id: str, success: bool, ret_msg: str = "") -> str:
    """Return the private stream's auth reply."""
    return _dumps({"success": success, "ret_msg": ret_msg, "op": "auth", "conn_id": conn_id})


def private_pong(conn_id: str, req_id="") -> str:
    """Return the private stream's reply to ``{"op":"ping"}``."""
    return _dumps(
        {"req_id": req_id or "", "op": "pong", "args": [str(now_ms())], "conn_id": conn_id}
    )


def private_push(topic: str, data: list[dict]) -> str:
    """Return one private push (``order``, ``execution``, ``position``, ``wallet``)."""
    return _dumps(
        {
            "id": f"{uuid.uuid4().hex[:12]}-{topic}",
            "topic": topic,
            "creationTime": now_ms(),
            "data": data,
        }
    )


# --------------------------------------------------------------------------- trade stream


def trade_auth_ack(conn_id: str, ret_code: int = 0, ret_msg: str = "OK") -> str:
    """Return the trade stream's auth reply."""
    return _dumps({"retCode": ret_code, "retMsg": ret_msg, "op": "auth", "connId": conn_id})


def trade_pong(conn_id: str) -> str:
    """Return the trade stream's reply to ``{"op":"ping"}``."""
    return _dumps(
        {"retCode": 0, "retMsg": "OK", "op": "pong", "data": [str(now_ms())], "connId": conn_id}
    )


def limit_header(limit: int, remaining: int, reset_ms: int) -> dict:
    """Return the rate-limit fields Bybit puts in REST headers and trade replies."""
    return {
        "X-Bapi-Limit": str(limit),
        "X-Bapi-Limit-Status": str(max(remaining, 0)),
        "X-Bapi-Limit-Reset-Timestamp": str(reset_ms),
    }


def trade_response(
    req_id,
    op: str | None,
    ret_code: int,
    ret_msg: str,
    data: dict,
    ret_ext_info: dict,
    conn_id: str,
    header: dict,
) -> str:
    """Return one ``/v5/trade`` reply: ``reqId`` and ``op`` echoed (None when the request
    had none), header with limit fields."""
    hdr = dict(header)
    hdr.setdefault("Traceid", uuid.uuid4().hex)
    hdr.setdefault("Timenow", str(now_ms()))
    return _dumps(
        {
            "reqId": req_id,
            "retCode": ret_code,
            "retMsg": ret_msg,
            "op": op,
            "data": data,
            "retExtInfo": ret_ext_info,
            "header": hdr,
            "connId": conn_id,
        }
    )


# --------------------------------------------------------------------------- REST


def rest_response(
    result, ret_code: int = 0, ret_msg: str = "OK", ret_ext_info: dict | None = None
) -> dict:
    """Return the REST envelope ``{retCode, retMsg, result, retExtInfo, time}``."""
    return {
        "retCode": ret_code,
        "retMsg": ret_msg,
        "result": result if result is not None else {},
        "retExtInfo": ret_ext_info or {},
        "time": now_ms(),
    }


def instrument_info(
    category: str,
    symbol: str,
    tick_size: str,
    lot_size: str,
    min_qty: str,
    max_qty: str,
    min_notional: str,
) -> dict:
    """Return one element of ``instruments-info``'s ``result.list`` for ``category``.

    Linear uses ``priceFilter.tickSize`` and ``lotSizeFilter.qtyStep/minOrderQty/
    maxOrderQty/minNotionalValue``; spot uses ``basePrecision`` as the step and
    ``minOrderAmt`` as the minimum notional.
    """
    base, quote = (
        (symbol[:-4], symbol[-4:])
        if symbol.endswith(("USDT", "USDC"))
        else (symbol[:-3], symbol[-3:])
    )
    if category == "linear":
        return {
            "symbol": symbol,
            "contractType": "LinearPerpetual",
            "status": "Trading",
            "baseCoin": base,
            "quoteCoin": quote,
            "launchTime": "1585526400000",
            "deliveryTime": "0",
            "deliveryFeeRate": "",
            "priceScale": str(Scale(tick_size).decimals),
            "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
            "priceFilter": {"minPrice": tick_size, "maxPrice": "1999999.80", "tickSize": tick_size},
            "lotSizeFilter": {
                "maxOrderQty": max_qty,
                "minOrderQty": min_qty,
                "qtyStep": lot_size,
                "postOnlyMaxOrderQty": max_qty,
                "maxMktOrderQty": max_qty,
                "minNotionalValue": min_notional,
            },
            "unifiedMarginTrade": True,
            "fundingInterval": 480,
            "settleCoin": quote,
            "copyTrading": "both",
            "upperFundingRate": "0.00375",
            "lowerFundingRate": "-0.00375",
            "isPreListing": False,
            "preListingInfo": None,
        }
    if category == "spot":
        return {
            "symbol": symbol,
            "baseCoin": base,
            "quoteCoin": quote,
            "innovation": "0",
            "status": "Trading",
            "marginTrading": "utaOnly",
            "stTag": "0",
            "lotSizeFilter": {
                "basePrecision": lot_size,
                "quotePrecision": "0.00000001",
                "minOrderQty": min_qty,
                "maxOrderQty": max_qty,
                "minOrderAmt": min_notional,
                "maxOrderAmt": "2000000",
                "maxLimitOrderQty": max_qty,
                "maxMarketOrderQty": max_qty,
            },
            "priceFilter": {"tickSize": tick_size},
        }
    raise ValueError(f"category must be 'linear' or 'spot', got {category!r}")


# --------------------------------------------------------------------------- account shapes
# One implementation of each Bybit item shape, written from the matching engine's exact
# integers and Decimals. REST and the private stream share them; where Bybit's two shapes
# differ (the position's ``avgPrice`` vs ``entryPrice``) a flag says which one.

#: an average price that does not terminate is rounded to this many digits past the tick
AVG_EXTRA_DIGITS = 6


def dec(value: Decimal) -> str:
    """Return ``value`` as plain exact decimal text (no exponent, no trailing zeros)."""
    if not value.is_finite():
        raise ValueError(f"not a finite decimal: {value!r}")
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def avg_price(value: Decimal, qty: Decimal, scale: Scale) -> str:
    """Return ``value / qty`` exactly when it terminates, else rounded half-even."""
    if not qty:
        return ""
    from decimal import ROUND_HALF_EVEN, Context, Inexact, localcontext  # noqa: PLC0415

    try:
        with localcontext(Context(prec=60, traps=[Inexact])):
            return dec(value / qty)
    except Inexact:
        q = Decimal(1).scaleb(-(scale.decimals + AVG_EXTRA_DIGITS))
        with localcontext(Context(prec=60, rounding=ROUND_HALF_EVEN)):
            return dec((value / qty).quantize(q))


def order_item(
    *,
    category: str,
    symbol: str,
    order_id: str,
    link_id: str,
    side: str,
    order_type: str,
    price_ticks: int,
    qty_lots: int,
    filled_lots: int,
    leaves_lots: int,
    status: str,
    tif: str,
    reject_reason: str,
    cancel_type: str,
    create_type: str,
    cum_value: Decimal,
    cum_fee: Decimal,
    closed_pnl: Decimal,
    reduce_only: bool,
    created_ms: int,
    updated_ms: int,
    price: Scale,
    qty: Scale,
    fee_coin: str,
    market_unit: str = "",
) -> dict:
    """Return one order in Bybit's v5 shape (``/v5/order/realtime|history`` and the
    ``order`` topic carry the same keys). ``qty`` is always in the base coin, so a spot
    market order says ``marketUnit: baseCoin`` even when it was sent in quote coin."""
    filled = qty.to_decimal(filled_lots)
    leaves_value = price.to_decimal(price_ticks) * qty.to_decimal(leaves_lots)
    item = {
        "category": category,
        "symbol": symbol,
        "orderId": order_id,
        "orderLinkId": link_id,
        "blockTradeId": "",
        "side": side,
        "isLeverage": "",
        "positionIdx": 0,
        "orderStatus": status,
        "createType": create_type,
        "cancelType": cancel_type,
        "rejectReason": reject_reason or "EC_NoError",
        "price": price.to_str(price_ticks) if price_ticks else "0",
        "qty": qty.to_str(qty_lots),
        "avgPrice": avg_price(cum_value, filled, price) or "0",
        "leavesQty": qty.to_str(leaves_lots),
        "leavesValue": dec(leaves_value),
        "cumExecQty": qty.to_str(filled_lots),
        "cumExecValue": dec(cum_value),
        "cumExecFee": dec(cum_fee),
        "cumFeeDetail": {fee_coin: dec(cum_fee)} if filled_lots else {},
        "feeCurrency": fee_coin if category == "spot" else "",
        "closedPnl": dec(closed_pnl),
        "timeInForce": tif,
        "orderType": order_type,
        "stopOrderType": "",
        "orderIv": "",
        "marketUnit": market_unit,
        "triggerPrice": "",
        "takeProfit": "",
        "stopLoss": "",
        "tpslMode": "" if category == "spot" else "UNKNOWN",
        "ocoTriggerBy": "",
        "tpLimitPrice": "",
        "slLimitPrice": "",
        "tpTriggerBy": "",
        "slTriggerBy": "",
        "triggerDirection": 0,
        "triggerBy": "",
        "lastPriceOnCreated": "",
        "basePrice": "",
        "reduceOnly": reduce_only,
        "closeOnTrigger": False,
        "placeType": "",
        "smpType": "None",
        "smpGroup": 0,
        "smpOrderId": "",
        "createdTime": str(created_ms),
        "updatedTime": str(updated_ms),
    }
    return item


def execution_item(
    *,
    category: str,
    symbol: str,
    exec_id: str,
    order_id: str,
    link_id: str,
    side: str,
    order_type: str,
    order_price_ticks: int,
    order_qty_lots: int,
    leaves_lots: int,
    exec_type: str,
    price_ticks: int,
    qty_lots: int,
    fee: Decimal,
    fee_rate: Decimal,
    is_maker: bool,
    exec_ms: int,
    exec_pnl: Decimal,
    closed_lots: int,
    mark: str,
    seq: int,
    price: Scale,
    qty: Scale,
    fee_coin: str,
    create_type: str = "CreateByUser",
) -> dict:
    """Return one execution in Bybit's v5 shape (``/v5/execution/list`` and ``execution``)."""
    value = price.to_decimal(price_ticks) * qty.to_decimal(qty_lots)
    return {
        "category": category,
        "symbol": symbol,
        "isLeverage": "",
        "orderId": order_id,
        "orderLinkId": link_id,
        "side": side,
        "orderPrice": price.to_str(order_price_ticks) if order_price_ticks else "0",
        "orderQty": qty.to_str(order_qty_lots),
        "leavesQty": qty.to_str(leaves_lots),
        "createType": create_type,
        "orderType": order_type,
        "stopOrderType": "",
        "execFee": dec(fee),
        "feeCurrency": fee_coin,
        "execId": exec_id,
        "execPrice": price.to_str(price_ticks),
        "execQty": qty.to_str(qty_lots),
        "execPnl": dec(exec_pnl),
        "execType": exec_type,
        "execValue": dec(value),
        "execTime": str(exec_ms),
        "isMaker": is_maker,
        "feeRate": dec(fee_rate),
        "tradeIv": "",
        "markIv": "",
        "markPrice": mark,
        "indexPrice": "",
        "underlyingPrice": "",
        "blockTradeId": "",
        "closedSize": qty.to_str(closed_lots) if closed_lots else "0",
        "seq": seq,
        "marketUnit": "",
        "extraFees": "",
    }


def position_item(
    *,
    category: str,
    symbol: str,
    size_lots: int,
    avg_entry: Decimal | None,
    position_value: Decimal,
    mark: str,
    unrealised: Decimal,
    cur_realised: Decimal,
    cum_realised: Decimal,
    leverage: str,
    created_ms: int,
    updated_ms: int,
    seq: int,
    price: Scale,
    qty: Scale,
    stream: bool,
) -> dict:
    """Return one position in Bybit's v5 shape: REST when ``stream`` is False (``avgPrice``),
    the ``position`` topic when True (``entryPrice`` as well, and ``category``)."""
    side = "" if size_lots == 0 else ("Buy" if size_lots > 0 else "Sell")
    entry = dec(avg_entry) if size_lots and avg_entry is not None else "0"
    item = {
        "positionIdx": 0,
        "tradeMode": 0,
        "riskId": 1,
        "riskLimitValue": "2000000",
        "symbol": symbol,
        "side": side,
        "size": qty.to_str(abs(size_lots)),
        "avgPrice": entry,
        "positionValue": dec(position_value),
        "autoAddMargin": 0,
        "positionStatus": "Normal",
        "leverage": leverage,
        "markPrice": mark,
        "liqPrice": "",
        "bustPrice": "",
        "positionIM": "0",
        "positionMM": "0",
        "positionBalance": "0",
        "takeProfit": "0",
        "stopLoss": "0",
        "trailingStop": "0",
        "sessionAvgPrice": "",
        "unrealisedPnl": dec(unrealised),
        "curRealisedPnl": dec(cur_realised),
        "cumRealisedPnl": dec(cum_realised),
        "adlRankIndicator": 0,
        "isReduceOnly": False,
        "mmrSysUpdatedTime": "",
        "leverageSysUpdatedTime": "",
        "createdTime": str(created_ms),
        "updatedTime": str(updated_ms),
        "seq": seq,
        "tpslMode": "Full",
    }
    if stream:
        item["entryPrice"] = entry
        item["category"] = category
    return item


def coin_item(
    coin: str,
    balance: Decimal,
    unrealised: Decimal,
    cum_realised: Decimal,
    locked: Decimal = Decimal(0),
) -> dict:
    """Return one ``coin`` entry of a UNIFIED wallet (USD value 1:1 for USDT only)."""
    equity = balance + unrealised
    return {
        "coin": coin,
        "equity": dec(equity),
        "usdValue": dec(equity) if coin == "USDT" else "0",
        "walletBalance": dec(balance),
        "free": "",
        "locked": dec(locked),
        "spotHedgingQty": "0",
        "borrowAmount": "0",
        "availableToWithdraw": dec(balance - locked),
        "availableToBorrow": "",
        "accruedInterest": "0",
        "totalOrderIM": "0",
        "totalPositionIM": "0",
        "totalPositionMM": "0",
        "unrealisedPnl": dec(unrealised),
        "cumRealisedPnl": dec(cum_realised),
        "bonus": "0",
        "marginCollateral": True,
        "collateralSwitch": True,
    }


def wallet_item(coins: list[dict], total: Decimal, unrealised: Decimal) -> dict:
    """Return one UNIFIED ``wallet-balance`` list element (totals in USD)."""
    t = dec(total)
    return {
        "accountType": "UNIFIED",
        "accountIMRate": "0",
        "accountMMRate": "0",
        "accountLTV": "0",
        "totalEquity": dec(total + unrealised),
        "totalWalletBalance": t,
        "totalMarginBalance": dec(total + unrealised),
        "totalAvailableBalance": t,
        "totalPerpUPL": dec(unrealised),
        "totalInitialMargin": "0",
        "totalMaintenanceMargin": "0",
        "coin": coins,
    }


def ticker_item(
    category: str,
    symbol: str,
    *,
    bid: tuple[str, str] | None,
    ask: tuple[str, str] | None,
    last: str,
    mark: str,
    funding_rate: str,
    next_funding_ms: int,
    volume: str,
    turnover: str,
) -> dict:
    """Return one ticker (``/v5/market/tickers`` and the ``tickers`` topic), every number
    a decimal string. The simulator has no index: ``indexPrice`` is the mark price."""
    item = {
        "symbol": symbol,
        "lastPrice": last,
        "prevPrice24h": last,
        "price24hPcnt": "0",
        "highPrice24h": last,
        "lowPrice24h": last,
        "turnover24h": turnover,
        "volume24h": volume,
        "bid1Price": bid[0] if bid else "",
        "bid1Size": bid[1] if bid else "",
        "ask1Price": ask[0] if ask else "",
        "ask1Size": ask[1] if ask else "",
    }
    if category == "linear":
        item.update(
            {
                "indexPrice": mark,
                "markPrice": mark,
                "prevPrice1h": last,
                "openInterest": "0",
                "openInterestValue": "0",
                "fundingRate": funding_rate,
                "nextFundingTime": str(next_funding_ms),
                "predictedDeliveryPrice": "",
                "basisRate": "",
                "deliveryFeeRate": "",
                "deliveryTime": "0",
                "basis": "",
                "tickDirection": "ZeroPlusTick",
            }
        )
    else:
        item["usdIndexPrice"] = mark
    return item


def ticker_frame(category: str, symbol: str, data: dict, cs: int, ts_ms: int) -> str:
    """Return one ``tickers.{symbol}`` message (spot: snapshots only; linear: a snapshot,
    then deltas; the simulator sends every field in each, which a delta may carry)."""
    kind = "snapshot" if category == "spot" or cs == 0 else "delta"
    return _dumps({"topic": f"tickers.{symbol}", "type": kind, "data": data, "cs": cs, "ts": ts_ms})


def kline_frame(topic: str, items: list[dict], ts_ms: int) -> str:
    """Return one ``kline.{interval}.{symbol}`` message (always ``type: snapshot``)."""
    return _dumps({"topic": topic, "data": items, "ts": ts_ms, "type": "snapshot"})
