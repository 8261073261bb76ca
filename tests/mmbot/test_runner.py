"""The runner: two-sided quotes with latency measured, and every order cancelled on an
unhandled error (a strategy bug or Ctrl-C)."""

from __future__ import annotations

import pytest

from mmbot.config import apply_overrides, load_config
from mmbot.orders import OrderManager
from mmbot.pnl import PnLTracker
from mmbot.runner import Runner
from mmbot.sim.engine import MatchingEngine
from mmbot.strategy import build_model
from mmbot.venue.sim import SimVenue
from obcore.synthetic import generate_frames


class Boom(Exception):
    pass


class ExplodingModel:
    """Quotes normally, then raises (an unhandled strategy bug)."""

    def __init__(self, inner, after_frames: int, exc=Boom):
        self.inner = inner
        self.after = after_frames
        self.exc = exc
        self.calls = 0

    def on_book(self, view):
        self.inner.on_book(view)

    def on_fill(self, *a):
        self.inner.on_fill(*a)

    def quotes(self, view):
        self.calls += 1
        if self.calls > self.after:
            raise self.exc("strategy bug")
        return self.inner.quotes(view)


def make_runner(model_wrapper=None):
    cfg = apply_overrides(load_config(), {"strategy.fixed.half_spread_bps": 0.3})
    ins = cfg.sim.instrument("BTCUSDT")
    engine = MatchingEngine(symbol="BTCUSDT", tick_size="0.1", lot_size="0.001")
    venue = SimVenue(engine, order_latency_ms=2, md_latency_ms=1)
    model = build_model(cfg)
    if model_wrapper is not None:
        model = model_wrapper(model)
    orders = OrderManager(venue, "BTCUSDT", min_quote_lifetime_ms=0)
    runner = Runner(
        instrument=ins,
        venue=venue,
        model=model,
        orders=orders,
        pnl=PnLTracker(ins, "0.0002", "0.00055"),
    )
    return runner, venue, engine


@pytest.mark.parametrize("exc", [Boom, KeyboardInterrupt])
def test_runner_cancels_everything_on_unhandled_error(exc):
    runner, venue, engine = make_runner(lambda m: ExplodingModel(m, 50, exc))
    with pytest.raises(exc):
        runner.run(venue.stream(generate_frames(messages=500, depth=50, seed=3)))
    assert runner.stopped
    assert engine.open_orders()  # orders were resting when the error hit ...
    venue.advance(venue.now_ms() + 100)
    assert engine.open_orders() == []  # ... and the cancel-all took them all down
    assert runner.orders.all_done()
    # frames arriving after the stop never requote
    sent = runner.orders.requests_sent
    runner.model.after = 10**9  # the model works again; the runner must still stay quiet
    for frame, now in venue.stream(generate_frames(messages=20, depth=50, seed=4)):
        runner.on_frame(frame, now)
    assert runner.orders.requests_sent == sent


def test_runner_quotes_two_sided_and_measures_latency():
    runner, venue, engine = make_runner()
    runner.run(venue.stream(generate_frames(messages=300, depth=50, seed=3), timer_ms=100))
    assert runner.frames == 300 and runner.tick_to_quote.count == 300
    assert runner.quote_updates > 0 and runner.orders_sent >= 2
    h = runner.history
    pairs = [
        (b, a, m)
        for b, a, m in zip(h.bid_ticks, h.ask_ticks, h.mid_ticks, strict=True)
        if b == b and a == a
    ]  # NaN != NaN: skip samples without both quotes
    assert pairs and all(b < m < a for b, a, m in pairs)


class RestCalls:
    """Records which REST-like venue calls run (the calls go through to the real venue)."""

    NAMES = ("open_orders", "order_status", "position", "cancel_all", "executions")

    def __init__(self, venue):
        self.calls: list[str] = []
        for name in self.NAMES:
            real = getattr(venue, name, None)
            if real is not None:
                setattr(venue, name, self._spy(name, real))

    def _spy(self, name, real):
        def call(*args, **kwargs):
            self.calls.append(name)
            return real(*args, **kwargs)

        return call


def test_deferred_io_keeps_rest_off_the_frame_path_and_run_io_does_it():
    runner, venue, engine = make_runner()
    frames = iter(venue.stream(generate_frames(messages=400, depth=50, seed=3)))
    frame, now = next(frames)
    runner.start(now)
    runner.on_frame(frame, now)  # the snapshot
    wanted = []
    runner.defer_blocking_io(lambda: wanted.append(now))
    rest = RestCalls(venue)
    for _ in range(100):
        frame, now = next(frames)
        if frame is not None:
            runner.on_frame(frame, now)
    assert runner.orders_sent > 0 and not wanted
    sent = runner.orders.requests_sent

    # a reconcile is due (an unanswered request, an amend of a gone order...): frames
    # hold the quotes and ask for run_io instead of calling REST themselves
    runner.orders.needs_reconcile = True
    for _ in range(20):
        frame, now = next(frames)
        if frame is not None:
            runner.on_frame(frame, now)
    assert rest.calls == [] and wanted
    assert runner.orders.requests_sent == sent  # held: nothing was requoted
    runner.run_io(now)
    assert "open_orders" in rest.calls and "position" in rest.calls
    assert not runner.orders.needs_reconcile

    # a link drops: the REST cancel-all is run_io's too, and it repeats until confirmed
    rest.calls.clear()
    wanted.clear()
    runner.on_link("public", False, now)
    assert rest.calls == [] and wanted
    runner.run_io(now)
    assert rest.calls == ["cancel_all"]
    venue.advance(now + 100)
    assert engine.open_orders() == []
    runner.run_io(now + 1000)  # the retry: asks the venue, which has nothing open
    assert rest.calls == ["cancel_all", "open_orders"]
    runner.on_link("public", True, now + 1000)
    frame, now = next(frames)
    runner.on_frame(frame, now)  # back: the reconcile is again left to run_io
    assert "open_orders" not in rest.calls[2:]
    runner.run_io(now)
    assert runner.orders.working_orders()  # reconciled and quoting again
