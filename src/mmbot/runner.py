"""The quoting loop: frame -> obcore book -> risk -> quote model -> order manager.

One :class:`Runner` owns one book and is driven by one thread at a time: call
:meth:`Runner.on_frame` for each raw public orderbook frame, :meth:`Runner.on_event` for
each venue event and :meth:`Runner.on_timer` periodically (for staleness checks when frames
stop). Live venues deliver events on their own threads; the live loop serializes them
with the frames (``mmbot.live`` through a :class:`mmbot.gate.Gate`; ``SimVenue`` calls
:meth:`on_event` synchronously already).

Blocking I/O: by default a frame or event may make REST calls (a reconcile, the read-back
of missed executions, a blind cancel-all). A caller that drives the runner from socket
threads calls :meth:`Runner.defer_blocking_io` first: those calls are then left to
:meth:`Runner.run_io`, which the caller runs on a thread that may block, and the frame
path only asks for it (and holds its quotes until the reconcile, though risk may still
pull them). The ``records`` writes are the caller's to keep off such threads
(``mmbot.records.QueuedRecords``).
:meth:`Runner.run` drives everything from an iterator of ``(frame_or_None, now_ms)`` (what
``SimVenue.stream`` yields) and always cancels every order on the way out, including on
``KeyboardInterrupt`` and on an unhandled exception.

Safety: the risk decision's position cap goes to the order manager with every update, which
keeps the worst case of each side inside it. When a link drops (the venue's sockets, or the
public stream through :meth:`Runner.on_link`) the order manager cancels everything over
REST; once every link is back the runner reads back the executions the venue made while it
was blind (``venue.executions``), then reconciles, then quotes again. The risk manager's
kill latch and drawdown peak are saved to ``records`` whenever they change.

The mark is the venue's mark price when the feed gives one (:meth:`Runner.on_mark`), else
the book's exact mid; either may fall between ticks, so marks are ``Decimal`` ticks.

Tick-to-quote latency is measured on every frame with ``time.perf_counter_ns``: from the
frame entering :meth:`on_frame` to the new quote prices being decided (after risk and the
model; ``tick_to_quote``), and to the order manager having handed its requests to the
venue (``tick_to_order``). A live feed passes the frame's receive time (``recv_ns``, same
clock) too: ``recv_to_book``, ``recv_to_quote`` and ``recv_to_order`` then include the
hand-off from the socket thread, and ``recv_to_order`` counts only frames whose decision
wrote order requests (the venue's send returns once the request is on the socket).
``tick_to_order_sent`` is ``tick_to_order`` over those frames only, live or not, so a
backtest and a live run compare on the same frames.

Frame age (live runs, when :attr:`Runner.clock_offset_ms` is set): the local receive time
plus the clock offset (the exchange's clock minus ours) minus the frame's ``cts`` (``ts``
when absent). A feed that falls behind still changes the book, so only the age shows the
lag; past ``max_frame_age_ms`` risk treats the book as stale. Backtests leave it off: a
recording's receive times and exchange stamps come from different clocks.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, overload

import obcore
from mmbot.latency import LatencyStats
from mmbot.metrics import Trade
from mmbot.orders import OrderManager
from mmbot.strategy.base import MarketView, Quote
from mmbot.types import (
    BUY,
    EXEC_FUNDING,
    SELL,
    ConnectionEvent,
    ExecutionEvent,
    Order,
    OrderEvent,
    PositionEvent,
    RequestError,
)
from mmbot.venue.base import Venue

__all__ = ["EventRouter", "Runner", "History"]

log = logging.getLogger(__name__)


@dataclass
class History:
    """Time series kept for the report chart (sampled, not every frame)."""

    t_ms: list[int] = field(default_factory=list)
    mid_ticks: list[float] = field(default_factory=list)
    bid_ticks: list[float] = field(default_factory=list)  # NaN when no bid is quoted
    ask_ticks: list[float] = field(default_factory=list)
    position_lots: list[int] = field(default_factory=list)
    net_pnl: list[float] = field(default_factory=list)
    #: the same net PnL, exact, for the metrics (drawdown, per-minute Sharpe)
    net_pnl_exact: list[Decimal] = field(default_factory=list)
    fills: list[tuple[int, str, int, int]] = field(default_factory=list)  # t, side, ticks, lots


class Runner:
    """Quoting loop for one symbol.

    Parameters
    ----------
    instrument : mmbot.instrument.Instrument
    venue : Venue
    model : QuoteModel
        ``quotes(view)``, ``on_book(view)``, ``on_fill(side, price_ticks, qty_lots, now_ms)``.
    risk : mmbot.risk.RiskManager or None
        None quotes without limits (tests only).
    orders : OrderManager
    pnl : mmbot.pnl.PnLTracker
    records : mmbot.records.Records or None
        Persists orders, fills and PnL snapshots.
    book : obcore.Book or None
        Defaults to ``instrument.new_book()``.
    snapshot_interval_ms : int
        How often PnL snapshots go to ``records``.
    history_interval_ms : int
        Sampling interval of :attr:`history` (0 disables it).
    """

    def __init__(
        self,
        *,
        instrument: Any,
        venue: Venue,
        model: Any,
        orders: OrderManager,
        pnl: Any,
        risk: Any = None,
        records: Any = None,
        book: Any = None,
        snapshot_interval_ms: int = 1000,
        history_interval_ms: int = 250,
    ) -> None:
        self.instrument = instrument
        self.venue = venue
        self.model = model
        # optional: models that fit fill intensities need to know which orders are live
        self._model_on_order = getattr(model, "on_order", None)
        self.risk = risk
        self.orders = orders
        self.pnl = pnl
        self.records = records
        self.book = book if book is not None else instrument.new_book()
        self.snapshot_interval_ms = snapshot_interval_ms
        self.history_interval_ms = history_interval_ms
        self.tick_to_quote = LatencyStats()
        self.tick_to_order = LatencyStats()
        # frames that wrote order requests only: recv_to_order's frames, without the hop
        self.tick_to_order_sent = LatencyStats()
        self.recv_to_book = LatencyStats()
        self.recv_to_quote = LatencyStats()
        self.recv_to_order = LatencyStats()
        #: the exchange's clock minus ours, ms; None: frame ages are not measured
        self.clock_offset_ms: float | None = None
        self.frame_age = LatencyStats()  # ns, see frame_age_ms
        self.frame_age_ms: float | None = None  # the last frame's
        self.history = History()
        #: this run's fills with fee, liquidity, ladder level and the mid (metrics, export)
        self.trades: list[Trade] = []
        self.frames = 0
        self.book_errors = 0
        self.last_book_error = ""
        self.last_book_update_ms: int | None = None
        self.quote_updates = 0  # frames whose decision sent new prices/sizes to the venue
        self.orders_sent = 0  # new orders + amends
        self.risk_reason = ""
        self.risk_pulls = 0
        self.flattens = 0
        self.started = False
        self.stopped = False
        self._last_quotes: list[Quote] = []
        self._next_snapshot_ms = 0
        self._next_history_ms = 0
        self._now_ms = 0
        self._net_key: tuple | None = None
        self._net_value: Decimal | None = None
        self.venue_mark_ticks: Decimal | None = None
        self._blind_since_ms: int | None = None
        self.readback_fills = 0
        self._risk_saved = None
        self._cap_lots = 0
        #: the account-level caps shared with the other symbols (None: this symbol alone)
        self.account: Any = None
        self._lot_value: Decimal | None = None  # one lot's notional at the last mark
        #: leave every REST call to :meth:`run_io` (see the module docstring)
        self.defer_io = False
        #: called (from any thread) when :meth:`run_io` has work; must not block
        self.on_io_wanted: Any = None
        # with defer_io: a kill pulled the quotes; run_io confirms with a REST cancel-all
        self._kill_sweep_due = False
        self._kill_swept = False

    def defer_blocking_io(self, on_io_wanted: Any) -> None:
        """Keep REST calls out of :meth:`on_frame`, :meth:`on_event` and :meth:`on_link`
        (they may run on a socket thread): call ``on_io_wanted()`` instead, and let the
        caller run :meth:`run_io` on a thread that may block."""
        self.defer_io = self.orders.defer_io = True
        self.on_io_wanted = self.orders.on_io_wanted = on_io_wanted

    @property
    def last_quotes(self) -> list[Quote]:
        """The quotes decided on the last frame or timer tick (after risk)."""
        return self._last_quotes

    # ------------------------------------------------------------------ lifecycle
    def attach_account(self, account: Any) -> None:
        """Share ``account`` (:class:`mmbot.risk.AccountRisk`) with the other symbols' runners.

        Needs a risk manager: the account's caps tighten this runner's own.
        """
        if self.risk is None:
            raise ValueError("account caps need a risk manager on every runner")
        self.account = account
        account.add(self.instrument.symbol, self.risk, self._pull_for_account)

    def _pull_for_account(self, now_ms: int) -> None:
        # the account's kill switch tripped (maybe in another symbol's decision): the
        # risk manager is latched already, a decision now pulls every quote
        if self.started and not self.stopped:
            self.on_timer(max(now_ms, self._now_ms))

    def start(self, now_ms: int, *, restore: bool = False, attach: bool = True) -> None:
        """Attach to the venue's events and reconcile with its orders and position.

        With ``restore`` (a restart), the fills stored in ``records`` are replayed into the
        PnL tracker first, so realized PnL, fees and turnover carry over. ``attach=False``
        leaves the venue's event handler to the caller (several runners on one venue
        share an :class:`EventRouter`).
        """
        self._now_ms = now_ms
        if restore and self.records is not None:
            n = self.records.replay_fills(self.pnl, symbol=self.instrument.symbol)
            log.info("restored %d fills from records", n)
        if self.records is not None and self.risk is not None:
            state = self.records.load_risk_state(self.instrument.symbol)
            if state is not None:
                self.risk.restore(state)
                self._risk_saved = state
                if state.killed:
                    log.warning(
                        "kill switch still latched from the previous run (%s); not "
                        "quoting until it is cleared",
                        state.kill_reason,
                    )
        if attach:
            self.venue.set_handler(self.on_event)
        self._reconcile_orders(now_ms)
        self.started = True
        self._refresh_account()

    def stop(self, now_ms: int | None = None) -> None:
        """Cancel every order and write a last PnL snapshot (safe to call twice)."""
        now = self._now_ms if now_ms is None else now_ms
        if self.stopped:
            return
        self.stopped = True
        try:
            self.orders.cancel_all(now)
        finally:
            self._snapshot(now, force=True)

    def run(self, stream: Iterable[tuple[Any, int]]) -> None:
        """Drive the loop from ``(frame_or_None, now_ms)`` pairs; always cancel all at the end.

        ``None`` frames are timer ticks. Exceptions (including ``KeyboardInterrupt``)
        propagate after the cancel-all was sent.
        """
        try:
            for frame, now_ms in stream:
                if not self.started:
                    self.start(now_ms)
                if frame is None:
                    self.on_timer(now_ms)
                else:
                    self.on_frame(frame, now_ms)
        finally:
            self.stop()

    # ------------------------------------------------------------------ inputs
    def on_frame(
        self,
        frame: str | bytes | dict,
        now_ms: int,
        recv_ms: float | None = None,
        recv_ns: int | None = None,
    ) -> list[Quote]:
        """Apply one public orderbook frame and requote; return the quotes decided.

        ``recv_ms``: local wall-clock time the frame was received (default ``now_ms``),
        for its age when :attr:`clock_offset_ms` is set. ``recv_ns``: the same moment on
        ``time.perf_counter_ns``, for the receive-to-book/quote/order timings.
        """
        t0 = time.perf_counter_ns()
        self._now_ms = now_ms
        self.frames += 1
        try:
            self.book.apply(frame)
            self.last_book_update_ms = now_ms
            if self.clock_offset_ms is not None:
                stamp_ms = self.book.cts or self.book.ts
                if stamp_ms:
                    age = (now_ms if recv_ms is None else recv_ms) + self.clock_offset_ms - stamp_ms
                    self.frame_age_ms = age
                    self.frame_age.add(int(age * 1e6))
        except (obcore.SequenceGapError, obcore.OutOfSyncError) as exc:
            # the live feed resubscribes on this; until a snapshot, risk sees synced=False
            self.book_errors += 1
            self.last_book_error = f"{type(exc).__name__}: {exc}"
            log.warning("book out of sync: %s", self.last_book_error)
        tb = time.perf_counter_ns()
        quotes, urgent = self._decide(now_ms)
        t1 = time.perf_counter_ns()
        sent = self._send(quotes, urgent, now_ms)
        t2 = time.perf_counter_ns()
        self.tick_to_quote.add(t1 - t0)
        self.tick_to_order.add(t2 - t0)
        if sent:
            self.tick_to_order_sent.add(t2 - t0)
        if recv_ns is not None:
            self.recv_to_book.add(tb - recv_ns)
            self.recv_to_quote.add(t1 - recv_ns)
            if sent:
                self.recv_to_order.add(t2 - recv_ns)
        self._periodic(now_ms)
        return quotes if quotes is not None else []

    def on_timer(self, now_ms: int) -> None:
        """Periodic check without new data: risk (stale book, drawdown), reconcile, snapshots."""
        self._now_ms = now_ms
        quotes, urgent = self._decide(now_ms)
        self._send(quotes, urgent, now_ms)
        self._periodic(now_ms)

    def on_event(self, event: Any) -> None:
        """Apply one venue event to the order manager, PnL, model and records."""
        was_blind = self.orders.blind
        new_exec = self.orders.on_event(event)
        if new_exec is not None:
            self._book_execution(new_exec.execution, event.ts_ms)
        elif isinstance(event, OrderEvent):
            if self._model_on_order is not None:
                self._model_on_order(event.order, event.ts_ms)
            if self.records is not None:
                self.records.record_order(event.order)
        self._track_blind(was_blind)
        if self.account is not None:
            self._refresh_account()

    def on_link(self, name: str, up: bool, now_ms: int) -> None:
        """A link other than the venue's own (e.g. ``"public"``, the book stream) went down
        or came back: while any link is down nothing is quoted and every order is cancelled
        over REST."""
        was_blind = self.orders.blind
        self.orders.set_link(name, up, now_ms)
        self._track_blind(was_blind)

    def on_mark(self, mark_ticks: Decimal | None) -> None:
        """Take the venue's mark price (in ticks, exact) for PnL and the notional cap."""
        self.venue_mark_ticks = mark_ticks
        if self.account is not None:
            self._refresh_account()

    def _track_blind(self, was_blind: bool) -> None:
        if self.orders.blind and not was_blind:
            self._blind_since_ms = self._now_ms

    def _book_execution(self, x: Any, ts_ms: int) -> None:
        """Book a new execution (the order manager has already de-duplicated it)."""
        self.pnl.on_execution(x)
        if x.exec_type != EXEC_FUNDING:
            if x.order_link_id:
                self.model.on_fill(x.side, x.price_ticks, x.qty_lots, x.exec_ms)
            if self.history_interval_ms:
                self.history.fills.append((ts_ms, x.side, x.price_ticks, x.qty_lots))
            self.trades.append(self._trade(x, ts_ms))
        if self.records is not None:
            self.records.record_fill(x)

    def reconfigure(self, model: Any, risk_limits: Any, tolerance_ticks: int) -> None:
        """Swap in a new quote model, risk limits and requote tolerance (a config reload,
        on the thread that runs this runner). The next decision uses them; orders, PnL and
        the risk state carry on."""
        self.model = model
        self._model_on_order = getattr(model, "on_order", None)
        if self.risk is not None:
            self.risk.set_limits(risk_limits)
        self.orders.tolerance_ticks = tolerance_ticks

    def _trade(self, x: Any, ts_ms: int) -> Trade:
        managed = self.orders.orders.get(x.order_link_id) if x.order_link_id else None
        bb = self.book.best_bid()
        ba = self.book.best_ask()
        return Trade(
            ts_ms,
            x.exec_id,
            x.side,
            x.price_ticks,
            x.qty_lots,
            x.fee,
            x.is_maker,
            None if managed is None else managed.level,
            bb[0] + ba[0] if bb is not None and ba is not None else None,
        )

    def read_back_executions(self, since_ms: int) -> int:
        """Apply the venue's executions since ``since_ms`` that were not seen yet (after a
        drop or a restart); return how many were new."""
        fetch = getattr(self.venue, "executions", None)
        if fetch is None:
            return 0
        new = 0
        for x in fetch(self.instrument.symbol, since_ms):
            ev = self.orders.on_event(ExecutionEvent(x, x.exec_ms))
            if ev is not None:
                self._book_execution(x, x.exec_ms)
                new += 1
        self.readback_fills += new
        if new:
            log.warning("read back %d executions missed while blind", new)
        return new

    # ------------------------------------------------------------------ decision
    def run_io(self, now_ms: int) -> None:
        """Do what :meth:`defer_blocking_io` left for a thread that may block: the REST
        cancel-all behind a kill switch's cancels, the blind cancel-all over REST, or the
        read-back and reconcile once the links are back (then decide and quote at once,
        as a frame would have)."""
        orders = self.orders
        if self._kill_sweep_due:
            self._kill_sweep_due = False
            log.warning("kill switch: cancel-all over REST behind the trade socket's cancels")
            orders.cancel_all(now_ms)
        if orders.blind:
            orders.run_io(now_ms)
        elif orders.needs_reconcile and self.venue.connected:
            self._now_ms = max(self._now_ms, now_ms)
            self._reconcile(now_ms)
            self.on_timer(now_ms)

    def _reconcile(self, now_ms: int) -> None:
        if self._blind_since_ms is not None:
            # the margin covers executions stamped before the drop was noticed
            self.read_back_executions(self._blind_since_ms - 5000)
            self._blind_since_ms = None
        self._reconcile_orders(now_ms)

    def _reconcile_orders(self, now_ms: int) -> None:
        result = self.orders.reconcile(now_ms)
        if self.records is None:
            return
        # closed here, not by a push (lost with a dropped socket): store the end too, or
        # the records keep the last push's open state for ever
        for link in result.missing_closed:
            m = self.orders.orders[link]
            self.records.record_order(
                Order(
                    m.order_id,
                    link,
                    self.instrument.symbol,
                    m.side,
                    m.price_ticks,
                    m.qty_lots,
                    m.filled_lots,
                    m.status,
                    created_ms=m.created_ms,
                    updated_ms=now_ms,
                    reject_reason=m.reject_reason,
                )
            )

    def _decide(self, now_ms: int) -> tuple[list[Quote] | None, bool]:
        """Return (quotes after risk, urgent); quotes None: leave the orders as they are
        (a reconcile is due and was left to :meth:`run_io`)."""
        orders = self.orders
        hold = False
        if orders.needs_reconcile and not orders.blind and self.venue.connected:
            if self.defer_io:
                # no REST here: hold the quotes until run_io has reconciled (risk below
                # may still pull them)
                hold = True
                if self.on_io_wanted is not None:
                    self.on_io_wanted()
            else:
                self._reconcile(now_ms)
        max_buy = max_sell = None
        decision = None
        if self.risk is not None:
            if self.account is not None:
                # the total drawdown first: a breach latches this risk manager too
                self.account.set_pnl(
                    self.instrument.symbol, self._net_pnl(self.mark_ticks()), now_ms
                )
            decision = self._evaluate_risk(now_ms)
            if self.account is not None and not decision.pull_all:
                decision = self._account_cap(decision)
            self.risk_reason = decision.reason
            if decision.flatten and orders.position_lots != 0:
                if orders.flatten(now_ms) is not None:
                    self.flattens += 1
            self._save_risk_state(now_ms)
            if decision.pull_all:
                self.risk_pulls += 1
                if self.defer_io and self.risk.killed and not self._kill_swept:
                    # the cancels this decision sends go over the trade socket now (rate
                    # limited); a REST cancel-all behind them catches the rest, off this path
                    self._kill_swept = self._kill_sweep_due = True
                    if self.on_io_wanted is not None:
                        self.on_io_wanted()
                return [], True
            if hold:
                return None, False
            max_buy = decision.max_buy_lots
            max_sell = decision.max_sell_lots
            self._cap_lots = decision.cap_lots
        elif hold:
            return None, False
        view = MarketView(
            self.book, orders.position_lots, now_ms, self.instrument, max_buy, max_sell
        )
        if not self.book.synced or self.book.best_bid() is None or self.book.best_ask() is None:
            return [], True
        self.model.on_book(view)
        quotes = self.model.quotes(view)
        urgent = False
        if decision is not None and not (decision.allow_buy and decision.allow_sell):
            quotes = [
                q for q in quotes if (decision.allow_buy if q.side == BUY else decision.allow_sell)
            ]
            urgent = True
        return quotes, urgent

    def _account_cap(self, decision: Any) -> Any:
        """Tighten ``decision`` to the room the account's other symbols leave."""
        mark = self.mark_ticks()
        self._lot_value = None if mark is None else self.instrument.notional(1, 1) * mark
        room = self.account.cap_lots(self.instrument.symbol, self._lot_value)
        if room >= decision.cap_lots:
            return decision
        self.account.cap_limited += 1
        inflight_buy, inflight_sell = self.orders.inflight_lots()
        pos = self.orders.position_lots
        max_buy = min(decision.max_buy_lots, max(room - pos - inflight_buy, 0))
        max_sell = min(decision.max_sell_lots, max(room + pos - inflight_sell, 0))
        if max_buy and max_sell:
            reason = decision.reason
        else:
            blocked = (
                "buys and sells"
                if not (max_buy or max_sell)
                else ("buys" if not max_buy else "sells")
            )
            reason = f"account notional limit {room} lots: no {blocked}"
        return dataclasses.replace(
            decision,
            allow_buy=max_buy > 0,
            allow_sell=max_sell > 0,
            reason=reason,
            max_buy_lots=max_buy,
            max_sell_lots=max_sell,
            cap_lots=room,
        )

    def gross_lots(self) -> int:
        """Return the worst-case absolute position (lots): the larger of position plus
        every working buy and minus (position minus every working sell)."""
        long_worst, short_worst = self.orders.exposure()
        return max(long_worst, -short_worst, 0)

    def _refresh_account(self) -> None:
        """Report this symbol's worst-case gross notional to the account."""
        if self.account is None:
            return
        lots = self.gross_lots()
        mark = self.mark_ticks()
        if mark is None:
            value = Decimal(0) if lots == 0 else None
        else:
            value = self.instrument.notional(lots, 1) * mark
        self.account.set_exposure(self.instrument.symbol, value)

    def _save_risk_state(self, now_ms: int) -> None:
        if self.records is None:
            return
        state = self.risk.durable_state()
        if state != self._risk_saved:
            self.records.save_risk_state(self.instrument.symbol, state, now_ms)
            self._risk_saved = state

    def _evaluate_risk(self, now_ms: int):
        mark = self.mark_ticks()
        inflight_buy, inflight_sell = self.orders.inflight_lots()
        return self.risk.evaluate(
            position_lots=self.orders.position_lots,
            mark_ticks=mark,
            pnl=self._net_pnl(mark),
            book_synced=self.book.synced,
            last_book_update_ms=self.last_book_update_ms,
            venue_connected=self.venue.connected and not self.orders.blind,
            now_ms=now_ms,
            inflight_buy_lots=inflight_buy,
            inflight_sell_lots=inflight_sell,
            frame_age_ms=self.frame_age_ms,
        )

    @overload
    def _net_pnl(self, mark: None) -> None: ...
    @overload
    def _net_pnl(self, mark: int | Decimal) -> Decimal: ...
    @overload
    def _net_pnl(self, mark: int | Decimal | None) -> Decimal | None: ...

    def _net_pnl(self, mark: int | Decimal | None) -> Decimal | None:
        """Net PnL at ``mark``, cached: exact Decimal math costs microseconds per frame."""
        if mark is None:
            return None
        key = (mark, self.pnl.fill_count, self.pnl.funding)
        if key != self._net_key:
            self._net_key = key
            self._net_value = self.pnl.net(mark)
        return self._net_value

    def _send(self, quotes: list[Quote] | None, urgent: bool, now_ms: int) -> int:
        """Hand the quotes to the order manager; return how many orders changed."""
        if self.stopped:  # after the cancel-all nothing may quote again
            self._last_quotes = []
            return 0
        if quotes is None:  # held until a reconcile: the orders stay as they are
            return 0
        self._last_quotes = quotes
        cap = self._cap_lots if self.risk is not None else None
        stats = self.orders.update(
            quotes, now_ms, urgent=urgent, max_long_lots=cap, max_short_lots=cap
        )
        if self.account is not None:
            self._refresh_account()
        if stats.changed:
            self.quote_updates += 1
            self.orders_sent += stats.changed
        return stats.changed

    def mark_ticks(self) -> Decimal | None:
        """Return the mark in (possibly fractional) ticks: the venue's mark price when
        known, else the book's exact mid; None without either."""
        if self.venue_mark_ticks is not None:
            return self.venue_mark_ticks
        bb = self.book.best_bid()
        ba = self.book.best_ask()
        if bb is None or ba is None:
            return None
        return Decimal(bb[0] + ba[0]) / 2

    def mark_price(self) -> Decimal | None:
        """Return the mark as a price (quote currency per unit), exact."""
        mark = self.mark_ticks()
        return None if mark is None else mark * self.instrument.price(1)

    # ------------------------------------------------------------------ bookkeeping
    def _periodic(self, now_ms: int) -> None:
        if self.history_interval_ms and now_ms >= self._next_history_ms:
            self._next_history_ms = now_ms + self.history_interval_ms
            self._sample_history(now_ms)
        self._snapshot(now_ms)

    def _sample_history(self, now_ms: int) -> None:
        h = self.history
        bb = self.book.best_bid()
        ba = self.book.best_ask()
        if bb is None or ba is None:
            return
        nan = float("nan")
        bids = [q.price_ticks for q in self._last_quotes if q.side == BUY and q.level == 0]
        asks = [q.price_ticks for q in self._last_quotes if q.side == SELL and q.level == 0]
        mark = self.mark_ticks()
        assert mark is not None, "a book with both sides has a mark"
        h.t_ms.append(now_ms)
        h.mid_ticks.append((bb[0] + ba[0]) / 2)
        h.bid_ticks.append(float(bids[0]) if bids else nan)
        h.ask_ticks.append(float(asks[0]) if asks else nan)
        h.position_lots.append(self.orders.position_lots)
        net = self._net_pnl(mark)
        h.net_pnl.append(float(net))
        h.net_pnl_exact.append(net)

    def write_snapshot(self, now_ms: int) -> None:
        """Write a PnL snapshot to ``records`` now (no-op without records)."""
        self._snapshot(now_ms, force=True)

    def _snapshot(self, now_ms: int, force: bool = False) -> None:
        if self.records is None:
            return
        if not force and now_ms < self._next_snapshot_ms:
            return
        self._next_snapshot_ms = now_ms + self.snapshot_interval_ms
        self.records.record_pnl(self.pnl.snapshot(self.mark_ticks(), now_ms))


