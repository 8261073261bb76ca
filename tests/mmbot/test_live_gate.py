"""``mmbot run``'s threads, against the real simulator over loopback: frames are processed
on pybit's socket thread that received them, every REST call and every SQLite write runs
on the session thread, the records are complete, and nothing is sent after the stop.

The spies below record which thread made a call and pass it through to the real object.
"""

from __future__ import annotations

import threading
import time

import pytest
from support.waiting import wait_for

from mmbot.config import load_config
from mmbot.live import LiveSession
from mmbot.records import Records
from mmbot.sim.server import SimSymbol

pytestmark = pytest.mark.slow  # real sockets to a simulator on 127.0.0.1

SYM = "BTCUSDT"


@pytest.fixture
def sim(start_sim):
    return start_sim(symbols=[SimSymbol(SYM)], speed=2.0)


def spy(obj, name: str, log: list):
    """Replace ``obj.name`` by a call that logs (name, thread ident, perf ns) first."""
    real = getattr(obj, name)

    def call(*args, **kwargs):
        log.append((name, threading.get_ident(), time.perf_counter_ns()))
        return real(*args, **kwargs)

    setattr(obj, name, call)


def test_frames_run_on_the_socket_thread_and_blocking_io_on_the_session_thread(tmp_path, sim):
    records = Records(tmp_path / "mmbot.sqlite")
    session = LiveSession(load_config(None), SYM, "sim", sim=sim, records=records).open()
    rest: list = []
    spy(session.venue.http, "_submit_request", rest)
    writes: list = []
    for name in ("record_order", "record_fill", "record_pnl", "save_risk_state"):
        spy(records, name, writes)
    sends: list = []
    for name in ("place", "amend", "place_batch", "amend_batch"):
        spy(session.venue, name, sends)
    stops: list = []
    spy(session.runner, "stop", stops)

    t = threading.Thread(target=session.run, kwargs={"duration_s": 60}, daemon=True)
    t.start()
    try:
        assert wait_for(lambda: len(sim.open_orders(SYM)) >= 2, timeout_s=10)
        sim.taker_hit(SYM, "Buy")  # a fill: an execution push, an order push, records
        assert wait_for(lambda: session.runner.orders.position_lots != 0, timeout_s=10)
        sim.drop("private")  # blind: the REST cancel-all, then read-back and reconcile
        # (the reconnect is quick: what shows the drop is the cancel-all it made)
        assert wait_for(lambda: session.runner.orders.blind_cancel_alls >= 1, timeout_s=10)
        assert wait_for(lambda: not session.runner.orders.blind, timeout_s=10)
        assert wait_for(lambda: len(sim.open_orders(SYM)) >= 2, timeout_s=10)  # quoting again
        frames = session.runner.frames
        assert wait_for(lambda: session.runner.frames >= frames + 20, timeout_s=10)
    finally:
        session.request_stop()
        t.join(30)
    assert not t.is_alive()
    session_thread = t.ident

    # the frames ran on the public socket's thread (pybit's), not the session thread
    feed_thread = session.feed.wst.ident
    assert session.frame_threads.get(feed_thread, 0) > session.runner.frames // 2
    assert session.gate.inline > 0
    # every REST call after the start ran on the session thread: reconcile, the blind
    # cancel-all and its confirmation, the read-back, the final cancel-all
    assert rest and {ident for _, ident, _ in rest} == {session_thread}
    # every SQLite write too, and none was left behind
    assert writes and {ident for _, ident, _ in writes} == {session_thread}
    assert session._queued_records is not None and session._queued_records.pending() == 0

    # the records are complete: every execution, every order in its final state, PnL
    venue_execs = {x["execId"] for x in sim.executions(SYM)}
    assert venue_execs and {f.exec_id for f in records.load_fills(symbol=SYM)} == venue_execs
    stored = {o.order_link_id: o for o in records.load_orders(symbol=SYM)}
    ours = session.runner.orders.orders
    assert set(ours) <= set(stored)
    wrong = {
        link: (stored[link].status, m.status.value, m.reject_reason)
        for link, m in ours.items()
        if m.done and stored[link].status != m.status.value
    }
    assert not wrong
    assert not records.load_orders(open_only=True, symbol=SYM)
    assert records.load_pnl()

    # nothing was sent after the stop began, and nothing is left at the venue
    ((_, _, stop_ns),) = stops
    assert sends and all(ns < stop_ns for _, _, ns in sends)
    assert sim.open_orders(SYM) == []
    assert session.runner.orders.position_lots == sim.position_lots(SYM)
    timing = session.timing()
    assert timing["gate"]["inline"] > 0 and timing["trade_writes"]["inline"] > 0
    records.close()


