"""Local Bybit v5 exchange simulator on one 127.0.0.1 port (aiohttp: REST + WebSockets).

The real pybit clients (``HTTP``, ``WebSocket``, ``WebSocketTrading``) connect to it
unchanged except for the endpoint (``mmbot.bybit.LocalEndpoint`` / ``local_http``).

Served paths
------------
REST: ``/v5/market/time``, ``/v5/market/instruments-info``, ``/v5/market/orderbook``,
``/v5/order/create|amend|cancel|cancel-all|create-batch|amend-batch|cancel-batch``,
``/v5/order/realtime``, ``/v5/position/list``, ``/v5/execution/list``,
``/v5/account/wallet-balance``; private
endpoints check pybit's HMAC signature, api key and recv window.

WebSockets: ``/v5/public/linear`` and ``/v5/public/spot`` (``orderbook.{1,50,200,1000}.
{symbol}``: snapshot on subscribe then windowed deltas with contiguous ``u``;
``publicTrade.{symbol}``: the trades the book deltas imply, see :func:`touch_trades`),
``/v5/private`` (auth; ``order``, ``execution``, ``position``, ``wallet``), ``/v5/trade``
(auth; ``order.create|amend|cancel`` and the ``-batch`` forms).

Market
------
Each symbol's market comes from an iterator of raw Bybit frames (``obcore.synthetic``
or a recording) streamed in real time (``speed`` > 1 is faster). The server keeps its
own ladder and renumbers ``u`` per topic, so a subscriber joining at any time gets a
snapshot and a contiguous delta stream, exactly like Bybit. Levels a delta shrinks or
removes at the touch were traded away: the server publishes them as ``publicTrade``
messages just before that delta and feeds them to the matching engine first, so resting
orders at the touch fill through the engine's queue-position model.

Fault injection (thread-safe methods of :class:`SimulatorHandle`): drop connections,
skip a ``u``, send a ``u == 1`` restart, send malformed frames, delay private pushes,
reject the next orders with a chosen retCode.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from aiohttp import WSMsgType, web

from mmbot.sim import protocol as P
from mmbot.sim.protocol import RET_MSG, RetCode, Scale, now_ms

__all__ = ["SimSymbol", "SimulatorHandle", "SimServer", "start_simulator", "synthetic_source",
           "touch_trades"]

log = logging.getLogger(__name__)

DEFAULT_API_KEY = "sim-key"
DEFAULT_API_SECRET = "sim-secret"
ORDERBOOK_DEPTHS = (1, 50, 200, 1000)
PRIVATE_TOPICS = ("order", "execution", "position", "wallet")
TRADE_OPS = ("order.create", "order.amend", "order.cancel", "order.create-batch",
             "order.amend-batch", "order.cancel-batch")


@dataclass(frozen=True)
class SimSymbol:
    """One tradable instrument of the simulator (Bybit ``instruments-info`` fields)."""

    symbol: str = "BTCUSDT"
    category: str = "linear"
    tick_size: str = "0.1"
    lot_size: str = "0.001"
    min_qty: str = "0.001"
    max_qty: str = "1190.000"
    min_notional: str = "5"

    def __post_init__(self):
        if self.category not in ("linear", "spot"):
            raise ValueError(f"category must be 'linear' or 'spot', got {self.category!r}")


def synthetic_source(sym: SimSymbol, *, seed: int = 0, depth: int = 200,
                     interval_ms: int = 20, start_price: str = "65000.0") -> Iterator[str]:
    """Return an endless ``obcore.synthetic`` frame stream for ``sym``."""
    from obcore.synthetic import generate_frames  # noqa: PLC0415  (obcore is optional here)

    return generate_frames(symbol=sym.symbol, tick_size=sym.tick_size, lot_size=sym.lot_size,
                           depth=depth, messages=10**12, seed=seed, start_price=start_price,
                           interval_ms=interval_ms, category=sym.category)


# =========================================================================== market


class _Ladder:
    """The simulator's own L2 ladder: dicts of ticks -> lots (independent of obcore)."""

    def __init__(self):
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}

    def best_bid(self):
        return max(self.bids) if self.bids else None

    def best_ask(self):
        return min(self.asks) if self.asks else None

    def top(self, side: str, n: int) -> list[tuple[int, int]]:
        levels = self.bids if side == "b" else self.asks
        if side == "b":
            keys = heapq.nlargest(n, levels)
        else:
            keys = heapq.nsmallest(n, levels)
        return [(k, levels[k]) for k in keys]


@dataclass
class _Topic:
    """State of one public ``orderbook.{depth}.{symbol}`` topic (its own ``u`` sequence)."""

    name: str
    depth: int
    symbol: str
    u: int = 0
    view_b: dict = field(default_factory=dict)
    view_a: dict = field(default_factory=dict)
    subscribers: set = field(default_factory=set)
    skip_next: int = 0


# =========================================================================== orders


@dataclass
class _Order:
    order_id: str
    link_id: str
    symbol: str
    category: str
    side: str
    order_type: str
    price_ticks: int
    qty_lots: int
    tif: str
    reduce_only: bool
    created_ms: int
    status: str = "New"
    cum_lots: int = 0
    cum_value: Decimal = Decimal(0)
    cum_fee: Decimal = Decimal(0)
    reject_reason: str = "EC_NoError"
    cancel_type: str = "UNKNOWN"
    updated_ms: int = 0

    @property
    def leaves_lots(self) -> int:
        if self.status in ("Cancelled", "Rejected", "Filled", "Deactivated"):
            return 0
        return self.qty_lots - self.cum_lots

    @property
    def is_open(self) -> bool:
        return self.status in ("New", "PartiallyFilled", "Untriggered")


@dataclass
class _Position:
    size_lots: int = 0          # signed: >0 long, <0 short
    avg_price: Decimal = Decimal(0)
    cum_realised: Decimal = Decimal(0)
    seq: int = 0


class TouchMatcher:
    """Fill model used until ``mmbot.sim.engine.MatchingEngine`` is plugged in.

    A resting order fills (as maker, at its own price) when the market trades through
    it: a buy when the best ask drops to or below its price, a sell when the best bid
    rises to or above it, up to the size shown there. Post-only orders that would
    take liquidity on arrival are cancelled, as Bybit does.
    """

    def would_take(self, order: _Order, ladder: _Ladder) -> bool:
        if order.side == "Buy":
            ask = ladder.best_ask()
            return ask is not None and order.price_ticks >= ask
        bid = ladder.best_bid()
        return bid is not None and order.price_ticks <= bid

    def taker_fills(self, order: _Order, ladder: _Ladder) -> list[tuple[int, int]]:
        """Return ``[(price_ticks, lots)]`` walking the opposite side up to the limit."""
        fills, want = [], order.leaves_lots
        side = "a" if order.side == "Buy" else "b"
        for ticks, lots in ladder.top(side, 1000):
            if want <= 0:
                break
            if order.order_type == "Limit" and (
                    (order.side == "Buy" and ticks > order.price_ticks)
                    or (order.side == "Sell" and ticks < order.price_ticks)):
                break
            take = min(want, lots)
            fills.append((ticks, take))
            want -= take
        return fills

    def maker_fill_lots(self, order: _Order, ladder: _Ladder) -> int:
        """Return how many lots of a resting order the current market trades through."""
        if order.side == "Buy":
            crossed = [lots for t, lots in ladder.asks.items() if t <= order.price_ticks]
        else:
            crossed = [lots for t, lots in ladder.bids.items() if t >= order.price_ticks]
        return min(order.leaves_lots, sum(crossed))


