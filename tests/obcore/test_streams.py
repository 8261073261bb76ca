"""Newer Bybit streams: orderbook.rpi levels [price, size, rpiSize], and depth-1 snapshots
resent with the same u."""

import json
import pickle

import pytest

import obcore
from obcore import Applied
from obcore._reference import PyBook

# Shape from Bybit's orderbook.rpi docs: b[1]/a[1] is the non-RPI size, b[2]/a[2] the RPI size.
RPI_SNAPSHOT = json.dumps(
    {
        "topic": "orderbook.rpi.BTCUSDT",
        "ts": 1752472188000,
        "type": "snapshot",
        "data": {
            "s": "BTCUSDT",
            "b": [
                ["121975.1", "0.114259", "0"],
                ["121969.9", "0.2", "0.05"],
                ["121960.5", "0", "0.163986"],
            ],
            "a": [["121990.8", "0.441585", "0.78821"], ["121996.1", "0.016393", "0"]],
            "u": 2258979,
            "seq": 79683241098,
        },
        "cts": 1752472187990,
    },
    separators=(",", ":"),
)
RPI_DELTA = json.dumps(
    {
        "topic": "orderbook.rpi.BTCUSDT",
        "ts": 1752472188075,
        "type": "delta",
        "data": {
            "s": "BTCUSDT",
            "b": [["121975.1", "0.114259", "0"], ["121969.9", "0", "0"], ["121960.5", "0", "0.2"]],
            "a": [
                ["121990.8", "0.441585", "0"],
                ["121996.1", "0.016393", "0.5"],
                ["122018.5", "0", "0"],
            ],
            "u": 2258980,
            "seq": 79683241099,
        },
        "cts": 1752472188070,
    },
    separators=(",", ":"),
)


def rpi_book(kind=None, **kw):
    return obcore.Book("0.1", "0.000001", kind=kind, **kw)


@pytest.mark.parametrize("form", ["raw", "dict"])
def test_rpi_levels_keep_both_sizes(kind, form):
    book = rpi_book(kind)
    ref = PyBook("0.1", "0.000001")
    for text in (RPI_SNAPSHOT, RPI_DELTA):
        frame = text if form == "raw" else json.loads(text)
        assert book.apply(frame) == ref.apply(json.loads(text))
        assert book.bids().tolist() == ref.bids().tolist()
        assert book.rpi_asks().tolist() == ref.rpi_asks().tolist()
        assert book.snapshot() == ref.snapshot()
        book.check_integrity()
    # regular sizes: what orderbook.{depth} would show; the RPI-only level is not a level
    assert book.bids().tolist() == [[1219751, 114259]]
    assert book.best_bid() == (1219751, 114259)
    assert book.asks().tolist() == [[1219908, 441585], [1219961, 16393]]
    # RPI sizes, by price
    assert book.rpi_bids().tolist() == [[1219605, 200000]]
    assert book.rpi_asks().tolist() == [[1219961, 500000]]
    assert book.rpi_size_at("b", 1219605) == 200000
    assert book.rpi_size_at("a", 1219908) == 0
    assert book.size_at("b", 1219605) == 0


def test_rpi_snapshot_round_trips(kind):
    book = rpi_book(kind)
    book.apply(RPI_SNAPSHOT)
    snap = book.snapshot()
    assert snap["data"]["b"][2] == ["121960.5", "0.000000", "0.163986"]
    clone = rpi_book(kind)
    clone.apply(snap)
    assert clone.snapshot() == snap
    copy = pickle.loads(pickle.dumps(book))
    assert copy.snapshot() == snap
    assert copy.rpi_bids().tolist() == book.rpi_bids().tolist()


def test_rpi_errors_name_the_rpi_size(kind):
    book = rpi_book(kind)
    book.apply(RPI_SNAPSHOT)
    before = (book.bids().tolist(), book.rpi_bids().tolist(), book.update_id)
    bad = RPI_DELTA.replace('"0.5"]', '"0.5000001"]')
    for frame in (bad, json.loads(bad)):
        with pytest.raises(obcore.OffStepError, match=r"data.a\[1\] rpi size"):
            book.apply(frame)
    assert (book.bids().tolist(), book.rpi_bids().tolist(), book.update_id) == before


def test_rpi_sizes_follow_snapshots_and_max_depth(kind):
    book = rpi_book(kind, max_depth=1)
    book.apply(RPI_SNAPSHOT)
    assert book.rpi_bids().tolist() == [[1219699, 50000]]
    book.check_integrity()
    plain = (
        RPI_SNAPSHOT.replace(',"0"]', "]")
        .replace(',"0.05"]', "]")
        .replace(',"0.163986"]', "]")
        .replace(',"0.78821"]', "]")
    )
    book.apply(plain.replace('"u":2258979', '"u":1'))
    assert book.rpi_bids().tolist() == [] and book.rpi_asks().tolist() == []


