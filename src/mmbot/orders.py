"""Order manager: turns desired quotes into as few venue requests as possible, safely.

Each desired :class:`~mmbot.strategy.base.Quote` fills a *slot* ``(side, level)``; a slot
holds at most one working order, so the bot never double-quotes a level. On every
:meth:`OrderManager.update` the desired quotes are diffed against the working orders:

* a live order whose price is within ``tolerance_ticks`` of the target and whose size is
  right is kept (no request);
* otherwise it is amended in place when the venue supports it (one request instead of a
  cancel plus a new order; a size-down at the same price also keeps queue priority on
  Bybit), else cancelled and replaced once the cancel is confirmed;
* orders in slots no longer wanted are cancelled; empty slots get new orders.

An order is not touched again until it has lived ``min_quote_lifetime_ms`` (unless the
update is ``urgent``, e.g. risk pulling quotes), and never while a request about it is in
flight. Requests are sent cancels first, then amends, then new orders, grouped into batch
calls, and only while a :class:`TokenBucket` per request type (Bybit's per-second limits)
has budget; what does not fit is simply retried on the next update.

Local state follows the venue's events (the state machine is in :class:`ManagedOrder`):
``PendingNew -> New -> PartiallyFilled -> Filled``, ``PendingAmend`` and ``PendingCancel``
while those requests are in flight, ``Cancelled``/``Rejected`` as the end. Worst-case
exposure counts every order that could still fill, in-flight ones included.
:meth:`OrderManager.reconcile` compares with the venue's open orders and position (at
start and after a reconnect): unknown live orders are cancelled, local orders the venue no
longer has are closed, and the position is taken from the venue.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mmbot.types import (
    BUY,
    ERR_ORDER_NOT_FOUND,
    ERR_PARAMS,
    AmendRequest,
    CancelRequest,
    ConnectionEvent,
    ExecutionEvent,
    Order,
    OrderEvent,
    OrderRequest,
    OrderStatus,
    PositionEvent,
    RequestError,
)
from mmbot.venue.base import Venue

__all__ = ["ManagedOrder", "OrderManager", "TokenBucket", "UpdateStats", "ReconcileResult"]

log = logging.getLogger(__name__)

#: ``ManagedOrder.level`` of a flatten order (never part of a quote slot)
FLATTEN_LEVEL = -1


class TokenBucket:
    """Token bucket: ``rate_per_s`` tokens per second, at most ``burst`` stored.

    Mirrors an exchange's per-second request limit: with ``burst == rate_per_s`` it never
    allows more than ``rate_per_s`` requests in any one-second window starting full.

    Parameters
    ----------
    rate_per_s : float
        Refill rate, > 0.
    burst : float, optional
        Capacity; defaults to ``rate_per_s``.
    now_ms : int
        Clock value at creation; the bucket starts full.
    """

    __slots__ = ("rate_per_ms", "burst", "tokens", "last_ms")

    def __init__(self, rate_per_s: float, burst: float | None = None, now_ms: int = 0) -> None:
        if not rate_per_s > 0:
            raise ValueError(f"rate_per_s must be > 0, got {rate_per_s!r}")
        self.rate_per_ms = rate_per_s / 1000.0
        self.burst = float(rate_per_s if burst is None else burst)
        if not self.burst >= 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        self.tokens = self.burst
        self.last_ms = now_ms

    def available(self, now_ms: int) -> float:
        """Return the tokens available at ``now_ms`` (refilling first)."""
        if now_ms > self.last_ms:
            self.tokens = min(self.burst, self.tokens + (now_ms - self.last_ms) * self.rate_per_ms)
            self.last_ms = now_ms
        return self.tokens

    def try_take(self, n: int, now_ms: int) -> bool:
        """Take ``n`` tokens if available at ``now_ms``; return whether they were taken."""
        if self.available(now_ms) + 1e-9 >= n:
            self.tokens -= n
            return True
        return False


@dataclass(slots=True)
class ManagedOrder:
    """Local view of one of our orders.

    ``price_ticks``/``qty_lots`` are what the venue last confirmed (or what was requested
    while ``PendingNew``); ``pending_price_ticks``/``pending_qty_lots`` hold an amend in
    flight. ``status`` is the local state including the ``Pending*`` states.
    """

    order_link_id: str
    side: str
    price_ticks: int
    qty_lots: int
    level: int
    status: OrderStatus = OrderStatus.PENDING_NEW
    venue_status: OrderStatus | None = None
    order_id: str = ""
    filled_lots: int = 0
    sent_ms: int = 0
    changed_ms: int = 0
    pending_price_ticks: int | None = None
    pending_qty_lots: int | None = None
    reject_reason: str = ""

    @property
    def done(self) -> bool:
        """Whether the order can no longer trade."""
        return self.status.is_done

    @property
    def leaves_lots(self) -> int:
        """Lots that could still fill, assuming a pending amend goes either way."""
        if self.done:
            return 0
        qty = self.qty_lots
        if self.pending_qty_lots is not None and self.pending_qty_lots > qty:
            qty = self.pending_qty_lots
        return max(qty - self.filled_lots, 0)

    def leaves_lots_pending_amend(self) -> bool:
        """Whether an amend in flight could still raise the size above what is filled."""
        return self.pending_qty_lots is not None and self.pending_qty_lots > self.filled_lots

    @property
    def slot(self) -> tuple[str, int]:
        return (self.side, self.level)


@dataclass(slots=True)
class UpdateStats:
    """What one :meth:`OrderManager.update` did."""

    kept: int = 0
    placed: int = 0
    amended: int = 0
    cancelled: int = 0
    deferred_lifetime: int = 0
    deferred_pending: int = 0
    deferred_rate: int = 0
    requests: int = 0

    @property
    def changed(self) -> int:
        """Number of orders whose quoted price/size was sent to the venue (new or amended)."""
        return self.placed + self.amended


@dataclass(slots=True)
class ReconcileResult:
    """What :meth:`OrderManager.reconcile` found and did."""

    orphans_cancelled: list[str] = field(default_factory=list)
    missing_closed: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    position_before_lots: int = 0
    position_after_lots: int = 0


class OrderManager:
    """Diff-requoting order manager for one symbol on one :class:`Venue`.

    Parameters
    ----------
    venue : Venue
    symbol : str
    tolerance_ticks : int
        Keep a live order whose price is within this many ticks of the target.
    min_quote_lifetime_ms : int
        Do not amend or cancel an order younger than this (unless ``urgent``).
    place_per_s, amend_per_s, cancel_per_s : float
        Per-second budgets of new orders, amends and cancels (Bybit linear: 10 each;
        spot create/cancel 20). Every order inside a batch call counts.
    batch_per_s : float
        Per-second budget of batch calls.
    max_batch : int
        Orders per batch call (Bybit: 20 linear, 10 spot).
    post_only : bool
        Send quotes as post-only (maker only).
    use_amend : bool or None
        Amend in place; None uses ``venue.supports_amend``.
    link_prefix : str
        Prefix of generated ``orderLinkId`` values (keep it unique per session; the id is
        ``prefix + counter`` and must stay within 36 characters).
    pending_timeout_ms : int
        A request unanswered for this long sets :attr:`needs_reconcile`.
    now_ms : int
        Clock at creation (the token buckets start full).
    """

    def __init__(
        self,
        venue: Venue,
        symbol: str,
        *,
        tolerance_ticks: int = 1,
        min_quote_lifetime_ms: int = 200,
        place_per_s: float = 10,
        amend_per_s: float = 10,
        cancel_per_s: float = 10,
        batch_per_s: float = 10,
        max_batch: int = 20,
        post_only: bool = True,
        use_amend: bool | None = None,
        link_prefix: str = "mm-",
        pending_timeout_ms: int = 5000,
        now_ms: int = 0,
    ) -> None:
        if tolerance_ticks < 0:
            raise ValueError(f"tolerance_ticks must be >= 0, got {tolerance_ticks}")
        if min_quote_lifetime_ms < 0:
            raise ValueError(f"min_quote_lifetime_ms must be >= 0, got {min_quote_lifetime_ms}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if len(link_prefix) > 24:
            raise ValueError(f"link_prefix must be at most 24 characters, got {link_prefix!r}")
        self.venue = venue
        self.symbol = symbol
        self.tolerance_ticks = tolerance_ticks
        self.min_quote_lifetime_ms = min_quote_lifetime_ms
        self.max_batch = min(max_batch, venue.rate_limits.max_batch)
        self.post_only = post_only
        self.use_amend = venue.supports_amend if use_amend is None else use_amend
        self.link_prefix = link_prefix
        self.pending_timeout_ms = pending_timeout_ms
        self.buckets = {
            "create": TokenBucket(place_per_s, now_ms=now_ms),
            "amend": TokenBucket(amend_per_s, now_ms=now_ms),
            "cancel": TokenBucket(cancel_per_s, now_ms=now_ms),
            "batch": TokenBucket(batch_per_s, now_ms=now_ms),
        }
        self._counter = 0
        self.orders: dict[str, ManagedOrder] = {}  # every order this session, by link id
        self._working: dict[str, ManagedOrder] = {}  # not done, by link id
        self._slots: dict[tuple[str, int], ManagedOrder] = {}
        self._orphans_cancelling: set[str] = set()
        self._seen_exec_ids: set[str] = set()
        self.position_lots = 0
        self.connected = venue.connected
        self.needs_reconcile = False
        self.requests_sent = 0
        self.rate_deferrals = 0
        self.request_errors = 0

    @classmethod
    def from_config(
        cls, venue: Venue, symbol: str, orders_cfg, *, tolerance_ticks: int = 1, **kw
    ) -> OrderManager:
        """Build from a ``mmbot.config.OrdersConfig`` section."""
        return cls(
            venue,
            symbol,
            tolerance_ticks=tolerance_ticks,
            min_quote_lifetime_ms=orders_cfg.min_quote_lifetime_ms,
            place_per_s=orders_cfg.place_per_s,
            amend_per_s=orders_cfg.amend_per_s,
            cancel_per_s=orders_cfg.cancel_per_s,
            batch_per_s=orders_cfg.batch_per_s,
            max_batch=orders_cfg.batch_max_orders,
            post_only=orders_cfg.post_only,
            **kw,
        )

    # ------------------------------------------------------------------ queries
    def working_orders(self) -> list[ManagedOrder]:
        """Return the orders that can still trade (in flight included), oldest first."""
        return list(self._working.values())

    def exposure(self) -> tuple[int, int]:
        """Return ``(max_long_lots, max_short_lots)``: the position if every working buy
        (resp. sell) order filled completely, in-flight orders and amends included.
        ``max_short_lots`` is <= 0 when the worst case is short."""
        buys = sells = 0
        for m in self._working.values():
            if m.side == BUY:
                buys += m.leaves_lots
            else:
                sells += m.leaves_lots
        return self.position_lots + buys, self.position_lots - sells

    def open_lots(self, side: str) -> int:
        """Return the lots that could still fill on ``side`` across working orders."""
        return sum(m.leaves_lots for m in self._working.values() if m.side == side)

    def inflight_lots(self) -> tuple[int, int]:
        """Return ``(buy_lots, sell_lots)`` that may still fill but are not part of the next
        quote set: orders being cancelled and flatten orders."""
        buys = sells = 0
        for m in self._working.values():
            if m.status is OrderStatus.PENDING_CANCEL or m.level == FLATTEN_LEVEL:
                if m.side == BUY:
                    buys += m.leaves_lots
                else:
                    sells += m.leaves_lots
        return buys, sells

    def all_done(self) -> bool:
        """Whether no order can trade any more (after a cancel-all, for instance)."""
        return not self._working

    # ------------------------------------------------------------------ quoting
    def update(self, quotes: Iterable, now_ms: int, *, urgent: bool = False) -> UpdateStats:
        """Move the working orders towards ``quotes`` (objects with ``side``,
        ``price_ticks``, ``qty_lots`` and ``level``) and return what was done.

        ``urgent`` skips the minimum quote lifetime (used when risk pulls quotes).
        """
        stats = UpdateStats()
        self._check_pending_age(now_ms)
        if not self.connected:
            return stats
        desired: dict[tuple[str, int], object] = {}
        for q in quotes:
            key = (q.side, q.level)
            if key in desired:
                raise ValueError(f"two quotes for the same slot {key}: {desired[key]} and {q}")
            if q.qty_lots <= 0 or q.price_ticks <= 0:
                raise ValueError(f"quote needs positive price and size, got {q}")
            desired[key] = q
        cancels: list[ManagedOrder] = []
        amends: list[tuple[ManagedOrder, int | None, int | None]] = []
        places: list[object] = []
        for key, m in list(self._slots.items()):
            if m.level == FLATTEN_LEVEL:
                continue
            if key not in desired:
                if m.status.is_pending:
                    stats.deferred_pending += m.status is not OrderStatus.PENDING_CANCEL
                    continue
                if not urgent and now_ms - m.changed_ms < self.min_quote_lifetime_ms:
                    stats.deferred_lifetime += 1
                    continue
                cancels.append(m)
        for key, q in desired.items():
            m = self._slots.get(key)
            if m is None:
                places.append(q)
                continue
            if m.status.is_pending:
                stats.deferred_pending += 1
                continue
            new_price = q.price_ticks if abs(q.price_ticks - m.price_ticks) > self.tolerance_ticks \
                else None
            leaves = m.qty_lots - m.filled_lots
            # size-down keeps priority, so do it; size-up loses it, so only when badly short
            new_qty = None
            if q.qty_lots < leaves or (q.qty_lots > leaves and 2 * leaves < q.qty_lots) or (
                new_price is not None and q.qty_lots != leaves
            ):
                new_qty = m.filled_lots + q.qty_lots
            if new_price is None and new_qty is None:
                stats.kept += 1
                continue
            if not urgent and now_ms - m.changed_ms < self.min_quote_lifetime_ms:
                stats.deferred_lifetime += 1
                continue
            if self.use_amend:
                amends.append((m, new_price, new_qty))
            else:
                cancels.append(m)  # replaced once the cancel is confirmed and the slot frees
        self._send_cancels(cancels, now_ms, stats)
        self._send_amends(amends, now_ms, stats)
        self._send_places(places, now_ms, stats)
        return stats

    def cancel_all(self, now_ms: int) -> None:
        """Cancel every order on the symbol (one venue call, not rate limited: safety first).

        Every working order goes to ``PendingCancel``; the venue's events close them.
        """
        self.venue.cancel_all(self.symbol)
        self.requests_sent += 1
        for m in self._working.values():
            if m.status is not OrderStatus.PENDING_CANCEL:
                m.status = OrderStatus.PENDING_CANCEL
                m.sent_ms = now_ms

    def flatten(self, now_ms: int) -> str | None:
        """Send one reduce-only market order closing the position; return its link id.

        Does nothing (returns None) when flat, disconnected, or a flatten order is still
        working. Rate limited like any new order.
        """
        pos = self.position_lots
        if pos == 0 or not self.connected:
            return None
        if any(m.level == FLATTEN_LEVEL for m in self._working.values()):
            return None
        if not self.buckets["create"].try_take(1, now_ms):
            self.rate_deferrals += 1
            return None
        side = "Sell" if pos > 0 else BUY
        link = self._new_link_id()
        m = ManagedOrder(link, side, 0, abs(pos), FLATTEN_LEVEL, sent_ms=now_ms, changed_ms=now_ms)
        self.orders[link] = m
        self._working[link] = m
        self.venue.place(OrderRequest(link, self.symbol, side, 0, abs(pos), post_only=False,
                                      reduce_only=True, order_type="Market"))
        self.requests_sent += 1
        log.warning("flattening position of %d lots with %s", pos, link)
        return link

    # ------------------------------------------------------------------ venue events
    def on_event(self, event) -> ExecutionEvent | None:
        """Apply one venue event; return it if it is a new (not duplicate) execution."""
        if isinstance(event, OrderEvent):
            self._on_order(event.order, event.ts_ms)
        elif isinstance(event, ExecutionEvent):
            return self._on_execution(event)
        elif isinstance(event, PositionEvent):
            if event.position.symbol == self.symbol:
                self.position_lots = event.position.size_lots
        elif isinstance(event, RequestError):
            self._on_request_error(event)
        elif isinstance(event, ConnectionEvent):
            if event.connected and not self.connected:
                self.needs_reconcile = True
            self.connected = event.connected
        else:
            raise TypeError(f"unknown venue event {event!r}")
        return None

    def _on_order(self, order: Order, ts_ms: int) -> None:
        if order.symbol != self.symbol:
            return
        m = self.orders.get(order.order_link_id)
        if m is None or m.done:
            if not order.status.is_done:
                self._cancel_orphan(order)
            return
        m.order_id = order.order_id or m.order_id
        m.venue_status = order.status
        m.filled_lots = max(m.filled_lots, order.filled_lots)
        m.price_ticks = order.price_ticks
        m.qty_lots = order.qty_lots
        if order.status.is_done:
            m.status = order.status
            m.reject_reason = order.reject_reason
            m.pending_price_ticks = m.pending_qty_lots = None
            m.changed_ms = ts_ms
            self._close(m)
            return
        if m.status is OrderStatus.PENDING_NEW:
            m.status = order.status
            m.changed_ms = ts_ms
        elif m.status is OrderStatus.PENDING_AMEND:
            want_price = m.price_ticks if m.pending_price_ticks is None else m.pending_price_ticks
            want_qty = m.qty_lots if m.pending_qty_lots is None else m.pending_qty_lots
            if order.price_ticks == want_price and order.qty_lots == want_qty:
                m.status = order.status
                m.pending_price_ticks = m.pending_qty_lots = None
                m.changed_ms = ts_ms
        elif m.status is not OrderStatus.PENDING_CANCEL:
            m.status = order.status

    def _on_execution(self, event: ExecutionEvent) -> ExecutionEvent | None:
        x = event.execution
        if x.symbol != self.symbol or x.exec_id in self._seen_exec_ids:
            return None
        self._seen_exec_ids.add(x.exec_id)
        self.position_lots += x.qty_lots if x.side == BUY else -x.qty_lots
        m = self.orders.get(x.order_link_id)
        if m is not None and not m.done:
            # executions may arrive before the order event that reports them
            if x.leaves_lots is None:
                m.filled_lots += x.qty_lots
            else:
                m.filled_lots = max(m.filled_lots, m.qty_lots - x.leaves_lots)
            if m.filled_lots >= m.qty_lots and not m.leaves_lots_pending_amend():
                m.status = OrderStatus.FILLED
                m.pending_price_ticks = m.pending_qty_lots = None
                self._close(m)
        return event

    def _on_request_error(self, err: RequestError) -> None:
        self.request_errors += 1
        m = self.orders.get(err.order_link_id)
        # refusals caused by latency races (the order filled first, the book moved under a
        # post-only amend) are routine; anything else deserves attention
        level = logging.INFO if err.code in (ERR_ORDER_NOT_FOUND, ERR_PARAMS) else logging.WARNING
        log.log(level, "venue refused %s %s: %s %s", err.op, err.order_link_id, err.code,
                err.message)
        if err.op == "cancel_all":
            self.needs_reconcile = True
            return
        if m is None or m.done:
            return
        if err.op == "create":
            m.status = OrderStatus.REJECTED
            m.reject_reason = f"{err.code}: {err.message}"
            self._close(m)
        elif err.op == "amend":
            m.pending_price_ticks = m.pending_qty_lots = None
            m.status = m.venue_status or OrderStatus.NEW
            if err.code == ERR_ORDER_NOT_FOUND:
                self.needs_reconcile = True
        elif err.op == "cancel":
            m.status = m.venue_status or OrderStatus.NEW
            if err.code == ERR_ORDER_NOT_FOUND:
                # already gone at the venue (filled or cancelled); its event will say which
                self.needs_reconcile = True

    # ------------------------------------------------------------------ reconciliation
    def reconcile(self, now_ms: int) -> ReconcileResult:
        """Align local state with the venue's open orders and position.

        Venue orders we do not know (or consider closed) are cancelled as orphans; local
        working orders the venue does not have are closed as ``Cancelled``; known ones take
        the venue's state (pending new/amend cleared, pending cancels re-sent). The position
        is taken from the venue.
        """
        result = ReconcileResult(position_before_lots=self.position_lots)
        venue_orders = {
            o.order_link_id or o.order_id: o for o in self.venue.open_orders(self.symbol)
        }
        for key, order in venue_orders.items():
            m = self.orders.get(order.order_link_id) if order.order_link_id else None
            if m is None or m.done:
                self._cancel_orphan(order)
                result.orphans_cancelled.append(key)
                continue
            resend_cancel = m.status is OrderStatus.PENDING_CANCEL
            m.order_id = order.order_id
            m.venue_status = order.status
            m.price_ticks, m.qty_lots = order.price_ticks, order.qty_lots
            m.filled_lots = order.filled_lots
            m.pending_price_ticks = m.pending_qty_lots = None
            m.status = order.status
            result.adopted.append(key)
            if resend_cancel:
                self.venue.cancel(CancelRequest(m.order_link_id, self.symbol, m.order_id))
                self.requests_sent += 1
                m.status = OrderStatus.PENDING_CANCEL
                m.sent_ms = now_ms
        for m in list(self._working.values()):
            if m.order_link_id not in venue_orders:
                m.status = OrderStatus.CANCELLED
                m.reject_reason = "missing at venue on reconcile"
                m.changed_ms = now_ms
                self._close(m)
                result.missing_closed.append(m.order_link_id)
        self.position_lots = self.venue.position(self.symbol).size_lots
        result.position_after_lots = self.position_lots
        self.connected = self.venue.connected
        self.needs_reconcile = False
        if result.orphans_cancelled or result.missing_closed or (
            result.position_before_lots != result.position_after_lots
        ):
            log.warning("reconcile: %s", result)
        return result

    # ------------------------------------------------------------------ internals
    def _new_link_id(self) -> str:
        self._counter += 1
        return f"{self.link_prefix}{self._counter}"

    def _close(self, m: ManagedOrder) -> None:
        self._working.pop(m.order_link_id, None)
        if m.level != FLATTEN_LEVEL and self._slots.get(m.slot) is m:
            del self._slots[m.slot]

    def _cancel_orphan(self, order: Order) -> None:
        key = order.order_link_id or order.order_id
        if key in self._orphans_cancelling:
            return
        self._orphans_cancelling.add(key)
        log.warning("cancelling orphan order %s (%s %s)", key, order.side, order.price_ticks)
        self.venue.cancel(CancelRequest(order.order_link_id, self.symbol, order.order_id))
        self.requests_sent += 1

    def _check_pending_age(self, now_ms: int) -> None:
        for m in self._working.values():
            if m.status.is_pending and now_ms - m.sent_ms > self.pending_timeout_ms:
                if not self.needs_reconcile:
                    log.warning("%s %s unanswered for %d ms", m.order_link_id, m.status,
                                now_ms - m.sent_ms)
                self.needs_reconcile = True
                return

    def _chunks(self, kind: str, items: Sequence, now_ms: int, stats: UpdateStats) -> list:
        """Split ``items`` into calls the budgets allow; count the rest as deferred.

        Every order in a call takes a token from the ``kind`` bucket; a call with more than
        one order also takes one from the ``batch`` bucket.
        """
        out = []
        i = 0
        bucket = self.buckets[kind]
        batch = self.buckets["batch"]
        while i < len(items):
            n = min(self.max_batch, len(items) - i, int(bucket.available(now_ms) + 1e-9))
            if n > 1 and batch.available(now_ms) < 1:
                n = 1
            if n <= 0:
                deferred = len(items) - i
                stats.deferred_rate += deferred
                self.rate_deferrals += deferred
                break
            bucket.try_take(n, now_ms)
            if n > 1:
                batch.try_take(1, now_ms)
            out.append(items[i : i + n])
            i += n
        return out

    def _send_cancels(self, cancels: list[ManagedOrder], now_ms: int, stats: UpdateStats) -> None:
        for chunk in self._chunks("cancel", cancels, now_ms, stats):
            reqs = [CancelRequest(m.order_link_id, self.symbol, m.order_id) for m in chunk]
            for m in chunk:
                m.status = OrderStatus.PENDING_CANCEL
                m.sent_ms = now_ms
            if len(reqs) == 1:
                self.venue.cancel(reqs[0])
            else:
                self.venue.cancel_batch(reqs)
            self.requests_sent += 1
            stats.requests += 1
            stats.cancelled += len(chunk)

    def _send_amends(self, amends: list, now_ms: int, stats: UpdateStats) -> None:
        for chunk in self._chunks("amend", amends, now_ms, stats):
            reqs = []
            for m, price, qty in chunk:
                reqs.append(AmendRequest(m.order_link_id, self.symbol, price, qty, m.order_id))
                m.pending_price_ticks = price
                m.pending_qty_lots = qty
                m.status = OrderStatus.PENDING_AMEND
                m.sent_ms = now_ms
            if len(reqs) == 1:
                self.venue.amend(reqs[0])
            else:
                self.venue.amend_batch(reqs)
            self.requests_sent += 1
            stats.requests += 1
            stats.amended += len(chunk)

    def _send_places(self, places: list, now_ms: int, stats: UpdateStats) -> None:
        for chunk in self._chunks("create", places, now_ms, stats):
            reqs = []
            for q in chunk:
                link = self._new_link_id()
                reqs.append(OrderRequest(link, self.symbol, q.side, q.price_ticks, q.qty_lots,
                                         post_only=self.post_only))
                m = ManagedOrder(link, q.side, q.price_ticks, q.qty_lots, q.level,
                                 sent_ms=now_ms, changed_ms=now_ms)
                self.orders[link] = m
                self._working[link] = m
                self._slots[m.slot] = m
            if len(reqs) == 1:
                self.venue.place(reqs[0])
            else:
                self.venue.place_batch(reqs)
            self.requests_sent += 1
            stats.requests += 1
            stats.placed += len(chunk)

