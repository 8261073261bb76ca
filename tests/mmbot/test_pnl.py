"""PnL accounting against hand-computed trade sequences, plus a mark-to-market property."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.instrument import Instrument
from mmbot.pnl import PnLTracker

# price 1 per tick, qty 1 per lot: the hand arithmetic reads directly
UNIT = Instrument("X", "linear", "1", "1", 1, 10**9, Decimal(0))
BTC = Instrument("BTCUSDT", "linear", "0.1", "0.001", 1, 10**9, Decimal(5))
D = Decimal


def test_hand_computed_sequence_with_flip_through_zero():
    t = PnLTracker(UNIT, "0.001", "0.002")
    t.on_fill("Buy", 100, 10)  # fee 1.0; pos 10 @ 100
    t.on_fill("Buy", 110, 10)  # fee 1.1; pos 20, cost 2100 (avg 105)
    assert t.avg_entry_price() == D(105)
    t.on_fill("Sell", 120, 5, is_maker=False)  # fee 1.2; realized 5 * (120 - 105) = 75
    assert t.realized == D(75) and t.position_lots == 15
    t.on_fill("Sell", 100, 25)  # fee 2.5; closes 15 at 100: -75; short 10 @ 100
    assert t.realized == D(0)
    assert t.position_lots == -10
    assert t.cost_basis == D(-1000)
    assert t.avg_entry_price() == D(100)
    assert t.unrealized(90) == D(100)  # short 10 from 100 marked at 90
    assert t.fees == D("5.8")
    assert t.net(90) == D("94.2")
    assert t.turnover == D(5200)
    assert t.max_abs_position_lots == 20
    assert t.volume_lots == 50 and t.fill_count == 4 and t.maker_fills == 3


def test_short_then_cover():
    t = PnLTracker(UNIT)
    t.on_fill("Sell", 200, 4)
    t.on_fill("Sell", 210, 4)  # short 8 @ 205
    t.on_fill("Buy", 190, 6)  # realized 6 * (205 - 190) = 90
    assert t.realized == D(90)
    assert t.unrealized(200) == D(10)  # short 2 @ 205 marked at 200
    t.on_fill("Buy", 215, 2)  # realized 2 * (205 - 215) = -20
    assert t.realized == D(70) and t.position_lots == 0
    assert t.cost_basis == 0 and t.unrealized(999) == 0 and t.avg_entry_price() is None


def test_inexact_average_cost_is_conserved():
    t = PnLTracker(UNIT)
    t.on_fill("Buy", 100, 1)
    t.on_fill("Buy", 101, 2)  # cost 302 over 3: avg 100.666...
    t.on_fill("Sell", 102, 1)
    assert t.realized == D("1.333333333333")  # 102 - 100.666666666667
    t.on_fill("Sell", 102, 2)
    assert t.realized == D(4)  # exactly 306 - 302 once flat


def test_maker_rebate_is_a_negative_fee():
    t = PnLTracker(BTC, "-0.00025", "0.00055")
    t.on_fill("Buy", 650000, 1000)  # 65000.0 * 1.000 = 65000; rebate 16.25
    assert t.fees == D("-16.25")
    assert t.net(650000) == D("16.25")
    t.on_fill("Sell", 650010, 1000, is_maker=False)  # 65001 * 0.00055 = 35.75055
    assert t.fees == D("19.50055")
    assert t.realized == D("1.0")
    assert t.net(650010) == D("-18.50055")


def test_venue_fee_overrides_rates():
    t = PnLTracker(BTC, "0.0002", "0.00055")
    t.on_fill("Buy", 650000, 1, fee="0.013")
    t.on_fill("Buy", 650000, 1, fee=0.013)  # float fees read via their shortest repr
    assert t.fees == D("0.026")


def test_duplicate_fill_id_is_ignored():
    t = PnLTracker(UNIT)
    assert t.on_fill("Buy", 100, 1, fill_id="e1") is True
    assert t.on_fill("Buy", 100, 1, fill_id="e1") is False
    assert t.position_lots == 1 and t.fill_count == 1 and t.seen("e1")


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("Long", 100, 1), "side"),
        (("Buy", 0, 1), "price_ticks"),
        (("Buy", 100, 0), "qty_lots"),
        (("Buy", 100, -2), "qty_lots"),
        (("Buy", 100.0, 1), "price_ticks"),
    ],
)
def test_bad_fills_raise_and_change_nothing(args, match):
    t = PnLTracker(UNIT)
    t.on_fill("Buy", 100, 1)
    before = t.snapshot(100, 0)
    with pytest.raises(ValueError, match=match):
        t.on_fill(*args)
    assert t.snapshot(100, 0) == before


def test_bad_fee_rates_rejected():
    with pytest.raises(ValueError, match="finite"):
        PnLTracker(UNIT, "NaN", "0")
    with pytest.raises(TypeError, match="maker_fee_rate"):
        PnLTracker(UNIT, [1], "0")


def test_snapshot_fields():
    t = PnLTracker(UNIT, "0.001", "0.001")
    t.on_fill("Buy", 100, 10)
    s = t.snapshot(105, 1234)
    assert s == {
        "ts_ms": 1234,
        "position_lots": 10,
        "mark_ticks": 105,
        "realized": D(0),
        "unrealized": D(50),
        "fees": D(1),
        "funding": D(0),
        "net": D(49),
        "turnover": D(1000),
        "volume_lots": 10,
        "fills": 1,
        "maker_fills": 1,
        "max_abs_position_lots": 10,
        "avg_entry_price": D(100),
    }
    assert t.snapshot(None, 0)["unrealized"] == 0


fills = st.lists(
    st.tuples(
        st.sampled_from(["Buy", "Sell"]),
        st.integers(1, 700_000),
        st.integers(1, 5_000),
        st.booleans(),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(fills=fills, mark=st.integers(1, 700_000))
def test_pnl_equals_cash_flow_mark_to_market(fills, mark):
    t = PnLTracker(BTC, "-0.0001", "0.00055")
    tick, lot = D("0.1"), D("0.001")
    cash, pos = D(0), 0
    for side, price, qty, maker in fills:
        t.on_fill(side, price, qty, is_maker=maker)
        signed = qty if side == "Buy" else -qty
        value = price * tick * qty * lot
        cash -= (1 if signed > 0 else -1) * value
        cash -= value * (D("-0.0001") if maker else D("0.00055"))
        pos += signed
    assert t.position_lots == pos
    assert t.realized + t.unrealized(mark) - t.fees == cash + pos * mark * tick * lot
    assert t.max_abs_position_lots >= abs(pos)
