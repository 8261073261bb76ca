"""Account caps across symbols: total gross notional and total drawdown.

The state machine drives two runners (two symbols, each on its model venue) whose own caps
allow more than the account cap together, and checks after every step that the venues'
own worst case (positions plus every order that could still fill, requests in flight
included), valued at the fixed marks by hand, stays within the account cap.
"""

from __future__ import annotations

import os
from decimal import Decimal

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from support.model_venue import ModelVenue
from support.runner import scripted_runner

from mmbot.instrument import Instrument
from mmbot.records import Records
from mmbot.risk import ACCOUNT_KEY, AccountLimits, AccountRisk, RiskLimits, RiskManager
from mmbot.runner import EventRouter
from mmbot.strategy.base import Quote
from mmbot.types import BUY, SELL, ConnectionEvent, Order, OrderEvent, OrderStatus, RequestError

# A: mid 1005 ticks of price 1, lots of 1 -> one lot is worth 1005
# B: mid 505 ticks of price 1, lots of 2 -> one lot is worth 1010
INST = {
    "AAA": Instrument("AAA", "linear", "1", "1", 1, 1000, Decimal(0)),
    "BBB": Instrument("BBB", "linear", "1", "2", 1, 1000, Decimal(0)),
}
LOT_VALUE = {"AAA": 1005, "BBB": 1010}
BOOK = {"AAA": ("1000", "1010"), "BBB": ("500", "510")}
CAPS = {"AAA": 5, "BBB": 5}  # own caps: 5 lots each, 10075 together
TOTAL = Decimal(6000)  # the account allows about 6 lots' worth in all


def snapshot(symbol: str) -> str:
    bid, ask = BOOK[symbol]
    return (
        f'{{"topic":"orderbook.50.{symbol}","type":"snapshot","ts":1,"data":{{"s":"{symbol}",'
        f'"b":[["{bid}","10"]],"a":[["{ask}","10"]],"u":1,"seq":1}}}}'
    )


def make_runner(symbol, *, lifetime_ms=0, drawdown=10**9, records=None, **om_kw):
    venue = ModelVenue(symbol=symbol)
    runner, model = scripted_runner(
        venue,
        INST[symbol],
        cap_lots=CAPS[symbol],
        lifetime_ms=lifetime_ms,
        drawdown=drawdown,
        records=records,
        link_prefix=f"{symbol}-",
        **om_kw,
    )
    return runner, venue, model


def start(runners):
    for r in runners.values():
        r.start(0)
        r.on_frame(snapshot(r.instrument.symbol), 0)


def venue_gross_value(venue: ModelVenue, symbol: str) -> int:
    long_worst, short_worst = venue.worst_case()
    return max(long_worst, -short_worst, 0) * LOT_VALUE[symbol]


def test_cap_lots_is_the_room_the_other_symbols_leave():
    account = AccountRisk(AccountLimits(Decimal(6000), Decimal(100)))
    for symbol in INST:
        account.add(
            symbol, RiskManager(RiskLimits(5, Decimal(10**9), Decimal(100)), INST[symbol]), print
        )
    account.set_exposure("BBB", Decimal(3030))  # 3 lots of BBB
    # 6000 - 3030 = 2970 left; a lot of AAA is worth 1005: 2 lots (2010), not 3 (3015)
    assert account.cap_lots("AAA", Decimal(1005)) == 2
    assert account.cap_lots("AAA", Decimal(990)) == 3  # 2970 / 990 exactly 3: not rounded down
    assert account.cap_lots("BBB", Decimal(1010)) == 5  # its own exposure is not "other"
    assert account.cap_lots("AAA", None) == 0  # no mark: no room
    account.set_exposure("BBB", None)  # exposure without a mark: nobody else may add
    assert account.cap_lots("AAA", Decimal(1005)) == 0
    account.set_exposure("BBB", Decimal(7000))
    assert account.cap_lots("AAA", Decimal(1005)) == 0
    assert account.total_notional() == Decimal(7000)


