"""Order manager: turns desired quotes into as few venue requests as possible, safely.

Each desired :class:`~mmbot.strategy.base.Quote` fills a *slot* ``(side, level)``; a slot
holds at most one working order, so the bot never double-quotes a level. On every
:meth:`OrderManager.update` the desired quotes are diffed against the working orders:

* a live order whose price is within the requote tolerance of the target and whose size
  is right is kept (no request); the tolerance is ``tolerance_ticks`` or, when larger,
  ``tolerance_spread_frac`` of the quoted half-spread, so a wide quote is not chased tick
  by tick;
* otherwise it is amended in place when the venue supports it (one request instead of a
  cancel plus a new order; a size-down at the same price also keeps queue priority on
  Bybit), else cancelled and replaced once the cancel is confirmed;
* orders in slots no longer wanted are cancelled; empty slots get new orders.

An order is not touched again until it has lived ``min_quote_lifetime_ms`` (unless the
update is ``urgent``, e.g. risk pulling quotes), and never while a request about it is in
flight. Requests are sent cancels first, then amends, then new orders, grouped into batch
calls, and only while a :class:`RollingWindowLimiter` per request type (Bybit's rolling
one-second limits) allows; what does not fit waits for the next update. The budget goes
where it matters: level 0 before deeper levels, the stalest order first, the two sides
alternating, so neither side starves.

Safety invariants (checked after every step by tests/mmbot/test_exposure_stateful.py):

* **Exposure.** With caps given to :meth:`update`, ``position + every buy that could still
  fill <= max_long_lots`` (and likewise for sells) holds at every moment. An order counts
  from the moment its request is sent until the venue confirms it closed; an amend in
  flight counts at the larger of its old and new size. A new order or a size-up that would
  pass the cap is not sent.
* **Fills in flight.** An order push can report a fill (``cumExecQty``) before its
  execution arrives; until it does, those lots may or may not be in the position, so the
  worst case counts them on their side either way.
* **One fill, one move.** The position is the last position report (push or REST) plus the
  executions the venue sequenced after it (Bybit's shared ``seq``); each execution id is
  applied once, so a position push that overtakes its execution does not count the fill
  twice, and an older report never undoes a newer fill. Funding moves no position;
  auto-deleveraging and liquidation executions do.
* **Blind means flat.** While any link is down (the venue's private or trade socket, or the
  public book stream, see :meth:`set_link`), nothing is sent but a REST cancel-all, repeated
  until the venue reports no open order. After the links are back the caller reads back
  missed executions and :meth:`reconcile` runs before quoting again. With
  :attr:`OrderManager.defer_io` the cancel-all and its confirmation are made by
  :meth:`OrderManager.run_io` (a thread that may block) instead of inside :meth:`update`
  and :meth:`set_link`, which then only call ``on_io_wanted``.

Local state follows the venue's events (the state machine is in :class:`ManagedOrder`):
``PendingNew -> New -> PartiallyFilled -> Filled``, ``PendingAmend`` and ``PendingCancel``
while those requests are in flight, ``Cancelled``/``Rejected`` as the end.
:meth:`OrderManager.reconcile` compares with the venue's open orders and position (at start
and after a reconnect): unknown live orders are cancelled; local orders the venue no longer
has are closed, except a create that may still be on its way (younger than
``pending_timeout_ms`` and never acknowledged), which keeps counting until it shows up or
times out; the position is taken from the venue's report.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from mmbot.types import (
    BUY,
    ERR_ORDER_NOT_FOUND,
    ERR_PARAMS,
    EXEC_FUNDING,
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
    VenueEvent,
)
from mmbot.venue.base import Venue

if TYPE_CHECKING:
    from mmbot.config import OrdersConfig

__all__ = [
    "ManagedOrder",
    "OrderManager",
    "QuoteLike",
    "RollingWindowLimiter",
    "UpdateStats",
    "ReconcileResult",
]

_T = TypeVar("_T")


class QuoteLike(Protocol):
    """What :meth:`OrderManager.update` reads from a quote (:class:`mmbot.strategy.base.Quote`
    or any object with these attributes)."""

    @property
    def side(self) -> str: ...
    @property
    def price_ticks(self) -> int: ...
    @property
    def qty_lots(self) -> int: ...
    @property
    def level(self) -> int: ...


log = logging.getLogger(__name__)

#: ``ManagedOrder.level`` of a flatten order (never part of a quote slot)
FLATTEN_LEVEL = -1


class RollingWindowLimiter:
    """At most ``limit`` units in any ``window_ms`` window, as Bybit counts its per-UID
    order limits (a rolling one-second window; every order in a batch counts).

    A unit taken at ``t`` counts against every window that contains ``t``, boundaries
    included, so a unit at ``t`` and one at ``t + window_ms`` are in the same window. A token
    bucket does not give this guarantee: full at ``t = 0`` it allows a burst and then one
    request per refill, nearly twice the limit within one rolling second.

    The venue counts a request when it arrives, not when it was sent: two requests sent a
    window apart arrive less than a window apart when the first was slower on its way.
    ``margin_ms`` keeps each unit counted that much longer here, so a one-way delay that
    varies by up to ``margin_ms + 1`` ms between requests never puts the venue's window
    over the limit.

    Parameters
    ----------
    limit : int
        Units per window, >= 1.
    window_ms : int
        Window length, > 0 (Bybit: 1000).
    margin_ms : int
        Extra time each unit counts, >= 0 (0 for a venue with a fixed delay: a backtest).
    """

    __slots__ = ("limit", "window_ms", "margin_ms", "_taken", "_used")

    def __init__(self, limit: int, window_ms: int = 1000, margin_ms: int = 0) -> None:
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be an int >= 1, got {limit!r}")
        if window_ms <= 0:
            raise ValueError(f"window_ms must be > 0, got {window_ms!r}")
        if not isinstance(margin_ms, int) or margin_ms < 0:
            raise ValueError(f"margin_ms must be an int >= 0, got {margin_ms!r}")
        self.limit = limit
        self.window_ms = window_ms
        self.margin_ms = margin_ms
        self._taken: deque[tuple[int, int]] = deque()  # (time, units), oldest first
        self._used = 0

    def available(self, now_ms: int) -> int:
        """Return how many units may be taken at ``now_ms``."""
        taken = self._taken
        horizon = now_ms - self.window_ms - self.margin_ms
        while taken and taken[0][0] < horizon:
            self._used -= taken.popleft()[1]
        return self.limit - self._used

    def try_take(self, n: int, now_ms: int) -> bool:
        """Take ``n`` units at ``now_ms`` if the window allows; return whether they were."""
        if n > self.available(now_ms):
            return False
        self._taken.append((now_ms, n))
        self._used += n
        return True


@dataclass(slots=True)
class ManagedOrder:
    """Local view of one of our orders.

    ``price_ticks``/``qty_lots`` are what the venue last confirmed (or what was requested
    while ``PendingNew``); ``pending_price_ticks``/``pending_qty_lots`` hold an amend in
    flight. ``status`` is the local state including the ``Pending*`` states.
    ``created_ms`` is when the create was sent; ``venue_status`` stays None until the venue
    first reports the order.
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
    created_ms: int = 0
    exec_lots: int = 0  # lots of this order whose executions have been applied
    # a reconcile counted every fill up to this position seq as executed: an execution
    # sequenced at or before it arriving later is already in exec_lots
    reconciled_seq: int = 0

    @property
    def unexecuted_lots(self) -> int:
        """Lots the venue reported filled whose executions have not arrived yet."""
        return max(self.filled_lots - self.exec_lots, 0)

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
    deferred_cap: int = 0
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
    still_in_flight: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    position_before_lots: int = 0
    position_after_lots: int = 0


