"""Fixed spread around the mid or the microprice."""

from __future__ import annotations

from mmbot.config import FixedConfig, StrategyConfig
from mmbot.strategy.base import BaseQuoteModel, MarketView

__all__ = ["FixedSpreadModel"]


class FixedSpreadModel(BaseQuoteModel):
    """Quote ``reference -/+ half_spread_bps`` (bps of the reference), ``order_qty`` a side.

    Examples
    --------
    Mid 10002 ticks and 5 bps: half spread 5.001 ticks, so the bid target is 9996.999
    (floored to 9996) and the ask 10007.001 (ceiled to 10008).
    """

    def __init__(
        self,
        strategy: StrategyConfig,
        params: FixedConfig | None = None,
        maker_fee_bps: float = 2.0,
    ) -> None:
        super().__init__(strategy, maker_fee_bps)
        self.params = params if params is not None else strategy.fixed

    def targets(self, view: MarketView) -> tuple[float, float, int, int] | None:
        ref = self.reference(view)
        if ref is None:
            return None
        half = self.params.half_spread_bps * 1e-4 * ref
        return ref - half, ref + half, self.order_lots, self.order_lots
