"""Start and stop the simulator in a background thread; the thread-safe handle tests use.

Every :class:`SimulatorHandle` method runs on the simulator's event loop and returns its
result, so tests can inject faults and read the exchange's own numbers while real
clients talk to it over loopback sockets.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import threading
from collections.abc import Iterable
from decimal import Decimal

from aiohttp import web

from mmbot.sim.account import SimSymbol
from mmbot.sim.protocol import RET_MSG, RetCode, now_ms
from mmbot.sim.routes import SimServer
from mmbot.venue.base import RateLimits

__all__ = ["SimulatorHandle", "server_tls_context", "sim_urls", "start_simulator"]


def sim_urls(host: str, port: int, tls: bool) -> tuple[str, str]:
    """Return the REST and WebSocket base URLs of a simulator on ``host:port``
    (``https``/``wss`` when it serves TLS)."""
    s = "s" if tls else ""
    return f"http{s}://{host}:{port}", f"ws{s}://{host}:{port}"


class SimulatorHandle:
    """A running simulator in a background thread; every method is thread-safe.

    Attributes
    ----------
    port : int
    http_url : str
        ``http://127.0.0.1:<port>`` (``https`` over TLS), for ``HTTP.endpoint``.
    ws_url : str
        ``ws://127.0.0.1:<port>`` (``wss`` over TLS), the base for WebSocket paths.
    api_key, api_secret : str
        The credentials the simulator accepts.
    server : SimServer
        The state; read it only through the methods below from other threads.
    """

    def __init__(self, server: SimServer, port: int, loop, thread, runner, tls: bool = False):
        self.server = server
        self.port = port
        self.http_url, self.ws_url = sim_urls("127.0.0.1", port, tls)
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

    def _apply(self, fn):
        """Run an account change on the loop and push what it produced."""

        def run():
            self.server._push(fn(now_ms()))

        self.call(run)

    # ------------------------------------------------------------------ faults
    def drop(self, kind: str | None = None):
        """Abort the TCP connection of every WebSocket of ``kind`` (``public``, ``private``,
        ``trade``; None drops all)."""
        if kind not in (None, "public", "private", "trade"):
            raise ValueError(f"kind must be public, private, trade or None, got {kind!r}")

        def run():
            dropped = 0
            for conn in list(self.server.conns):
                if kind is None or conn.kind == kind:
                    transport = conn.ws._req.transport if conn.ws._req else None
                    if transport is not None:
                        transport.abort()
                        dropped += 1
            return dropped

        return self.call(run)

    def skip_u(self, symbol: str | None = None, count: int = 1):
        """Withhold the next ``count`` deltas of each matching topic (a ``u`` gap)."""
        self.call(self.server.market.skip_u, symbol, count)

    def restart_book(self, symbol: str | None = None):
        """Send a ``u == 1`` restart snapshot on every matching orderbook topic."""
        self.call(lambda: self.server._publish(self.server.market.restart_texts(symbol, now_ms())))

    def send_malformed(self, kind: str = "truncated", symbol: str | None = None):
        """Send a malformed frame (``truncated``, ``bad_price``, ``bad_size``)."""
        self.call(
            lambda: self.server._publish(self.server.market.malformed_texts(kind, symbol, now_ms()))
        )

    def delay_public(self, seconds: float):
        """Send every later public frame ``seconds`` after it is stamped (0 to stop): a
        lagging feed, whose frames arrive old while the book keeps changing."""
        self.call(setattr, self.server, "public_delay_s", float(seconds))

    def delay_private(self, seconds: float):
        """Delay every later private push by ``seconds`` (0 to stop)."""
        self.call(setattr, self.server, "private_delay_s", float(seconds))

    def position_first(self, enabled: bool = True):
        """While enabled, each position push is sent ahead of the execution it comes from."""
        self.call(setattr, self.server, "position_first", bool(enabled))

    def reject_next(
        self, count: int = 1, ret_code: int = RetCode.RATE_LIMIT, ret_msg: str | None = None
    ):
        """Answer the next ``count`` trading requests with ``ret_code`` (not executed)."""
        msg = ret_msg or RET_MSG.get(ret_code, "error")
        self.call(self.server.dispatcher.reject_queue.extend, [(ret_code, msg)] * count)

    def race_next(self, count: int = 1):
        """Make the next ``count`` amends or cancels of an open order lose a race: the
        market fills the order just before the request arrives, so it gets 110001 and the
        fill's pushes go out first."""

        def run():
            self.server.dispatcher.race_next += count

        self.call(run)

    def pause_market(self, paused: bool = True):
        """Freeze (or resume) the market stream; no frames, no market-driven fills."""
        self.call(setattr, self.server, "paused", paused)

    def taker_hit(self, symbol: str, side: str, lots: int | None = None):
        """Trade through the own best ``side`` order by one tick: it fills completely."""
        self._apply(lambda now: self.server.account.taker_hit(symbol, side, lots, now))

    def inject_adl(
        self,
        symbol: str,
        qty_lots: int,
        price_ticks: int | None = None,
        exec_type: str = "AdlTrade",
    ):
        """Close ``qty_lots`` of the position with the exchange's own order at
        ``price_ticks`` (default: the mark price): ``AdlTrade`` or ``BustTrade``. Pushes the
        execution (empty orderLinkId), then the position."""

        def run(now):
            price = price_ticks
            if price is None:
                price = self.server.account.engines[symbol].mark_ticks()
                if price is None:
                    raise ValueError(f"{symbol} has no mark price yet")
            return self.server.account.force_close(symbol, qty_lots, price, exec_type, now)

        self._apply(run)

    def inject_funding(self, symbol: str, rate: Decimal | str):
        """Settle one funding interval at ``rate`` on the position at the mark price
        (``execFee`` = position value x rate; positive is paid)."""
        self._apply(lambda now: self.server.account.funding(symbol, rate, now))

    # ------------------------------------------------------------------ state
    def open_orders(self, symbol: str | None = None) -> list[dict]:
        """Return the open orders in Bybit's shape."""
        return self.call(self.server.account.open_order_items, symbol)

    def executions(self, symbol: str | None = None) -> list[dict]:
        """Return every execution so far (Bybit's shape), oldest first."""
        return self.call(
            lambda: [
                dict(d) for d in self.server.account.executions if symbol in (None, d["symbol"])
            ]
        )

    def position_lots(self, symbol: str) -> int:
        """Return the signed position in lots."""
        return self.call(lambda: self.server.account.engines[symbol].position_lots)

    def max_exposure(self, symbol: str) -> tuple[int, int]:
        """Return ``(max_long_lots, max_short_lots)``: the largest ``position + open buy
        leaves`` and ``open sell leaves - position`` after any account change so far."""
        return self.call(self.server.account.max_exposure, symbol)

    def summary(self, symbol: str) -> dict:
        """Return the exchange's exact numbers for ``symbol``: ``position_lots`` (int),
        ``realized`` (gross of fees), ``fees``, ``funding`` (paid; negative received) as
        Decimal, ``max_long_lots``, ``max_short_lots`` (int), ``mark_ticks`` (int or None)."""
        return self.call(self.server.account.summary, symbol)

    def balances(self) -> dict[str, Decimal]:
        """Return every coin's wallet balance (USDT, spot base coins), exact."""
        return self.call(self.server.account.coin_balances)

    def mark_price(self, symbol: str) -> Decimal | None:
        """Return the mark price (the mid rounded half-even to the tick), or None."""

        def run():
            mark = self.server.account.engines[symbol].mark_ticks()
            return None if mark is None else self.server.account.price[symbol].to_decimal(mark)

        return self.call(run)

    def best(self, symbol: str) -> tuple[int | None, int | None]:
        """Return the market's (best bid ticks, best ask ticks)."""

        def run():
            book = self.server.market.book(symbol)
            bid, ask = book.best_bid(), book.best_ask()
            return (bid[0] if bid else None, ask[0] if ask else None)

        return self.call(run)

    def book_levels(self, symbol: str, n: int) -> tuple[list, list]:
        """Return the market book's top ``n`` ``(ticks, lots)`` per side, best first."""

        def run():
            book = self.server.market.book(symbol)
            return (
                [tuple(r) for r in book.bids(n).tolist()],
                [tuple(r) for r in book.asks(n).tolist()],
            )

        return self.call(run)

    def dcp_fired(self) -> int:
        """Return how many times disconnect protection cancelled the account's orders."""
        return self.call(lambda: self.server.dcp_fired)

    def wait_market(self, timeout_s: float = 5.0):
        """Block until every symbol's market book has its first snapshot."""

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


