"""SimVenue counts requests where the simulator does: at the exchange, in Bybit's rolling
one-second windows, so a backtest refuses what `mmbot run`'s simulator refuses.

The bot spaces its sends to the venue's limits, but requests reach the exchange after
varying latencies and can bunch there. Found by comparing `mmbot run --record` with its
replayed backtest: the simulator refused 5 amends with retCode 10006, the backtest
accepted all of them and 4 amends that arrived as the 11th of a rolling second.
"""

from __future__ import annotations

from mmbot.config import apply_overrides, load_config
from mmbot.recorder import RoundTrip
from mmbot.sim.engine import MatchingEngine
from mmbot.types import OrderEvent, OrderRequest, RequestError
from mmbot.venue.base import RateLimits
from mmbot.venue.sim import ReplayLatency, SimVenue

T0 = 1_700_000_000_000
MS = 1_000_000


def _venue() -> tuple[SimVenue, list]:
    # entry latency 950 ms for a request sent at T0, 0 for one sent at T0 + 1 s: sends
    # 100 ms apart reach the exchange 5 ms apart
    trips = [
        RoundTrip("create", "a", T0 * MS, T0 + 950, (T0 + 951) * MS),
        RoundTrip("create", "b", (T0 + 1000) * MS, T0 + 1000, (T0 + 1001) * MS),
    ]
    engine = MatchingEngine(symbol="TEST", tick_size="0.1", lot_size="0.001")
    venue = SimVenue(engine, latency=ReplayLatency(trips))
    got: list = []
    venue.set_handler(got.append)
    venue.advance(T0)
    return venue, got


def test_requests_bunched_by_latency_are_refused_at_the_exchange():
    venue, got = _venue()
    limit = venue.rate_limits.create_cancel_per_s
    for i in range(limit + 1):  # one more than the limit, each 100 ms after the last
        venue.advance(T0 + 100 * i)
        venue.place(OrderRequest(f"c{i}", "TEST", "Buy", 990 - i, 1))
    venue.advance(T0 + 3000)
    refused = [e for e in got if isinstance(e, RequestError)]
    accepted = [e.order.order_link_id for e in got if isinstance(e, OrderEvent)]
    # all eleven reach the exchange between T0 + 950 and T0 + 1001: the last is one too many
    assert accepted == [f"c{i}" for i in range(limit)]
    assert [(e.op, e.order_link_id, e.code) for e in refused] == [("create", f"c{limit}", 10006)]
    assert refused[0].message == "Too many visits!"


def test_the_window_frees_a_slot_one_second_after_a_request():
    venue, got = _venue()
    limit = venue.rate_limits.create_cancel_per_s
    for i in range(limit):
        venue.advance(T0 + 100 * i)
        venue.place(OrderRequest(f"c{i}", "TEST", "Buy", 990 - i, 1))
    # the first arrived at T0 + 950; at T0 + 1950 it has left the window
    venue.advance(T0 + 1950)
    venue.place(OrderRequest("late", "TEST", "Buy", 900, 1))
    venue.advance(T0 + 3000)
    assert not [e for e in got if isinstance(e, RequestError)]
    assert len(venue.open_orders("TEST")) == limit + 1


def test_an_account_above_the_default_tier_sets_its_own_limits():
    cfg = apply_overrides(load_config(), {"sim.rate_limit_per_s": 12})
    limits = cfg.sim.rate_limits("linear")
    assert (limits.create_cancel_per_s, limits.amend_per_s, limits.cancel_all_per_s) == (12, 12, 12)
    assert load_config().sim.rate_limits("spot") == RateLimits.for_category("spot")
    engine = MatchingEngine(symbol="TEST", tick_size="0.1", lot_size="0.001")
    venue = SimVenue(engine, rate_limits=limits)
    got: list = []
    venue.set_handler(got.append)
    for i in range(13):  # all in the same millisecond: the 13th is one too many for 12/s
        venue.advance(T0)
        venue.place(OrderRequest(f"c{i}", "TEST", "Buy", 990 - i, 1))
    venue.advance(T0 + 100)
    assert [e.order_link_id for e in got if isinstance(e, RequestError)] == ["c12"]
    assert len(venue.open_orders("TEST")) == 12


def test_a_batch_is_admitted_or_refused_whole_as_the_simulator_does():
    # the simulator's Dispatcher weighs a batch by its orders and refuses it whole when
    # they do not all fit in the window; a backtest must not admit the part that fits
    engine = MatchingEngine(symbol="TEST", tick_size="0.1", lot_size="0.001")
    venue = SimVenue(engine)
    got: list = []
    venue.set_handler(got.append)
    limit = venue.rate_limits.create_cancel_per_s
    venue.advance(T0)
    for i in range(limit - 1):  # one slot left in this second
        venue.place(OrderRequest(f"c{i}", "TEST", "Buy", 990 - i, 1))
    venue.place_batch([OrderRequest(f"b{i}", "TEST", "Buy", 900 - i, 1) for i in range(2)])
    venue.advance(T0 + 100)
    refused = [(e.op, e.order_link_id, e.code) for e in got if isinstance(e, RequestError)]
    assert refused == [("create", "b0", 10006), ("create", "b1", 10006)]
    assert len(venue.open_orders("TEST")) == limit - 1
    # the slot is still free: a batch of one fits
    venue.place_batch([OrderRequest("b2", "TEST", "Buy", 880, 1)])
    venue.advance(T0 + 200)
    assert len(venue.open_orders("TEST")) == limit


def test_a_batch_reaches_the_exchange_as_one_request():
    # one request, one latency: with jitter, its orders still arrive together
    engine = MatchingEngine(symbol="TEST", tick_size="0.1", lot_size="0.001")
    venue = SimVenue(engine, jitter_ms=50, seed=7)
    venue.set_handler(lambda event: None)
    venue.advance(T0)
    venue.place_batch([OrderRequest(f"b{i}", "TEST", "Buy", 900 - i, 1) for i in range(5)])
    venue.advance(T0 + 1000)
    orders = venue.open_orders("TEST")
    assert len(orders) == 5
    assert len({o.created_ms for o in orders}) == 1
