"""Instrument rules from Bybit v5 instruments-info (the docs' example responses)."""

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.instrument import Instrument, InstrumentError, instruments_from_response

LINEAR_BTC = {
    "symbol": "BTCUSDT",
    "contractType": "LinearPerpetual",
    "status": "Trading",
    "baseCoin": "BTC",
    "quoteCoin": "USDT",
    "priceScale": "2",
    "priceFilter": {"minPrice": "0.10", "maxPrice": "199999.80", "tickSize": "0.10"},
    "lotSizeFilter": {
        "maxOrderQty": "1190.000",
        "minOrderQty": "0.001",
        "qtyStep": "0.001",
        "postOnlyMaxOrderQty": "1190.000",
        "maxMktOrderQty": "500.000",
        "minNotionalValue": "5",
    },
}

SPOT_BTC = {
    "symbol": "BTCUSDT",
    "baseCoin": "BTC",
    "quoteCoin": "USDT",
    "status": "Trading",
    "lotSizeFilter": {
        "basePrecision": "0.000001",
        "quotePrecision": "0.0000001",
        "minOrderQty": "0.000011",
        "maxOrderQty": "83",
        "minOrderAmt": "5",
        "maxOrderAmt": "8000000",
        "maxLimitOrderQty": "83",
        "maxMarketOrderQty": "41.5",
        "postOnlyMaxLimitOrderSize": "415",
    },
    "priceFilter": {"tickSize": "0.1"},
}


@pytest.fixture
def linear():
    return Instrument.from_bybit("linear", LINEAR_BTC)


@pytest.fixture
def spot():
    return Instrument.from_bybit("spot", SPOT_BTC)


def test_linear_from_docs_example(linear):
    assert linear == Instrument("BTCUSDT", "linear", "0.10", "0.001", 1, 1_190_000, Decimal("5"))


def test_spot_uses_base_precision_min_order_amt_and_max_limit_qty(spot):
    # deprecated minOrderQty "0.000011" is ignored: the minimum is one basePrecision step
    assert spot == Instrument("BTCUSDT", "spot", "0.1", "0.000001", 1, 83_000_000, Decimal("5"))


def test_linear_price_format_keeps_the_tick_decimals(linear):
    assert linear.price_ticks("65114.2") == 651142
    assert linear.price_ticks("65114.20") == 651142
    assert linear.price_str(651142) == "65114.20"  # priceScale 2, like Bybit writes it
    assert linear.price_str(1) == "0.10"
    assert linear.price_str(0) == "0.00"
    assert linear.qty_lots("1.5") == 1500
    assert linear.qty_str(1500) == "1.500"
    assert linear.qty_str(1) == "0.001"


def test_spot_formats(spot):
    assert spot.price_ticks("29328") == 293280
    assert spot.price_str(293280) == "29328.0"
    assert spot.qty_lots("0.000011") == 11
    assert spot.qty_str(11) == "0.000011"


def test_integer_tick_sizes():
    ins = Instrument("X", "linear", "5", "10", 1, 100, Decimal("0"))
    assert ins.price_ticks("125") == 25
    assert ins.price_str(25) == "125"
    assert ins.qty_str(3) == "30"
    with pytest.raises(InstrumentError, match="not a multiple"):
        ins.price_ticks("127")


def test_huge_values_stay_exact(linear):
    # float would lose the last digit here
    assert linear.price_str(9_007_199_254_740_993) == "900719925474099.30"
    assert linear.price_ticks("900719925474099.30") == 9_007_199_254_740_993


@pytest.mark.parametrize("bad", ["65114.25", "-1.0", "1e3", "", " 1.0", "abc", "1.0.0", "NaN"])
def test_bad_price_strings_raise_typed_error_naming_value(linear, bad):
    with pytest.raises(InstrumentError) as ei:
        linear.price_ticks(bad)
    assert repr(bad) in str(ei.value)


def test_non_string_price_rejected(linear):
    with pytest.raises(InstrumentError, match="expected a decimal string"):
        linear.price_ticks(65114.2)


def test_off_step_qty_rejected(linear):
    with pytest.raises(InstrumentError, match="not a multiple of 0.001"):
        linear.qty_lots("0.0015")


def test_int64_overflow_rejected(linear):
    with pytest.raises(InstrumentError, match="overflows"):
        linear.price_ticks("922337203685477580.80")


def test_negative_ticks_cannot_be_formatted(linear):
    with pytest.raises(InstrumentError, match="negative"):
        linear.price_str(-1)


