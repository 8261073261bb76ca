"""A quote model written outside mmbot: a fixed spread centred between mid and microprice.

*** THIS IS AN EXAMPLE STRATEGY WITH NO ALPHA ADVANTAGE WHATSOEVER. ***

Use it without a fork (see docs/quote-models.md)::

    # my.toml
    [strategy]
    model = "my_model:MicropriceSkewModel"

    [strategy.params]
    half_spread_bps = 3.0   # half of the quoted spread, in bps of the mid
    skew = 0.5              # 0 = centre on the mid, 1 = centre on the microprice

    $ PYTHONPATH=examples mmbot backtest --config my.toml --out bt

The centre leans towards the microprice (the size-weighted mid): when the bid queue is
thicker than the ask queue the next trade is more likely up, so both quotes move up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmbot.config import ConfigError, StrategyConfig
from mmbot.strategy import BaseQuoteModel, MarketView

#: the parameters this model takes, with their defaults
DEFAULTS: dict[str, float] = {"half_spread_bps": 3.0, "skew": 0.5}


class MicropriceSkewModel(BaseQuoteModel):
    """Quote ``centre -/+ half_spread_bps``, ``centre = mid + skew * (microprice - mid)``.

    ``BaseQuoteModel`` supplies what every model shares: ``order_qty`` in lots, the
    fee-aware spread floor, the ladder (levels, spacing, post-only clamp, risk room).
    """

    def __init__(
        self, strategy: StrategyConfig, params: Mapping[str, Any], maker_fee_bps: float = 2.0
    ) -> None:
        super().__init__(strategy, maker_fee_bps)
        unknown = sorted(set(params) - set(DEFAULTS))
        if unknown:
            raise ConfigError(
                f"strategy.params.{unknown[0]}: unknown parameter of "
                f"MicropriceSkewModel (allowed: {', '.join(DEFAULTS)})"
            )
        values = {**DEFAULTS, **params}
        for key, v in values.items():
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise ConfigError(f"strategy.params.{key}: expected a number, got {v!r}")
        if values["half_spread_bps"] < 0:
            raise ConfigError(
                f"strategy.params.half_spread_bps: must be >= 0, got {values['half_spread_bps']!r}"
            )
        if not 0.0 <= values["skew"] <= 1.0:
            raise ConfigError(f"strategy.params.skew: must be in [0, 1], got {values['skew']!r}")
        self.half_spread_bps = float(values["half_spread_bps"])
        self.skew = float(values["skew"])

    def targets(self, view: MarketView) -> tuple[float, float, int, int] | None:
        # Reads only: the book belongs to the runner; keep nothing of it past this call.
        bb = view.book.best_bid()
        ba = view.book.best_ask()
        if bb is None or ba is None:
            return None  # one side empty: do not quote
        mid = (bb[0] + ba[0]) * 0.5
        mp = view.book.microprice()
        centre = mid if mp is None else mid + self.skew * (float(mp) - mid)
        half = self.half_spread_bps * 1e-4 * mid
        return centre - half, centre + half, self.order_lots, self.order_lots
