"""Indexed-heap side edge cases, through the public ``obcore.Book(kind="heap")`` API.

The reference is a plain dict per side; ``check_integrity()`` runs the side's own
invariant check (heap order, heap <-> table back pointers, every key reachable from
its home slot, no stale slots, cached best).
"""

import random

import numpy as np
import pytest

import obcore

KIND = "heap"
# heap.pyx hashes a key to the top bits of key * FIB (mod 2**64).
FIB = 0x9E3779B97F4A7C15


def new_book(max_depth=0):
    return obcore.Book("0.1", "0.001", kind=KIND, max_depth=max_depth)


def levels(book, side):
    arr = book.bids() if side == "b" else book.asks()
    return [tuple(row) for row in arr.tolist()]


def expected(ref, side):
    return sorted(ref.items(), reverse=(side == "b"))


def same_home_ticks(side, count, bits=16):
    """Ticks whose stored keys share the top `bits` hash bits: one home slot in any table
    of up to 2**bits slots (the table here stays far smaller), so all of them pile into
    one probe chain."""
    ticks = np.arange(1, 2**22, dtype=np.uint64)
    keys = (np.uint64(0) - ticks) if side == "b" else ticks  # bids are stored negated
    with np.errstate(over="ignore"):
        home = (keys * np.uint64(FIB)) >> np.uint64(64 - bits)
    target = home[12345]
    found = ticks[home == target][:count]
    assert len(found) == count
    return [int(t) for t in found]


def test_kind_registered():
    assert KIND in obcore.kinds()
    assert new_book().kind == KIND


@pytest.mark.parametrize("side", ["b", "a"])
def test_ten_thousand_levels_grow_the_table(side):
    # Reserve-by-one growth: the heap doubles 8 -> 16384 and the table 16 -> 32768,
    # rehashing every live key each time.
    ticks = list(range(500_000, 510_000))
    random.Random(11).shuffle(ticks)
    book = new_book()
    ref = {}
    for t in ticks:
        book.set_level(side, t, t % 89 + 1)
        ref[t] = t % 89 + 1
    book.check_integrity()
    assert levels(book, side) == expected(ref, side)
    for t in ticks[::101]:
        assert book.size_at(side, t) == ref[t]
    assert book.size_at(side, 499_999) == 0
    assert book.size_at(side, 510_000) == 0


@pytest.mark.parametrize("side", ["b", "a"])
def test_one_probe_chain(side):
    ticks = same_home_ticks(side, 60)
    book = new_book()
    ref = {}
    for i, t in enumerate(ticks):
        book.set_level(side, t, i + 1)
        ref[t] = i + 1
    book.check_integrity()
    # Deleting from the middle of the chain makes the backward shift move later members.
    for t in ticks[1::3] + ticks[::7]:
        book.set_level(side, t, 0)
        ref.pop(t, None)
        book.check_integrity()
        for u in ticks:
            assert book.size_at(side, u) == ref.get(u, 0)
    assert levels(book, side) == expected(ref, side)
    for t in ticks[::2]:  # reinsert into the repaired chain
        book.set_level(side, t, 1000 + t % 7)
        ref[t] = 1000 + t % 7
    book.check_integrity()
    assert levels(book, side) == expected(ref, side)


@pytest.mark.parametrize("stride_bits", [4, 5, 10, 15, 16])
def test_prices_equal_modulo_the_table_size(stride_bits):
    # With a plain `key % size` hash these would all share one slot.
    book = new_book()
    ref = {"b": {}, "a": {}}
    stride = 1 << stride_bits
    for j in range(300):
        for side in "ba":
            t = 7 + j * stride
            book.set_level(side, t, j + 1)
            ref[side][t] = j + 1
    book.check_integrity()
    for j in range(0, 300, 2):
        book.set_level("a", 7 + j * stride, 0)
        del ref["a"][7 + j * stride]
    book.check_integrity()
    for side in "ba":
        assert levels(book, side) == expected(ref[side], side)
        for j in range(300):
            assert book.size_at(side, 7 + j * stride) == ref[side].get(7 + j * stride, 0)


