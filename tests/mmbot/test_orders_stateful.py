"""State machine: the runner, its order manager and risk manager against a model venue that
acks, rejects, fills partially, delays, reorders, drops and reconnects.

After every step the venue's own worst case (position plus every order that could still
fill, requests in flight included) stays within the cap on both sides. A position move the
exchange makes on its own (auto-deleveraging) is left out until the bot could know it; when
it becomes known it may leave the worst case past the cap, which no bot can prevent, and
from then on the worst case may only fall until it is back within the cap. Once everything
is delivered and reconciled, the worst case is within the cap and the bot's position
equals the venue's.
"""

from __future__ import annotations

import os

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from support.model_venue import ModelVenue
from support.runner import SNAPSHOT, make_runner

from mmbot.strategy.base import Quote
from mmbot.types import BUY, SELL

CAP = 4

quote_sets = st.lists(
    st.tuples(
        st.sampled_from([BUY, SELL]), st.integers(0, 2), st.integers(1, 3), st.integers(0, 3)
    ),
    max_size=6,
).map(
    lambda qs: list(
        {
            (side, level): Quote(
                side, (995 - level - off) if side == BUY else (1015 + level + off), qty, level
            )
            for side, level, qty, off in qs
        }.values()
    )
)


class ExposureMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.runner, self.venue, self.model = make_runner(
            cap_lots=CAP, lifetime_ms=3, pending_timeout_ms=50
        )
        self.venue.recv_window_ms = 40  # the order manager's timeout must exceed it
        self.t = 1
        self.allowed = [CAP, CAP]  # long, short: the cap, or more right after an ADL

    @property
    def v(self) -> ModelVenue:
        return self.venue

    def _tick(self, dt: int = 1) -> None:
        self.t += dt
        self.v.now = self.t
        self.runner.on_timer(self.t)

    @rule(quotes=quote_sets)
    def requote(self, quotes):
        self.model.want = quotes
        self._tick()

    @rule(dt=st.integers(1, 600))
    def time_passes(self, dt):
        self._tick(dt)

    @precondition(lambda self: self.venue.inflight)
    @rule(data=st.data())
    def request_reaches_venue(self, data):
        self.v.process(data.draw(st.integers(0, len(self.v.inflight) - 1)))

    @precondition(lambda self: self.venue.outbox)
    @rule(data=st.data())
    def push_delivered(self, data):
        self.v.deliver(data.draw(st.integers(0, len(self.v.outbox) - 1)))

    @precondition(lambda self: self.venue.live())
    @rule(data=st.data(), lots=st.integers(1, 3), position_first=st.booleans())
    def fill(self, data, lots, position_first):
        live = self.v.live()
        o = live[data.draw(st.integers(0, len(live) - 1))]
        self.v.fill(o.order_id, lots, position_first=position_first)

    @rule(lots=st.integers(1, 2))
    def adl(self, lots):
        self.v.adl(lots)

    @precondition(lambda self: self.venue.up)
    @rule()
    def drop(self):
        self.v.drop()

    @precondition(lambda self: not self.venue.up)
    @rule()
    def reconnect(self):
        self.v.reconnect()

    @rule()
    def resnapshot(self):
        self.runner.on_frame(SNAPSHOT.replace('"u":1', '"u":1'), self.t)

    @invariant()
    def worst_case_within_cap(self):
        for seen_long, seen_short in self.v.seen_worst:  # an ADL became known here
            self.allowed = [max(self.allowed[0], seen_long), max(self.allowed[1], -seen_short)]
        self.v.seen_worst.clear()
        long_worst, short_worst = self.v.worst_case(known_only=True)
        assert long_worst <= self.allowed[0] and -short_worst <= self.allowed[1], (
            long_worst,
            short_worst,
            self.allowed,
        )
        self.allowed = [max(CAP, long_worst), max(CAP, -short_worst)]

    def teardown(self):
        # let everything land, reconnect, and the bot converges on the venue's position
        if not self.v.up:
            self.v.reconnect()
        for _ in range(4):
            while self.v.inflight:
                self.v.process(0)
            self.v.deliver_all()
            self._tick(100)
        assert self.runner.orders.position_lots == self.v.position_lots
        long_worst, short_worst = self.v.worst_case()
        assert long_worst <= CAP and short_worst >= -CAP


# MMBOT_STATEFUL_EXAMPLES=2000 for a longer search than CI affords
ExposureMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("MMBOT_STATEFUL_EXAMPLES", "150")),
    stateful_step_count=40,
    deadline=None,
)
TestExposure = ExposureMachine.TestCase
