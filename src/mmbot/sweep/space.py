"""The search space: a TOML file of dotted config keys, each a range or a list of choices.

```toml
[space]
"strategy.fixed.half_spread_bps" = { low = 0.5, high = 5.0, log = true }
"strategy.levels" = { low = 1, high = 4 }          # ints when low and high are ints
"strategy.model" = { choices = ["fixed", "skew"] }
```

Every key is checked against the config schema before any trial runs: a config is built with
each bound and each choice, and the config's own validation names what is wrong. Its quote
model is built too, so a plugin model's ``strategy.params.*`` keys are searched like any
other and validated by the model itself.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmbot.config import Config, ConfigError, apply_overrides
from mmbot.strategy import check_model
from mmbot.sweep.errors import SpaceError

__all__ = ["Choice", "Param", "Range", "SearchSpace", "load_space", "parse_space"]

#: keys the sweep itself sets; searching them would tune to the data rather than the market
_RESERVED = {
    "sim.data": "the data comes from --data",
    "sim.seed": "the seed comes from --seed (a searched seed picks a lucky stream)",
    "run.out_dir": "outputs go to --out",
    "run.db_path": "a sweep records no SQLite",
}
_RANGE_FIELDS = {"low", "high", "log"}


@dataclass(frozen=True)
class Range:
    """A numeric range; ``integer`` when both bounds are TOML integers."""

    key: str
    low: int | float
    high: int | float
    log: bool = False

    @property
    def integer(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)

    def suggest(self, trial: Any) -> int | float:
        if self.integer:
            return trial.suggest_int(self.key, self.low, self.high, log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high), log=self.log)

    def to_dict(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Choice:
    """A categorical parameter."""

    key: str
    choices: tuple[str | int | float | bool, ...]

    def suggest(self, trial: Any) -> str | int | float | bool:
        return trial.suggest_categorical(self.key, list(self.choices))

    def to_dict(self) -> dict[str, Any]:
        return {"choices": list(self.choices)}


Param = Range | Choice


@dataclass(frozen=True)
class SearchSpace:
    """The parameters of a sweep, in file order."""

    params: tuple[Param, ...]

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Ask ``trial`` (an optuna trial) for one value per parameter."""
        return {p.key: p.suggest(trial) for p in self.params}

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {p.key: p.to_dict() for p in self.params}

    def check(self, base: Config, where: str = "space") -> None:
        """Build a config from ``base`` with every bound and choice; refuse the first bad one.

        Raises
        ------
        SpaceError
            Naming the key and what the config said about the value.
        """
        for p in self.params:
            values = (p.low, p.high) if isinstance(p, Range) else p.choices
            for v in values:
                try:
                    # the model too: a plugin validates its own strategy.params.* keys
                    check_model(apply_overrides(base, {p.key: v}))
                except ConfigError as e:
                    raise SpaceError(f"{where}: space key {p.key!r} = {v!r}: {e}") from None


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _param(key: str, spec: Any) -> Param:
    if key in _RESERVED:
        raise SpaceError(f"space key {key!r} cannot be searched: {_RESERVED[key]}")
    if not isinstance(spec, Mapping):
        raise SpaceError(
            f"space key {key!r}: expected a table like {{ low = 1, high = 4 }} or "
            f"{{ choices = [...] }}, got {spec!r}"
        )
    if "choices" in spec:
        extra = set(spec) - {"choices"}
        if extra:
            raise SpaceError(
                f"space key {key!r}: choices cannot be combined with {', '.join(sorted(extra))}"
            )
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise SpaceError(f"space key {key!r}: choices must be a non-empty list")
        for c in choices:
            if not isinstance(c, str | int | float | bool):
                raise SpaceError(
                    f"space key {key!r}: choice {c!r} is not a string, number or boolean"
                )
        if len({(type(c), c) for c in choices}) != len(choices):
            raise SpaceError(f"space key {key!r}: choices repeat a value")
        return Choice(key, tuple(choices))
    unknown = set(spec) - _RANGE_FIELDS
    if unknown:
        raise SpaceError(
            f"space key {key!r}: unknown field(s) {', '.join(sorted(unknown))} "
            "(a range has low, high and optional log; or give choices)"
        )
    if "low" not in spec or "high" not in spec:
        raise SpaceError(f"space key {key!r}: a range needs both low and high")
    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    if not _number(low) or not _number(high):
        raise SpaceError(
            f"space key {key!r}: low and high must be numbers, got {low!r} and {high!r}"
        )
    if not (math.isfinite(low) and math.isfinite(high)):
        raise SpaceError(f"space key {key!r}: low and high must be finite")
    if not isinstance(log, bool):
        raise SpaceError(f"space key {key!r}: log must be true or false, got {log!r}")
    if not low < high:
        raise SpaceError(f"space key {key!r}: bad range, low {low!r} must be below high {high!r}")
    if log and low <= 0:
        raise SpaceError(f"space key {key!r}: a log range needs low > 0, got {low!r}")
    return Range(key, low, high, log)


def parse_space(data: Mapping[str, Any], where: str = "space") -> SearchSpace:
    """Validate a parsed space TOML document (shape only; see :meth:`SearchSpace.check`).

    Raises
    ------
    SpaceError
        Naming the file and the key.
    """
    unknown = set(data) - {"space"}
    if unknown:
        raise SpaceError(
            f"{where}: unknown table(s) {', '.join(sorted(unknown))} (keys go under [space])"
        )
    table = data.get("space")
    if not isinstance(table, Mapping) or not table:
        raise SpaceError(
            f"{where}: no [space] table with at least one key, e.g. "
            '"strategy.levels" = { low = 1, high = 4 }'
        )
    try:
        return SearchSpace(tuple(_param(key, spec) for key, spec in table.items()))
    except SpaceError as e:
        raise SpaceError(f"{where}: {e}") from None


def load_space(path: str | os.PathLike[str]) -> SearchSpace:
    """Read and validate a space file.

    Raises
    ------
    SpaceError
        If the file is missing, is not TOML, or a key is malformed (named in the message).
    """
    where = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise SpaceError(f"{where}: cannot read space file: {e.strerror or e}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpaceError(f"{where}: invalid TOML: {e}") from None
    return parse_space(data, where)
