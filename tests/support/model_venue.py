"""A pure-Python model of a Bybit-like venue for order-manager tests.

It is independent of the matching engine on purpose: requests wait in flight until the
test delivers them, and the venue's events wait in an outbox until the test delivers them,
in any order, so a test can reorder, delay and lose messages. The venue's own truth
(orders, position, executions, and the requests still in flight) gives the worst-case
exposure the account really has, which is what the safety invariants are checked against.

Like Bybit, the execution and position pushes of one fill share a ``seq``, REST answers
are synchronous and always current, a private-stream drop loses the pushes that were not
delivered yet, and a request that reaches the venue more than ``recv_window_ms`` after it
was sent is refused (Bybit's timestamp check, retCode 10002).

Position moves the exchange makes on its own (auto-deleveraging) are *unseen* until the
bot could know them: their execution or a later position push is delivered, or the bot
reads the position or executions over REST. ``worst_case(known_only=True)`` leaves unseen
moves out; ``seen_worst`` records the worst case at each moment a move became known.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import Decimal

from mmbot.types import (
    BUY,
    ERR_ORDER_NOT_FOUND,
    EXEC_FUNDING,
    EXEC_TRADE,
    AmendRequest,
    CancelRequest,
    ConnectionEvent,
    Execution,
    ExecutionEvent,
    Order,
    OrderEvent,
    OrderRequest,
    OrderStatus,
    Position,
    PositionEvent,
    RequestError,
)
from mmbot.venue.base import Venue

SYM = "TEST"


@dataclass
class _VOrder:
    order_id: str
    link: str
    side: str
    price: int
    qty: int
    filled: int = 0
    status: OrderStatus = OrderStatus.NEW
    created_ms: int = 0
    symbol: str = SYM

    @property
    def leaves(self) -> int:
        return 0 if self.status.is_done else self.qty - self.filled

    def snapshot(self) -> Order:
        return Order(
            self.order_id,
            self.link,
            self.symbol,
            self.side,
            self.price,
            self.qty,
            self.filled,
            self.status,
            created_ms=self.created_ms,
        )


@dataclass
class ModelVenue(Venue):
    now: int = 0
    up: bool = True
    inflight: list = field(default_factory=list)  # (op, request) not yet at the venue
    outbox: list = field(default_factory=list)  # events not yet delivered
    orders: dict = field(default_factory=dict)  # order_id -> _VOrder
    position_lots: int = 0
    seq: int = 0
    execs: list = field(default_factory=list)
    rest_cancel_alls: int = 0
    recv_window_ms: int = 5000
    unseen: dict = field(default_factory=dict)  # seq -> signed lots of an ADL
    seen_worst: list = field(default_factory=list)
    symbol: str = SYM  # the one symbol it trades

    def __post_init__(self) -> None:
        Venue.__init__(self)
        self._ids = itertools.count(1)

    # -- Venue interface ------------------------------------------------------------------
    def now_ms(self) -> int:
        return self.now

    @property
    def connected(self) -> bool:
        return self.up

    def instrument_info(self, symbol):
        return {}

    def open_orders(self, symbol):
        return [o.snapshot() for o in self.orders.values() if not o.status.is_done]

    def position(self, symbol):
        self._saw(list(self.unseen))
        return Position(self.symbol, self.position_lots, Decimal(0), self.now, self.seq)

    def order_status(self, symbol, order_link_id):
        o = self._find(order_link_id, "")
        return None if o is None else o.snapshot()

    def executions(self, symbol, start_ms):
        self._saw(list(self.unseen))
        return [x for x in self.execs if x.exec_ms >= start_ms]

    def place(self, request: OrderRequest) -> None:
        self.inflight.append(("create", request, self.now))

    def amend(self, request: AmendRequest) -> None:
        self.inflight.append(("amend", request, self.now))

    def cancel(self, request: CancelRequest) -> None:
        self.inflight.append(("cancel", request, self.now))

    def cancel_all(self, symbol: str) -> None:
        # REST: synchronous, and it only sees what has reached the venue
        self.rest_cancel_alls += 1
        for o in list(self.orders.values()):
            if not o.status.is_done:
                o.status = OrderStatus.CANCELLED
                self._push(OrderEvent(o.snapshot(), self.now))

    # -- what the test drives -------------------------------------------------------------
    def process(self, i: int = 0) -> None:
        """Let in-flight request ``i`` reach the venue."""
        op, r, sent_ms = self.inflight.pop(i)
        if self.now - sent_ms > self.recv_window_ms:
            self._push(
                RequestError(
                    op,
                    r.order_link_id,
                    10002,
                    "request expired beyond the receive window",
                    self.now,
                )
            )
            return
        if op == "create":
            o = _VOrder(
                f"v{next(self._ids)}",
                r.order_link_id,
                r.side,
                r.price_ticks,
                r.qty_lots,
                created_ms=self.now,
                symbol=self.symbol,
            )
            self.orders[o.order_id] = o
            self._push(OrderEvent(o.snapshot(), self.now))
            return
        o = self._find(r.order_link_id, r.order_id)
        if o is None:
            self._push(
                RequestError(
                    op,
                    r.order_link_id,
                    ERR_ORDER_NOT_FOUND,
                    "order not exists or too late",
                    self.now,
                )
            )
            return
        if op == "cancel":
            o.status = OrderStatus.CANCELLED
        else:
            if r.qty_lots is not None and r.qty_lots <= o.filled:
                self._push(RequestError(op, r.order_link_id, 10001, "qty below filled", self.now))
                return
            o.price = r.price_ticks if r.price_ticks is not None else o.price
            o.qty = r.qty_lots if r.qty_lots is not None else o.qty
        self._push(OrderEvent(o.snapshot(), self.now))

    def fill(self, order_id: str, lots: int, *, position_first: bool = False) -> None:
        """Fill ``lots`` of a live order; ``position_first`` pushes the position ahead of
        the execution (a reordering Bybit's separate topics allow)."""
        o = self.orders[order_id]
        lots = min(lots, o.leaves)
        if lots <= 0:
            return
        o.filled += lots
        if o.filled == o.qty:
            o.status = OrderStatus.FILLED
        else:
            o.status = OrderStatus.PARTIALLY_FILLED
        self._book(
            EXEC_TRADE, o.side, o.price, lots, o.order_id, o.link, o.leaves, position_first, order=o
        )

    def adl(self, lots: int) -> None:
        """The exchange closes ``lots`` of the position (auto-deleveraging)."""
        lots = min(lots, abs(self.position_lots))
        if lots:
            side = "Sell" if self.position_lots > 0 else BUY
            self.unseen[self.seq + 1] = lots if side == BUY else -lots
            self._book("AdlTrade", side, 1000, lots, f"adl{self.seq}", "", 0, False)

    def funding(self, amount: str) -> None:
        self.seq += 1
        x = Execution(
            f"x{self.seq}",
            "",
            "",
            self.symbol,
            BUY,
            1000,
            max(abs(self.position_lots), 1),
            Decimal(amount),
            Decimal("0.0001"),
            False,
            self.now,
            None,
            EXEC_FUNDING,
            self.seq,
        )
        self.execs.append(x)
        self._push(ExecutionEvent(x, self.now))

    def deliver(self, i: int = 0) -> None:
        """Deliver outbox event ``i`` to the venue's handler."""
        event = self.outbox.pop(i)
        if isinstance(event, ExecutionEvent):
            self._saw([event.execution.seq])
        elif isinstance(event, PositionEvent):
            self._saw([s for s in self.unseen if s <= event.position.seq])
        self.emit(event)

    def deliver_all(self) -> None:
        while self.outbox:
            self.deliver(0)

    def drop(self) -> None:
        """The private and trade sockets drop: undelivered pushes are lost."""
        self.up = False
        self.outbox.clear()
        self.emit(ConnectionEvent(False, "private stream disconnected", self.now))

    def reconnect(self) -> None:
        self.up = True
        self.emit(ConnectionEvent(True, "reconnected", self.now))

    # -- truth ----------------------------------------------------------------------------
    def worst_case(self, *, known_only: bool = False) -> tuple[int, int]:
        """(long, short) worst case: position plus every buy (sell) that could still fill,
        requests in flight included; ``known_only`` leaves out unseen ADL moves."""
        buys = sum(o.leaves for o in self.orders.values() if o.side == BUY)
        sells = sum(o.leaves for o in self.orders.values() if o.side != BUY)
        # an amend sets the size absolutely: an order may end at its largest pending size
        amended: dict[str, int] = {}
        for op, r, sent_ms in self.inflight:
            if self.now - sent_ms > self.recv_window_ms:
                continue  # it can only be refused now
            if op == "create":
                if r.side == BUY:
                    buys += r.qty_lots
                else:
                    sells += r.qty_lots
            elif op == "amend" and r.qty_lots is not None:
                o = self._find(r.order_link_id, r.order_id)
                if o is not None and not o.status.is_done:
                    amended[o.order_id] = max(amended.get(o.order_id, o.qty), r.qty_lots)
        for order_id, qty in amended.items():
            o = self.orders[order_id]
            if o.side == BUY:
                buys += qty - o.qty
            else:
                sells += qty - o.qty
        pos = self.position_lots - (sum(self.unseen.values()) if known_only else 0)
        return pos + buys, pos - sells

    def live(self) -> list[_VOrder]:
        return [o for o in self.orders.values() if not o.status.is_done]

    # -- internals ------------------------------------------------------------------------
    def _find(self, link: str, order_id: str) -> _VOrder | None:
        for o in self.orders.values():
            if (order_id and o.order_id == order_id) or (link and o.link == link):
                return o
        return None

    def _saw(self, seqs) -> None:
        seqs = [s for s in seqs if s in self.unseen]
        if seqs:
            for s in seqs:
                del self.unseen[s]
            self.seen_worst.append(self.worst_case(known_only=True))

    def _push(self, event) -> None:
        if self.up:
            self.outbox.append(event)

    def _book(
        self, exec_type, side, price, lots, order_id, link, leaves, position_first, order=None
    ):
        self.seq += 1
        self.position_lots += lots if side == BUY else -lots
        x = Execution(
            f"x{self.seq}",
            order_id,
            link,
            self.symbol,
            side,
            price,
            lots,
            Decimal("0.01") * lots,
            Decimal("0.0002"),
            True,
            self.now,
            leaves,
            exec_type,
            self.seq,
        )
        self.execs.append(x)
        pos = PositionEvent(
            Position(self.symbol, self.position_lots, Decimal(0), self.now, self.seq), self.now
        )
        events = [ExecutionEvent(x, self.now)]
        if order is not None:
            events.append(OrderEvent(order.snapshot(), self.now))
        if position_first:
            events.insert(0, pos)
        else:
            events.append(pos)
        for ev in events:
            self._push(ev)
