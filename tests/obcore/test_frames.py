"""Bybit v5 frames in their exact shapes: sequencing, key order, and transactional rejection."""

import json

import orjson
import pytest

import obcore
from obcore import Applied

# Shapes from Bybit's v5 orderbook docs: linear keeps priceScale decimals and sends "ts"
# after "type"; spot strips trailing zeros and sends "ts" before "type".
LINEAR_SNAPSHOT = (
    '{"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":1687940967466,'
    '"data":{"s":"BTCUSDT","b":[["30247.20","30.028"],["30240.00","1.000"],["30239.90","0.250"]],'
    '"a":[["30248.70","0.500"],["30249.30","0.892"]],"u":177400507,"seq":66544703342},'
    '"cts":1687940967464}'
)
LINEAR_DELTA = (
    '{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1687940967467,'
    '"data":{"s":"BTCUSDT","b":[["30247.20","30.030"],["30240.00","0"]],'
    '"a":[["30248.70","0"],["30249.00","0.100"]],"u":177400508,"seq":66544703350},'
    '"cts":1687940967465}'
)
SPOT_SNAPSHOT = (
    '{"topic":"orderbook.1.FITFIUSDT","ts":1700000000001,"type":"snapshot",'
    '"data":{"s":"FITFIUSDT","b":[["0.064","12000"]],"a":[["0.0641","503.5"]],'
    '"u":1,"seq":9},"cts":1700000000000}'
)


def linear_book(kind):
    return obcore.Book("0.10", "0.001", kind=kind)


def state(book):
    """Everything observable about a book, for bit-for-bit comparisons."""
    return (
        book.bids().tolist(),
        book.asks().tolist(),
        book.update_id,
        book.seq,
        book.ts,
        book.cts,
        book.synced,
        book.symbol,
        book.topic,
    )


def test_linear_snapshot_then_delta(kind):
    book = linear_book(kind)
    assert book.apply(LINEAR_SNAPSHOT) is Applied.SNAPSHOT
    assert book.best_bid() == (302472, 30028)
    assert book.best_ask() == (302487, 500)
    assert book.bids().tolist() == [[302472, 30028], [302400, 1000], [302399, 250]]
    assert (book.update_id, book.seq, book.ts, book.cts) == (
        177400507,
        66544703342,
        1687940967466,
        1687940967464,
    )
    assert book.symbol == "BTCUSDT" and book.topic == "orderbook.50.BTCUSDT" and book.synced

    assert book.apply(LINEAR_DELTA) is Applied.DELTA
    assert book.bids().tolist() == [[302472, 30030], [302399, 250]]
    assert book.asks().tolist() == [[302490, 100], [302493, 892]]
    assert book.update_id == 177400508
    book.check_integrity()


def test_spot_shape_with_ts_before_type(kind):
    book = obcore.Book("0.0001", "0.1", kind=kind)
    assert book.apply(SPOT_SNAPSHOT) is Applied.SNAPSHOT
    assert book.best_bid() == (640, 120000)
    assert book.best_ask() == (641, 5035)
    assert book.price_str(640) == "0.0640"


@pytest.mark.parametrize("as_type", [str, bytes, "orjson", "json"])
def test_every_input_form_gives_the_same_book(kind, as_type):
    def conv(text):
        if as_type is str:
            return text
        if as_type is bytes:
            return text.encode()
        return orjson.loads(text) if as_type == "orjson" else json.loads(text)

    book = linear_book(kind)
    book.apply(conv(LINEAR_SNAPSHOT))
    book.apply(conv(LINEAR_DELTA))
    ref = linear_book(kind)
    ref.apply(LINEAR_SNAPSHOT)
    ref.apply(LINEAR_DELTA)
    assert state(book) == state(ref)


def delta(u, b=(), a=(), symbol="BTCUSDT"):
    return json.dumps(
        {
            "topic": "orderbook.50.BTCUSDT",
            "type": "delta",
            "ts": 1,
            "data": {
                "s": symbol,
                "b": [list(x) for x in b],
                "a": [list(x) for x in a],
                "u": u,
                "seq": u,
            },
        }
    )


