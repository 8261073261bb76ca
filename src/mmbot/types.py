"""Plain trading types shared by every part of mmbot: sides, order states, requests,
venue reports and events, and the Bybit retCodes callers branch on.

Everything here is exchange-agnostic and free of I/O: prices are integer ticks and sizes
integer lots of one instrument; a venue converts to and from the exchange's decimal
strings. Money (fees, rates, prices) is ``Decimal``, never float.

Event model
-----------
Requests (place/amend/cancel and their batch forms) never block on the exchange's answer.
They return once the request is handed over; the outcome arrives later as events:

* :class:`OrderEvent` -- the venue's view of one order after a change (Bybit ``order``
  stream): ``New``, ``PartiallyFilled``, ``Filled``, ``Cancelled``, ``Rejected``.
* :class:`ExecutionEvent` -- one fill (Bybit ``execution`` stream).
* :class:`PositionEvent` -- the position after a change (Bybit ``position`` stream).
* :class:`RequestError` -- a request refused as a whole (rate limit, unknown order,
  validation); the order state is unchanged by it.
* :class:`ConnectionEvent` -- the trading connection went down or came back; after
  ``connected=True`` following a drop, the order manager reconciles.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

BUY = "Buy"
SELL = "Sell"
SIDES = (BUY, SELL)


def opposite(side: str) -> str:
    """Return the other side ("Buy" <-> "Sell")."""
    if side == BUY:
        return SELL
    if side == SELL:
        return BUY
    raise ValueError(f"side must be 'Buy' or 'Sell', got {side!r}")


def side_sign(side: str) -> int:
    """Return +1 for "Buy" and -1 for "Sell"."""
    if side == BUY:
        return 1
    if side == SELL:
        return -1
    raise ValueError(f"side must be 'Buy' or 'Sell', got {side!r}")


class OrderStatus(enum.StrEnum):
    """Order status: Bybit's ``orderStatus`` values plus local in-flight states.

    The ``Pending*`` states exist only in the order manager: a request was sent and its
    outcome has not been seen yet. Venues never report them.
    """

    PENDING_NEW = "PendingNew"
    NEW = "New"
    PARTIALLY_FILLED = "PartiallyFilled"
    PENDING_AMEND = "PendingAmend"
    PENDING_CANCEL = "PendingCancel"
    FILLED = "Filled"
    CANCELLED = "Cancelled"
    REJECTED = "Rejected"

    @property
    def is_done(self) -> bool:
        """Whether the order can no longer trade."""
        return self in _DONE

    @property
    def is_pending(self) -> bool:
        """Whether a request about this order is in flight."""
        return self in _PENDING


_DONE = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED})
_PENDING = frozenset(
    {OrderStatus.PENDING_NEW, OrderStatus.PENDING_AMEND, OrderStatus.PENDING_CANCEL}
)


def _check_side(side: str) -> None:
    if side not in SIDES:
        raise ValueError(f"side must be 'Buy' or 'Sell', got {side!r}")


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A new limit (or market) order.

    Parameters
    ----------
    order_link_id : str
        Client order id (Bybit ``orderLinkId``, at most 36 characters, unique per order).
    symbol : str
    side : str
        "Buy" or "Sell".
    price_ticks : int
        Limit price in ticks (ignored for ``order_type="Market"``).
    qty_lots : int
        Size in lots, > 0.
    post_only : bool
        Maker only: a post-only order that would take liquidity is cancelled by the venue.
    reduce_only : bool
    order_type : str
        "Limit" or "Market".
    """

    order_link_id: str
    symbol: str
    side: str
    price_ticks: int
    qty_lots: int
    post_only: bool = True
    reduce_only: bool = False
    order_type: str = "Limit"

    def __post_init__(self) -> None:
        _check_side(self.side)
        if not self.order_link_id or len(self.order_link_id) > 36:
            raise ValueError(f"order_link_id must be 1..36 characters, got {self.order_link_id!r}")
        if self.order_type not in ("Limit", "Market"):
            raise ValueError(f"order_type must be 'Limit' or 'Market', got {self.order_type!r}")
        if self.qty_lots <= 0:
            raise ValueError(f"qty_lots must be > 0, got {self.qty_lots}")
        if self.order_type == "Limit" and self.price_ticks <= 0:
            raise ValueError(f"price_ticks must be > 0 for a limit order, got {self.price_ticks}")
        if self.post_only and self.order_type == "Market":
            raise ValueError("a market order cannot be post_only")


@dataclass(frozen=True, slots=True)
class AmendRequest:
    """Change the price and/or size of a live order (``None`` keeps the current value).

    ``qty_lots`` is the new *total* order size (Bybit semantics), not the remaining size.
    ``order_id`` (the venue's id) may be given instead of or with ``order_link_id``.
    """

    order_link_id: str
    symbol: str
    price_ticks: int | None = None
    qty_lots: int | None = None
    order_id: str = ""

    def __post_init__(self) -> None:
        if self.price_ticks is None and self.qty_lots is None:
            raise ValueError("an amend must change price_ticks or qty_lots")
        if self.price_ticks is not None and self.price_ticks <= 0:
            raise ValueError(f"price_ticks must be > 0, got {self.price_ticks}")
        if self.qty_lots is not None and self.qty_lots <= 0:
            raise ValueError(f"qty_lots must be > 0, got {self.qty_lots}")


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """Cancel one order by client order id (or by the venue's ``order_id`` when it has none)."""

    order_link_id: str
    symbol: str
    order_id: str = ""

    def __post_init__(self) -> None:
        if not self.order_link_id and not self.order_id:
            raise ValueError("a cancel needs order_link_id or order_id")


