"""RiskManager: limits, drawdown kill switch, health guard with hysteresis."""

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mmbot.config import RiskConfig
from mmbot.instrument import Instrument
from mmbot.risk import RiskDecision, RiskLimits, RiskManager

D = Decimal
# price 1 per tick, qty 1 per lot
UNIT = Instrument("X", "linear", "1", "1", 1, 10**9, D(0))


def limits(**kw):
    base = dict(
        max_position_lots=10,
        max_notional=D(100_000),
        max_drawdown=D(50),
        stale_book_ms=1000,
        resume_after_ms=500,
    )
    base.update(kw)
    return RiskLimits(**base)


def ev(rm, **kw):
    base = dict(
        position_lots=0,
        mark_ticks=100,
        pnl=D(0),
        book_synced=True,
        last_book_update_ms=0,
        venue_connected=True,
        now_ms=0,
    )
    base.update(kw)
    return rm.evaluate(**base)


def test_healthy_flat_allows_both_sides_with_full_room():
    d = ev(RiskManager(limits(), UNIT))
    assert d == RiskDecision(True, True, False, False, "ok", 10, 10, 10)


def test_lagging_frames_pull_quotes_like_a_stale_book():
    rm = RiskManager(limits(max_frame_age_ms=300), UNIT)
    assert not ev(rm, frame_age_ms=None).pull_all  # not measured (backtests)
    assert not ev(rm, frame_age_ms=300.0).pull_all
    d = ev(rm, frame_age_ms=300.5, now_ms=10)
    assert d.pull_all and "book lagging (last frame 300 ms old)" in d.reason
    # fresh again: quoting resumes only after resume_after_ms, like any outage
    assert ev(rm, frame_age_ms=5.0, now_ms=20, last_book_update_ms=20).pull_all
    assert not ev(rm, frame_age_ms=5.0, now_ms=600, last_book_update_ms=600).pull_all


def test_position_limit_blocks_the_side_that_adds():
    rm = RiskManager(limits(), UNIT)
    d = ev(rm, position_lots=10)
    assert (d.allow_buy, d.allow_sell, d.max_buy_lots, d.max_sell_lots) == (False, True, 0, 20)
    assert "position limit" in d.reason and not d.pull_all
    d = ev(rm, position_lots=-12)  # beyond the limit short: only buys
    assert (d.allow_buy, d.allow_sell, d.max_buy_lots, d.max_sell_lots) == (True, False, 22, 0)
    d = ev(rm, position_lots=4)
    assert (d.max_buy_lots, d.max_sell_lots) == (6, 14)


def test_notional_limit_at_the_mark():
    # 500 quote / 100 per lot = 5 lots, tighter than the 10-lot position limit
    rm = RiskManager(limits(max_notional=D(500)), UNIT)
    d = ev(rm, position_lots=5)
    assert (d.allow_buy, d.max_sell_lots) == (False, 10)
    assert d.reason.startswith("notional limit 5 lots")
    # at a mark of 40 the notional allows 12 lots, so the position limit (10) rules
    assert ev(rm, position_lots=5, mark_ticks=40).max_buy_lots == 5


def test_inflight_orders_use_up_room():
    d = ev(RiskManager(limits(), UNIT), position_lots=2, inflight_buy_lots=3, inflight_sell_lots=12)
    assert (d.max_buy_lots, d.max_sell_lots, d.allow_sell) == (5, 0, False)


def test_drawdown_kill_switch_latches_and_flattens_if_asked():
    rm = RiskManager(limits(flatten_on_kill=True), UNIT)
    assert ev(rm, pnl=D(30)).reason == "ok"  # peak 30
    assert ev(rm, pnl=D(-19.5)).reason == "ok"  # drawdown 49.5 < 50
    d = ev(rm, pnl=D(-20), position_lots=3)  # drawdown 50: tripped
    assert d.pull_all and d.flatten and not d.allow_buy and not d.allow_sell
    assert d.reason.startswith("kill switch: drawdown 50 from peak 30")
    d = ev(rm, pnl=D(100), position_lots=0)  # stays killed; nothing left to flatten
    assert d.pull_all and not d.flatten and rm.state == "killed"
    rm.reset_kill()
    assert ev(rm, pnl=D(100)).reason == "ok" and rm.peak_pnl == D(100)


def test_kill_without_flatten():
    rm = RiskManager(limits(), UNIT)
    d = ev(rm, pnl=D(-50), position_lots=3)
    assert d.pull_all and not d.flatten


