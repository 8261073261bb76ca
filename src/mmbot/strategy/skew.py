"""Fixed spread with inventory skew of price and size."""

from __future__ import annotations

from mmbot.config import SkewConfig, StrategyConfig
from mmbot.instrument import Instrument
from mmbot.strategy.base import BaseQuoteModel, MarketView

__all__ = ["InventorySkewModel"]


class InventorySkewModel(BaseQuoteModel):
    """Fixed spread whose centre and sizes lean against the inventory.

    With ``q = clamp(position / max_inventory, -1, 1)``:

    - centre = ``ref * (1 - q * price_skew_bps / 1e4)`` (long: both quotes move down, so
      the ask gets hit more and the bid less);
    - the side that would add to the inventory shrinks: when long the bid size is
      ``floor(order_lots * (1 - size_skew * q))``; when short the ask size likewise. A size
      of zero leaves that side unquoted.
    """

    def __init__(
        self, strategy: StrategyConfig, params: SkewConfig | None = None, maker_fee_bps: float = 2.0
    ) -> None:
        super().__init__(strategy, maker_fee_bps)
        self.params = params if params is not None else strategy.skew
        self.max_inventory_lots = 0

    def bind(self, instrument: Instrument) -> None:
        super().bind(instrument)
        self.max_inventory_lots = instrument.qty_lots(self.params.max_inventory_qty)

    def targets(self, view: MarketView) -> tuple[float, float, int, int] | None:
        ref = self.reference(view)
        if ref is None:
            return None
        p = self.params
        q = view.position_lots / self.max_inventory_lots
        q = -1.0 if q < -1.0 else (1.0 if q > 1.0 else q)
        centre = ref * (1.0 - q * p.price_skew_bps * 1e-4)
        half = p.half_spread_bps * 1e-4 * ref
        bid_lots = ask_lots = self.order_lots
        if q > 0:
            bid_lots = int(self.order_lots * (1.0 - p.size_skew * q) + 1e-9)
        elif q < 0:
            ask_lots = int(self.order_lots * (1.0 + p.size_skew * q) + 1e-9)
        return centre - half, centre + half, bid_lots, ask_lots
