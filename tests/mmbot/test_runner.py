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