def test_account_cap_binds_before_the_symbol_caps():
    runners = {}
    models = {}
    account = AccountRisk(AccountLimits(TOTAL, Decimal(10**9)))
    for symbol in INST:
        runners[symbol], _, models[symbol] = make_runner(symbol)
        runners[symbol].attach_account(account)
    start(runners)
    venues = {s: r.venue for s, r in runners.items()}
    models["AAA"].want = [Quote(BUY, 990, 4, 0)]
    runners["AAA"].on_timer(1)
    assert venue_gross_value(venues["AAA"], "AAA") == 4 * 1005  # 4020 of 6000
    # BBB wants 4 lots (4040): its own cap allows 5 but only 1980 is left: 1 lot
    models["BBB"].want = [Quote(BUY, 495, 4, 0), Quote(SELL, 520, 1, 0)]
    runners["BBB"].on_timer(1)
    # the model trims its ladder to the room (the order manager would refuse the rest)
    assert [(r.side, r.qty_lots) for _, r, _ in venues["BBB"].inflight] == [(SELL, 1)]
    total = venue_gross_value(venues["AAA"], "AAA") + venue_gross_value(venues["BBB"], "BBB")
    assert total == 4020 + 1010 <= TOTAL
    assert account.total_notional() == Decimal(5030)
    assert account.cap_limited >= 1


def test_total_drawdown_kills_every_symbol_and_persists(tmp_path):
    db = tmp_path / "r.sqlite"
    records = Records(str(db))
    account = AccountRisk(AccountLimits(TOTAL, Decimal(50)), records)
    runners = {}
    for symbol in INST:
        runners[symbol], _, _ = make_runner(symbol, drawdown=40)
        runners[symbol].attach_account(account)
    # each symbol loses 30: below its own 40, but 60 in all passes the account's 50
    account.set_pnl("AAA", Decimal(-30), 5)
    assert not account.killed
    account.set_pnl("BBB", Decimal(-30), 6)
    assert account.killed and "total drawdown 60" in account.kill_reason
    assert all(r.risk.killed for r in runners.values())
    assert records.load_risk_state(ACCOUNT_KEY).killed
    records.close()
    again = AccountRisk(AccountLimits(TOTAL, Decimal(50)), Records(str(db)))
    manager = RiskManager(RiskLimits(5, Decimal(10**9), Decimal(40)), INST["AAA"])
    again.add("AAA", manager, print)
    assert manager.killed  # a restart keeps the account's latch on every symbol


def test_total_drawdown_pulls_the_other_symbols_quotes_at_once():
    account = AccountRisk(AccountLimits(TOTAL, Decimal(50)))
    runners, models = {}, {}
    for symbol in INST:
        runners[symbol], _, models[symbol] = make_runner(symbol)
        runners[symbol].attach_account(account)
    start(runners)
    models["BBB"].want = [Quote(BUY, 495, 1, 0)]
    runners["BBB"].on_timer(1)
    venue_b = runners["BBB"].venue
    venue_b.process(0)
    venue_b.deliver_all()
    assert runners["BBB"].orders.working_orders()
    account.set_pnl("BBB", Decimal(0), 2)
    account.set_pnl("AAA", Decimal(-60), 2)  # AAA's decision trips it
    # BBB's risk manager is latched and its order is being cancelled, without a BBB frame
    assert runners["BBB"].risk.killed
    assert [op for op, *_ in venue_b.inflight] == ["cancel"]


