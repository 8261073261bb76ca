"""The compiled synthetic generator makes exactly the pure-Python generator's frames.

``SyntheticStream.frames`` runs ``obcore._synthetic`` when it is built;
``SyntheticStream._py_frames`` is the pure-Python reference. Same arguments, same bytes,
same ground-truth book after every frame.
"""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import obcore.synthetic as synthetic
from obcore.synthetic import SyntheticStream, generate_frames


def test_the_compiled_generator_is_built_and_used():
    # a build that silently fell back to the pure generator would pass every other test
    assert synthetic._compiled is not None
    assert type(SyntheticStream(messages=1).frames()).__module__ != "obcore.synthetic"


def assert_same(kw: dict, check_every: int = 1) -> None:
    fast, ref = SyntheticStream(**kw), SyntheticStream(**kw)
    for i, (a, b) in enumerate(itertools.zip_longest(fast.frames(), ref._py_frames())):
        assert a == b, f"frame {i} differs for {kw}"
        if i % check_every == 0:
            assert fast.bids_lots == ref.bids_lots and fast.asks_lots == ref.asks_lots, i


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"depth": 1, "messages": 30},
        {"depth": 2, "seed": 5},
        {"depth": 1000, "messages": 150, "levels_per_delta": 30, "delete_ratio": 0.45},
        {"snapshot_every": 37, "seed": 9},
        {
            "category": "spot",
            "tick_size": "0.01",
            "lot_size": "0.000001",
            "start_price": "65000.00",
            "seed": 3,
        },
        {"tick_size": "0.5", "lot_size": "10", "start_price": "3.5", "depth": 50, "seed": 4},
        {"trades_per_s": 8, "depth": 50, "seed": 2},
        {"trades_per_s": 300, "depth": 5, "trade_size_alpha": 1.05, "trade_buy_ratio": 0.9},
        {"start_price": "0.3", "depth": 20, "seed": 6},  # the walk meets tick 0
        # takers far beyond int64 lots (a Pareto tail): they sweep to the last level
        {"trades_per_s": 400, "trade_size_mean_lots": 10**17, "trade_size_alpha": 1.01},
        # prices whose text (ticks x tick units) leaves int64: formatted by Python
        {"tick_size": "1000000000", "start_price": str(2**60 * 10**9), "depth": 30},
        {"tick_size": "0.0000000000000000000001", "start_price": "0.0000000000000000065"},
    ],
)
def test_compiled_frames_and_ground_truth_match_the_reference(kw):
    kw = {"messages": 400, **kw}
    assert_same(kw)
    # generate_frames runs the compiled generator without the ground truth: same frames
    assert list(generate_frames(**kw)) == list(SyntheticStream(**kw)._py_frames())


def test_a_long_run_matches():
    # long enough for the level-text caches to fill and clear several times
    kw = {"messages": 20_000, "depth": 50, "seed": 12}
    ref = SyntheticStream(**kw)._py_frames()
    assert all(a == b for a, b in zip(generate_frames(**kw), ref, strict=True))


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**64),
    depth=st.integers(1, 300),
    per=st.integers(1, 40),
    ratio=st.floats(0, 0.49),
    tick=st.sampled_from(["0.1", "0.01", "0.5", "1", "25"]),
    lot=st.sampled_from(["0.001", "1", "0.25"]),
    category=st.sampled_from(["linear", "spot"]),
    every=st.integers(0, 50),
    trades=st.sampled_from([0.0, 2.5, 50.0, 1000.0]),
    alpha=st.floats(1.01, 5.0),
    buy=st.floats(0, 1),
    messages=st.integers(0, 300),
)
def test_any_parameters_give_the_reference_frames(
    seed, depth, per, ratio, tick, lot, category, every, trades, alpha, buy, messages
):
    start = {"0.1": "65000.0", "0.01": "3000.00", "0.5": "100.5", "1": "40", "25": "1000"}[tick]
    assert_same(
        {
            "seed": seed,
            "depth": depth,
            "levels_per_delta": per,
            "delete_ratio": ratio,
            "tick_size": tick,
            "lot_size": lot,
            "category": category,
            "snapshot_every": every,
            "start_price": start,
            "trades_per_s": trades,
            "trade_size_alpha": alpha,
            "trade_buy_ratio": buy,
            "messages": messages,
        },
        check_every=17,
    )


def test_a_start_price_beyond_int64_ticks_uses_the_pure_generator():
    kw = {"messages": 5, "depth": 3, "tick_size": "1", "start_price": str(2**70)}
    frames = list(SyntheticStream(**kw).frames())
    assert frames == list(SyntheticStream(**kw)._py_frames())
    assert str(2**70) in frames[0]
