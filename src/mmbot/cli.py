"""``mmbot`` command line: subcommands are modules ``mmbot.commands.<name>``.

Each command module provides ``add_arguments(parser)`` and ``run(args) -> int``. A command
whose module is missing (or fails to import) still appears in ``--help``; running it prints
why it is not available and exits with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS", "main", "build_parser"]

#: subcommand -> one-line help
COMMANDS = {
    "backtest": "run a strategy over synthetic or recorded data on the simulated venue",
    "run": "run the market maker (local simulator, testnet or mainnet)",
    "record": "record raw Bybit orderbook frames to a file",
    "sweep": "search strategy parameters with optuna (local, or shared through PostgreSQL)",
}

EXIT_UNAVAILABLE = 2


def _unavailable(name: str, reason: str):
    def run(args: argparse.Namespace) -> int:
        print(f"mmbot {name}: not available in this installation ({reason})", file=sys.stderr)
        return EXIT_UNAVAILABLE

    return run


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="mmbot", description="Market maker for Bybit v5 on the obcore orderbook engine."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text in COMMANDS.items():
        try:
            module = importlib.import_module(f"mmbot.commands.{name}")
        except ImportError as exc:
            p = sub.add_parser(name, help=f"{help_text} [not available]")
            p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            p.set_defaults(func=_unavailable(name, f"{type(exc).__name__}: {exc}"))
            continue
        p = sub.add_parser(name, help=help_text, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mmbot`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("mmbot: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
