"""Quote models. ``build_model(config)`` returns the model named in ``[strategy] model``.

Models: ``fixed`` (:class:`FixedSpreadModel`), ``skew`` (:class:`InventorySkewModel`),
``avellaneda`` (:class:`AvellanedaStoikovModel`), ``glft`` (:class:`GlftModel`), or a
user's own class (``"package.module:ClassName"`` or a ``mmbot.models`` entry point, with
its parameters in ``[strategy.params]``; see :mod:`mmbot.strategy.plugins` and
docs/quote-models.md). All follow :class:`QuoteModel`: ``quotes(view) -> list[Quote]``,
``on_fill(...)``, ``on_book(view)``.
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
from mmbot.strategy.plugins import ENTRY_POINT_GROUP, load_model_class
from mmbot.strategy.skew import InventorySkewModel

__all__ = [
    "ENTRY_POINT_GROUP",
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
    "check_model",
    "load_model_class",
    "reference_price",
]

MODELS: dict[str, type[BaseQuoteModel]] = {
    "fixed": FixedSpreadModel,
    "skew": InventorySkewModel,
    "avellaneda": AvellanedaStoikovModel,
    "glft": GlftModel,
}


def build_model(config: Config | StrategyConfig, maker_fee_bps: float | None = None) -> QuoteModel:
    """Return a fresh model for ``config.strategy`` (or a bare ``StrategyConfig``).

    The model's fee-aware spread floor uses ``maker_fee_bps``, by default the config's
    ``[sim] maker_fee_bps`` (the default config's is Bybit's regular tier, 2 bps). A plugin
    model is constructed as ``cls(strategy, params=dict(strategy.params),
    maker_fee_bps=...)``, which validates its parameters; building it is how every command
    checks a configuration before the first order.

    Raises
    ------
    ConfigError
        If the model is unknown, cannot be imported, refuses its parameters, or does not
        follow :class:`QuoteModel`; or if a bundled model is given ``[strategy.params]``.
    """
    strategy = config.strategy if isinstance(config, Config) else config
    if maker_fee_bps is None:
        maker_fee_bps = (config.sim if isinstance(config, Config) else SimConfig()).maker_fee_bps
    builtin = MODELS.get(strategy.model)
    if builtin is not None:
        if strategy.params:
            raise ConfigError(
                f"strategy.params: only a plugin model takes parameters here (the bundled "
                f"{strategy.model!r} model reads [strategy.{strategy.model}]), got "
                f"{', '.join(sorted(strategy.params))}"
            )
        return builtin(strategy, maker_fee_bps=maker_fee_bps)
    cls = load_model_class(strategy.model, tuple(MODELS))
    try:
        model = cls(strategy, params=dict(strategy.params), maker_fee_bps=maker_fee_bps)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        # a model that signals bad parameters with a plain ValueError, or a constructor
        # that does not take (strategy, params=, maker_fee_bps=): still a config problem
        raise ConfigError(
            f"strategy.params: {strategy.model}: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(model, QuoteModel):
        raise ConfigError(
            f"strategy.model: {strategy.model!r} does not follow the QuoteModel "
            "protocol (quotes, on_fill, on_book)"
        )
    return model


def check_model(config: Config) -> None:
    """Build ``config``'s model once and drop it: the validation a sweep space or a config
    reload runs before it accepts a configuration.

    Raises
    ------
    ConfigError
        As :func:`build_model`.
    """
    build_model(config)
