"""``BybitVenue``: the :class:`~mmbot.venue.base.Venue` interface on Bybit v5 through pybit.

* pybit ``HTTP``: instruments, fee rates, open orders and order history, positions (spot:
  the wallet), executions, cancel-all and disconnect protection (blocking, reliable).
* pybit ``WebSocketTrading``: create/amend/cancel and their batch forms (fire and forget).
* pybit private ``WebSocket``: ``order``, ``execution``, ``position``, ``wallet`` and
  ``dcp`` streams.

Every execution type reaches the handler: ``Trade`` fills, ``AdlTrade`` and ``BustTrade``
(the exchange closing part of the position) and ``Funding`` (cash).

Spot has no position: the inventory is the wallet's base-coin balance less what the account
held when the venue was opened (``spot_baseline``), in whole lots.

Disconnect protection: with ``dcp_window_s`` the venue asks Bybit to cancel every order
when the private socket and its pings are gone for that long
(``/v5/order/disconnected-cancel-all``), and follows the ``dcp`` topic. Accounts without
the feature get a refusal, which is logged; the bot's own REST cancel-all still runs.

An acknowledgement is not a fill: a successful trade ack changes nothing here; order
state, fills and the position come only from the private streams (and REST on
reconcile). Requests never block on the exchange.

retCode policy (each refused request becomes a :class:`RequestError` event, so the
order manager decides what the order is now):

=============================  ================================================================
10006 rate limit               Stop sending until ``X-Bapi-Limit-Reset-Timestamp`` (requests in
                               that window are refused locally with 10006, never sent).
110001 unknown order           On cancel: the order is already gone (filled or cancelled);
                               its final state arrives on the ``order`` stream / reconcile.
10016 / 10019 restarting       Trade service restarting: reconnect the trade socket, emit
                               ConnectionEvent down then up (the order manager reconciles).
post-only would take           Not an error on Bybit: the ack is OK and the ``order`` stream
                               reports ``Cancelled`` with ``EC_PostOnlyWillTakeLiquidity``.
anything else                  RequestError with Bybit's code and message.
=============================  ================================================================

Secrets: the key and secret live only inside the pybit clients; they never appear in a
log line, ``repr`` or exception raised here (pybit's ``log_requests`` stays off because
it logs headers).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from mmbot.bybit.clients import (
    DecodedTextFrames,
    LocalWebSocket,
    LocalWebSocketTrading,
    local_http,
)
from mmbot.bybit.messages import execution_from_bybit, order_from_bybit, position_from_bybit
from mmbot.instrument import Instrument
from mmbot.types import (
    ERR_ORDER_NOT_FOUND,
    ERR_RATE_LIMIT,
    AmendRequest,
    CancelRequest,
    ConnectionEvent,
    Execution,
    ExecutionEvent,
    Order,
    OrderEvent,
    OrderRequest,
    Position,
    PositionEvent,
    RequestError,
)
from mmbot.venue.base import Venue

__all__ = ["BybitVenue", "ERR_TRADE_RESTARTING", "ERR_SERVICE_RESTARTING"]

log = logging.getLogger(__name__)

ERR_SERVICE_RESTARTING = 10016
ERR_TRADE_RESTARTING = 10019
_RESTART_CODES = (ERR_SERVICE_RESTARTING, ERR_TRADE_RESTARTING)


def _ms() -> int:
    return time.time_ns() // 1_000_000


class _ReportsLink:
    """Mixin for a pybit socket that tells its venue when it drops and reconnects."""

    link_name = "stream"

    def __init__(self, *args, venue: BybitVenue, **kwargs):
        self._venue = venue
        self._started = False
        super().__init__(*args, **kwargs)
        self._started = True

    def _reset(self):
        super()._reset()
        if getattr(self, "_started", False):
            self._venue._link_down(f"{self.link_name} disconnected")

    def _connect(self, url):
        out = super()._connect(url)
        if getattr(self, "_started", False):
            self._venue._link_up(f"{self.link_name} reconnected")
        return out


class _Socket(_ReportsLink, DecodedTextFrames, LocalWebSocket):
    link_name = "private stream"


class _Trading(_ReportsLink, DecodedTextFrames, LocalWebSocketTrading):
    link_name = "trade stream"


class BybitVenue(Venue):
    """Bybit v5 (or the local simulator) behind the :class:`Venue` interface.

    Parameters
    ----------
    symbols : sequence of str
        Symbols traded; their instrument rules are fetched at construction.
    category : str
        ``"linear"`` or ``"spot"``.
    api_key, api_secret : str
        Credentials (from the environment / ``.env``; never logged).
    testnet : bool
        Use Bybit testnet hosts (ignored when ``http_base``/``ws_base`` are given).
    http_base, ws_base : str or None
        ``http://127.0.0.1:<port>`` / ``ws://127.0.0.1:<port>`` for the local simulator.
    recv_window_ms : int
    http_retry_delay_s : float
        pybit's sleep before retrying retryable REST codes (0 in tests).
    dcp_window_s : int or None
        Disconnect protection window (3..300 s); None leaves it off.
    connect : bool
        Open the sockets now; False leaves that to :meth:`connect`.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        category: str = "linear",
        api_key: str,
        api_secret: str,
        testnet: bool = False,
        http_base: str | None = None,
        ws_base: str | None = None,
        recv_window_ms: int = 5000,
        http_retry_delay_s: float = 1.0,
        dcp_window_s: int | None = None,
        connect: bool = True,
    ):
        if category not in ("linear", "spot"):
            raise ValueError(f"category must be 'linear' or 'spot', got {category!r}")
        if not api_key or not api_secret:
            raise ValueError(
                "BybitVenue needs api_key and api_secret (BYBIT_API_KEY / BYBIT_API_SECRET)"
            )
        self.category = category
        super().__init__()
        self.symbols = list(symbols)
        self._testnet = testnet
        self._ws_base = ws_base
        self._recv_window_ms = recv_window_ms
        self._creds = (api_key, api_secret)
        self._lock = threading.RLock()
        self._up = {"private": False, "trade": False}
        self.throttled_until_ms = 0
        self.wallet: dict = {}
        self.positions: dict[str, Position] = {}
        self.acks = 0
        self.ack_latency_ms: list[float] = []
        self.http = local_http(
            http_base,
            testnet=testnet,
            api_key=api_key,
            api_secret=api_secret,
            recv_window=recv_window_ms,
            retry_delay=http_retry_delay_s,
            max_retries=3,
            log_requests=False,
        )
        self._info: dict[str, dict] = {}
        self.instruments: dict[str, Instrument] = {}
        self._load_instruments()
        self.spot_baseline: dict[str, Decimal] = {}
        if category == "spot":
            for symbol in self.symbols:
                self.spot_baseline[symbol] = self._base_balance(symbol)
        self.dcp: dict = {}
        self._dcp_window_s = dcp_window_s
        # the sockets exist once connect() ran
        self.private: _Socket | None = None
        self.trade: _Trading | None = None
        if connect:
            self.connect()

    def connect(self) -> None:
        """Open the private and trade sockets (and disconnect protection).

        Construction with ``connect=False`` reads only REST (instrument rules, spot
        balances), so a caller can validate its configuration against them before any
        socket exists.
        """
        key, secret = self._creds
        private = _Socket(
            testnet=self._testnet,
            channel_type="private",
            api_key=key,
            api_secret=secret,
            ws_base=self._ws_base,
            venue=self,
        )
        self.private = private
        private.order_stream(self._on_order)
        private.execution_stream(self._on_execution)
        private.position_stream(self._on_position)
        private.wallet_stream(self._on_wallet)
        self.trade = self._new_trade_socket()
        self._up = {"private": True, "trade": True}
        if self._dcp_window_s is not None:
            self._enable_dcp(self._dcp_window_s)

    def __repr__(self) -> str:
        return f"BybitVenue(category={self.category!r}, symbols={self.symbols!r})"

    # ------------------------------------------------------------------ setup

    def _new_trade_socket(self) -> _Trading:
        key, secret = self._creds
        return _Trading(
            testnet=self._testnet,
            api_key=key,
            api_secret=secret,
            ws_base=self._ws_base,
            recv_window=self._recv_window_ms,
            venue=self,
        )

    def _load_instruments(self):
        for symbol in self.symbols:
            resp = self.http.get_instruments_info(category=self.category, symbol=symbol)
            items = resp["result"]["list"]
            if not items:
                raise ValueError(f"{symbol!r} is not a {self.category} instrument on this venue")
            self._info[symbol] = items[0]
            self.instruments[symbol] = Instrument.from_bybit(self.category, items[0])

    # ------------------------------------------------------------------ connection state

    def now_ms(self) -> int:
        return _ms()

    @property
    def connected(self) -> bool:
        if self.private is None or self.trade is None:
            return False  # not connected yet
        try:
            return (
                self.private.is_connected() and self.trade.is_connected() and all(self._up.values())
            )
        except AttributeError:
            return False

    def _link_down(self, reason: str):
        kind = "private" if reason.startswith("private") else "trade"
        with self._lock:
            was = all(self._up.values())
            self._up[kind] = False
        if was:
            log.warning("venue: %s", reason)
            self.emit(ConnectionEvent(False, reason, _ms()))

    def _link_up(self, reason: str):
        kind = "private" if reason.startswith("private") else "trade"
        with self._lock:
            self._up[kind] = True
            now_up = all(self._up.values())
        if now_up:
            log.info("venue: %s", reason)
            self.emit(ConnectionEvent(True, reason, _ms()))

    # ------------------------------------------------------------------ queries (REST)

    def instrument_info(self, symbol: str) -> dict:
        return self._info[symbol]

    def instrument(self, symbol: str) -> Instrument:
        """Return the :class:`Instrument` of ``symbol``."""
        return self.instruments[symbol]

    def open_orders(self, symbol: str) -> list[Order]:
        out: list[Order] = []
        cursor = ""
        for _ in range(100):  # bounded pagination: 100 pages x 50 orders
            params = {"category": self.category, "symbol": symbol, "limit": 50}
            if cursor:
                params["cursor"] = cursor
            result = self.http.get_open_orders(**params)["result"]
            out.extend(
                order_from_bybit(item, self.instruments[item["symbol"]])
                for item in result["list"]
                if item.get("symbol") == symbol
            )
            cursor = result.get("nextPageCursor") or ""
            if not cursor:
                break
        return out

    def fee_rates(self, symbol: str) -> tuple[Decimal, Decimal]:
        """Return the account's ``(maker, taker)`` fee rates for ``symbol`` (REST)."""
        items = self.http.get_fee_rates(category=self.category, symbol=symbol)["result"]["list"]
        for item in items:
            if item.get("symbol") == symbol:
                return Decimal(item["makerFeeRate"]), Decimal(item["takerFeeRate"])
        raise ValueError(f"the venue has no fee rate for {self.category} {symbol}")

    def order_status(self, symbol: str, order_link_id: str) -> Order | None:
        """Return one of our orders by client id, open or closed (REST realtime, then
        history); None when the venue has never seen it."""
        inst = self.instruments[symbol]
        for query in (self.http.get_open_orders, self.http.get_order_history):
            items = query(category=self.category, symbol=symbol, orderLinkId=order_link_id)[
                "result"
            ]["list"]
            for item in items:
                if item.get("orderLinkId") == order_link_id:
                    return order_from_bybit(item, inst)
        return None

    def _base_balance(self, symbol: str) -> Decimal:
        coin = self._info[symbol]["baseCoin"]
        accounts = self.http.get_wallet_balance(accountType="UNIFIED", coin=coin)["result"]["list"]
        for account in accounts:
            for c in account.get("coin", []):
                if c.get("coin") == coin:
                    return Decimal(c.get("walletBalance") or "0")
        return Decimal(0)

    def position(self, symbol: str) -> Position:
        if self.category == "spot":
            inst = self.instruments[symbol]
            held = self._base_balance(symbol) - self.spot_baseline[symbol]
            lots = int(held / Decimal(inst.lot_size))  # toward zero: a fee dust is not a lot
            pos = Position(symbol, lots, Decimal(0), _ms())
            self.positions[symbol] = pos
            return pos
        items = self.http.get_positions(category=self.category, symbol=symbol)["result"]["list"]
        pos = Position(symbol)
        for item in items:
            if item.get("symbol") == symbol:
                pos = position_from_bybit(item, self.instruments[symbol])
        self.positions[symbol] = pos
        return pos

    def wallet_balance(self) -> dict:
        """Return the unified account's wallet (REST)."""
        return self.http.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]

    # ------------------------------------------------------------------ conversions

    # ------------------------------------------------------------------ private streams
    # These run on pybit's socket thread and must never raise into it (pybit would close
    # the socket for good): every handler logs and keeps going.

    def _guard(self, what: str, message: dict, fn):
        try:
            for item in message.get("data", []):
                if item.get("symbol") in self.instruments or what in ("wallet", "dcp"):
                    fn(item)
        except Exception:
            log.exception("venue: bad %s push: %.300s", what, message)

    def _on_order(self, message: dict):
        ts = int(message.get("creationTime") or _ms())
        self._guard(
            "order",
            message,
            lambda d: self.emit(OrderEvent(order_from_bybit(d, self.instruments[d["symbol"]]), ts)),
        )

    def _on_execution(self, message: dict):
        ts = int(message.get("creationTime") or _ms())

        self._guard(
            "execution",
            message,
            lambda d: self.emit(
                ExecutionEvent(execution_from_bybit(d, self.instruments[d["symbol"]], ts), ts)
            ),
        )

    def executions(self, symbol: str, start_ms: int) -> list[Execution]:
        """Return the account's executions of ``symbol`` from ``start_ms`` to now (REST),
        every type, oldest first.

        A restarted or reconnected bot reads here what was pushed while it could not see.
        """
        out: list[Execution] = []
        cursor = ""
        end_ms = _ms()
        for _ in range(100):  # bounded pagination: 100 pages x 100 executions
            params = {
                "category": self.category,
                "symbol": symbol,
                "startTime": start_ms,
                "endTime": end_ms,
                "limit": 100,
            }
            if cursor:
                params["cursor"] = cursor
            result = self.http.get_executions(**params)["result"]
            out.extend(
                execution_from_bybit(d, self.instruments[symbol], end_ms)
                for d in result["list"]
                if d.get("symbol") == symbol
            )
            cursor = result.get("nextPageCursor") or ""
            if not cursor:
                break
        out.reverse()  # pages are newest first
        out.sort(key=lambda x: x.exec_ms)
        return out

    def _on_position(self, message: dict):
        ts = int(message.get("creationTime") or _ms())

        def one(d):
            pos = position_from_bybit(d, self.instruments[d["symbol"]])
            self.positions[pos.symbol] = pos
            self.emit(PositionEvent(pos, ts))

        self._guard("position", message, one)

    def _enable_dcp(self, window_s: int):
        if not 3 <= window_s <= 300:
            raise ValueError(f"dcp_window_s must be 3..300, got {window_s}")
        try:
            self.http.set_dcp(timeWindow=window_s)
        except Exception as exc:  # not every account has it: the REST cancel-all remains
            log.warning("venue: disconnect protection not available (%s)", exc)
            return
        # pybit formats "{symbol}" into every topic; "dcp" has none, so one empty symbol
        assert self.private is not None, "called by connect() after the private socket opened"
        self.private.subscribe("dcp", self._on_dcp, "")

    def _on_dcp(self, message: dict):
        self._guard("dcp", message, lambda d: self.dcp.update(d))

    def _on_wallet(self, message: dict):
        self._guard("wallet", message, lambda d: setattr(self, "wallet", d))

    # ------------------------------------------------------------------ order entry

    def _throttled(self, op: str, link: str) -> bool:
        if _ms() < self.throttled_until_ms:
            self.emit(
                RequestError(
                    op,
                    link,
                    ERR_RATE_LIMIT,
                    f"rate limited until {self.throttled_until_ms} (not sent)",
                    _ms(),
                )
            )
            return True
        return False

    def _send(self, method: str, op: str, links: list[str], params: dict):
        sent_ms = time.perf_counter()

        def ok(message):
            self.acks += 1
            self.ack_latency_ms.append((time.perf_counter() - sent_ms) * 1000)
            if len(self.ack_latency_ms) > 10_000:
                del self.ack_latency_ms[:5000]
            infos = (message.get("retExtInfo") or {}).get("list") or []
            for link, info in zip(links, infos, strict=False):
                if info.get("code", 0) != 0:
                    self._refused(op, link, int(info["code"]), info.get("msg", ""), message)

        def err(message):
            code = int(message.get("retCode", -1))
            for link in links:
                self._refused(op, link, code, message.get("retMsg", ""), message)

        try:
            getattr(self.trade, method)(ok, error_callback=err, **params)
        except Exception as exc:  # socket down: refuse now, the reconnect reconciles
            log.warning("venue: %s not sent: %s", op, exc)
            for link in links:
                self.emit(RequestError(op, link, -1, f"not sent: {exc}", _ms()))

    def _refused(self, op: str, link: str, code: int, msg: str, message: dict):
        if code == ERR_RATE_LIMIT:
            reset = (message.get("header") or {}).get("X-Bapi-Limit-Reset-Timestamp")
            self.throttled_until_ms = int(reset) if reset else _ms() + 1000
            log.warning("venue: rate limited (10006) until %s", self.throttled_until_ms)
        elif code in _RESTART_CODES:
            log.warning("venue: trade service restarting (%s); reconnecting", code)
            threading.Thread(target=self._reconnect_trade, daemon=True).start()
        elif code == ERR_ORDER_NOT_FOUND and op == "cancel":
            log.info("venue: cancel of %s: already gone (110001)", link)
        self.emit(RequestError(op, link, code, msg, _ms()))

    def _reconnect_trade(self):
        with self._lock:
            old = self.trade
            self._link_down("trade service restarting")
            try:
                old.exit()
            except Exception:
                log.exception("venue: closing the old trade socket")
            self.trade = self._new_trade_socket()
        self._link_up("trade stream reconnected")

    def _order_params(self, r: OrderRequest) -> dict:
        inst = self.instruments[r.symbol]
        p: dict[str, Any] = {
            "category": self.category,
            "symbol": r.symbol,
            "side": r.side,
            "orderType": r.order_type,
            "qty": inst.qty_str(r.qty_lots),
            "orderLinkId": r.order_link_id,
        }
        if r.order_type == "Limit":
            p["price"] = inst.price_str(r.price_ticks)
            p["timeInForce"] = "PostOnly" if r.post_only else "GTC"
        if r.reduce_only:
            p["reduceOnly"] = True
        return p

    def _amend_params(self, r: AmendRequest) -> dict:
        inst = self.instruments[r.symbol]
        p = {"category": self.category, "symbol": r.symbol}
        if r.order_id:
            p["orderId"] = r.order_id
        else:
            p["orderLinkId"] = r.order_link_id
        if r.price_ticks is not None:
            p["price"] = inst.price_str(r.price_ticks)
        if r.qty_lots is not None:
            p["qty"] = inst.qty_str(r.qty_lots)
        return p

    def _cancel_params(self, r: CancelRequest) -> dict:
        p = {"category": self.category, "symbol": r.symbol}
        if r.order_id:
            p["orderId"] = r.order_id
        else:
            p["orderLinkId"] = r.order_link_id
        return p

    def place(self, request: OrderRequest) -> None:
        if not self._throttled("create", request.order_link_id):
            self._send(
                "place_order", "create", [request.order_link_id], self._order_params(request)
            )

    def amend(self, request: AmendRequest) -> None:
        if not self._throttled("amend", request.order_link_id):
            self._send("amend_order", "amend", [request.order_link_id], self._amend_params(request))

    def cancel(self, request: CancelRequest) -> None:
        if not self._throttled("cancel", request.order_link_id):
            self._send(
                "cancel_order", "cancel", [request.order_link_id], self._cancel_params(request)
            )

    def _batch(self, method: str, op: str, requests, to_params):
        self._check_batch(requests)
        if not requests:
            return
        links = [r.order_link_id for r in requests]
        if _ms() < self.throttled_until_ms:
            for link in links:
                self._throttled(op, link)
            return
        items = []
        for r in requests:
            p = to_params(r)
            p.pop("category")
            items.append(p)
        self._send(method, op, links, {"category": self.category, "request": items})

    def place_batch(self, requests: Sequence[OrderRequest]) -> None:
        self._batch("place_batch_order", "create", list(requests), self._order_params)

    def amend_batch(self, requests: Sequence[AmendRequest]) -> None:
        self._batch("amend_batch_order", "amend", list(requests), self._amend_params)

    def cancel_batch(self, requests: Sequence[CancelRequest]) -> None:
        self._batch("cancel_batch_order", "cancel", list(requests), self._cancel_params)

    def cancel_all(self, symbol: str) -> None:
        """Cancel every open order on ``symbol`` over REST (pybit retries 10006 itself)."""
        try:
            self.http.cancel_all_orders(category=self.category, symbol=symbol)
        except Exception as exc:
            code = getattr(exc, "status_code", -1)
            log.warning("venue: cancel-all %s failed: %s", symbol, exc)
            self.emit(RequestError("cancel_all", "", int(code or -1), str(exc), _ms()))

    def close(self) -> None:
        """Close the private and trade sockets."""
        for sock in (getattr(self, "trade", None), getattr(self, "private", None)):
            if sock is not None:
                try:
                    sock.exit()
                except Exception:
                    log.exception("venue: closing a socket")
