"""A live run: the venue, the public feed and the runners, one writer at a time.

:class:`LiveSession` connects the real pybit clients (public feed, private streams, trade
socket, REST) to the local simulator or to Bybit, builds a runner per symbol through
:mod:`mmbot.build`, and loops.

Threads. pybit calls every handler on its own socket thread (public feed, private
streams, trade replies). Each frame, venue event, link change and mark goes through one
:class:`mmbot.gate.Gate`: the socket thread that received it applies it itself (book
update, risk, quote decision, order diff, order frames written to the trade socket)
whenever no other thread holds the gate, and queues it otherwise; the session thread
runs what was queued, in order, when it holds the gate next. So a frame costs no thread
hop when the session is idle, the books, runners and order managers still have one
writer at a time, and the private stream's fills and order pushes stay in order with
the frames. The session thread holds the gate for its timer tick (every 100 ms), a
config reload, the REST work below, and the stop; the dashboard's reads take it too.

Nothing that runs under a socket thread may block on I/O:

- REST calls (a reconcile, the read-back of executions missed while blind, the blind
  cancel-all and its confirmation) are asked for by the frame path
  (:meth:`mmbot.runner.Runner.defer_blocking_io`) and made by the session thread, woken
  at once; until the reconcile is done a frame may still pull quotes (risk) but not
  requote.
- SQLite writes (orders, fills, PnL snapshots, risk state and the kill latch, reloads)
  go through a :class:`mmbot.records.QueuedRecords`, which the session thread applies
  after every wake-up, outside the gate; a killed risk state is written at once by the
  thread that trips the switch.
- The trade socket's writes never wait (:class:`mmbot.bybit.clients.FrameWriter`): the
  frame goes onto the socket at once when the kernel takes it, else a writer thread
  finishes it.

An exception raised while a socket thread processes an item reaches the session thread
(the gate keeps it and :meth:`step` raises it; from then on only the session thread runs
items), so ``run`` stops and cancels everything as it would for its own exception.

Several symbols share one public connection (one :class:`BookFeed`, a book per symbol),
one trade and one private connection (one :class:`BybitVenue`), and the account caps
(:class:`mmbot.risk.AccountRisk`). Each item carries its symbol and goes to that
symbol's runner (one dict lookup); a venue event goes through the
:class:`~mmbot.runner.EventRouter`. An item for a symbol no runner quotes is logged and
counted (``unrouted``), never handed to another symbol.

Fail closed: the venue's instrument rules and fee rates are read first and the whole
configuration is validated against them before the runner exists, so a config that cannot
trade safely stops before the first order. A drop of any link (the public stream here, the
private and trade sockets in the venue) stops quoting at once and makes the session
thread cancel everything over REST until confirmed; when the links are back the runner
reads back the executions it missed and reconciles before quoting again. A kill switch
pulls every quote in the decision that trips it (cancels over the trade socket, from
whichever thread made the decision); that thread writes the latch to the database first
(the one SQLite write off the session thread), so no crash forgets the kill.

Restart: started with a database that has history, against a venue that outlived the
process (``--sim-url``, testnet, mainnet), the session replays the stored fills into PnL,
restores the kill-switch latch and drawdown peak, reconciles orders and position with the
venue, and reads back the executions it missed while it was down, each stored once (by
exec id). A latched kill switch keeps the bot from quoting until the user clears it
(``reset_kill``). The embedded simulator starts empty every time, so an existing database
is moved aside to ``<db>.prev`` instead.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import obcore
from mmbot.attribution import explain_run
from mmbot.awake import AwakeCpus
from mmbot.build import build_runners
from mmbot.bybit import BookFeed, BybitVenue
from mmbot.bybit.book_feed import DISCONNECTED
from mmbot.config import ConfigError
from mmbot.gate import Gate
from mmbot.latency import LatencyStats, age_summary_ms
from mmbot.metrics import metrics_text, run_metrics
from mmbot.pnl import format_money
from mmbot.recorder import FrameRecorder, RoundTripVenue
from mmbot.records import QueuedRecords, RiskState
from mmbot.reload import ReloadOutcome, prepare_reload
from mmbot.risk import ACCOUNT_KEY, AccountRisk
from mmbot.runner import EventRouter, Runner
from mmbot.summary import account_totals, signed_qty, trading_summary

__all__ = [
    "LiveSession",
    "chosen_symbols",
    "RemoteSim",
    "LOCAL_HOSTS",
    "move_aside",
    "start_local_sim",
    "summary_text",
]

log = logging.getLogger(__name__)

TIMER_MS = 100
# A frame that arrives while the session thread holds the gate (a timer tick, a REST
# reconcile) waits in the gate's queue for it, and the woken session thread then needs
# the GIL, which the socket thread keeps while it reads the next frames, up to the switch
# interval (5 ms by default). 0.5 ms cut that hop's p90 about 3x at 5,000 frames/s with
# no lag and the same CPU (``python -m benchmarks --feed --handoff``, benchmarks/README.md).
SWITCH_INTERVAL_S = 0.0005
# The venue counts an order in its rate window when it arrives. Measured in a two-symbol
# touch-quoting run against the simulator in this process, on the shared 2-vCPU machine
# under a test suite's load: the venue's stamp minus the local send stamp was 0-5 ms
# (p99 4 ms), and 2 of 204 requests came back 10006 with no margin. 10 ms is twice the
# worst seen, and costs 1% of the request budget.
RATE_WINDOW_MARGIN_MS = 10
_FRAME, _EVENT, _LINK, _MARK = 0, 1, 2, 3


class LiveSession:
    """One live run: venue, feed, runner and the loop that drives them.

    Parameters
    ----------
    cfg : mmbot.config.Config
    symbol : str or sequence of str
        The symbol, or the symbols, to quote (each with its ``[symbols.NAME]`` overrides).
    venue_kind : str
        ``"sim"``, ``"testnet"`` or ``"mainnet"``.
    sim : SimulatorHandle or None
        The local simulator for ``"sim"`` (started by :meth:`open` when None).
    secrets : mmbot.config.Secrets or None
        Required for testnet/mainnet.
    records : mmbot.records.Records or None
        Orders, fills and PnL snapshots are written here (use it from one thread only).
    restore : bool or None
        Restore from ``records`` and the venue (a restart). None: when ``records`` holds
        any order or fill.
    """

    def __init__(
        self,
        cfg,
        symbol: str | Sequence[str],
        venue_kind: str = "sim",
        *,
        sim=None,
        secrets=None,
        depth: int = 50,
        speed: float = 1.0,
        port: int = 0,
        records=None,
        restore: bool | None = None,
        reset_kill: bool = False,
        record: str | None = None,
        config_path: str | None = None,
    ):
        self.cfg = cfg
        #: the file :meth:`reload` reads again (None: the bundled defaults)
        self.config_path = config_path
        self._reload_wanted = threading.Event()
        self.reloads: list[ReloadOutcome] = []
        self.symbols: list[str] = [symbol] if isinstance(symbol, str) else list(symbol)
        if not self.symbols or len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"symbols must be distinct and at least one, got {symbol!r}")
        #: the first symbol (the only one in a one-symbol run)
        self.symbol = self.symbols[0]
        self.venue_kind = venue_kind
        self.sim = sim
        self._own_sim = False
        self.secrets = secrets
        self.depth = depth
        self.speed = speed
        self.port = port
        self.records = records
        self.restore = restore
        self.reset_kill = reset_kill
        self.record = record
        self.recorder = None
        self.maker_fee_rate = self.taker_fee_rate = None
        self.fee_rates: dict[str, tuple] = {}
        self.restored_fills = 0
        self.backfilled_fills = 0
        self.restored_by_symbol: dict[str, int] = {}
        self.backfilled_by_symbol: dict[str, int] = {}
        #: frames, venue events, link changes and marks go through here (module docstring)
        self.gate = Gate(self._process, allow_inline=False)
        # the runners' records: writes queued from any thread, applied by the session thread
        self._queued_records: QueuedRecords | None = None
        self._io_wanted = False  # a runner asked for run_io (REST) on the session thread
        #: frames processed, by the ident of the thread that ran them
        self.frame_threads: dict[int, int] = {}
        self._owner_ident: int | None = None  # the session thread's, set by run()
        # set by open(); the properties below refuse to be read before it
        self._venue: BybitVenue | RoundTripVenue | None = None
        self._feed: BookFeed | None = None
        self._runner: Runner | None = None
        self.runners: dict[str, Runner] = {}
        self.account: AccountRisk | None = None
        self.router: EventRouter | None = None
        self.unrouted = 0  # queued items for a symbol no runner quotes
        self.hop = LatencyStats()
        self.clock_offset_ms = 0.0
        # wall clock minus perf counter: turns a frame's receive time (perf) into wall
        # time for its age; refreshed on every timer tick so a clock step is followed
        self._wall_minus_perf_ns = time.time_ns() - time.perf_counter_ns()
        self.resyncs = 0
        self.started_s = 0.0
        self.stop_flag = threading.Event()
        self.closing = False
        self._msg_mark = (0.0, 0)
        self.msg_rate = 0.0
        #: the idle-priority spinners of ``[run] keep_cpus_awake`` (from :meth:`open`)
        self.awake: AwakeCpus | None = None

    @property
    def venue(self) -> BybitVenue | RoundTripVenue:
        """The venue (after :meth:`open`)."""
        if self._venue is None:
            raise RuntimeError("the live session is not open")
        return self._venue

    @venue.setter
    def venue(self, venue: BybitVenue | RoundTripVenue) -> None:
        self._venue = venue

    @property
    def feed(self) -> BookFeed:
        """The public book feed (after :meth:`open`)."""
        if self._feed is None:
            raise RuntimeError("the live session is not open")
        return self._feed

    @feed.setter
    def feed(self, feed: BookFeed) -> None:
        self._feed = feed

    @property
    def runner(self) -> Runner:
        """The first symbol's runner (after :meth:`open`); :attr:`runners` has them all."""
        if self._runner is None:
            raise RuntimeError("the live session is not open")
        return self._runner

    @runner.setter
    def runner(self, runner: Runner) -> None:
        self._runner = runner

    # ------------------------------------------------------------------ setup

    def open(self):
        """Start the simulator (if needed), connect venue and feed, build the runner.

        Raises
        ------
        ConfigError
            If the configuration cannot trade safely on this venue's instrument, or
            ``[run] keep_cpus_awake`` cannot hold here (before any order is sent).
        """
        cfg = self.cfg
        if cfg.run.keep_cpus_awake:
            self.awake = AwakeCpus()
            self.awake.start()
        category = cfg.venue.category
        http_base = ws_base = None
        testnet = self.venue_kind == "testnet"
        if self.venue_kind == "sim":
            if self.sim is None:
                self.sim = start_local_sim(cfg, self.symbols, self.speed, self.port)
                self._own_sim = True
            http_base, ws_base = self.sim.http_url, self.sim.ws_url
            key, secret = self.sim.api_key, self.sim.api_secret
            retry_delay = 0.2
        else:
            key, secret = self.secrets.api_key, self.secrets.api_secret
            retry_delay = 1.0
        self.venue = BybitVenue(
            self.symbols,
            category=category,
            api_key=key,
            api_secret=secret,
            testnet=testnet,
            http_base=http_base,
            ws_base=ws_base,
            http_retry_delay_s=retry_delay,
            dcp_window_s=cfg.run.dcp_window_s or None,
            connect=False,
        )
        instruments = {sym: self.venue.instrument(sym) for sym in self.symbols}
        self.fee_rates = {sym: self.venue.fee_rates(sym) for sym in self.symbols}
        self.maker_fee_rate, self.taker_fee_rate = self.fee_rates[self.symbol]
        if self.record:
            self.recorder = FrameRecorder(
                self.record,
                instruments={
                    "category": category,
                    "list": [self.venue.instrument_info(sym) for sym in self.symbols],
                },
            )
            self.venue = RoundTripVenue(self.venue, self.recorder)
        if self.reset_kill and self.records is not None:
            for key in (*self.symbols, ACCOUNT_KEY):
                self.records.save_risk_state(key, RiskState(False, "", None), self.venue.now_ms())
            log.warning("kill switch cleared by the user (--reset-kill)")
        if self.records is not None:
            self._queued_records = QueuedRecords(self.records, on_write=self.gate.wake)
        # pid and time: a restarted process must never reuse a link id of its predecessor;
        # every symbol is built (and its config checked) before any of them starts
        self.runners, self.account = build_runners(
            cfg,
            venue=self.venue,
            instruments=instruments,
            fee_rates=self.fee_rates,
            records=self._queued_records,
            books={sym: inst.new_book() for sym, inst in instruments.items()},
            link_prefix=f"mm{os.getpid() % 100000}t{int(time.time()) % 100000}-",
        )
        self.runner = self.runners[self.symbol]
        self.router = EventRouter(self.runners)
        for r in self.runners.values():
            r.defer_blocking_io(self._want_io)
            for limiter in r.orders.limiters.values():  # shared by the symbols' managers
                limiter.margin_ms = RATE_WINDOW_MARGIN_MS
        # after the config held: a config that cannot trade stops before anything else
        self.clock_offset_ms = clock_offset_ms(self.venue.http)
        for r in self.runners.values():
            r.clock_offset_ms = self.clock_offset_ms
        # Venue events arrive on pybit threads: through the gate, from the moment the
        # sockets open (the router hands them to their symbol's runner). The gate stays
        # owner-only until run(): nothing is processed before the runners have started.
        submit = self.gate.submit
        self.venue.set_handler(lambda ev: submit((_EVENT, None, ev, 0)))
        self.venue.connect()  # the config holds on this venue: now open the sockets
        # held, without running what is queued: events wait for the started runners
        self.gate.hold(self._start_runners)
        self.feed = BookFeed(
            category,
            testnet=testnet,
            ws_base=ws_base,
            on_frame=lambda sym, raw, ns: submit((_FRAME, sym, raw, ns)),
            on_status=self._on_status,
            recorder=self.recorder,
        )
        for sym, inst in instruments.items():
            self.feed.add_book(sym, inst.tick_size, inst.lot_size, depth=self.depth)
            if self.recorder is not None:  # the recorder sees raw trades; pybit needs a callback
                self.feed.subscribe("publicTrade.{symbol}", lambda message: None, sym)
            self.feed.add_ticker(sym, lambda sym, mark: submit((_MARK, sym, mark, 0)))
        self._flush_records()
        return self

    def _start_runners(self) -> None:
        restore = self.restore
        for sym, r in self.runners.items():
            again = restore
            if again is None:
                again = self.records is not None and bool(
                    self.records.load_fills(symbol=sym) or self.records.load_orders(symbol=sym)
                )
            r.start(self.venue.now_ms(), restore=again, attach=False)
            if again and self.records is not None:
                self._restore_missed_fills(sym)
            self.restore = bool(self.restore) or again
        self._flush_records()

    def _restore_missed_fills(self, symbol: str):
        """Apply the executions the venue has that the records lack for ``symbol`` (a
        restart).

        The position came from the venue in reconcile; the read-back feeds PnL, the model
        and the records, each execution once.
        """
        rec, r = self._queued_records, self.runners[symbol]
        assert rec is not None, "called on a restore, which needs records"
        stored = rec.load_fills(symbol=symbol)
        self.restored_by_symbol[symbol] = len(stored)
        for x in stored:
            r.orders.mark_seen(x.exec_id)
        if stored:
            since_ms = max(f.exec_ms for f in stored)
        else:
            orders = rec.load_orders(symbol=symbol)
            since_ms = min(o.created_ms for o in orders) if orders else self.venue.now_ms()
        # the margin catches executions stamped slightly before the newest stored one
        self.backfilled_by_symbol[symbol] = r.read_back_executions(since_ms - 60_000)
        self.restored_fills = sum(self.restored_by_symbol.values())
        self.backfilled_fills = sum(self.backfilled_by_symbol.values())
        r.write_snapshot(self.venue.now_ms())
        log.warning(
            "%s: restored %d fills from %s, %d missed fills from the venue; position %d lots",
            symbol,
            self.restored_by_symbol[symbol],
            rec.path,
            self.backfilled_by_symbol[symbol],
            r.orders.position_lots,
        )

    def _on_status(self, symbol, synced, reason):
        # runs on the feed's socket thread
        if not synced:
            self.resyncs += 1
            log.info("feed %s out of sync: %s", symbol, reason)
        if reason == DISCONNECTED:
            self.gate.submit((_LINK, symbol, False, 0))
        elif synced:
            self.gate.submit((_LINK, symbol, True, 0))

    def _want_io(self) -> None:
        # a runner needs REST (a reconcile, a blind cancel-all): maybe on a socket thread,
        # so only flag it and wake the session thread, which runs it
        self._io_wanted = True
        self.gate.wake()

    # ------------------------------------------------------------------ loop

    def _process(self, item: tuple) -> None:
        """Apply one frame, venue event, link change or mark (the gate holds: one thread
        at a time, in arrival order; often pybit's socket thread that received it)."""
        kind, symbol, payload, recv_ns = item
        now_ms = self.venue.now_ms()
        if kind == _EVENT:
            router = self.router
            assert router is not None, "the live session is not open"
            router.dispatch(payload)
            return
        runner = self.runners.get(symbol) if symbol is not None else None
        if runner is None:
            self.unrouted += 1
            log.warning("feed item for a symbol not quoted (%s), kind %d", symbol, kind)
        elif kind == _LINK:
            runner.on_link("public", payload, now_ms)
        elif kind == _MARK:
            runner.on_mark(payload / runner.instrument.price(1))
        elif self.closing:
            pass  # stopped: a frame must not requote after the cancel-all
        else:
            self.hop.add(time.perf_counter_ns() - recv_ns)
            ident = threading.get_ident()
            self.frame_threads[ident] = self.frame_threads.get(ident, 0) + 1
            try:
                runner.on_frame(
                    payload, now_ms, (recv_ns + self._wall_minus_perf_ns) / 1e6, recv_ns
                )
            except obcore.ObcoreError as exc:
                # A rejected frame leaves the book as it was but data is missing:
                # clear it (risk sees synced=False) until the resubscribe's snapshot.
                runner.book.clear()
                self.feed.resync(symbol, f"{type(exc).__name__}: {exc}")
            if not runner.book.synced:
                self.feed.resync(symbol, runner.last_book_error or "book out of sync")

    def step(self, timeout_s: float = 0.05) -> None:
        """Run what the socket threads queued while the gate was held (waiting up to
        ``timeout_s`` for it), the REST work the runners asked for, and the queued
        records writes (on the session thread only)."""
        self.gate.run_pending(timeout_s)
        if self._io_wanted:
            self._io_wanted = False
            self.gate.call(self._run_io)
        self._flush_records()

    def _run_io(self) -> None:
        now_ms = self.venue.now_ms()
        _each(self.runners.values(), lambda r: r.run_io(now_ms))

    def _flush_records(self) -> None:
        # outside the gate: SQLite waits on the disk while frames go on being processed
        if self._queued_records is not None:
            self._queued_records.flush()

    def _timer(self, now: float) -> None:
        self._wall_minus_perf_ns = time.time_ns() - time.perf_counter_ns()
        now_ms = self.venue.now_ms()
        for r in self.runners.values():
            r.run_io(now_ms)  # the blind cancel-all's retries, a reconcile not done yet
            r.on_timer(now_ms)
        if self._reload_wanted.is_set():
            self._reload_wanted.clear()
            self.reload()
        self._update_rate(now)

    def run(self, duration_s: float | None = None, on_tick=None) -> None:
        """Loop until ``duration_s`` passes, :meth:`request_stop`, or Ctrl-C; then stop.

        ``on_tick(session)`` is called every timer tick, outside the gate (it may take
        its time; :meth:`dashboard_snapshot` takes the gate for its reads).
        """
        self.started_s = time.monotonic()
        self._owner_ident = threading.get_ident()
        next_timer = 0.0
        switch = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        try:
            self.gate.allow_inline = True  # from now on a socket thread may run what it receives
            while not self.stop_flag.is_set():
                if duration_s is not None and time.monotonic() - self.started_s >= duration_s:
                    break
                self.step()
                now = time.monotonic()
                if now >= next_timer:
                    next_timer = now + TIMER_MS / 1000
                    self.gate.call(self._timer, now)
                    self._flush_records()
                    if on_tick is not None:
                        on_tick(self)
        finally:
            try:
                self.close()
            finally:
                sys.setswitchinterval(switch)

    def request_stop(self):
        """Ask :meth:`run` to stop at its next iteration (thread-safe)."""
        self.stop_flag.set()

    def request_reload(self):
        """Ask :meth:`run` to re-read the config file at its next timer tick (thread-safe;
        safe from a signal handler: it only sets a flag)."""
        self._reload_wanted.set()

    def reload(self) -> ReloadOutcome:
        """Re-read the config file and apply it if valid (on the session thread only).

        Only ``[strategy]`` and ``[risk]`` may change; the new config is validated
        completely first (see :mod:`mmbot.reload`), and a refused one leaves the running
        config as it was. Every attempt is logged and recorded in SQLite.
        """
        where = self.config_path or "default.toml"
        try:
            ready = prepare_reload(
                self.cfg,
                self.config_path,
                {sym: r.instrument for sym, r in self.runners.items()},
                {sym: self.fee_rates[sym][0] for sym in self.runners},
            )
        except ConfigError as exc:
            outcome = ReloadOutcome(False, (), f"refused: {exc}")
            log.warning("config reload from %s %s", where, outcome.message)
        else:
            for sym, part in ready.symbols.items():
                self.runners[sym].reconfigure(part.model, part.risk_limits, part.tolerance_ticks)
            if self.account is not None:
                self.account.limits = ready.account_limits
            self.cfg = ready.config
            outcome = ReloadOutcome(
                True, ready.changed, "accepted: " + (", ".join(ready.changed) or "no change")
            )
            log.warning("config reload from %s %s", where, outcome.message)
        self.reloads.append(outcome)
        if self._queued_records is not None:
            self._queued_records.record_reload(
                self.venue.now_ms(), where, outcome.accepted, outcome.changed, outcome.message
            )
        return outcome

    def _update_rate(self, now: float):
        t0, n0 = self._msg_mark
        n = self.feed.messages + self.venue.acks
        if now - t0 >= 1.0:
            self.msg_rate = (n - n0) / (now - t0) if t0 else 0.0
            self._msg_mark = (now, n)

    def close(self):
        """Cancel everything (order manager, then REST cancel-all), settle, disconnect.

        Safe after a partial :meth:`open`: it closes whatever was opened. Every step runs
        even when one raises; the first exception is raised at the end.
        """
        if self.closing:
            return
        self.closing = True
        # from here on only this thread processes what arrives (frames are dropped)
        self.gate.allow_inline = False
        if self.recorder is not None:
            # the recording ends where the quoting did: a backtest of it must not quote on
            self.recorder.close()
        steps = []
        if self.runners:
            runners = list(self.runners.values())
            steps = [
                # no queued item first, no earlier failure raised: the cancel-all goes out
                lambda: self.gate.hold(_each, runners, lambda r: r.stop(self.venue.now_ms())),
                lambda: self._drain(0.5),  # acks of requests in flight land before the sweep
                # Belt and braces: REST cancel-all catches creates that were in flight.
                lambda: _each(self.runners, self.venue.cancel_all),
                lambda: self._drain(0.5),  # let the last order/execution pushes land
                lambda: self.gate.call(
                    _each, runners, lambda r: r.write_snapshot(self.venue.now_ms())
                ),
                self._flush_records,
            ]
        if self._feed is not None:
            steps.append(self._feed.exit)
        if self._venue is not None:
            steps.append(self._venue.close)
        if self._own_sim and self.sim is not None:
            steps.append(self.sim.stop)
        if self.awake is not None:
            steps.append(self.awake.stop)
        _each(steps, lambda step: step())

    def _drain(self, seconds: float):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.step(0.05)

    # ------------------------------------------------------------------ reporting

    def dashboard_snapshot(self) -> dict:
        """Return the values the dashboard shows (any thread; it holds the gate, so the
        values are of one moment, between two frames).

        The first symbol's values sit at the top level (a one-symbol run shows them as
        before); ``rows`` has one per symbol and ``total`` the account's.
        """
        return self.gate.hold(self._dashboard_snapshot)

    def _dashboard_snapshot(self) -> dict:
        rows = [self._dashboard_row(sym, r) for sym, r in self.runners.items()]
        first = dict(rows[0])
        r = self.runner
        inst = r.instrument
        fills = r.history.fills
        t2q = r.tick_to_quote.recent_percentile(50)
        hop_p50 = self.hop.recent_percentile(50)
        return {
            **first,
            "venue": self.venue_kind,
            "connected": self.venue.connected,
            "resyncs": self.resyncs,
            "msg_rate": self.msg_rate,
            "feed_p50_us": hop_p50 / 1000 if hop_p50 is not None else None,
            "t2q_p50_us": t2q / 1000 if t2q else None,
            "elapsed_s": time.monotonic() - self.started_s if self.started_s else 0.0,
            "remaining_s": None,
            "last_reload": self.reloads[-1].message if self.reloads else None,
            "recent_fills": [
                (
                    time.strftime("%H:%M:%S", time.localtime(t / 1000)),
                    side,
                    inst.price_str(p),
                    inst.qty_str(q),
                )
                for t, side, p, q in fills[-5:]
            ],
            "rows": rows,
            "total": account_totals(self.runners, self.account),
        }

    def _dashboard_row(self, symbol: str, r: Runner) -> dict:
        inst = r.instrument
        bb, ba = r.book.best_bid(), r.book.best_ask()
        quotes = {q.side: q for q in r.last_quotes if q.level == 0}
        mark = r.mark_ticks()
        fills = r.history.fills
        return {
            "symbol": symbol,
            "bid": inst.price_str(bb[0]) if bb else "-",
            "bid_qty": inst.qty_str(bb[1]) if bb else "-",
            "ask": inst.price_str(ba[0]) if ba else "-",
            "ask_qty": inst.qty_str(ba[1]) if ba else "-",
            "our_bid": inst.price_str(quotes["Buy"].price_ticks) if "Buy" in quotes else "-",
            "our_ask": inst.price_str(quotes["Sell"].price_ticks) if "Sell" in quotes else "-",
            "position": signed_qty(inst, r.orders.position_lots),
            "open_orders": len(r.orders.working_orders()),
            "net_pnl": format_money(r.pnl.net(mark)) if mark is not None else None,
            "fees": format_money(r.pnl.fees),
            "fills": len(fills),
            "volume": inst.qty_str(sum(f[3] for f in fills)),
            "synced": r.book.synced,
            "risk": r.risk_reason,
            "frames": r.frames,
            "frame_age_ms": r.frame_age_ms,
        }

    def summary(self) -> dict:
        """Return the run's summary.

        ``symbols`` maps each symbol to its summary (:func:`mmbot.summary.trading_summary`,
        the keys every report has, plus the live ones: venue position, fee rates, restored
        fills, attribution and markouts) and ``total`` holds the account's sums and caps
        (:func:`mmbot.summary.account_totals`). A one-symbol run also has its symbol's
        keys at the top level, as before there were several.
        """
        per = {sym: self.symbol_summary(sym) for sym in self.runners}
        run = {
            "venue": self.venue_kind,
            "symbols": per,
            "total": account_totals(self.runners, self.account),
            "duration_s": round(time.monotonic() - self.started_s, 3) if self.started_s else 0,
            "book_resyncs": self.resyncs,
            "feed_reconnects": self.feed.reconnects,
            "clock_offset_ms": round(self.clock_offset_ms, 3),
            "unrouted": self.unrouted + (self.router.unrouted if self.router else 0),
            "records": self.records.path if self.records is not None else None,
            "timing_file": "timing.json",
            "config_reloads": {
                "accepted": sum(1 for o in self.reloads if o.accepted),
                "refused": sum(1 for o in self.reloads if not o.accepted),
            },
        }
        if len(per) == 1:
            return {**per[self.symbol], **run}
        return run

    def symbol_summary(self, symbol: str) -> dict:
        """Return one symbol's part of :meth:`summary`."""
        r = self.runners[symbol]
        inst = r.instrument
        venue_pos = self.venue.positions.get(symbol)
        fills = r.history.fills
        maker, taker = self.fee_rates.get(symbol, (self.maker_fee_rate, self.taker_fee_rate))
        return {
            "symbol": symbol,
            "category": inst.category,
            "model": self.cfg.for_symbol(symbol).strategy.model,
            **trading_summary(r),
            "fills_this_run": len(fills),
            "buy_fills": sum(1 for f in fills if f[1] == "Buy"),
            "sell_fills": sum(1 for f in fills if f[1] == "Sell"),
            "restored_fills": self.restored_by_symbol.get(symbol, 0),
            "backfilled_fills": self.backfilled_by_symbol.get(symbol, 0),
            "fee_rates": {"maker": str(maker), "taker": str(taker)},
            "venue_position_qty": signed_qty(inst, venue_pos.size_lots) if venue_pos else None,
            "open_orders_at_end": len(r.orders.working_orders()),
            "risk": r.risk_reason,
            "kill_switch": r.risk.kill_reason if r.risk is not None and r.risk.killed else None,
            "frame_age_ms": age_summary_ms(r.frame_age),
            "metrics": self.metrics(symbol),
            **self._explain(r),
        }

    def metrics(self, symbol: str | None = None) -> dict:
        """Return a symbol's performance figures (:func:`mmbot.metrics.run_metrics`; the
        first symbol's by default)."""
        r = self.runners[symbol or self.symbol]
        h = r.history
        span_s = (h.t_ms[-1] - h.t_ms[0]) / 1000 if h.t_ms else 0.0
        return run_metrics(
            h.t_ms,
            h.net_pnl_exact,
            r.trades,
            r.orders_sent,
            unit=r.instrument.notional(1, 1),
            duration_s=span_s,
        )

    def _explain(self, r: Runner) -> dict:
        out = explain_run(r.history, r.pnl, r.mark_ticks(), r.instrument.notional(1, 1))
        out.pop("why", None)
        return out

    def timing(self) -> dict:
        """Return the wall-clock measurements (as ``mmbot backtest``'s timing.json): the
        run's, the latencies over every symbol's frames, and ``symbols`` per symbol."""
        runners = list(self.runners.values())
        wall_s = time.monotonic() - self.started_s if self.started_s else 0.0
        frames = sum(r.frames for r in runners)
        per = {sym: _runner_timing(r) for sym, r in self.runners.items()}
        return {
            "wall_s": round(wall_s, 3),
            "frames": frames,
            "frames_per_wall_s": round(frames / wall_s, 1) if wall_s > 0 else None,
            "feed_hop_us": self.hop.summary(),
            # where the frames ran: on the socket thread that received them (the gate was
            # free) or queued for the session thread; how the order frames were written
            "gate": {"inline": self.gate.inline, "queued": self.gate.queued},
            "frames_on_session_thread": self.frame_threads.get(self._owner_ident or 0, 0),
            "trade_writes": _trade_writes(self.venue),
            **(
                {k: v for k, v in per[self.symbol].items() if k != "frames"}
                if len(runners) == 1
                else _merged_timing(runners)
            ),
            "clock_offset_ms": round(self.clock_offset_ms, 3),
            "trade_ack_ms_p50": _p50(self.venue.ack_latency_ms),
            # [run] keep_cpus_awake: the CPUs that had a spinner (latencies differ a lot)
            "awake_cpus": [] if self.awake is None else self.awake.cpus,
            "symbols": per,
        }

    def write_report(self, out_dir: str) -> dict[str, Path]:
        """Write ``summary.json``, ``timing.json`` and the charts with :mod:`mmbot.report`:
        ``chart.png`` for one symbol, ``chart-SYMBOL.png`` each for several."""
        from mmbot.report import plot_chart, write_json  # noqa: PLC0415

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        s = self.summary()
        charts: dict[str, Path] = {}
        for sym, r in self.runners.items():
            inst = r.instrument
            one = s["symbols"][sym]
            name = "chart.png" if len(self.runners) == 1 else f"chart-{sym}.png"
            title = (
                f"mmbot run {sym} on {self.venue_kind} ({one['model']}): {one['fills']} "
                f"fills, net PnL {one['net_pnl']}, max inventory {one['max_inventory_qty']}"
            )
            one["chart_file"] = name
            charts[sym] = plot_chart(
                out / name, r.history, tick_size=inst.tick_size, lot_size=inst.lot_size, title=title
            )
        if len(self.runners) == 1:
            s["chart_file"] = "chart.png"
        paths = {
            "summary": write_json(out / "summary.json", s),
            "timing": write_json(out / "timing.json", self.timing()),
        }
        if len(charts) == 1:
            paths["chart"] = charts[self.symbol]
        else:
            paths.update({f"chart-{sym}": p for sym, p in charts.items()})
        return paths