def _fair_order(
    items: list[_T], key: Callable[[_T], tuple[str, int, int]], prefer: str = BUY
) -> list[_T]:
    """Return ``items`` by priority: level 0 first, then the stalest, sides alternating.

    ``key(item)`` gives ``(side, level, changed_ms)``. Within each side the order is
    (level, changed_ms); the two sides are interleaved starting with the side whose best
    item has the higher priority (``prefer`` on a tie), so a budget cut never falls on one
    side only.
    """
    if len(items) < 2:  # most updates: nothing or one order to order (no sort, no lanes)
        return items
    by_side: dict[str, list[_T]] = {}
    for item in sorted(items, key=lambda it: key(it)[1:]):
        by_side.setdefault(key(item)[0], []).append(item)
    lanes = sorted(
        by_side.values(), key=lambda lane: (*key(lane[0])[1:], key(lane[0])[0] != prefer)
    )
    out = []
    for i in range(max((len(lane) for lane in lanes), default=0)):
        for lane in lanes:
            if i < len(lane):
                out.append(lane[i])
    return out


class OrderManager:
    """Diff-requoting order manager for one symbol on one :class:`Venue`.

    Parameters
    ----------
    venue : Venue
    symbol : str
    tolerance_ticks : int
        Keep a live order whose price is within this many ticks of the target.
    tolerance_spread_frac : float
        ...or within this fraction of the quoted half-spread, when that is larger.
    min_quote_lifetime_ms : int
        Do not amend or cancel an order younger than this (unless ``urgent``).
    place_per_s, amend_per_s, cancel_per_s : int
        Orders per rolling second for creates, amends and cancels (Bybit linear: 10 each;
        spot create/cancel 20). Every order inside a batch call counts.
    batch_per_s : int
        Batch calls per rolling second.
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
        A request unanswered for this long sets :attr:`needs_reconcile`; a create not seen
        at the venue this long after it was sent can no longer arrive (keep it above the
        venue's receive window).
    blind_retry_ms : int
        While a link is down, how often the REST cancel-all is re-checked.
    """

    def __init__(
        self,
        venue: Venue,
        symbol: str,
        *,
        tolerance_ticks: int = 1,
        tolerance_spread_frac: float = 0.0,
        min_quote_lifetime_ms: int = 200,
        place_per_s: int = 10,
        amend_per_s: int = 10,
        cancel_per_s: int = 10,
        batch_per_s: int = 10,
        max_batch: int = 20,
        post_only: bool = True,
        use_amend: bool | None = None,
        link_prefix: str = "mm-",
        pending_timeout_ms: int = 6000,
        blind_retry_ms: int = 500,
        now_ms: int = 0,
    ) -> None:
        if tolerance_ticks < 0:
            raise ValueError(f"tolerance_ticks must be >= 0, got {tolerance_ticks}")
        if not 0 <= tolerance_spread_frac < 1:
            raise ValueError(
                f"tolerance_spread_frac must be in [0, 1), got {tolerance_spread_frac}"
            )
        if min_quote_lifetime_ms < 0:
            raise ValueError(f"min_quote_lifetime_ms must be >= 0, got {min_quote_lifetime_ms}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if len(link_prefix) > 24:
            raise ValueError(f"link_prefix must be at most 24 characters, got {link_prefix!r}")
        self.venue = venue
        self.symbol = symbol
        self.tolerance_ticks = tolerance_ticks
        self.tolerance_spread_frac = tolerance_spread_frac
        self.min_quote_lifetime_ms = min_quote_lifetime_ms
        self.max_batch = min(max_batch, venue.rate_limits.max_batch)
        self.post_only = post_only
        self.use_amend = venue.supports_amend if use_amend is None else use_amend
        self.link_prefix = link_prefix
        self.pending_timeout_ms = pending_timeout_ms
        self.blind_retry_ms = blind_retry_ms
        self.limiters = {
            "create": RollingWindowLimiter(int(place_per_s)),
            "amend": RollingWindowLimiter(int(amend_per_s)),
            "cancel": RollingWindowLimiter(int(cancel_per_s)),
            "batch": RollingWindowLimiter(int(batch_per_s)),
        }
        self._counter = 0
        self.orders: dict[str, ManagedOrder] = {}  # every order this session, by link id
        self._working: dict[str, ManagedOrder] = {}  # not done, by link id
        self._slots: dict[tuple[str, int], ManagedOrder] = {}
        self._orphans_cancelling: set[str] = set()
        self._seen_exec_ids: set[str] = set()
        self._unexecuted: dict[str, ManagedOrder] = {}  # reported filled, not executed yet
        # position = last report (_pos_seq) + executions sequenced after it (_unsettled)
        self.position_lots = 0
        self._pos_seq = 0
        self._unsettled: dict[str, tuple[int, int]] = {}  # exec id -> (seq, signed lots)
        self.connected = venue.connected
        # the venue's own link is judged at reconcile (the runner's start) and by its events
        self.links_down: set[str] = set()
        self._blind_next_ms: int | None = None
        self.blind_cancel_alls = 0
        self.needs_reconcile = False
        self.requests_sent = 0
        self.rate_deferrals = 0
        self.cap_deferrals = 0
        self.deferrals_by_side = {BUY: 0, "Sell": 0}
        self.amends_by_side = {BUY: 0, "Sell": 0}
        self.request_errors = 0
        self._prefer = "Sell"
        #: leave the REST calls of a blind cancel-all to :meth:`run_io` (a live session
        #: runs updates on socket threads, where nothing may block on I/O)
        self.defer_io = False
        #: called (from any thread) when :meth:`run_io` has work; must not block
        self.on_io_wanted: Callable[[], None] | None = None

    @classmethod
    def from_config(
        cls,
        venue: Venue,
        symbol: str,
        orders_cfg: OrdersConfig,
        *,
        tolerance_ticks: int = 1,
        **kw: Any,
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
            tolerance_spread_frac=orders_cfg.requote_tolerance_spread_frac,
            **kw,
        )

    # ------------------------------------------------------------------ queries
    def working_orders(self) -> list[ManagedOrder]:
        """Return the orders that can still trade (in flight included), oldest first."""
        return list(self._working.values())

    def exposure(self) -> tuple[int, int]:
        """Return ``(max_long_lots, max_short_lots)``: the position if every working buy
        (resp. sell) order filled completely, in-flight orders and amends included, and
        every fill reported without its execution yet counted on its side.
        ``max_short_lots`` is <= 0 when the worst case is short."""
        buys = sells = 0
        for m in self._working.values():
            if m.side == BUY:
                buys += m.leaves_lots
            else:
                sells += m.leaves_lots
        for m in self._unexecuted.values():
            if m.side == BUY:
                buys += m.unexecuted_lots
            else:
                sells += m.unexecuted_lots
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

    @property
    def blind(self) -> bool:
        """Whether a link the bot needs to see its orders or the market is down."""
        return bool(self.links_down)

    # ------------------------------------------------------------------ quoting
    def update(
        self,
        quotes: Iterable[QuoteLike],
        now_ms: int,
        *,
        urgent: bool = False,
        max_long_lots: int | None = None,
        max_short_lots: int | None = None,
    ) -> UpdateStats:
        """Move the working orders towards ``quotes`` (objects with ``side``,
        ``price_ticks``, ``qty_lots`` and ``level``) and return what was done.

        ``urgent`` skips the minimum quote lifetime (used when risk pulls quotes).
        ``max_long_lots``/``max_short_lots`` cap the worst case (see the module docstring):
        a new order or size-up that would pass one is not sent (``deferred_cap``). While
        :attr:`blind`, nothing is sent but the REST cancel-all.
        """
        stats = UpdateStats()
        self._check_pending_age(now_ms)
        if self.blind:
            self._blind_cancel_due(now_ms)
            return stats
        desired: dict[tuple[str, int], QuoteLike] = {}
        for q in quotes:
            key = (q.side, q.level)
            if key in desired:
                raise ValueError(f"two quotes for the same slot {key}: {desired[key]} and {q}")
            if q.qty_lots <= 0 or q.price_ticks <= 0:
                raise ValueError(f"quote needs positive price and size, got {q}")
            desired[key] = q
        tolerance = self._tolerance(desired)
        cancels: list[ManagedOrder] = []
        amends: list[tuple[ManagedOrder, int | None, int | None]] = []
        places: list[QuoteLike] = []
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
            slot = self._slots.get(key)
            if slot is None:
                places.append(q)
                continue
            m = slot
            if m.status.is_pending:
                stats.deferred_pending += 1
                continue
            new_price = q.price_ticks if abs(q.price_ticks - m.price_ticks) > tolerance else None
            leaves = m.qty_lots - m.filled_lots
            # size-down keeps priority, so do it; size-up loses it, so only when badly short
            new_qty = None
            if (
                q.qty_lots < leaves
                or (q.qty_lots > leaves and 2 * leaves < q.qty_lots)
                or (new_price is not None and q.qty_lots != leaves)
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
        # on a tie the side that went second last time goes first
        prefer = self._prefer = "Sell" if self._prefer == BUY else BUY
        cancels = _fair_order(cancels, lambda m: (m.side, m.level, m.changed_ms), prefer)
        amends = _fair_order(amends, lambda a: (a[0].side, a[0].level, a[0].changed_ms), prefer)
        places = _fair_order(places, lambda q: (q.side, q.level, -1), prefer)
        if not (cancels or amends or places):
            return stats  # most frames: every order is where it should be
        self._send_cancels(cancels, now_ms, stats)
        if (amends or places) and (max_long_lots is not None or max_short_lots is not None):
            amends, places = self._within_caps(amends, places, max_long_lots, max_short_lots, stats)
        if amends:
            self._send_amends(amends, now_ms, stats)
        if places:
            self._send_places(places, now_ms, stats)
        return stats

    def _tolerance(self, desired: dict) -> int:
        bid, ask = desired.get((BUY, 0)), desired.get(("Sell", 0))
        if self.tolerance_spread_frac and bid is not None and ask is not None:
            half_spread = (ask.price_ticks - bid.price_ticks) / 2
            return max(self.tolerance_ticks, int(half_spread * self.tolerance_spread_frac))
        return self.tolerance_ticks

    def _within_caps(
        self,
        amends: list,
        places: list,
        max_long: int | None,
        max_short: int | None,
        stats: UpdateStats,
    ) -> tuple[list, list]:
        """Keep the amends and new orders that fit under the caps, in priority order."""
        long_worst, short_worst = self.exposure()
        room = {
            BUY: None if max_long is None else max_long - long_worst,
            "Sell": None if max_short is None else max_short + short_worst,
        }
        kept_amends = []
        for m, price, qty in amends:
            grow = 0 if qty is None else max(0, qty - max(m.qty_lots, m.filled_lots))
            left = room[m.side]
            if grow and left is not None:
                if grow > left:
                    stats.deferred_cap += 1
                    self.cap_deferrals += 1
                    continue
                room[m.side] = left - grow
            kept_amends.append((m, price, qty))
        kept_places = []
        for q in places:
            left = room[q.side]
            if left is not None:
                if q.qty_lots > left:
                    stats.deferred_cap += 1
                    self.cap_deferrals += 1
                    continue
                room[q.side] = left - q.qty_lots
            kept_places.append(q)
        return kept_amends, kept_places

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

    def set_link(self, name: str, up: bool, now_ms: int) -> None:
        """Record that link ``name`` (``"venue"``, ``"public"``...) went down or came back.

        The first link down starts the blind cancel-all at once; the last one back asks for
        a reconcile before the next quote.
        """
        if up:
            if name in self.links_down:
                self.links_down.discard(name)
                if not self.links_down:
                    self.needs_reconcile = True
                    self._blind_next_ms = None
            return
        was_blind = self.blind
        self.links_down.add(name)
        if not was_blind:
            log.warning("%s down: cancelling every order over REST", name)
            self._blind_next_ms = now_ms
            self._blind_cancel_due(now_ms)

    def _blind_cancel_due(self, now_ms: int) -> None:
        if not self.defer_io:
            self._blind_cancel(now_ms)
        elif self._blind_next_ms is not None and now_ms >= self._blind_next_ms:
            if self.on_io_wanted is not None:
                self.on_io_wanted()

    def run_io(self, now_ms: int) -> None:
        """Do the REST part of being blind (with :attr:`defer_io`): the cancel-all, or
        its confirmation, when due. Call it from the thread that may block, often (the
        live session's timer, and whenever :attr:`on_io_wanted` fired)."""
        if self.blind:
            self._blind_cancel(now_ms)

    def _blind_cancel(self, now_ms: int) -> None:
        """REST cancel-all, repeated until the venue reports no open order for the symbol."""
        if self._blind_next_ms is None or now_ms < self._blind_next_ms:
            return
        self._blind_next_ms = now_ms + self.blind_retry_ms
        try:
            live = self.venue.open_orders(self.symbol) if self.blind_cancel_alls else [True]
        except Exception as exc:  # REST down too: keep trying, the orders may be live
            log.warning("blind: open orders unavailable (%s); cancelling anyway", exc)
            live = [True]
        if not live:
            self._blind_next_ms = None  # confirmed: nothing is live at the venue
            return
        self.blind_cancel_alls += 1
        self.cancel_all(now_ms)

    def flatten(self, now_ms: int) -> str | None:
        """Send one reduce-only market order closing the position; return its link id.

        Does nothing (returns None) when flat, blind, or a flatten order is still working.
        Rate limited like any new order.
        """
        pos = self.position_lots
        if pos == 0 or self.blind:
            return None
        if any(m.level == FLATTEN_LEVEL for m in self._working.values()):
            return None
        if not self.limiters["create"].try_take(1, now_ms):
            self.rate_deferrals += 1
            return None
        side = "Sell" if pos > 0 else BUY
        link = self._new_link_id()
        m = ManagedOrder(
            link,
            side,
            0,
            abs(pos),
            FLATTEN_LEVEL,
            sent_ms=now_ms,
            changed_ms=now_ms,
            created_ms=now_ms,
        )
        self.orders[link] = m
        self._working[link] = m
        self.venue.place(
            OrderRequest(
                link,
                self.symbol,
                side,
                0,
                abs(pos),
                post_only=False,
                reduce_only=True,
                order_type="Market",
            )
        )
        self.requests_sent += 1
        log.warning("flattening position of %d lots with %s", pos, link)
        return link

    # ------------------------------------------------------------------ venue events
    def mark_seen(self, exec_id: str) -> None:
        """Treat execution ``exec_id`` as applied (a restart restored it from records)."""
        self._seen_exec_ids.add(exec_id)

    def on_event(self, event: VenueEvent) -> ExecutionEvent | None:
        """Apply one venue event; return it if it is a new (not duplicate) execution."""
        if isinstance(event, OrderEvent):
            self._on_order(event.order, event.ts_ms)
        elif isinstance(event, ExecutionEvent):
            return self._on_execution(event)
        elif isinstance(event, PositionEvent):
            if event.position.symbol == self.symbol:
                self._on_position(event.position.size_lots, event.position.seq)
        elif isinstance(event, RequestError):
            self._on_request_error(event)
        elif isinstance(event, ConnectionEvent):
            self.connected = event.connected
            self.set_link("venue", event.connected, event.ts_ms)
        else:
            raise TypeError(f"unknown venue event {event!r}")
        return None

    def _on_position(self, size_lots: int, seq: int, *, authoritative: bool = False) -> None:
        """Take a position report: newer than the last one (by ``seq``) it becomes the base,
        and only executions sequenced after it stay on top. A report without a ``seq`` is
        ordered against nothing, so only an ``authoritative`` one (REST on reconcile) is
        taken."""
        if seq <= 0:
            if not authoritative:
                return
            self._unsettled.clear()
        elif seq <= self._pos_seq:
            return  # older than what we know: the fills after it are counted already
        else:
            self._unsettled = {k: v for k, v in self._unsettled.items() if v[0] > seq}
        self._pos_seq = max(seq, self._pos_seq)
        self.position_lots = size_lots + sum(v[1] for v in self._unsettled.values())

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
        self._track_unexecuted(m)
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
        if x.exec_type == EXEC_FUNDING:
            return event  # cash only: the position does not move
        signed = x.qty_lots if x.side == BUY else -x.qty_lots
        if x.seq <= 0 or x.seq > self._pos_seq:  # not in the last position report yet
            self.position_lots += signed
            if x.seq > 0:
                self._unsettled[x.exec_id] = (x.seq, signed)
        m = self.orders.get(x.order_link_id) if x.order_link_id else None
        if m is None:
            return event
        if not 0 < x.seq <= m.reconciled_seq:
            m.exec_lots += x.qty_lots
        if not m.done:
            # executions may arrive before the order event that reports them
            if x.leaves_lots is None:
                m.filled_lots += x.qty_lots
            else:
                m.filled_lots = max(m.filled_lots, m.qty_lots - x.leaves_lots)
            if m.filled_lots >= m.qty_lots and not m.leaves_lots_pending_amend():
                m.status = OrderStatus.FILLED
                m.pending_price_ticks = m.pending_qty_lots = None
                self._close(m)
        self._track_unexecuted(m)
        return event

    def _track_unexecuted(self, m: ManagedOrder) -> None:
        if m.unexecuted_lots:
            self._unexecuted[m.order_link_id] = m
        else:
            self._unexecuted.pop(m.order_link_id, None)

    def _on_request_error(self, err: RequestError) -> None:
        self.request_errors += 1
        m = self.orders.get(err.order_link_id)
        # refusals caused by latency races (the order filled first, the book moved under a
        # post-only amend) are routine; anything else deserves attention
        level = logging.INFO if err.code in (ERR_ORDER_NOT_FOUND, ERR_PARAMS) else logging.WARNING
        log.log(
            level, "venue refused %s %s: %s %s", err.op, err.order_link_id, err.code, err.message
        )
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
        working orders the venue does not have are closed as ``Cancelled``, except a create
        that may still arrive (never acknowledged, sent less than ``pending_timeout_ms``
        ago), which keeps counting; known ones take the venue's state (pending new/amend
        cleared, pending cancels re-sent). The position is taken from the venue's report.
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
            # an amend sent lately may still land: it keeps counting until it is answered
            # or can no longer arrive
            amend_in_flight = (
                m.status is OrderStatus.PENDING_AMEND
                and now_ms - m.sent_ms < self.pending_timeout_ms
            )
            m.order_id = order.order_id
            m.venue_status = order.status
            m.price_ticks, m.qty_lots = order.price_ticks, order.qty_lots
            m.filled_lots = order.filled_lots
            if amend_in_flight:
                result.still_in_flight.append(m.order_link_id)
            else:
                m.pending_price_ticks = m.pending_qty_lots = None
                m.status = order.status
            result.adopted.append(key)
            if resend_cancel:
                self.venue.cancel(CancelRequest(m.order_link_id, self.symbol, m.order_id))
                self.requests_sent += 1
                m.status = OrderStatus.PENDING_CANCEL
                m.sent_ms = now_ms
        for m in list(self._working.values()):
            if m.order_link_id in venue_orders:
                continue
            final = None
            if m.venue_status is None:
                # never acknowledged: ask the venue whether it ever saw the create
                final = self.venue.order_status(self.symbol, m.order_link_id)
                if final is None and now_ms - m.created_ms < self.pending_timeout_ms:
                    result.still_in_flight.append(m.order_link_id)
                    continue
            if final is not None and final.status.is_done:
                m.status = final.status
                m.filled_lots = max(m.filled_lots, final.filled_lots)
                m.reject_reason = final.reject_reason
            else:
                m.status = OrderStatus.CANCELLED
                m.reject_reason = "missing at venue on reconcile"
            m.changed_ms = now_ms
            self._close(m)
            result.missing_closed.append(m.order_link_id)
        pos = self.venue.position(self.symbol)
        self._on_position(pos.size_lots, pos.seq, authoritative=True)
        # the venue's position now includes every fill it has reported so far
        for m in self._unexecuted.values():
            m.exec_lots = m.filled_lots
            m.reconciled_seq = pos.seq
        self._unexecuted.clear()
        result.position_after_lots = self.position_lots
        self.connected = self.venue.connected
        if self.connected:
            self.links_down.discard("venue")
        else:
            self.set_link("venue", False, now_ms)
        # a request still on its way is settled by the reconcile that _check_pending_age
        # asks for once it has timed out; asking the venue again before then would only
        # repeat this REST round on every frame
        self.needs_reconcile = False
        if (
            result.orphans_cancelled
            or result.missing_closed
            or (result.position_before_lots != result.position_after_lots)
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
                    log.warning(
                        "%s %s unanswered for %d ms", m.order_link_id, m.status, now_ms - m.sent_ms
                    )
                self.needs_reconcile = True
                return

    def _chunks(
        self,
        kind: str,
        items: Sequence[_T],
        now_ms: int,
        stats: UpdateStats,
        side_of: Callable[[_T], str],
    ) -> list[Sequence[_T]]:
        """Split ``items`` into calls the rate windows allow; count the rest as deferred.

        Every order in a call counts in the ``kind`` window; a call with more than one
        order also counts once in the ``batch`` window.
        """
        out = []
        i = 0
        limiter = self.limiters[kind]
        batch = self.limiters["batch"]
        while i < len(items):
            n = min(self.max_batch, len(items) - i, limiter.available(now_ms))
            if n > 1 and batch.available(now_ms) < 1:
                n = 1
            if n <= 0:
                deferred = items[i:]
                stats.deferred_rate += len(deferred)
                self.rate_deferrals += len(deferred)
                for item in deferred:
                    self.deferrals_by_side[side_of(item)] += 1
                break
            limiter.try_take(n, now_ms)
            if n > 1:
                batch.try_take(1, now_ms)
            out.append(items[i : i + n])
            i += n
        return out

    def _send_cancels(self, cancels: list[ManagedOrder], now_ms: int, stats: UpdateStats) -> None:
        for chunk in self._chunks("cancel", cancels, now_ms, stats, lambda m: m.side):
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
        for chunk in self._chunks("amend", amends, now_ms, stats, lambda a: a[0].side):
            reqs = []
            for m, price, qty in chunk:
                reqs.append(AmendRequest(m.order_link_id, self.symbol, price, qty, m.order_id))
                m.pending_price_ticks = price
                m.pending_qty_lots = qty
                m.status = OrderStatus.PENDING_AMEND
                m.sent_ms = now_ms
                self.amends_by_side[m.side] += 1
            if len(reqs) == 1:
                self.venue.amend(reqs[0])
            else:
                self.venue.amend_batch(reqs)
            self.requests_sent += 1
            stats.requests += 1
            stats.amended += len(chunk)

    def _send_places(self, places: list, now_ms: int, stats: UpdateStats) -> None:
        for chunk in self._chunks("create", places, now_ms, stats, lambda q: q.side):
            reqs = []
            for q in chunk:
                link = self._new_link_id()
                reqs.append(
                    OrderRequest(
                        link,
                        self.symbol,
                        q.side,
                        q.price_ticks,
                        q.qty_lots,
                        post_only=self.post_only,
                    )
                )
                m = ManagedOrder(
                    link,
                    q.side,
                    q.price_ticks,
                    q.qty_lots,
                    q.level,
                    sent_ms=now_ms,
                    changed_ms=now_ms,
                    created_ms=now_ms,
                )
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