def start_simulator(
    port: int = 0,
    symbols: Iterable[SimSymbol] = (SimSymbol(),),
    *,
    ssl_context: ssl.SSLContext | None = None,
    **kwargs,
) -> SimulatorHandle:
    """Start the simulator on ``127.0.0.1:port`` in a daemon thread and return its handle.

    Parameters
    ----------
    port : int
        0 picks a free port (tests); the chosen port is ``handle.port``.
    symbols : iterable of SimSymbol
    ssl_context : ssl.SSLContext, optional
        Serve REST and the WebSockets over TLS with it (``https``/``wss``, as Bybit
        itself; see :func:`server_tls_context`).
    **kwargs
        Passed to :class:`~mmbot.sim.routes.SimServer` (``sources``, ``speed``, ...).

    Raises
    ------
    OSError
        The port cannot be bound (in use, or not permitted).
    """
    server = SimServer(symbols, **kwargs)
    ready = threading.Event()
    box: dict = {}

    def main():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            # asyncio objects must be created on this loop.
            server.market_ready = {s: asyncio.Event() for s in server.symbols}
            # no access log: one INFO line per request would drown an embedding bot's log
            runner = web.AppRunner(
                server.make_app(), handle_signals=False, shutdown_timeout=1.0, access_log=None
            )
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context)
            loop.run_until_complete(site.start())
            box["port"] = site._server.sockets[0].getsockname()[1]
            box["loop"], box["runner"] = loop, runner
        except BaseException as exc:  # hand the failure to the caller, whatever it is
            box["error"] = exc
            if "runner" in locals():
                # the market tasks already started: stop them before the loop goes
                loop.run_until_complete(runner.cleanup())
            ready.set()
            loop.close()
            return
        ready.set()
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=main, name="bybit-sim", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise TimeoutError("simulator did not start within 10 s")
    if "error" in box:
        exc = box["error"]
        if isinstance(exc, OSError):
            raise OSError(
                exc.errno,
                f"cannot listen on 127.0.0.1:{port}: "
                f"{(exc.strerror or str(exc)).rsplit(': ', 1)[-1]}",
            )
        raise RuntimeError(f"simulator failed to start on 127.0.0.1:{port}: {exc}") from exc
    return SimulatorHandle(
        server, box["port"], box["loop"], thread, box["runner"], tls=ssl_context is not None
    )