def test_unknown_pnl_skips_drawdown():
    rm = RiskManager(limits(), UNIT)
    assert ev(rm, pnl=None).reason == "ok" and rm.peak_pnl == 0


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"venue_connected": False}, "venue disconnected"),
        ({"book_synced": False}, "book out of sync"),
        ({"last_book_update_ms": 0, "now_ms": 1001}, "book stale (1001 ms)"),
        ({"last_book_update_ms": None}, "no book update yet"),
        ({"mark_ticks": None}, "no mark price"),
    ],
)
def test_unhealthy_market_pulls_all(kw, reason):
    d = ev(RiskManager(limits(), UNIT), **kw)
    assert d == RiskDecision(False, False, True, False, reason)


def test_stale_threshold_is_inclusive_of_the_limit():
    assert ev(RiskManager(limits(), UNIT), last_book_update_ms=0, now_ms=1000).reason == "ok"


def test_several_problems_are_all_named():
    d = ev(RiskManager(limits(), UNIT), venue_connected=False, book_synced=False)
    assert d.reason == "venue disconnected; book out of sync"


def test_resume_needs_unbroken_healthy_time():
    rm = RiskManager(limits(resume_after_ms=500), UNIT)
    assert ev(rm, now_ms=0).reason == "ok"
    assert ev(rm, now_ms=100, venue_connected=False).pull_all
    d = ev(rm, now_ms=200, last_book_update_ms=200)
    assert d.pull_all and d.reason == "recovering: healthy for 0 of 500 ms"
    assert ev(rm, now_ms=600, last_book_update_ms=600).pull_all  # 400 ms healthy
    assert ev(rm, now_ms=650, last_book_update_ms=650, book_synced=False).pull_all  # flicker
    assert ev(rm, now_ms=1100, last_book_update_ms=1100).pull_all  # restarted at 1100
    assert ev(rm, now_ms=1500, last_book_update_ms=1500).pull_all  # 400 ms
    d = ev(rm, now_ms=1600, last_book_update_ms=1600)  # 500 ms: resume
    assert not d.pull_all and d.reason == "ok" and rm.state == "ok"
    assert ev(rm, now_ms=1601, last_book_update_ms=1601).reason == "ok"


def test_start_up_wait_for_the_book_is_not_an_outage():
    rm = RiskManager(limits(resume_after_ms=500), UNIT)
    assert ev(rm, now_ms=0, last_book_update_ms=None, mark_ticks=None).pull_all
    assert ev(rm, now_ms=10, last_book_update_ms=10).reason == "ok"


def test_kill_beats_health():
    rm = RiskManager(limits(), UNIT)
    d = ev(rm, pnl=D(-60), venue_connected=False)
    assert d.reason.startswith("kill switch")


def test_limits_from_config_round_down_to_lots():
    btc = Instrument("BTCUSDT", "linear", "0.1", "0.001", 1, 10**9, D(5))
    lim = RiskLimits.from_config(
        RiskConfig(
            max_position_qty="0.0505",
            max_notional_quote="5000",
            max_drawdown_quote="50",
            flatten_on_kill=True,
            stale_book_ms=1500,
            resume_after_ms=250,
        ),
        btc,
    )
    assert lim == RiskLimits(50, D(5000), D(50), True, 1500, 250)
    with pytest.raises(ValueError, match="less than one lot"):
        RiskLimits.from_config(RiskConfig(max_position_qty="0.0005"), btc)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"max_position_lots": 0}, "max_position_lots"),
        ({"max_notional": D(0)}, "max_notional"),
        ({"max_drawdown": 5}, "max_drawdown"),
        ({"stale_book_ms": 0}, "stale_book_ms"),
        ({"resume_after_ms": -1}, "resume_after_ms"),
        ({"max_frame_age_ms": 0}, "max_frame_age_ms"),
    ],
)
def test_bad_limits_rejected(kw, match):
    with pytest.raises(ValueError, match=match):
        limits(**kw)


@given(
    max_notional=st.decimals(min_value="0.01", max_value="1e9", places=4),
    mark=st.decimals(min_value="0.5", max_value="1e7", places=1),
    tick=st.sampled_from(["0.1", "0.01", "0.0001", "5"]),
    lot=st.sampled_from(["0.001", "0.01", "1", "100"]),
)
# the notional allows 1,000,000,000,002,000 lots, more than the position cap: the cap holds
@example(max_notional=D("50000000.0001"), mark=D("0.5"), tick="0.0001", lot="0.001")
def test_notional_lots_are_the_exact_floor(max_notional, mark, tick, lot):
    inst = Instrument("X", "linear", tick, lot, 1, 10**12, D(0))
    max_position_lots = 10**15
    rm = RiskManager(limits(max_position_lots=max_position_lots, max_notional=max_notional), inst)
    # reference: the quotient of the exact rationals, floored, within the position cap
    by_notional = math.floor(
        Fraction(max_notional) / (Fraction(inst.notional(1, 1)) * Fraction(mark))
    )
    assert ev(rm, mark_ticks=mark).max_buy_lots == min(by_notional, max_position_lots)