def test_an_order_a_reconcile_closes_is_stored_closed(tmp_path, sim):
    # The private stream drops: the REST cancel-all takes the quotes down, but their
    # "Cancelled" pushes are lost with the socket, so after the reconnect the reconcile
    # finds them gone and closes them. The records must say so too: they used to keep
    # the last push ("New"), an open order forever in the database.
    records = Records(tmp_path / "mmbot.sqlite")
    session = LiveSession(load_config(None), SYM, "sim", sim=sim, records=records).open()
    t = threading.Thread(target=session.run, kwargs={"duration_s": 60}, daemon=True)
    t.start()
    try:
        assert wait_for(lambda: len(sim.open_orders(SYM)) >= 2, timeout_s=10)
        closed_before = len(session.runner.orders.orders)
        sim.drop("private")
        assert wait_for(lambda: session.runner.orders.blind_cancel_alls >= 1, timeout_s=10)
        assert wait_for(lambda: not session.runner.orders.blind, timeout_s=10)
        assert wait_for(lambda: len(sim.open_orders(SYM)) >= 2, timeout_s=10)
        assert len(session.runner.orders.orders) > closed_before  # quoting with new orders
    finally:
        session.request_stop()
        t.join(30)
    assert not t.is_alive()
    assert sim.open_orders(SYM) == []
    assert [o.order_link_id for o in records.load_orders(open_only=True, symbol=SYM)] == []
    records.close()


def test_a_kill_cancels_and_sweeps_over_rest_on_the_session_thread(sim):
    from mmbot.config import parse_config  # noqa: PLC0415

    session = LiveSession(
        parse_config({"risk": {"max_drawdown_quote": "0.000001"}}), SYM, "sim", sim=sim
    ).open()
    rest: list = []
    spy(session.venue.http, "cancel_all_orders", rest)
    cancels: list = []
    for name in ("cancel", "cancel_batch"):
        spy(session.venue, name, cancels)
    quotes: list = []
    for name in ("place", "amend", "place_batch", "amend_batch"):
        spy(session.venue, name, quotes)
    risk = session.runner.risk
    killed_at: list = []
    evaluate = risk.evaluate

    def evaluate_and_note(**kw):
        decision = evaluate(**kw)
        if risk.killed and not killed_at:
            killed_at.append(time.perf_counter_ns())
        return decision

    risk.evaluate = evaluate_and_note
    t = threading.Thread(target=session.run, kwargs={"duration_s": 60}, daemon=True)
    t.start()
    try:
        assert wait_for(lambda: len(sim.open_orders(SYM)) >= 2, timeout_s=10)
        sim.taker_hit(SYM, "Buy")  # the fee is a drawdown from 0: the kill switch trips
        assert wait_for(lambda: session.runner.risk.killed, timeout_s=10)
        assert wait_for(lambda: rest, timeout_s=10)  # the REST sweep behind the cancels
        assert wait_for(lambda: not sim.open_orders(SYM), timeout_s=10)
    finally:
        session.request_stop()
        t.join(30)
    assert not t.is_alive()
    (kill_ns,) = killed_at
    # the decision that tripped the switch cancelled over the trade socket (an order with
    # a request in flight waits for its answer), and the REST sweep came after it, on the
    # session thread
    assert cancels and rest[0][2] > kill_ns
    assert rest[0][1] == t.ident
    assert all(ns < kill_ns for _, _, ns in quotes)  # nothing quoted after the kill
    assert sim.open_orders(SYM) == []