class _Account:
    """One simulated account: orders, positions, wallet, fees (all exact Decimals)."""

    def __init__(self, symbols: dict[str, SimSymbol], maker_fee: str, taker_fee: str,
                 balance: str, matcher):
        self.symbols = symbols
        self.price = {s: Scale(v.tick_size, strip=v.category == "spot") for s, v in symbols.items()}
        self.qty = {s: Scale(v.lot_size) for s, v in symbols.items()}
        self.maker_fee = Decimal(maker_fee)
        self.taker_fee = Decimal(taker_fee)
        self.balance = Decimal(balance)
        self.orders: dict[str, _Order] = {}
        self.positions: dict[str, _Position] = {s: _Position() for s in symbols}
        self.matcher = matcher
        self.exec_seq = itertools.count(1)

    # ---------------------------------------------------------------- shapes

    def order_dict(self, o: _Order) -> dict:
        ps, qs = self.price[o.symbol], self.qty[o.symbol]
        avg = (o.cum_value / qs.to_decimal(o.cum_lots)) if o.cum_lots else None
        return {
            "category": o.category, "symbol": o.symbol, "orderId": o.order_id,
            "orderLinkId": o.link_id, "blockTradeId": "", "side": o.side,
            "positionIdx": 0, "orderStatus": o.status, "cancelType": o.cancel_type,
            "rejectReason": o.reject_reason, "timeInForce": o.tif,
            "isLeverage": "", "price": ps.to_str(o.price_ticks) if o.order_type == "Limit" else "0",
            "qty": qs.to_str(o.qty_lots), "avgPrice": ps.to_str(0) if avg is None else
            _fmt(avg, ps.decimals + 2), "leavesQty": qs.to_str(o.leaves_lots),
            "leavesValue": _fmt(ps.to_decimal(o.price_ticks) * qs.to_decimal(o.leaves_lots), 8),
            "cumExecQty": qs.to_str(o.cum_lots), "cumExecValue": _fmt(o.cum_value, 8),
            "cumExecFee": _fmt(o.cum_fee, 8), "orderType": o.order_type,
            "stopOrderType": "", "orderIv": "", "triggerPrice": "", "takeProfit": "",
            "stopLoss": "", "triggerBy": "", "tpTriggerBy": "", "slTriggerBy": "",
            "triggerDirection": 0, "placeType": "", "lastPriceOnCreated": "",
            "closeOnTrigger": False, "reduceOnly": o.reduce_only, "smpGroup": 0,
            "smpType": "None", "smpOrderId": "", "createdTime": str(o.created_ms),
            "updatedTime": str(o.updated_ms or o.created_ms),
            "feeCurrency": "", "cumFeeDetail": {"USDT": _fmt(o.cum_fee, 8)},
        }

    def position_dict(self, symbol: str, mark: Decimal | None) -> dict:
        pos, ps, qs = self.positions[symbol], self.price[symbol], self.qty[symbol]
        size = qs.to_decimal(abs(pos.size_lots))
        side = "" if pos.size_lots == 0 else ("Buy" if pos.size_lots > 0 else "Sell")
        upnl = Decimal(0)
        if mark is not None and pos.size_lots:
            upnl = (mark - pos.avg_price) * qs.to_decimal(pos.size_lots)
        return {
            "positionIdx": 0, "tradeMode": 0, "riskId": 1, "riskLimitValue": "2000000",
            "symbol": symbol, "side": side, "size": qs.to_str(abs(pos.size_lots)),
            "avgPrice": _fmt(pos.avg_price, ps.decimals + 2) if pos.size_lots else "0",
            "entryPrice": _fmt(pos.avg_price, ps.decimals + 2) if pos.size_lots else "0",
            "positionValue": _fmt(pos.avg_price * size, 8), "leverage": "10",
            "markPrice": _fmt(mark, ps.decimals) if mark is not None else "",
            "liqPrice": "", "bustPrice": "", "positionIM": "", "positionMM": "",
            "unrealisedPnl": _fmt(upnl, 8), "curRealisedPnl": _fmt(pos.cum_realised, 8),
            "cumRealisedPnl": _fmt(pos.cum_realised, 8), "positionStatus": "Normal",
            "autoAddMargin": 0, "adlRankIndicator": 0, "isReduceOnly": False,
            "createdTime": "1700000000000", "updatedTime": str(now_ms()), "seq": pos.seq,
            "category": self.symbols[symbol].category,
        }

    def wallet_dict(self) -> dict:
        bal = _fmt(self.balance, 8)
        return {
            "accountType": "UNIFIED", "accountIMRate": "0", "accountMMRate": "0",
            "totalEquity": bal, "totalWalletBalance": bal, "totalMarginBalance": bal,
            "totalAvailableBalance": bal, "totalPerpUPL": "0", "totalInitialMargin": "0",
            "totalMaintenanceMargin": "0", "accountLTV": "0",
            "coin": [{"coin": "USDT", "equity": bal, "usdValue": bal, "walletBalance": bal,
                      "free": "", "locked": "0", "unrealisedPnl": "0",
                      "cumRealisedPnl": _fmt(sum((p.cum_realised for p in
                                                  self.positions.values()), Decimal(0)), 8),
                      "availableToWithdraw": bal}],
        }

    # ---------------------------------------------------------------- lookups

    def find(self, args: dict) -> _Order | None:
        oid, link = args.get("orderId"), args.get("orderLinkId")
        if oid:
            o = self.orders.get(oid)
        else:
            o = next((x for x in self.orders.values() if link and x.link_id == link and x.is_open),
                     None)
        if o is None or o.symbol != args.get("symbol", o.symbol) or not o.is_open:
            return None
        return o

    def open_orders(self, symbol: str | None = None) -> list[_Order]:
        return [o for o in self.orders.values() if o.is_open and (symbol is None or o.symbol == symbol)]

    # ---------------------------------------------------------------- fills

    def _fill(self, o: _Order, price_ticks: int, lots: int, is_maker: bool, events: list):
        ps, qs = self.price[o.symbol], self.qty[o.symbol]
        px = ps.to_decimal(price_ticks)
        qty = qs.to_decimal(lots)
        value = px * qty
        fee_rate = self.maker_fee if is_maker else self.taker_fee
        fee = value * fee_rate
        o.cum_lots += lots
        o.cum_value += value
        o.cum_fee += fee
        o.status = "Filled" if o.cum_lots >= o.qty_lots else "PartiallyFilled"
        o.updated_ms = now_ms()
        pos = self.positions[o.symbol]
        signed = lots if o.side == "Buy" else -lots
        realised = Decimal(0)
        if pos.size_lots == 0 or (pos.size_lots > 0) == (signed > 0):
            new = pos.size_lots + signed
            pos.avg_price = (pos.avg_price * qs.to_decimal(abs(pos.size_lots)) + value) \
                / qs.to_decimal(abs(new))
            pos.size_lots = new
        else:
            closed = min(abs(signed), abs(pos.size_lots))
            direction = 1 if pos.size_lots > 0 else -1
            realised = (px - pos.avg_price) * qs.to_decimal(closed) * direction
            pos.size_lots += signed
            if pos.size_lots == 0:
                pos.avg_price = Decimal(0)
            elif (pos.size_lots > 0) != (direction > 0):
                pos.avg_price = px     # flipped: the remainder opened at this price
        pos.cum_realised += realised - fee
        pos.seq += 1
        self.balance += realised - fee
        events.append(("execution", {
            "category": o.category, "symbol": o.symbol, "isLeverage": "",
            "orderId": o.order_id, "orderLinkId": o.link_id, "side": o.side,
            "orderPrice": ps.to_str(o.price_ticks), "orderQty": qs.to_str(o.qty_lots),
            "leavesQty": qs.to_str(o.leaves_lots), "createType": "CreateByUser",
            "orderType": o.order_type, "stopOrderType": "", "execFee": _fmt(fee, 8),
            "execId": str(uuid.uuid4()), "execPrice": ps.to_str(price_ticks),
            "execQty": qs.to_str(lots), "execPnl": _fmt(realised, 8), "execType": "Trade",
            "execValue": _fmt(value, 8), "execTime": str(o.updated_ms), "isMaker": is_maker,
            "feeRate": str(fee_rate), "tradeIv": "", "markIv": "", "markPrice": ps.to_str(price_ticks),
            "indexPrice": "", "underlyingPrice": "", "blockTradeId": "", "closedSize": "",
            "seq": next(self.exec_seq), "feeCurrency": "USDT",
        }))

    def _after_change(self, o: _Order, ladder: _Ladder, events: list):
        events.append(("order", self.order_dict(o)))
        events.append(("position", self.position_dict(o.symbol, _mid(ladder, self.price[o.symbol]))))

    def _check_limits(self, sym: SimSymbol, side, price_ticks, qty_lots) -> str | None:
        qs = self.qty[sym.symbol]
        if qty_lots < qs.to_units(sym.min_qty):
            return f"qty below minOrderQty {sym.min_qty}"
        if qty_lots > qs.to_units(sym.max_qty):
            return f"qty above maxOrderQty {sym.max_qty}"
        if price_ticks is not None:
            notional = self.price[sym.symbol].to_decimal(price_ticks) * qs.to_decimal(qty_lots)
            if notional < Decimal(sym.min_notional):
                return f"order value below minimum {sym.min_notional}"
        return None

    # ---------------------------------------------------------------- operations
    # Each returns (ret_code, ret_msg, data, events); events are private pushes.

    def create(self, args: dict, ladder: _Ladder):
        events: list = []
        sym = self.symbols.get(args.get("symbol", ""))
        if sym is None or args.get("category") != sym.category:
            return RetCode.PARAMS_ERROR, "params error: symbol or category invalid", {}, events
        side, otype = args.get("side"), args.get("orderType", "Limit")
        if side not in ("Buy", "Sell") or otype not in ("Limit", "Market"):
            return RetCode.PARAMS_ERROR, "params error: side or orderType invalid", {}, events
        try:
            qty_lots = self.qty[sym.symbol].to_units(str(args.get("qty")), "qty")
            price_ticks = (self.price[sym.symbol].to_units(str(args.get("price")), "price")
                           if otype == "Limit" else 0)
        except ValueError as exc:
            return RetCode.PARAMS_ERROR, f"params error: {exc}", {}, events
        problem = self._check_limits(sym, side, price_ticks if otype == "Limit" else None, qty_lots)
        if problem:
            return RetCode.PARAMS_ERROR, f"params error: {problem}", {}, events
        link = str(args.get("orderLinkId") or "")
        if link and any(o.link_id == link for o in self.orders.values()):
            return RetCode.ORDER_LINK_ID_DUPLICATE, RET_MSG[RetCode.ORDER_LINK_ID_DUPLICATE], {}, events
        tif = args.get("timeInForce") or ("GTC" if otype == "Limit" else "IOC")
        o = _Order(order_id=str(uuid.uuid4()), link_id=link, symbol=sym.symbol,
                   category=sym.category, side=side, order_type=otype, price_ticks=price_ticks,
                   qty_lots=qty_lots, tif=tif, reduce_only=bool(args.get("reduceOnly")),
                   created_ms=now_ms())
        self.orders[o.order_id] = o
        data = {"orderId": o.order_id, "orderLinkId": o.link_id}
        if otype == "Limit" and tif == "PostOnly" and self.matcher.would_take(o, ladder):
            # Bybit acks a crossing post-only order and cancels it on the order stream.
            o.status, o.reject_reason = "Cancelled", "EC_PostOnlyWillTakeLiquidity"
            o.cancel_type = "CancelByUser"
            o.updated_ms = now_ms()
            events.append(("order", self.order_dict(o)))
            return RetCode.OK, "OK", data, events
        if otype == "Market" or self.matcher.would_take(o, ladder):
            for ticks, lots in self.matcher.taker_fills(o, ladder):
                self._fill(o, ticks, lots, False, events)
            if o.is_open and (otype == "Market" or tif in ("IOC", "FOK")):
                o.status, o.cancel_type = "Cancelled", "CancelByUser"
        elif tif in ("IOC", "FOK"):
            o.status, o.cancel_type = "Cancelled", "CancelByUser"
        self._after_change(o, ladder, events)
        events.append(("wallet", self.wallet_dict()))
        return RetCode.OK, "OK", data, events

    def amend(self, args: dict, ladder: _Ladder):
        events: list = []
        o = self.find(args)
        if o is None:
            return RetCode.ORDER_NOT_EXISTS, "order not exists or too late to replace", {}, events
        sym = self.symbols[o.symbol]
        try:
            price = (self.price[o.symbol].to_units(str(args["price"]), "price")
                     if args.get("price") not in (None, "") else o.price_ticks)
            qty = (self.qty[o.symbol].to_units(str(args["qty"]), "qty")
                   if args.get("qty") not in (None, "") else o.qty_lots)
        except ValueError as exc:
            return RetCode.PARAMS_ERROR, f"params error: {exc}", {}, events
        problem = self._check_limits(sym, o.side, price, qty)
        if problem:
            return RetCode.PARAMS_ERROR, f"params error: {problem}", {}, events
        if qty <= o.cum_lots:
            return RetCode.PARAMS_ERROR, "params error: qty not above filled qty", {}, events
        o.price_ticks, o.qty_lots, o.updated_ms = price, qty, now_ms()
        data = {"orderId": o.order_id, "orderLinkId": o.link_id}
        if self.matcher.would_take(o, ladder):
            if o.tif == "PostOnly":
                o.status, o.reject_reason = "Cancelled", "EC_PostOnlyWillTakeLiquidity"
                o.cancel_type = "CancelByUser"
            else:
                for ticks, lots in self.matcher.taker_fills(o, ladder):
                    self._fill(o, ticks, lots, False, events)
        self._after_change(o, ladder, events)
        return RetCode.OK, "OK", data, events

    def cancel(self, args: dict, ladder: _Ladder):
        events: list = []
        o = self.find(args)
        if o is None:
            return RetCode.ORDER_NOT_EXISTS, RET_MSG[RetCode.ORDER_NOT_EXISTS], {}, events
        o.status, o.cancel_type, o.updated_ms = "Cancelled", "CancelByUser", now_ms()
        self._after_change(o, ladder, events)
        return RetCode.OK, "OK", {"orderId": o.order_id, "orderLinkId": o.link_id}, events

    def cancel_all(self, args: dict, ladders: dict):
        events: list = []
        symbol = args.get("symbol")
        cancelled = []
        for o in self.open_orders(symbol):
            if args.get("category") and o.category != args["category"]:
                continue
            o.status, o.cancel_type, o.updated_ms = "Cancelled", "CancelAll", now_ms()
            cancelled.append({"orderId": o.order_id, "orderLinkId": o.link_id})
            self._after_change(o, ladders[o.symbol], events)
        return RetCode.OK, "OK", {"list": cancelled, "success": "1"}, events

    def on_market(self, symbol: str, ladder: _Ladder) -> list:
        """Fill resting orders the market traded through; return the private pushes."""
        events: list = []
        for o in self.open_orders(symbol):
            lots = self.matcher.maker_fill_lots(o, ladder)
            if lots > 0:
                self._fill(o, o.price_ticks, lots, True, events)
                self._after_change(o, ladder, events)
        if events:
            events.append(("wallet", self.wallet_dict()))
        return events

    def on_frame(self, symbol: str, raw: str, ladder: _Ladder) -> list:
        if raw.startswith('{"topic":"publicTrade'):
            return []        # the touch model only looks at the ladder after the book frame
        return self.on_market(symbol, ladder)

    def open_order_dicts(self, symbol: str | None = None, category: str | None = None) -> list:
        return [self.order_dict(o) for o in self.open_orders(symbol)
                if category is None or o.category == category]

    def position_lots(self, symbol: str) -> int:
        return self.positions[symbol].size_lots

    def taker_hit(self, symbol: str, side: str, lots: int | None, ladder: _Ladder) -> list:
        """Fill own resting orders on ``side`` at their prices, best first (a test hook)."""
        events: list = []
        resting = sorted(self.open_orders(symbol), key=lambda o: (-o.price_ticks if side == "Buy"
                                                                   else o.price_ticks, o.created_ms))
        remaining = lots
        for o in resting:
            if o.side != side:
                continue
            take = o.leaves_lots if remaining is None else min(o.leaves_lots, remaining)
            if take <= 0:
                break
            self._fill(o, o.price_ticks, take, True, events)
            self._after_change(o, ladder, events)
            if remaining is not None:
                remaining -= take
        if events:
            events.append(("wallet", self.wallet_dict()))
        return events