def test_min_lots_at_honours_min_notional(linear):
    # 65114.20 * 0.001 = 65.11 >= 5, so one lot
    assert linear.min_lots_at(651142) == 1
    # price 1000.00: 5 / (1000 * 0.001) = 5 lots exactly
    assert linear.min_lots_at(10000) == 5
    # price 999.90: 5 / 0.9999 = 5.0005 -> 6 lots
    assert linear.min_lots_at(9999) == 6
    # price 0.10: 5 / 0.0001 = 50000 lots
    assert linear.min_lots_at(1) == 50_000


def test_min_lots_at_honours_min_qty():
    ins = Instrument("X", "linear", "0.1", "0.001", 7, 1000, Decimal("0"))
    assert ins.min_lots_at(10) == 7


def test_min_lots_at_rejects_non_positive_price(linear):
    with pytest.raises(InstrumentError, match="positive"):
        linear.min_lots_at(0)


def test_notional_is_exact(linear):
    assert linear.notional(651142, 1500) == Decimal("97671.3")
    assert linear.price(651142) == Decimal("65114.20")
    assert linear.qty(3) == Decimal("0.003")


def test_min_qty_not_on_step_rounds_up():
    info = {**LINEAR_BTC, "lotSizeFilter": {**LINEAR_BTC["lotSizeFilter"], "minOrderQty": "0.0025"}}
    assert Instrument.from_bybit("linear", info).min_qty_lots == 3


@pytest.mark.parametrize(
    ("category", "info", "match"),
    [
        ("linear", {**LINEAR_BTC, "priceFilter": {}}, "priceFilter.tickSize"),
        (
            "linear",
            {k: v for k, v in LINEAR_BTC.items() if k != "lotSizeFilter"},
            "lotSizeFilter.qtyStep",
        ),
        ("spot", LINEAR_BTC, "lotSizeFilter.basePrecision"),
        ("linear", {**LINEAR_BTC, "priceFilter": {"tickSize": "0"}}, "must be positive"),
        ("linear", {**LINEAR_BTC, "priceFilter": {"tickSize": 0.1}}, "non-empty string"),
        ("inverse", LINEAR_BTC, "category must be"),
        ("linear", {"priceFilter": {"tickSize": "0.1"}}, "symbol"),
    ],
)
def test_bad_instrument_info_names_the_field(category, info, match):
    with pytest.raises(InstrumentError, match=match):
        Instrument.from_bybit(category, info)


def test_constructor_validates():
    with pytest.raises(InstrumentError, match="max_qty_lots"):
        Instrument("X", "linear", "0.1", "0.001", 10, 5, Decimal("0"))
    with pytest.raises(InstrumentError, match="min_notional"):
        Instrument("X", "linear", "0.1", "0.001", 1, 5, 5)
    with pytest.raises(InstrumentError, match="tick_size"):
        Instrument("X", "linear", "-0.1", "0.001", 1, 5, Decimal("0"))


def test_instruments_from_whole_response():
    resp = {
        "retCode": 0,
        "retMsg": "OK",
        "result": {"category": "linear", "list": [LINEAR_BTC], "nextPageCursor": ""},
    }
    got = instruments_from_response(resp)
    assert list(got) == ["BTCUSDT"]
    assert got["BTCUSDT"].tick_size == "0.10"
    with pytest.raises(InstrumentError, match="not a successful"):
        instruments_from_response({"retCode": 10001, "retMsg": "params error"})


def test_instrument_is_frozen_and_hashable(linear):
    with pytest.raises(AttributeError):
        linear.tick_size = "1"  # type: ignore[misc]
    assert hash(linear) == hash(Instrument.from_bybit("linear", LINEAR_BTC))


@settings(max_examples=300, deadline=None)
@given(
    price=st.integers(1, 10**9),
    min_qty=st.integers(1, 50),
    notional=st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False),
    tick=st.sampled_from(["0.1", "0.01", "0.5", "1", "25", "0.0001"]),
    lot=st.sampled_from(["0.001", "0.000001", "1", "10", "0.25"]),
)
def test_min_lots_at_is_the_smallest_valid_size(price, min_qty, notional, tick, lot):
    ins = Instrument("X", "linear", tick, lot, min_qty, 10**12, notional)
    got = ins.min_lots_at(price)

    def valid(lots):
        return (
            lots >= min_qty and Fraction(price * lots) * Fraction(tick) * Fraction(lot) >= notional
        )

    assert valid(got)
    assert got == min_qty or not valid(got - 1)
