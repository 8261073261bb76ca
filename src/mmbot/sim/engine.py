"""Matching engine for simulated trading: a market book from data plus the bot's own orders.

Shared by the in-process :class:`mmbot.venue.sim.SimVenue` (backtests) and the local Bybit
v5 simulator server. It is synchronous, free of asyncio and pybit, and driven entirely by
explicit ``now_ms`` arguments, so the same inputs always give the same outputs.

Model
-----
* The **market book** is an ``obcore.Book`` fed with raw Bybit ``orderbook`` frames (a
  synthetic stream or a recording). The bot's orders are *not* in it: the data was made
  without them, so the engine keeps them on the side and never changes the market book
  (taker fills have no market impact).
* **Queue position**: a resting order joins behind the size resting at its price when it
  arrives (``queue_ahead_lots``); increases of that level join behind it, and a public
  trade at its price consumes the queue ahead of it first. A reduction of the level that
  no trade explains (cancels, or trades the data does not show) is split between the
  part ahead of us and the part behind by a named queue model (``queue_model``):

  - ``risk_averse``: every unexplained reduction is behind us; only trades advance us
    (the queue ahead is only capped at the level's new size).
  - ``prob_power`` (default, exponent ``queue_power`` = n, default 3): with ``front``
    lots ahead, ``back = before - front`` behind and an unexplained reduction ``chg``,
    the share of ``chg`` taken from ahead of us is ``(front / (front + back)) ** n``
    (Rigtorp's estimator; hftbacktest's ``ProbQueueModel`` with ``PowerProbQueueFunc3``)::

        p     = 1 - (front / (front + back)) ** n      # share of chg taken from behind
        front = front - (1 - p) * chg + min(back - p * chg, 0)
        front = min(front, after)

    The closer we are to the back of the queue, the more of a reduction is ahead of us.
    Example: 10 lots ahead, the level grows 10 -> 20, then shrinks to 15 with no trade:
    ``front = 10 - (10/20)**3 * 5 = 9.375``.
  - ``optimistic``: every reduction is ahead of us (the same example leaves 5 ahead). It
    is an upper bound on fills, not a forecast.

  The queue ahead is a model estimate in (fractional) lots, not money; fills are whole
  lots. Among the bot's own orders at one price, earlier orders are ahead of later ones
  (price-time priority).
* **Fills of resting orders** come from two sources. A *trade-through*: after a book frame
  the opposite best price reaches or crosses the order's price, meaning the level was
  traded away, so the order fills completely at its own price. A *public trade*
  (``publicTrade`` frames, when the data has them) at the order's price first consumes
  the queue ahead of it, then fills it; a trade beyond its price fills it completely.
  Both are maker fills. When a trade comes before the book delta that shows it (the
  local simulator's order), that delta's reduction of the level is not consumed from the
  queue a second time.
* **Post-only** orders that would take liquidity (cross or touch the opposite best, the
  market's or the bot's own) are cancelled on arrival with Bybit's reject reason
  ``EC_PostOnlyWillTakeLiquidity``, like Bybit does. A non-post-only limit order that
  crosses takes liquidity from the market book level by level up to its limit price
  (taker fills); the rest rests. Market orders take what is there and cancel the rest.
* **Amend** keeps queue priority only when the price is unchanged and the size is not
  increased, as on Bybit; otherwise the order goes to the back of the queue at its
  (new) price.
* **Fees**: ``fee = price * qty * rate`` in the quote currency, maker or taker rate; a
  negative maker rate is a rebate.
* **Money** is exact: the account's position, average entry, realized PnL and fees are
  kept by a :class:`mmbot.pnl.PnLTracker` (average cost, Decimal), the same accounting the
  bot uses, so the venue's numbers and the bot's can be compared to the last digit.

Every state change is returned as a list of :mod:`mmbot.types` events (order,
execution, position), in the order Bybit would push them; :mod:`mmbot.sim.protocol` turns
them into Bybit v5 shapes for the local simulator (all numbers exact decimal strings).
Requests that Bybit would refuse as a whole raise :class:`OrderRejected` carrying Bybit's
retCode; nothing is changed in that case.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import orjson

import obcore
from mmbot.instrument import Instrument
from mmbot.pnl import PnLTracker, as_decimal
from mmbot.types import (
    BUY,
    ERR_DUPLICATE_LINK_ID,
    ERR_ORDER_NOT_FOUND,
    ERR_PARAMS,
    ERR_QTY_INVALID,
    SELL,
    Execution,
    ExecutionEvent,
    Order,
    OrderEvent,
    OrderStatus,
    Position,
    PositionEvent,
)

__all__ = [
    "MatchingEngine",
    "MarketDataError",
    "OrderRejected",
    "QUEUE_MODELS",
    "REJECT_FOK",
    "REJECT_POST_ONLY",
    "FillRecord",
    "queue_after_reduction",
]

REJECT_POST_ONLY = "EC_PostOnlyWillTakeLiquidity"
#: Bybit's reject reason of a fill-or-kill order the book could not fill whole
REJECT_FOK = "EC_CancelForNoFullFill"
_TIME_IN_FORCE = ("GTC", "PostOnly", "IOC", "FOK")


class MarketDataError(ValueError):
    """A market frame the engine cannot use (unknown topic, a trade without its fields,
    frames out of time order, no ``ts``); the message quotes the frame."""


#: accepted ``queue_model`` names (see the module docstring)
QUEUE_MODELS = ("risk_averse", "prob_power", "optimistic")


def queue_after_reduction(
    model: str, power: float, front: float, before: int, after: int, chg: float
) -> float:
    """Return the queue ahead of an order after an unexplained reduction of its level.

    Parameters
    ----------
    model : {"risk_averse", "prob_power", "optimistic"}
    power : float
        The exponent n of ``prob_power``.
    front : float
        Lots ahead of the order before the change.
    before, after : int
        Market size of the level before and after the change.
    chg : float
        The part of ``before - after`` that no public trade explains (>= 0).

    Examples
    --------
    >>> queue_after_reduction("prob_power", 3, 10, 20, 15, 5)
    9.375
    >>> queue_after_reduction("risk_averse", 3, 10, 20, 15, 5)
    10
    >>> queue_after_reduction("optimistic", 3, 10, 20, 15, 5)
    5
    """
    if chg > 0:
        if model == "optimistic":
            front = front - chg
        elif model == "prob_power":
            back = before - front
            if back < 0:
                back = 0
            total = front + back
            share_ahead = (front / total) ** power if total > 0 else 1.0
            behind_share = 1.0 - share_ahead
            excess = back - behind_share * chg  # what the back could not absorb came from ahead
            front = front - share_ahead * chg + (excess if excess < 0 else 0)
    if front > after:
        front = after
    return front if front > 0 else 0


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One fill as the exchange saw it, for PnL attribution and markouts.

    ``mid2_ticks`` is twice the market mid in ticks at the fill (best bid + best ask;
    None without two sides), so half-tick mids stay integers.
    """

    exec_id: str
    order_link_id: str
    ts_ms: int
    side: str
    price_ticks: int
    qty_lots: int
    fee: Decimal
    is_maker: bool
    mid2_ticks: int | None