class EventRouter:
    """Hands each venue event to the runner of its symbol (several runners, one venue).

    Orders, executions and positions carry their symbol (one dict lookup); a request
    error carries the order's link id, whose prefix is the runner's (with one runner, any
    link id: an earlier process's orphan); a connection event, and an error of a
    cancel-all (no link id), goes to every runner. An event no runner
    owns is logged and counted (:attr:`unrouted`), never given to another symbol's runner.
    """

    def __init__(self, runners: Mapping[str, Runner]) -> None:
        self.runners = dict(runners)
        prefixes = [r.orders.link_prefix for r in self.runners.values()]
        for a in prefixes:
            for b in prefixes:
                if a is not b and b.startswith(a):
                    raise ValueError(f"link prefix {a!r} is a prefix of {b!r}: ambiguous")
        self._by_prefix = [(r.orders.link_prefix, r) for r in self.runners.values()]
        self.unrouted = 0

    def targets(self, event: Any) -> list[Runner]:
        """Return the runners ``event`` belongs to (empty: none, it is logged)."""
        symbol = None
        if isinstance(event, OrderEvent):
            symbol = event.order.symbol
        elif isinstance(event, ExecutionEvent):
            symbol = event.execution.symbol
        elif isinstance(event, PositionEvent):
            symbol = event.position.symbol
        elif isinstance(event, ConnectionEvent):
            return list(self.runners.values())
        elif isinstance(event, RequestError):
            if not event.order_link_id:
                return list(self.runners.values())
            for prefix, owner in self._by_prefix:
                if event.order_link_id.startswith(prefix):
                    return [owner]
            if len(self.runners) == 1:  # an earlier process's link id: the one symbol's
                return list(self.runners.values())
        found = self.runners.get(symbol) if symbol is not None else None
        if found is None:
            self.unrouted += 1
            log.warning("venue event for no quoted symbol (%s): %r", symbol, event)
            return []
        return [found]

    def dispatch(self, event: Any) -> None:
        """Apply ``event`` to its runners."""
        for runner in self.targets(event):
            runner.on_event(event)