class _EngineAccount:
    """The account backed by ``mmbot.sim.engine.MatchingEngine`` (one engine per symbol).

    Same interface as :class:`_Account`: translates Bybit request dicts to engine calls
    and engine events to Bybit private-stream dicts, so the simulator and ``SimVenue``
    match orders identically (queue position, post-only rejects, fees).
    """

    def __init__(self, symbols: dict[str, SimSymbol], maker_fee: str, taker_fee: str,
                 balance: str):
        from mmbot.sim.engine import MatchingEngine  # noqa: PLC0415  (optional backend)

        self.symbols = symbols
        self.price = {s: Scale(v.tick_size, strip=v.category == "spot") for s, v in symbols.items()}
        self.qty = {s: Scale(v.lot_size) for s, v in symbols.items()}
        self.start_balance = Decimal(balance)
        self.engines = {}
        for s, v in symbols.items():
            qs = self.qty[s]
            self.engines[s] = MatchingEngine(
                symbol=s, tick_size=v.tick_size, lot_size=v.lot_size, category=v.category,
                maker_fee_rate=str(maker_fee), taker_fee_rate=str(taker_fee),
                min_qty_lots=max(qs.to_units(v.min_qty), 1), max_qty_lots=qs.to_units(v.max_qty),
                min_notional=v.min_notional, order_id_prefix=uuid.uuid4().hex[:8])
        self.exec_seq = itertools.count(1)
        self._anon = itertools.count(1)

    def _events(self, engine, events) -> list:
        from mmbot.types import ExecutionEvent, OrderEvent, PositionEvent  # noqa: PLC0415

        out = []
        for ev in events:
            if isinstance(ev, OrderEvent):
                out.append(("order", engine.order_dict(ev.order)))
            elif isinstance(ev, ExecutionEvent):
                out.append(("execution", engine.execution_dict(ev.execution,
                                                               seq=next(self.exec_seq))))
            elif isinstance(ev, PositionEvent):
                out.append(("position", engine.position_dict(ev.position)))
        if any(t == "execution" for t, _ in out):
            out.append(("wallet", self.wallet_dict()))
        return out

    def _engine(self, args: dict):
        sym = self.symbols.get(args.get("symbol", "") if isinstance(args, dict) else "")
        if sym is None or args.get("category", sym.category) != sym.category:
            return None
        return self.engines[sym.symbol]

    def _run(self, args: dict, fn) -> tuple:
        from mmbot.sim.engine import OrderRejected  # noqa: PLC0415

        engine = self._engine(args)
        if engine is None:
            return RetCode.PARAMS_ERROR, "params error: symbol or category invalid", {}, []
        try:
            data, events = fn(engine)
        except OrderRejected as exc:
            return exc.code, exc.message, {}, []
        except ValueError as exc:
            return RetCode.PARAMS_ERROR, f"params error: {exc}", {}, []
        return RetCode.OK, "OK", data, self._events(engine, events)

    def _ids(self, engine, link: str, oid: str) -> dict:
        order = engine.get_order(order_link_id=link, order_id=oid)
        return {"orderId": order.order_id, "orderLinkId": order.order_link_id}

    def create(self, args: dict, ladder=None):
        def run(engine):
            s = args["symbol"]
            otype = args.get("orderType", "Limit")
            qty = self.qty[s].to_units(str(args.get("qty")), "qty")
            price = self.price[s].to_units(str(args.get("price")), "price") \
                if otype == "Limit" else 0
            link = str(args.get("orderLinkId") or f"sim-anon-{next(self._anon)}")
            events = engine.place(order_link_id=link, side=args.get("side"), price_ticks=price,
                                  qty_lots=qty, now_ms=now_ms(),
                                  post_only=args.get("timeInForce") == "PostOnly",
                                  reduce_only=bool(args.get("reduceOnly")), order_type=otype)
            return self._ids(engine, link, ""), events
        return self._run(args, run)

    def amend(self, args: dict, ladder=None):
        def run(engine):
            s = args["symbol"]
            price = self.price[s].to_units(str(args["price"]), "price") \
                if args.get("price") not in (None, "") else None
            qty = self.qty[s].to_units(str(args["qty"]), "qty") \
                if args.get("qty") not in (None, "") else None
            link, oid = args.get("orderLinkId") or "", args.get("orderId") or ""
            events = engine.amend(now_ms=now_ms(), order_link_id=link, order_id=oid,
                                  price_ticks=price, qty_lots=qty)
            return self._ids(engine, link, oid), events
        return self._run(args, run)

    def cancel(self, args: dict, ladder=None):
        def run(engine):
            link, oid = args.get("orderLinkId") or "", args.get("orderId") or ""
            events = engine.cancel(now_ms=now_ms(), order_link_id=link, order_id=oid)
            return self._ids(engine, link, oid), events
        return self._run(args, run)

    def cancel_all(self, args: dict, ladders=None):
        events, cancelled = [], []
        for s, engine in self.engines.items():
            if args.get("symbol") not in (None, s):
                continue
            if args.get("category") not in (None, self.symbols[s].category):
                continue
            evs = engine.cancel_all(now_ms=now_ms())
            converted = self._events(engine, evs)
            cancelled += [{"orderId": d["orderId"], "orderLinkId": d["orderLinkId"]}
                          for t, d in converted if t == "order"]
            events += converted
        return RetCode.OK, "OK", {"list": cancelled, "success": "1"}, events

    def on_frame(self, symbol: str, raw: str, ladder=None) -> list:
        engine = self.engines[symbol]
        return self._events(engine, engine.on_frame(raw, now_ms()))

    def open_order_dicts(self, symbol: str | None = None, category: str | None = None) -> list:
        return [e.order_dict(o) for s, e in self.engines.items()
                if symbol in (None, s) and category in (None, self.symbols[s].category)
                for o in e.open_orders()]

    def position_dict(self, symbol: str, mark=None) -> dict:
        return self.engines[symbol].position_dict()

    def position_lots(self, symbol: str) -> int:
        return self.engines[symbol].position_lots

    def wallet_dict(self) -> dict:
        pnl = sum((e.realized_pnl - e.fees_paid for e in self.engines.values()), Decimal(0))
        bal = _fmt(self.start_balance + pnl, 8)
        return {"accountType": "UNIFIED", "totalEquity": bal, "totalWalletBalance": bal,
                "totalMarginBalance": bal, "totalAvailableBalance": bal,
                "totalInitialMargin": "0", "totalMaintenanceMargin": "0",
                "coin": [{"coin": "USDT", "equity": bal, "walletBalance": bal, "locked": "0",
                          "unrealisedPnl": "0", "cumRealisedPnl": _fmt(pnl, 8)}]}

    def taker_hit(self, symbol: str, side: str, lots: int | None, ladder=None) -> list:
        """Trade through the own best ``side`` order by one tick: it fills completely."""
        engine = self.engines[symbol]
        own = [o for o in engine.open_orders() if o.side == side]
        if not own:
            return []
        if side == "Buy":
            price, taker = max(o.price_ticks for o in own) - 1, "Sell"
        else:
            price, taker = min(o.price_ticks for o in own) + 1, "Buy"
        return self._events(engine, engine.on_trade(taker, price, lots or 1, now_ms()))


