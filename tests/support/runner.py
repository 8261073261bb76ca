"""A runner on the model venue, driven by hand: what the order-manager safety tests share."""

from __future__ import annotations

from decimal import Decimal

from mmbot.instrument import Instrument
from mmbot.orders import OrderManager
from mmbot.pnl import PnLTracker
from mmbot.risk import RiskLimits, RiskManager
from mmbot.runner import Runner
from mmbot.strategy.base import Quote
from mmbot.types import BUY, SELL
from support.model_venue import SYM, ModelVenue

__all__ = ["INST", "SNAPSHOT", "ScriptedModel", "make_runner", "scripted_runner", "settle", "tick"]

INST = Instrument(SYM, "linear", "1", "1", 1, 1000, Decimal(0))
SNAPSHOT = (
    '{"topic":"orderbook.50.TEST","type":"snapshot","ts":1,"data":{"s":"TEST",'
    '"b":[["1000","5"]],"a":[["1010","5"]],"u":1,"seq":1}}'
)


class ScriptedModel:
    """Quotes what the test says, trimmed to the room risk gives (as build_ladder does)."""

    def __init__(self) -> None:
        self.want: list[Quote] = []

    def quotes(self, view):
        out, room = [], {BUY: view.max_buy_lots, SELL: view.max_sell_lots}
        for q in self.want:
            left = room[q.side]
            if left is not None:
                if q.qty_lots > left:
                    continue
                room[q.side] = left - q.qty_lots
            out.append(q)
        return out

    def on_fill(self, *a) -> None:
        pass

    def on_book(self, view) -> None:
        pass


def scripted_runner(
    venue, instrument, *, cap_lots=3, lifetime_ms=0, drawdown=10**9, records=None, **om_kw
):
    """Return ``(runner, model)``: a runner of ``instrument`` on ``venue`` quoting what
    the test scripts, within ``cap_lots`` (not started)."""
    model = ScriptedModel()
    orders = OrderManager(
        venue, instrument.symbol, tolerance_ticks=0, min_quote_lifetime_ms=lifetime_ms, **om_kw
    )
    risk = RiskManager(
        RiskLimits(
            cap_lots, Decimal(10**9), Decimal(drawdown), stale_book_ms=10**9, resume_after_ms=0
        ),
        instrument,
    )
    runner = Runner(
        instrument=instrument,
        venue=venue,
        model=model,
        orders=orders,
        pnl=PnLTracker(instrument),
        risk=risk,
        records=records,
        history_interval_ms=0,
    )
    return runner, model


def make_runner(cap_lots=3, lifetime_ms=0, **om_kw):
    venue = ModelVenue()
    runner, model = scripted_runner(
        venue, INST, cap_lots=cap_lots, lifetime_ms=lifetime_ms, **om_kw
    )
    runner.start(0)
    runner.on_frame(SNAPSHOT, 0)
    return runner, venue, model


def tick(runner, venue, t):
    venue.now = t
    runner.on_timer(t)


def settle(venue):
    while venue.inflight:
        venue.process(0)
    venue.deliver_all()
