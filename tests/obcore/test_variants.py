"""Structure-level checks run against every variant (``kind`` fixture), through ``Book``.

The reference is a plain dict per side.
"""

import json
import random

import pytest

import obcore


def new_book(kind, max_depth=0):
    return obcore.Book("0.1", "0.001", kind=kind, max_depth=max_depth)


def levels(book, side):
    arr = book.bids() if side == "b" else book.asks()
    return [tuple(row) for row in arr.tolist()]


def expected(ref, side):
    return sorted(ref.items(), reverse=(side == "b"))


@pytest.mark.parametrize("seed", range(4))
def test_random_against_dict(kind, seed):
    rnd = random.Random(seed)
    book = new_book(kind)
    refs = {"b": {}, "a": {}}
    for step in range(4000):
        side = rnd.choice("ba")
        ref = refs[side]
        if ref and rnd.random() < 0.1:
            t = max(ref) if side == "b" else min(ref)  # hit the touch
        else:
            t = rnd.randint(1000 - 300, 1000 + 300)
        q = rnd.choice([0, rnd.randint(1, 10**9)])
        book.set_level(side, t, q)
        if q:
            ref[t] = q
        else:
            ref.pop(t, None)
        if step % 50 == 0:
            book.check_integrity()
            for s in "ba":
                assert levels(book, s) == expected(refs[s], s)
        assert book.size_at(side, t) == ref.get(t, 0)
    book.check_integrity()


def frame_text(kind, u, bids, asks):
    # Bybit v5 orderbook message; ticks of 0.1 and lots of 0.001 as decimal strings.
    def row(t, q):
        return [f"{t // 10}.{t % 10}", f"{q // 1000}.{q % 1000:03d}"]

    return json.dumps(
        {
            "topic": "orderbook.200.BTCUSDT",
            "type": kind,
            "ts": 1_700_000_000_000 + u,
            "data": {
                "s": "BTCUSDT",
                "b": [row(t, q) for t, q in bids],
                "a": [row(t, q) for t, q in asks],
                "u": u,
                "seq": u,
            },
            "cts": 1_700_000_000_000 + u,
        }
    )


@pytest.mark.parametrize("max_depth", [1, 5, 20])
def test_frames_trim_many_levels_at_once(kind, max_depth):
    # set_level drops one level per trim; frames drop many at once, which takes the
    # general path (find the depth-th best key, compact, re-heapify).
    rnd = random.Random(max_depth)
    book = new_book(kind, max_depth=max_depth)
    refs = {"b": {}, "a": {}}
    bids = [(t, rnd.randint(1, 5000)) for t in rnd.sample(range(9000, 10_000), 300)]
    asks = [(t, rnd.randint(1, 5000)) for t in rnd.sample(range(10_001, 11_000), 300)]
    book.apply(frame_text("snapshot", 1, bids, asks))
    refs["b"], refs["a"] = dict(bids), dict(asks)
    for u in range(2, 200):
        delta = {"b": [], "a": []}
        for side in "ba":
            for _ in range(rnd.choice([1, 2, 6, 12])):
                t = rnd.randint(9000, 10_000) if side == "b" else rnd.randint(10_001, 11_000)
                q = rnd.choice([0, rnd.randint(1, 5000)])
                delta[side].append((t, q))
        book.apply(frame_text("delta", u, delta["b"], delta["a"]))
        for side in "ba":
            ref = refs[side]
            for t, q in delta[side]:
                if q:
                    ref[t] = q
                else:
                    ref.pop(t, None)
            refs[side] = dict(expected(ref, side)[:max_depth])
            assert levels(book, side) == expected(refs[side], side)
        book.check_integrity()


INT64_MAX = 2**63 - 1


def test_int64_extremes(kind):
    # The ask at INT64_MAX has the same key as the empty-side sentinel; the bid at
    # INT64_MAX is stored as -INT64_MAX, the smallest key a side ever sees.
    book = new_book(kind)
    book.set_level("a", INT64_MAX, INT64_MAX)
    book.set_level("b", INT64_MAX, INT64_MAX)
    book.set_level("a", 0, 1)
    book.set_level("b", 0, 1)
    book.check_integrity()
    assert book.best_ask() == (0, 1)
    assert book.best_bid() == (INT64_MAX, INT64_MAX)
    assert levels(book, "a") == [(0, 1), (INT64_MAX, INT64_MAX)]
    assert levels(book, "b") == [(INT64_MAX, INT64_MAX), (0, 1)]
    assert book.size_at("a", INT64_MAX) == INT64_MAX
    assert book.size_at("a", INT64_MAX - 1) == 0
    assert book.size_at("b", 0) == 1
    book.set_level("a", 0, 0)
    assert book.best_ask() == (INT64_MAX, INT64_MAX)
    book.set_level("a", INT64_MAX - 1, 4)
    assert levels(book, "a") == [(INT64_MAX - 1, 4), (INT64_MAX, INT64_MAX)]
    book.set_level("a", INT64_MAX - 1, 0)
    book.set_level("a", INT64_MAX, 0)
    assert book.best_ask() is None
    book.set_level("b", INT64_MAX, 0)
    assert book.best_bid() == (0, 1)
    book.check_integrity()
