"""Quote model contract and the ladder builder every model shares.

A model turns a :class:`MarketView` (book, position, clock, instrument) into a list of
:class:`Quote` (integer ticks and lots). Models only decide two target prices (fractional
ticks) and two sizes (lots); :func:`build_ladder` then applies the rules every quote must
obey, in this order:

1. minimum spread: targets closer than ``min_spread_ticks`` (and never closer than one
   tick) are widened symmetrically around their centre;
2. rounding away from the centre (bid down, ask up), so rounding never tightens a quote;
3. post-only clamp: a bid is strictly below the best ask and an ask strictly above the best
   bid, so a quote never crosses or touches the opposite best;
4. levels: level ``i`` sits ``i * level_spacing_ticks`` further from the touch;
5. sizes: capped at the instrument's max, raised to the minimum valid size at that price
   (min quantity and min notional), trimmed to the risk room left on that side; a level that
   cannot meet the minimum inside the room is dropped, and so are all further levels.

Public API
----------
Quote, MarketView, QuoteModel (protocol), BaseQuoteModel, build_ladder, reference_price.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from mmbot.config import StrategyConfig
from mmbot.instrument import Instrument
from mmbot.types import BUY, SELL

__all__ = [
    "BaseQuoteModel",
    "MarketView",
    "Quote",
    "QuoteModel",
    "build_ladder",
    "reference_price",
]

Side = Literal["Buy", "Sell"]

# Float targets like 9996.9999999999 must not floor a whole tick away.
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Quote:
    """One desired resting order.

    Parameters
    ----------
    side : {"Buy", "Sell"}
    price_ticks : int
        Limit price in ticks (> 0).
    qty_lots : int
        Size in lots (> 0).
    level : int
        0 for the level nearest the touch, increasing outwards.
    """

    side: str
    price_ticks: int
    qty_lots: int
    level: int = 0


# The frozen dataclass __init__ costs about twice this (object.__setattr__ per field) and
# the ladder builds a few Quotes per book update, on the tick-to-quote path. Writing the
# slots through their descriptors keeps Quote frozen for everyone else.
# The member descriptors are read from the class __dict__ (what ``Quote.side`` returns at
# runtime), since to a type checker a slot is an instance attribute only.
_new = object.__new__
_slots = Quote.__dict__
_set_side = _slots["side"].__set__
_set_price = _slots["price_ticks"].__set__
_set_qty = _slots["qty_lots"].__set__
_set_level = _slots["level"].__set__


def _quote(side: str, price_ticks: int, qty_lots: int, level: int) -> Quote:
    q = _new(Quote)
    _set_side(q, side)
    _set_price(q, price_ticks)
    _set_qty(q, qty_lots)
    _set_level(q, level)
    return q


@dataclass(slots=True)
class MarketView:
    """What a model may look at when it quotes.

    Parameters
    ----------
    book : obcore.Book
        Read through ``best_bid()``, ``best_ask()`` (``(ticks, lots)`` or None) and
        ``microprice()`` (ticks or None).
    position_lots : int
        Signed position (long > 0).
    now_ms : int
        Current (simulated or wall) time in milliseconds.
    instrument : Instrument
        Tick/lot/min-size rules for size checks.
    max_buy_lots, max_sell_lots : int or None
        Room left on each side from risk (see ``RiskDecision.max_buy_lots``); None means
        unlimited. The ladder's total size per side never exceeds it.
    """

    book: Any
    position_lots: int
    now_ms: int
    instrument: Instrument
    max_buy_lots: int | None = None
    max_sell_lots: int | None = None


@runtime_checkable
class QuoteModel(Protocol):
    """What the runner calls. ``on_fill`` and ``on_book`` feed online estimators."""

    def quotes(self, view: MarketView) -> list[Quote]: ...

    def on_fill(self, side: str, price_ticks: int, qty_lots: int, now_ms: int) -> None: ...

    def on_book(self, view: MarketView) -> None: ...


def reference_price(book: Any, reference: str = "mid") -> float | None:
    """Return the mid or microprice in (fractional) ticks, or None if a side is empty."""
    bb = book.best_bid()
    ba = book.best_ask()
    if bb is None or ba is None:
        return None
    if reference == "microprice":
        mp = book.microprice()
        return None if mp is None else float(mp)
    return (bb[0] + ba[0]) * 0.5


def build_ladder(
    view: MarketView,
    bid_px: float | None,
    ask_px: float | None,
    bid_lots: int,
    ask_lots: int,
    *,
    levels: int = 1,
    level_spacing_ticks: int = 1,
    min_spread_ticks: float = 0.0,
) -> list[Quote]:
    """Turn target prices (fractional ticks) and sizes (lots) into valid quotes.

    Parameters
    ----------
    view : MarketView
    bid_px, ask_px : float or None
        Target level-0 prices in ticks; None (or a size <= 0) leaves that side unquoted.
    bid_lots, ask_lots : int
        Size per level in lots.
    levels, level_spacing_ticks, min_spread_ticks
        See the module docstring.

    Returns
    -------
    list of Quote
        Bids first (level 0 outwards), then asks.
    """
    book = view.book
    bb = book.best_bid()
    ba = book.best_ask()
    # Most frames change levels away from the touch: the same inputs give the same ladder.
    key = (
        bid_px,
        ask_px,
        bid_lots,
        ask_lots,
        levels,
        level_spacing_ticks,
        min_spread_ticks,
        bb[0] if bb is not None else None,
        ba[0] if ba is not None else None,
        view.max_buy_lots,
        view.max_sell_lots,
        view.instrument,
    )
    global _last_ladder
    last = _last_ladder
    if key == last[0]:
        return list(last[1])
    out = _build_ladder(
        view.instrument,
        bb,
        ba,
        bid_px,
        ask_px,
        bid_lots,
        ask_lots,
        levels,
        level_spacing_ticks,
        min_spread_ticks,
        view.max_buy_lots,
        view.max_sell_lots,
    )
    # One tuple, replaced in one assignment: a reader in another thread never pairs one
    # call's inputs with another's quotes. Quote is immutable, so sharing it is safe.
    _last_ladder = (key, tuple(out))
    return out


_last_ladder: tuple = (None, ())


def _build_ladder(
    ins: Instrument,
    bb: tuple[int, int] | None,
    ba: tuple[int, int] | None,
    bid_px: float | None,
    ask_px: float | None,
    bid_lots: int,
    ask_lots: int,
    levels: int,
    level_spacing_ticks: int,
    min_spread_ticks: float,
    max_buy_lots: int | None,
    max_sell_lots: int | None,
) -> list[Quote]:
    if bid_lots <= 0:
        bid_px = None
    if ask_lots <= 0:
        ask_px = None
    if bid_px is not None and ask_px is not None:
        min_gap = min_spread_ticks if min_spread_ticks > 1.0 else 1.0
        if ask_px - bid_px < min_gap:
            centre = (ask_px + bid_px) * 0.5
            bid_px = centre - min_gap * 0.5
            ask_px = centre + min_gap * 0.5
    out: list[Quote] = []
    if bid_px is not None:
        bid = math.floor(bid_px + _EPS)
        if ba is not None and bid >= ba[0]:
            bid = ba[0] - 1
        _add_levels(out, ins, BUY, bid, -level_spacing_ticks, bid_lots, levels, max_buy_lots)
    if ask_px is not None:
        ask = math.ceil(ask_px - _EPS)
        if bb is not None and ask <= bb[0]:
            ask = bb[0] + 1
        _add_levels(out, ins, SELL, ask, level_spacing_ticks, ask_lots, levels, max_sell_lots)
    return out


def _add_levels(
    out: list[Quote],
    ins: Instrument,
    side: str,
    price: int,
    step: int,
    lots: int,
    levels: int,
    room: int | None,
) -> None:
    max_lots = ins.max_qty_lots
    for level in range(levels):
        if price <= 0:
            return
        qty = lots if lots < max_lots else max_lots
        min_lots = ins.min_lots_at(price)
        if qty < min_lots:
            qty = min_lots
        if room is not None:
            if room < min_lots:
                return
            if qty > room:
                qty = room
            room -= qty
        out.append(_quote(side, price, qty, level))
        price += step


class BaseQuoteModel:
    """Base for the bundled models: binds sizes to the instrument and builds the ladder.

    ``strategy`` supplies the ladder (``order_qty``, ``levels``, ``level_spacing_ticks``,
    ``min_spread_bps``, ``adverse_buffer_bps``, ``reference``). Subclasses implement
    :meth:`targets`; ``on_fill``/``on_book``/``on_order`` are no-ops here.

    The spread floor is fee-aware: with ``min_spread_bps = "auto"`` no model's
    half-spread is below ``maker_fee_bps + adverse_buffer_bps`` (a quote inside the
    maker fee loses money on every round trip before adverse selection even starts).

    Parameters
    ----------
    strategy : StrategyConfig
    maker_fee_bps : float
        The venue's maker fee in bps (negative: rebate); default Bybit's regular tier for
        linear contracts (2 bps).
    """

    def __init__(self, strategy: StrategyConfig, maker_fee_bps: float = 2.0) -> None:
        self.strategy = strategy
        self._instrument: Instrument | None = None
        self.order_lots = 0
        self.maker_fee_bps = maker_fee_bps
        #: minimum full spread in bps of the reference (see StrategyConfig)
        self.min_spread_floor_bps = strategy.min_spread_floor_bps(maker_fee_bps)

    def bind(self, instrument: Instrument) -> None:
        """Convert size parameters to lots for ``instrument`` (called on first quote).

        Raises
        ------
        InstrumentError
            If ``strategy.order_qty`` is not a whole number of the instrument's lots.
        """
        self.order_lots = instrument.qty_lots(self.strategy.order_qty)
        self._instrument = instrument

    def targets(self, view: MarketView) -> tuple[float, float, int, int] | None:
        """Return ``(bid_px, ask_px, bid_lots, ask_lots)`` in ticks/lots, or None to not quote."""
        raise NotImplementedError

    def quotes(self, view: MarketView) -> list[Quote]:
        """Return the desired quotes for ``view`` (empty when the book has no two sides)."""
        if view.instrument is not self._instrument:
            self.bind(view.instrument)
        t = self.targets(view)
        if t is None:
            return []
        bid_px, ask_px, bid_lots, ask_lots = t
        cfg = self.strategy
        min_spread_ticks = self.min_spread_floor_bps * 1e-4 * (bid_px + ask_px) * 0.5
        return build_ladder(
            view,
            bid_px,
            ask_px,
            bid_lots,
            ask_lots,
            levels=cfg.levels,
            level_spacing_ticks=cfg.level_spacing_ticks,
            min_spread_ticks=min_spread_ticks,
        )

    def on_fill(self, side: str, price_ticks: int, qty_lots: int, now_ms: int) -> None:
        """Observe one of our fills (no-op here)."""

    def on_book(self, view: MarketView) -> None:
        """Observe a book update (no-op here)."""

    def on_order(self, order: Any, now_ms: int) -> None:
        """Observe one of our orders changing state at the venue (no-op here)."""

    def reference(self, view: MarketView) -> float | None:
        """Return the configured reference price (mid or microprice) in ticks."""
        return reference_price(view.book, self.strategy.reference)