@dataclass(frozen=True, slots=True)
class Order:
    """The state of one order as a venue reports it (an immutable snapshot).

    ``qty_lots`` is the total order size, ``filled_lots`` Bybit's ``cumExecQty``;
    ``leaves_lots`` is what can still trade (0 once the order is done).
    """

    order_id: str
    order_link_id: str
    symbol: str
    side: str
    price_ticks: int
    qty_lots: int
    filled_lots: int
    status: OrderStatus
    post_only: bool = True
    created_ms: int = 0
    updated_ms: int = 0
    reject_reason: str = ""
    order_type: str = "Limit"
    reduce_only: bool = False

    @property
    def leaves_lots(self) -> int:
        """Lots still able to trade."""
        if self.status.is_done:
            return 0
        return self.qty_lots - self.filled_lots

    def with_changes(self, **changes: Any) -> Order:
        """Return a copy with fields replaced."""
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Execution:
    """One execution: a fill of one of our orders, or a cash or position event of the
    account that the exchange reports the same way.

    ``fee`` is an exact Decimal in the quote currency, positive when paid and negative for
    a rebate (Bybit ``execFee``); ``fee_rate`` is the rate it was charged at.
    ``leaves_lots`` is the order's remaining size after this fill, or None when the venue
    does not say (Bybit's ``execution.fast`` stream).

    ``exec_type`` is Bybit's ``execType``:

    - ``"Trade"``: a fill of our order; moves position, cash and fees.
    - ``"AdlTrade"`` (auto-deleveraging) and ``"BustTrade"`` (liquidation): the exchange
      closed part of the position with an order of its own; they move position and cash
      like a trade (the order is not one of ours).
    - ``"Funding"``: a perpetual's funding payment; ``fee`` is the amount paid (negative
      when received); the position does not change.

    ``seq`` is the venue's sequence number of the change (Bybit ``seq``; 0 when unknown).
    """

    exec_id: str
    order_id: str
    order_link_id: str
    symbol: str
    side: str
    price_ticks: int
    qty_lots: int
    fee: Decimal
    fee_rate: Decimal
    is_maker: bool
    exec_ms: int
    leaves_lots: int | None = None
    exec_type: str = "Trade"
    seq: int = 0

    @property
    def moves_position(self) -> bool:
        """Whether this execution changes the position (every type but funding)."""
        return self.exec_type != EXEC_FUNDING


@dataclass(frozen=True, slots=True)
class Position:
    """Net position in lots (> 0 long, < 0 short) and its exact average entry price.

    ``seq`` is the venue's sequence number of the change that produced it (Bybit's
    position ``seq``; 0 when unknown): of two reports, the higher ``seq`` is newer.
    """

    symbol: str
    size_lots: int = 0
    avg_entry_price: Decimal = Decimal(0)
    updated_ms: int = 0
    seq: int = 0


# ---------------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """The venue reports a new state for an order."""

    order: Order
    ts_ms: int


@dataclass(frozen=True, slots=True)
class ExecutionEvent:
    """The venue reports a fill."""

    execution: Execution
    ts_ms: int


@dataclass(frozen=True, slots=True)
class PositionEvent:
    """The venue reports the position after a change."""

    position: Position
    ts_ms: int


@dataclass(frozen=True, slots=True)
class RequestError:
    """A request was refused as a whole; the order (if any) is unchanged.

    ``op`` is "create", "amend", "cancel" or "cancel_all"; ``code`` the venue's error
    code (Bybit retCode, e.g. 10006 rate limit, 110001 order does not exist).
    """

    op: str
    order_link_id: str
    code: int
    message: str
    ts_ms: int


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    """The trading connection changed state."""

    connected: bool
    reason: str
    ts_ms: int


VenueEvent = OrderEvent | ExecutionEvent | PositionEvent | RequestError | ConnectionEvent
EventHandler = Callable[[VenueEvent], None]

#: Bybit ``execType`` values that move money (see :class:`Execution`)
EXEC_TRADE = "Trade"
EXEC_ADL = "AdlTrade"
EXEC_BUST = "BustTrade"
EXEC_FUNDING = "Funding"
EXEC_TYPES = (EXEC_TRADE, EXEC_ADL, EXEC_BUST, EXEC_FUNDING)

# Bybit retCodes a venue should use for the same situations so callers can branch on them.
ERR_RATE_LIMIT = 10006
ERR_ORDER_NOT_FOUND = 110001
ERR_PARAMS = 10001
ERR_DUPLICATE_LINK_ID = 110072
ERR_QTY_INVALID = 110017


__all__ = [
    "BUY",
    "SELL",
    "SIDES",
    "opposite",
    "side_sign",
    "OrderStatus",
    "OrderRequest",
    "AmendRequest",
    "CancelRequest",
    "Order",
    "Execution",
    "Position",
    "OrderEvent",
    "ExecutionEvent",
    "PositionEvent",
    "RequestError",
    "ConnectionEvent",
    "VenueEvent",
    "EventHandler",
    "EXEC_TRADE",
    "EXEC_ADL",
    "EXEC_BUST",
    "EXEC_FUNDING",
    "EXEC_TYPES",
    "ERR_RATE_LIMIT",
    "ERR_ORDER_NOT_FOUND",
    "ERR_PARAMS",
    "ERR_DUPLICATE_LINK_ID",
    "ERR_QTY_INVALID",
]