def server_tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """Return a TLS server context for :func:`start_simulator` from a PEM certificate
    (chain) and its private key.

    Clients must trust the certificate: websocket-client reads a CA bundle from
    ``WEBSOCKET_CLIENT_CA_BUNDLE``, and :func:`mmbot.bybit.clients.local_http` from
    ``REQUESTS_CA_BUNDLE``.

    Raises
    ------
    ValueError
        A file is missing or unreadable, or the key does not match the certificate.
    """
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"cannot load the TLS certificate {cert_file!r} with key {key_file!r}: {exc}"
        ) from exc
    return ctx


#: instruments ``mmbot sim`` knows by name: (tick, lot, min qty, max qty, min notional,
#: synthetic start price), per category
KNOWN_SYMBOLS = {
    "linear": {
        "BTCUSDT": ("0.1", "0.001", "0.001", "1190.000", "5", "65000.0"),
        "ETHUSDT": ("0.01", "0.01", "0.01", "7240.00", "5", "3000.00"),
        "SOLUSDT": ("0.001", "0.1", "0.1", "79770.0", "5", "150.000"),
    },
    "spot": {
        "BTCUSDT": ("0.01", "0.000001", "0.000048", "71.73956243", "1", "65000.00"),
        "ETHUSDT": ("0.01", "0.00001", "0.00062", "1229.2336343", "1", "3000.00"),
        "SOLUSDT": ("0.01", "0.001", "0.001", "12000", "1", "150.00"),
    },
}


