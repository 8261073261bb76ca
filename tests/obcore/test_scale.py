"""obcore.Scale: the books' exact decimal grid as a public API, checked against Decimal."""

import pickle
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import obcore
from obcore import Scale

STEPS = ["0.10", "0.1", "0.001", "5", "0.00000001", "0.5", "25"]


def _exact_units(text: str, step: str) -> int:
    """The reference: Decimal arithmetic, which never rounds these short values."""
    units, rem = divmod(Decimal(text), Decimal(step))
    assert rem == 0
    return int(units)


@given(st.sampled_from(STEPS), st.integers(0, 10**15))
def test_format_then_parse_round_trips_and_matches_decimal(step, units):
    scale = Scale(step)
    text = scale.format(units)
    assert Decimal(text) == units * Decimal(step)
    # the written decimals of the step set the format, like Bybit's priceScale
    assert len(text.partition(".")[2]) == len(step.partition(".")[2])
    assert scale.parse(text) == units == _exact_units(text, step)


@given(st.sampled_from(STEPS), st.integers(0, 10**12), st.integers(0, 3))
def test_parse_accepts_any_written_precision_on_the_grid(step, units, extra_zeros):
    text = format(units * Decimal(step), "f")
    if "." in text:
        text += "0" * extra_zeros
    assert Scale(step).parse(text) == _exact_units(text, step)


def test_parse_agrees_with_a_book_on_the_same_grid():
    book = obcore.Book(tick_size="0.10", lot_size="0.001")
    tick, lot = Scale("0.10", price=True), Scale("0.001")
    for text in ["65114.2", "65114.20", "0", "123456789.9"]:
        assert tick.parse(text) == book.parse_price(text)
        assert tick.format(tick.parse(text)) == book.price_str(book.parse_price(text))
    assert lot.parse("1.5") == book.parse_size("1.5") == 1500


@pytest.mark.parametrize(
    ("text", "error", "words"),
    [
        ("65114.25", obcore.OffTickError, "not a multiple of tick size 0.10"),
        ("-1", obcore.NegativeValueError, "negative"),
        ("1e3", obcore.MalformedNumberError, "not a plain decimal"),
        ("", obcore.MalformedNumberError, "not a plain decimal"),
        (" 1", obcore.MalformedNumberError, "not a plain decimal"),
        ("922337203685477580.80", obcore.NumberOverflowError, "int64 ticks"),
    ],
)
def test_bad_text_raises_the_typed_error_naming_the_value(text, error, words):
    with pytest.raises(error, match=words) as info:
        Scale("0.10", price=True).parse(text, "order price")
    assert str(info.value).startswith("order price")
    assert info.value.text == text


def test_off_grid_size_is_an_off_step_error():
    with pytest.raises(obcore.OffStepError, match="lot size 0.001"):
        Scale("0.001").parse("0.0015")


@pytest.mark.parametrize("step", ["0", "-0.1", "abc", "0.1.0", ""])
def test_a_bad_step_is_refused(step):
    with pytest.raises(obcore.ParseError):
        Scale(step)


def test_floats_are_refused_both_ways():
    with pytest.raises(TypeError):
        Scale(0.1)
    with pytest.raises(TypeError):
        Scale("0.1").format(1.5)
    with pytest.raises(TypeError):
        Scale("0.1").parse(1.5)


def test_decimal_and_int_steps_are_exact():
    assert Scale(Decimal("0.10")).step == "0.10"
    assert Scale(5).format(3) == "15"


def test_negative_units_format_with_a_sign():
    assert Scale("0.001").format(-1500) == "-1.500"


def test_equality_hash_and_pickle():
    a = Scale("0.10", price=True)
    assert a == Scale("0.10", price=True) and hash(a) == hash(Scale("0.10", price=True))
    assert a != Scale("0.1", price=True)  # formats with one decimal fewer
    assert a != Scale("0.10")
    b = pickle.loads(pickle.dumps(a))
    assert b == a and b.price and b.format(651142) == "65114.20"