def _trade_writes(venue) -> dict:
    trade = getattr(venue, "trade", None)  # a RoundTripVenue passes it through
    queued_write = getattr(trade, "queued_write", None)
    return {
        "inline": getattr(trade, "writes_inline", None),
        "queued": getattr(trade, "writes_queued", None),
        "queued_write": None if queued_write is None else queued_write.summary(),
    }


def _runner_timing(r: Runner) -> dict:
    return {
        "frames": r.frames,
        "recv_to_book": r.recv_to_book.summary(),
        "recv_to_quote": r.recv_to_quote.summary(),
        "recv_to_order": r.recv_to_order.summary(),
        "tick_to_quote": r.tick_to_quote.summary(),
        "tick_to_order": r.tick_to_order.summary(),
        "tick_to_order_sent": r.tick_to_order_sent.summary(),
        "frame_age_ms": age_summary_ms(r.frame_age),
    }


def _merged_timing(runners: list[Runner]) -> dict:
    """The latencies of every runner's frames together (the run's percentiles)."""
    out: dict = {}
    for name in (
        "recv_to_book",
        "recv_to_quote",
        "recv_to_order",
        "tick_to_quote",
        "tick_to_order",
        "tick_to_order_sent",
    ):
        out[name] = LatencyStats.merged(getattr(r, name) for r in runners).summary()
    out["frame_age_ms"] = age_summary_ms(LatencyStats.merged(r.frame_age for r in runners))
    return out


