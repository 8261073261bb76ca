"""One wiring for every way the bot runs: a config, a venue and an instrument in, a
:class:`~mmbot.runner.Runner` with its order manager, risk manager, PnL tracker and quote
model out. ``mmbot backtest`` and ``mmbot run`` (and the sweep) build through here, so a
configuration means the same thing in each.

Everything that can be invalid is built before the runner exists: a config that cannot
trade safely (risk caps below one valid order on this venue, an unknown model) raises
:class:`~mmbot.config.ConfigError` before the first order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mmbot.config import Config
from mmbot.instrument import Instrument
from mmbot.orders import OrderManager
from mmbot.pnl import PnLTracker
from mmbot.risk import RiskLimits, RiskManager
from mmbot.runner import Runner
from mmbot.strategy import build_model
from mmbot.venue.base import Venue

__all__ = ["build_risk", "build_runner"]


def build_risk(cfg: Config, instrument: Instrument) -> RiskManager:
    """Return the risk manager of ``[risk]`` on ``instrument``'s rules.

    Raises
    ------
    ConfigError
        If the caps cannot hold one valid order of the instrument.
    """
    return RiskManager(RiskLimits.from_config(cfg.risk, instrument), instrument)


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
) -> Runner:
    """Return a runner for ``instrument`` on ``venue``, configured by ``cfg``.

    ``use_risk=False`` is for backtests that measure a model without limits; a live run
    never passes it.
    """
    risk = build_risk(cfg, instrument) if use_risk else None
    # the quote floor covers the fee actually charged (the venue's, in a live run)
    model = build_model(cfg, maker_fee_bps=float(maker_fee_rate * 10_000))
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
