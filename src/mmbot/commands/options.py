"""Options more than one command takes, declared once."""

from __future__ import annotations

import argparse

__all__ = ["add_overrides"]


def add_overrides(parser: argparse.ArgumentParser, what: str = "a config key") -> None:
    """Add ``--set KEY=VALUE`` (repeatable) into ``args.overrides``; see
    :func:`mmbot.config.parse_overrides` for how a value is read."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override {what}, e.g. strategy.levels=3 (repeatable; VALUE is TOML, bare "
        "words are strings)",
    )