class StrategyBug(Exception):
    pass


class ExplodingModel:
    """Quotes as the real model does until told to raise (a strategy bug), and then only
    off the session thread (on a socket thread, processing a frame)."""

    def __init__(self, inner):
        self.inner = inner
        self.explode = False
        self.session_thread: threading.Thread | None = None

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def quotes(self, view):
        if self.explode and threading.current_thread() is not self.session_thread:
            raise StrategyBug("strategy bug")
        return self.inner.quotes(view)


def test_an_error_on_the_socket_thread_stops_the_session_and_cancels_everything(sim):
    session = LiveSession(load_config(None), SYM, "sim", sim=sim).open()
    model = ExplodingModel(session.runner.model)
    session.runner.model = model
    raised: list = []

    def run():
        try:
            session.run(duration_s=60)
        except BaseException as exc:  # noqa: BLE001  (the assertion below looks at it)
            raised.append(exc)

    t = threading.Thread(target=run, daemon=True)
    model.session_thread = t
    t.start()
    assert wait_for(lambda: len(sim.open_orders(SYM)) >= 2, timeout_s=10)
    model.explode = True  # the next frame's decision raises, on pybit's socket thread
    t.join(30)
    assert not t.is_alive(), "the session went on after the error"
    assert len(raised) == 1 and isinstance(raised[0], StrategyBug)  # the owner saw it
    assert session.gate.failed
    assert sim.open_orders(SYM) == []  # and the stop cancelled everything


def test_the_kill_latch_is_on_disk_before_the_decision_that_trips_it_returns(tmp_path, sim):
    # The latch went through the queue like every other write, and the session thread
    # wrote it one wake-up after the decision: a crash in between restarted the bot
    # quoting, the kill forgotten. Now the thread that trips the switch writes it itself.
    from mmbot.config import parse_config  # noqa: PLC0415

    records = Records(tmp_path / "mmbot.sqlite")
    session = LiveSession(
        parse_config({"risk": {"max_drawdown_quote": "0.000001"}}),
        SYM,
        "sim",
        sim=sim,
        records=records,
    ).open()
    saves: list = []
    save = records.save_risk_state

    def save_and_note(symbol, state, now_ms):
        save(symbol, state, now_ms)
        saves.append((state.killed, threading.get_ident(), time.perf_counter_ns()))

    records.save_risk_state = save_and_note
    runner = session.runner
    decisions: list = []  # (thread, start ns, end ns, killed after) of each frame or tick
    for name in ("on_frame", "on_timer"):
        real = getattr(runner, name)

        def timed(*args, _real=real, **kwargs):
            t0 = time.perf_counter_ns()
            try:
                return _real(*args, **kwargs)
            finally:
                decisions.append(
                    (threading.get_ident(), t0, time.perf_counter_ns(), runner.risk.killed)
                )

        setattr(runner, name, timed)
    t = threading.Thread(target=session.run, kwargs={"duration_s": 60}, daemon=True)
    t.start()
    try:
        assert wait_for(lambda: len(sim.open_orders(SYM)) >= 2, timeout_s=10)
        sim.taker_hit(SYM, "Buy")  # the fee is a drawdown from 0: the kill switch trips
        assert wait_for(lambda: runner.risk.killed, timeout_s=10)
    finally:
        session.request_stop()
        t.join(30)
    assert not t.is_alive()
    # the first frame or tick after which the switch was latched is the one that tripped it
    ident, start, end, _ = next(d for d in sorted(decisions, key=lambda d: d[2]) if d[3])
    (latch,) = [s for s in saves if s[0]][:1]
    assert latch[1] == ident, "the latch was written by another thread than the decision's"
    assert start < latch[2] < end, "the latch was written after the decision returned"
    assert records.load_risk_state(SYM).killed
    records.close()
