"""Queries against hand-computed numbers, plus export, pickling and argument errors."""

import copy
import pickle

import numpy as np
import pytest

import obcore


@pytest.fixture
def book(kind):
    # bids 100.0 x 2, 99.5 x 3, 99.0 x 5 ; asks 100.5 x 1, 101.0 x 4  (tick 0.5 -> ticks x2)
    b = obcore.Book("0.5", "1", kind=kind, symbol="XYZ")
    b.apply(
        {
            "topic": "orderbook.50.XYZ",
            "type": "snapshot",
            "ts": 5,
            "data": {
                "s": "XYZ",
                "u": 10,
                "seq": 77,
                "b": [["100.0", "2"], ["99.5", "3"], ["99.0", "5"]],
                "a": [["100.5", "1"], ["101.0", "4"]],
            },
        }
    )
    return b


def test_top_of_book(book):
    assert book.best_bid() == (200, 2)
    assert book.best_ask() == (201, 1)
    assert book.spread() == 1
    assert book.mid() == 200.5
    # (200*1 + 201*2) / 3
    assert book.microprice() == pytest.approx(602 / 3)
    assert not book.crossed


def test_depth_arrays(book):
    assert book.bids().dtype == np.int64
    assert book.bids().tolist() == [[200, 2], [199, 3], [198, 5]]
    assert book.asks(1).tolist() == [[201, 1]]
    assert book.bids(0).shape == (0, 2)
    assert book.asks(10).shape == (2, 2)
    out = np.zeros((2, 2), dtype=np.int64)
    assert book.depth_into("b", out) == 2
    assert out.tolist() == [[200, 2], [199, 3]]
    with pytest.raises(ValueError):
        book.depth_into("b", np.zeros((2, 3), dtype=np.int64))


def test_size_cum_vwap_imbalance(book):
    assert book.size_at("b", 199) == 3 and book.size_at("a", 199) == 0
    assert book.cum_size("b", 199) == 5  # 100.0 and 99.5
    assert book.cum_size("a", 202) == 5
    assert book.cum_size("a", 200) == 0
    # buying 3 lots: 1 @ 201 + 2 @ 202 -> 605/3
    assert book.vwap("a", 3) == pytest.approx(605 / 3)
    assert book.vwap("b", 10) == pytest.approx((200 * 2 + 199 * 3 + 198 * 5) / 10)
    assert book.vwap("b", 11) is None
    # top 2: bids 5, asks 5 -> 0 ; top 1: (2-1)/3
    assert book.imbalance(2) == 0
    assert book.imbalance(1) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        book.vwap("a", 0)
    with pytest.raises(ValueError):
        book.imbalance(0)


def test_empty_book_reads(kind):
    b = obcore.Book("0.1", "0.001", kind=kind)
    assert b.best_bid() is None and b.best_ask() is None
    assert b.mid() is None and b.spread() is None and b.microprice() is None
    assert b.imbalance(5) is None and b.vwap("a", 1) is None
    assert b.bids().shape == (0, 2) and len(b) == 0
    assert not b.synced and b.update_id == 0
    b.check_integrity()


def test_sides_and_set_level(book):
    book.set_level("ask", 200, 7)  # crosses: allowed as a direct edit, flagged
    assert book.crossed
    book.set_level("a", 200, 0)
    book.update("bid", "100.5", "9")
    assert book.best_bid() == (201, 9)
    with pytest.raises(ValueError, match="side"):
        book.set_level("buy", 1, 1)
    with pytest.raises(obcore.NegativeValueError):
        book.set_level("b", -1, 1)
    with pytest.raises(obcore.OffTickError):
        book.update("b", "100.25", "1")


def test_snapshot_export_round_trips(book, kind):
    snap = book.snapshot()
    assert snap == {
        "topic": "orderbook.50.XYZ",
        "type": "snapshot",
        "ts": 5,
        "data": {
            "s": "XYZ",
            "b": [["100.0", "2"], ["99.5", "3"], ["99.0", "5"]],
            "a": [["100.5", "1"], ["101.0", "4"]],
            "u": 10,
            "seq": 77,
        },
    }
    other = obcore.Book("0.5", "1", kind=kind)
    other.apply(snap)
    assert other.bids().tolist() == book.bids().tolist()
    assert book.snapshot(1)["data"]["b"] == [["100.0", "2"]]


def test_pickle_and_copy(book):
    for clone in (pickle.loads(pickle.dumps(book)), copy.copy(book), copy.deepcopy(book)):
        assert clone.kind == book.kind
        assert clone.bids().tolist() == book.bids().tolist()
        assert clone.asks().tolist() == book.asks().tolist()
        assert (clone.update_id, clone.seq, clone.ts, clone.synced, clone.symbol, clone.topic) == (
            book.update_id,
            book.seq,
            book.ts,
            book.synced,
            book.symbol,
            book.topic,
        )
        clone.set_level("b", 200, 0)
        assert book.best_bid() == (200, 2)  # independent


def test_constructor_errors():
    with pytest.raises(ValueError, match="unknown book kind"):
        obcore.Book("0.1", "1", kind="btree")
    with pytest.raises(ValueError, match="max_depth"):
        obcore.Book("0.1", "1", max_depth=-1)


def test_kinds_default_first():
    kinds = obcore.kinds()
    assert len(kinds) >= 3 and len(set(kinds)) == len(kinds)
    assert {"skiplist", "heap"} <= set(kinds)
    assert obcore.Book("0.1", "1").kind == kinds[0]


def test_repr(book):
    assert "XYZ" in repr(book) and book.kind in repr(book)


def test_apply_levels_is_transactional(book):
    book.apply_levels(bids=[["100.5", "1"], ["100.0", "0"]], asks=[("101.0", "9")])
    assert book.bids().tolist() == [[201, 1], [199, 3], [198, 5]]
    assert book.asks().tolist() == [[201, 1], [202, 9]]
    assert book.update_id == 10
    before = (book.bids().tolist(), book.asks().tolist())
    with pytest.raises(obcore.OffStepError, match=r"asks\[1\] size"):
        book.apply_levels(bids=[["90.0", "1"]], asks=[["101.0", "1"], ["102.0", "0.5"]])
    with pytest.raises(obcore.FrameError, match=r"bids\[0\]"):
        book.apply_levels(bids=[["90.0"]])
    assert (book.bids().tolist(), book.asks().tolist()) == before


def test_apply_levels_fast_and_checked_paths_agree(kind):
    # lists of str take the C fast path; tuples and other shapes take the checked path
    rows = [["100.0", "2"], ["99.5", "3"]]
    fast = obcore.Book("0.5", "1", kind=kind)
    fast.apply_levels(bids=rows)
    for shape in (tuple(tuple(r) for r in rows), [tuple(rows[0]), rows[1]]):
        other = obcore.Book("0.5", "1", kind=kind)
        other.apply_levels(bids=shape)
        assert other.bids().tolist() == fast.bids().tolist()
    with pytest.raises(obcore.MalformedNumberError, match=r"bids\[1\] price"):
        fast.apply_levels(bids=[["100.0", "1"], ["٩٩.5", "1"]])  # non-ASCII digits
    with pytest.raises(obcore.FrameError, match=r"asks\[0\] size"):
        fast.apply_levels(asks=[["100.0", 1]])
    assert fast.bids().tolist() == [[200, 2], [199, 3]] and fast.ask_count == 0