@pytest.mark.parametrize("side", ["b", "a"])
def test_delete_best_until_empty(side):
    book = new_book()
    order = list(range(3000, 5000))
    random.Random(5).shuffle(order)
    ref = {}
    for t in order:
        book.set_level(side, t, t - 2999)
        ref[t] = t - 2999
    for step in range(len(ref)):
        best = max(ref) if side == "b" else min(ref)
        assert (book.best_bid() if side == "b" else book.best_ask()) == (best, ref[best])
        book.set_level(side, best, 0)
        del ref[best]
        if step % 89 == 0:
            book.check_integrity()
            assert levels(book, side)[:7] == expected(ref, side)[:7]
    assert (book.best_bid() if side == "b" else book.best_ask()) is None
    book.check_integrity()


def test_update_and_delete_inside_the_heap():
    book = new_book()
    ref = {}
    for t in range(100, 400):
        book.set_level("a", t, 1)
        ref[t] = 1
    rnd = random.Random(2)
    for _ in range(600):
        t = rnd.randint(100, 399)
        q = rnd.choice([0, 0, rnd.randint(1, 50)])
        book.set_level("a", t, q)
        if q:
            ref[t] = q
        else:
            ref.pop(t, None)
        assert book.best_ask() == (min(ref.items()) if ref else None)
    book.check_integrity()
    assert levels(book, "a") == expected(ref, "a")


def test_depth_reads_do_not_disturb_the_heap():
    book = new_book()
    ref = {}
    rnd = random.Random(9)
    for t in rnd.sample(range(10_000), 700):
        book.set_level("b", t, t + 1)
        ref[t] = t + 1
    want = expected(ref, "b")
    for n in (0, 1, 2, 3, 10, 699, 700, 701, 5000):
        assert book.bids(n).tolist() == [list(x) for x in want[:n]]
        book.check_integrity()
    assert book.bids(0).shape == (0, 2)
    assert list(book.levels("b")) == want


def test_update_the_best_in_place():
    book = new_book()
    book.set_level("b", 100, 5)
    book.set_level("b", 90, 3)
    book.set_level("b", 100, 8)
    assert book.best_bid() == (100, 8)
    book.set_level("b", 90, 4)
    assert book.best_bid() == (100, 8)
    book.set_level("b", 101, 0)  # absent: no-op
    assert levels(book, "b") == [(100, 8), (90, 4)]
    book.check_integrity()


@pytest.mark.parametrize("side", ["b", "a"])
@pytest.mark.parametrize("depth", [1, 3, 50])
def test_max_depth_trims_worst(side, depth):
    book = new_book(max_depth=depth)
    rnd = random.Random(depth)
    ref = {}
    for _ in range(1500):
        t = rnd.randint(0, 300)
        q = rnd.choice([0, rnd.randint(1, 9)])
        book.set_level(side, t, q)
        if q:
            ref[t] = q
        else:
            ref.pop(t, None)
        ref = dict(expected(ref, side)[:depth])
        assert levels(book, side) == expected(ref, side)
        assert book.size_at(side, t) == ref.get(t, 0)
    book.check_integrity()


def test_trim_of_a_colliding_chain():
    # Trimming deletes many table slots of one chain in a row (backward shifts
    # interleaved with the compaction of the heap array).
    ticks = same_home_ticks("a", 40)
    book = new_book(max_depth=10)
    for t in reversed(ticks):  # each insert is a new best: the worst is trimmed
        book.set_level("a", t, 1)
    book.check_integrity()
    assert levels(book, "a") == [(t, 1) for t in ticks[:10]]
    for t in ticks:
        assert book.size_at("a", t) == (1 if t in ticks[:10] else 0)


def test_clear_then_reuse():
    book = new_book()
    for t in range(500):
        book.set_level("a", t, 1)
    book.clear()
    book.check_integrity()
    assert book.best_ask() is None and book.size_at("a", 3) == 0
    book.set_level("a", 3, 2)
    assert levels(book, "a") == [(3, 2)]
    book.check_integrity()
