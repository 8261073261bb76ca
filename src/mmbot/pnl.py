"""Position and PnL accounting: average cost on a signed position, exact Decimal money.

Conventions (quote currency, e.g. USDT):

- ``realized``: trading PnL of closed quantity, gross of fees, average-cost method. A fill
  that reduces the position realizes ``closed * (price - avg_entry)`` (sign-adjusted for
  shorts); a fill through zero closes the old position and opens the rest at its price.
- ``unrealized(mark)``: ``position * mark - cost_basis``.
- ``fees``: fees paid; a negative fee is a rebate, so ``fees`` may go negative.
- ``funding``: a perpetual's funding paid (negative when received); moves no position.
- ``net = realized + unrealized - fees - funding``, which equals the mark-to-market of the
  cash flows of all fills and funding (``sum(-signed_qty * price) - fees - funding +
  position * mark``) exactly.

A mark is given in ticks, as an ``int`` or an exact ``Decimal`` (a venue's mark price or a
mid need not sit on a tick).

All sums are exact Decimals: prices and quantities come from integer ticks/lots through
the instrument, and the only division (the cost removed by a partial close) is rounded to
``COST_QUANTUM`` when it does not terminate; the rounding residue stays in the cost basis,
so it is realized when the position closes and the identity above holds to the last digit.

Public API
----------
PnLTracker, COST_QUANTUM, as_decimal.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact, localcontext
from typing import Any

from mmbot.instrument import Instrument
from mmbot.types import EXEC_FUNDING

__all__ = ["COST_QUANTUM", "PnLTracker", "as_decimal", "format_money"]

COST_QUANTUM = Decimal("1e-12")
_ZERO = Decimal(0)
# Exact context: every +, -, * here must be exact; Inexact turns a silent rounding into an error.
_EXACT = Context(prec=80, traps=[Inexact])
_ROUNDING = Context(prec=80, rounding=ROUND_HALF_EVEN)


def as_decimal(name: str, v: Decimal | str | float | int) -> Decimal:
    """Return ``v`` as a finite Decimal; a float is read as its shortest repr, not its binary
    expansion (``0.1`` -> ``Decimal('0.1')``).

    Raises
    ------
    TypeError, ValueError
        For a non-number or a non-finite value (the message starts with ``name``).
    """
    if isinstance(v, Decimal):
        d = v
    elif isinstance(v, bool):
        raise TypeError(f"{name}: expected a number, got bool")
    elif isinstance(v, float):
        d = Decimal(repr(v))  # the shortest decimal that round-trips, not the binary expansion
    elif isinstance(v, int | str):
        d = Decimal(v)
    else:
        raise TypeError(f"{name}: expected Decimal, str, int or float, got {type(v).__name__}")
    if not d.is_finite():
        raise ValueError(f"{name}: must be finite, got {v!r}")
    return d


def format_money(value: Decimal | int) -> str:
    """Return money as an exact plain decimal string: no exponent, no trailing zeros, never
    rounded (reports add up digit for digit).

    >>> format_money(Decimal("-0.000600000")), format_money(Decimal("12.5")), format_money(0)
    ('-0.0006', '12.5', '0')
    """
    if not isinstance(value, Decimal | int) or isinstance(value, bool):
        raise TypeError(f"money must be Decimal or int, got {type(value).__name__}")
    with localcontext(_EXACT):
        return format(Decimal(value).normalize() + 0, "f")


def _div(num: Decimal, den: Decimal | int) -> Decimal:
    """Return ``num / den``, exact when it terminates, else rounded to COST_QUANTUM."""
    try:
        with localcontext(_EXACT):
            return num / den
    except Inexact:
        with localcontext(_ROUNDING):
            return (num / den).quantize(COST_QUANTUM)


class PnLTracker:
    """Track position, realized/unrealized PnL, fees and turnover from fills.

    Parameters
    ----------
    instrument : Instrument
        Converts ticks/lots to exact prices/quantities.
    maker_fee_rate, taker_fee_rate : Decimal, str or float
        Fee as a fraction of notional (``"0.0002"`` = 2 bps); negative is a rebate.

    Examples
    --------
    >>> from decimal import Decimal
    >>> ins = Instrument("X", "linear", "1", "1", 1, 10**6, Decimal(0))
    >>> t = PnLTracker(ins, "0", "0")
    >>> t.on_fill("Buy", 100, 2); t.on_fill("Sell", 110, 1)
    True
    True
    >>> t.realized, t.unrealized(120), t.position_lots
    (Decimal('10'), Decimal('20'), 1)
    """

    def __init__(
        self,
        instrument: Instrument,
        maker_fee_rate: Decimal | str | float = Decimal(0),
        taker_fee_rate: Decimal | str | float = Decimal(0),
    ) -> None:
        self.instrument = instrument
        self.maker_fee_rate = as_decimal("maker_fee_rate", maker_fee_rate)
        self.taker_fee_rate = as_decimal("taker_fee_rate", taker_fee_rate)
        # Value of one tick times one lot, in quote currency (exact).
        self._unit = instrument.notional(1, 1)
        self.position_lots = 0
        self.cost_basis = _ZERO  # signed: paid for a long (> 0), received for a short (< 0)
        self.realized = _ZERO
        self.fees = _ZERO
        self.funding = _ZERO
        self.turnover = _ZERO
        self.cash = _ZERO  # sum of -signed notional - fees, for the mark-to-market check
        self.volume_lots = 0
        self.fill_count = 0
        self.maker_fills = 0
        self.max_abs_position_lots = 0
        self._seen: set[str] = set()

    # ------------------------------------------------------------------ updates
    def on_fill(
        self,
        side: str,
        price_ticks: int,
        qty_lots: int,
        *,
        is_maker: bool = True,
        fee: Decimal | str | float | None = None,
        fill_id: str | None = None,
    ) -> bool:
        """Apply one fill. Return False (and change nothing) for a repeated ``fill_id``.

        Parameters
        ----------
        side : {"Buy", "Sell"}
        price_ticks, qty_lots : int
            Fill price and size (both > 0).
        is_maker : bool
            Selects the fee rate when ``fee`` is None.
        fee : Decimal, str or float, optional
            The venue's fee for this fill (quote currency, negative = rebate); computed as
            ``notional * rate`` when omitted.
        fill_id : str, optional
            Venue execution id; a second fill with the same id is ignored.

        Raises
        ------
        ValueError
            For a bad side, a non-positive price or size.
        """
        if side == "Buy":
            signed = qty_lots
        elif side == "Sell":
            signed = -qty_lots
        else:
            raise ValueError(f"side must be 'Buy' or 'Sell', got {side!r}")
        if not isinstance(price_ticks, int) or price_ticks <= 0:
            raise ValueError(f"price_ticks must be a positive int, got {price_ticks!r}")
        if not isinstance(qty_lots, int) or qty_lots <= 0:
            raise ValueError(f"qty_lots must be a positive int, got {qty_lots!r}")
        if fill_id is not None and fill_id in self._seen:
            return False
        fee_d = None if fee is None else as_decimal("fee", fee)
        with localcontext(_EXACT):
            price_unit = self._unit * price_ticks  # value of one lot at this price
            notional = price_unit * qty_lots
            if fee_d is None:
                fee_d = notional * (self.maker_fee_rate if is_maker else self.taker_fee_rate)
            pos = self.position_lots
            if pos == 0 or (pos > 0) == (signed > 0):
                self.cost_basis += price_unit * signed
                pos += signed
            else:
                abs_pos = pos if pos > 0 else -pos
                closed = qty_lots if qty_lots < abs_pos else abs_pos
                if closed == abs_pos:
                    removed = self.cost_basis
                else:
                    removed = _div(self.cost_basis * closed, abs_pos)
                sign = 1 if pos > 0 else -1
                self.realized += price_unit * (sign * closed) - removed
                self.cost_basis -= removed
                pos -= sign * closed
                rest = qty_lots - closed
                if rest:
                    pos = rest if signed > 0 else -rest
                    self.cost_basis = price_unit * pos
            self.position_lots = pos
            self.fees += fee_d
            self.turnover += notional
            self.cash += -price_unit * signed - fee_d
        self.volume_lots += qty_lots
        self.fill_count += 1
        self.maker_fills += bool(is_maker)
        if abs(pos) > self.max_abs_position_lots:
            self.max_abs_position_lots = abs(pos)
        if fill_id is not None:
            self._seen.add(fill_id)
        return True

    def on_execution(self, x: Any) -> bool:
        """Apply an execution (``Execution``-like: ``exec_type, side, price_ticks, qty_lots,
        is_maker, fee, exec_id``): funding as cash, every other type as a fill. Return False
        for a repeated ``exec_id``."""
        if x.exec_type == EXEC_FUNDING:
            return self.on_funding(x.fee, x.exec_id)
        return self.on_fill(
            x.side, x.price_ticks, x.qty_lots, is_maker=x.is_maker, fee=x.fee, fill_id=x.exec_id
        )

    def on_funding(self, amount: Decimal | str | int, funding_id: str | None = None) -> bool:
        """Apply a funding payment (paid > 0, received < 0). Return False (and change
        nothing) for a repeated ``funding_id``."""
        if funding_id is not None and funding_id in self._seen:
            return False
        amount_d = as_decimal("funding", amount)
        with localcontext(_EXACT):
            self.funding += amount_d
            self.cash -= amount_d
        if funding_id is not None:
            self._seen.add(funding_id)
        return True

    # ------------------------------------------------------------------ reads
    def unrealized(self, mark_ticks: int | Decimal | None) -> Decimal:
        """Return ``position * mark - cost_basis``.

        0 when flat; also 0 when ``mark_ticks`` is None (no book yet), so callers that need
        to tell "no mark" apart must check the mark themselves.
        """
        if self.position_lots == 0 or mark_ticks is None:
            return _ZERO
        with localcontext(_EXACT):
            return self._unit * mark_ticks * self.position_lots - self.cost_basis

    def net(self, mark_ticks: int | Decimal | None) -> Decimal:
        """Return ``realized + unrealized - fees - funding``."""
        with localcontext(_EXACT):
            return self.realized + self.unrealized(mark_ticks) - self.fees - self.funding

    def avg_entry_price(self) -> Decimal | None:
        """Return the average entry price (quote per base), or None when flat."""
        if self.position_lots == 0:
            return None
        with localcontext(_EXACT):
            qty = self.instrument.qty(1) * self.position_lots
        return _div(self.cost_basis, qty)

    def seen(self, fill_id: str) -> bool:
        """Return True if a fill with this id was applied."""
        return fill_id in self._seen

    def snapshot(self, mark_ticks: int | Decimal | None, now_ms: int) -> dict[str, Any]:
        """Return the current state as a flat dict (Decimals for money, ints otherwise).

        Keys: ``ts_ms, position_lots, mark_ticks, realized, unrealized, fees, funding, net,
        turnover, volume_lots, fills, maker_fills, max_abs_position_lots, avg_entry_price``.
        """
        unrealized = self.unrealized(mark_ticks)
        with localcontext(_EXACT):
            net = self.realized + unrealized - self.fees - self.funding
        return {
            "ts_ms": now_ms,
            "position_lots": self.position_lots,
            "mark_ticks": mark_ticks,
            "realized": self.realized,
            "unrealized": unrealized,
            "fees": self.fees,
            "funding": self.funding,
            "net": net,
            "turnover": self.turnover,
            "volume_lots": self.volume_lots,
            "fills": self.fill_count,
            "maker_fills": self.maker_fills,
            "max_abs_position_lots": self.max_abs_position_lots,
            "avg_entry_price": self.avg_entry_price(),
        }