def test_stale_delta_ignored(kind):
    book = linear_book(kind)
    book.apply(LINEAR_SNAPSHOT)
    before = state(book)
    assert book.apply(delta(177400507, b=[("1.00", "1.000")])) is Applied.STALE
    assert book.apply(delta(5, b=[("1.00", "1.000")])) is Applied.STALE
    assert state(book) == before


def test_gap_marks_out_of_sync_until_snapshot(kind):
    book = linear_book(kind)
    book.apply(LINEAR_SNAPSHOT)
    before = state(book)
    with pytest.raises(obcore.SequenceGapError) as info:
        book.apply(delta(177400509, b=[("1.00", "1.000")]))
    assert (info.value.expected, info.value.received) == (177400508, 177400509)
    assert not book.synced
    assert state(book)[:6] == before[:6]
    assert book.best_bid() == (302472, 30028)  # reads still work while out of sync
    with pytest.raises(obcore.OutOfSyncError):
        book.apply(delta(177400508))
    assert book.apply(LINEAR_SNAPSHOT) is Applied.SNAPSHOT
    assert book.synced
    assert book.apply(LINEAR_DELTA) is Applied.DELTA


def test_delta_before_any_snapshot_refused(kind):
    book = linear_book(kind)
    with pytest.raises(obcore.OutOfSyncError, match="no snapshot"):
        book.apply(LINEAR_DELTA)
    assert len(book) == 0 and book.update_id == 0


def test_restart_snapshot_u1_replaces(kind):
    book = linear_book(kind)
    book.apply(LINEAR_SNAPSHOT)
    restart = json.dumps(
        {
            "topic": "orderbook.50.BTCUSDT",
            "type": "snapshot",
            "ts": 2,
            "data": {"s": "BTCUSDT", "b": [["100.00", "1.000"]], "a": [], "u": 1, "seq": 1},
        }
    )
    assert book.apply(restart) is Applied.SNAPSHOT
    assert book.update_id == 1
    assert book.bids().tolist() == [[1000, 1000]]
    assert book.best_ask() is None
    assert book.apply(delta(2, a=[("101.00", "2.000")])) is Applied.DELTA
    assert book.best_ask() == (1010, 2000)


def test_zero_size_deletes_and_absent_delete_is_harmless(kind):
    book = linear_book(kind)
    book.apply(LINEAR_SNAPSHOT)
    book.apply(delta(177400508, b=[("30247.20", "0"), ("1.00", "0")]))
    assert book.size_at("b", 302472) == 0
    assert book.bid_count == 2


def test_max_depth_trims_worst_levels(kind):
    book = obcore.Book("0.10", "0.001", kind=kind, max_depth=2)
    book.apply(LINEAR_SNAPSHOT)
    assert book.bids().tolist() == [[302472, 30028], [302400, 1000]]
    book.apply(delta(177400508, b=[("30250.00", "1.000")]))
    assert book.bids().tolist() == [[302500, 1000], [302472, 30028]]
    book.check_integrity()


def test_symbol_mismatch_rejected(kind):
    book = linear_book(kind)
    book.apply(LINEAR_SNAPSHOT)
    before = state(book)
    with pytest.raises(obcore.FrameError, match="ETHUSDT"):
        book.apply(delta(177400508, b=[("1.00", "1.000")], symbol="ETHUSDT"))
    assert state(book) == before


