"""Avellaneda-Stoikov (2008): reservation price and optimal spread, rolling horizon."""

from __future__ import annotations

import math

from mmbot.config import AvellanedaConfig, StrategyConfig
from mmbot.strategy.base import BaseQuoteModel, MarketView

__all__ = ["AvellanedaStoikovModel", "as_quotes"]


def as_quotes(
    mid_ticks: float, q: float, gamma: float, sigma_ticks: float, k: float, tau_s: float
) -> tuple[float, float]:
    """Return the Avellaneda-Stoikov ``(bid, ask)`` in ticks.

    ``r = s - q * gamma * sigma**2 * tau`` and
    ``spread = gamma * sigma**2 * tau + (2 / gamma) * ln(1 + gamma / k)``, quoted
    symmetrically around ``r``. Units: ticks, seconds, ``gamma`` and ``k`` per tick,
    ``sigma`` in ticks per square-root second, ``q`` in order-size units.
    """
    risk = gamma * sigma_ticks * sigma_ticks * tau_s
    r = mid_ticks - q * risk
    half = 0.5 * (risk + (2.0 / gamma) * math.log1p(gamma / k))
    return r - half, r + half


class AvellanedaStoikovModel(BaseQuoteModel):
    """Avellaneda-Stoikov with a constant time-to-horizon ``horizon_s``.

    The inventory ``q`` is the position in multiples of ``order_qty``; sigma is configured
    in bps of the mid per square-root second and converted to ticks at each quote.
    """

    def __init__(
        self,
        strategy: StrategyConfig,
        params: AvellanedaConfig | None = None,
        maker_fee_bps: float = 2.0,
    ) -> None:
        super().__init__(strategy, maker_fee_bps)
        self.params = params if params is not None else strategy.avellaneda

    def targets(self, view: MarketView) -> tuple[float, float, int, int] | None:
        ref = self.reference(view)
        if ref is None:
            return None
        p = self.params
        sigma_ticks = p.sigma_bps_per_sqrt_s * 1e-4 * ref
        q = view.position_lots / self.order_lots
        bid, ask = as_quotes(ref, q, p.gamma_per_tick, sigma_ticks, p.k_per_tick, p.horizon_s)
        return bid, ask, self.order_lots, self.order_lots
