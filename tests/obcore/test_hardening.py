"""Regression tests for issue 11 ("obcore hardening"), items 1-8.

Each test failed (or crashed the interpreter) on the code before the fix. Crash repros run in
a subprocess, so a regression fails one test instead of killing the suite.
"""

import collections
import gc
import json
import subprocess
import sys
import textwrap
import types
from decimal import Decimal

import pytest
from test_frames import LINEAR_DELTA, LINEAR_SNAPSHOT, delta, linear_book, state

import obcore
from obcore import Applied


def run_isolated(code: str) -> str:
    """Run ``code`` in a fresh interpreter; fail (not crash) on a signal or an error."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    return proc.stdout


# ------------------------------------------------------------------ 1. uninitialised books


@pytest.mark.slow
def test_item1_book_whose_init_never_ran_refuses_with_a_typed_error():
    out = run_isolated(f"""
        import obcore
        class Lazy(obcore.Book):
            def __init__(self):
                pass           # never calls super().__init__
        for make in (lambda: obcore.Book.__new__(obcore.Book), Lazy):
            for call in (lambda b: b.set_level("b", 1, 1),
                         lambda b: b.apply({LINEAR_SNAPSHOT!r}),
                         lambda b: b.apply_levels([["1", "1"]]),
                         lambda b: b.update("a", "1", "1"),
                         lambda b: b.parse_price("1"),
                         lambda b: b.price_str(1)):
                book = make()
                try:
                    call(book)
                except obcore.ObcoreError as exc:
                    assert "not initialised" in str(exc), exc
                else:
                    raise AssertionError("accepted")
                # reads of the (empty) book are valid
                assert book.best_bid() is None and len(book) == 0 and not book.synced
                assert book.bids().shape == (0, 2) and not book.crossed
                book.check_integrity()
        print("ok")
    """)
    assert out.strip() == "ok"


def test_item1_reinit_is_all_or_nothing(kind):
    book = linear_book(kind)
    book.apply(LINEAR_SNAPSHOT)
    before = state(book)
    with pytest.raises(obcore.MalformedNumberError):
        book.__init__("0.01", "nope", kind=kind)
    with pytest.raises(ValueError):
        book.__init__("0.01", "0.001", kind="nope")
    assert state(book) == before
    assert (book.tick_size, book.lot_size, book.kind) == ("0.10", "0.001", kind)
    assert book.parse_price("30247.20") == 302472
    # a successful re-init is a new, empty book on the new grid
    book.__init__("0.01", "0.001", kind=kind)
    assert len(book) == 0 and book.update_id == 0 and not book.synced
    assert book.parse_price("30247.21") == 3024721


# ------------------------------------------------------------------ 2. mutating sequences


@pytest.mark.slow
def test_item2_level_lists_that_mutate_while_read_do_not_crash():
    out = run_isolated("""
        import obcore
        class Shrinking(list):
            def __len__(self):
                n = list.__len__(self)
                self.clear()
                return n
        class Growing(list):
            def __iter__(self):
                self.clear()
                return list.__iter__(self)
        class Evil(list):        # an inner level that empties the outer list
            outer = None
            def __len__(self):
                if Evil.outer is not None:
                    Evil.outer.clear()
                return list.__len__(self)
        for kind in obcore.kinds():
            # first: the exact-list case that read freed memory (SIGSEGV before the fix)
            book = obcore.Book("0.1", "0.001", kind=kind)
            outer = [("3.0", "1")] + [Evil(["1.0", "1"])] + [("2.0", "1")] * 1000
            Evil.outer = outer
            book.apply_levels(outer, [])     # reads the list as it was when called
            Evil.outer = None
            assert book.bids().tolist() == [[30, 1000], [20, 1000], [10, 1000]], book.bids()
            book.check_integrity()
            for cls in (Shrinking, Growing):
                for path in ("levels", "dict"):
                    book = obcore.Book("0.1", "0.001", kind=kind)
                    levels = cls([["1.0", "1"]] * 1000 + [("2.0", "1")])
                    try:
                        if path == "levels":
                            book.apply_levels(levels, [])
                        else:
                            book.apply({"type": "snapshot", "data": {"u": 1, "b": levels, "a": []}})
                    except obcore.ObcoreError:
                        assert len(book) == 0
                    book.check_integrity()
        print("ok")
    """)
    assert out.strip() == "ok"


def test_item2_level_sequences_that_lie_about_their_length(kind):
    class Liar(list):
        def __len__(self):
            return 2  # but iterates over four items

    book = linear_book(kind)
    with pytest.raises(obcore.FrameError, match=r"bids\[0\]"):
        book.apply_levels([Liar(["1.0", "1", "2", "3"])], [])
    assert len(book) == 0


# ------------------------------------------------------------------ 3. integers only


@pytest.mark.parametrize("bad", [100.7, Decimal("100.7"), Decimal("100"), 100.0, "100"])
def test_item3_tick_and_lot_arguments_must_be_integers(kind, bad):
    book = linear_book(kind)
    book.set_level("a", 100, 2)
    with pytest.raises(TypeError, match="int"):
        book.set_level("b", bad, 2)
    with pytest.raises(TypeError, match="int"):
        book.set_level("b", 99, bad)
    for call in (
        lambda: book.size_at("a", bad),
        lambda: book.cum_size("a", bad),
        lambda: book.vwap("a", bad),
        lambda: book.price_str(bad),
        lambda: book.size_str(bad),
    ):
        with pytest.raises(TypeError, match="int"):
            call()
    assert book.bids().tolist() == [] and book.asks().tolist() == [[100, 2]]


def test_item3_integer_like_values_still_work(kind):
    np = pytest.importorskip("numpy")
    book = linear_book(kind)
    book.set_level("b", np.int64(100), np.int32(2))
    assert book.size_at("b", np.int64(100)) == 2
    with pytest.raises(obcore.NumberOverflowError):
        book.set_level("b", 2**63, 1)


# ------------------------------------------------------------------ 4. reentrant reads


def test_item4_a_read_inside_a_read_does_not_corrupt_it(kind):
    book = linear_book(kind)
    book.apply_levels(
        [[f"{1000 - i}.0", "1"] for i in range(300)], [[f"{2000 + i}.0", "2"] for i in range(300)]
    )
    want_b = [(10000 - 10 * i, 1000) for i in range(300)]
    want_a = [(20000 + 10 * i, 2000) for i in range(300)]
    seen = []

    def nested(phase, info):
        if phase == "start":
            seen.append(book.asks(300).shape)
            seen.append(book.cum_size("a", 10**9))

    old = gc.get_threshold()
    gc.callbacks.append(nested)
    gc.set_threshold(1)
    try:
        got_b = list(book.levels("b"))
        got_arr = book.bids().tolist()
        got_cum = book.cum_size("b", 0)
        got_vwap = book.vwap("b", 300_000)
    finally:
        gc.callbacks.remove(nested)
        gc.set_threshold(*old)
    assert seen, "the gc callback never ran: the test proves nothing"
    assert got_b == want_b
    assert got_arr == [list(x) for x in want_b]
    assert got_cum == 300_000
    assert got_vwap == pytest.approx(sum(p for p, _ in want_b) / 300)
    assert list(book.levels("a")) == want_a


# ------------------------------------------------------------------ 5. errors and input types


def test_item5_lone_surrogates_raise_obcore_errors(kind):
    book = linear_book(kind)
    book.apply(LINEAR_SNAPSHOT)
    before = state(book)
    with pytest.raises(obcore.FrameError):
        book.apply(LINEAR_DELTA.replace("BTCUSDT", "BTC\ud800"))
    with pytest.raises(obcore.MalformedNumberError):
        book.update("b", "1\udc00", "1")
    with pytest.raises(obcore.MalformedNumberError):
        book.parse_price("\ud800")
    msg = json.loads(LINEAR_DELTA)
    msg["data"]["b"][0][0] = "3\ud800"
    with pytest.raises(obcore.MalformedNumberError):
        book.apply(msg)
    msg = json.loads(LINEAR_DELTA)
    msg["topic"] = "orderbook.50.\ud800"
    with pytest.raises(obcore.FrameError):
        book.apply(msg)
    with pytest.raises(obcore.MalformedNumberError):
        book.apply_levels([["1\ud800", "1"]])
    assert state(book) == before


def test_item5_str_subclasses_and_mappings_work(kind):
    class S(str):
        pass

    want = linear_book(kind)
    want.apply(LINEAR_SNAPSHOT)
    want.apply(LINEAR_DELTA)
    for hook in (collections.OrderedDict, None):
        book = linear_book(kind)
        book.apply(json.loads(LINEAR_SNAPSHOT, object_pairs_hook=hook))
        book.apply(json.loads(LINEAR_DELTA, object_pairs_hook=hook))
        assert state(book) == state(want)
    # a read-only Mapping that is not a dict
    book = linear_book(kind)
    snap = json.loads(LINEAR_SNAPSHOT)
    snap["data"] = types.MappingProxyType(snap["data"])
    book.apply(types.MappingProxyType(snap))
    msg = json.loads(LINEAR_DELTA)
    msg["data"]["b"] = [[S(p), S(q)] for p, q in msg["data"]["b"]]
    msg["data"]["s"] = S("BTCUSDT")
    msg["topic"] = S(msg["topic"])
    book.apply(msg)
    assert state(book) == state(want)
    book.update(S("b"), S("30247.20"), S("1.000"))
    book.apply_levels([(S("30247.20"), S("30.030"))])
    assert book.parse_price(S("1.0")) == 10
    assert state(book) == state(want)
    with pytest.raises(TypeError):
        book.apply([LINEAR_SNAPSHOT])


def test_item5_books_and_frame_topic_take_every_frame_form():
    books = obcore.Books()
    btc = books.add("orderbook.50.BTCUSDT", "0.10", "0.001")
    for form in (bytearray, lambda t: memoryview(t.encode()), str.encode):
        raw = (
            form(LINEAR_SNAPSHOT) if form is not bytearray else bytearray(LINEAR_SNAPSHOT.encode())
        )
        assert obcore.frame_topic(raw) == "orderbook.50.BTCUSDT"
        book, applied = books.apply(raw)
        assert book is btc and applied is Applied.SNAPSHOT
    od = json.loads(LINEAR_SNAPSHOT, object_pairs_hook=collections.OrderedDict)
    assert obcore.frame_topic(od) == "orderbook.50.BTCUSDT"
    assert books.apply(od) == (btc, Applied.SNAPSHOT)
    with pytest.raises(obcore.FrameError):
        books.apply(LINEAR_SNAPSHOT.replace("BTCUSDT", "\ud800"))


# ------------------------------------------------------------------ 6. topic and symbol pinning


def test_item6_a_book_refuses_another_topics_frames(kind):
    book = linear_book(kind)
    book.apply(LINEAR_SNAPSHOT)
    before = state(book)
    other = json.dumps(
        {
            "topic": "orderbook.1.BTCUSDT",
            "type": "snapshot",
            "ts": 2,
            "data": {
                "s": "BTCUSDT",
                "b": [["30247.20", "1.000"]],
                "a": [["30248.70", "1.000"]],
                "u": 1000,
                "seq": 1,
            },
        }
    )
    for frame in (other, json.loads(other), other.replace('"snapshot"', '"delta"')):
        with pytest.raises(obcore.FrameError, match="orderbook.1.BTCUSDT"):
            book.apply(frame)
        assert state(book) == before
    assert book.topic == "orderbook.50.BTCUSDT"
    assert book.apply(LINEAR_DELTA) is Applied.DELTA


def test_item6_topic_given_up_front_is_pinned(kind):
    book = obcore.Book("0.10", "0.001", kind=kind, topic="orderbook.1.BTCUSDT")
    with pytest.raises(obcore.FrameError, match="topic"):
        book.apply(LINEAR_SNAPSHOT)
    assert len(book) == 0 and book.topic == "orderbook.1.BTCUSDT"
    books = obcore.Books()
    assert books.add("orderbook.50.BTCUSDT", "0.10", "0.001").topic == "orderbook.50.BTCUSDT"


def test_item6_snapshot_of_a_symbolless_book_round_trips(kind):
    book = linear_book(kind)
    book.apply_levels([["100.0", "1"]], [["101.0", "1"]])
    snap = book.snapshot()
    assert "s" not in snap["data"]
    clone = linear_book(kind)
    clone.apply(snap)
    assert clone.symbol is None
    assert clone.apply(LINEAR_SNAPSHOT) is Applied.SNAPSHOT
    assert clone.symbol == "BTCUSDT"
    with pytest.raises(obcore.FrameError, match="data.s"):
        linear_book(kind).apply(LINEAR_SNAPSHOT.replace('"s":"BTCUSDT"', '"s":""'))


# ------------------------------------------------------------------ 7. raw parser == JSON


def test_item7_escaped_keys_are_decoded(kind):
    escaped = LINEAR_SNAPSHOT.replace('"b":', '"\\u0062":').replace('"type"', '"typ\\u0065"')
    book = linear_book(kind)
    assert book.apply(escaped) is Applied.SNAPSHOT
    want = linear_book(kind)
    want.apply(json.loads(escaped))
    assert state(book) == state(want)
    # a second "b" spelt with an escape is a duplicate key, not an ignored one
    dup = LINEAR_SNAPSHOT.replace('"u":', '"\\u0062":[["1.00","1.000"]],"u":')
    with pytest.raises(obcore.FrameError, match="duplicate"):
        linear_book(kind).apply(dup)


def test_item7_escaped_values_are_decoded(kind):
    text = (
        LINEAR_SNAPSHOT.replace('"30247.20"', '"\\u0033\\u0030247.20"')
        .replace('"BTCUSDT"', '"BTC\\u0055SDT"')
        .replace('"orderbook.50', '"order\\/book.50')
    )
    book = linear_book(kind)
    book.apply(text)
    assert book.best_bid() == (302472, 30028)
    assert book.symbol == "BTCUSDT" and book.topic == "order/book.50.BTCUSDT"


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


@pytest.mark.parametrize(
    "bad",
    [
        LINEAR_DELTA.replace('"u":177400508', '"u":0177400508'),
        LINEAR_DELTA.replace('"ts":1687940967467', '"ts":01'),
        LINEAR_DELTA.replace('"cts":', '"x":01,"cts":'),
        LINEAR_DELTA.replace('"cts":', '"x":-01.5,"cts":'),
        LINEAR_DELTA.replace('"cts":', '"x":"\\q","cts":'),
        LINEAR_DELTA.replace('"cts":', '"x":"\\u12G4","cts":'),
        LINEAR_DELTA.replace('"cts":', '"x":NaN,"cts":'),
    ],
)
def test_item7_invalid_json_is_rejected(kind, bad):
    book = linear_book(kind)
    book.apply(LINEAR_SNAPSHOT)
    before = state(book)
    with pytest.raises(ValueError):
        json.loads(bad, parse_constant=_refuse_constant)
    with pytest.raises(obcore.FrameError):
        book.apply(bad)
    assert state(book) == before


@pytest.mark.parametrize(
    "bad", [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80"]
)
def test_item7_invalid_utf8_is_rejected(kind, bad):
    book = linear_book(kind)
    book.apply(LINEAR_SNAPSHOT)
    before = state(book)
    raw = LINEAR_DELTA.replace('"cts":', '"x":"@","cts":').encode().replace(b"@", bad)
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    with pytest.raises(obcore.FrameError, match="UTF-8"):
        book.apply(raw)
    assert state(book) == before
    good = LINEAR_DELTA.replace('"cts":', '"x":"\u00e9\u2603\U0001f600","cts":').encode()
    assert book.apply(good) is Applied.DELTA


def test_item7_negative_zero_is_zero_like_json(kind):
    text = LINEAR_SNAPSHOT.replace('"ts":1687940967466', '"ts":-0')
    assert json.loads(text)["ts"] == 0
    book = linear_book(kind)
    book.apply(text)
    assert book.ts == 0


def test_item7_null_optional_fields_are_rejected_on_both_paths(kind):
    for key, where in (("topic", "topic"), ("ts", "ts"), ("cts", "cts")):
        msg = json.loads(LINEAR_SNAPSHOT)
        msg[key] = None
        for frame in (msg, json.dumps(msg)):
            with pytest.raises(obcore.FrameError, match=where):
                linear_book(kind).apply(frame)
    for key in ("s", "seq"):
        msg = json.loads(LINEAR_SNAPSHOT)
        msg["data"][key] = None
        for frame in (msg, json.dumps(msg)):
            with pytest.raises(obcore.FrameError, match=f"data.{key}"):
                linear_book(kind).apply(frame)


# ------------------------------------------------------------------ 8. crossed books


def test_item8_crossing_delta_leaves_the_book_out_of_sync(kind):
    book = linear_book(kind)
    book.apply(LINEAR_SNAPSHOT)  # bid 30247.20, ask 30248.70
    crossing = delta(177400508, b=[("30249.10", "1.000")])
    assert book.apply(crossing) is Applied.DELTA
    assert book.crossed is True
    assert book.spread() == -4
    assert not book.synced
    with pytest.raises(obcore.OutOfSyncError, match="crossed"):
        book.apply(delta(177400509, b=[("30249.10", "0")]))
    assert book.apply(LINEAR_SNAPSHOT) is Applied.SNAPSHOT
    assert book.synced and book.crossed is False


def test_item8_crossed_snapshot_is_not_synced(kind):
    book = linear_book(kind)
    book.apply(LINEAR_SNAPSHOT.replace('"30248.70"', '"30247.20"'))  # locked: bid == ask
    assert book.crossed is True and not book.synced


def test_item8_crossed_is_a_bool(kind):
    book = linear_book(kind)
    assert book.crossed is False
    book.set_level("b", 5, 1)
    assert book.crossed is False
    book.set_level("a", 4, 1)  # a direct edit may cross; it is flagged, not refused
    assert book.crossed is True
