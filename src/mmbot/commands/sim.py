"""Run the local Bybit v5 exchange simulator in the foreground (Ctrl-C stops it).

Any Bybit v5 client (pybit, ccxt, your own) can trade against it with no keys and no
internet: point its REST and WebSocket URLs at the printed 127.0.0.1 addresses and use the
printed test api key and secret.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from mmbot.commands.signals import on_signal

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8765, help="127.0.0.1 port (0: any free)")
    parser.add_argument("--symbols", default="BTCUSDT", help="comma-separated symbols")
    parser.add_argument("--category", choices=("linear", "spot"), default="linear")
    parser.add_argument(
        "--data",
        metavar="FILE",
        default=None,
        help="replay this recording (mmbot record) instead of synthetic data",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic market")
    parser.add_argument(
        "--interval-ms", type=int, default=20, help="milliseconds between market frames"
    )
    parser.add_argument(
        "--tls-cert",
        metavar="PEM",
        default=None,
        help="serve https/wss with this certificate (chain); needs --tls-key",
    )
    parser.add_argument("--tls-key", metavar="PEM", default=None, help="its private key")


def run(args: argparse.Namespace) -> int:
    from mmbot.sim.handle import serve, server_tls_context  # noqa: PLC0415  (aiohttp only when used)

    if not 0 <= args.port <= 65535:
        print(f"mmbot sim: --port must be 0..65535, got {args.port}", file=sys.stderr)
        return 2
    if args.interval_ms <= 0:
        print(f"mmbot sim: --interval-ms must be positive, got {args.interval_ms}", file=sys.stderr)
        return 2
    if (args.tls_cert is None) != (args.tls_key is None):
        print("mmbot sim: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    stop = threading.Event()  # Ctrl-C
    try:
        tls = None
        if args.tls_cert is not None:
            tls = server_tls_context(args.tls_cert, args.tls_key)
        with on_signal(signal.SIGINT, lambda *_: stop.set()):
            return serve(
                port=args.port,
                symbols=[s.strip() for s in args.symbols.split(",") if s.strip()],
                category=args.category,
                data=args.data,
                seed=args.seed,
                interval_ms=args.interval_ms,
                out=sys.stdout,
                ssl_context=tls,
                stop=stop,
            )
    except (ValueError, OSError) as exc:
        print(f"mmbot sim: {exc}", file=sys.stderr)
        return 2
