"""Instrument rules (tick size, lot step, min/max quantity, min notional) as integer scales.

An :class:`Instrument` is built from one element of a Bybit v5 ``get_instruments_info``
response (``result.list[i]``) and converts between the decimal strings the exchange speaks
and the integer ticks/lots that obcore and the quote models use. Every conversion is exact
and goes through :class:`obcore.Scale`, the C parser and formatter the books use, never
through ``float``.

Public API
----------
Instrument
    Frozen dataclass; ``from_bybit``, ``from_rules``, ``price_str``, ``qty_str``, ``price_ticks``,
    ``qty_lots``, ``price``, ``qty``, ``notional``, ``min_lots_at``, ``new_book``.
instruments_from_response
    All instruments of a whole ``get_instruments_info`` response, keyed by symbol.
InstrumentError
    Raised for bad instrument data or a value that does not fit the instrument's grid.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, Literal

import obcore

__all__ = ["Instrument", "InstrumentError", "instruments_from_response"]

# Bybit sends plain non-negative decimals ("65114.20", "0.001", "5"); anything else is bad input.
_DECIMAL_RE = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")

Category = Literal["linear", "spot"]


class InstrumentError(ValueError):
    """Bad instrument data, or a price/quantity that does not fit an instrument's grid."""


def _grid(name: str, step: str, price: bool) -> obcore.Scale:
    """Return the exact scale of ``step`` (a tick size or lot step)."""
    if not isinstance(step, str) or not _DECIMAL_RE.fullmatch(step):
        raise InstrumentError(f"{name}: expected a positive decimal string, got {step!r}")
    try:
        return obcore.Scale(step, price=price)
    except obcore.ParseError as exc:
        if Decimal(step) == 0:
            raise InstrumentError(f"{name}: must be positive, got {step!r}") from exc
        raise InstrumentError(f"{name}: {exc}") from exc


def _parse(scale: obcore.Scale, name: str, s: str) -> int:
    """Return ``s`` in whole steps of ``scale``; raise InstrumentError naming ``name``."""
    if not isinstance(s, str):
        raise InstrumentError(f"{name}: expected a decimal string, got {type(s).__name__}")
    try:
        return scale.parse(s, name)
    except obcore.OffGridError as exc:
        raise InstrumentError(f"{name} {s!r} is not a multiple of {scale.step}") from exc
    except obcore.NumberOverflowError as exc:
        unit = "ticks" if scale.price else "lots"
        raise InstrumentError(f"{name} {s!r} overflows int64 {unit}") from exc
    except obcore.ParseError as exc:
        raise InstrumentError(str(exc)) from exc


def _format(scale: obcore.Scale, units: int) -> str:
    if units < 0:
        raise InstrumentError(f"cannot format a negative value ({units} units)")
    try:
        return scale.format(units)
    except obcore.NumberOverflowError as exc:
        raise InstrumentError(str(exc)) from exc


def _field(info: dict[str, Any], path: str, where: str) -> str:
    node: Any = info
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            raise InstrumentError(f"{where}: missing field {path!r}")
        node = node[key]
    if not isinstance(node, str) or node == "":
        raise InstrumentError(f"{where}: field {path!r} must be a non-empty string, got {node!r}")
    return node


def _decimal(name: str, value: str) -> Decimal:
    if not isinstance(value, str) or not _DECIMAL_RE.fullmatch(value):
        raise InstrumentError(f"{name}: expected a non-negative decimal string, got {value!r}")
    try:
        return Decimal(value)
    except InvalidOperation as e:  # pragma: no cover - the regex already excludes this
        raise InstrumentError(f"{name}: malformed decimal {value!r}") from e


