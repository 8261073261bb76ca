"""Every book variant, driven by random frames, must agree with the pure-Python reference.

Frames are generated as Bybit text, applied to the compiled book (raw text or dict, chosen at
random) and to ``PyBook``; outcomes (result or error class) and every query must match after
each step, and ``check_integrity()`` must pass.
"""

import json

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import obcore
from obcore._reference import PyBook, format_decimal

TICK, LOT = "0.5", "0.001"
MID = 2000

near = st.integers(MID - 30, MID + 30)
far = st.sampled_from([0, 1, 7, MID + 5000, 10**9, 10**12])
prices = st.one_of(near, near, near, far)
sizes = st.one_of(st.just(0), st.integers(1, 5), st.integers(1, 10**6))
levels = st.lists(st.tuples(prices, sizes), max_size=12)
rpi_levels = st.lists(st.tuples(prices, sizes, sizes), max_size=8)


def frame(kind, u, bids, asks, symbol="BTCUSDT", topic="orderbook.50.BTCUSDT"):
    return {
        "topic": topic,
        "type": kind,
        "ts": 1_700_000_000_000 + u,
        "data": {
            "s": symbol,
            "b": [[format_decimal(p, TICK), format_decimal(q, LOT)] for p, q in bids],
            "a": [[format_decimal(p, TICK), format_decimal(q, LOT)] for p, q in asks],
            "u": u,
            "seq": 10 * u,
        },
        "cts": 1_700_000_000_000 + u,
    }


def outcome(fn):
    try:
        return ("ok", fn())
    except obcore.ObcoreError as exc:
        return ("error", type(exc))


class BookMachine(RuleBasedStateMachine):
    kind = None

    @initialize(max_depth=st.sampled_from([0, 0, 1, 3, 8]))
    def make(self, max_depth):
        self.book = obcore.Book(TICK, LOT, kind=self.kind, max_depth=max_depth)
        self.ref = PyBook(TICK, LOT, max_depth=max_depth)

    def both(self, msg, as_text):
        text = json.dumps(msg, separators=(",", ":"))
        got = outcome(lambda: self.book.apply(text if as_text else msg))
        want = outcome(lambda: self.ref.apply(msg))
        assert got == want, (got, want, msg)

    @rule(bids=levels, asks=levels, restart=st.booleans(), as_text=st.booleans())
    def snapshot(self, bids, asks, restart, as_text):
        u = 1 if restart else self.ref.update_id + 1
        self.both(frame("snapshot", u, bids, asks), as_text)

    @rule(
        bids=levels,
        asks=levels,
        as_text=st.booleans(),
        step=st.sampled_from([1, 1, 1, 1, 0, -1, 2, 5]),
    )
    def delta(self, bids, asks, as_text, step):
        # step 1 is in sequence; <= 0 is stale; > 1 is a gap
        self.both(frame("delta", max(self.ref.update_id + step, 0), bids, asks), as_text)

    @rule(bids=rpi_levels, asks=rpi_levels, snapshot=st.booleans(), as_text=st.booleans())
    def rpi_frame(self, bids, asks, snapshot, as_text):
        # orderbook.rpi levels [price, size, rpiSize]: both sizes kept, each on its own
        msg = frame("snapshot" if snapshot else "delta", self.ref.update_id + 1, [], [])
        for key, lv in (("b", bids), ("a", asks)):
            msg["data"][key] = [
                [format_decimal(p, TICK), format_decimal(q, LOT), format_decimal(r, LOT)]
                for p, q, r in lv
            ]
        self.both(msg, as_text)

    @rule(
        bids=levels, asks=levels, bad=st.sampled_from(["tick", "step", "neg", "junk", "cut", "sym"])
    )
    def rejected(self, bids, asks, bad):
        msg = frame("delta", self.ref.update_id + 1, bids + [(MID, 1)], asks)
        text = json.dumps(msg, separators=(",", ":"))
        if bad == "tick":
            text = text.replace('"1000.0"', '"1000.25"')
        elif bad == "step":
            text = text.replace('"0.001"', '"0.0015"')
        elif bad == "neg":
            text = text.replace('"0.001"', '"-0.001"')
        elif bad == "junk":
            text = text.replace('"1000.0"', '"1,000.0"')
        elif bad == "cut":
            text = text[: len(text) // 2]
        else:
            text = text.replace('"BTCUSDT"', '"ETHUSDT"')
        before = self.observe()
        if self.ref.symbol is None and bad == "sym":
            return  # nothing to mismatch yet
        with pytest.raises(obcore.ParseError):
            self.book.apply(text)
        assert self.observe() == before

    @rule(side=st.sampled_from(["b", "a"]), price=prices, lots=sizes)
    def set_level(self, side, price, lots):
        self.book.set_level(side, price, lots)
        self.ref.set_level(side, price, lots)

    @rule(bids=levels, asks=levels, bad=st.booleans())
    def apply_levels(self, bids, asks, bad):
        b = [[format_decimal(p, TICK), format_decimal(q, LOT)] for p, q in bids]
        a = [[format_decimal(p, TICK), format_decimal(q, LOT)] for p, q in asks]
        if bad:
            a.append(["1.25", "1"])
            before = self.observe()
            with pytest.raises(obcore.OffTickError):
                self.book.apply_levels(b, a)
            assert self.observe() == before
            return
        self.book.apply_levels(b, a)
        self.ref.apply_levels(b, a)

    @precondition(lambda self: hasattr(self, "book"))
    @rule()
    def clear(self):
        self.book.clear()
        self.ref.clear()

    def observe(self):
        b = self.book
        return (b.bids().tolist(), b.asks().tolist(), b.update_id, b.seq, b.ts, b.synced)

    @invariant()
    def agrees_with_reference(self):
        if not hasattr(self, "book"):
            return
        b, r = self.book, self.ref
        b.check_integrity()
        assert b.bids().tolist() == r.bids().tolist()
        assert b.asks().tolist() == r.asks().tolist()
        assert b.bids(2).tolist() == r.bids(2).tolist()
        assert b.best_bid() == r.best_bid() and b.best_ask() == r.best_ask()
        assert (b.update_id, b.seq, b.ts, b.cts, b.synced) == (
            r.update_id,
            r.seq,
            r.ts,
            r.cts,
            r.synced,
        )
        assert (len(b), b.bid_count, b.ask_count) == (len(r), r.bid_count, r.ask_count)
        assert b.mid() == r.mid() and b.spread() == r.spread()
        assert b.microprice() == pytest.approx(r.microprice())
        assert b.imbalance(3) == pytest.approx(r.imbalance(3))
        for side in ("b", "a"):
            assert list(b.levels(side)) == list(r.levels(side))
            for p in (MID - 1, MID, MID + 1, 0, 10**12):
                assert b.size_at(side, p) == r.size_at(side, p)
                assert b.cum_size(side, p) == r.cum_size(side, p)
            for q in (1, 7, 10**6):
                assert b.vwap(side, q) == pytest.approx(r.vwap(side, q))
        assert b.rpi_bids().tolist() == r.rpi_bids().tolist()
        assert b.rpi_asks().tolist() == r.rpi_asks().tolist()
        for p in (MID - 1, MID, MID + 1):
            assert b.rpi_size_at("b", p) == r.rpi_size_at("b", p)
        assert b.snapshot() == r.snapshot()


SETTINGS = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

for _kind in obcore.kinds():
    _machine = type(f"BookMachine_{_kind}", (BookMachine,), {"kind": _kind})
    _case = _machine.TestCase
    _case.settings = SETTINGS
    globals()[f"TestBook_{_kind}"] = _case
del _kind, _machine, _case
