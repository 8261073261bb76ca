"""Safe config reload for a running bot (``mmbot run``, SIGHUP).

The config file is read again and validated completely before anything changes: the
file parses, only keys under ``[strategy]`` and ``[risk]`` differ from the running config,
every running symbol's quote model builds (a plugin validates its ``[strategy.params]``;
the spread floor covers that symbol's fee) and its risk caps hold one valid order of its
instrument, and the account caps build. Only then do the runners take the new models,
limits and requote tolerances; otherwise the running config stays and the reason is given.
Either way the attempt is logged and recorded (:meth:`mmbot.records.Records.record_reload`).

A reload builds a fresh quote model (online estimators start again from their priors); the
risk manager keeps its kill latch and drawdown peak.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mmbot.build import build_quote_model
from mmbot.config import Config, ConfigError, config_to_dict, load_config
from mmbot.instrument import Instrument
from mmbot.risk import AccountLimits, RiskLimits

__all__ = [
    "RELOADABLE",
    "PreparedReload",
    "ReloadOutcome",
    "SymbolReload",
    "changed_keys",
    "prepare_reload",
]

log = logging.getLogger(__name__)

#: the sections a running bot may change (``symbols`` holds per-symbol strategy/risk only)
RELOADABLE = ("strategy", "risk", "symbols")


@dataclass(frozen=True)
class SymbolReload:
    """What one symbol's runner takes from a reload."""

    model: Any
    risk_limits: RiskLimits
    tolerance_ticks: int


@dataclass(frozen=True)
class PreparedReload:
    """A validated new config and everything it builds, ready to apply."""

    config: Config
    changed: tuple[str, ...]
    symbols: dict[str, SymbolReload]
    account_limits: AccountLimits


@dataclass(frozen=True)
class ReloadOutcome:
    """What one reload attempt did."""

    accepted: bool
    changed: tuple[str, ...]
    message: str


def _flatten(node: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            _flatten(v, f"{prefix}{k}.", out)
    else:
        out[prefix[:-1]] = node


def changed_keys(old: Config, new: Config) -> tuple[str, ...]:
    """Return the dotted keys whose values differ (a key present in one only counts)."""
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    _flatten(config_to_dict(old), "", a)
    _flatten(config_to_dict(new), "", b)
    missing = object()
    return tuple(sorted(k for k in a.keys() | b.keys() if a.get(k, missing) != b.get(k, missing)))


def prepare_reload(
    current: Config,
    path: str | None,
    instruments: Mapping[str, Instrument],
    maker_fee_rates: Mapping[str, Decimal],
) -> PreparedReload:
    """Read ``path`` (None: the bundled defaults) and validate it as a reload of ``current``
    for the running symbols (``instruments``, each quoted against its maker fee rate):
    every symbol's model and risk limits, and the account caps, are built before any of
    them may take effect.

    Raises
    ------
    ConfigError
        If the file is invalid, changes a key outside ``[strategy]`` and ``[risk]`` (the
        message names it), overrides a symbol not quoted, or a model or risk limits
        cannot be built.
    """
    new = load_config(path)
    changed = changed_keys(current, new)
    refused = [k for k in changed if k.split(".")[0] not in RELOADABLE]
    if refused:
        raise ConfigError(
            f"{refused[0]}: only [strategy] and [risk] can change while running"
            + (f" (also changed: {', '.join(refused[1:])})" if refused[1:] else "")
        )
    new.check_symbols(instruments)  # no override of a symbol not quoted
    symbols = {}
    for symbol, instrument in instruments.items():
        cfg = new.for_symbol(symbol)
        symbols[symbol] = SymbolReload(
            build_quote_model(cfg, maker_fee_rates[symbol]),
            RiskLimits.from_config(cfg.risk, instrument, functools.partial(new.symbol_key, symbol)),
            cfg.strategy.requote_tolerance_ticks,
        )
    return PreparedReload(new, changed, symbols, AccountLimits.from_config(new.risk))
