"""``mmbot run``: market-make one symbol over the real Bybit v5 protocol.

With no arguments it starts the local Bybit v5 simulator on a free 127.0.0.1 port,
connects to it with the real pybit clients (public feed, private streams, trade socket,
REST) and quotes one symbol with a live dashboard. ``--venue testnet|mainnet`` takes
``BYBIT_API_KEY``/``BYBIT_API_SECRET`` from the environment or ``.env`` and runs the same
code path against Bybit. ``--sim-url http://127.0.0.1:PORT`` connects to a local simulator
that is already running (``mmbot.sim.server.start_simulator``), so the bot process can be
killed and restarted against the same exchange state.

Records: orders, fills and PnL snapshots go to SQLite (``--db``; default ``[run] db_path``,
else ``mmbot.sqlite`` in ``--out`` or ``[run] out_dir``). Started against a venue that
outlives the process (``--sim-url``, testnet, mainnet) with a database that has history,
the run restores: it replays the stored fills into PnL, reconciles orders and position with
the venue (orphans are cancelled), and reads the executions it missed while it was down
from the venue's execution list, each stored once (by exec id). The embedded simulator
starts empty every time, so an existing database is moved aside to ``<db>.prev`` instead.

Threads: pybit's socket threads only enqueue (raw frames from the feed, events from the
venue); one session thread owns the book, the runner and the order manager and drains
that queue, so every mutable object has exactly one writer.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import signal
import threading
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import obcore
from mmbot.latency import LatencyStats

__all__ = ["add_arguments", "run", "LiveSession"]

log = logging.getLogger(__name__)

TIMER_MS = 100
_FRAME, _EVENT = 0, 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``mmbot run`` options."""
    parser.add_argument("--config", help="TOML config file (defaults built in)")
    parser.add_argument("--venue", choices=("sim", "testnet", "mainnet"), default=None,
                        help="sim = local Bybit v5 simulator (default); testnet/mainnet need "
                             "BYBIT_API_KEY and BYBIT_API_SECRET")
    parser.add_argument("--symbol", help="symbol to quote (default from config)")
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                        help="stop cleanly after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--out", metavar="DIR",
                        help="write summary.json, timing.json and chart.png here")
    parser.add_argument("--db", metavar="PATH", default=None,
                        help="SQLite records (default: [run] db_path, else mmbot.sqlite in "
                             "--out or [run] out_dir; '' for none); restored on restart")
    parser.add_argument("--sim-url", metavar="URL", default=None,
                        help="use an already-running local simulator, e.g. "
                             "http://127.0.0.1:8123 (127.0.0.1/localhost only)")
    parser.add_argument("--port", type=int, default=0, help="simulator port (0 = any free)")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="simulator market speed (1 = real time)")
    parser.add_argument("--depth", type=int, default=50, help="orderbook depth topic")
    parser.add_argument("--no-dashboard", action="store_true", help="plain log output only")
    parser.add_argument("--record", metavar="FILE", default=None,
                        help="record the market data (orderbook + publicTrade, with receive "
                             "times) and this bot's order round trips, for "
                             "`mmbot backtest --data FILE --latency replay`")