def _fmt(value: Decimal | None, decimals: int) -> str:
    if value is None:
        return ""
    return f"{value.quantize(Decimal(1).scaleb(-decimals)).normalize():f}"


def _mid(ladder: _Ladder, scale: Scale) -> Decimal | None:
    bid, ask = ladder.best_bid(), ladder.best_ask()
    if bid is None or ask is None:
        return None
    return scale.to_decimal(bid + ask) / 2


# =========================================================================== server


class _Conn:
    """One WebSocket connection: its socket, topics, auth state, and outgoing queue."""

    def __init__(self, ws: web.WebSocketResponse, kind: str, category: str = ""):
        self.ws = ws
        self.kind = kind            # "public" | "private" | "trade"
        self.category = category
        self.conn_id = uuid.uuid4().hex[:20]
        self.topics: set[str] = set()
        self.authed = False
        self.outbox: asyncio.Queue = asyncio.Queue()

    async def pump(self, server: SimServer):
        # One sender per connection keeps push order, even when private pushes are delayed.
        while True:
            due, text = await self.outbox.get()
            if text is None:
                return
            wait = due - server.loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if self.ws.closed:
                return
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    def send(self, text: str, delay_s: float = 0.0):
        self.outbox.put_nowait((asyncio.get_running_loop().time() + delay_s, text))


