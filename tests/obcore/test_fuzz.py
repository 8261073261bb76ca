"""Mutated frames must never crash the interpreter or corrupt the book.

Every mutation is either rejected with an ObcoreError, leaving the book exactly as it was, or
accepted, in which case the reference model given the same text must accept it too and agree.
"""
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import obcore
from obcore._reference import PyBook

from test_frames import LINEAR_DELTA, LINEAR_SNAPSHOT, state

PIECES = ['"', "{", "}", "[", "]", ",", ":", "\\", "\x00", "é", "\u2603", "-", "0", "9" * 30,
          '"0"', "1e9", "null", "true", '"b"', '"u"', '"type"', '"snapshot"', " ", "\n"]


def mutate(text: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        i = rng.randrange(len(text) + 1)
        if op == 0:
            text = text[:i]
        elif op == 1:
            text = text[:i] + rng.choice(PIECES) + text[i:]
        elif op == 2 and text:
            text = text[:i] + text[i + 1:]
        elif op == 3 and text:
            j = rng.randrange(len(text))
            text = text[:j] + chr(rng.randrange(1, 0x3000)) + text[j + 1:]
        else:
            text = text[:i] + text[i:][::-1]
    return text


@pytest.mark.parametrize("seed", range(4))
def test_random_mutations(kind, seed):
    rng = random.Random(seed)
    for _ in range(400):
        book = obcore.Book("0.10", "0.001", kind=kind)
        ref = PyBook("0.10", "0.001")
        book.apply(LINEAR_SNAPSHOT)
        ref.apply(LINEAR_SNAPSHOT)
        base = rng.choice([LINEAR_SNAPSHOT, LINEAR_DELTA])
        text = mutate(base, rng)
        before = state(book)
        for payload in (text, text.encode("utf-8", "surrogatepass")):
            try:
                book.apply(payload)
            except obcore.ObcoreError:
                assert state(book) == before
                book.check_integrity()
                continue
            book.check_integrity()
            try:
                ref.apply(text)
            except obcore.ObcoreError:
                # the C parser takes raw escapes in keys literally, json.loads decodes them;
                # anything else it accepts must be valid JSON the reference accepts
                assert "\\" in text, text
                break
            assert book.bids().tolist() == ref.bids().tolist(), text
            assert book.asks().tolist() == ref.asks().tolist(), text
            break


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes(data):
    book = obcore.Book("0.10", "0.001")
    book.apply(LINEAR_SNAPSHOT)
    before = state(book)
    try:
        book.apply(data)
    except obcore.ObcoreError:
        assert state(book) == before


@settings(max_examples=200, deadline=None)
@given(msg=st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["type", "data", "b", "a", "u", "s", "seq", "ts", "topic", "x"]),
        children, max_size=6),
    max_leaves=20))
def test_arbitrary_dicts(msg):
    book = obcore.Book("0.10", "0.001")
    book.apply(LINEAR_SNAPSHOT)
    before = state(book)
    if isinstance(msg, str):
        with pytest.raises(obcore.FrameError):
            book.apply(msg)
        assert state(book) == before
        return
    if not isinstance(msg, dict):
        with pytest.raises(TypeError):
            book.apply(msg)
        return
    try:
        book.apply(msg)
    except obcore.ObcoreError:
        assert state(book) == before


@pytest.mark.parametrize("depth", [10, 63, 64, 65, 5000])
def test_deep_nesting_is_rejected_not_crashing(depth):
    book = obcore.Book("0.10", "0.001")
    text = LINEAR_SNAPSHOT.replace('"cts":', '"x":' + "[" * depth + "]" * depth + ',"cts":')
    try:
        book.apply(text)
    except obcore.FrameError as exc:
        assert "nested too deeply" in str(exc)
        assert depth >= 63


def test_huge_frame():
    n = 20000
    bids = ",".join(f'["{100000 - i}.00","1.000"]' for i in range(n))
    asks = ",".join(f'["{100001 + i}.00","1.000"]' for i in range(n))
    text = ('{"topic":"orderbook.1000.BTCUSDT","type":"snapshot","ts":1,"data":{"s":"BTCUSDT",'
            f'"b":[{bids}],"a":[{asks}],"u":1,"seq":1}}}}')
    for kind in obcore.kinds():
        book = obcore.Book("0.10", "0.001", kind=kind)
        book.apply(text)
        assert (book.bid_count, book.ask_count) == (n, n)
        assert book.best_bid() == (1000000, 1000) and book.best_ask() == (1000010, 1000)
        book.check_integrity()