class OrderRejected(Exception):
    """A request the venue refuses as a whole (nothing changed).

    Attributes
    ----------
    code : int
        Bybit retCode (10001 parameter error, 110001 order not found, ...).
    message : str
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"retCode {code}: {message}")
        self.code = code
        self.message = message


@dataclass(slots=True, eq=False)
class _EOrder:
    """Mutable engine-side order (identity equality: two orders are never "equal")."""

    order_id: str
    link_id: str
    side: str
    price_ticks: int
    qty_lots: int
    filled_lots: int
    status: OrderStatus
    post_only: bool
    reduce_only: bool
    order_type: str
    created_ms: int
    updated_ms: int
    priority: int
    # a model estimate in (fractional) lots, see queue_after_reduction
    queue_ahead_lots: float
    value_ticks_lots: int
    fee: Decimal
    reject_reason: str
    tif: str

    @property
    def leaves_lots(self) -> int:
        return self.qty_lots - self.filled_lots


@dataclass(frozen=True, slots=True)
class _Fill:
    order: _EOrder
    price_ticks: int
    qty_lots: int
    is_maker: bool


class MatchingEngine:
    """Simulated exchange for one symbol.

    Parameters
    ----------
    symbol : str
    tick_size, lot_size : str
        Decimal strings of the price tick and quantity step (obcore scales).
    category : str
        "linear" or "spot" (only changes the shapes written by the ``*_dict`` methods).
    maker_fee_rate, taker_fee_rate : Decimal or str
        Fee rates as exact fractions (Bybit linear defaults 0.0002 and 0.00055). Negative means
        a rebate.
    min_qty_lots, max_qty_lots : int
        Order size bounds in lots (``max_qty_lots=0`` means unbounded).
    min_notional : Decimal or str
        Minimum ``price * qty`` of a limit order in quote currency (0 disables).
    book_kind : str or None
        obcore book variant for the market book.
    order_id_prefix : str
        Prefix of the generated ``orderId`` values (deterministic counters).
    queue_model : str
        One of :data:`QUEUE_MODELS` (see the module docstring); default ``prob_power``.
    queue_power : float
        Exponent n of ``prob_power`` (> 0).
    log_mids : bool
        Keep :attr:`mid_log` (backtests' markouts read it). A long-running simulator
        turns it off: it grows with every mid change.
    """

    def __init__(
        self,
        *,
        symbol: str,
        tick_size: str,
        lot_size: str,
        category: str = "linear",
        maker_fee_rate: Decimal | str = "0.0002",
        taker_fee_rate: Decimal | str = "0.00055",
        min_qty_lots: int = 1,
        max_qty_lots: int = 0,
        min_notional: Decimal | str = "0",
        book_kind: str | None = None,
        order_id_prefix: str = "sim",
        queue_model: str = "prob_power",
        queue_power: float = 3.0,
        log_mids: bool = True,
    ) -> None:
        if queue_model not in QUEUE_MODELS:
            raise ValueError(
                f"queue_model must be one of {', '.join(QUEUE_MODELS)}, got {queue_model!r}"
            )
        if not queue_power > 0:
            raise ValueError(f"queue_power must be > 0, got {queue_power!r}")
        self.queue_model = queue_model
        self.queue_power = float(queue_power)
        if category not in ("linear", "spot", "inverse"):
            raise ValueError(f"category must be 'linear', 'spot' or 'inverse', got {category!r}")
        if min_qty_lots < 1:
            raise ValueError(f"min_qty_lots must be >= 1, got {min_qty_lots}")
        if max_qty_lots < 0:
            raise ValueError(f"max_qty_lots must be >= 0 (0 = unbounded), got {max_qty_lots}")
        self.symbol = symbol
        self.category = category
        self.tick_size = tick_size
        self.lot_size = lot_size
        self.book = obcore.Book(tick_size=tick_size, lot_size=lot_size, kind=book_kind)
        self.maker_fee_rate = as_decimal("maker_fee_rate", maker_fee_rate)
        self.taker_fee_rate = as_decimal("taker_fee_rate", taker_fee_rate)
        # value of one tick*lot in quote currency, exact
        self._unit_value = Decimal(tick_size) * Decimal(lot_size)
        self._lot_dec = Decimal(lot_size)
        self.min_qty_lots = min_qty_lots
        self.max_qty_lots = max_qty_lots
        self.min_notional = Decimal(min_notional)
        self._position_seq = 0
        self.executions: list[Execution] = []  # every execution, oldest first
        self._order_id_prefix = order_id_prefix
        self.now_ms = 0
        self._next_order = 1
        self._next_exec = 1
        self._priority = 0
        self._orders: dict[str, _EOrder] = {}  # every order ever, by orderId
        self._by_link: dict[str, _EOrder] = {}  # every orderLinkId ever used
        self._open: dict[str, _EOrder] = {}  # open orders by orderId, insertion = time order
        # open resting orders per side and price, each list in priority order
        self._levels: dict[str, dict[int, list[_EOrder]]] = {BUY: {}, SELL: {}}
        instrument = Instrument(
            symbol,
            "spot" if category == "spot" else "linear",
            tick_size,
            lot_size,
            min_qty_lots,
            max_qty_lots or 2**62,
            self.min_notional,
        )
        self.account = PnLTracker(instrument, self.maker_fee_rate, self.taker_fee_rate)
        self.fills = 0
        self.market_frames = 0
        self.trade_frames = 0
        self.market_errors = 0  # gaps / out-of-sync frames seen in the data (book not synced)
        self.last_market_error = ""
        #: how many market levels a taker order may walk
        self.take_depth = 1000
        # lots public trades took per (resting side, price) since the last book frame: the
        # book delta that follows shows the same reduction and must not consume the queue
        # a second time
        self._traded_lots: dict[tuple[str, int], int] = {}
        #: every fill with the market mid at that moment (attribution, markouts)
        self.fill_log: list[FillRecord] = []
        #: the market mid over time: ``(ts_ms, best bid + best ask in ticks)`` at each change
        #: (stays empty without ``log_mids``)
        self.mid_log: list[tuple[int, int]] = []
        self.log_mids = log_mids

    # ------------------------------------------------------------------ market data
    def on_frame(self, frame: str | bytes | dict, now_ms: int) -> list:
        """Apply one public frame (``orderbook.*`` or ``publicTrade.*``) at ``now_ms``.

        Returns the events caused by it (fills of resting bot orders). A sequence gap or
        a delta while waiting for a snapshot leaves the market book unsynced: it is
        counted in :attr:`market_errors`, and no fills happen until a snapshot arrives.
        Other malformed frames raise the obcore error.
        """
        self.now_ms = now_ms
        topic = obcore.frame_topic(frame) or ""
        if topic.startswith("publicTrade"):
            self.trade_frames += 1
            return self._on_trade_frame(frame, now_ms)
        if not topic.startswith("orderbook"):
            raise MarketDataError(f"MatchingEngine.on_frame: unsupported topic {topic!r}")
        resting = bool(self._levels[BUY] or self._levels[SELL])
        watched = self._watched_sizes() if resting else []
        traded, self._traded_lots = self._traded_lots, {}
        try:
            self.book.apply(frame)
        except (obcore.SequenceGapError, obcore.OutOfSyncError) as exc:
            self.market_errors += 1
            self.last_market_error = f"{type(exc).__name__}: {exc}"
            return []
        self.market_frames += 1
        if not self.book.synced:
            return []
        if self.log_mids:
            self._log_mid(now_ms)
        if not resting:
            return []  # no own order rested: nothing to fill, no queue to move
        self._consume_queues(watched, traded)
        return self._trade_through(now_ms)

    def _log_mid(self, now_ms: int) -> None:
        bb, ba = self.book.best_bid(), self.book.best_ask()
        if bb is None or ba is None:
            return
        mid2 = bb[0] + ba[0]
        log = self.mid_log
        if not log or log[-1][1] != mid2:
            log.append((now_ms, mid2))

    def _watched_sizes(self) -> list[tuple[str, int, int]]:
        book = self.book
        out = []
        sides: tuple[tuple[str, Literal["b", "a"]], ...] = ((BUY, "b"), (SELL, "a"))
        for side, bookside in sides:
            for price in self._levels[side]:
                out.append((side, price, book.size_at(bookside, price)))
        return out

    def _consume_queues(
        self, watched: list[tuple[str, int, int]], traded: dict[tuple[str, int], int]
    ) -> None:
        book = self.book
        for side, price, before in watched:
            orders = self._levels[side].get(price)
            if not orders:
                continue
            after = book.size_at("b" if side == BUY else "a", price)
            if after >= before:
                continue
            # what public trades already took was consumed ahead of us in on_trade
            chg = before - after - traded.get((side, price), 0)
            model, power = self.queue_model, self.queue_power
            for order in orders:
                order.queue_ahead_lots = queue_after_reduction(
                    model, power, order.queue_ahead_lots, before, after, chg
                )

    def _trade_through(self, now_ms: int) -> list:
        fills: list[_Fill] = []
        best_ask = self.book.best_ask()
        if best_ask is not None and self._levels[BUY]:
            for price in sorted(self._levels[BUY], reverse=True):
                if price < best_ask[0]:
                    break
                for order in self._levels[BUY][price]:
                    fills.append(_Fill(order, price, order.leaves_lots, True))
        best_bid = self.book.best_bid()
        if best_bid is not None and self._levels[SELL]:
            for price in sorted(self._levels[SELL]):
                if price > best_bid[0]:
                    break
                for order in self._levels[SELL][price]:
                    fills.append(_Fill(order, price, order.leaves_lots, True))
        return self._apply_fills(fills, now_ms)

    def _on_trade_frame(self, frame: str | bytes | dict, now_ms: int) -> list:
        try:
            msg = frame if isinstance(frame, dict) else orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            raise MarketDataError(f"publicTrade frame is not JSON ({exc}): {frame[:80]!r}") from exc
        events: list = []
        for trade in msg.get("data", ()):
            try:
                taker_side = trade["S"]
                price = self.book.parse_price(trade["p"])
                qty = self.book.parse_size(trade["v"])
            except KeyError as exc:
                raise MarketDataError(
                    f"publicTrade entry misses field {exc.args[0]!r}: {trade!r}"
                ) from exc
            events.extend(self.on_trade(taker_side, price, qty, now_ms))
        return events

    def on_trade(self, taker_side: str, price_ticks: int, qty_lots: int, now_ms: int) -> list:
        """Apply one public trade: ``taker_side`` hit the book at ``price_ticks`` for ``qty_lots``.

        A Sell taker trades against bids: bot bids above the price are traded through and
        fill completely; bot bids at the price fill from what is left of ``qty_lots``
        after the queue ahead of them.
        """
        self.now_ms = now_ms
        if taker_side == SELL:
            side, through = BUY, (lambda p: p > price_ticks)
        elif taker_side == BUY:
            side, through = SELL, (lambda p: p < price_ticks)
        else:
            raise ValueError(f"taker_side must be 'Buy' or 'Sell', got {taker_side!r}")
        levels = self._levels[side]
        if not levels:
            # no own order rests on the side the trade hits: nothing fills, no queue
            # moves (the simulator calls this for every implied trade of every symbol)
            return []
        fills: list[_Fill] = []
        for price in sorted(levels, reverse=(side == BUY)):
            if through(price):
                fills.extend(_Fill(o, price, o.leaves_lots, True) for o in levels[price])
            elif price == price_ticks:
                key = (side, price)
                self._traded_lots[key] = self._traded_lots.get(key, 0) + qty_lots
                own_ahead = 0
                for order in levels[price]:
                    # the queue ahead is a fractional estimate; fills are whole lots
                    available = int(qty_lots - order.queue_ahead_lots - own_ahead)
                    own_ahead += order.leaves_lots
                    if available > 0:
                        fills.append(_Fill(order, price, min(available, order.leaves_lots), True))
                for order in levels[price]:
                    order.queue_ahead_lots = max(order.queue_ahead_lots - qty_lots, 0)
            else:
                break
        return self._apply_fills(fills, now_ms)

    # ------------------------------------------------------------------ order entry
    def place(
        self,
        *,
        order_link_id: str,
        side: str,
        price_ticks: int,
        qty_lots: int,
        now_ms: int,
        post_only: bool = True,
        reduce_only: bool = False,
        order_type: str = "Limit",
        time_in_force: str | None = None,
    ) -> list:
        """Accept a new order at ``now_ms`` and return the resulting events.

        ``time_in_force`` is Bybit's: ``GTC``, ``PostOnly``, ``IOC`` or ``FOK``; when given it
        decides post-only (``post_only`` is then ignored). When None, a limit order is
        ``PostOnly`` or ``GTC`` from ``post_only`` and a market order is ``IOC``.

        * ``IOC``: takes what the book offers up to its limit; the rest is cancelled.
        * ``FOK``: fills completely at once, or is cancelled whole with Bybit's reject
          reason ``EC_CancelForNoFullFill`` and no fill.
        * A market order is IOC whatever ``time_in_force`` says, as on Bybit.

        An empty ``order_link_id`` is allowed (Bybit's is optional); only a non-empty one
        must be unique.

        Raises
        ------
        OrderRejected
            Duplicate ``order_link_id``, bad side/type/timeInForce, size outside the
            instrument's bounds, notional below the minimum, or reduce-only that would not
            reduce.
        """
        self.now_ms = now_ms
        if side not in (BUY, SELL):
            raise OrderRejected(ERR_PARAMS, f"side must be 'Buy' or 'Sell', got {side!r}")
        if order_type not in ("Limit", "Market"):
            raise OrderRejected(
                ERR_PARAMS, f"orderType must be Limit or Market, got {order_type!r}"
            )
        if time_in_force is None:
            tif = "PostOnly" if post_only else ("IOC" if order_type == "Market" else "GTC")
        elif time_in_force in _TIME_IN_FORCE:
            tif = time_in_force
        else:
            raise OrderRejected(
                ERR_PARAMS,
                f"timeInForce must be one of {', '.join(_TIME_IN_FORCE)}, got {time_in_force!r}",
            )
        if order_type == "Market":
            if tif == "PostOnly":
                raise OrderRejected(ERR_PARAMS, "a Market order cannot be PostOnly")
            tif = "IOC"
        post_only = tif == "PostOnly"
        if len(order_link_id) > 36:
            raise OrderRejected(
                ERR_PARAMS, f"orderLinkId must be at most 36 chars, got {order_link_id!r}"
            )
        if order_link_id and order_link_id in self._by_link:
            raise OrderRejected(ERR_DUPLICATE_LINK_ID, f"duplicate orderLinkId {order_link_id!r}")
        self._check_qty(qty_lots)
        if order_type == "Limit":
            if price_ticks <= 0:
                raise OrderRejected(ERR_PARAMS, f"price must be > 0 ticks, got {price_ticks}")
            self._check_notional(price_ticks, qty_lots)
        if reduce_only:
            sign = 1 if side == BUY else -1
            if self.position_lots * sign >= 0:
                raise OrderRejected(110017, "reduce-only order would not reduce the position")
            qty_lots = min(qty_lots, abs(self.position_lots))
        order = _EOrder(
            order_id=self._new_order_id(),
            link_id=order_link_id,
            side=side,
            price_ticks=price_ticks if order_type == "Limit" else 0,
            qty_lots=qty_lots,
            filled_lots=0,
            status=OrderStatus.NEW,
            post_only=post_only,
            reduce_only=reduce_only,
            order_type=order_type,
            created_ms=now_ms,
            updated_ms=now_ms,
            priority=0,
            queue_ahead_lots=0,
            value_ticks_lots=0,
            fee=Decimal(0),
            reject_reason="",
            tif=tif,
        )
        self._orders[order.order_id] = order
        if order_link_id:
            self._by_link[order_link_id] = order
        if post_only and self._would_take(side, price_ticks):
            order.status = OrderStatus.CANCELLED
            order.reject_reason = REJECT_POST_ONLY
            return [self._order_event(order)]
        events: list = [self._order_event(order)]
        taker = self._take(order)
        if tif == "FOK" and sum(f.qty_lots for f in taker) < order.qty_lots:
            order.status = OrderStatus.CANCELLED
            order.reject_reason = REJECT_FOK
            events.append(self._order_event(order))
            return events
        if taker:
            events.extend(self._apply_fills(taker, now_ms, emit_new=False))
        if order.status.is_done:
            return events
        if tif == "IOC":
            order.status = OrderStatus.CANCELLED
            order.reject_reason = "EC_NoImmediateQtyToFill" if order.filled_lots == 0 else ""
            events.append(self._order_event(order))
            return events
        self._rest(order)
        return events

    def amend(
        self,
        *,
        now_ms: int,
        order_link_id: str = "",
        order_id: str = "",
        price_ticks: int | None = None,
        qty_lots: int | None = None,
    ) -> list:
        """Amend an open order's price and/or total size at ``now_ms``.

        Priority is kept only when the price is unchanged and the size not increased.

        Raises
        ------
        OrderRejected
            Unknown or closed order (110001), nothing changed, a size not above the
            filled size, or a post-only price that would take liquidity.
        """
        self.now_ms = now_ms
        order = self._find_open(order_link_id, order_id)
        new_price = order.price_ticks if price_ticks is None else price_ticks
        new_qty = order.qty_lots if qty_lots is None else qty_lots
        if new_price == order.price_ticks and new_qty == order.qty_lots:
            raise OrderRejected(ERR_PARAMS, "the order remains unchanged")
        if new_price <= 0:
            raise OrderRejected(ERR_PARAMS, f"price must be > 0 ticks, got {new_price}")
        if new_qty <= order.filled_lots:
            raise OrderRejected(
                ERR_QTY_INVALID,
                f"new qty {new_qty} lots is not above the filled {order.filled_lots} lots",
            )
        self._check_qty(new_qty)
        self._check_notional(new_price, new_qty)
        if new_price != order.price_ticks and order.post_only:
            if self._would_take(order.side, new_price, exclude=order):
                raise OrderRejected(
                    ERR_PARAMS, f"post-only amend to {new_price} would take liquidity"
                )
        keeps_priority = new_price == order.price_ticks and new_qty <= order.qty_lots
        if keeps_priority:
            order.qty_lots = new_qty
        else:
            self._unrest(order)
            order.price_ticks = new_price
            order.qty_lots = new_qty
        order.updated_ms = now_ms
        events: list = []
        if not keeps_priority:
            taker = self._take(order)  # only possible for non-post-only orders
            if taker:
                events.extend(self._apply_fills(taker, now_ms, emit_new=False))
            if not order.status.is_done:
                self._rest(order)
        if not order.status.is_done and not events:
            events.append(self._order_event(order))
        return events

    def cancel(self, *, now_ms: int, order_link_id: str = "", order_id: str = "") -> list:
        """Cancel an open order at ``now_ms``.

        Raises
        ------
        OrderRejected
            Unknown or already closed order (110001).
        """
        self.now_ms = now_ms
        order = self._find_open(order_link_id, order_id)
        self._unrest(order)
        order.status = OrderStatus.CANCELLED
        order.updated_ms = now_ms
        return [self._order_event(order)]

    def cancel_all(self, *, now_ms: int) -> list:
        """Cancel every open order (in time order) and return their events."""
        self.now_ms = now_ms
        events = []
        for order in list(self._open.values()):
            self._unrest(order)
            order.status = OrderStatus.CANCELLED
            order.updated_ms = now_ms
            events.append(self._order_event(order))
        return events

    # ------------------------------------------------------------------ queries
    def open_orders(self) -> list[Order]:
        """Return the open orders, oldest first."""
        return [self._snapshot(o) for o in self._open.values()]

    def get_order(self, *, order_link_id: str = "", order_id: str = "") -> Order:
        """Return any order (open or closed) by client or venue id.

        Raises
        ------
        OrderRejected
            If no such order exists (110001).
        """
        order = self._by_link.get(order_link_id) if order_link_id else self._orders.get(order_id)
        if order is None:
            raise OrderRejected(
                ERR_ORDER_NOT_FOUND, f"order {order_link_id or order_id!r} not found"
            )
        return self._snapshot(order)

    def queue_ahead(self, *, order_link_id: str) -> float:
        """Return the market lots still ahead of an open order at its price (an estimate,
        fractional under ``prob_power``)."""
        order = self._by_link.get(order_link_id)
        if order is None or order.status.is_done:
            raise OrderRejected(ERR_ORDER_NOT_FOUND, f"order {order_link_id!r} is not open")
        return order.queue_ahead_lots

    @property
    def position_lots(self) -> int:
        """The account's signed position in lots."""
        return self.account.position_lots

    @property
    def realized_pnl(self) -> Decimal:
        """Realized trading PnL, gross of fees (quote currency, exact)."""
        return self.account.realized

    @property
    def fees_paid(self) -> Decimal:
        """Fees paid, net of rebates (quote currency, exact)."""
        return self.account.fees

    def executions_since(self, start_ms: int) -> list[Execution]:
        """Return the executions at or after ``start_ms``, oldest first."""
        return [x for x in self.executions if x.exec_ms >= start_ms]

    def position(self) -> Position:
        """Return the net position and its exact average entry price."""
        avg = self.account.avg_entry_price()
        return Position(
            self.symbol,
            self.position_lots,
            avg if avg is not None else Decimal(0),
            self.now_ms,
            self._position_seq,
        )

    def mark_price(self) -> Decimal | None:
        """Return the mark price: the market book's exact mid (None without two sides)."""
        bid, ask = self.book.best_bid(), self.book.best_ask()
        if bid is None or ask is None:
            return None
        return Decimal(bid[0] + ask[0]) * Decimal(self.tick_size) / 2

    def unrealized_pnl(self, mark: Decimal | None = None) -> Decimal:
        """Return the open position's PnL in quote currency at ``mark`` (default: the
        market mid), exact."""
        if self.position_lots == 0:
            return Decimal(0)
        if mark is None:
            mark = self.mark_price()
            if mark is None:
                return Decimal(0)
        return mark * self._lot_dec * self.position_lots - self.account.cost_basis

    # ------------------------------------------------------------------ internals
    def _new_order_id(self) -> str:
        n = self._next_order
        self._next_order += 1
        return f"{self._order_id_prefix}-{n:010d}"

    def _check_qty(self, qty_lots: int) -> None:
        if qty_lots < self.min_qty_lots:
            raise OrderRejected(
                ERR_QTY_INVALID, f"qty {qty_lots} lots is below the minimum {self.min_qty_lots}"
            )
        if self.max_qty_lots and qty_lots > self.max_qty_lots:
            raise OrderRejected(
                ERR_QTY_INVALID, f"qty {qty_lots} lots is above the maximum {self.max_qty_lots}"
            )

    def _check_notional(self, price_ticks: int, qty_lots: int) -> None:
        value = Decimal(price_ticks * qty_lots) * self._unit_value
        if self.min_notional and value < self.min_notional:
            raise OrderRejected(
                110094,
                f"order value {self.book.price_str(price_ticks)} x {self.book.size_str(qty_lots)} "
                f"is below the minimum notional {self.min_notional}",
            )

    def _find_open(self, order_link_id: str, order_id: str) -> _EOrder:
        if order_link_id:
            order = self._by_link.get(order_link_id)
        elif order_id:
            order = self._orders.get(order_id)
        else:
            raise OrderRejected(ERR_PARAMS, "orderId or orderLinkId is required")
        if order is None or order.status.is_done:
            raise OrderRejected(
                ERR_ORDER_NOT_FOUND,
                f"order {order_link_id or order_id!r} does not exist or is already closed",
            )
        return order

    def _would_take(self, side: str, price_ticks: int, exclude: _EOrder | None = None) -> bool:
        if side == BUY:
            best = self.book.best_ask()
            if best is not None and price_ticks >= best[0]:
                return True
            own = [p for p, os in self._levels[SELL].items() if any(o is not exclude for o in os)]
            return bool(own) and price_ticks >= min(own)
        best = self.book.best_bid()
        if best is not None and price_ticks <= best[0]:
            return True
        own = [p for p, os in self._levels[BUY].items() if any(o is not exclude for o in os)]
        return bool(own) and price_ticks <= max(own)

    def _take(self, order: _EOrder) -> list[_Fill]:
        """Taker fills of ``order`` against the market book (no market impact)."""
        if order.post_only:
            return []
        depth = self.take_depth
        if order.side == BUY:
            levels = self.book.asks(depth)
            limit = order.price_ticks
            crosses = (lambda p: True) if order.order_type == "Market" else (lambda p: p <= limit)
        else:
            levels = self.book.bids(depth)
            limit = order.price_ticks
            crosses = (lambda p: True) if order.order_type == "Market" else (lambda p: p >= limit)
        fills = []
        remaining = order.leaves_lots
        for price, size in ((int(p), int(s)) for p, s in levels):
            if remaining <= 0 or not crosses(price):
                break
            qty = min(size, remaining)
            fills.append(_Fill(order, price, qty, False))
            remaining -= qty
        return fills

    def _rest(self, order: _EOrder) -> None:
        self._priority += 1
        order.priority = self._priority
        bookside: Literal["b", "a"] = "b" if order.side == BUY else "a"
        order.queue_ahead_lots = self.book.size_at(bookside, order.price_ticks)
        self._levels[order.side].setdefault(order.price_ticks, []).append(order)
        self._open[order.order_id] = order

    def _unrest(self, order: _EOrder) -> None:
        level = self._levels[order.side].get(order.price_ticks)
        if level is not None and order in level:
            level.remove(order)
            if not level:
                del self._levels[order.side][order.price_ticks]
        self._open.pop(order.order_id, None)

    def _mid2(self) -> int | None:
        bb, ba = self.book.best_bid(), self.book.best_ask()
        if bb is None or ba is None:
            return None
        return bb[0] + ba[0]

    def _apply_fills(self, fills: list[_Fill], now_ms: int, emit_new: bool = True) -> list:
        events: list = []
        touched: list[_EOrder] = []
        for fill in fills:
            order, qty = fill.order, fill.qty_lots
            if qty <= 0:
                continue
            qty = min(qty, order.leaves_lots)
            rate = self.maker_fee_rate if fill.is_maker else self.taker_fee_rate
            fee = Decimal(fill.price_ticks * qty) * self._unit_value * rate
            order.filled_lots += qty
            order.value_ticks_lots += fill.price_ticks * qty
            order.fee += fee
            order.updated_ms = now_ms
            if order.leaves_lots == 0:
                order.status = OrderStatus.FILLED
                self._unrest(order)
            else:
                order.status = OrderStatus.PARTIALLY_FILLED
            self.account.on_fill(order.side, fill.price_ticks, qty, is_maker=fill.is_maker, fee=fee)
            self._position_seq += 1
            self.fills += 1
            execution = Execution(
                exec_id=f"{self._order_id_prefix}-e{self._next_exec:010d}",
                order_id=order.order_id,
                order_link_id=order.link_id,
                symbol=self.symbol,
                side=order.side,
                price_ticks=fill.price_ticks,
                qty_lots=qty,
                fee=fee,
                fee_rate=rate,
                is_maker=fill.is_maker,
                exec_ms=now_ms,
                leaves_lots=order.leaves_lots,
                # one sequence for executions and positions, as Bybit's seq
                seq=self._position_seq,
            )
            self._next_exec += 1
            self.executions.append(execution)
            self.fill_log.append(
                FillRecord(
                    execution.exec_id,
                    order.link_id,
                    now_ms,
                    order.side,
                    fill.price_ticks,
                    qty,
                    fee,
                    fill.is_maker,
                    self._mid2(),
                )
            )
            events.append(ExecutionEvent(execution, now_ms))
            if order not in touched:
                touched.append(order)
        for order in touched:
            events.append(self._order_event(order))
        if touched:
            events.append(PositionEvent(self.position(), now_ms))
        return events

    def _order_event(self, order: _EOrder) -> OrderEvent:
        return OrderEvent(self._snapshot(order), self.now_ms)

    def _snapshot(self, order: _EOrder) -> Order:
        return Order(
            order_id=order.order_id,
            order_link_id=order.link_id,
            symbol=self.symbol,
            side=order.side,
            price_ticks=order.price_ticks,
            qty_lots=order.qty_lots,
            filled_lots=order.filled_lots,
            status=order.status,
            post_only=order.post_only,
            created_ms=order.created_ms,
            updated_ms=order.updated_ms,
            reject_reason=order.reject_reason,
            order_type=order.order_type,
            reduce_only=order.reduce_only,
        )

    # ------------------------------------------------------------------ simulator support
    # Used by the local Bybit simulator (mmbot.sim.account); appended as one block.

    @property
    def funding_paid(self) -> Decimal:
        """Funding paid so far (quote currency, exact; negative = received)."""
        return self.account.funding

    def order_extras(self, order_id: str) -> tuple[str, int, Decimal]:
        """Return ``(timeInForce, sum of price_ticks * lots filled, fees)`` of any order.

        Raises
        ------
        OrderRejected
            Unknown order (110001).
        """
        order = self._orders.get(order_id)
        if order is None:
            raise OrderRejected(ERR_ORDER_NOT_FOUND, f"order {order_id!r} not found")
        return order.tif, order.value_ticks_lots, order.fee

    def all_orders(self) -> list[Order]:
        """Return every order ever accepted, oldest first (open and closed)."""
        return [self._snapshot(o) for o in self._orders.values()]

    def mark_ticks(self) -> int | None:
        """Return the mark price in ticks: the book's mid rounded half-even to the tick grid
        (None without both sides). On the grid, so it parses like any Bybit price."""
        bid, ask = self.book.best_bid(), self.book.best_ask()
        if bid is None or ask is None:
            return None
        total = bid[0] + ask[0]
        half, odd = divmod(total, 2)
        if odd and half % 2:
            half += 1
        return half

    def force_close(self, *, qty_lots: int, price_ticks: int, exec_type: str, now_ms: int) -> list:
        """Close ``qty_lots`` of the position at ``price_ticks`` with the exchange's own order
        (an auto-deleverage ``AdlTrade`` or a liquidation ``BustTrade``), no fee.

        Returns ``[ExecutionEvent, PositionEvent]``; the execution's ``order_link_id`` is
        empty, as Bybit's is for orders it places itself.

        Raises
        ------
        ValueError
            A bad ``exec_type``, a non-positive price, or a size that is not a positive
            part of the open position.
        """
        if exec_type not in ("AdlTrade", "BustTrade"):
            raise ValueError(f"exec_type must be 'AdlTrade' or 'BustTrade', got {exec_type!r}")
        pos = self.position_lots
        if not isinstance(qty_lots, int) or not 0 < qty_lots <= abs(pos):
            raise ValueError(
                f"qty_lots must be 1..{abs(pos)} (the open position), got {qty_lots!r}"
            )
        if not isinstance(price_ticks, int) or price_ticks <= 0:
            raise ValueError(f"price_ticks must be a positive int, got {price_ticks!r}")
        self.now_ms = now_ms
        side = SELL if pos > 0 else BUY
        self.account.on_fill(side, price_ticks, qty_lots, is_maker=False, fee=Decimal(0))
        self._position_seq += 1
        self.fills += 1
        execution = Execution(
            exec_id=f"{self._order_id_prefix}-e{self._next_exec:010d}",
            order_id=self._new_order_id(),
            order_link_id="",
            symbol=self.symbol,
            side=side,
            price_ticks=price_ticks,
            qty_lots=qty_lots,
            fee=Decimal(0),
            fee_rate=Decimal(0),
            is_maker=False,
            exec_ms=now_ms,
            leaves_lots=0,
            exec_type=exec_type,
            seq=self._position_seq,
        )
        self._next_exec += 1
        self.executions.append(execution)
        return [ExecutionEvent(execution, now_ms), PositionEvent(self.position(), now_ms)]

    def apply_funding(
        self, *, rate: Decimal | str, now_ms: int, mark_ticks: int | None = None
    ) -> list:
        """Settle one funding interval at ``rate`` on the open position; the position
        itself does not change.

        ``fee = signed position * mark * rate``: positive is paid (a long with a positive
        rate), negative received, as in Bybit's ``Funding`` executions. Returns
        ``[ExecutionEvent, PositionEvent]``, or ``[]`` when flat.

        Raises
        ------
        ValueError
            A non-finite rate, or no mark price (no book and no ``mark_ticks``).
        """
        rate_d = as_decimal("rate", rate)
        pos = self.position_lots
        if pos == 0:
            return []
        mark = self.mark_ticks() if mark_ticks is None else mark_ticks
        if mark is None or mark <= 0:
            raise ValueError("funding needs a mark price: the book has no two sides")
        self.now_ms = now_ms
        fee = Decimal(mark * pos) * self._unit_value * rate_d
        exec_id = f"{self._order_id_prefix}-e{self._next_exec:010d}"
        self._next_exec += 1
        self.account.on_funding(fee, exec_id)
        self._position_seq += 1
        execution = Execution(
            exec_id=exec_id,
            order_id=self._new_order_id(),
            order_link_id="",
            symbol=self.symbol,
            side=BUY if pos > 0 else SELL,
            price_ticks=mark,
            qty_lots=abs(pos),
            fee=fee,
            fee_rate=rate_d,
            is_maker=False,
            exec_ms=now_ms,
            leaves_lots=0,
            exec_type="Funding",
            seq=self._position_seq,
        )
        self.executions.append(execution)
        return [ExecutionEvent(execution, now_ms), PositionEvent(self.position(), now_ms)]
