"""Tick-ladder side edge cases.

Most tests go through the public ``obcore.Book(kind="ladder")`` API against a plain dict per
side. The window is 4096 ticks, so the far-level, drift and 10,000-level tests cross the
window edge, recentre, and grow it. The last tests drive ``LadderSide`` directly with a
64-tick window (through its underscore test hooks), so recentring and growth happen every
few operations, against the same dict model.
"""

import json
import random
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from obcore.ladder import LadderSide

import obcore
from obcore.synthetic import generate_frames

KIND = "ladder"
WINDOW_TICKS = 4096
FAR_TICKS = 10**12
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


def new_book(max_depth=0):
    return obcore.Book("0.1", "0.001", kind=KIND, max_depth=max_depth)


def levels(book, side, n=None):
    arr = book.bids(n) if side == "b" else book.asks(n)
    return [tuple(row) for row in arr.tolist()]


def expected(ref, side):
    return sorted(ref.items(), reverse=(side == "b"))


def best(book, side):
    return book.best_bid() if side == "b" else book.best_ask()


def best_of(ref, side):
    if not ref:
        return None
    t = max(ref) if side == "b" else min(ref)
    return (t, ref[t])


def apply(book, ref, side, t, q):
    book.set_level(side, t, q)
    if q:
        ref[t] = q
    else:
        ref.pop(t, None)


def assert_same(book, refs):
    book.check_integrity()
    for s in "ba":
        assert levels(book, s) == expected(refs[s], s)
        assert best(book, s) == best_of(refs[s], s)


def test_kind_registered():
    assert KIND in obcore.kinds()
    assert new_book().kind == KIND


@pytest.mark.parametrize("side", ["b", "a"])
def test_far_levels_one_tick_and_a_trillion(side):
    book = new_book()
    ref = {}
    apply(book, ref, side, 1, 11)
    apply(book, ref, side, FAR_TICKS, 22)
    assert levels(book, side) == expected(ref, side)
    assert book.size_at(side, 1) == 11
    assert book.size_at(side, FAR_TICKS) == 22
    assert book.size_at(side, 2) == 0
    assert book.size_at(side, FAR_TICKS - 1) == 0
    book.check_integrity()
    # Levels near each end, so both the window and the overflow hold several.
    for t in list(range(2, 40, 3)) + list(range(FAR_TICKS - 40, FAR_TICKS + 40, 7)):
        apply(book, ref, side, t, t % 13 + 1)
    assert levels(book, side) == expected(ref, side)
    assert levels(book, side, 3) == expected(ref, side)[:3]
    # Remove the whole cluster holding the best: the touch jumps a trillion ticks and back.
    near = sorted(t for t in ref if t < 1000)
    for t in near:
        apply(book, ref, side, t, 0)
        assert best(book, side) == best_of(ref, side)
    book.check_integrity()
    assert levels(book, side) == expected(ref, side)
    for t in near:
        apply(book, ref, side, t, 5)
        assert best(book, side) == best_of(ref, side)
    book.check_integrity()
    assert levels(book, side) == expected(ref, side)
    for t in list(ref)[::2]:
        assert book.size_at(side, t) == ref[t]


@pytest.mark.parametrize("side", ["b", "a"])
def test_touch_drifts_up_and_down_across_many_windows(side):
    """A 40-level book whose touch walks six window widths up, then back down.

    Far levels at 1 tick and 10**12 ticks stay in the book the whole time, so every
    recentre happens while levels exist outside the window on both sides of it.
    """
    rnd = random.Random(11)
    book = new_book()
    refs = {"b": {}, "a": {}}
    ref = refs[side]
    apply(book, ref, side, 1, 1)
    apply(book, ref, side, FAR_TICKS, 2)
    # The touch is the best: asks extend upward from it, bids downward.
    away = 1 if side == "a" else -1
    touch = 10_000_000
    for i in range(40):
        apply(book, ref, side, touch + away * 2 * i, i + 1)
    # Up, down past the start, then back: in price terms, so each side sees the touch both
    # improve (new best beyond the window's low edge) and worsen (best deleted repeatedly).
    path = [6 * WINDOW_TICKS, -12 * WINDOW_TICKS, 6 * WINDOW_TICKS]
    step_no = 0
    for span in path:
        direction = 1 if span > 0 else -1
        moved = 0
        while moved < abs(span):
            jump = rnd.randint(1, 9)
            moved += jump
            touch += direction * jump
            # Quote around the new touch, then drop levels that are now on the wrong side
            # of it (crossed) or too deep, the way an L2 feed does.
            for _ in range(rnd.randint(1, 4)):
                apply(book, ref, side, touch + away * rnd.randint(0, 80), rnd.randint(1, 99))
            apply(book, ref, side, touch, rnd.randint(1, 99))
            for t in [t for t in ref if t not in (1, FAR_TICKS)]:
                if (t - touch) * away < 0 or (t - touch) * away > 120:
                    apply(book, ref, side, t, 0)
            assert best(book, side) == best_of(ref, side)
            step_no += 1
            if step_no % 200 == 0:
                assert_same(book, refs)
    assert_same(book, refs)
    assert book.size_at(side, 1) == 1
    assert book.size_at(side, FAR_TICKS) == 2


