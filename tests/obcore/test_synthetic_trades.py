"""obcore.synthetic with trades: every publicTrade frame is consistent with the book changes
that follow it, checked against the generator's ground truth and an independent replay."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from obcore.synthetic import SyntheticStream, generate_frames

TICK, LOT = Decimal("0.1"), Decimal("0.001")


def _ticks(p: str) -> int:
    return int(Decimal(p) / TICK)


def _lots(v: str) -> int:
    return int(Decimal(v) / LOT)


def _replay(frames):
    """Yield (trades, book before, book after) for every delta, from the frames alone."""
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    trades: list = []
    for text in frames:
        msg = json.loads(text)
        if msg["topic"].startswith("publicTrade."):
            assert not trades, "two trade frames before one delta"
            trades = [(t["S"], _ticks(t["p"]), _lots(t["v"])) for t in msg["data"]]
            assert all(t["T"] == msg["ts"] for t in msg["data"])
            continue
        before = (dict(bids), dict(asks))
        if msg["type"] == "snapshot":
            bids.clear()
            asks.clear()
        for side, levels in ((bids, msg["data"]["b"]), (asks, msg["data"]["a"])):
            for p, q in levels:
                if _lots(q):
                    side[_ticks(p)] = _lots(q)
                else:
                    del side[_ticks(p)]
        yield trades, before, (dict(bids), dict(asks))
        trades = []


def test_trades_take_resting_size_at_the_touch_and_the_delta_shows_it():
    frames = list(
        generate_frames(messages=1500, seed=5, depth=50, trades_per_s=6, trade_size_mean_lots=60)
    )
    n_trades = 0
    for trades, (b0, a0), (b1, a1) in _replay(frames):
        if not trades:
            continue
        taken: dict[tuple[str, int], int] = {}
        for taker, price, lots in trades:
            assert lots > 0
            book0 = a0 if taker == "Buy" else b0
            # traded at a price that rested before, at the touch: every better level of
            # that side was traded earlier in the same frame (a sweep goes best first)
            assert price in book0
            better = [p for p in book0 if (p < price if taker == "Buy" else p > price)]
            assert all((taker, p) in taken for p in better)
            taken[(taker, price)] = taken.get((taker, price), 0) + lots
            n_trades += 1
        for (taker, price), lots in taken.items():
            book0, book1 = (a0, a1) if taker == "Buy" else (b0, b1)
            # the delta carries exactly the reduction the trades made
            assert book0[price] - book1.get(price, 0) == lots
    assert n_trades > 300


def test_ground_truth_agrees_with_a_replay_of_book_and_trade_frames():
    stream = SyntheticStream(messages=800, seed=2, depth=50, trades_per_s=8)
    frames = list(stream)
    *_, (_, _, (bids, asks)) = _replay(frames)
    assert bids == stream.bids_lots and asks == stream.asks_lots
    assert sum(1 for f in frames if f.startswith('{"topic":"orderbook.')) == 800


def test_book_only_stream_is_unchanged_by_the_trade_option():
    # same seed: no trade frames and the same bytes as a stream made without the option
    a = list(generate_frames(messages=300, seed=3, depth=50))
    b = list(generate_frames(messages=300, seed=3, depth=50, trades_per_s=0))
    assert a == b and all('"publicTrade' not in f for f in a)


def test_trade_parameters_are_validated():
    with pytest.raises(ValueError, match="trade_size_alpha"):
        SyntheticStream(trades_per_s=1, trade_size_alpha=1.0)
    with pytest.raises(ValueError, match="trade_buy_ratio"):
        SyntheticStream(trades_per_s=1, trade_buy_ratio=1.5)
    with pytest.raises(ValueError, match="trade_size_mean_lots"):
        SyntheticStream(trades_per_s=1, trade_size_mean_lots=0)


def test_buy_ratio_sets_the_taker_side_mix():
    frames = generate_frames(messages=4000, seed=1, depth=50, trades_per_s=20, trade_buy_ratio=0.8)
    sides = [
        t["S"]
        for f in frames
        if f.startswith('{"topic":"publicTrade')
        for t in json.loads(f)["data"]
    ]
    buys = sides.count("Buy") / len(sides)
    # touch moves trade both ways equally; the Poisson takers lean 80/20
    assert 0.55 < buys < 0.8