class LiveSession:
    """One live run: venue, feed, runner and the loop that drives them.

    Parameters
    ----------
    cfg : mmbot.config.Config
    symbol : str
    venue_kind : str
        ``"sim"``, ``"testnet"`` or ``"mainnet"``.
    sim : SimulatorHandle or None
        The local simulator for ``"sim"`` (started by :meth:`open` when None).
    secrets : mmbot.config.Secrets or None
        Required for testnet/mainnet.
    records : mmbot.records.Records or None
        Orders, fills and PnL snapshots are written here (use it from one thread only).
    restore : bool or None
        Restore from ``records`` and the venue (a restart). None: when ``records`` holds
        any order or fill.
    """

    def __init__(self, cfg, symbol: str, venue_kind: str = "sim", *, sim=None, secrets=None,
                 depth: int = 50, speed: float = 1.0, port: int = 0, records=None,
                 restore: bool | None = None, record: str | None = None):
        self.cfg = cfg
        self.symbol = symbol
        self.venue_kind = venue_kind
        self.sim = sim
        self._own_sim = False
        self.secrets = secrets
        self.depth = depth
        self.speed = speed
        self.port = port
        self.records = records
        self.restore = restore
        self.record = record
        self.recorder = None
        self.restored_fills = 0
        self.backfilled_fills = 0
        self.q: queue.SimpleQueue = queue.SimpleQueue()
        self.venue = self.feed = self.runner = None
        self.hop = LatencyStats()
        self.resyncs = 0
        self.started_s = 0.0
        self.stop_flag = threading.Event()
        self.closing = False
        self._msg_mark = (0.0, 0)
        self.msg_rate = 0.0

    # ------------------------------------------------------------------ setup

    def open(self):
        """Start the simulator (if needed), connect venue and feed, build the runner."""
        from mmbot.backtest import _risk_manager  # noqa: PLC0415
        from mmbot.bybit import BookFeed, BybitVenue  # noqa: PLC0415
        from mmbot.orders import OrderManager  # noqa: PLC0415
        from mmbot.pnl import PnLTracker  # noqa: PLC0415
        from mmbot.runner import Runner  # noqa: PLC0415
        from mmbot.strategy import build_model  # noqa: PLC0415

        cfg = self.cfg
        category = cfg.venue.category
        http_base = ws_base = None
        testnet = self.venue_kind == "testnet"
        if self.venue_kind == "sim":
            if self.sim is None:
                self.sim = _start_local_sim(cfg, self.symbol, self.speed, self.port)
                self._own_sim = True
            http_base, ws_base = self.sim.http_url, self.sim.ws_url
            key, secret = self.sim.api_key, self.sim.api_secret
            retry_delay = 0.2
        else:
            key, secret = self.secrets.api_key, self.secrets.api_secret
            retry_delay = 1.0
        self.venue = BybitVenue([self.symbol], category=category, api_key=key, api_secret=secret,
                                testnet=testnet, http_base=http_base, ws_base=ws_base,
                                http_retry_delay_s=retry_delay)
        inst = self.venue.instrument(self.symbol)
        if self.record:
            from mmbot.recorder import FrameRecorder, RoundTripVenue  # noqa: PLC0415

            self.recorder = FrameRecorder(self.record, instruments={
                "category": category, "list": [self.venue.instrument_info(self.symbol)]})
            self.venue = RoundTripVenue(self.venue, self.recorder)
        if self.venue_kind == "sim":
            maker, taker = (Decimal(str(cfg.sim.maker_fee_bps)) / 10_000,
                            Decimal(str(cfg.sim.taker_fee_bps)) / 10_000)
        else:
            maker, taker = Decimal("0.0002"), Decimal("0.00055")
        # pid and time: a restarted process must never reuse a link id of its predecessor
        orders = OrderManager.from_config(self.venue, self.symbol, cfg.orders,
                                          tolerance_ticks=cfg.strategy.requote_tolerance_ticks,
                                          link_prefix=f"mm{os.getpid() % 100000}"
                                                      f"t{int(time.time()) % 100000}-")
        try:
            risk = _risk_manager(cfg, inst)
        except Exception as exc:   # part A's risk wiring; quote without it rather than not at all
            log.warning("risk manager unavailable (%s); quoting without limits", exc)
            risk = None
        self.runner = Runner(instrument=inst, venue=self.venue, model=build_model(cfg),
                             orders=orders, pnl=PnLTracker(inst, maker, taker), risk=risk,
                             records=self.records, book=inst.new_book(),
                             snapshot_interval_ms=cfg.run.snapshot_interval_ms)
        if self.restore is None:
            self.restore = self.records is not None and bool(
                self.records.load_fills(symbol=self.symbol)
                or self.records.load_orders(symbol=self.symbol))
        self.runner.start(self.venue.now_ms(), restore=self.restore)
        # Venue events arrive on pybit threads: queue them for the session thread.
        self.venue.set_handler(lambda ev: self.q.put((_EVENT, ev, 0)))
        if self.restore and self.records is not None:
            self._restore_missed_fills()
        self.feed = BookFeed(category, testnet=testnet, ws_base=ws_base,
                             on_frame=lambda sym, raw, ns: self.q.put((_FRAME, raw, ns)),
                             on_status=self._on_status, recorder=self.recorder)
        self.feed.add_book(self.symbol, inst.tick_size, inst.lot_size, depth=self.depth)
        if self.recorder is not None:  # the recorder sees the raw trades; pybit needs a callback
            self.feed.subscribe("publicTrade.{symbol}", lambda message: None, self.symbol)
        return self

    def _restore_missed_fills(self):
        """Store and apply the executions the venue has that the records lack.

        The position came from the venue in reconcile, so these only feed PnL, the model
        and the records; their ids are marked seen so a late push does not count twice.
        """
        rec, r = self.records, self.runner
        stored = rec.load_fills(symbol=self.symbol)
        self.restored_fills = len(stored)
        if stored:
            since_ms = max(f.exec_ms for f in stored)
        else:
            orders = rec.load_orders(symbol=self.symbol)
            since_ms = min(o.created_ms for o in orders) if orders else self.venue.now_ms()
        # the margin catches executions stamped slightly before the newest stored one
        missed = self.venue.executions(self.symbol, since_ms - 60_000)
        seen = getattr(r.orders, "_seen_exec_ids", None)
        for x in missed:
            if seen is not None:
                seen.add(x.exec_id)
            if not rec.record_fill(x):
                continue
            self.backfilled_fills += 1
            r.pnl.on_fill(x.side, x.price_ticks, x.qty_lots, is_maker=x.is_maker, fee=x.fee,
                          fill_id=x.exec_id)
            r.model.on_fill(x.side, x.price_ticks, x.qty_lots, x.exec_ms)
        for x in stored:
            if seen is not None:
                seen.add(x.exec_id)
        r.write_snapshot(self.venue.now_ms())
        log.warning("restored %d fills from %s, %d missed fills from the venue; position %d "
                    "lots", self.restored_fills, rec.path, self.backfilled_fills,
                    r.orders.position_lots)

    def _on_status(self, symbol, synced, reason):
        if not synced:
            self.resyncs += 1
            log.info("feed %s out of sync: %s", symbol, reason)

    # ------------------------------------------------------------------ loop

    def step(self, timeout_s: float = 0.05) -> None:
        """Drain the queue once (blocking up to ``timeout_s`` for the first item)."""
        runner = self.runner
        try:
            kind, item, recv_ns = self.q.get(timeout=timeout_s)
        except queue.Empty:
            return
        while True:
            now_ms = self.venue.now_ms()
            if kind == _EVENT:
                runner.on_event(item)
            elif self.closing:
                pass          # stopped: a frame must not requote after the cancel-all
            else:
                self.hop.add(time.perf_counter_ns() - recv_ns)
                try:
                    runner.on_frame(item, now_ms)
                except obcore.ObcoreError as exc:
                    # A rejected frame leaves the book as it was but data is missing:
                    # clear it (risk sees synced=False) until the resubscribe's snapshot.
                    runner.book.clear()
                    self.feed.resync(self.symbol, f"{type(exc).__name__}: {exc}")
                if not runner.book.synced:
                    self.feed.resync(self.symbol, runner.last_book_error or "book out of sync")
            try:
                kind, item, recv_ns = self.q.get_nowait()
            except queue.Empty:
                return

    def run(self, duration_s: float | None = None, on_tick=None) -> None:
        """Loop until ``duration_s`` passes, :meth:`request_stop`, or Ctrl-C; then stop."""
        self.started_s = time.monotonic()
        next_timer = 0.0
        try:
            while not self.stop_flag.is_set():
                if duration_s is not None and time.monotonic() - self.started_s >= duration_s:
                    break
                self.step()
                now = time.monotonic()
                if now >= next_timer:
                    next_timer = now + TIMER_MS / 1000
                    self.runner.on_timer(self.venue.now_ms())
                    self._update_rate(now)
                    if on_tick is not None:
                        on_tick(self)
        finally:
            self.close()

    def request_stop(self):
        """Ask :meth:`run` to stop at its next iteration (thread-safe)."""
        self.stop_flag.set()

    def _update_rate(self, now: float):
        t0, n0 = self._msg_mark
        n = self.feed.messages + self.venue.acks
        if now - t0 >= 1.0:
            self.msg_rate = (n - n0) / (now - t0) if t0 else 0.0
            self._msg_mark = (now, n)

    def close(self):
        """Cancel everything (order manager, then REST cancel-all), settle, disconnect."""
        if self.runner is None or self.closing:
            return
        self.closing = True
        if self.recorder is not None:
            # the recording ends where the quoting did: a backtest of it must not quote on
            self.recorder.close()
        try:
            self.runner.stop(self.venue.now_ms())
        except Exception:
            log.exception("runner stop")
        self._drain(0.5)     # acks of requests still in flight land before the sweep
        try:
            # Belt and braces: REST cancel-all catches orders whose create was in flight.
            self.venue.cancel_all(self.symbol)
        except Exception:
            log.exception("cancel-all")
        self._drain(0.5)     # let the last order/execution pushes land
        self.runner.write_snapshot(self.venue.now_ms())
        if self.feed is not None:
            self.feed.exit()
        if self.recorder is not None:
            self.recorder.close()
        self.venue.close()
        if self._own_sim and self.sim is not None:
            self.sim.stop()

    def _drain(self, seconds: float):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.step(0.05)

    # ------------------------------------------------------------------ reporting

    def dashboard_snapshot(self) -> dict:
        """Return the values the dashboard shows (call on the session thread)."""
        r, inst = self.runner, self.runner.instrument
        bb, ba = r.book.best_bid(), r.book.best_ask()
        quotes = {q.side: q for q in r._last_quotes if q.level == 0}
        mark = r._mark_ticks()
        fills = r.history.fills
        t2q = r.tick_to_quote.recent_percentile(50)
        hop_p50 = self.hop.recent_percentile(50)
        return {
            "symbol": self.symbol, "venue": self.venue_kind,
            "bid": inst.price_str(bb[0]) if bb else "-", "bid_qty": inst.qty_str(bb[1]) if bb else "-",
            "ask": inst.price_str(ba[0]) if ba else "-", "ask_qty": inst.qty_str(ba[1]) if ba else "-",
            "our_bid": inst.price_str(quotes["Buy"].price_ticks) if "Buy" in quotes else "-",
            "our_ask": inst.price_str(quotes["Sell"].price_ticks) if "Sell" in quotes else "-",
            "position": inst.qty_str(abs(r.orders.position_lots)) if r.orders.position_lots >= 0
            else "-" + inst.qty_str(-r.orders.position_lots),
            "open_orders": len(r.orders.working_orders()),
            "net_pnl": float(r.pnl.net(mark)) if mark is not None else None,
            "fees": float(r.pnl.fees), "fills": len(fills),
            "volume": inst.qty_str(sum(f[3] for f in fills)),
            "synced": r.book.synced, "connected": self.venue.connected,
            "risk": r.risk_reason, "resyncs": self.resyncs, "msg_rate": self.msg_rate,
            "frames": r.frames, "feed_p50_us": hop_p50 / 1000 if hop_p50 is not None else None,
            "t2q_p50_us": t2q / 1000 if t2q else None,
            "elapsed_s": time.monotonic() - self.started_s if self.started_s else 0.0,
            "remaining_s": None,
            "recent_fills": [(time.strftime("%H:%M:%S", time.localtime(t / 1000)), side,
                              inst.price_str(p), inst.qty_str(q)) for t, side, p, q in fills[-5:]],
        }

    def summary(self) -> dict:
        """Return the run's summary: the keys of ``mmbot backtest``'s summary.json (fills,
        volume, realized/unrealized/net PnL, fees, max inventory, quote and order counts)
        plus the live ones (venue position, resyncs, reconnects, restored fills)."""
        r, inst = self.runner, self.runner.instrument
        mark = r._mark_ticks()
        pnl, orders = r.pnl, r.orders
        statuses: dict[str, int] = {}
        for m in orders.orders.values():
            statuses[m.status.value] = statuses.get(m.status.value, 0) + 1
        venue_pos = self.venue.positions.get(self.symbol)
        return {
            "symbol": self.symbol, "category": inst.category, "venue": self.venue_kind,
            "model": self.cfg.strategy.model,
            "duration_s": round(time.monotonic() - self.started_s, 3) if self.started_s else 0,
            "frames": r.frames,
            "fills": pnl.fill_count, "maker_fills": pnl.maker_fills,
            "fills_this_run": len(r.history.fills),
            "buy_fills": sum(1 for f in r.history.fills if f[1] == "Buy"),
            "sell_fills": sum(1 for f in r.history.fills if f[1] == "Sell"),
            "restored_fills": self.restored_fills, "backfilled_fills": self.backfilled_fills,
            "volume_lots": pnl.volume_lots, "volume_qty": inst.qty_str(pnl.volume_lots),
            "turnover_quote": _money(pnl.turnover),
            "realized_pnl": _money(pnl.realized),
            "unrealized_pnl": _money(pnl.unrealized(mark)) if mark is not None else None,
            "fees": _money(pnl.fees),
            "net_pnl": _money(pnl.net(mark)) if mark is not None else None,
            "final_position_lots": orders.position_lots,
            "final_position_qty": _signed_qty(inst, orders.position_lots),
            "venue_position_qty": _signed_qty(inst, venue_pos.size_lots) if venue_pos else None,
            "max_inventory_lots": pnl.max_abs_position_lots,
            "max_inventory_qty": inst.qty_str(pnl.max_abs_position_lots),
            "mark_price": None if mark is None else inst.price_str(mark),
            "quote_updates": r.quote_updates, "orders_sent": r.orders_sent,
            "requests_sent": orders.requests_sent,
            "rate_limit_deferrals": orders.rate_deferrals,
            "request_errors": orders.request_errors,
            "post_only_rejects": sum(1 for m in orders.orders.values()
                                     if m.reject_reason == "EC_PostOnlyWillTakeLiquidity"),
            "order_statuses": dict(sorted(statuses.items())),
            "open_orders_at_end": len(orders.working_orders()),
            "risk_pulls": r.risk_pulls, "flattens": r.flattens, "book_errors": r.book_errors,
            "book_resyncs": self.resyncs,
            "feed_reconnects": self.feed.reconnects if self.feed else 0,
            "records": self.records.path if self.records is not None else None,
            "timing_file": "timing.json",
            **self._explain(mark),
        }

    def _explain(self, mark) -> dict:
        from mmbot.attribution import explain_run  # noqa: PLC0415

        r = self.runner
        out = explain_run(r.history, r.pnl, mark, r.instrument.notional(1, 1))
        out.pop("why", None)
        return out

    def timing(self) -> dict:
        """Return the wall-clock measurements (as ``mmbot backtest``'s timing.json)."""
        r = self.runner
        wall_s = time.monotonic() - self.started_s if self.started_s else 0.0
        return {
            "wall_s": round(wall_s, 3), "frames": r.frames,
            "frames_per_wall_s": round(r.frames / wall_s, 1) if wall_s > 0 else None,
            "feed_hop_us": self.hop.summary(),
            "tick_to_quote": r.tick_to_quote.summary(),
            "tick_to_order": r.tick_to_order.summary(),
            "trade_ack_ms_p50": _p50(self.venue.ack_latency_ms),
        }

    def write_report(self, out_dir: str) -> dict[str, Path]:
        """Write ``summary.json``, ``timing.json`` and ``chart.png`` with :mod:`mmbot.report`."""
        from mmbot.report import plot_chart, write_json  # noqa: PLC0415

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        s = self.summary()
        s["chart_file"] = "chart.png"
        inst = self.runner.instrument
        title = (f"mmbot run {s['symbol']} on {s['venue']} ({s['model']}): {s['fills']} fills, "
                 f"net PnL {s['net_pnl']}, max inventory {s['max_inventory_qty']}")
        return {"summary": write_json(out / "summary.json", s),
                "timing": write_json(out / "timing.json", self.timing()),
                "chart": plot_chart(out / "chart.png", self.runner.history,
                                    tick_size=inst.tick_size, lot_size=inst.lot_size,
                                    title=title)}


