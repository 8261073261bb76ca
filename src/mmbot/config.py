"""mmbot configuration: one TOML file into frozen dataclasses, plus secrets from the environment.

Every key has a default (``src/mmbot/default.toml`` spells them all out); a file only needs
the keys it changes. Unknown keys are rejected with their full dotted name, wrong types and
out-of-range values name the key and the value. Units are part of the names (``_bps``,
``_ms``, ``_s``, ``_ticks``, ``_qty`` in base currency, ``_quote`` in quote currency).

Secrets (``BYBIT_API_KEY``, ``BYBIT_API_SECRET``) are never read from the TOML file: they
come from the environment or a ``.env`` file (:func:`load_secrets`) and never appear in a
repr.

Public API
----------
Config, VenueConfig, StrategyConfig (+ FixedConfig, SkewConfig, AvellanedaConfig, GlftConfig),
RiskConfig, OrdersConfig, SimConfig, RunConfig, Secrets, ConfigError,
load_config, parse_config, config_to_dict, dumps_toml, load_secrets,
parse_overrides, apply_overrides (dotted ``KEY=VALUE`` overrides, as ``--set`` takes them).
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

from dotenv import dotenv_values

from mmbot.instrument import Category, Instrument
from mmbot.venue.base import RateLimits

__all__ = [
    "AvellanedaConfig",
    "Config",
    "ConfigError",
    "FixedConfig",
    "GlftConfig",
    "OrdersConfig",
    "RiskConfig",
    "RunConfig",
    "Secrets",
    "SimConfig",
    "SkewConfig",
    "StrategyConfig",
    "VenueConfig",
    "apply_overrides",
    "config_to_dict",
    "dumps_toml",
    "load_config",
    "load_secrets",
    "parse_config",
    "override_texts",
    "override_texts",
    "parse_overrides",
]

ENV_API_KEY = "BYBIT_API_KEY"
ENV_API_SECRET = "BYBIT_API_SECRET"
_SECRET_WORDS = ("secret", "api_key", "apikey", "password", "token")


class ConfigError(ValueError):
    """A config file or value is invalid; the message names the dotted key."""


# ---------------------------------------------------------------------------- checks
class _Section:
    """Mixin: range checks that name the dotted key."""

    _section: ClassVar[str] = ""

    def _fail(self, name: str, msg: str) -> typing.NoReturn:
        raise ConfigError(f"{self._section}.{name}: {msg}, got {getattr(self, name)!r}")

    def _positive(self, *names: str) -> None:
        for n in names:
            if not getattr(self, n) > 0:
                self._fail(n, "must be > 0")

    def _non_negative(self, *names: str) -> None:
        for n in names:
            if not getattr(self, n) >= 0:
                self._fail(n, "must be >= 0")

    def _finite(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]  # every section is a dataclass
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                self._fail(f.name, "must be finite")

    def _decimal(self, name: str, *, positive: bool = False) -> Decimal:
        raw = getattr(self, name)
        try:
            d = Decimal(raw)
        except InvalidOperation:
            self._fail(name, 'must be a decimal string like "0.001"')
        if not d.is_finite() or d < 0 or (positive and d == 0):
            self._fail(name, "must be a positive decimal" if positive else "must be >= 0")
        return d


# ---------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class VenueConfig(_Section):
    """``[venue]``: where orders go. ``sim`` is the local Bybit v5 simulator: ``mmbot run``
    starts it in a thread of its own process (or joins one with ``--sim-url``) and talks to
    it over loopback sockets with the real pybit clients; backtests use the same matching
    engine in process."""

    _section: ClassVar[str] = "venue"
    kind: Literal["sim", "testnet", "mainnet"] = "sim"
    symbol: str = "BTCUSDT"
    #: several symbols in one process (empty: ``symbol`` alone); ``symbol`` is then the
    #: first of them unless the file names one of them
    symbols: tuple[str, ...] = ()
    category: Literal["linear", "spot"] = "linear"

    def __post_init__(self) -> None:
        if not self.symbol:
            self._fail("symbol", "must not be empty")
        if any(not s or s != s.strip() for s in self.symbols):
            self._fail("symbols", "every symbol must be a non-empty name without spaces")
        if len(set(self.symbols)) != len(self.symbols):
            self._fail("symbols", "must not repeat a symbol")
        if self.symbols and self.symbol not in self.symbols:
            # two keys that disagree: refuse rather than guess which one the user meant
            self._fail("symbol", f"must be one of venue.symbols {list(self.symbols)}")

    @property
    def symbol_list(self) -> tuple[str, ...]:
        """The symbols this run quotes: ``symbols``, else ``(symbol,)``."""
        return self.symbols or (self.symbol,)


@dataclass(frozen=True)
class FixedConfig(_Section):
    """``[strategy.fixed]``: symmetric quotes ``half_spread_bps`` around the reference."""

    _section: ClassVar[str] = "strategy.fixed"
    half_spread_bps: float = 3.0

    def __post_init__(self) -> None:
        self._finite()
        self._non_negative("half_spread_bps")


@dataclass(frozen=True)
class SkewConfig(_Section):
    """``[strategy.skew]``: fixed spread plus inventory skew of price and size.

    At ``position == max_inventory_qty`` quotes shift down by ``price_skew_bps`` and the bid
    size shrinks by the fraction ``size_skew`` (mirrored when short).
    """

    _section: ClassVar[str] = "strategy.skew"
    half_spread_bps: float = 3.0
    max_inventory_qty: str = "0.01"
    price_skew_bps: float = 0.5
    size_skew: float = 1.0

    def __post_init__(self) -> None:
        self._finite()
        self._non_negative("half_spread_bps", "price_skew_bps")
        self._decimal("max_inventory_qty", positive=True)
        if not 0.0 <= self.size_skew <= 1.0:
            self._fail("size_skew", "must be in [0, 1]")


@dataclass(frozen=True)
class AvellanedaConfig(_Section):
    """``[strategy.avellaneda]``: Avellaneda-Stoikov with a rolling horizon.

    Prices in ticks, inventory q in multiples of ``order_qty``; ``gamma`` and ``k`` per tick,
    sigma in bps of the mid per square-root second.
    """

    _section: ClassVar[str] = "strategy.avellaneda"
    gamma_per_tick: float = 0.01
    sigma_bps_per_sqrt_s: float = 0.3
    k_per_tick: float = 0.5
    horizon_s: float = 1.0

    def __post_init__(self) -> None:
        self._finite()
        self._positive("gamma_per_tick", "k_per_tick")
        self._non_negative("sigma_bps_per_sqrt_s", "horizon_s")


@dataclass(frozen=True)
class GlftConfig(_Section):
    """``[strategy.glft]``: Gueant-Lehalle-Fernandez-Tapia closed form, online estimates.

    ``sigma_bps_per_sqrt_s``, ``intensity_a_per_s`` and ``intensity_k_per_tick`` are priors
    that the online estimators start from (fill intensity ``A * exp(-k * depth_ticks)``).
    """

    _section: ClassVar[str] = "strategy.glft"
    gamma_per_tick: float = 0.01
    sigma_bps_per_sqrt_s: float = 0.3
    intensity_a_per_s: float = 1.0
    intensity_k_per_tick: float = 0.5
    vol_halflife_s: float = 60.0
    vol_sample_ms: int = 100
    intensity_prior_weight_s: float = 60.0
    intensity_max_depth_ticks: int = 400
    refit_interval_ms: int = 1000

    def __post_init__(self) -> None:
        self._finite()
        self._positive(
            "gamma_per_tick",
            "intensity_a_per_s",
            "intensity_k_per_tick",
            "vol_halflife_s",
            "vol_sample_ms",
            "intensity_max_depth_ticks",
        )
        self._non_negative("sigma_bps_per_sqrt_s", "intensity_prior_weight_s", "refit_interval_ms")


@dataclass(frozen=True)
class StrategyConfig(_Section):
    """``[strategy]``: which model, its ladder, and the per-model tables.

    ``model`` is a bundled model (``fixed``, ``skew``, ``avellaneda``, ``glft``), a class
    ``"package.module:ClassName"``, or the name of a ``mmbot.models`` entry point; a plugin
    model's parameters are the ``[strategy.params]`` table (see docs/quote-models.md).
    The model itself is imported and validated by :func:`mmbot.strategy.build_model`.

    ``min_spread_bps = "auto"`` (the default) floors every model's half-spread at the maker
    fee (``[sim] maker_fee_bps``) plus ``adverse_buffer_bps``, so no model quotes inside
    its own fee; a rebate makes that floor negative (only the one-tick minimum binds). A
    number replaces the floor with exactly that full spread, smaller or not.
    """

    _section: ClassVar[str] = "strategy"
    model: str = "fixed"
    reference: Literal["mid", "microprice"] = "mid"
    order_qty: str = "0.001"
    levels: int = 1
    level_spacing_ticks: int = 1
    min_spread_bps: float | Literal["auto"] = "auto"
    adverse_buffer_bps: float = 1.0
    requote_tolerance_ticks: int = 1
    fixed: FixedConfig = field(default_factory=FixedConfig)
    skew: SkewConfig = field(default_factory=SkewConfig)
    avellaneda: AvellanedaConfig = field(default_factory=AvellanedaConfig)
    glft: GlftConfig = field(default_factory=GlftConfig)
    #: parameters of a plugin model (``model = "package.module:ClassName"`` or a
    #: ``mmbot.models`` entry point); the model's class validates them
    # hash=False keeps configs hashable (a dict is not); equality still compares it
    params: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        self._finite()
        if not self.model.strip():
            self._fail(
                "model",
                "must name a bundled model, package.module:ClassName or an "
                "mmbot.models entry point",
            )
        self._decimal("order_qty", positive=True)
        self._positive("levels", "level_spacing_ticks")
        self._non_negative("requote_tolerance_ticks")
        if self.min_spread_bps != "auto":
            self._non_negative("min_spread_bps")

    def min_spread_floor_bps(self, maker_fee_bps: float) -> float:
        """Return the minimum full spread in bps: explicit ``min_spread_bps``, or
        ``2 * (maker_fee_bps + adverse_buffer_bps)`` when it is ``"auto"``."""
        if self.min_spread_bps == "auto":
            return 2.0 * (maker_fee_bps + self.adverse_buffer_bps)
        return float(self.min_spread_bps)


@dataclass(frozen=True)
class RiskConfig(_Section):
    """``[risk]``: position/notional limits, drawdown kill switch, stale-book guard.

    ``max_drawdown_quote`` is measured from the peak net PnL; when hit, quoting stops until
    reset (and the position is flattened if ``flatten_on_kill``). Quotes are pulled while the
    book is older than ``stale_book_ms``, its last frame was older than ``max_frame_age_ms``
    when it arrived (a lagging feed; live runs only), out of sync or the venue is down, and
    resume once healthy for ``resume_after_ms``.
    """

    _section: ClassVar[str] = "risk"
    max_position_qty: str = "0.05"
    max_notional_quote: str = "5000"
    max_drawdown_quote: str = "50"
    flatten_on_kill: bool = False
    stale_book_ms: int = 2000
    resume_after_ms: int = 1000
    max_frame_age_ms: int = 1000
    max_total_notional_quote: str = "auto"
    max_total_drawdown_quote: str = "auto"

    def __post_init__(self) -> None:
        self._decimal("max_position_qty", positive=True)
        self._decimal("max_notional_quote", positive=True)
        self._decimal("max_drawdown_quote", positive=True)
        self._positive("stale_book_ms")
        self._non_negative("resume_after_ms")
        self._positive("max_frame_age_ms")
        for name in ACCOUNT_CAP_KEYS:
            if getattr(self, name) != "auto":
                self._decimal(name, positive=True)

    def account_caps(self) -> tuple[Decimal, Decimal]:
        """Return ``(max total notional, max total drawdown)`` of the account, quote
        currency. ``"auto"`` is this table's per-symbol cap: several symbols together may
        hold and lose no more than one symbol alone (fail closed)."""
        notional, drawdown = self.max_total_notional_quote, self.max_total_drawdown_quote
        return (
            Decimal(self.max_notional_quote if notional == "auto" else notional),
            Decimal(self.max_drawdown_quote if drawdown == "auto" else drawdown),
        )

    @property
    def account_caps_explicit(self) -> bool:
        """Whether either account cap is set (not ``"auto"``)."""
        return any(getattr(self, n) != "auto" for n in ACCOUNT_CAP_KEYS)


#: ``[risk]`` keys of the whole account, not of one symbol
ACCOUNT_CAP_KEYS = ("max_total_notional_quote", "max_total_drawdown_quote")
#: the sections ``[symbols.NAME]`` may override
SYMBOL_SECTIONS = ("strategy", "risk")


@dataclass(frozen=True)
class OrdersConfig(_Section):
    """``[orders]``: per-second request budgets (Bybit per-UID limits) and quote hygiene."""

    _section: ClassVar[str] = "orders"
    place_per_s: int = 10
    amend_per_s: int = 10
    cancel_per_s: int = 10
    batch_per_s: int = 10
    batch_max_orders: int = 20
    min_quote_lifetime_ms: int = 200
    post_only: bool = True
    requote_tolerance_spread_frac: float = 0.25

    def __post_init__(self) -> None:
        self._finite()
        self._positive(
            "place_per_s", "amend_per_s", "cancel_per_s", "batch_per_s", "batch_max_orders"
        )
        self._non_negative("min_quote_lifetime_ms")
        if not 0 <= self.requote_tolerance_spread_frac < 1:
            self._fail("requote_tolerance_spread_frac", "must be in [0, 1)")


@dataclass(frozen=True)
class SimConfig(_Section):
    """``[sim]``: the simulated exchange (market data, instrument, fees, fills, latency).

    ``data`` is ``"synthetic"`` (the seeded generator) or a path to a recording (see
    :mod:`mmbot.recorder`). Fee rates in bps of notional; negative means a rebate.
    ``queue_model`` names the queue-position model of the matching engine
    (``risk_averse``, ``prob_power`` with exponent ``queue_power``, ``optimistic``; see
    :mod:`mmbot.sim.engine`). ``latency`` is ``constant`` (``order_latency_ms`` to the
    exchange, ``response_latency_ms`` back, ``md_latency_ms`` for market data) or
    ``replay`` (a recording's own order round trips and receive times).
    """

    _section: ClassVar[str] = "sim"
    seed: int = 0
    data: str = "synthetic"
    start_price: str = "65000.0"
    tick_size: str = "0.1"
    lot_size: str = "0.001"
    min_order_qty: str = "0.001"
    max_order_qty: str = "1190"
    min_notional_quote: str = "5"
    depth: int = 200
    interval_ms: int = 20
    levels_per_delta: int = 11
    trades_per_s: float = 4.0
    trade_size_mean_qty: str = "1.0"
    trade_size_alpha: float = 1.3
    trade_buy_ratio: float = 0.5
    maker_fee_bps: float = 2.0
    taker_fee_bps: float = 5.5
    queue_model: Literal["risk_averse", "prob_power", "optimistic"] = "prob_power"
    queue_power: float = 3.0
    latency: Literal["constant", "replay"] = "constant"
    order_latency_ms: int = 5
    response_latency_ms: int = 5
    md_latency_ms: int = 5
    rate_limit_per_s: int | Literal["auto"] = "auto"

    def __post_init__(self) -> None:
        self._finite()
        if self.rate_limit_per_s != "auto":
            self._positive("rate_limit_per_s")
        if not self.data:
            self._fail("data", "must be 'synthetic' or a file path")
        for n in (
            "start_price",
            "tick_size",
            "lot_size",
            "min_order_qty",
            "max_order_qty",
            "trade_size_mean_qty",
        ):
            self._decimal(n, positive=True)
        self._decimal("min_notional_quote")
        self._positive("depth", "interval_ms", "levels_per_delta", "queue_power")
        self._non_negative(
            "order_latency_ms", "response_latency_ms", "md_latency_ms", "trades_per_s"
        )
        if not 0.0 <= self.trade_buy_ratio <= 1.0:
            self._fail("trade_buy_ratio", "must be in [0, 1]")
        if not 1.0 < self.trade_size_alpha < 100.0:
            self._fail("trade_size_alpha", "must be in (1, 100)")

    def rate_limits(self, category: str) -> RateLimits:
        """The simulated exchange's per-account order limits on ``category``."""
        default = RateLimits.for_category(category)
        if self.rate_limit_per_s == "auto":
            return default
        n = self.rate_limit_per_s
        return dataclasses.replace(
            default, create_cancel_per_s=n, amend_per_s=n, cancel_all_per_s=n
        )

    @property
    def maker_fee_rate(self) -> Decimal:
        """Maker fee as an exact fraction of notional (``2.0`` bps -> ``0.0002``)."""
        return Decimal(repr(self.maker_fee_bps)) / 10000

    @property
    def taker_fee_rate(self) -> Decimal:
        """Taker fee as an exact fraction of notional."""
        return Decimal(repr(self.taker_fee_bps)) / 10000

    def instrument(self, symbol: str, category: Category = "linear") -> Instrument:
        """Return the simulated instrument built from this section's rules."""
        return Instrument.from_rules(
            symbol,
            category,
            self.tick_size,
            self.lot_size,
            self.min_order_qty,
            self.max_order_qty,
            self.min_notional_quote,
        )


@dataclass(frozen=True)
class RunConfig(_Section):
    """``[run]``: duration, outputs, live-run settings. An empty ``db_path`` means
    ``<out_dir>/mmbot.sqlite``. ``dcp_window_s`` asks Bybit to cancel every order when the
    private socket is gone that long (disconnect protection; 0 leaves it off).
    ``keep_cpus_awake`` spins an idle-priority thread on each CPU the live bot may use,
    so a frame never finds its CPU halted (:mod:`mmbot.awake`; costs those CPUs)."""

    _section: ClassVar[str] = "run"
    duration_s: float = 300.0
    out_dir: str = "mmbot-out"
    db_path: str = ""
    snapshot_interval_ms: int = 1000
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    dcp_window_s: int = 10
    keep_cpus_awake: bool = False

    def __post_init__(self) -> None:
        self._finite()
        self._positive("duration_s", "snapshot_interval_ms")
        if self.dcp_window_s and not 3 <= self.dcp_window_s <= 300:
            self._fail("dcp_window_s", "must be 0 (off) or 3..300 (Bybit's range)")
        if not self.out_dir:
            self._fail("out_dir", "must not be empty")

    @property
    def db_file(self) -> Path:
        """The SQLite path to use."""
        return Path(self.db_path) if self.db_path else Path(self.out_dir) / "mmbot.sqlite"


@dataclass(frozen=True)
class Config:
    """The whole configuration."""

    venue: VenueConfig = field(default_factory=VenueConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    orders: OrdersConfig = field(default_factory=OrdersConfig)
    sim: SimConfig = field(default_factory=SimConfig)
    run: RunConfig = field(default_factory=RunConfig)
    #: per-symbol overrides, ``{"ETHUSDT": {"risk": {...}, "strategy": {...}}}`` as
    #: written in ``[symbols.ETHUSDT.risk]``; see :meth:`for_symbol`
    symbols: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        # every override is merged and validated now, before anything trades; whether its
        # symbol is quoted is known once --symbols is (check_symbols)
        for symbol in self.symbols:
            self.for_symbol(symbol)

    def replace(self, **sections: Any) -> Config:
        """Return a copy with whole sections replaced (``cfg.replace(run=RunConfig(...))``)."""
        return dataclasses.replace(self, **sections)

    def with_symbols(self, symbols: Iterable[str]) -> Config:
        """Return a copy quoting ``symbols`` (``--symbols``), validated again
        (:meth:`check_symbols` included)."""
        names = tuple(symbols)
        if not names:
            raise ConfigError("venue.symbols: must name at least one symbol")
        venue = dataclasses.replace(self.venue, symbols=names, symbol=names[0])
        cfg = dataclasses.replace(self, venue=venue)
        cfg.check_symbols(names)
        return cfg

    def check_symbols(self, symbols: Iterable[str]) -> None:
        """Refuse a ``[symbols.NAME]`` table of a symbol the run does not quote: its
        settings would silently do nothing.

        Raises
        ------
        ConfigError
            Naming the table.
        """
        quoted = list(symbols)
        for symbol in self.symbols:
            if symbol not in quoted:
                raise ConfigError(f"symbols.{symbol}: not a quoted symbol (quoting {quoted})")

    def for_symbol(self, symbol: str) -> Config:
        """Return the config of ``symbol``: ``[strategy]`` and ``[risk]`` with the
        ``[symbols.SYMBOL.*]`` overrides merged over them, ``venue.symbol`` set to it (a
        one-symbol config).

        Raises
        ------
        ConfigError
            An unknown section or key, or a bad value; the message names the dotted key
            under ``symbols.SYMBOL``.
        """
        table = self.symbols.get(symbol) or {}
        if not isinstance(table, Mapping):
            raise ConfigError(f"symbols.{symbol}: expected a table, got {table!r}")
        sections: dict[str, Any] = {}
        for name, override in table.items():
            key = f"symbols.{symbol}.{name}"
            if name not in SYMBOL_SECTIONS:
                raise ConfigError(
                    f"unknown config key {key!r} (allowed in [symbols.{symbol}]: "
                    f"{', '.join(SYMBOL_SECTIONS)})"
                )
            if not isinstance(override, Mapping):
                raise ConfigError(f"{key}: expected a table, got {override!r}")
            if name == "risk":
                for k in ACCOUNT_CAP_KEYS:
                    if k in override:
                        raise ConfigError(
                            f"{key}.{k}: an account cap, not a per-symbol one: set it in [risk]"
                        )
            base = config_to_dict(getattr(self, name))
            try:
                sections[name] = _build(
                    type(getattr(self, name)), _merge(base, override), key + "."
                )
            except ConfigError as exc:
                msg = str(exc)
                # a section's own range checks name "risk.KEY": say where the value came from
                raise ConfigError(
                    f"symbols.{symbol}.{msg}" if msg.startswith(name + ".") else msg
                ) from None
        venue = dataclasses.replace(self.venue, symbol=symbol, symbols=())
        return dataclasses.replace(self, venue=venue, symbols={}, **sections)

    def symbol_key(self, symbol: str, dotted: str) -> str:
        """Return where ``dotted`` (``"risk.max_position_qty"``) is set for ``symbol``:
        under ``symbols.SYMBOL`` when overridden there, else ``dotted`` itself."""
        node: Any = self.symbols.get(symbol) or {}
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return dotted
            node = node[part]
        return f"symbols.{symbol}.{dotted}"


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``override`` merged in, table by table."""
    out = dict(base)
    for k, v in override.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


# ---------------------------------------------------------------------------- parsing
def _type_name(t: Any) -> str:
    if typing.get_origin(t) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(t))
    return getattr(t, "__name__", str(t))


def _convert(key: str, t: Any, value: Any) -> Any:
    origin = typing.get_origin(t)
    if origin is types.UnionType or origin is typing.Union:
        # a number or a keyword (``min_spread_bps = "auto"``): the first member that fits
        members = typing.get_args(t)
        for member in members:
            try:
                return _convert(key, member, value)
            except ConfigError:
                continue
        names = ("a number" if m is float else _type_name(m) for m in members)
        raise ConfigError(
            f"{key}: expected {' or '.join(names)}, got {type(value).__name__} {value!r}"
        )
    if origin is Literal:
        if value not in typing.get_args(t):
            raise ConfigError(f"{key}: expected one of {_type_name(t)}, got {value!r}")
        return value
    if origin is tuple:
        # a list of names (``venue.symbols``)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        (item,) = typing.get_args(t)[:1]
        return tuple(_convert(f"{key}[{i}]", item, v) for i, v in enumerate(value))
    if origin is dict and key == "symbols":
        # ``[symbols.NAME.strategy]`` / ``[symbols.NAME.risk]``: Config.for_symbol checks them
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a table, got {type(value).__name__} {value!r}")
        return {str(k): v for k, v in value.items()}
    if origin is dict:
        # a free-form table (``[strategy.params]``): scalars only, checked by its consumer
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a table, got {type(value).__name__} {value!r}")
        for k, v in value.items():
            if not isinstance(v, str | int | float | bool):
                raise ConfigError(
                    f"{key}.{k}: expected a string, number or boolean, got {type(v).__name__} {v!r}"
                )
        return dict(value)
    if dataclasses.is_dataclass(t):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a table, got {type(value).__name__} {value!r}")
        return _build(typing.cast(type, t), value, key + ".")
    if t is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    if t is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {type(value).__name__} {value!r}")
        return value
    if t in (str, bool):
        if type(value) is not t:
            raise ConfigError(
                f"{key}: expected {t.__name__}, got {type(value).__name__} {value!r}"
                + (' (quote decimal amounts as strings, e.g. "0.001")' if t is str else "")
            )
        return value
    raise TypeError(f"unsupported config field type {t!r} for {key}")  # a bug in this module


def _build(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            dotted = prefix + str(key)
            if any(w in str(key).lower() for w in _SECRET_WORDS):
                raise ConfigError(
                    f"{dotted}: secrets are not read from the config file; set {ENV_API_KEY} "
                    f"and {ENV_API_SECRET} in the environment or a .env file"
                )
            raise ConfigError(
                f"unknown config key {dotted!r} (allowed in [{prefix[:-1] or 'top level'}]: "
                f"{', '.join(sorted(fields))})"
            )
    kwargs = {k: _convert(prefix + k, hints[k], v) for k, v in data.items()}
    return cls(**kwargs)


def parse_config(data: Mapping[str, Any]) -> Config:
    """Validate a parsed TOML mapping into a :class:`Config`.

    ``[venue] symbols`` without ``symbol`` makes the first of them ``venue.symbol``.

    Raises
    ------
    ConfigError
        Naming the dotted key of the first unknown key, wrong type or bad value.
    """
    venue = data.get("venue")
    if isinstance(venue, Mapping) and "symbol" not in venue:
        symbols = venue.get("symbols")
        if isinstance(symbols, list | tuple) and symbols and isinstance(symbols[0], str):
            data = {**data, "venue": {**venue, "symbol": symbols[0]}}
    return _build(Config, data, "")


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load a TOML config file; with no path, load the bundled ``default.toml``.

    Raises
    ------
    ConfigError
        If the file is missing, is not valid TOML, or fails validation (the message starts
        with the file path).
    """
    if path is None:
        text = resources.files("mmbot").joinpath("default.toml").read_text(encoding="utf-8")
        where = "default.toml"
    else:
        where = os.fspath(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"{where}: cannot read config file: {e.strerror or e}") from e
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: invalid TOML: {e}") from e
    try:
        return parse_config(data)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Return the config as plain nested dicts and lists (TOML- and JSON-shaped)."""
    return _plain(dataclasses.asdict(cfg))


def _plain(node: Any) -> Any:
    # a tuple (``venue.symbols``) becomes the list TOML and JSON give back
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, tuple | list):
        return [_plain(v) for v in node]
    return node


def _format_toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_format_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")  # pragma: no cover


def dumps_toml(cfg: Config) -> str:
    """Return TOML text that :func:`load_config` reads back to an equal config."""
    lines: list[str] = []

    def table(name: str, d: dict[str, Any]) -> None:
        lines.append(f"[{name}]")
        subs = []
        for k, v in d.items():
            if isinstance(v, dict):
                subs.append((f"{name}.{k}", v))
            else:
                lines.append(f"{k} = {_format_toml_value(v)}")
        lines.append("")
        for sub_name, sub in subs:
            table(sub_name, sub)

    for name, section in config_to_dict(cfg).items():
        table(name, section)
    return "\n".join(lines)


# ---------------------------------------------------------------------------- overrides
def _parse_toml_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _split_override(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
    return key.strip(), value.strip()


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` strings into ``{dotted key: value}``; later items win.

    VALUE is a TOML value (``3``, ``0.5``, ``true``, ``"0.01"``); anything that is not valid
    TOML, such as a bare word, is taken as a string.

    Raises
    ------
    ConfigError
        For an item without ``=`` or with an empty key.
    """
    return {key: _parse_toml_value(value) for key, value in map(_split_override, items)}


def override_texts(items: Iterable[str]) -> dict[str, str]:
    """Return ``{dotted key: VALUE as typed}`` of ``KEY=VALUE`` strings (see
    :func:`apply_overrides`: a decimal-string key keeps a bare number's exact text)."""
    return dict(map(_split_override, items))


def _field_type(cfg: Config, parts: list[str]) -> object:
    node: object = cfg
    for part in parts[:-1]:
        node = getattr(node, part)
    return typing.get_type_hints(type(node)).get(parts[-1])


def _is_free_table(cfg: Config, parts: list[str]) -> bool:
    # ``strategy.params`` takes any key: the plugin model validates its own parameters
    return bool(parts) and typing.get_origin(_field_type(cfg, parts)) is dict


def apply_overrides(
    cfg: Config, overrides: Mapping[str, Any], raw: Mapping[str, str] | None = None
) -> Config:
    """Return ``cfg`` with dotted keys replaced, validated like a config file.

    ``raw`` maps keys to the text the user typed: a number given for a decimal-string key
    (``--set sim.tick_size=0.01``, which TOML reads as a float) keeps that text exactly, as
    if it had been quoted.

    Raises
    ------
    ConfigError
        For an unknown key or a bad value (naming the key).
    """
    data = config_to_dict(cfg)
    for key, value in overrides.items():
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"unknown config section {key!r}")
            node = node[part]
        if parts[-1] not in node and not _is_free_table(cfg, parts[:-1]):
            raise ConfigError(f"unknown config key {key!r}")
        if (
            raw
            and key in raw
            and _field_type(cfg, parts) is str
            and isinstance(value, int | float)
            and not isinstance(value, bool)
        ):
            value = raw[key]
        node[parts[-1]] = value
    return parse_config(data)


# ---------------------------------------------------------------------------- secrets
class Secrets:
    """API credentials. Never printed: ``repr`` and ``str`` mask both values."""

    __slots__ = ("api_key", "api_secret")

    def __init__(self, api_key: str, api_secret: str) -> None:
        if not api_key or not api_secret:
            raise ConfigError("api key and secret must both be non-empty")
        self.api_key = api_key
        self.api_secret = api_secret

    def __repr__(self) -> str:
        return "Secrets(api_key='***', api_secret='***')"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        # Pickling would write the secret to disk or a pipe; refuse rather than leak.
        raise TypeError("Secrets are not picklable")


def load_secrets(
    env_file: str | os.PathLike[str] | None = ".env",
    *,
    environ: Mapping[str, str] | None = None,
    required: bool = False,
) -> Secrets | None:
    """Read ``BYBIT_API_KEY`` / ``BYBIT_API_SECRET`` from the environment, then ``env_file``.

    The environment wins over the file. The file is read without touching ``os.environ``.

    Parameters
    ----------
    env_file : path or None
        A ``.env`` file; a missing file is fine, None skips it.
    environ : mapping, optional
        Defaults to ``os.environ``.
    required : bool
        Raise instead of returning None when a value is missing (testnet/mainnet runs).

    Raises
    ------
    ConfigError
        If ``required`` and a variable is missing (the message names the variable, not
        its value).
    """
    env = os.environ if environ is None else environ
    file_vals: dict[str, str | None] = {}
    if env_file is not None and Path(env_file).is_file():
        file_vals = dotenv_values(env_file)
    values = {}
    for name in (ENV_API_KEY, ENV_API_SECRET):
        v = env.get(name) or file_vals.get(name) or ""
        values[name] = v.strip()
    missing = [n for n, v in values.items() if not v]
    if missing:
        if required:
            raise ConfigError(
                f"missing {' and '.join(missing)}: set it in the environment or in "
                f"{os.fspath(env_file) if env_file is not None else 'a .env file'}"
            )
        return None
    return Secrets(values[ENV_API_KEY], values[ENV_API_SECRET])
