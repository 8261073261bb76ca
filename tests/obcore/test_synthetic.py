"""obcore.synthetic and obcore.recording, checked against a plain dict book model."""

import gzip
import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obcore.recording import read_frames, write_frames
from obcore.synthetic import SyntheticStream, generate_frames


class DictBook:
    """The simplest correct Bybit book: price string -> size string per side, by Decimal."""

    def __init__(self):
        self.b: dict[Decimal, Decimal] = {}
        self.a: dict[Decimal, Decimal] = {}
        self.u = None

    def apply(self, msg: dict) -> None:
        data = msg["data"]
        if msg["type"] == "snapshot":
            self.b = {Decimal(p): Decimal(q) for p, q in data["b"]}
            self.a = {Decimal(p): Decimal(q) for p, q in data["a"]}
        else:
            assert msg["type"] == "delta"
            assert data["u"] == self.u + 1, "delta u must follow the previous frame"
            for side, levels in ((self.b, data["b"]), (self.a, data["a"])):
                prices = [p for p, _ in levels]
                assert len(set(prices)) == len(prices), "a price repeats within one side"
                for p, q in levels:
                    p, q = Decimal(p), Decimal(q)
                    if q == 0:
                        assert p in side, f"delete of absent level {p}"
                        del side[p]
                    else:
                        side[p] = q
        self.u = data["u"]

    def best(self):
        return max(self.b), min(self.a)


def frames_of(**kw):
    return list(generate_frames(**kw))


def test_same_seed_same_frames_other_seed_differs():
    a = frames_of(depth=50, messages=200, seed=7)
    assert a == frames_of(depth=50, messages=200, seed=7)
    assert a != frames_of(depth=50, messages=200, seed=8)
    assert len(a) == 200


def test_frame_shape_key_order_and_compact_json():
    frames = frames_of(depth=50, messages=50, seed=1)
    for i, text in enumerate(frames):
        msg = json.loads(text)
        assert list(msg) == ["topic", "type", "ts", "data", "cts"]
        assert list(msg["data"]) == ["s", "b", "a", "u", "seq"]
        assert json.dumps(msg, separators=(",", ":")) == text  # compact, nothing extra
        assert msg["topic"] == "orderbook.50.BTCUSDT"
        assert msg["data"]["s"] == "BTCUSDT"
        assert msg["type"] == ("snapshot" if i == 0 else "delta")
        assert msg["ts"] == 1_700_000_000_000 + 20 * i
        assert msg["cts"] < msg["ts"]
        for p, q in msg["data"]["b"] + msg["data"]["a"]:
            assert isinstance(p, str) and isinstance(q, str)
            # Linear: tick "0.1" -> one decimal; lot "0.001" -> three, except a delete "0".
            assert len(p.split(".")[1]) == 1
            assert q == "0" or len(q.split(".")[1]) == 3


def test_the_bybit_docs_example_formats():
    # Linear with priceScale 2 ("0.10") keeps two decimals, as in "30247.20".
    msg = json.loads(frames_of(tick_size="0.10", start_price="30247.20", depth=50, messages=1)[0])
    assert msg["data"]["b"][0][0] == "30247.20"
    assert all(len(p.split(".")[1]) == 2 for p, _ in msg["data"]["b"])
    # Spot strips trailing zeros: "29328", "29327.9", never "29328.00".
    spot = frames_of(
        category="spot",
        tick_size="0.01",
        start_price="29328",
        depth=200,
        messages=30,
        lot_size="0.000001",
    )
    prices = [p for t in spot for p, _ in json.loads(t)["data"]["b"]]
    assert "29328" in prices
    assert not [p for p in prices if "." in p and p.endswith("0")]
    assert any("." in p for p in prices)


def test_snapshots_sorted_and_deltas_sorted():
    frames = frames_of(depth=200, messages=100, seed=3, snapshot_every=25)
    kinds = [json.loads(t)["type"] for t in frames]
    assert [i for i, k in enumerate(kinds) if k == "snapshot"] == [0, 25, 50, 75]
    for t in frames:
        data = json.loads(t)["data"]
        bids = [Decimal(p) for p, _ in data["b"]]
        asks = [Decimal(p) for p, _ in data["a"]]
        assert bids == sorted(bids, reverse=True)
        assert asks == sorted(asks)


