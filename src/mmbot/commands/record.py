"""``mmbot record``: record the orderbook and publicTrade frames of one or more symbols.

The file is an ``mmbot-recording`` (see :mod:`mmbot.recorder`): a header with the symbols'
instruments-info, then each frame exactly as the WebSocket delivered it beside its local
receive time in ns; gzip for ``.gz``. ``mmbot backtest --data FILE`` replays it with the
recorded rules. Without ``--venue`` it records the local simulator's synthetic market
(offline); ``--venue testnet|mainnet`` records Bybit's public stream (no keys needed).
"""

from __future__ import annotations

import argparse
import signal
import threading
import time

from mmbot.commands.signals import on_signal

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``mmbot record`` options."""
    parser.add_argument("path", help="output file; gzip when it ends in .gz")
    parser.add_argument("--symbols", default="BTCUSDT", help="comma-separated symbols")
    parser.add_argument("--category", choices=("linear", "spot"), default="linear")
    parser.add_argument("--depth", type=int, default=50, help="orderbook depth topic")
    parser.add_argument("--duration", type=float, default=60.0, metavar="SECONDS")
    parser.add_argument("--venue", choices=("sim", "testnet", "mainnet"), default="sim")
    parser.add_argument("--tick-size", default="0.1", help="tick size for the local simulator")
    parser.add_argument("--lot-size", default="0.001", help="lot step for the local simulator")


def _ignore(message) -> None:
    """pybit's callback for publicTrade: the recorder already has the raw frame."""


def run(args: argparse.Namespace) -> int:
    """Record for ``--duration`` seconds (or until Ctrl-C); print how many frames were kept."""
    from mmbot.bybit import BookFeed, local_http  # noqa: PLC0415
    from mmbot.recorder import FrameRecorder  # noqa: PLC0415

    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    if not symbols:
        raise SystemExit("mmbot record: --symbols is empty")
    sim = None
    ws_base = http_base = None
    if args.venue == "sim":
        from mmbot.sim.server import SimSymbol, start_simulator  # noqa: PLC0415

        sim = start_simulator(
            0,
            [
                SimSymbol(s, args.category, args.tick_size, args.lot_size, args.lot_size)
                for s in symbols
            ],
        )
        sim.wait_market()
        ws_base, http_base = sim.ws_url, sim.http_url
    http = local_http(http_base, testnet=args.venue == "testnet")
    infos = {}
    listed = []
    for s in symbols:
        items = http.get_instruments_info(category=args.category, symbol=s)["result"]["list"]
        if not items:
            raise SystemExit(f"mmbot record: {s} is not a {args.category} symbol")
        step = (
            items[0]["lotSizeFilter"].get("qtyStep") or items[0]["lotSizeFilter"]["basePrecision"]
        )
        infos[s] = (items[0]["priceFilter"]["tickSize"], step)
        listed.append(items[0])
    recorder = FrameRecorder(args.path, instruments={"category": args.category, "list": listed})
    stop = threading.Event()
    with on_signal(signal.SIGINT, lambda *_: stop.set()):
        feed = BookFeed(
            args.category, testnet=args.venue == "testnet", ws_base=ws_base, recorder=recorder
        )
        try:
            for s in symbols:
                feed.add_book(s, *infos[s], depth=args.depth)
                # the recorder sees every message first; pybit only needs a callback
                feed.subscribe("publicTrade.{symbol}", _ignore, s)
            end = time.monotonic() + args.duration
            while not stop.is_set() and time.monotonic() < end:
                stop.wait(0.2)
        finally:
            feed.exit()
            recorder.close()
            if sim is not None:
                sim.stop()
    print(
        f"recorded {recorder.frames} orderbook and publicTrade frames of "
        f"{','.join(symbols)} to {args.path}; "
        f"resyncs {sum(b.resyncs for b in feed.books.values())}"
    )
    return 0
