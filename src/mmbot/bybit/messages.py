"""Bybit v5 private-stream and REST shapes to :mod:`mmbot.types`, and the status tables.

Every function takes one element of a push's ``data`` array (or of a REST ``result.list``)
and the instrument that converts its decimal strings to ticks and lots exactly.
"""

from __future__ import annotations

import time
from decimal import Decimal

from mmbot.instrument import Instrument
from mmbot.types import EXEC_TRADE, Execution, Order, OrderStatus, Position

__all__ = ["ORDER_STATUS", "order_from_bybit", "execution_from_bybit", "position_from_bybit"]

#: Bybit ``orderStatus`` -> our status
ORDER_STATUS = {
    "New": OrderStatus.NEW,
    "PartiallyFilled": OrderStatus.PARTIALLY_FILLED,
    "Filled": OrderStatus.FILLED,
    "Cancelled": OrderStatus.CANCELLED,
    "Rejected": OrderStatus.REJECTED,
    # Bybit's other terminal states are cancellations from our point of view.
    "PartiallyFilledCanceled": OrderStatus.CANCELLED,
    "Deactivated": OrderStatus.CANCELLED,
    "Untriggered": OrderStatus.NEW,
    "Triggered": OrderStatus.NEW,
}


def order_from_bybit(d: dict, inst: Instrument) -> Order:
    """Return the :class:`Order` of one ``order`` push item or REST order."""
    price = d.get("price") or "0"
    status = ORDER_STATUS.get(d.get("orderStatus", ""))
    if status is None:
        raise ValueError(f"unknown orderStatus {d.get('orderStatus')!r} for {d.get('orderId')}")
    reason = d.get("rejectReason") or ""
    return Order(
        order_id=d["orderId"],
        order_link_id=d.get("orderLinkId") or "",
        symbol=d["symbol"],
        side=d["side"],
        price_ticks=inst.price_ticks(price) if price != "0" else 0,
        qty_lots=inst.qty_lots(d["qty"]),
        filled_lots=inst.qty_lots(d.get("cumExecQty") or "0"),
        status=status,
        post_only=d.get("timeInForce") == "PostOnly",
        created_ms=int(d.get("createdTime") or 0),
        updated_ms=int(d.get("updatedTime") or 0),
        reject_reason="" if reason == "EC_NoError" else reason,
        order_type=d.get("orderType", "Limit"),
        reduce_only=bool(d.get("reduceOnly")),
    )


def position_from_bybit(d: dict, inst: Instrument) -> Position:
    """Return the :class:`Position` of one ``position`` push item or REST position."""
    size = inst.qty_lots(d.get("size") or "0")
    if d.get("side") == "Sell":
        size = -size
    # REST says avgPrice, the stream entryPrice
    entry = Decimal(d.get("avgPrice") or d.get("entryPrice") or "0") if size else Decimal(0)
    return Position(
        d["symbol"],
        size,
        entry,
        int(d.get("updatedTime") or time.time_ns() // 1_000_000),
        int(d.get("seq") or 0),
    )


def execution_from_bybit(d: dict, inst: Instrument, ts_ms: int) -> Execution:
    """Return the :class:`Execution` of one ``execution`` push item or REST execution."""
    return Execution(
        exec_id=d["execId"],
        order_id=d["orderId"],
        order_link_id=d.get("orderLinkId") or "",
        symbol=d["symbol"],
        side=d["side"],
        price_ticks=inst.price_ticks(d["execPrice"]),
        qty_lots=inst.qty_lots(d["execQty"]),
        fee=Decimal(d.get("execFee") or 0),
        fee_rate=Decimal(d.get("feeRate") or 0),
        is_maker=bool(d.get("isMaker")),
        exec_ms=int(d.get("execTime") or ts_ms),
        leaves_lots=inst.qty_lots(d.get("leavesQty") or "0"),
        exec_type=d.get("execType") or EXEC_TRADE,
        seq=int(d.get("seq") or 0),
    )