@pytest.mark.parametrize("gap", [1, 3, 5000, 10**9])
@pytest.mark.parametrize("side", ["b", "a"])
def test_delete_best_until_empty(side, gap):
    # gap 5000 > window: every deletion leaves the window empty and pulls the next level
    # in from the overflow; gap 10**9 recentres across a billion ticks each time.
    book = new_book()
    ref = {}
    rnd = random.Random(gap)
    for i in range(300):
        apply(book, ref, side, 10**10 + i * gap + rnd.randint(0, gap // 2), i + 1)
    book.check_integrity()
    step = 0
    while ref:
        b = best_of(ref, side)
        assert best(book, side) == b
        apply(book, ref, side, b[0], 0)
        if step % 37 == 0:
            book.check_integrity()
            assert levels(book, side, 10) == expected(ref, side)[:10]
        step += 1
    assert best(book, side) is None
    assert levels(book, side) == []
    book.check_integrity()
    # Reuse after emptying, far from where the window was.
    apply(book, ref, side, 5, 5)
    assert levels(book, side) == [(5, 5)]
    book.check_integrity()


@pytest.mark.parametrize("spacing", [1, 37])
@pytest.mark.parametrize("order", ["ascending", "descending", "shuffled"])
@pytest.mark.parametrize("side", ["b", "a"])
def test_ten_thousand_levels(side, order, spacing):
    # Spacing 37 spans 370,000 ticks: the window has to grow (reserve only) to hold it.
    ticks = [5_000_000 + i * spacing for i in range(10_000)]
    if order == "descending":
        ticks.reverse()
    elif order == "shuffled":
        random.Random(spacing).shuffle(ticks)
    book = new_book()
    ref = {}
    for t in ticks:
        apply(book, ref, side, t, t % 97 + 1)
    book.check_integrity()
    assert levels(book, side) == expected(ref, side)
    assert best(book, side) == best_of(ref, side)
    for t in ticks[::997]:
        assert book.size_at(side, t) == ref[t]
        assert book.size_at(side, t + 1) == (ref.get(t + 1, 0))
    assert book.size_at(side, ticks[0] - 10**6) == 0
    # Half of them deleted in random order, then everything checked again.
    for t in random.Random(1).sample(ticks, 5_000):
        apply(book, ref, side, t, 0)
    book.check_integrity()
    assert levels(book, side) == expected(ref, side)
    assert best(book, side) == best_of(ref, side)


@pytest.mark.parametrize("side", ["b", "a"])
def test_max_depth_trims_across_window_and_overflow(side):
    depth = 25
    book = new_book(max_depth=depth)
    rnd = random.Random(5)
    ref = {}
    # Prices cluster near 50,000 ticks with some far away, so the worst levels are
    # sometimes in the overflow and sometimes in the window.
    for _ in range(4000):
        if rnd.random() < 0.15:
            t = rnd.choice([1, 2, 3, FAR_TICKS, FAR_TICKS + 1, rnd.randint(0, 10**7)])
        else:
            t = 50_000 + rnd.randint(-300, 300) * rnd.choice([1, 1, 1, 30])
        q = rnd.choice([0, rnd.randint(1, 9), rnd.randint(1, 9)])
        apply(book, ref, side, t, q)
        trimmed = dict(expected(ref, side)[:depth])
        ref.clear()
        ref.update(trimmed)
        assert levels(book, side) == expected(ref, side)
    book.check_integrity()


def test_trim_to_one_keeps_the_best():
    book = new_book(max_depth=1)
    book.set_level("a", FAR_TICKS, 3)
    book.set_level("a", 7, 2)  # new best below the window: the old best is trimmed
    assert levels(book, "a") == [(7, 2)]
    book.set_level("a", FAR_TICKS, 3)  # worse than the best: trimmed at once
    assert levels(book, "a") == [(7, 2)]
    book.set_level("a", 7, 0)
    assert book.best_ask() is None
    book.check_integrity()


def test_update_in_place_and_absent_deletes():
    book = new_book()
    book.set_level("b", 100, 5)
    book.set_level("b", 101, 0)  # absent, above the best
    book.set_level("b", 99, 0)  # absent, in the window
    book.set_level("b", FAR_TICKS, 0)  # absent, outside the window on the best side
    book.set_level("b", 0, 0)  # absent, outside the window on the far side
    assert levels(book, "b") == [(100, 5)]
    book.set_level("b", 100, 7)
    assert book.best_bid() == (100, 7)
    book.set_level("b", 0, 1)  # overflow level
    book.set_level("b", 0, 2)  # replaced in the overflow
    assert levels(book, "b") == [(100, 7), (0, 2)]
    book.check_integrity()


def _frame_model(frames):
    """Replay Bybit frames into {side: {ticks: lots}} with Decimal arithmetic."""
    refs = {"b": {}, "a": {}}
    tick, lot = Decimal("0.1"), Decimal("0.001")
    for raw in frames:
        msg = json.loads(raw)
        if msg["type"] == "snapshot":
            refs = {"b": {}, "a": {}}
        for s in "ba":
            for px, sz in msg["data"][s]:
                t = int(Decimal(px) / tick)
                q = int(Decimal(sz) / lot)
                if q:
                    refs[s][t] = q
                else:
                    refs[s].pop(t, None)
    return refs


def test_synthetic_frames_match_a_decimal_model():

    frames = list(generate_frames(depth=200, messages=1500, seed=3, snapshot_every=500))
    book = new_book()
    for i, raw in enumerate(frames):
        book.apply(raw)
        if i % 250 == 0 or i == len(frames) - 1:
            assert_same(book, _frame_model(frames[: i + 1]))


# ---------------------------------------------------------------- LadderSide directly


def test_constructor_rejects_bad_windows():
    with pytest.raises(ValueError, match="window_ticks"):
        LadderSide(100)
    with pytest.raises(ValueError, match="window_ticks"):
        LadderSide(32)
    with pytest.raises(ValueError, match="max_window_ticks"):
        LadderSide(128, 64)
    with pytest.raises(ValueError, match="max_window_ticks"):
        LadderSide(128, 384)


def test_set_past_reserve_is_reported_not_silent():
    side = LadderSide(64)
    side._reserve(1)
    side._set(1, 1)
    # A key above the window with no overflow room reserved: the level cannot be stored,
    # and check() says so instead of the side quietly holding one level fewer.
    for k in range(1000, 1000 + 65):
        side._set(k, 1)
    with pytest.raises(AssertionError, match="lost"):
        side._check()


def test_small_window_recentres_and_grows():
    side = LadderSide(64, 1024)
    side._reserve(500)
    for k in range(500):
        side._set(k, k + 1)
    assert side.stats()["overflow_levels"] > 0
    side._reserve(0)  # growth happens here, and only here
    stats = side.stats()
    assert stats["window_ticks"] == 1024 and stats["grows"] == 1
    assert stats["overflow_levels"] == 0
    assert side._levels() == [(k, k + 1) for k in range(500)]
    side._check()
    for k in range(500):  # walk the touch up through the whole ladder
        side._set(k, 0)
        assert side._best == ((k + 1, k + 2) if k < 499 else None)
    assert side.stats()["recentres"] > 0
    side._check()


class LadderMachine(RuleBasedStateMachine):
    """A 64-tick window (growing to 256) against a dict, with frames of several sets.

    Keys cluster around a centre that jumps by up to three window widths, plus int64
    extremes, so the window recentres both ways, grows, and spills to the overflow.
    """

    def __init__(self):
        super().__init__()
        self.side = LadderSide(64, 256)
        self.ref = {}
        self.centre = 0

    @rule(jump=st.integers(-192, 192))
    def move_centre(self, jump):
        self.centre += jump

    @rule(
        ops=st.lists(
            st.tuples(
                st.one_of(
                    st.integers(-40, 200),
                    st.sampled_from([INT64_MIN, INT64_MAX, -(10**12), 10**12]),
                ),
                st.one_of(st.just(0), st.integers(1, 10**9)),
            ),
            min_size=1,
            max_size=12,
        ),
        batched=st.booleans(),
    )
    def frame(self, ops, batched):
        # batched: one set_many() call, as Book applies a frame's side; else set() per pair.
        pairs = [(off if abs(off) > 10**6 else self.centre + off, qty) for off, qty in ops]
        self.side._reserve(len(pairs))
        if batched:
            self.side._set_many(pairs)
        for key, qty in pairs:
            if not batched:
                self.side._set(key, qty)
            if qty:
                self.ref[key] = qty
            else:
                self.ref.pop(key, None)

    @precondition(lambda self: self.ref)
    @rule(k=st.integers(1, 4))
    def delete_best_k_at_once(self, k):
        # Deletes of the best one after another in one batch: each finds its successor
        # (in the same bitmap word, or through set()).
        pairs = [(key, 0) for key in sorted(self.ref)[:k]]
        self.side._reserve(0)
        self.side._set_many(pairs)
        for key, _ in pairs:
            del self.ref[key]

    @precondition(lambda self: self.ref)
    @rule()
    def delete_best(self):
        key = min(self.ref)
        self.side._reserve(0)
        self.side._set(key, 0)
        del self.ref[key]

    @rule(depth=st.integers(0, 30))
    def trim(self, depth):
        self.side._trim(depth)
        self.ref = dict(sorted(self.ref.items())[:depth])

    @rule()
    def clear(self):
        self.side._clear()
        self.ref.clear()

    @rule(off=st.integers(-300, 300))
    def get(self, off):
        key = self.centre + off
        assert self.side._get(key) == self.ref.get(key, 0)

    @invariant()
    def agrees(self):
        self.side._check()
        assert len(self.side) == len(self.ref)
        items = sorted(self.ref.items())
        assert self.side._best == (items[0] if items else None)
        assert self.side._levels() == items
        assert self.side._levels(3) == items[:3]


TestLadderMachine = LadderMachine.TestCase
TestLadderMachine.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