def _each(items, action) -> None:
    """Apply ``action`` to every item even when one raises (a cancel-all per symbol must
    reach every symbol); the first exception is raised at the end."""
    first: BaseException | None = None
    for item in items:
        try:
            action(item)
        except BaseException as exc:  # noqa: BLE001  (re-raised below, after the others)
            if first is None:
                first = exc
            else:
                log.exception("also failed for %s", item)
    if first is not None:
        raise first


def clock_offset_ms(http, samples: int = 3) -> float:
    """Return the exchange's clock minus ours in ms, from its server time endpoint.

    The sample with the shortest round trip wins, its server time taken to be the local
    midpoint of the request (the error is at most half that round trip).
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    best: tuple[int, int] | None = None
    for _ in range(samples):
        t0 = time.time_ns()
        result = http.get_server_time()["result"]
        t1 = time.time_ns()
        server_ns = (
            int(result["timeNano"])
            if result.get("timeNano")
            else int(result["timeSecond"]) * 1_000_000_000
        )
        if best is None or t1 - t0 < best[0]:
            best = (t1 - t0, server_ns - (t0 + t1) // 2)
    assert best is not None  # samples >= 1
    log.debug(
        "clock offset to the venue %.3f ms (round trip %.3f ms)", best[1] / 1e6, best[0] / 1e6
    )
    return best[1] / 1e6


def _p50(values):
    data = sorted(values)
    return round(data[len(data) // 2], 3) if data else None


class RemoteSim:
    """A local simulator started elsewhere (``--sim-url``): its URLs and credentials.

    ``https://`` (or ``wss://``) is a simulator serving TLS (``mmbot sim --tls-cert``); its
    certificate must name IP 127.0.0.1 (``localhost`` is read as 127.0.0.1) and be trusted
    through ``WEBSOCKET_CLIENT_CA_BUNDLE`` and ``REQUESTS_CA_BUNDLE``.
    """

    def __init__(self, url: str, api_key: str | None = None, api_secret: str | None = None):
        from mmbot.sim.handle import sim_urls  # noqa: PLC0415
        from mmbot.sim.server import DEFAULT_API_KEY, DEFAULT_API_SECRET  # noqa: PLC0415

        parts = urlsplit(url)
        if (
            parts.scheme not in ("http", "ws", "https", "wss")
            or parts.hostname not in LOCAL_HOSTS
            or parts.port is None
        ):
            raise ValueError(
                "--sim-url must be http://127.0.0.1:PORT or https://127.0.0.1:PORT (a local "
                f"simulator), got {url!r}"
            )
        host = "127.0.0.1" if parts.hostname == "localhost" else parts.hostname
        self.port = parts.port
        self.http_url, self.ws_url = sim_urls(host, parts.port, parts.scheme in ("https", "wss"))
        self.api_key = api_key or DEFAULT_API_KEY
        self.api_secret = api_secret or DEFAULT_API_SECRET

    def stop(self):
        """Not ours to stop."""


LOCAL_HOSTS = ("127.0.0.1", "localhost")


def chosen_symbols(cfg, symbol: str | None = None, symbols: str | None = None) -> list[str]:
    """Return the symbols a run quotes: ``--symbols A,B`` (comma-separated), else
    ``--symbol``, else ``[venue] symbols`` (or ``symbol``).

    Raises
    ------
    ConfigError
        Both options given, an empty or repeated name, or a ``[symbols.NAME]`` table of
        a symbol that is not quoted (the config is checked again with these symbols).
    """
    if symbol and symbols:
        raise ConfigError("--symbol and --symbols: give one of them")
    if symbols is not None:
        names = [s.strip() for s in symbols.split(",")]
        if not all(names):
            raise ConfigError(f"--symbols: expected names separated by commas, got {symbols!r}")
    elif symbol:
        names = [symbol]
    else:
        names = list(cfg.venue.symbol_list)
    try:
        cfg.with_symbols(names)
    except ConfigError as exc:
        if not (symbol or symbols):
            raise
        raise ConfigError(f"{exc} (with --symbols {','.join(names)})") from None
    return names


def move_aside(path: str):
    """Move a database of an earlier embedded-simulator run to ``<path>.prev``."""
    if path == ":memory:" or not Path(path).exists():
        return
    for suffix in ("-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)
    os.replace(path, path + ".prev")
    log.warning("records: the embedded simulator starts empty; moved %s to %s.prev", path, path)


def start_local_sim(cfg, symbols: str | Sequence[str], speed: float, port: int):
    """Start the embedded local simulator for ``symbols`` from ``[sim]``; return its handle.

    Every symbol gets ``[sim]``'s instrument rules and start price; the synthetic markets
    differ by seed (``sim.seed`` plus the symbol's index), so the first symbol's market is
    the one a one-symbol run sees.
    """
    from mmbot.sim.server import SimSymbol, start_simulator, synthetic_source  # noqa: PLC0415

    s = cfg.sim
    names = [symbols] if isinstance(symbols, str) else list(symbols)
    syms = [
        SimSymbol(
            name,
            cfg.venue.category,
            s.tick_size,
            s.lot_size,
            s.min_order_qty,
            s.max_order_qty,
            s.min_notional_quote,
        )
        for name in names
    ]
    maker, taker = str(s.maker_fee_rate), str(s.taker_fee_rate)
    sources = {
        sym.symbol: functools.partial(
            synthetic_source,
            sym,
            seed=s.seed + i,
            depth=s.depth,
            interval_ms=s.interval_ms,
            start_price=s.start_price,
        )
        for i, sym in enumerate(syms)
    }
    handle = start_simulator(
        port,
        syms,
        sources=sources,
        speed=speed,
        interval_ms=s.interval_ms,
        maker_fee=maker,
        taker_fee=taker,
        queue_model=s.queue_model,
        queue_power=s.queue_power,
        rate_limit_per_s=s.rate_limits(cfg.venue.category).per_class(),
    )
    handle.wait_market()
    return handle


def summary_text(s: dict, t: dict, paths: dict) -> str:
    """Return the end-of-run lines printed on the terminal: per symbol, then the total."""
    hop = t["feed_hop_us"]
    t2q = t["tick_to_quote"]
    age = t.get("frame_age_ms") or {}
    per = s["symbols"]
    lines = [
        f"mmbot run {', '.join(per)} on {s['venue']}: {s['duration_s']} s, {t['frames']} frames"
    ]
    for sym, one in per.items():
        prefix = f"{sym}: " if len(per) > 1 else ""
        lines += [
            f"{prefix}fills {one['fills_this_run']} this run (buy {one['buy_fills']}, sell "
            f"{one['sell_fills']}), {one['fills']} in total with {one['restored_fills']} "
            f"restored and {one['backfilled_fills']} read back from the venue",
            f"{prefix}volume {one['volume_qty']}, final position {one['final_position_qty']} "
            f"(venue {one['venue_position_qty']}), max |position| {one['max_inventory_qty']}",
            f"{prefix}PnL realized {one['realized_pnl']}, unrealized {one['unrealized_pnl']}, "
            f"fees {one['fees']}, net {one['net_pnl']}",
            f"{prefix}orders sent {one['orders_sent']}, risk pulls {one['risk_pulls']}",
        ]
        if len(per) == 1:
            lines.append(metrics_text(one["metrics"]))
    if len(per) > 1:
        tot = s["total"]
        lines += [
            f"total: fills {tot['fills']}, PnL realized {tot['realized_pnl']}, unrealized "
            f"{tot['unrealized_pnl']}, fees {tot['fees']}, net {tot['net_pnl']}",
            f"total: gross notional {tot['gross_notional_quote']} of "
            f"{tot['max_total_notional_quote']} allowed, orders sent {tot['orders_sent']}"
            + (f"; {tot['kill_switch']}" if tot.get("kill_switch") else ""),
        ]
    lines += [
        f"feed hop (frame received -> runner thread) p50 {hop.get('p50_us')} us, "
        f"p99 {hop.get('p99_us')} us; tick-to-quote p50 {_us(t2q, 'p50')} us, "
        f"p99 {_us(t2q, 'p99')} us",
        f"frame received -> order written p50 {_us(t['recv_to_order'], 'p50')} us, p99 "
        f"{_us(t['recv_to_order'], 'p99')} us"
        + (f" (CPUs kept awake: {t['awake_cpus']})" if t.get("awake_cpus") else ""),
        f"frame age p50 {age.get('p50_ms')} ms, p99 {age.get('p99_ms')} ms, max "
        f"{age.get('max_ms')} ms (clock offset {s['clock_offset_ms']} ms)",
        f"book resyncs {s['book_resyncs']}",
    ]
    reloads = s.get("config_reloads") or {}
    if reloads.get("accepted") or reloads.get("refused"):
        lines.append(
            f"config reloads: {reloads['accepted']} accepted, {reloads['refused']} refused"
        )
    if s["records"]:
        lines.append(f"records: {s['records']}")
    if "summary" in paths:
        lines.append(f"report: {paths['summary']} (timing.json and the charts beside it)")
    if "trades" in paths:
        lines.append(f"trades: {paths['trades']}")
    return "\n".join(lines)


def _us(summary: dict, key: str):
    for k in (f"{key}_us", f"{key}_ns", key):
        if k in summary and summary[k] is not None:
            v = summary[k]
            return round(v / 1000, 2) if k.endswith("_ns") else v
    return None