def test_plain_books_have_no_rpi_sizes(kind):
    book = rpi_book(kind)
    assert book.rpi_bids().shape == (0, 2) and book.rpi_size_at("a", 1) == 0
    assert "rpi" not in json.dumps(book.snapshot())


DEPTH1 = (
    '{"topic":"orderbook.1.BTCUSDT","type":"snapshot","ts":%d,"data":{"s":"BTCUSDT",'
    '"b":[["30247.20","1.000"]],"a":[["30248.70","2.000"]],"u":%d,"seq":%d},"cts":%d}'
)


def test_depth1_snapshot_resent_with_the_same_u_is_accepted(kind):
    # Bybit re-sends a level-1 snapshot unchanged every 3 s with the same u: not a gap, not
    # stale, and the book stays synced.
    book = obcore.Book("0.10", "0.001", kind=kind)
    assert book.apply(DEPTH1 % (1000, 500, 9, 999)) is Applied.SNAPSHOT
    assert book.apply(DEPTH1 % (4000, 500, 9, 3999)) is Applied.SNAPSHOT
    assert book.synced and book.update_id == 500 and book.ts == 4000
    assert book.best_bid() == (302472, 1000) and book.best_ask() == (302487, 2000)
    assert book.apply(DEPTH1 % (4010, 501, 10, 4009)) is Applied.SNAPSHOT
    assert book.update_id == 501


# REST GET /v5/market/orderbook, as Bybit documents the response.
REST = {
    "retCode": 0,
    "retMsg": "OK",
    "time": 1709199771643,
    "retExtInfo": {},
    "result": {
        "s": "BTCUSDT",
        "b": [["62710.2", "5.52"], ["62710.0", "1"]],
        "a": [["62710.3", "0.01"]],
        "ts": 1709199771584,
        "u": 243781,
        "seq": 3887177875,
        "cts": 1709199771580,
    },
}


def ws_delta(u, b=(), a=()):
    return json.dumps(
        {
            "topic": "orderbook.1000.BTCUSDT",
            "type": "delta",
            "ts": 1709199771600 + u,
            "data": {
                "s": "BTCUSDT",
                "b": [list(x) for x in b],
                "a": [list(x) for x in a],
                "u": u,
                "seq": 3887177875 + u,
            },
        }
    )


def test_rest_snapshot_then_websocket_deltas(kind):
    book = obcore.Book("0.1", "0.01", kind=kind)
    ref = PyBook("0.1", "0.01")
    early = ws_delta(243781, b=[("62710.1", "9")])  # arrived before the REST answer
    with pytest.raises(obcore.OutOfSyncError):
        book.apply(early)
    assert book.apply_rest(REST) is Applied.SNAPSHOT
    assert ref.apply_rest(REST["result"]) is Applied.SNAPSHOT
    assert (book.update_id, book.seq, book.ts, book.cts) == (
        243781,
        3887177875,
        1709199771584,
        1709199771580,
    )
    assert book.symbol == "BTCUSDT" and book.topic is None and book.synced
    assert book.apply(early) is Applied.STALE  # replayed: already in the snapshot
    assert book.apply(ws_delta(243782, a=[("62710.3", "0")], b=[("62710.1", "2")])) is Applied.DELTA
    ref.apply(ws_delta(243782, a=[("62710.3", "0")], b=[("62710.1", "2")]))
    assert (
        book.bids().tolist() == ref.bids().tolist() == [[627102, 552], [627101, 200], [627100, 100]]
    )
    assert book.best_ask() is None
    # the first delta pinned the topic: another depth's deltas are refused
    assert book.topic == "orderbook.1000.BTCUSDT"
    with pytest.raises(obcore.FrameError, match="topic"):
        book.apply(ws_delta(243783).replace("orderbook.1000", "orderbook.50"))
    with pytest.raises(obcore.SequenceGapError):
        book.apply(ws_delta(243790))


def test_rest_errors_are_typed(kind):
    book = obcore.Book("0.1", "0.01", kind=kind)
    with pytest.raises(obcore.FrameError, match="retCode"):
        book.apply_rest({"retCode": 10001, "retMsg": "params error", "result": {}})
    with pytest.raises(obcore.FrameError, match="result"):
        book.apply_rest({"retCode": 0, "result": None})
    with pytest.raises(obcore.OffStepError):
        book.apply_rest(dict(REST["result"], b=[["62710.2", "5.521"]]))
    assert len(book) == 0 and book.update_id == 0