def sim_symbols(names: list[str], category: str) -> tuple[list[SimSymbol], dict[str, str]]:
    """Return the :class:`SimSymbol` of each known name and their synthetic start prices.

    Raises
    ------
    ValueError
        An unknown category or symbol (the message lists the known ones).
    """
    table = KNOWN_SYMBOLS.get(category)
    if table is None:
        raise ValueError(f"--category must be linear or spot, got {category!r}")
    out, starts = [], {}
    for name in names:
        row = table.get(name)
        if row is None:
            raise ValueError(f"unknown symbol {name!r} for {category}; known: {', '.join(table)}")
        out.append(SimSymbol(name, category, *row[:5]))
        starts[name] = row[5]
    if not out:
        raise ValueError("--symbols is empty")
    return out, starts


def serve(
    *,
    port: int,
    symbols: list[str],
    category: str,
    data: str | None,
    seed: int,
    interval_ms: int,
    out,
    ssl_context: ssl.SSLContext | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run the simulator in the foreground until ``stop`` is set (the command line sets it
    on Ctrl-C) or ``KeyboardInterrupt``; print its URLs and credentials to ``out`` first.
    Return the exit status (0).

    Raises
    ------
    ValueError, OSError
        A bad symbol, category or recording; a port that cannot be bound.
    """
    from mmbot.sim.market import recording_source, synthetic_source  # noqa: PLC0415

    syms, starts = sim_symbols(symbols, category)
    if data is not None:
        sources = {s.symbol: recording_source(data, s.symbol) for s in syms}
    else:
        sources = {
            s.symbol: functools.partial(
                synthetic_source,
                s,
                seed=seed + i,
                interval_ms=interval_ms,
                start_price=starts[s.symbol],
            )
            for i, s in enumerate(syms)
        }
    # Bybit's default tier for the category (spot allows 20 creates a second)
    limits = RateLimits.for_category(category).per_class()
    handle = start_simulator(
        port,
        syms,
        ssl_context=ssl_context,
        sources=sources,
        interval_ms=interval_ms,
        rate_limit_per_s=limits,
    )
    try:
        _announce(handle, syms, category, out)
        (stop or threading.Event()).wait()
    except KeyboardInterrupt:
        pass  # Ctrl-C is how the simulator is stopped, whenever it comes
    finally:
        handle.stop()
    return 0


def _announce(handle: SimulatorHandle, syms: list[SimSymbol], category: str, out) -> None:
    print(
        f"mmbot sim: Bybit v5 on 127.0.0.1:{handle.port} ({category}: "
        f"{', '.join(s.symbol for s in syms)})",
        file=out,
    )
    print(f"  REST       {handle.http_url}", file=out)
    print(f"  public WS  {handle.ws_url}/v5/public/{category}", file=out)
    print(f"  private WS {handle.ws_url}/v5/private", file=out)
    print(f"  trade WS   {handle.ws_url}/v5/trade", file=out)
    print(f"  api key    {handle.api_key}", file=out)
    print(f"  api secret {handle.api_secret}", file=out)
    print("Ctrl-C stops it.", file=out, flush=True)