@dataclass(frozen=True)
class Instrument:
    """Trading rules of one symbol, as integer scales.

    Parameters
    ----------
    symbol : str
        Exchange symbol, e.g. ``"BTCUSDT"``.
    category : {"linear", "spot"}
        Bybit v5 category.
    tick_size : str
        Price step as Bybit writes it (``"0.10"``); its decimals set the price format.
    lot_size : str
        Quantity step (linear ``qtyStep``, spot ``basePrecision``).
    min_qty_lots : int
        Smallest order quantity in lots (>= 1).
    max_qty_lots : int
        Largest limit-order quantity in lots.
    min_notional : Decimal
        Smallest order value ``price * qty`` in quote currency (0 for none).

    Raises
    ------
    InstrumentError
        If a field is malformed or inconsistent (``max_qty_lots < min_qty_lots``).

    Examples
    --------
    >>> ins = Instrument("BTCUSDT", "linear", "0.10", "0.001", 1, 1_190_000, Decimal("5"))
    >>> ins.price_ticks("65114.2"), ins.price_str(651142), ins.qty_str(1500)
    (651142, '65114.20', '1.500')
    """

    symbol: str
    category: Category
    tick_size: str
    lot_size: str
    min_qty_lots: int
    max_qty_lots: int
    min_notional: Decimal
    # obcore's exact grids: the one decimal parser and formatter of the project.
    _price: obcore.Scale = field(init=False, repr=False, compare=False)
    _qty: obcore.Scale = field(init=False, repr=False, compare=False)
    # Derived integer scales: price = ticks * _tick_units / 10**_price_decimals.
    _tick_units: int = field(init=False, repr=False, compare=False)
    _price_decimals: int = field(init=False, repr=False, compare=False)
    _lot_units: int = field(init=False, repr=False, compare=False)
    _qty_decimals: int = field(init=False, repr=False, compare=False)
    # min lots at price p = ceil(_mn_num / (p * _mn_den)), all integers (hot path of quoting).
    _mn_num: int = field(init=False, repr=False, compare=False)
    _mn_den: int = field(init=False, repr=False, compare=False)
    # At or above this price the minimum notional needs no more than min_qty_lots.
    _mn_free_ticks: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, str) or not self.symbol:
            raise InstrumentError(f"symbol: expected a non-empty string, got {self.symbol!r}")
        if self.category not in ("linear", "spot"):
            raise InstrumentError(
                f"{self.symbol}: category must be 'linear' or 'spot', got {self.category!r}"
            )
        price = _grid(f"{self.symbol} tick_size", self.tick_size, True)
        qty = _grid(f"{self.symbol} lot_size", self.lot_size, False)
        for name in ("min_qty_lots", "max_qty_lots"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise InstrumentError(f"{self.symbol} {name}: expected an int >= 1, got {v!r}")
        if self.max_qty_lots < self.min_qty_lots:
            raise InstrumentError(
                f"{self.symbol}: max_qty_lots {self.max_qty_lots} < "
                f"min_qty_lots {self.min_qty_lots}"
            )
        mn = self.min_notional
        if not isinstance(mn, Decimal) or not mn.is_finite() or mn < 0:
            raise InstrumentError(
                f"{self.symbol} min_notional: expected a finite Decimal >= 0, got {mn!r}"
            )
        set_ = object.__setattr__
        set_(self, "_price", price)
        set_(self, "_qty", qty)
        # The written decimals ("0.10" -> 2) set the outgoing format, like priceScale.
        price_dec, qty_dec = price.decimals, qty.decimals
        set_(self, "_tick_units", int(Decimal(self.tick_size).scaleb(price_dec)))
        set_(self, "_price_decimals", price_dec)
        set_(self, "_lot_units", int(Decimal(self.lot_size).scaleb(qty_dec)))
        set_(self, "_qty_decimals", qty_dec)
        # price*lots*lot >= N/D  <=>  lots >= N*10**(pd+qd) / (D * p * tick_units * lot_units)
        n, d = self.min_notional.as_integer_ratio()
        set_(self, "_mn_num", n * 10 ** (price_dec + qty_dec))
        set_(self, "_mn_den", d * self._tick_units * self._lot_units)
        # ceil(N / (p * D)) <= m  <=>  p >= N / (m * D)
        set_(self, "_mn_free_ticks", -(-self._mn_num // (self.min_qty_lots * self._mn_den)))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_bybit(cls, category: str, info: dict[str, Any]) -> Instrument:
        """Build from one element of ``get_instruments_info``'s ``result.list``.

        Linear reads ``priceFilter.tickSize`` and ``lotSizeFilter.{qtyStep, minOrderQty,
        maxOrderQty, minNotionalValue}``. Spot has no qtyStep or minNotionalValue: it reads
        ``basePrecision`` as the step, ``minOrderAmt`` as the min notional and
        ``maxLimitOrderQty`` as the max; its deprecated ``minOrderQty`` is ignored, so the
        minimum quantity is one step (min notional still applies).

        Raises
        ------
        InstrumentError
            For an unsupported category or a missing/malformed field (the message names it).
        """
        if not isinstance(info, dict):
            raise InstrumentError(f"instrument info must be a dict, got {type(info).__name__}")
        symbol = info.get("symbol")
        where = f"{category} instrument {symbol!r}"
        if not isinstance(symbol, str) or not symbol:
            raise InstrumentError(f"{where}: missing field 'symbol'")
        tick = _field(info, "priceFilter.tickSize", where)
        if category == "linear":
            step = _field(info, "lotSizeFilter.qtyStep", where)
            min_qty = _field(info, "lotSizeFilter.minOrderQty", where)
            max_qty = _field(info, "lotSizeFilter.maxOrderQty", where)
            min_notional = _decimal(
                f"{where} minNotionalValue", _field(info, "lotSizeFilter.minNotionalValue", where)
            )
        elif category == "spot":
            step = _field(info, "lotSizeFilter.basePrecision", where)
            min_qty = step
            max_qty = _field(info, "lotSizeFilter.maxLimitOrderQty", where)
            min_notional = _decimal(
                f"{where} minOrderAmt", _field(info, "lotSizeFilter.minOrderAmt", where)
            )
        else:
            raise InstrumentError(f"{where}: category must be 'linear' or 'spot'")
        cat: Category = "linear" if category == "linear" else "spot"  # checked just above
        return cls.from_rules(symbol, cat, tick, step, min_qty, max_qty, min_notional)

    @classmethod
    def from_rules(
        cls,
        symbol: str,
        category: Category,
        tick_size: str,
        lot_size: str,
        min_qty: str,
        max_qty: str,
        min_notional: Decimal | str,
    ) -> Instrument:
        """Build from decimal-string rules; quantities are in base units, not lots.

        A ``min_qty`` that is not a whole number of lots rounds up, a ``max_qty`` down.

        Raises
        ------
        InstrumentError
            For a malformed value (the message names it).
        """
        where = f"{category} instrument {symbol!r}"
        step = Fraction(_decimal(f"{where} qty step", lot_size))
        if step <= 0:
            raise InstrumentError(f"{where}: qty step must be positive, got {lot_size!r}")
        min_lots = max(1, math.ceil(Fraction(_decimal(f"{where} min qty", min_qty)) / step))
        max_lots = math.floor(Fraction(_decimal(f"{where} max qty", max_qty)) / step)
        if not isinstance(min_notional, Decimal):
            min_notional = _decimal(f"{where} min notional", min_notional)
        return cls(symbol, category, tick_size, lot_size, min_lots, max_lots, min_notional)

    # ------------------------------------------------------------------ conversions
    def price_str(self, ticks: int) -> str:
        """Return the exchange price string for ``ticks`` (e.g. 651142 -> ``"65114.20"``)."""
        return _format(self._price, ticks)

    def qty_str(self, lots: int) -> str:
        """Return the exchange quantity string for ``lots`` (e.g. 1500 -> ``"1.500"``)."""
        return _format(self._qty, lots)

    def price_ticks(self, s: str) -> int:
        """Parse a price string into ticks exactly.

        Raises
        ------
        InstrumentError
            If ``s`` is malformed, negative, off the tick grid, or overflows int64.
        """
        return _parse(self._price, f"{self.symbol} price", s)

    def qty_lots(self, s: str) -> int:
        """Parse a quantity string into lots exactly (same errors as :meth:`price_ticks`)."""
        return _parse(self._qty, f"{self.symbol} qty", s)

    def price(self, ticks: int) -> Decimal:
        """Return the price of ``ticks`` as an exact Decimal."""
        return Decimal(self.price_str(ticks))

    def qty(self, lots: int) -> Decimal:
        """Return the quantity of ``lots`` as an exact Decimal."""
        return Decimal(self.qty_str(lots))

    def notional(self, ticks: int, lots: int) -> Decimal:
        """Return ``price * qty`` in quote currency, exactly."""
        units = ticks * self._tick_units * lots * self._lot_units
        return Decimal(f"{units}E-{self._price_decimals + self._qty_decimals}")

    def min_lots_at(self, price_ticks: int) -> int:
        """Return the smallest valid order size (lots) at ``price_ticks``.

        It honours both ``min_qty_lots`` and ``min_notional``
        (``price * lots * lot_size >= min_notional``).

        Raises
        ------
        InstrumentError
            If ``price_ticks`` is not positive.
        """
        if price_ticks <= 0:
            raise InstrumentError(f"{self.symbol}: price_ticks must be positive, got {price_ticks}")
        if price_ticks >= self._mn_free_ticks:
            return self.min_qty_lots
        return max(self.min_qty_lots, -(-self._mn_num // (price_ticks * self._mn_den)))

    def new_book(self, kind: str | None = None, max_depth: int = 0) -> obcore.Book:
        """Return an empty ``obcore.Book`` on this instrument's tick and lot scales."""
        return obcore.Book(
            tick_size=self.tick_size, lot_size=self.lot_size, kind=kind, max_depth=max_depth
        )


def instruments_from_response(response: dict[str, Any]) -> dict[str, Instrument]:
    """Return every instrument of a whole ``get_instruments_info`` response, by symbol.

    Raises
    ------
    InstrumentError
        If the response is not a successful v5 response with ``result.category`` and
        ``result.list``.
    """
    if not isinstance(response, dict) or response.get("retCode", 0) != 0:
        raise InstrumentError(f"not a successful instruments-info response: {response!r:.200}")
    result = response.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("list"), list):
        raise InstrumentError("instruments-info response has no result.list")
    # a missing category is reported by from_bybit, naming the instrument ("None instrument ...")
    category = str(result.get("category"))
    return {ins.symbol: ins for ins in (Instrument.from_bybit(category, i) for i in result["list"])}
