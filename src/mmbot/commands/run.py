"""``mmbot run``: market-make one symbol, or several, over the real Bybit v5 protocol.

With no arguments it starts the local Bybit v5 simulator on a free 127.0.0.1 port,
connects to it with the real pybit clients (public feed, private streams, trade socket,
REST) and quotes one symbol with a live dashboard. ``--symbols BTCUSDT,ETHUSDT`` (or
``[venue] symbols``) quotes several in one process, on one public and one trade
connection, each with its own strategy state and risk limits (``[symbols.NAME.*]``
overrides) under the account caps (``[risk] max_total_notional_quote`` and
``max_total_drawdown_quote``). ``--venue testnet|mainnet`` takes
``BYBIT_API_KEY``/``BYBIT_API_SECRET`` from the environment or ``.env`` and runs the same
code path against Bybit. ``--sim-url http://127.0.0.1:PORT`` connects to a local simulator
that is already running (``mmbot sim``), so the bot process can be killed and restarted
against the same exchange state.

Records: orders, fills, PnL snapshots and the risk state go to SQLite (``--db``; default
``[run] db_path``, else ``mmbot.sqlite`` in ``--out`` or ``[run] out_dir``), and a restart
restores from them (see :mod:`mmbot.live`). A kill switch that tripped stays latched across
restarts until ``--reset-kill``.

Config reload: SIGHUP (``kill -HUP PID``), or the ``r`` key while the dashboard shows,
re-reads ``--config`` (``q`` stops like Ctrl-C). Only ``[strategy]`` and
``[risk]`` may change; the new file is validated completely first, and a refused one (another
section changed, an invalid value, a model that does not load) leaves the running config as
it was. Each attempt is logged (WARNING) and recorded in SQLite (``config_reloads``).

Risk limits always apply to a live run: ``--no-risk`` is refused. An invalid configuration,
or one that cannot trade safely on the venue's instrument, stops with one line naming the
key and exit status 2, before any order.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from mmbot.commands.signals import on_signal
from mmbot.config import ConfigError, load_config, load_secrets
from mmbot.live import LiveSession, RemoteSim, chosen_symbols, move_aside, summary_text
from mmbot.records import Records
from mmbot.trades import check_trades_path, write_all_trades

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``mmbot run`` options."""
    parser.add_argument("--config", help="TOML config file (defaults built in)")
    parser.add_argument(
        "--venue",
        choices=("sim", "testnet", "mainnet"),
        default=None,
        help="sim = local Bybit v5 simulator (default); testnet/mainnet need "
        "BYBIT_API_KEY and BYBIT_API_SECRET",
    )
    parser.add_argument("--symbol", help="symbol to quote (default from config)")
    parser.add_argument(
        "--symbols",
        metavar="A,B,...",
        help="quote several symbols in one process (overrides [venue] symbols)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop cleanly after this many seconds (default: until Ctrl-C)",
    )
    parser.add_argument(
        "--out", metavar="DIR", help="write summary.json, timing.json and chart.png here"
    )
    parser.add_argument(
        "--db",
        metavar="PATH",
        default=None,
        help="SQLite records (default: [run] db_path, else mmbot.sqlite in "
        "--out or [run] out_dir; '' for none); restored on restart",
    )
    parser.add_argument(
        "--sim-url",
        metavar="URL",
        default=None,
        help="use an already-running local simulator, e.g. "
        "http://127.0.0.1:8123 (127.0.0.1/localhost only)",
    )
    parser.add_argument("--port", type=int, default=0, help="simulator port (0 = any free)")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="simulator market speed (1 = real time)"
    )
    parser.add_argument("--depth", type=int, default=50, help="orderbook depth topic")
    parser.add_argument("--no-dashboard", action="store_true", help="plain log output only")
    parser.add_argument(
        "--reset-kill",
        action="store_true",
        help="clear a kill switch latched by an earlier run (the drawdown "
        "peak restarts) and quote again",
    )
    parser.add_argument(
        "--trades",
        metavar="FILE",
        default=None,
        help="at the end, write every fill of this run to FILE.csv (or "
        ".parquet with pyarrow): time, side, price, qty, fee, "
        "liquidity, ladder level, mid at fill",
    )
    parser.add_argument("--no-risk", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--record",
        metavar="FILE",
        default=None,
        help="record the market data (orderbook + publicTrade, with receive "
        "times) and this bot's order round trips, for "
        "`mmbot backtest --data FILE --latency replay`",
    )


def run(args: argparse.Namespace) -> int:
    """Entry point of ``mmbot run``; returns the process exit code."""
    if args.no_risk:
        raise ConfigError("--no-risk is for backtests only: a live run always has risk limits")
    cfg = load_config(args.config)
    if args.trades:
        check_trades_path(args.trades)  # a missing pyarrow stops us before any order
    venue_kind = args.venue or ("sim" if cfg.venue.kind == "sim" else cfg.venue.kind)
    symbols = chosen_symbols(cfg, args.symbol, args.symbols)
    secrets = sim = None
    if args.sim_url and venue_kind != "sim":
        raise ConfigError(f"--sim-url needs the sim venue, not --venue {venue_kind}")
    if venue_kind != "sim":
        secrets = load_secrets(required=True)
    elif args.sim_url:
        try:
            sim = RemoteSim(args.sim_url)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if not args.verbose:  # [run] log_level, once the config is known
        logging.getLogger().setLevel(
            getattr(logging, cfg.run.log_level) if args.no_dashboard else logging.WARNING
        )
    db_path = (
        args.db
        if args.db is not None
        else str(
            cfg.run.db_file if cfg.run.db_path or not args.out else Path(args.out) / "mmbot.sqlite"
        )
    )
    records = None
    if db_path:
        if venue_kind == "sim" and sim is None:
            move_aside(db_path)
        records = Records(db_path)
    session = LiveSession(
        cfg,
        symbols,
        venue_kind,
        sim=sim,
        secrets=secrets,
        depth=args.depth,
        speed=args.speed,
        port=args.port,
        records=records,
        reset_kill=args.reset_kill,
        record=args.record,
        config_path=args.config,
    )
    # SIGINT becomes a clean stop (cancel all) instead of an exception in a random thread;
    # SIGHUP re-reads the config. The handlers only flag it, the session thread acts.
    with (
        on_signal(signal.SIGINT, lambda *_: session.request_stop()),
        on_signal(signal.SIGHUP, lambda *_: session.request_reload()),
    ):
        try:
            try:
                session.open()
            except BaseException:
                session.close()
                raise
            if args.no_dashboard:
                session.run(args.duration)
            else:
                from rich.live import Live  # noqa: PLC0415

                from mmbot.dashboard import render  # noqa: PLC0415
                from mmbot.keys import KeyCommands  # noqa: PLC0415

                # the keys only flag the session, like the signal handlers above
                keys = KeyCommands({"r": session.request_reload, "q": session.request_stop})
                with keys, Live(refresh_per_second=4, transient=False) as live:

                    def tick(s):
                        snap = s.dashboard_snapshot()
                        snap["keys"] = keys.active
                        if args.duration is not None:
                            snap["remaining_s"] = max(args.duration - snap["elapsed_s"], 0.0)
                        live.update(render(snap))

                    session.run(args.duration, on_tick=tick)
            summary, timing = session.summary(), session.timing()
            paths = session.write_report(args.out) if args.out else {}
            if args.trades:
                paths.update(write_all_trades(args.trades, session.runners))
        finally:
            if records is not None:
                records.close()
    print(summary_text(summary, timing, paths), file=sys.stdout)
    return 0