class SimServer:
    """The aiohttp application and all simulated exchange state (runs on one event loop).

    Use :func:`start_simulator` to run it in a background thread.
    """

    def __init__(self, symbols: Iterable[SimSymbol] = (SimSymbol(),), *,
                 sources: dict[str, Callable[[], Iterable[str]]] | None = None,
                 speed: float = 1.0, interval_ms: int = 20, api_key: str = DEFAULT_API_KEY,
                 api_secret: str = DEFAULT_API_SECRET, maker_fee: str = "0.0002",
                 taker_fee: str = "0.00055", balance: str = "100000",
                 rate_limit_per_s: int | None = 10, engine: str = "auto", seed: int = 0):
        self.symbols = {s.symbol: s for s in symbols}
        if not self.symbols:
            raise ValueError("the simulator needs at least one symbol")
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.sources = sources or {
            s: (lambda sym=sym, i=i: synthetic_source(sym, seed=seed + i, interval_ms=interval_ms))
            for i, (s, sym) in enumerate(self.symbols.items())}
        self.speed = speed
        self.interval_ms = interval_ms
        self.api_key, self.api_secret = api_key, api_secret
        self.rate_limit_per_s = rate_limit_per_s
        self.account = _make_account(engine, self.symbols, maker_fee, taker_fee, balance)
        self.ladders = {s: _Ladder() for s in self.symbols}
        self.topics: dict[str, _Topic] = {}
        self.conns: set[_Conn] = set()
        self.seq = itertools.count(1_000_000)
        self.market_ready = {s: asyncio.Event() for s in self.symbols}
        self.paused = False
        # Fault state (mutated only on the loop thread).
        self.private_delay_s = 0.0
        self.reject_queue: list[tuple[int, str]] = []
        self.rate_window: dict[str, tuple[int, int]] = {}
        self.frames_sent = 0
        self.trades_sent = 0
        self.executions: list[dict] = []      # every execution push, oldest first
        # Per symbol: (last trade price ticks, its tick direction) for publicTrade "L".
        self._last_trade: dict[str, tuple[int | None, str]] = {s: (None, "PlusTick")
                                                               for s in self.symbols}
        # Symbols whose source carries its own publicTrade frames (recordings): no synthesis.
        self._recorded_trades: set[str] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task] = []

    # ------------------------------------------------------------------ app

    def make_app(self) -> web.Application:
        app = web.Application()
        r = app.router
        r.add_get("/v5/market/time", self.h_time)
        r.add_get("/v5/market/instruments-info", self.h_instruments)
        r.add_get("/v5/market/orderbook", self.h_orderbook)
        for path in ("create", "amend", "cancel", "cancel-all", "create-batch", "amend-batch",
                     "cancel-batch"):
            r.add_post(f"/v5/order/{path}", self.h_order)
        r.add_get("/v5/order/realtime", self.h_open_orders)
        r.add_get("/v5/position/list", self.h_positions)
        r.add_get("/v5/execution/list", self.h_executions)
        r.add_get("/v5/account/wallet-balance", self.h_wallet)
        r.add_get("/v5/public/{category}", self.ws_public)
        r.add_get("/v5/private", self.ws_private)
        r.add_get("/v5/trade", self.ws_trade)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_startup(self, app):
        self.loop = asyncio.get_running_loop()
        for symbol in self.symbols:
            self._tasks.append(asyncio.create_task(self._stream(symbol)))

    async def _on_shutdown(self, app):
        for t in self._tasks:
            t.cancel()
        for c in list(self.conns):
            await c.ws.close()

    # ------------------------------------------------------------------ market stream

    async def _stream(self, symbol: str):
        sym = self.symbols[symbol]
        ps, qs = Scale(sym.tick_size), Scale(sym.lot_size)
        ladder = self.ladders[symbol]
        period = self.interval_ms / 1000.0 / self.speed
        next_at = self.loop.time()
        try:
            for raw in self.sources[symbol]():
                while self.paused:
                    await asyncio.sleep(0.01)
                msg = json.loads(raw)
                if str(msg.get("topic", "")).startswith("publicTrade."):
                    # A recording's own trades: pass them through, stop synthesizing.
                    self._recorded_trades.add(symbol)
                    self._send_trades(symbol, raw)
                    continue
                data = msg["data"]
                snapshot = msg.get("type") == "snapshot"
                if snapshot:
                    ladder.bids.clear()
                    ladder.asks.clear()
                before_b: dict[int, int] = {}
                before_a: dict[int, int] = {}
                for side, levels in (("b", data.get("b", ())), ("a", data.get("a", ()))):
                    book, before = (ladder.bids, before_b) if side == "b" else \
                        (ladder.asks, before_a)
                    for p, s in levels:
                        t, lots = ps.to_units(p, "price"), qs.to_units(s, "size")
                        before.setdefault(t, book.get(t, 0))
                        if lots:
                            book[t] = lots
                        else:
                            book.pop(t, None)
                if not snapshot and symbol not in self._recorded_trades:
                    trades = touch_trades(before_b, before_a, ladder)
                    if trades:
                        # The trade is what happened; the delta after it shows the result.
                        self._send_trades(symbol, self._trade_text(symbol, trades))
                self._publish(symbol)
                self._push(self.account.on_frame(symbol, raw, ladder))
                self.market_ready[symbol].set()
                next_at += period
                wait = next_at - self.loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                else:
                    # Behind schedule: yield so sockets still get served, then catch up.
                    await asyncio.sleep(0)
                    if wait < -1.0:
                        next_at = self.loop.time()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("market stream for %s stopped", symbol)

    def _trade_text(self, symbol: str, trades: list[tuple[str, int, int]]) -> str:
        sym = self.symbols[symbol]
        ps = Scale(sym.tick_size, strip=sym.category == "spot")
        qs = Scale(sym.lot_size)
        ts = now_ms()
        last, last_dir = self._last_trade[symbol]
        items = []
        for side, ticks, lots in trades:
            last_dir = _tick_direction(ticks, last, last_dir)
            last = ticks
            items.append(P.public_trade(symbol, side, qs.to_str(lots), ps.to_str(ticks),
                                        last_dir, str(uuid.uuid4()), ts, next(self.seq)))
        self._last_trade[symbol] = (last, last_dir)
        return P.public_trade_frame(symbol, items, ts)

    def _send_trades(self, symbol: str, text: str):
        """Publish one publicTrade message and let the engine fill resting orders on it."""
        topic = self.topics.get(f"publicTrade.{symbol}")
        if topic is not None:
            for conn in list(topic.subscribers):
                conn.send(text)
        self.trades_sent += 1
        self._push(self.account.on_frame(symbol, text, self.ladders[symbol]))

    def _view(self, topic: _Topic):
        ladder = self.ladders[topic.symbol]
        return dict(ladder.top("b", topic.depth)), dict(ladder.top("a", topic.depth))

    def _levels(self, symbol: str, items) -> list:
        sym = self.symbols[symbol]
        ps = Scale(sym.tick_size, strip=sym.category == "spot")
        qs = Scale(sym.lot_size)
        # A delete is size "0" exactly, as Bybit sends it, not "0.000".
        return [[ps.to_str(t), qs.to_str(lots) if lots else "0"] for t, lots in items]

    def _snapshot_text(self, topic: _Topic) -> str:
        ts = now_ms()
        bids = self._levels(topic.symbol, sorted(topic.view_b.items(), reverse=True))
        asks = self._levels(topic.symbol, sorted(topic.view_a.items()))
        return P.orderbook_frame(topic.name, "snapshot", topic.symbol, bids, asks, topic.u,
                                 next(self.seq), ts, ts - 2)

    def _publish(self, symbol: str):
        for topic in self.topics.values():
            if topic.symbol != symbol or not topic.subscribers or topic.depth == 0:
                continue
            new_b, new_a = self._view(topic)
            db = _diff(topic.view_b, new_b)
            da = _diff(topic.view_a, new_a)
            if not db and not da:
                continue
            topic.view_b, topic.view_a = new_b, new_a
            topic.u += 1
            if topic.depth == 1:
                text = self._snapshot_text(topic)     # level 1 sends snapshots only
            else:
                ts = now_ms()
                text = P.orderbook_frame(
                    topic.name, "delta", symbol,
                    self._levels(symbol, sorted(db.items(), reverse=True)),
                    self._levels(symbol, sorted(da.items())), topic.u, next(self.seq), ts, ts - 2)
            if topic.skip_next > 0:
                topic.skip_next -= 1      # fault: this u never reaches the subscribers
                continue
            for conn in list(topic.subscribers):
                conn.send(text)
            self.frames_sent += 1

    # ------------------------------------------------------------------ websocket plumbing

    async def _serve_ws(self, request, conn_kind: str, handler, category: str = ""):
        ws = web.WebSocketResponse(autoping=True, heartbeat=None, max_msg_size=4 * 2**20)
        await ws.prepare(request)
        conn = _Conn(ws, conn_kind, category)
        self.conns.add(conn)
        pump = asyncio.create_task(conn.pump(self))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    req = json.loads(msg.data)
                    if not isinstance(req, dict):
                        raise ValueError("request must be a JSON object")
                except ValueError as exc:
                    log.warning("bad %s request %r: %s", conn_kind, msg.data[:200], exc)
                    conn.send(json.dumps({"success": False, "ret_msg": f"bad request: {exc}",
                                          "conn_id": conn.conn_id}))
                    continue
                await handler(conn, req)
        finally:
            self.conns.discard(conn)
            for t in self.topics.values():
                t.subscribers.discard(conn)
            conn.outbox.put_nowait((0, None))
            await asyncio.gather(pump, return_exceptions=True)
        return ws

    async def ws_public(self, request):
        category = request.match_info["category"]
        if category not in ("linear", "spot"):
            raise web.HTTPNotFound(text=f"no public stream for category {category!r}")
        return await self._serve_ws(request, "public", self._on_public, category)

    async def ws_private(self, request):
        return await self._serve_ws(request, "private", self._on_private)

    async def ws_trade(self, request):
        return await self._serve_ws(request, "trade", self._on_trade)

    async def _on_public(self, conn: _Conn, req: dict):
        op, req_id = req.get("op"), req.get("req_id")
        if op == "ping":
            conn.send(P.public_pong(conn.conn_id, req_id))
            return
        if op not in ("subscribe", "unsubscribe"):
            conn.send(P.public_ack(op or "", req_id, conn.conn_id, conn.category, False,
                                   f"error:unknown op {op!r}"))
            return
        args = req.get("args") or []
        if conn.category == "spot" and len(args) > 10:
            conn.send(P.public_ack(op, req_id, conn.conn_id, conn.category, False,
                                   "args size >10"))
            return
        parsed = []
        for name in args:
            topic = self._parse_topic(name, conn.category)
            if topic is None:
                conn.send(P.public_ack(op, req_id, conn.conn_id, conn.category, False,
                                       f"error:handler not found,topic:{name}"))
                return
            parsed.append(topic)
        conn.send(P.public_ack(op, req_id, conn.conn_id, conn.category, True))
        for topic in parsed:
            if op == "subscribe":
                if topic.depth == 0:            # publicTrade: no snapshot, trades as they happen
                    topic.subscribers.add(conn)
                    conn.topics.add(topic.name)
                    continue
                if not topic.subscribers:
                    topic.view_b, topic.view_a = self._view(topic)
                topic.subscribers.add(conn)
                conn.topics.add(topic.name)
                if self.market_ready[topic.symbol].is_set():
                    conn.send(self._snapshot_text(topic))
            else:
                topic.subscribers.discard(conn)
                conn.topics.discard(topic.name)

    def _parse_topic(self, name, category) -> _Topic | None:
        if not isinstance(name, str):
            return None
        parts = name.split(".")
        if len(parts) == 2 and parts[0] == "publicTrade":
            sym = self.symbols.get(parts[1])
            if sym is None or sym.category != category:
                return None
            topic = self.topics.get(name)
            if topic is None:
                topic = self.topics[name] = _Topic(name, 0, parts[1])   # depth 0: trades
            return topic
        if len(parts) != 3 or parts[0] != "orderbook" or not parts[1].isdigit():
            return None
        depth, symbol = int(parts[1]), parts[2]
        sym = self.symbols.get(symbol)
        if depth not in ORDERBOOK_DEPTHS or sym is None or sym.category != category:
            return None
        topic = self.topics.get(name)
        if topic is None:
            topic = self.topics[name] = _Topic(name, depth, symbol)
        return topic

    def _check_ws_auth(self, args) -> str | None:
        if not isinstance(args, list) or len(args) != 3:
            return "Params Error"
        key, expires, sig = args
        if key != self.api_key:
            return "Invalid apikey"
        try:
            expires = int(expires)
        except (TypeError, ValueError):
            return "Params Error"
        if expires <= now_ms():
            return "Params Error: request expired"
        if sig != P.sign_ws_auth(self.api_secret, expires):
            return "Signature verification failed"
        return None

    async def _on_private(self, conn: _Conn, req: dict):
        op, req_id = req.get("op"), req.get("req_id")
        if op == "ping":
            conn.send(P.private_pong(conn.conn_id, req_id))
        elif op == "auth":
            problem = self._check_ws_auth(req.get("args"))
            conn.authed = problem is None
            conn.send(P.private_auth_ack(conn.conn_id, conn.authed, problem or ""))
        elif op in ("subscribe", "unsubscribe"):
            args = req.get("args") or []
            bad = [a for a in args if a not in PRIVATE_TOPICS]
            ok = conn.authed and not bad
            msg = "" if ok else ("Request not authorized" if not conn.authed
                                 else f"error:handler not found,topic:{bad[0]}")
            ack = {"success": ok, "ret_msg": msg, "op": op, "conn_id": conn.conn_id}
            if req_id is not None:
                ack["req_id"] = req_id
            conn.send(json.dumps(ack, separators=(",", ":")))
            if ok:
                (conn.topics.update if op == "subscribe" else conn.topics.difference_update)(args)
        else:
            conn.send(json.dumps({"success": False, "ret_msg": f"unknown op {op!r}",
                                  "op": op, "conn_id": conn.conn_id}))

    def _push(self, events: list):
        """Send private pushes to subscribed private connections (one message per event).

        Executions are also kept for ``/v5/execution/list``: a client that was down when
        they were pushed reads them back from there, as on Bybit.
        """
        if not events:
            return
        self.executions.extend(d for t, d in events if t == "execution")
        for conn in list(self.conns):
            if conn.kind != "private" or not conn.authed:
                continue
            for topic, data in events:
                if topic in conn.topics:
                    conn.send(P.private_push(topic, [data]), self.private_delay_s)

    # ------------------------------------------------------------------ trading core

    def _rate_check(self, op_class: str) -> tuple[bool, dict]:
        now = now_ms()
        second = now // 1000
        limit = self.rate_limit_per_s or 10**9
        start, used = self.rate_window.get(op_class, (second, 0))
        if start != second:
            start, used = second, 0
        used += 1
        self.rate_window[op_class] = (start, used)
        header = P.limit_header(limit, limit - used, (second + 1) * 1000)
        return used <= limit, header

    def _dispatch(self, op: str, args: dict) -> tuple[int, str, dict, dict, list]:
        """Run one trading op: return (retCode, retMsg, data, retExtInfo, events)."""
        if self.reject_queue:
            code, msg = self.reject_queue.pop(0)
            return code, msg, {}, {}, []
        if not isinstance(args, dict):
            return RetCode.PARAMS_ERROR, "params error: args must be an object", {}, {}, []
        acct = self.account
        single = {"order.create": acct.create, "order.amend": acct.amend,
                  "order.cancel": acct.cancel}
        if op in single:
            ladder = self.ladders.get(args.get("symbol", ""))
            if ladder is None:
                return RetCode.PARAMS_ERROR, "params error: symbol invalid", {}, {}, []
            code, msg, data, events = single[op](args, ladder)
            return code, msg, data, {}, events
        if op == "order.cancel-all":
            code, msg, data, events = acct.cancel_all(args, self.ladders)
            return code, msg, data, {}, events
        if op in ("order.create-batch", "order.amend-batch", "order.cancel-batch"):
            requests = args.get("request")
            category = args.get("category")
            if not isinstance(requests, list) or not requests:
                return RetCode.PARAMS_ERROR, "params error: request list missing", {}, {}, []
            cap = 10 if category == "spot" else 20
            if len(requests) > cap:
                return RetCode.PARAMS_ERROR, f"params error: at most {cap} orders", {}, {}, []
            fn = single[op.replace("-batch", "")]
            results, infos, events = [], [], []
            for item in requests:
                item = dict(item, category=category)
                ladder = self.ladders.get(item.get("symbol", ""))
                if ladder is None:
                    code, msg, data, ev = RetCode.PARAMS_ERROR, "params error: symbol invalid", {}, []
                else:
                    code, msg, data, ev = fn(item, ladder)
                events.extend(ev)
                results.append({"category": category, "symbol": item.get("symbol", ""),
                                "orderId": data.get("orderId", ""),
                                "orderLinkId": data.get("orderLinkId", item.get("orderLinkId", "")),
                                "createAt": str(now_ms())})
                infos.append({"code": code, "msg": msg})
            return RetCode.OK, "OK", {"list": results}, {"list": infos}, events
        return RetCode.BAD_OP, f"Invalid op: {op}", {}, {}, []

    async def _on_trade(self, conn: _Conn, req: dict):
        op, req_id = req.get("op"), req.get("reqId")
        if op == "ping":
            conn.send(P.trade_pong(conn.conn_id))
            return
        if op == "auth":
            problem = self._check_ws_auth(req.get("args"))
            conn.authed = problem is None
            conn.send(P.trade_auth_ack(conn.conn_id, 0 if conn.authed else RetCode.SIGN_ERROR,
                                       "OK" if conn.authed else problem))
            return
        if not conn.authed:
            conn.send(P.trade_response(req_id, op, RetCode.INVALID_API_KEY,
                                       "Request not authorized", {}, {}, conn.conn_id, {}))
            return
        if op not in TRADE_OPS:
            conn.send(P.trade_response(req_id, op, RetCode.BAD_OP, f"Invalid op: {op}", {}, {},
                                       conn.conn_id, {}))
            return
        header = req.get("header") or {}
        problem = self._check_window(header.get("X-BAPI-TIMESTAMP"),
                                     header.get("X-BAPI-RECV-WINDOW") or 5000)
        if problem:
            conn.send(P.trade_response(req_id, op, RetCode.TIMESTAMP_WINDOW, problem, {}, {},
                                       conn.conn_id, {}))
            return
        ok, limit = self._rate_check(_op_class(op))
        if not ok:
            conn.send(P.trade_response(req_id, op, RetCode.RATE_LIMIT, RET_MSG[RetCode.RATE_LIMIT],
                                       {}, {}, conn.conn_id, limit))
            return
        args = (req.get("args") or [None])[0]
        code, msg, data, ext, events = self._dispatch(op, args)
        conn.send(P.trade_response(req_id, op, code, msg, data, ext, conn.conn_id, limit))
        self._push(events)

    @staticmethod
    def _check_window(ts, recv_window) -> str | None:
        try:
            ts, window = int(ts), int(recv_window)
        except (TypeError, ValueError):
            return "invalid request: X-BAPI-TIMESTAMP missing or not an integer"
        now = now_ms()
        if not (now - window <= ts < now + 1000):
            return (f"invalid request, please check your server timestamp or recv_window "
                    f"param. req_timestamp[{ts}],server_timestamp[{now}],recv_window[{window}]")
        return None

    # ------------------------------------------------------------------ REST

    def _json(self, body: dict, headers: dict | None = None) -> web.Response:
        return web.json_response(body, headers=headers,
                                 dumps=lambda o: json.dumps(o, separators=(",", ":")))

    def _error(self, code: int, msg: str, headers=None) -> web.Response:
        return self._json(P.rest_response({}, code, msg), headers)

    def _check_rest_auth(self, request, payload: str) -> tuple[int, str] | None:
        h = request.headers
        key = h.get("X-BAPI-API-KEY")
        if key != self.api_key:
            return RetCode.INVALID_API_KEY, RET_MSG[RetCode.INVALID_API_KEY]
        ts, window, sign = h.get("X-BAPI-TIMESTAMP"), h.get("X-BAPI-RECV-WINDOW", "5000"), \
            h.get("X-BAPI-SIGN")
        problem = self._check_window(ts, window)
        if problem:
            return RetCode.TIMESTAMP_WINDOW, problem
        if sign != P.sign_http(self.api_secret, ts, key, window, payload):
            return RetCode.SIGN_ERROR, "error sign! origin_string[...]"
        return None

    async def h_time(self, request):
        ns = now_ms() * 1_000_000
        return self._json(P.rest_response({"timeSecond": str(ns // 10**9),
                                           "timeNano": str(ns)}))

    async def h_instruments(self, request):
        category = request.query.get("category")
        if category not in ("linear", "spot"):
            return self._error(RetCode.PARAMS_ERROR, f"params error: category {category!r}")
        symbol = request.query.get("symbol")
        items = [P.instrument_info(s.category, s.symbol, s.tick_size, s.lot_size, s.min_qty,
                                   s.max_qty, s.min_notional)
                 for s in self.symbols.values()
                 if s.category == category and (symbol is None or s.symbol == symbol)]
        result = {"category": category, "list": items}
        if category == "linear":
            result["nextPageCursor"] = ""
        return self._json(P.rest_response(result))

    async def h_orderbook(self, request):
        q = request.query
        sym = self.symbols.get(q.get("symbol", ""))
        if sym is None or q.get("category") != sym.category:
            return self._error(RetCode.PARAMS_ERROR, "params error: symbol or category invalid")
        try:
            limit = int(q.get("limit", "1" if sym.category == "spot" else "25"))
        except ValueError:
            return self._error(RetCode.PARAMS_ERROR, "params error: limit must be an integer")
        ladder = self.ladders[sym.symbol]
        ts = now_ms()
        return self._json(P.rest_response({
            "s": sym.symbol, "b": self._levels(sym.symbol, ladder.top("b", limit)),
            "a": self._levels(sym.symbol, ladder.top("a", limit)), "ts": ts,
            "u": next(self.seq), "seq": next(self.seq), "cts": ts - 2}))

    async def h_order(self, request):
        body = await request.text()
        problem = self._check_rest_auth(request, body)
        if problem:
            return self._error(*problem)
        op = "order." + request.path.rsplit("/", 1)[1]
        ok, limit = self._rate_check(_op_class(op))
        headers = {k: v for k, v in limit.items()}
        if not ok:
            return self._error(RetCode.RATE_LIMIT, RET_MSG[RetCode.RATE_LIMIT], headers)
        try:
            args = json.loads(body) if body else {}
        except ValueError:
            return self._error(RetCode.PARAMS_ERROR, "params error: body is not JSON", headers)
        code, msg, data, ext, events = self._dispatch(op, args)
        self._push(events)
        return self._json(P.rest_response(data if code == 0 else {}, code, msg, ext), headers)

    def _query_payload(self, request) -> str:
        # pybit signs its own sorted "k=v&..." string and sends it as the raw query.
        return request.query_string

    async def h_open_orders(self, request):
        problem = self._check_rest_auth(request, self._query_payload(request))
        if problem:
            return self._error(*problem)
        q = request.query
        symbol = q.get("symbol")
        items = self.account.open_order_dicts(symbol, q.get("category"))
        if q.get("orderLinkId"):
            items = [i for i in items if i["orderLinkId"] == q["orderLinkId"]]
        if q.get("orderId"):
            items = [i for i in items if i["orderId"] == q["orderId"]]
        return self._json(P.rest_response({"list": items, "nextPageCursor": "",
                                           "category": q.get("category")}))

    async def h_positions(self, request):
        problem = self._check_rest_auth(request, self._query_payload(request))
        if problem:
            return self._error(*problem)
        q = request.query
        items = []
        for symbol, sym in self.symbols.items():
            if sym.category != q.get("category") or (q.get("symbol") and q["symbol"] != symbol):
                continue
            items.append(self.account.position_dict(
                symbol, _mid(self.ladders[symbol], Scale(sym.tick_size))))
        return self._json(P.rest_response({"list": items, "nextPageCursor": "",
                                           "category": q.get("category")}))

    async def h_executions(self, request):
        """``/v5/execution/list``: newest first; ``startTime``/``endTime``, ``limit`` (<= 100)
        and an opaque ``cursor`` page through them."""
        problem = self._check_rest_auth(request, self._query_payload(request))
        if problem:
            return self._error(*problem)
        q = request.query
        try:
            limit = int(q.get("limit", "50"))
            start = int(q["startTime"]) if q.get("startTime") else None
            end = int(q["endTime"]) if q.get("endTime") else None
            offset = int(q.get("cursor") or 0)
        except ValueError:
            return self._error(RetCode.PARAMS_ERROR,
                               "params error: limit, startTime, endTime, cursor must be integers")
        if not 1 <= limit <= 100:
            return self._error(RetCode.PARAMS_ERROR, "params error: limit must be 1..100")
        items = [d for d in reversed(self.executions)
                 if (not q.get("symbol") or d["symbol"] == q["symbol"])
                 and (not q.get("category") or d["category"] == q["category"])
                 and (start is None or int(d["execTime"]) >= start)
                 and (end is None or int(d["execTime"]) <= end)]
        page = items[offset:offset + limit]
        cursor = str(offset + limit) if offset + limit < len(items) else ""
        return self._json(P.rest_response({"list": page, "nextPageCursor": cursor,
                                           "category": q.get("category")}))

    async def h_wallet(self, request):
        problem = self._check_rest_auth(request, self._query_payload(request))
        if problem:
            return self._error(*problem)
        return self._json(P.rest_response({"list": [self.account.wallet_dict()]}))

    # ------------------------------------------------------------------ faults (loop thread)

    async def drop(self, kind: str | None = None):
        """Abort the TCP connection of every WebSocket of ``kind`` (all when None)."""
        for conn in list(self.conns):
            if kind is None or conn.kind == kind:
                transport = conn.ws._req.transport if conn.ws._req else None
                if transport is not None:
                    transport.abort()

    def skip_u(self, symbol: str | None = None, count: int = 1):
        for topic in self.topics.values():
            if (symbol is None or topic.symbol == symbol) and topic.depth:
                topic.skip_next += count

    def restart_book(self, symbol: str | None = None):
        """Send a ``u == 1`` restart snapshot on every matching topic (Bybit service restart)."""
        for topic in self.topics.values():
            if (symbol is None or topic.symbol == symbol) and topic.depth:
                topic.u = 1
                topic.view_b, topic.view_a = self._view(topic)
                text = self._snapshot_text(topic)
                for conn in topic.subscribers:
                    conn.send(text)

    def send_malformed(self, kind: str = "truncated", symbol: str | None = None):
        """Send a bad frame: ``truncated`` JSON, ``bad_price`` text, or ``gap_free_bad_size``."""
        for topic in self.topics.values():
            if (symbol is not None and topic.symbol != symbol) or not topic.depth:
                continue
            ts = now_ms()
            good = P.orderbook_frame(topic.name, "delta", topic.symbol, [["1.0", "abc"]], [],
                                     topic.u + 1, next(self.seq), ts, ts)
            if kind == "truncated":
                text = good[: len(good) // 2]
            elif kind == "bad_price":
                text = good.replace('"1.0"', '"1.0x"').replace('"abc"', '"1"')
            elif kind == "bad_size":
                text = good
            else:
                raise ValueError(f"unknown malformed kind {kind!r}")
            for conn in topic.subscribers:
                conn.send(text)


def _make_account(engine: str, symbols, maker_fee, taker_fee, balance):
    """Pick the fill model: part B's MatchingEngine (``engine``) or the ``touch`` fallback."""
    if engine not in ("auto", "engine", "touch"):
        raise ValueError(f"engine must be 'auto', 'engine' or 'touch', got {engine!r}")
    if engine != "touch":
        try:
            return _EngineAccount(symbols, maker_fee, taker_fee, balance)
        except ImportError:
            if engine == "engine":
                raise
            log.warning("mmbot.sim.engine unavailable; using the touch fill model")
    return _Account(symbols, maker_fee, taker_fee, balance, TouchMatcher())


def touch_trades(before_b: dict[int, int], before_a: dict[int, int], ladder: _Ladder
                 ) -> list[tuple[str, int, int]]:
    """Return the trades a book delta implies: ``[(taker_side, price_ticks, lots)]``.

    ``before_b`` / ``before_a`` hold the sizes, before the delta, of the levels it
    changed; ``ladder`` is the book after it. A level that shrank (or vanished) at or
    beyond the new touch was traded away: bids by a ``Sell`` taker, asks by a ``Buy``
    taker, best price first, as one sweeping order would. Reductions deeper in the book
    are cancels, not trades.
    """
    out: list[tuple[str, int, int]] = []
    best_bid = ladder.best_bid()
    for t in sorted(before_b, reverse=True):
        gone = before_b[t] - ladder.bids.get(t, 0)
        if gone > 0 and (best_bid is None or t >= best_bid):
            out.append(("Sell", t, gone))
    best_ask = ladder.best_ask()
    for t in sorted(before_a):
        gone = before_a[t] - ladder.asks.get(t, 0)
        if gone > 0 and (best_ask is None or t <= best_ask):
            out.append(("Buy", t, gone))
    return out


def _tick_direction(price: int, last: int | None, last_dir: str) -> str:
    if last is None or price > last:
        return "PlusTick"
    if price < last:
        return "MinusTick"
    return "ZeroPlusTick" if last_dir in ("PlusTick", "ZeroPlusTick") else "ZeroMinusTick"


def _diff(old: dict, new: dict) -> dict:
    out = {p: 0 for p in old if p not in new}
    for p, lots in new.items():
        if old.get(p) != lots:
            out[p] = lots
    return out


def _op_class(op: str) -> str:
    if op.endswith("-batch"):
        return "batch"
    return {"order.amend": "amend", "order.cancel-all": "cancel-all"}.get(op, "create-cancel")


# =========================================================================== thread handle


class SimulatorHandle:
    """A running simulator in a background thread; every method is thread-safe.

    Attributes
    ----------
    port : int
    http_url : str
        ``http://127.0.0.1:<port>``, for ``HTTP.endpoint``.
    ws_url : str
        ``ws://127.0.0.1:<port>``, the base for pybit WebSocket paths.
    api_key, api_secret : str
        The credentials the simulator accepts.
    server : SimServer
        The state; read it only through the methods below from other threads.
    """

    def __init__(self, server: SimServer, port: int, loop, thread, runner):
        self.server = server
        self.port = port
        self.http_url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"
        self.url = self.http_url
        self.api_key, self.api_secret = server.api_key, server.api_secret
        self._loop, self._thread, self._runner = loop, thread, runner

    def call(self, fn, *args, timeout_s: float = 5.0, **kwargs):
        """Run ``fn(*args, **kwargs)`` on the simulator's loop and return its result."""
        async def run():
            out = fn(*args, **kwargs)
            if asyncio.iscoroutine(out):
                out = await out
            return out
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout_s)

    # faults
    def drop(self, kind: str | None = None):
        """Abort WebSocket connections of ``kind`` (``public``/``private``/``trade``/all)."""
        self.call(self.server.drop, kind)

    def skip_u(self, symbol: str | None = None, count: int = 1):
        """Withhold the next ``count`` deltas of each matching topic (a ``u`` gap)."""
        self.call(self.server.skip_u, symbol, count)

    def restart_book(self, symbol: str | None = None):
        """Send a ``u == 1`` restart snapshot."""
        self.call(self.server.restart_book, symbol)

    def send_malformed(self, kind: str = "truncated", symbol: str | None = None):
        """Send a malformed frame (``truncated``, ``bad_price``, ``bad_size``)."""
        self.call(self.server.send_malformed, kind, symbol)

    def delay_private(self, seconds: float):
        """Delay every later private push by ``seconds`` (0 to stop)."""
        self.call(setattr, self.server, "private_delay_s", float(seconds))

    def reject_next(self, count: int = 1, ret_code: int = RetCode.RATE_LIMIT, ret_msg: str | None = None):
        """Answer the next ``count`` trading ops with ``ret_code`` instead of executing them."""
        msg = ret_msg or RET_MSG.get(ret_code, "error")
        self.call(self.server.reject_queue.extend, [(ret_code, msg)] * count)

    def pause_market(self, paused: bool = True):
        """Freeze (or resume) the market stream; no frames, no market-driven fills."""
        self.call(setattr, self.server, "paused", paused)

    def taker_hit(self, symbol: str, side: str, lots: int | None = None):
        """Fill own resting ``side`` orders as if a taker traded them (best price first)."""
        def run():
            srv = self.server
            srv._push(srv.account.taker_hit(symbol, side, lots, srv.ladders[symbol]))
        self.call(run)

    # state
    def open_orders(self, symbol: str | None = None) -> list[dict]:
        """Return the open orders in Bybit's shape."""
        return self.call(self.server.account.open_order_dicts, symbol)

    def executions(self, symbol: str | None = None) -> list[dict]:
        """Return every execution so far (Bybit's shape), oldest first."""
        return self.call(lambda: [dict(d) for d in self.server.executions
                                  if symbol in (None, d["symbol"])])

    def position_lots(self, symbol: str) -> int:
        """Return the signed position in lots."""
        return self.call(self.server.account.position_lots, symbol)

    def best(self, symbol: str) -> tuple[int | None, int | None]:
        """Return the market's (best bid ticks, best ask ticks)."""
        return self.call(lambda: (self.server.ladders[symbol].best_bid(),
                                  self.server.ladders[symbol].best_ask()))

    def wait_market(self, timeout_s: float = 5.0):
        """Block until every symbol's stream has produced its first frame."""
        async def run():
            for ev in self.server.market_ready.values():
                await ev.wait()
        self.call(run, timeout_s=timeout_s)

    def stop(self):
        """Stop the server and join its thread (idempotent)."""
        if not self._thread.is_alive():
            return
        fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
        try:
            fut.result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_simulator(port: int = 0, symbols: Iterable[SimSymbol] = (SimSymbol(),),
                    **kwargs) -> SimulatorHandle:
    """Start the simulator on ``127.0.0.1:port`` in a daemon thread and return its handle.

    Parameters
    ----------
    port : int
        0 picks a free port (tests); the chosen port is ``handle.port``.
    symbols : iterable of SimSymbol
    **kwargs
        Passed to :class:`SimServer` (``sources``, ``speed``, ``api_key``, ...).
    """
    server = SimServer(symbols, **kwargs)
    ready = threading.Event()
    box: dict = {}

    def main():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            # aiohttp's own Event objects must be created on this loop.
            server.market_ready = {s: asyncio.Event() for s in server.symbols}
            runner = web.AppRunner(server.make_app(), handle_signals=False,
                                   shutdown_timeout=1.0)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", port)
            loop.run_until_complete(site.start())
            box["port"] = site._server.sockets[0].getsockname()[1]
            box["loop"], box["runner"] = loop, runner
        except BaseException as exc:  # hand the failure to the caller, whatever it is
            box["error"] = exc
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=main, name="bybit-sim", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise TimeoutError("simulator did not start within 10 s")
    if "error" in box:
        raise RuntimeError(f"simulator failed to start on 127.0.0.1:{port}") from box["error"]
    return SimulatorHandle(server, box["port"], box["loop"], thread, box["runner"])
