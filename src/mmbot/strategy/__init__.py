"""Quote models. ``build_model(config)`` returns the model named in ``[strategy] model``.

Models: ``fixed`` (:class:`FixedSpreadModel`), ``skew`` (:class:`InventorySkewModel`),
``avellaneda`` (:class:`AvellanedaStoikovModel`), ``glft`` (:class:`GlftModel`). All follow
:class:`QuoteModel`: ``quotes(view) -> list[Quote]``, ``on_fill(...)``, ``on_book(view)``.
"""

from __future__ import annotations

from mmbot.config import Config, ConfigError, SimConfig, StrategyConfig
from mmbot.strategy.avellaneda import AvellanedaStoikovModel
from mmbot.strategy.base import (
    BaseQuoteModel,
    MarketView,
    Quote,
    QuoteModel,
    build_ladder,
    reference_price,
)
from mmbot.strategy.fixed import FixedSpreadModel
from mmbot.strategy.glft import GlftModel
from mmbot.strategy.skew import InventorySkewModel

__all__ = [
    "MODELS",
    "AvellanedaStoikovModel",
    "BaseQuoteModel",
    "FixedSpreadModel",
    "GlftModel",
    "InventorySkewModel",
    "MarketView",
    "Quote",
    "QuoteModel",
    "build_ladder",
    "build_model",
    "reference_price",
]

MODELS: dict[str, type[BaseQuoteModel]] = {
    "fixed": FixedSpreadModel,
    "skew": InventorySkewModel,
    "avellaneda": AvellanedaStoikovModel,
    "glft": GlftModel,
}


def build_model(config: Config | StrategyConfig,
                maker_fee_bps: float | None = None) -> BaseQuoteModel:
    """Return a fresh model for ``config.strategy`` (or a bare ``StrategyConfig``).

    The model's fee-aware spread floor uses ``maker_fee_bps``, by default the config's
    ``[sim] maker_fee_bps`` (the default config's is Bybit's regular tier, 2 bps).

    Raises
    ------
    ConfigError
        If the model name is unknown.
    """
    strategy = config.strategy if isinstance(config, Config) else config
    try:
        cls = MODELS[strategy.model]
    except KeyError:
        raise ConfigError(
            f"strategy.model: unknown model {strategy.model!r} (one of {', '.join(MODELS)})"
        ) from None
    if maker_fee_bps is None:
        maker_fee_bps = (config.sim if isinstance(config, Config) else SimConfig()).maker_fee_bps
    return cls(strategy, maker_fee_bps=maker_fee_bps)
