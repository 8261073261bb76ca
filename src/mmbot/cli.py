"""``mmbot`` command line: subcommands are modules ``mmbot.commands.<name>``.

Each command module provides ``add_arguments(parser)`` and ``run(args) -> int``. A command
whose optional dependencies are not installed (``pip install "obcore[mmbot]"``) still
appears in ``--help``; running it prints one line naming the extra to install and exits
with status 2. Any other import error is a bug and propagates.

Exit status 2 also means a configuration or usage error: a
:class:`~mmbot.config.ConfigError` from any command is printed as one line
(``mmbot <command>: <key>: <reason>``), with no traceback.
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
    "sim": "run the local Bybit v5 exchange simulator (test any bot against it)",
    "sweep": "search strategy parameters with optuna (local, or shared through PostgreSQL)",
}

EXIT_USAGE = 2
#: top-level modules the ``mmbot`` extra installs
OPTIONAL_MODULES = frozenset(
    {
        "pybit",
        "orjson",
        "aiohttp",
        "matplotlib",
        "rich",
        "dotenv",
        "optuna",
        "psycopg",
        "sqlalchemy",
        "websocket",
        "requests",
    }
)
INSTALL_HINT = 'pip install "obcore[mmbot]"'


def _unavailable(name: str, missing: str):
    def run(args: argparse.Namespace) -> int:
        print(
            f"mmbot {name}: needs the mmbot extra ({missing} is not installed): {INSTALL_HINT}",
            file=sys.stderr,
        )
        return EXIT_USAGE

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
        except ModuleNotFoundError as exc:
            top = (exc.name or "").split(".")[0]
            if top not in OPTIONAL_MODULES:
                raise
            p = sub.add_parser(name, help=f"{help_text} [needs {INSTALL_HINT}]")
            p.set_defaults(func=_unavailable(name, top), unavailable=True)
            continue
        p = sub.add_parser(
            name,
            help=help_text,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mmbot`` console script; returns the exit status."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if getattr(args, "unavailable", False):
        return args.func(args)  # its options are unknown here: say what to install
    from mmbot.config import ConfigError  # noqa: PLC0415 - needs the extra (dotenv)

    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"mmbot {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mmbot: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
