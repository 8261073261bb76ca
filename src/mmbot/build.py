"""One wiring for every way the bot runs: a config, a venue and an instrument in, a
:class:`~mmbot.runner.Runner` with its order manager, risk manager, PnL tracker and quote
model out. ``mmbot backtest`` and ``mmbot run`` (and the sweep) build through here, so a
configuration means the same thing in each.

Everything that can be invalid is built before the runner exists: a config that cannot
trade safely (risk caps below one valid order on this venue, an unknown model) raises
:class:`~mmbot.config.ConfigError` before the first order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from mmbot.config import Config
from mmbot.instrument import Instrument
from mmbot.orders import OrderManager
from mmbot.pnl import PnLTracker
from mmbot.risk import AccountLimits, AccountRisk, RiskLimits, RiskManager
from mmbot.runner import Runner
from mmbot.strategy import build_model
from mmbot.venue.base import Venue

__all__ = [
    "build_account",
    "build_quote_model",
    "build_risk",
    "build_runner",
    "build_runners",
    "symbol_prefix",
]


def build_risk(
    cfg: Config, instrument: Instrument, key_of: Callable[[str], str] = str
) -> RiskManager:
    """Return the risk manager of ``[risk]`` on ``instrument``'s rules (``key_of`` names
    where a key was set, for the error message).

    Raises
    ------
    ConfigError
        If the caps cannot hold one valid order of the instrument.
    """
    return RiskManager(RiskLimits.from_config(cfg.risk, instrument, key_of), instrument)


def build_quote_model(cfg: Config, maker_fee_rate: Decimal) -> Any:
    """Return ``[strategy]``'s quote model, its spread floor covering ``maker_fee_rate``
    (the fee actually charged: the venue's, in a live run).

    Raises
    ------
    ConfigError
        If the model is unknown or refuses its parameters.
    """
    return build_model(cfg, maker_fee_bps=float(maker_fee_rate * 10_000))


def symbol_prefix(link_prefix: str, index: int, count: int) -> str:
    """Return the order link prefix of the ``index``-th of ``count`` symbols: one symbol
    keeps ``link_prefix``; several get ``s0-``, ``s1-``... after it, so a request error
    (which carries only the link id) finds its symbol's runner."""
    return link_prefix if count == 1 else f"{link_prefix}s{index}-"


def build_account(cfg: Config, count: int, records: Any = None) -> AccountRisk | None:
    """Return the account caps of ``[risk]`` for ``count`` symbols, or None for one symbol
    with both caps ``"auto"`` (its own caps are then the account's: the same numbers)."""
    if count == 1 and not cfg.risk.account_caps_explicit:
        return None
    return AccountRisk(AccountLimits.from_config(cfg.risk), records)


def build_runners(
    cfg: Config,
    *,
    venue: Venue,
    instruments: Mapping[str, Instrument],
    fee_rates: Mapping[str, tuple[Decimal, Decimal]],
    link_prefix: str,
    records: Any = None,
    use_risk: bool = True,
    books: Mapping[str, Any] | None = None,
    history_interval_ms: int = 250,
) -> tuple[dict[str, Runner], AccountRisk | None]:
    """Return a runner per symbol of ``instruments`` (each with its ``[symbols.NAME]``
    overrides) and the account caps they share (None: one symbol, see
    :func:`build_account`, or ``use_risk=False``).

    Everything is built before anything is returned, so an invalid symbol's config stops
    the run before the first order of any symbol. The order managers share one set of
    request budgets (``[orders] *_per_s``: Bybit counts them per account).

    Raises
    ------
    ConfigError
        Naming the dotted key (``symbols.ETHUSDT.risk.max_position_qty``) of the first
        setting that cannot trade on its symbol.
    """
    runners: dict[str, Runner] = {}

    def key_of(symbol: str) -> Callable[[str], str]:
        return lambda key: cfg.symbol_key(symbol, key)

    for i, (symbol, instrument) in enumerate(instruments.items()):
        maker, taker = fee_rates[symbol]
        runners[symbol] = build_runner(
            cfg.for_symbol(symbol),
            venue=venue,
            instrument=instrument,
            maker_fee_rate=maker,
            taker_fee_rate=taker,
            link_prefix=symbol_prefix(link_prefix, i, len(instruments)),
            records=records,
            use_risk=use_risk,
            book=None if books is None else books[symbol],
            history_interval_ms=history_interval_ms,
            key_of=key_of(symbol),
        )
    # Bybit's request limits are per account (UID), not per symbol: every symbol's order
    # manager draws on the same rolling windows, or together they would send too many
    shared = next(iter(runners.values())).orders.limiters
    for runner in runners.values():
        runner.orders.limiters = shared
    account = build_account(cfg, len(runners), records) if use_risk else None
    if account is not None:
        for runner in runners.values():
            runner.attach_account(account)
    return runners, account


def build_runner(
    cfg: Config,
    *,
    venue: Venue,
    instrument: Instrument,
    maker_fee_rate: Decimal,
    taker_fee_rate: Decimal,
    link_prefix: str,
    records: Any = None,
    use_risk: bool = True,
    book: Any = None,
    history_interval_ms: int = 250,
    key_of: Callable[[str], str] = str,
) -> Runner:
    """Return a runner for ``instrument`` on ``venue``, configured by ``cfg``.

    ``use_risk=False`` is for backtests that measure a model without limits; a live run
    never passes it.
    """
    risk = build_risk(cfg, instrument, key_of) if use_risk else None
    model = build_quote_model(cfg, maker_fee_rate)
    orders = OrderManager.from_config(
        venue,
        instrument.symbol,
        cfg.orders,
        tolerance_ticks=cfg.strategy.requote_tolerance_ticks,
        link_prefix=link_prefix,
    )
    return Runner(
        instrument=instrument,
        venue=venue,
        model=model,
        orders=orders,
        pnl=PnLTracker(instrument, maker_fee_rate, taker_fee_rate),
        risk=risk,
        records=records,
        book=book,
        snapshot_interval_ms=cfg.run.snapshot_interval_ms,
        history_interval_ms=history_interval_ms,
    )
