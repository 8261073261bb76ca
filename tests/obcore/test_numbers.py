"""Exact decimal <-> ticks/lots conversion, checked against Decimal arithmetic."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import obcore
from obcore._reference import format_decimal, parse_decimal


@pytest.mark.parametrize(
    "tick, text, ticks",
    [
        ("0.1", "65114.2", 651142),
        ("0.1", "65114.20", 651142),
        ("0.10", "17440.00", 174400),
        ("0.01", "29328", 2932800),
        ("0.0001", "0.064", 640),
        ("0.5", "100.5", 201),
        ("5", "65115", 13023),
        ("0.000001", "0.000011", 11),
        ("1", "0", 0),
        ("0.1", "007.3", 73),
    ],
)
def test_parse_price_examples(tick, text, ticks):
    assert obcore.Book(tick, "1").parse_price(text) == ticks


def test_lot_examples():
    book = obcore.Book("0.1", "0.001")
    assert book.parse_size("0.001") == 1
    assert book.parse_size("30.028") == 30028
    assert book.size_str(30028) == "30.028"


@pytest.mark.parametrize(
    "tick, ticks, text",
    [
        ("0.1", 651142, "65114.2"),
        ("0.10", 174400, "17440.00"),
        ("5", 13023, "65115"),
        ("0.5", 201, "100.5"),
        ("0.0001", 640, "0.0640"),
        ("1", 0, "0"),
    ],
)
def test_format_examples(tick, ticks, text):
    assert obcore.Book(tick, "1").price_str(ticks) == text


@pytest.mark.parametrize(
    "text, error",
    [
        ("", obcore.MalformedNumberError),
        ("abc", obcore.MalformedNumberError),
        ("1.", obcore.MalformedNumberError),
        (".5", obcore.MalformedNumberError),
        ("1e5", obcore.MalformedNumberError),
        ("+1", obcore.MalformedNumberError),
        (" 1", obcore.MalformedNumberError),
        ("1 ", obcore.MalformedNumberError),
        ("1.2.3", obcore.MalformedNumberError),
        ("٣", obcore.MalformedNumberError),
        ("-", obcore.MalformedNumberError),
        ("-1", obcore.NegativeValueError),
        ("-0.1", obcore.NegativeValueError),
        ("65114.25", obcore.OffTickError),
        ("99999999999999999999", obcore.NumberOverflowError),
        ("922337203685477580.8", obcore.NumberOverflowError),
    ],
)
def test_price_errors_name_field_and_text(text, error):
    book = obcore.Book("0.1", "0.001")
    with pytest.raises(error) as info:
        book.parse_price(text)
    assert isinstance(info.value, obcore.ParseError)
    assert isinstance(info.value, obcore.ObcoreError)
    assert info.value.field == "price"
    assert info.value.text == text
    assert repr(text[:20]).strip("'")[:5] in str(info.value)


def test_off_step_size_is_its_own_error():
    with pytest.raises(obcore.OffStepError, match="lot size 0.001"):
        obcore.Book("0.1", "0.001").parse_size("0.0015")


def test_int64_boundary():
    book = obcore.Book("1", "1")
    assert book.parse_price("9223372036854775807") == 2**63 - 1
    with pytest.raises(obcore.NumberOverflowError):
        book.parse_price("9223372036854775808")
    with pytest.raises(obcore.NumberOverflowError):
        obcore.Book("0.5", "1").price_str(2**62)


@pytest.mark.parametrize("bad", ["0", "", "-0.1", "abc", "0.0000000000000000001"])
def test_bad_step_rejected(bad):
    with pytest.raises(obcore.ParseError):
        obcore.Book(bad, "1")


def test_float_step_rejected():
    with pytest.raises(TypeError, match="decimal string"):
        obcore.Book(0.1, "1")


def test_decimal_step_accepted():
    assert obcore.Book(Decimal("0.1"), "1").parse_price("1.5") == 15


steps = st.sampled_from(["1", "5", "0.5", "0.1", "0.10", "0.01", "0.25", "0.0001", "0.000001"])


@given(step=steps, count=st.integers(0, 10**15))
def test_round_trip(step, count):
    book = obcore.Book(step, step)
    text = book.price_str(count)
    assert text == format_decimal(count, step)
    assert book.parse_price(text) == count
    assert book.parse_size(book.size_str(count)) == count


number_text = st.one_of(
    st.from_regex(r"\A-?[0-9]{1,22}(\.[0-9]{1,10})?\Z"),
    st.text(alphabet="0123456789.-+e ", max_size=12),
    st.text(max_size=6),
)


@given(step=steps, text=number_text)
def test_parse_matches_decimal_reference(step, text):
    """Same value or the same error class as the Decimal-based reference, for any text."""
    book = obcore.Book(step, "1")
    try:
        expected = parse_decimal(text, step, "price", True)
    except obcore.ParseError as exc:
        with pytest.raises(type(exc)):
            book.parse_price(text)
    else:
        assert book.parse_price(text) == expected
