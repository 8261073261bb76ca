"""Skip-list side edge cases, through the public ``obcore.Book(kind="skiplist")`` API.

The reference is a plain dict per side; ``check_integrity()`` runs the side's own
invariant check (level 0 order, upper levels = taller towers, back links, tail, free
list, cached best).
"""

import random

import pytest

import obcore

KIND = "skiplist"


def new_book(max_depth=0):
    return obcore.Book("0.1", "0.001", kind=KIND, max_depth=max_depth)


def levels(book, side):
    arr = book.bids() if side == "b" else book.asks()
    return [tuple(row) for row in arr.tolist()]


def expected(ref, side):
    return sorted(ref.items(), reverse=(side == "b"))


def test_kind_registered():
    assert KIND in obcore.kinds()
    assert new_book().kind == KIND


@pytest.mark.parametrize("order", ["ascending", "descending", "shuffled"])
@pytest.mark.parametrize("side", ["b", "a"])
def test_ten_thousand_levels(order, side):
    ticks = list(range(1_000_000, 1_010_000))
    if order == "descending":
        ticks.reverse()
    elif order == "shuffled":
        random.Random(7).shuffle(ticks)
    book = new_book()
    ref = {}
    for t in ticks:
        book.set_level(side, t, t % 97 + 1)
        ref[t] = t % 97 + 1
    book.check_integrity()
    assert levels(book, side) == expected(ref, side)
    best = max(ref) if side == "b" else min(ref)
    assert (book.best_bid() if side == "b" else book.best_ask()) == (best, ref[best])
    for t in ticks[::997]:
        assert book.size_at(side, t) == ref[t]
    assert book.size_at(side, 999_999) == 0
    assert book.size_at(side, 1_010_000) == 0


@pytest.mark.parametrize("side", ["b", "a"])
def test_delete_best_until_empty(side):
    book = new_book()
    ref = {t: t - 4999 for t in range(5000, 7000)}
    for t, q in ref.items():
        book.set_level(side, t, q)
    for step in range(len(ref)):
        best = max(ref) if side == "b" else min(ref)
        got = book.best_bid() if side == "b" else book.best_ask()
        assert got == (best, ref[best])
        book.set_level(side, best, 0)
        del ref[best]
        if step % 97 == 0:
            book.check_integrity()
            assert levels(book, side)[:5] == expected(ref, side)[:5]
    assert (book.best_bid() if side == "b" else book.best_ask()) is None
    assert levels(book, side) == []
    book.check_integrity()


def test_reinsert_after_deletes_reuses_nodes():
    book = new_book()
    for rnd in range(3):
        ref = {}
        for t in range(rnd * 10, rnd * 10 + 3000, 3):
            book.set_level("a", t, rnd + 1)
            ref[t] = rnd + 1
        book.check_integrity()
        assert levels(book, "a") == expected(ref, "a")
        # Worst first, then best first: exercises both tail and head unlinking.
        for t in sorted(ref)[1500:][::-1] + sorted(ref)[:1500]:
            book.set_level("a", t, 0)
        book.check_integrity()
        assert book.best_ask() is None


def test_delete_absent_and_update_in_place():
    book = new_book()
    book.set_level("b", 100, 5)
    book.set_level("b", 101, 0)  # absent: no-op
    book.set_level("b", 99, 0)
    assert levels(book, "b") == [(100, 5)]
    book.set_level("b", 100, 7)  # replace the best's size: cached best must follow
    assert book.best_bid() == (100, 7)
    book.set_level("b", 98, 1)
    book.set_level("b", 98, 2)
    assert levels(book, "b") == [(100, 7), (98, 2)]
    book.check_integrity()


@pytest.mark.parametrize("side", ["b", "a"])
def test_max_depth_trims_worst(side):
    depth = 50
    book = new_book(max_depth=depth)
    rnd = random.Random(3)
    ref = {}
    for _ in range(3000):
        t = rnd.randint(0, 400)
        q = rnd.choice([0, rnd.randint(1, 9)])
        book.set_level(side, t, q)
        if q:
            ref[t] = q
        else:
            ref.pop(t, None)
        ref = dict(expected(ref, side)[:depth])
        assert levels(book, side) == expected(ref, side)
    book.check_integrity()


def test_trim_drops_everything_but_the_best():
    book = new_book(max_depth=1)
    for t in range(1000, 0, -1):  # each new ask is the best: the old best is trimmed
        book.set_level("a", t, t)
        assert levels(book, "a") == [(t, t)]
    for t in range(2, 50):  # each new ask is the worst: trimmed at once
        book.set_level("a", t, 5)
        assert levels(book, "a") == [(1, 1)]
    book.check_integrity()


def test_clear_then_reuse():
    book = new_book()
    for t in range(500):
        book.set_level("b", t, 1)
    book.clear()
    book.check_integrity()
    assert book.best_bid() is None and levels(book, "b") == []
    book.set_level("b", 7, 3)
    assert levels(book, "b") == [(7, 3)]
    book.check_integrity()