def test_router_gives_each_event_to_its_symbol_and_logs_the_unknown(caplog):
    runners = {s: make_runner(s)[0] for s in INST}
    router = EventRouter(runners)
    order = Order("o1", "BBB-1", "BBB", BUY, 495, 1, 0, OrderStatus.NEW)
    assert router.targets(OrderEvent(order, 1)) == [runners["BBB"]]
    assert router.targets(RequestError("create", "AAA-7", 1, "x", 1)) == [runners["AAA"]]
    assert router.targets(ConnectionEvent(False, "down", 1)) == list(runners.values())
    stray = Order("o2", "x-1", "XRPUSDT", BUY, 1, 1, 0, OrderStatus.NEW)
    assert router.targets(OrderEvent(stray, 1)) == []
    assert router.unrouted == 1 and "XRPUSDT" in caplog.text
    with pytest.raises(ValueError, match="prefix"):
        runners["AAA"].orders.link_prefix = "A"
        runners["BBB"].orders.link_prefix = "AB"
        EventRouter(runners)


quote_sets = st.lists(
    st.tuples(st.sampled_from([BUY, SELL]), st.integers(0, 1), st.integers(1, 4)),
    max_size=4,
)


class AccountMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.account = AccountRisk(AccountLimits(TOTAL, Decimal(10**9)))
        self.runners, self.models = {}, {}
        for symbol in INST:
            r, _, m = make_runner(symbol, lifetime_ms=3, pending_timeout_ms=50)
            r.venue.recv_window_ms = 40
            r.attach_account(self.account)
            self.runners[symbol], self.models[symbol] = r, m
        start(self.runners)
        self.t = 1

    def _tick(self, dt: int = 1) -> None:
        self.t += dt
        for r in self.runners.values():
            r.venue.now = self.t
            r.on_timer(self.t)

    @rule(symbol=st.sampled_from(sorted(INST)), quotes=quote_sets)
    def requote(self, symbol, quotes):
        bid, ask = (int(x) for x in BOOK[symbol])
        self.models[symbol].want = list(
            {
                (side, level): Quote(
                    side, bid - 5 - level if side == BUY else ask + 5 + level, qty, level
                )
                for side, level, qty in quotes
            }.values()
        )
        self._tick()

    @rule(dt=st.integers(1, 200))
    def time_passes(self, dt):
        self._tick(dt)

    @rule(symbol=st.sampled_from(sorted(INST)), data=st.data())
    def request_reaches_venue(self, symbol, data):
        v = self.runners[symbol].venue
        if v.inflight:
            v.process(data.draw(st.integers(0, len(v.inflight) - 1)))

    @rule(symbol=st.sampled_from(sorted(INST)), data=st.data())
    def push_delivered(self, symbol, data):
        v = self.runners[symbol].venue
        if v.outbox:
            v.deliver(data.draw(st.integers(0, len(v.outbox) - 1)))

    @rule(symbol=st.sampled_from(sorted(INST)), data=st.data(), lots=st.integers(1, 4))
    def fill(self, symbol, data, lots):
        v = self.runners[symbol].venue
        live = v.live()
        if live:
            o = live[data.draw(st.integers(0, len(live) - 1))]
            v.fill(o.order_id, lots, position_first=data.draw(st.booleans()))

    @precondition(lambda self: all(r.venue.up for r in self.runners.values()))
    @rule(symbol=st.sampled_from(sorted(INST)))
    def drop(self, symbol):
        self.runners[symbol].venue.drop()

    @rule()
    def reconnect(self):
        for r in self.runners.values():
            if not r.venue.up:
                r.venue.reconnect()

    @invariant()
    def total_within_the_account_cap(self):
        values = {s: venue_gross_value(r.venue, s) for s, r in self.runners.items()}
        assert sum(values.values()) <= TOTAL, values
        # and each symbol within its own cap
        for s, r in self.runners.items():
            long_worst, short_worst = r.venue.worst_case()
            assert long_worst <= CAPS[s] and -short_worst <= CAPS[s]


# MMBOT_STATEFUL_EXAMPLES=2000 for a longer search than CI affords
AccountMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("MMBOT_STATEFUL_EXAMPLES", "100")),
    stateful_step_count=40,
    deadline=None,
)
TestAccountCaps = AccountMachine.TestCase
