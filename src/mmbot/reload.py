"""Safe config reload for a running bot (``mmbot run``, SIGHUP).

The config file is read again and validated completely before anything changes: the
file parses, only keys under ``[strategy]`` and ``[risk]`` differ from the running config,
the quote model builds (a plugin validates its ``[strategy.params]``), and the risk caps
hold one valid order of the instrument. Only then does the runner take the new model,
limits and requote tolerance; otherwise the running config stays and the reason is given.
Either way the attempt is logged and recorded (:meth:`mmbot.records.Records.record_reload`).

A reload builds a fresh quote model (online estimators start again from their priors); the
risk manager keeps its kill latch and drawdown peak.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from mmbot.config import Config, ConfigError, config_to_dict, load_config
from mmbot.risk import RiskLimits
from mmbot.strategy import build_model

__all__ = ["RELOADABLE", "PreparedReload", "ReloadOutcome", "changed_keys", "prepare_reload"]

log = logging.getLogger(__name__)

#: the sections a running bot may change (``symbols`` holds per-symbol strategy/risk only)
RELOADABLE = ("strategy", "risk", "symbols")


@dataclass(frozen=True)
class PreparedReload:
    """A validated new config and what it builds, ready to apply."""

    config: Config
    changed: tuple[str, ...]
    model: Any
    risk_limits: RiskLimits


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


def prepare_reload(current: Config, path: str | None, instrument: Any) -> PreparedReload:
    """Read ``path`` (None: the bundled defaults) and validate it as a reload of ``current``.

    Raises
    ------
    ConfigError
        If the file is invalid, changes a key outside ``[strategy]`` and ``[risk]`` (the
        message names it), or its model or risk limits cannot be built.
    """
    new = load_config(path)
    changed = changed_keys(current, new)
    refused = [k for k in changed if k.split(".")[0] not in RELOADABLE]
    if refused:
        raise ConfigError(
            f"{refused[0]}: only [strategy] and [risk] can change while running"
            + (f" (also changed: {', '.join(refused[1:])})" if refused[1:] else "")
        )
    model = build_model(new)
    limits = RiskLimits.from_config(new.risk, instrument)
    return PreparedReload(new, changed, model, limits)