BAD_DELTAS = [
    (LINEAR_DELTA.replace('"30249.00"', '"30249.05"'), obcore.OffTickError, "data.a[1] price"),
    (LINEAR_DELTA.replace('"0.100"', '"0.1005"'), obcore.OffStepError, "data.a[1] size"),
    (LINEAR_DELTA.replace('"0.100"', '"-0.100"'), obcore.NegativeValueError, "data.a[1] size"),
    (LINEAR_DELTA.replace('"0.100"', '"1e3"'), obcore.MalformedNumberError, "data.a[1] size"),
    (LINEAR_DELTA.replace('"0.100"', "0.1"), obcore.FrameError, "data.a[1]"),
    (
        LINEAR_DELTA.replace('"30249.00"', '"99999999999999999999.00"'),
        obcore.NumberOverflowError,
        "data.a[1] price",
    ),
    (LINEAR_DELTA.replace('"type":"delta"', '"type":"update"'), obcore.FrameError, "type"),
    (LINEAR_DELTA.replace('"u":177400508', '"u":-1'), obcore.NegativeValueError, "data.u"),
    (LINEAR_DELTA.replace('"u":177400508', '"u":1.5'), obcore.FrameError, "data.u"),
    (LINEAR_DELTA.replace('"u":177400508,', ""), obcore.FrameError, "data.u"),
    (LINEAR_DELTA.replace('"b":', '"x":'), obcore.FrameError, "data.b"),
    (LINEAR_DELTA[:-10], obcore.FrameError, "unexpected end"),
    (LINEAR_DELTA + "x", obcore.FrameError, "trailing"),
    (
        LINEAR_DELTA.replace('["30249.00","0.100"]', '["30249.00","0.100","0","0"]'),
        obcore.FrameError,
        "data.a[1]",
    ),
    (
        LINEAR_DELTA.replace('["30249.00","0.100"]', '["30249.00","0.100","x"]'),
        obcore.MalformedNumberError,
        "data.a[1] rpi size",
    ),
    (
        LINEAR_DELTA.replace('"seq":66544703350', '"seq":66544703350,"u":1'),
        obcore.FrameError,
        "duplicate",
    ),
]


@pytest.mark.parametrize("frame, error, where", BAD_DELTAS)
def test_rejected_frame_leaves_book_unchanged(kind, frame, error, where):
    book = linear_book(kind)
    book.apply(LINEAR_SNAPSHOT)
    before = state(book)
    with pytest.raises(error) as info:
        book.apply(frame)
    assert where in str(info.value)
    assert state(book) == before
    book.check_integrity()
    # the same frame parsed to a dict is rejected with the same class, when it is JSON
    try:
        msg = json.loads(frame)
    except ValueError:
        return
    if isinstance(msg.get("data", {}).get("u"), float) or where == "duplicate":
        return  # json.loads accepts 1.5 as u and keeps the last of duplicate keys
    with pytest.raises(obcore.ParseError):
        book.apply(msg)
    assert state(book) == before


def test_bad_snapshot_does_not_clear_book(kind):
    book = linear_book(kind)
    book.apply(LINEAR_SNAPSHOT)
    before = state(book)
    with pytest.raises(obcore.OffTickError):
        book.apply(LINEAR_SNAPSHOT.replace('"30239.90"', '"30239.95"'))
    assert state(book) == before


def test_unknown_keys_are_skipped_but_validated(kind):
    book = linear_book(kind)
    extra = LINEAR_SNAPSHOT.replace('"cts":', '"x":{"y":[1,2.5e3,true,null,"s\\"q"]},"cts":')
    assert book.apply(extra) is Applied.SNAPSHOT
    with pytest.raises(obcore.FrameError):
        book.apply(LINEAR_SNAPSHOT.replace('"cts":', '"x":[1,,2],"cts":'))


def test_whitespace_and_pretty_printed_json(kind):
    book = linear_book(kind)
    book.apply(json.dumps(json.loads(LINEAR_SNAPSHOT), indent=2))
    assert book.best_bid() == (302472, 30028)


def test_wrong_input_type(kind):
    with pytest.raises(TypeError):
        linear_book(kind).apply(42)


def test_books_registry_routes_by_topic():
    books = obcore.Books()
    btc = books.add("orderbook.50.BTCUSDT", "0.10", "0.001")
    fitfi = books.add("orderbook.1.FITFIUSDT", "0.0001", "0.1")
    assert btc.symbol == "BTCUSDT"
    book, applied = books.apply(LINEAR_SNAPSHOT)
    assert book is btc and applied is Applied.SNAPSHOT
    book, _ = books.apply(SPOT_SNAPSHOT)
    assert book is fitfi
    assert books["orderbook.1.FITFIUSDT"] is fitfi and len(books) == 2
    with pytest.raises(obcore.UnknownTopicError):
        books.apply(LINEAR_SNAPSHOT.replace("orderbook.50.BTCUSDT", "orderbook.50.ETHUSDT"))
    with pytest.raises(ValueError):
        books.add("orderbook.50.BTCUSDT", "0.1", "0.001")
    assert obcore.frame_topic(LINEAR_DELTA) == "orderbook.50.BTCUSDT"
    assert obcore.frame_topic('{"op":"pong"}') is None
