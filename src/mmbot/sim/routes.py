"""The aiohttp application: REST routes, the three WebSocket kinds, and disconnect
protection. All exchange state lives in :class:`SimServer` and runs on one event loop.

REST (every answer, errors and unknown paths included, is Bybit's JSON envelope):

* market: ``time``, ``instruments-info``, ``orderbook``, ``tickers``, ``kline``,
  ``recent-trade``;
* trade: ``order/create|amend|cancel|cancel-all|create-batch|amend-batch|cancel-batch``,
  ``order/realtime``, ``order/history``, ``order/disconnected-cancel-all``,
  ``execution/list``;
* position: ``position/list``, ``position/set-leverage``, ``position/closed-pnl``;
* account: ``account/wallet-balance``, ``account/fee-rate``, ``account/info``,
  ``account/query-dcp-info``, ``account/transaction-log``; ``asset/coin/query-info``;
  ``user/query-api``.

WebSockets: ``/v5/public/{linear,spot}`` (``orderbook``, ``publicTrade``, ``tickers``,
``kline``),
``/v5/private`` (``order``, ``execution``, ``position``, ``wallet``, ``dcp``),
``/v5/trade`` (the ``order.*`` ops).

Private endpoints check pybit's and ccxt's HMAC signature, the api key and the recv window.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import json
import logging
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from mmbot.rfc6455 import text_frame_header
from mmbot.sim import protocol as P
from mmbot.sim.account import SimAccount, SimSymbol
from mmbot.sim.dispatch import TRADE_OPS, Dispatcher
from mmbot.sim.engine import OrderRejected
from mmbot.sim.market import KLINE_INTERVALS, MarketData, sources_for
from mmbot.sim.protocol import RET_MSG, RetCode, now_ms

__all__ = ["SimServer", "DEFAULT_API_KEY", "DEFAULT_API_SECRET"]

log = logging.getLogger(__name__)

DEFAULT_API_KEY = "sim-key"
DEFAULT_API_SECRET = "sim-secret"
PRIVATE_TOPICS = (
    "order",
    "execution",
    "position",
    "wallet",
    "dcp",
    "dcp.future",
    "dcp.spot",
    "dcp.option",
    *(f"{t}.{c}" for t in ("order", "execution") for c in ("linear", "spot", "inverse", "option")),
    *(f"position.{c}" for c in ("linear", "inverse", "option")),
)
#: the longest the market stream publishes before it lets the event loop serve requests
ROUND_BUDGET_S = 0.005
#: DCP product -> the categories whose orders it cancels
DCP_PRODUCTS = {"DERIVATIVES": ("linear",), "SPOT": ("spot",), "OPTIONS": ()}


class _Conn:
    """One WebSocket connection: its socket, topics, auth state, and outgoing queue."""

    def __init__(self, ws: web.WebSocketResponse, kind: str, category: str = ""):
        self.ws = ws
        self.kind = kind  # "public" | "private" | "trade"
        self.category = category
        self.conn_id = uuid.uuid4().hex[:20]
        self.topics: set[str] = set()
        self.authed = False
        #: ``(due loop time or 0.0, text)``, oldest first; text None closes the pump
        self.outbox: deque[tuple[float, str | None]] = deque()
        self._wake = asyncio.Event()
        #: why the server ended the connection, when it did (None: the peer or the network
        #: ended it); the close log reads it
        self.close_reason: str | None = None
        #: the close that a failed pump started (a strong reference keeps the task alive)
        self.closing: asyncio.Task | None = None

    async def pump(self, loop: asyncio.AbstractEventLoop) -> None:
        # One sender per connection keeps push order, even when private pushes are delayed.
        # What is due goes out in one transport write per loop iteration (frames of every
        # symbol that ticked together): a send syscall per frame was most of the cost.
        outbox = self.outbox
        while True:
            if not outbox:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch: list[str] = []
            wait = 0.0
            while outbox:
                due, text = outbox[0]
                if text is None:
                    await self._write(batch)
                    return
                if due and due > loop.time():
                    wait = due - loop.time()
                    break
                outbox.popleft()
                batch.append(text)
            if batch and not await self._write(batch):
                return
            if wait > 0:
                await asyncio.sleep(wait)

    async def _write(self, texts: list[str]) -> bool:
        """Send ``texts`` as WebSocket text frames, in order; False once the socket is gone."""
        ws = self.ws
        if not texts:
            return not ws.closed
        if ws.closed:
            return False
        raw = raw_transport(ws)
        try:
            if raw is None:
                for text in texts:
                    await ws.send_str(text)
                return True
            transport, protocol = raw
            if transport.is_closing():
                return False
            parts: list[bytes] = []
            for text in texts:
                data = text.encode()
                parts += (text_frame_header(len(data)), data)
            transport.writelines(parts)  # one send for all of them
            # aiohttp's own flow control: wait while the transport's buffer is full
            if protocol._paused:
                await protocol._drain_helper()
        except ConnectionError:
            return False
        except RuntimeError:
            # aiohttp 3.14 raises it only for misuse (a closing socket gets
            # ConnectionResetError): on a closing socket it stays a quiet end, on an open
            # one it is a bug the pump must not take for a close (_pump_done reports it)
            if ws.closed or (raw is not None and raw[0].is_closing()):
                return False
            raise
        return True

    def send(self, text: str, delay_s: float = 0.0):
        self.outbox.append((asyncio.get_running_loop().time() + delay_s if delay_s else 0.0, text))
        self._wake.set()

    def close_outbox(self):
        """Let the pump send what is queued, then stop."""
        self.outbox.append((0.0, None))
        self._wake.set()


def raw_transport(ws: web.WebSocketResponse) -> tuple[Any, Any] | None:
    """The transport and flow-control protocol under aiohttp's frame writer, or None where
    frames must go through ``send_str``: a compressed connection (permessage-deflate keeps
    state across frames), or an aiohttp whose private writer is shaped differently (the
    one-write batch reaches into it; ``aiohttp`` is not pinned)."""
    writer = getattr(ws, "_writer", None)
    transport = getattr(writer, "transport", None)
    protocol = getattr(writer, "protocol", None)
    if (
        ws.compress
        or transport is None
        or not hasattr(protocol, "_paused")
        or not hasattr(protocol, "_drain_helper")
    ):
        return None
    return transport, protocol


def ws_text_frame(text: str) -> bytes:
    """Return ``text`` as one unmasked, uncompressed WebSocket text frame (RFC 6455 5.2),
    as a server sends it."""
    data = text.encode()
    return text_frame_header(len(data)) + data


class SimServer:
    """The aiohttp application and all simulated exchange state (one event loop).

    Parameters
    ----------
    symbols : iterable of SimSymbol
    sources : dict of str to callable, optional
        Per symbol, a callable returning an iterable of raw frames (default: synthetic).
    speed : float
        Replay speed of the sources (> 1 is faster).
    interval_ms : int
        Period between frames of a source.
    api_key, api_secret : str
        The credentials the simulator accepts.
    maker_fee, taker_fee : str
        Fee rates (decimal strings), served by ``/v5/account/fee-rate``.
    balance : str
        Starting USDT balance; ``base_balances`` the spot base coins'.
    rate_limit_per_s : int, dict or None
        Requests per rolling second and UID, per class (``create``, ``amend``,
        ``cancel``); an int sets all three; None disables.
    funding_rate : str
        The rate ``tickers`` shows.
    seed : int
        Seed of the default synthetic sources.
    """

    def __init__(
        self,
        symbols: Iterable[SimSymbol] = (SimSymbol(),),
        *,
        sources: dict[str, Callable[[], Iterable[str]]] | None = None,
        speed: float = 1.0,
        interval_ms: int = 20,
        api_key: str = DEFAULT_API_KEY,
        api_secret: str = DEFAULT_API_SECRET,
        maker_fee: str = "0.0002",
        taker_fee: str = "0.00055",
        balance: str = "100000",
        base_balances: dict[str, str] | None = None,
        rate_limit_per_s: int | dict[str, int] | None = 10,
        funding_rate: str = "0.0001",
        seed: int = 0,
        queue_model: str = "prob_power",
        queue_power: float = 3.0,
    ):
        self.symbols = {s.symbol: s for s in symbols}
        if not self.symbols:
            raise ValueError("the simulator needs at least one symbol")
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        if interval_ms <= 0:
            raise ValueError(f"interval_ms must be positive, got {interval_ms}")
        self.sources = sources or sources_for(self.symbols, seed=seed, interval_ms=interval_ms)
        missing = set(self.symbols) - set(self.sources)
        if missing:
            raise ValueError(f"no market source for {sorted(missing)}")
        self.speed = speed
        self.interval_ms = interval_ms
        self.api_key, self.api_secret = api_key, api_secret
        # the same fill model as the backtests (mmbot.sim.engine's queue models)
        self.account = SimAccount(
            self.symbols, maker_fee, taker_fee, balance, base_balances, queue_model, queue_power
        )
        rate_limits = rate_limit_per_s
        if isinstance(rate_limits, int):
            rate_limits = {"create": rate_limits, "amend": rate_limits, "cancel": rate_limits}
        self.dispatcher = Dispatcher(self.account, rate_limits)
        self.market = MarketData(self.symbols, self.account, funding_rate=funding_rate)
        self.conns: set[_Conn] = set()
        self.market_ready: dict[str, asyncio.Event] = {}
        self.paused = False
        # Fault state (mutated only on the loop thread).
        self.private_delay_s = 0.0
        self.public_delay_s = 0.0  # fault: market frames leave this late, stamps unchanged
        self.position_first = False
        # Disconnect protection: product -> window in seconds; pushes owed to the next
        # private socket; when the last dcp subscriber left (loop time) and its timer.
        self.dcp_window: dict[str, int] = {}
        self._dcp_owed: list = []
        self._dcp_timer: asyncio.TimerHandle | None = None
        self.dcp_fired = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task] = []

    # ------------------------------------------------------------------ app
    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._envelope_errors])
        r = app.router
        get = {
            "/v5/market/time": self.h_time,
            "/v5/market/instruments-info": self.h_instruments,
            "/v5/market/orderbook": self.h_orderbook,
            "/v5/market/tickers": self.h_tickers,
            "/v5/market/kline": self.h_kline,
            "/v5/market/recent-trade": self.h_recent_trades,
            "/v5/order/realtime": self.h_open_orders,
            "/v5/order/history": self.h_order_history,
            "/v5/execution/list": self.h_executions,
            "/v5/position/list": self.h_positions,
            "/v5/position/closed-pnl": self.h_closed_pnl,
            "/v5/account/wallet-balance": self.h_wallet,
            "/v5/account/fee-rate": self.h_fee_rate,
            "/v5/account/info": self.h_account_info,
            "/v5/account/query-dcp-info": self.h_dcp_info,
            "/v5/account/transaction-log": self.h_transaction_log,
            "/v5/asset/coin/query-info": self.h_coin_info,
            "/v5/user/query-api": self.h_query_api,
        }
        for path, handler in get.items():
            r.add_get(path, handler)
        for op in TRADE_OPS:
            r.add_post(f"/v5/order/{op.removeprefix('order.')}", self.h_order)
        r.add_post("/v5/order/disconnected-cancel-all", self.h_dcp)
        r.add_post("/v5/position/set-leverage", self.h_set_leverage)
        r.add_get("/v5/public/{category}", self.ws_public)
        r.add_get("/v5/private", self.ws_private)
        r.add_get("/v5/trade", self.ws_trade)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    @web.middleware
    async def _envelope_errors(self, request, handler):
        try:
            return await handler(request)
        except _Reply as reply:
            return reply.response
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            # Bybit's clients parse every answer as the JSON envelope; so must ours be.
            body = P.rest_response(
                {},
                RetCode.BAD_OP if exc.status == 404 else RetCode.PARAMS_ERROR,
                f"{exc.reason}: {request.method} {request.path}",
            )
            return web.json_response(body, status=exc.status)

    async def _on_startup(self, app):
        self.loop = asyncio.get_running_loop()
        self._tasks.append(asyncio.create_task(self._stream()))

    async def _on_shutdown(self, app):
        for t in self._tasks:
            t.cancel()
        if self._dcp_timer is not None:
            self._dcp_timer.cancel()
        for c in list(self.conns):
            c.close_reason = c.close_reason or _SHUTDOWN
            await c.ws.close()

    # ------------------------------------------------------------------ market stream
    async def _stream(self) -> None:
        """Drive every symbol's source from one task: a heap of each symbol's next due
        time. (A task per symbol cost a wake-up per frame; here one wake-up serves every
        symbol due at once, and their frames leave in one write per connection.)

        Each symbol keeps its own schedule, one frame every ``interval_ms / speed``, and
        its own catch-up rule: behind by more than a second, it restarts from now. A
        source that fails stops its own symbol only; one that ends leaves its market
        standing still.
        """
        loop = self.loop
        assert loop is not None, "the stream starts in _on_startup, which sets the loop"
        period = self.interval_ms / 1000.0 / self.speed
        start = loop.time()
        heap: list[tuple[float, int, str, Iterator[str]]] = []
        for i, symbol in enumerate(self.symbols):
            try:
                heap.append((start, i, symbol, iter(self.sources[symbol]())))
            except Exception:
                log.exception("market stream for %s stopped", symbol)
        heapq.heapify(heap)
        while heap:
            while self.paused:
                await asyncio.sleep(0.01)
            now = loop.time()
            deadline = now + ROUND_BUDGET_S
            # earliest due first; a symbol still due after its frame goes round again
            # (behind schedule), until the round's time is up
            while heap and heap[0][0] <= now:
                at, i, symbol, frames = heap[0]
                if self._step(symbol, frames):
                    at += period
                    if at < now - 1.0:
                        at = now  # too far behind: restart the schedule from now
                    heapq.heapreplace(heap, (at, i, symbol, frames))
                else:
                    heapq.heappop(heap)
                if loop.time() > deadline:
                    break  # let requests and sockets in between
            if heap:
                # behind schedule, sleep(0) still lets the sockets be served
                await asyncio.sleep(max(heap[0][0] - loop.time(), 0))

    def _step(self, symbol: str, frames: Iterator[str]) -> bool:
        """Publish the symbol's next source frame; False once its source is done."""
        try:
            raw = next(frames)
            public, pushes = self.market.on_source_frame(symbol, raw, now_ms())
            self._publish(public)
            self._push(pushes)
            if self.market.book(symbol).synced:
                self.market_ready[symbol].set()
        except StopIteration:
            return False
        except Exception:
            log.exception("market stream for %s stopped", symbol)
            return False
        return True

    def _publish(self, public: list):
        for name, text in public:
            topic = self.market.topics.get(name)
            if topic is not None:
                for conn in list(topic.subscribers):
                    conn.send(text, self.public_delay_s)

    def _push(self, pushes: list):
        """Send private pushes to subscribed private connections (one message each)."""
        if not pushes:
            return
        if self.position_first:
            # Fault: each position push overtakes the execution it comes from.
            positions = [p for p in pushes if p[0] == "position"]
            rest = [p for p in pushes if p[0] != "position"]
            at = next((i for i, p in enumerate(rest) if p[0] == "execution"), len(rest))
            pushes = rest[:at] + positions + rest[at:]
        for conn in list(self.conns):
            if conn.kind != "private" or not conn.authed:
                continue
            for topic, data in pushes:
                # all-in-one ("order") or one category ("order.linear"), as subscribed
                for name in (topic, f"{topic}.{data.get('category', '')}"):
                    if name in conn.topics:
                        conn.send(P.private_push(name, [data]), self.private_delay_s)

    # ------------------------------------------------------------------ websockets
    async def _serve_ws(self, request, conn_kind: str, handler, category: str = ""):
        ws = web.WebSocketResponse(autoping=True, heartbeat=None, max_msg_size=4 * 2**20)
        await ws.prepare(request)
        conn = _Conn(ws, conn_kind, category)
        self.conns.add(conn)
        pump = asyncio.create_task(conn.pump(asyncio.get_running_loop()))
        pump.add_done_callback(functools.partial(_pump_done, conn))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    # aiohttp hands a failed read (an oversized or broken frame) over as a
                    # message and closes after it: the reason is only known here
                    conn.close_reason = conn.close_reason or f"read error: {ws.exception()!r}"
                    continue
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    req = json.loads(msg.data)
                    if not isinstance(req, dict):
                        raise ValueError("request must be a JSON object")
                except ValueError as exc:
                    log.warning("bad %s request %r: %s", conn_kind, msg.data[:200], exc)
                    conn.send(
                        json.dumps(
                            {
                                "success": False,
                                "ret_msg": f"bad request: {exc}",
                                "conn_id": conn.conn_id,
                            }
                        )
                    )
                    continue
                try:
                    await handler(conn, req)
                except Exception as exc:
                    # A bug of ours: the connection's state is unknown now. Close it with
                    # 1011 so the client sees the drop and resyncs (aiohttp would only
                    # abort the upgraded socket, and log without saying which connection).
                    log.exception(
                        "%s connection %s: handling %.200r failed", conn_kind, conn.conn_id, req
                    )
                    conn.close_reason = f"handler exception: {exc!r}; sent 1011"
                    await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"internal error")
                    break
        finally:
            self.conns.discard(conn)
            for t in self.market.topics.values():
                t.subscribers.discard(conn)
            # logged before the await below, which a cancelled handler may not get past
            why, normal = _close_why(conn)
            log.log(
                logging.INFO if normal else logging.WARNING,
                "%s connection %s closed: %s",
                conn_kind,
                conn.conn_id,
                why,
            )
            conn.close_outbox()
            # the pump sends what is queued, then ends; a failure of it was logged and
            # closed the connection already (_pump_done), so it is not raised again here
            await asyncio.gather(pump, return_exceptions=True)
            if conn.kind == "private" and _wants_dcp(conn):
                self._dcp_check()
        return ws

    async def ws_public(self, request):
        category = request.match_info["category"]
        if category not in ("linear", "spot"):
            raise web.HTTPNotFound(reason=f"no public stream for category {category!r}")
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
            conn.send(
                P.public_ack(
                    op or "", req_id, conn.conn_id, conn.category, False, f"error:unknown op {op!r}"
                )
            )
            return
        args = req.get("args") or []
        if not isinstance(args, list) or (conn.category == "spot" and len(args) > 10):
            conn.send(
                P.public_ack(
                    op,
                    req_id,
                    conn.conn_id,
                    conn.category,
                    False,
                    "args size >10" if isinstance(args, list) else "error:args must be a list",
                )
            )
            return
        parsed = []
        for name in args:
            topic = self.market.topic(name, conn.category)
            if topic is None:
                conn.send(
                    P.public_ack(
                        op,
                        req_id,
                        conn.conn_id,
                        conn.category,
                        False,
                        f"error:handler not found,topic:{name}",
                    )
                )
                return
            parsed.append(topic)
        conn.send(P.public_ack(op, req_id, conn.conn_id, conn.category, True))
        for topic in parsed:
            if op == "subscribe":
                ready = self.market_ready[topic.symbol].is_set()
                text = self.market.on_subscribe(topic, ready, now_ms())
                topic.subscribers.add(conn)
                conn.topics.add(topic.name)
                if text is not None:
                    conn.send(text)
            else:
                topic.subscribers.discard(conn)
                conn.topics.discard(topic.name)

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
            bad = [a for a in args if a not in PRIVATE_TOPICS] if isinstance(args, list) else [args]
            ok = conn.authed and not bad
            msg = (
                ""
                if ok
                else (
                    "Request not authorized"
                    if not conn.authed
                    else f"error:handler not found,topic:{bad[0]}"
                )
            )
            ack = {"success": ok, "ret_msg": msg, "op": op, "conn_id": conn.conn_id}
            if req_id is not None:
                ack["req_id"] = req_id
            conn.send(json.dumps(ack, separators=(",", ":")))
            if not ok:
                return
            if op == "subscribe":
                conn.topics.update(args)
                if _wants_dcp(conn):
                    self._dcp_armed = True
                self._dcp_check()
                owed = [p for p in self._dcp_owed if p[0] in args]
                self._dcp_owed = [p for p in self._dcp_owed if p[0] not in args]
                for topic, data in owed:
                    conn.send(P.private_push(topic, [data]))
            else:
                conn.topics.difference_update(args)
                self._dcp_check()
        else:
            conn.send(
                json.dumps(
                    {
                        "success": False,
                        "ret_msg": f"unknown op {op!r}",
                        "op": op,
                        "conn_id": conn.conn_id,
                    }
                )
            )

    async def _on_trade(self, conn: _Conn, req: dict):
        op, req_id = req.get("op"), req.get("reqId")
        if op == "ping":
            conn.send(P.trade_pong(conn.conn_id))
            return
        if op == "auth":
            problem = self._check_ws_auth(req.get("args"))
            conn.authed = problem is None
            if problem is None:
                conn.send(P.trade_auth_ack(conn.conn_id, 0, "OK"))
            else:
                conn.send(P.trade_auth_ack(conn.conn_id, RetCode.SIGN_ERROR, problem))
            return

        def refuse(code: int, msg: str) -> None:
            conn.send(P.trade_response(req_id, op, code, msg, {}, {}, conn.conn_id, {}))

        if not conn.authed:
            refuse(RetCode.INVALID_API_KEY, "Request not authorized")
            return
        if op not in TRADE_OPS or op == "order.cancel-all":
            refuse(RetCode.BAD_OP, f"Invalid op: {op}")
            return
        header = req.get("header") or {}
        args = req.get("args") or [None]
        # a wrong shape is the client's error, answered as Bybit does, not a crash
        if not isinstance(header, dict):
            refuse(RetCode.PARAMS_ERROR, "params error: header must be a JSON object")
            return
        if not isinstance(args, list):
            refuse(RetCode.PARAMS_ERROR, "params error: args must be a JSON array")
            return
        problem = _check_window(
            header.get("X-BAPI-TIMESTAMP"), header.get("X-BAPI-RECV-WINDOW") or 5000
        )
        if problem:
            refuse(RetCode.TIMESTAMP_WINDOW, problem)
            return
        res = self.dispatcher.run(op, args[0], now_ms())
        conn.send(
            P.trade_response(
                req_id, op, res.code, res.msg, res.data, res.ext, conn.conn_id, res.headers
            )
        )
        self._push(res.pushes)

    # ------------------------------------------------------------------ disconnect protection
    def _dcp_check(self):
        """Arm the DCP timer when no private socket subscribed to ``dcp`` is left."""
        if not self.dcp_window or self.loop is None:
            return
        alive = any(c.kind == "private" and c.authed and _wants_dcp(c) for c in self.conns)
        if alive:
            if self._dcp_timer is not None:
                self._dcp_timer.cancel()
                self._dcp_timer = None
        elif self._dcp_timer is None and self._dcp_armed:
            window = min(self.dcp_window.values())
            self._dcp_timer = self.loop.call_later(window, self._dcp_fire)

    _dcp_armed = False  # becomes True once a private socket has subscribed to dcp

    def _dcp_fire(self):
        self._dcp_timer = None
        self.dcp_fired += 1
        now = now_ms()
        for product in self.dcp_window:
            for category in DCP_PRODUCTS[product]:
                _, pushes = self.account.cancel_all(
                    {"category": category}, now, cancel_type="CancelByDCP"
                )
                self._dcp_owed += [p for p in pushes if p[0] == "order"]
                self._push(pushes)

    # ------------------------------------------------------------------ REST helpers
    def _json(self, body: dict, headers: dict | None = None) -> web.Response:
        return web.json_response(
            body, headers=headers, dumps=lambda o: json.dumps(o, separators=(",", ":"))
        )

    def _ok(self, result, headers=None) -> web.Response:
        return self._json(P.rest_response(result), headers)

    def _error(self, code: int, msg: str, headers=None) -> web.Response:
        return self._json(P.rest_response({}, code, msg), headers)

    def _check_rest_auth(self, request, payload: str) -> tuple[int, str] | None:
        h = request.headers
        key = h.get("X-BAPI-API-KEY")
        if key != self.api_key:
            return RetCode.INVALID_API_KEY, RET_MSG[RetCode.INVALID_API_KEY]
        ts, window, sign = (
            h.get("X-BAPI-TIMESTAMP"),
            h.get("X-BAPI-RECV-WINDOW", "5000"),
            h.get("X-BAPI-SIGN"),
        )
        problem = _check_window(ts, window)
        if problem:
            return RetCode.TIMESTAMP_WINDOW, problem
        if sign != P.sign_http(self.api_secret, ts, key, window, payload):
            return RetCode.SIGN_ERROR, "error sign! origin_string[...]"
        return None

    async def _private_get(self, request):
        """Check a signed GET; return its query or raise the envelope error."""
        problem = self._check_rest_auth(request, request.query_string)
        if problem:
            raise _Reply(self._error(*problem))
        return request.query

    async def _private_post(self, request) -> dict:
        body = await request.text()
        problem = self._check_rest_auth(request, body)
        if problem:
            raise _Reply(self._error(*problem))
        try:
            args = json.loads(body) if body else {}
        except ValueError as exc:
            raise _Reply(
                self._error(RetCode.PARAMS_ERROR, "params error: body is not JSON")
            ) from exc
        if not isinstance(args, dict):
            raise _Reply(self._error(RetCode.PARAMS_ERROR, "params error: body must be an object"))
        return args

    # ------------------------------------------------------------------ REST: market
    async def h_time(self, request):
        ns = now_ms() * 1_000_000
        return self._ok({"timeSecond": str(ns // 10**9), "timeNano": str(ns)})

    async def h_instruments(self, request):
        q = request.query
        category = q.get("category")
        if category not in ("linear", "spot", "inverse", "option"):
            return self._error(RetCode.PARAMS_ERROR, f"params error: category {category!r} invalid")
        status = q.get("status", "Trading")
        items = [
            P.instrument_info(
                s.category, s.symbol, s.tick_size, s.lot_size, s.min_qty, s.max_qty, s.min_notional
            )
            for s in self.symbols.values()
            if s.category == category
            and q.get("symbol") in (None, s.symbol)
            and status == "Trading"
        ]
        result = {"category": category, "list": items}
        if category != "spot":
            result["nextPageCursor"] = ""
        return self._ok(result)

    def _market_symbol(self, q) -> str:
        try:
            return self.account.engine_for(dict(q)).symbol
        except OrderRejected as exc:
            raise _Reply(self._error(exc.code, exc.message)) from exc

    async def h_orderbook(self, request):
        q = request.query
        symbol = self._market_symbol(q)
        cap = 200 if self.symbols[symbol].category == "spot" else 500
        limit = _int_arg(q, "limit", 1 if self.symbols[symbol].category == "spot" else 25, 1, cap)
        return self._ok(self.market.orderbook_rest(symbol, limit, now_ms()))

    async def h_tickers(self, request):
        q = request.query
        category = q.get("category")
        if category not in ("linear", "spot", "inverse", "option"):
            return self._error(RetCode.PARAMS_ERROR, f"params error: category {category!r}")
        symbol = q.get("symbol")
        if symbol is not None and category in ("linear", "spot"):
            self._market_symbol(q)
        items = self.market.tickers(category, symbol, now_ms())
        return self._ok({"category": category, "list": items})

    async def h_kline(self, request):
        q = request.query
        symbol = self._market_symbol(q)
        interval = q.get("interval")
        if interval not in KLINE_INTERVALS:
            return self._error(
                RetCode.PARAMS_ERROR,
                f"params error: interval {interval!r} invalid ({', '.join(KLINE_INTERVALS)})",
            )
        limit = _int_arg(q, "limit", 200, 1, 1000)
        start, end = _int_arg(q, "start", None, 0), _int_arg(q, "end", None, 0)
        rows = self.market.klines(symbol, KLINE_INTERVALS[interval], start, end, limit)
        return self._ok({"category": self.symbols[symbol].category, "symbol": symbol, "list": rows})

    async def h_recent_trades(self, request):
        q = request.query
        symbol = self._market_symbol(q)
        limit = _int_arg(
            q, "limit", 500 if self.symbols[symbol].category == "linear" else 60, 1, 1000
        )
        return self._ok(
            {
                "category": self.symbols[symbol].category,
                "list": self.market.recent_trades(symbol, limit),
            }
        )

    # ------------------------------------------------------------------ REST: trading
    async def h_order(self, request):
        args = await self._private_post(request)
        op = "order." + request.path.rsplit("/", 1)[1]
        res = self.dispatcher.run(op, args, now_ms())
        self._push(res.pushes)
        return self._json(
            P.rest_response(res.data if res.code == 0 else {}, res.code, res.msg, res.ext),
            res.headers,
        )

    async def h_dcp(self, request):
        args = await self._private_post(request)
        product = args.get("product", "OPTIONS")
        window = args.get("timeWindow")
        if product not in DCP_PRODUCTS:
            return self._error(
                RetCode.PARAMS_ERROR,
                f"params error: product {product!r} invalid (OPTIONS, DERIVATIVES, SPOT)",
            )
        if isinstance(window, bool) or not isinstance(window, int) or not 3 <= window <= 300:
            return self._error(
                RetCode.PARAMS_ERROR,
                f"params error: timeWindow must be an integer 3..300, got {window!r}",
            )
        self.dcp_window[product] = window
        return self._json(P.rest_response({}, 0, "success"))

    async def h_dcp_info(self, request):
        await self._private_get(request)
        return self._ok(
            {
                "dcpInfos": [
                    {"product": p, "dcpStatus": "ON", "timeWindow": str(w)}
                    for p, w in self.dcp_window.items()
                ]
            }
        )

    def _category(self, q, allowed=("linear", "spot", "inverse", "option")) -> str:
        # Bybit's other categories are valid and empty here (ccxt asks for all of them).
        category = q.get("category")
        if category not in allowed:
            raise _Reply(
                self._error(
                    RetCode.PARAMS_ERROR,
                    f"params error: category {category!r} invalid ({', '.join(allowed)})",
                )
            )
        return category

    async def h_open_orders(self, request):
        q = await self._private_get(request)
        category = self._category(q)
        symbol = q.get("symbol")
        items = self.account.open_order_items(symbol, category)
        oid, link = q.get("orderId"), q.get("orderLinkId")
        if oid or link:
            # Looked up by id, Bybit also returns the order once it is closed.
            items += self.account.closed_order_items(symbol, category)
            items = [
                i for i in items if oid in (None, i["orderId"]) and link in (None, i["orderLinkId"])
            ]
        return self._page(q, items, 20, 50, category)

    async def h_order_history(self, request):
        q = await self._private_get(request)
        category = self._category(q)
        items = self.account.closed_order_items(q.get("symbol"), category)
        items = [
            i
            for i in items
            if q.get("orderId") in (None, i["orderId"])
            and q.get("orderLinkId") in (None, i["orderLinkId"])
            and q.get("orderStatus") in (None, i["orderStatus"])
        ]
        items = _time_filter(q, items, "createdTime")
        return self._page(q, items, 20, 50, category)

    async def h_executions(self, request):
        """Newest first, filtered by symbol, orderId, orderLinkId, execType and
        ``startTime``/``endTime``; ``limit`` and an opaque ``cursor`` page through them."""
        q = await self._private_get(request)
        category = self._category(q)
        items = [
            d
            for d in reversed(self.account.executions)
            if d["category"] == category
            and q.get("symbol") in (None, d["symbol"])
            and q.get("orderId") in (None, d["orderId"])
            and q.get("orderLinkId") in (None, d["orderLinkId"])
            and q.get("execType") in (None, d["execType"])
        ]
        items = _time_filter(q, items, "execTime")
        return self._page(q, items, 50, 100, category)

    def _page(self, q, items: list, default: int, cap: int, category: str):
        limit = _int_arg(q, "limit", default, 1, cap)
        offset = _int_arg(q, "cursor", 0, 0) if q.get("cursor") else 0
        page = items[offset : offset + limit]
        cursor = str(offset + limit) if offset + limit < len(items) else ""
        return self._ok({"category": category, "list": page, "nextPageCursor": cursor})

    # ------------------------------------------------------------------ REST: position
    async def h_positions(self, request):
        q = await self._private_get(request)
        category = self._category(q, ("linear", "inverse", "option"))
        symbol = q.get("symbol")
        if symbol is None and not q.get("settleCoin") and category == "linear":
            return self._error(
                RetCode.PARAMS_ERROR, "params error: symbol or settleCoin is required"
            )
        if symbol is not None and category == "linear":
            self._market_symbol(q)
        items = [
            self.account.position_item(s)
            for s, sym in self.symbols.items()
            if sym.category == category
            and symbol in (None, s)
            and q.get("settleCoin") in (None, sym.coins[1])
        ]
        return self._ok({"category": category, "list": items, "nextPageCursor": ""})

    async def h_set_leverage(self, request):
        args = await self._private_post(request)
        try:
            self.account.set_leverage(args)
        except OrderRejected as exc:
            return self._error(exc.code, exc.message)
        return self._ok({})

    async def h_closed_pnl(self, request):
        q = await self._private_get(request)
        category = self._category(q, ("linear", "inverse", "option"))
        items = []
        for o in self.account.closed_order_items(q.get("symbol"), category):
            closes = [
                x
                for x in self.account.executions
                if x["orderId"] == o["orderId"] and x["closedSize"] != "0"
            ]
            if not closes:
                continue
            qs = self.account.qty[o["symbol"]]
            closed = sum(qs.to_units(x["closedSize"]) for x in closes)
            exit_value = sum(
                (Decimal(x["execPrice"]) * Decimal(x["closedSize"]) for x in closes), Decimal(0)
            )
            items.append(
                {
                    "symbol": o["symbol"],
                    "orderId": o["orderId"],
                    "side": o["side"],
                    "qty": o["qty"],
                    "orderPrice": o["price"],
                    "orderType": o["orderType"],
                    "execType": "Trade",
                    "closedSize": qs.to_str(closed),
                    "cumExitValue": P.dec(exit_value),
                    "avgExitPrice": P.avg_price(
                        exit_value, qs.to_decimal(closed), self.account.price[o["symbol"]]
                    ),
                    "closedPnl": o["closedPnl"],
                    "fillCount": str(len(closes)),
                    "leverage": self.account.leverage[o["symbol"]],
                    "createdTime": o["createdTime"],
                    "updatedTime": o["updatedTime"],
                }
            )
        items = _time_filter(q, items, "updatedTime")
        return self._page(q, items, 50, 100, category)

    # ------------------------------------------------------------------ REST: account
    async def h_wallet(self, request):
        q = await self._private_get(request)
        if q.get("accountType") != "UNIFIED":
            return self._error(
                RetCode.PARAMS_ERROR,
                f"accountType only support UNIFIED, got {q.get('accountType')!r}",
            )
        wallet = self.account.wallet_item()
        coins = q.get("coin")
        if coins:
            wanted = set(coins.split(","))
            wallet["coin"] = [c for c in wallet["coin"] if c["coin"] in wanted]
        return self._ok({"list": [wallet]})

    async def h_fee_rate(self, request):
        q = await self._private_get(request)
        category = self._category(q)
        symbol = q.get("symbol")
        if symbol is not None:
            self._market_symbol(q)
        items = [
            {
                "symbol": s,
                "takerFeeRate": P.dec(self.account.taker_fee),
                "makerFeeRate": P.dec(self.account.maker_fee),
            }
            for s, sym in self.symbols.items()
            if sym.category == category and symbol in (None, s)
        ]
        return self._ok({"list": items})

    async def h_account_info(self, request):
        await self._private_get(request)
        return self._ok(
            {
                "unifiedMarginStatus": 5,
                "marginMode": "REGULAR_MARGIN",
                "isMasterTrader": False,
                "spotHedgingStatus": "OFF",
                "updatedTime": str(now_ms()),
                "dcpStatus": "ON" if self.dcp_window else "OFF",
                "timeWindow": min(self.dcp_window.values(), default=10),
                "smpGroup": 0,
            }
        )

    async def h_transaction_log(self, request):
        q = await self._private_get(request)
        items = []
        for x in reversed(self.account.executions):
            if q.get("category") not in (None, x["category"]):
                continue
            funding = x["execType"] == "Funding"
            fee = Decimal(x["execFee"])
            items.append(
                {
                    "id": x["execId"],
                    "symbol": x["symbol"],
                    "category": x["category"],
                    "side": x["side"],
                    "transactionTime": x["execTime"],
                    "type": "SETTLEMENT" if funding else "TRADE",
                    "qty": x["execQty"],
                    "size": "",
                    "currency": x["feeCurrency"] or "USDT",
                    "tradePrice": x["execPrice"],
                    "funding": P.dec(fee) if funding else "",
                    "fee": "" if funding else P.dec(fee),
                    "cashFlow": "" if funding else x["execPnl"],
                    "change": x["execPnl"],
                    "cashBalance": "",
                    "feeRate": x["feeRate"],
                    "bonusChange": "",
                    "tradeId": x["execId"],
                    "orderId": x["orderId"],
                    "orderLinkId": x["orderLinkId"],
                }
            )
        items = _time_filter(q, items, "transactionTime")
        return self._page(q, items, 20, 50, q.get("category") or "")

    async def h_coin_info(self, request):
        q = await self._private_get(request)
        coins = {"USDT"}
        for sym in self.symbols.values():
            coins.update(sym.coins)
        rows = [
            {
                "name": c,
                "coin": c,
                "remainAmount": "1000000",
                "chains": [
                    {
                        "chainType": c,
                        "confirmation": "1",
                        "withdrawFee": "0",
                        "depositMin": "0",
                        "withdrawMin": "0",
                        "chain": c,
                        "chainDeposit": "0",
                        "chainWithdraw": "0",
                        "minAccuracy": "8",
                        "withdrawPercentageFee": "0",
                    }
                ],
            }
            for c in sorted(coins)
            if q.get("coin") in (None, c)
        ]
        return self._ok({"rows": rows})

    async def h_query_api(self, request):
        await self._private_get(request)
        return self._ok(
            {
                "id": "1",
                "note": "mmbot sim",
                "apiKey": self.api_key,
                "readOnly": 0,
                "secret": "",
                "permissions": {
                    "ContractTrade": ["Order", "Position"],
                    "Spot": ["SpotTrade"],
                    "Wallet": ["AccountTransfer"],
                    "Options": [],
                    "Derivatives": [],
                    "CopyTrading": [],
                    "BlockTrade": [],
                    "Exchange": [],
                    "NFT": [],
                },
                "ips": ["*"],
                "type": 1,
                "deadlineDay": -1,
                "expiredAt": "",
                "createdAt": "",
                "unified": 1,
                "uta": 1,
                "userID": 1,
                "inviterID": 0,
                "vipLevel": "No VIP",
                "mktMakerLevel": "0",
                "affiliateID": 0,
                "rsaPublicKey": "",
                "isMaster": True,
                "parentUid": "0",
                "kycLevel": "LEVEL_DEFAULT",
                "kycRegion": "",
            }
        )


class _Reply(Exception):
    """Carries a finished error response out of a helper (caught by the middleware)."""

    def __init__(self, response: web.Response):
        super().__init__("reply")
        self.response = response


def _pump_done(conn: _Conn, pump: asyncio.Task) -> None:
    """Report a send pump that died of an exception and close its connection.

    Without this the connection stays open and silent: the client keeps its subscriptions,
    never hears another frame, and has no reason to resync. Cancellation (the server
    shutting down) is not a failure.
    """
    if pump.cancelled():
        return
    exc = pump.exception()
    if exc is None:
        return
    log.error(
        "%s connection %s: send pump failed; closing the connection",
        conn.kind,
        conn.conn_id,
        exc_info=exc,
    )
    conn.close_reason = f"send pump failed: {exc!r}; sent 1011"
    if not conn.ws.closed:
        conn.closing = asyncio.get_running_loop().create_task(
            conn.ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"internal error: send failed")
        )


def _close_why(conn: _Conn) -> tuple[str, bool]:
    """One line for the close log (the server's reason, else what the peer sent), and
    whether the close was a normal one (a client's 1000 or 1001, the server shutting down):
    every bot's clean exit would otherwise log a warning per connection."""
    if conn.close_reason is not None:
        # not close_code: after our close it holds the code the peer answered with
        return conn.close_reason, conn.close_reason == _SHUTDOWN
    code = conn.ws.close_code
    if code is None or code == WSCloseCode.ABNORMAL_CLOSURE:
        return "connection lost without a close frame", False
    return f"closed by the client (code {code})", code in _NORMAL_CLOSE_CODES


_SHUTDOWN = "server shutdown"
_NORMAL_CLOSE_CODES = (WSCloseCode.OK, WSCloseCode.GOING_AWAY)


def _wants_dcp(conn: _Conn) -> bool:
    return any(t.startswith("dcp") for t in conn.topics)


def _check_window(ts, recv_window) -> str | None:
    try:
        ts, window = int(ts), int(recv_window)
    except (TypeError, ValueError):
        return "invalid request: X-BAPI-TIMESTAMP missing or not an integer"
    now = now_ms()
    if not (now - window <= ts < now + 1000):
        return (
            f"invalid request, please check your server timestamp or recv_window "
            f"param. req_timestamp[{ts}],server_timestamp[{now}],recv_window[{window}]"
        )
    return None


def _int_arg(q, key: str, default, lo: int, hi: int | None = None):
    raw = q.get(key)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise _Reply(
            web.json_response(
                P.rest_response(
                    {}, RetCode.PARAMS_ERROR, f"params error: {key} must be an integer, got {raw!r}"
                )
            )
        ) from exc
    if value < lo or (hi is not None and value > hi):
        raise _Reply(
            web.json_response(
                P.rest_response(
                    {}, RetCode.PARAMS_ERROR, f"params error: {key} must be {lo}..{hi}, got {raw}"
                )
            )
        )
    return value


def _time_filter(q, items: list, key: str) -> list:
    start, end = _int_arg(q, "startTime", None, 0), _int_arg(q, "endTime", None, 0)
    return [
        i
        for i in items
        if (start is None or int(i[key]) >= start) and (end is None or int(i[key]) <= end)
    ]