@pytest.mark.parametrize("depth", [50, 200, 1000])
def test_replay_never_crossed_u_continuous_and_matches_generator(depth):
    stream = SyntheticStream(depth=depth, messages=300, seed=depth, snapshot_every=120)
    book = DictBook()
    sizes = []
    for text in stream:
        book.apply(json.loads(text))
        bid, ask = book.best()
        assert bid < ask, f"book crossed at u={book.u}"
        sizes.append((len(book.b), len(book.a)))
    # The stream holds the advertised depth (Bybit shows the top `depth` levels).
    assert all(nb == depth and na == depth for nb, na in sizes)
    # The generator's ground truth (integer ticks and lots) equals the replayed model.
    tick, lot = Decimal("0.1"), Decimal("0.001")
    assert {p / tick: q / lot for p, q in book.b.items()} == stream.bids_lots
    assert {p / tick: q / lot for p, q in book.a.items()} == stream.asks_lots


def _delta_stats(frames):
    book = DictBook()
    deletes = changes = near = 0
    best_bids = []
    for text in frames:
        msg = json.loads(text)
        if msg["type"] == "delta":
            bids_desc = sorted(book.b, reverse=True)
            asks_asc = sorted(book.a)
            for _, q in msg["data"]["b"] + msg["data"]["a"]:
                changes += 1
                deletes += q == "0"
            for p, _ in msg["data"]["b"]:
                near += Decimal(p) >= bids_desc[min(9, len(bids_desc) - 1)]
            for p, _ in msg["data"]["a"]:
                near += Decimal(p) <= asks_asc[min(9, len(asks_asc) - 1)]
        book.apply(msg)
        best_bids.append(book.best()[0])
    return deletes, changes, near, best_bids


def test_deletion_ratio_locality_and_touch_drift():
    frames = frames_of(depth=200, messages=1000, seed=11)
    deletes, changes, near, best_bids = _delta_stats(frames)
    per_delta = changes / 999
    assert 9 <= per_delta <= 14, per_delta
    assert 0.2 <= deletes / changes <= 0.3, deletes / changes
    # Concentrated near the touch: most changes at or inside the 10th level.
    assert near / changes > 0.6, near / changes
    # The touch moves often and wanders away from the start.
    moves = sum(1 for x, y in zip(best_bids, best_bids[1:], strict=False) if x != y)
    assert moves > 200
    assert max(best_bids) - min(best_bids) >= Decimal("1.0")


def test_levels_per_delta_and_delete_ratio_are_honoured():
    frames = frames_of(depth=200, messages=400, seed=2, levels_per_delta=30, delete_ratio=0.1)
    deletes, changes, _, _ = _delta_stats(frames)
    assert 24 <= changes / 399 <= 36
    assert deletes / changes < 0.2


def test_depth_one_is_snapshots_only():
    frames = frames_of(depth=1, messages=5)
    msgs = [json.loads(t) for t in frames]
    assert all(m["type"] == "snapshot" and len(m["data"]["b"]) == 1 for m in msgs)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    depth=st.sampled_from([2, 5, 50]),
    per=st.integers(1, 40),
    ratio=st.floats(0, 0.45),
)
def test_any_parameters_give_a_valid_stream(seed, depth, per, ratio):
    book = DictBook()
    for text in generate_frames(
        depth=depth,
        messages=40,
        seed=seed,
        levels_per_delta=per,
        delete_ratio=ratio,
        snapshot_every=17,
    ):
        book.apply(json.loads(text))
        bid, ask = book.best()
        assert bid < ask


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(tick_size="0.0"), "tick_size"),
        (dict(tick_size="1e-1"), "tick_size"),
        (dict(lot_size=0.001), "lot_size"),
        (dict(start_price="65000.05"), "start_price"),
        (dict(category="inverse"), "category"),
        (dict(depth=0), "depth"),
        (dict(delete_ratio=0.6), "delete_ratio"),
    ],
)
def test_bad_arguments_name_the_field(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        SyntheticStream(**kw)


@pytest.mark.parametrize("name", ["rec.jsonl", "rec.jsonl.gz"])
def test_recording_round_trip(tmp_path, name):
    frames = frames_of(depth=50, messages=60, seed=5)
    path = tmp_path / name
    assert write_frames(path, frames) == 60
    assert list(read_frames(path)) == frames
    raw = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
    assert raw == ("\n".join(frames) + "\n").encode()


def test_recording_accepts_bytes_and_skips_blank_lines(tmp_path):
    path = tmp_path / "r.txt"
    write_frames(path, [b'{"a":1}', '{"b":2}'])
    with open(path, "a") as f:
        f.write('\n\n{"c":3}\r\n')
    assert list(read_frames(path)) == ['{"a":1}', '{"b":2}', '{"c":3}']


def test_recording_rejects_a_frame_with_a_newline(tmp_path):
    with pytest.raises(ValueError, match="frame 1 contains a newline"):
        write_frames(tmp_path / "r.gz", ['{"a":1}', '{"b":\n2}'])
    with pytest.raises(TypeError, match="frame 0 must be str or bytes"):
        write_frames(tmp_path / "r.txt", [{"a": 1}])