def _p50(values):
    data = sorted(values)
    return round(data[len(data) // 2], 3) if data else None


def _signed_qty(inst, lots: int) -> str:
    return inst.qty_str(lots) if lots >= 0 else "-" + inst.qty_str(-lots)


def _money(value) -> str:
    """Money as a plain decimal string rounded to 1e-8, like the backtest summary."""
    return format(Decimal(value).quantize(Decimal("1e-8")).normalize() + 0, "f")


class RemoteSim:
    """A local simulator started elsewhere (``--sim-url``): its URLs and credentials."""

    def __init__(self, url: str, api_key: str | None = None, api_secret: str | None = None):
        from mmbot.sim.server import DEFAULT_API_KEY, DEFAULT_API_SECRET  # noqa: PLC0415

        parts = urlsplit(url)
        if parts.scheme not in ("http", "ws") or parts.hostname not in LOCAL_HOSTS \
                or parts.port is None:
            raise ValueError(f"--sim-url must be http://127.0.0.1:PORT (a local simulator), "
                             f"got {url!r}")
        host = "127.0.0.1" if parts.hostname == "localhost" else parts.hostname
        self.port = parts.port
        self.http_url = f"http://{host}:{parts.port}"
        self.ws_url = f"ws://{host}:{parts.port}"
        self.api_key = api_key or DEFAULT_API_KEY
        self.api_secret = api_secret or DEFAULT_API_SECRET

    def stop(self):
        """Not ours to stop."""


LOCAL_HOSTS = ("127.0.0.1", "localhost")


def _db_path(args, cfg) -> str:
    if args.db is not None:
        return args.db
    if cfg.run.db_path:
        return cfg.run.db_path
    return str(Path(args.out or cfg.run.out_dir) / "mmbot.sqlite")


def _move_aside(path: str):
    """Move a database of an earlier embedded-simulator run to ``<path>.prev``."""
    if path == ":memory:" or not Path(path).exists():
        return
    for suffix in ("-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)
    os.replace(path, path + ".prev")
    log.warning("records: the embedded simulator starts empty; moved %s to %s.prev", path, path)



def _start_local_sim(cfg, symbol: str, speed: float, port: int):
    from mmbot.sim.server import SimSymbol, start_simulator, synthetic_source  # noqa: PLC0415

    s = cfg.sim
    sym = SimSymbol(symbol, cfg.venue.category, s.tick_size, s.lot_size, s.min_order_qty,
                    s.max_order_qty, s.min_notional_quote)
    maker = str(Decimal(str(s.maker_fee_bps)) / 10_000)
    taker = str(Decimal(str(s.taker_fee_bps)) / 10_000)
    source = {symbol: lambda: synthetic_source(sym, seed=s.seed, depth=s.depth,
                                               interval_ms=s.interval_ms,
                                               start_price=s.start_price)}
    handle = start_simulator(port, [sym], sources=source, speed=speed,
                             interval_ms=s.interval_ms, maker_fee=maker, taker_fee=taker)
    handle.wait_market()
    return handle


def run(args: argparse.Namespace) -> int:
    """Entry point of ``mmbot run``; returns the process exit code."""
    from mmbot.config import load_config, load_secrets  # noqa: PLC0415
    from mmbot.records import Records  # noqa: PLC0415

    cfg = load_config(args.config)
    venue_kind = args.venue or ("sim" if cfg.venue.kind == "sim" else cfg.venue.kind)
    symbol = args.symbol or cfg.venue.symbol
    secrets = sim = None
    if args.sim_url and venue_kind != "sim":
        raise SystemExit("mmbot run: --sim-url needs the sim venue, not --venue "
                         f"{venue_kind}")
    if venue_kind != "sim":
        secrets = load_secrets(required=True)
    elif args.sim_url:
        try:
            sim = RemoteSim(args.sim_url)
        except ValueError as exc:
            raise SystemExit(f"mmbot run: {exc}") from None
    logging.basicConfig(level=getattr(logging, cfg.run.log_level, logging.INFO) if
                        args.no_dashboard else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    db_path = _db_path(args, cfg)
    records = None
    if db_path:
        if venue_kind == "sim" and sim is None:
            _move_aside(db_path)
        records = Records(db_path)
    session = LiveSession(cfg, symbol, venue_kind, sim=sim, secrets=secrets, depth=args.depth,
                          speed=args.speed, port=args.port, records=records,
                          record=args.record)
    # SIGINT becomes a clean stop (cancel all) instead of an exception in a random thread.
    previous = signal.signal(signal.SIGINT, lambda *_: session.request_stop())
    try:
        session.open()
        if args.no_dashboard:
            session.run(args.duration)
        else:
            from rich.live import Live  # noqa: PLC0415

            from mmbot.dashboard import render  # noqa: PLC0415

            with Live(refresh_per_second=4, transient=False) as live:
                def tick(s):
                    snap = s.dashboard_snapshot()
                    if args.duration is not None:
                        snap["remaining_s"] = max(args.duration - snap["elapsed_s"], 0.0)
                    live.update(render(snap))
                session.run(args.duration, on_tick=tick)
        summary, timing = session.summary(), session.timing()
        paths = session.write_report(args.out) if args.out else {}
    finally:
        signal.signal(signal.SIGINT, previous)
        if records is not None:
            records.close()
    print(_final_lines(summary, timing, paths))
    return 0


def _final_lines(s: dict, t: dict, paths: dict) -> str:
    t2q = t["tick_to_quote"]
    hop = t["feed_hop_us"]
    lines = [
        f"mmbot run {s['symbol']} on {s['venue']}: {s['duration_s']} s, {s['frames']} frames",
        f"fills {s['fills_this_run']} this run (buy {s['buy_fills']}, sell {s['sell_fills']}), "
        f"{s['fills']} in total with {s['restored_fills']} restored and "
        f"{s['backfilled_fills']} read back from the venue",
        f"volume {s['volume_qty']}, final position {s['final_position_qty']} "
        f"(venue {s['venue_position_qty']}), max |position| {s['max_inventory_qty']}",
        f"PnL realized {s['realized_pnl']}, unrealized {s['unrealized_pnl']}, fees {s['fees']}, "
        f"net {s['net_pnl']}",
        f"feed hop (frame received -> runner thread) p50 {hop.get('p50_us')} us, "
        f"p99 {hop.get('p99_us')} us; tick-to-quote p50 {_us(t2q, 'p50')} us, p99 {_us(t2q, 'p99')} us",
        f"orders sent {s['orders_sent']}, book resyncs {s['book_resyncs']}, "
        f"risk pulls {s['risk_pulls']}",
    ]
    if s["records"]:
        lines.append(f"records: {s['records']}")
    if paths:
        lines.append(f"report: {paths['summary']} (timing.json, chart.png beside it)")
    return "\n".join(lines)


def _us(summary: dict, key: str):
    for k in (f"{key}_us", f"{key}_ns", key):
        if k in summary and summary[k] is not None:
            v = summary[k]
            return round(v / 1000, 2) if k.endswith("_ns") else v
    return None
