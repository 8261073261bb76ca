"""Fuzzing the frame paths: mostly valid frames, each mutated at one place, checked against
stdlib json + the reference model (tests/obcore/fuzz_oracle.py) whether accepted or not.

The generator is built so the checks bite: most frames reach level parsing and sequencing,
about half are accepted, and every accepted frame is compared level by level with PyBook.
``test_generator_reaches_the_engine`` keeps it that way. The atheris harness in
tests/obcore/fuzz/ runs the same check under AddressSanitizer; its corpus is replayed here.
"""

import json
import pathlib
import random

import pytest
from fuzz_oracle import BASE, BASE_U, check, fresh
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import obcore

CORPUS = pathlib.Path(__file__).parent / "fuzz" / "corpus"

# Pieces a mutation inserts or substitutes: JSON structure, escapes, numbers at the edges of
# the grammar, non-ASCII and invalid UTF-8 bytes, the keys the parser looks for.
PIECES = [
    b'"',
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\\",
    b"\\u0062",
    b"\\ud800",
    b"\\n",
    b"\x00",
    b"\x1f",
    b"\x7f",
    "\u00e9".encode(),
    "\u2603".encode(),
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"-",
    b"0",
    b"01",
    b"-0",
    b"9" * 20,
    b"1e9",
    b"1.5",
    b"NaN",
    b"null",
    b"true",
    b'"b"',
    b'"a"',
    b'"u"',
    b'"s"',
    b'"type"',
    b'"topic"',
    b'"snapshot"',
    b'"delta"',
    b'"0"',
    b'"1"',
    b'["1.00","1.000"]',
    b" ",
    b"\n",
    b"[[",
    b'"BTCUSDT"',
    b'"orderbook.1.BTCUSDT"',
    b'""',
    b'"x":1,',
]


def gen_frame(rng: random.Random) -> bytes:
    """A valid Bybit frame in a random but legal shape, near the base book's prices."""
    kind = rng.choice(["delta", "delta", "delta", "snapshot"])
    u = {"delta": BASE_U + rng.choice([1, 1, 1, 1, 0, 2]), "snapshot": rng.choice([1, BASE_U + 5])}[
        kind
    ]

    def levels(best, step):
        out = []
        for _ in range(rng.randrange(0, 6)):
            ticks = best + step * rng.randrange(0, 40)
            price = f"{ticks // 10}.{ticks % 10}{rng.choice(['0', ''])}"
            size = rng.choice(
                [
                    "0",
                    "1.000",
                    "0.5",
                    f"{rng.randrange(1, 10**6)}",
                    f"{rng.randrange(1, 10**4)}.{rng.randrange(0, 1000):03d}",
                ]
            )
            out.append([price, size])
        return out

    data = {
        "s": "BTCUSDT",
        "b": levels(302472, -1),
        "a": levels(302487, 1),
        "u": u,
        "seq": 66544703342 + u,
    }
    if rng.random() < 0.2:
        del data["s"]
    if rng.random() < 0.2:
        del data["seq"]
    if rng.random() < 0.1:
        data["x"] = [1, {"y": "z"}, None, 2.5e3]
    msg = {
        "topic": "orderbook.50.BTCUSDT",
        "type": kind,
        "ts": 1687940967466 + u,
        "data": data,
        "cts": 1687940967460 + u,
    }
    for key in ("topic", "ts", "cts"):
        if rng.random() < 0.15:
            del msg[key]
    keys = list(msg)
    rng.shuffle(keys)
    msg = {k: msg[k] for k in keys}
    seps = rng.choice([(",", ":"), (", ", ": "), (",", ":")])
    text = json.dumps(msg, separators=seps, ensure_ascii=rng.random() < 0.5)
    if rng.random() < 0.1:
        text = text.replace('"b":', '"\\u0062":', 1)  # an escaped key json.loads decodes
    return text.encode()


def mutate(data: bytes, rng: random.Random) -> bytes:
    """Change ``data`` at one place."""
    i = rng.randrange(len(data) + 1)
    op = rng.randrange(6)
    if op == 0:
        return data[:i] + rng.choice(PIECES) + data[i:]
    if op == 1:
        return data[:i] + data[i + 1 :]
    if op == 2:
        return data[:i] + rng.choice(PIECES) + data[i + 1 :]
    if op == 3:
        return data[:i]
    if op == 4:  # a digit changed: off-tick prices, gaps, overflow
        digits = [j for j, c in enumerate(data) if 48 <= c <= 57]
        if digits:
            j = rng.choice(digits)
            return data[:j] + bytes([rng.randrange(48, 58)]) + data[j + 1 :]
        return data
    j = rng.randrange(len(data) + 1)  # a span repeated: duplicate keys and levels
    lo, hi = min(i, j), max(i, j)
    return data[:hi] + data[lo:hi] + data[hi:]


def frames(seed: int, n: int):
    rng = random.Random(seed)
    for _ in range(n):
        data = gen_frame(rng)
        yield data if rng.random() < 0.25 else mutate(data, rng)


def test_generator_reaches_the_engine():
    # A fuzzer that only ever hits the first check proves nothing (the one this replaced saw
    # 298 of 300 inputs rejected at byte 0): make sure most frames reach the book.
    counts = {"accepted": 0, "rejected": 0, "refused": 0}
    for payload in frames(0, 600):
        counts[check(payload)] += 1
    assert counts["accepted"] >= 200, counts
    assert counts["rejected"] >= 60, counts
    assert counts["refused"] >= 60, counts


@pytest.mark.parametrize("seed", range(3))
def test_mutated_frames_agree_with_the_reference(kind, seed):
    books = fresh(kind)
    for payload in frames(100 + seed, 300):
        check(payload, books)  # frames build on each other: books carry state
        if not books[0].synced:
            books = fresh(kind)


@pytest.mark.parametrize("as_text", [True, False])
def test_payload_forms_agree(kind, as_text):
    for payload in frames(7, 150):
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            continue
        check(text if as_text else payload, fresh(kind))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), extra=st.binary(max_size=8), where=st.floats(0, 1))
def test_hypothesis_mutations(seed, extra, where):
    # Hypothesis picks the frame (by seed) and splices in bytes of its own, so it can shrink
    # a failure to a short splice.
    rng = random.Random(seed)
    data = gen_frame(rng)
    i = int(where * len(data))
    check(data[:i] + extra + data[i:])


@settings(max_examples=200, deadline=None)
@given(
    msg=st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=8),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(["type", "data", "b", "a", "u", "s", "seq", "ts", "topic", "x"]),
                children,
                max_size=6,
            )
        ),
        max_leaves=20,
    ),
    type_=st.sampled_from(["snapshot", "delta"]),
    u=st.integers(0, 2**64),
)
def test_arbitrary_values_in_a_frame_shape(msg, type_, u):
    # The frame's shape is kept (type, data, u) so each arbitrary value reaches the check for
    # its own field; the dict path and the reference must agree on every one of them.
    data = {"s": "BTCUSDT", "b": [], "a": [], "u": u}
    frame = {"topic": "orderbook.50.BTCUSDT", "type": type_, "data": data}
    if isinstance(msg, dict):
        for k, v in msg.items():
            (data if k in ("b", "a", "u", "s", "seq") else frame)[k] = v
    else:
        frame["data"]["b"] = [["30247.20", "1.000"], msg] if msg is not None else msg
    check(json.dumps(frame))


@pytest.mark.parametrize("depth", [10, 62, 63, 64, 65, 5000])
def test_deep_nesting(depth):
    text = BASE.replace('"cts":', '"x":' + "[" * depth + "]" * depth + ',"cts":')
    outcome = check(text)
    assert outcome == ("accepted" if depth < 64 else "refused"), outcome
    raw = obcore.Book("0.10", "0.001")
    if depth >= 64:
        with pytest.raises(obcore.FrameError, match="nested too deeply"):
            raw.apply(text)


def test_corpus_replays():
    files = sorted(CORPUS.iterdir())
    assert len(files) >= 20, "the atheris corpus is missing"
    seen = set()
    for path in files:
        data = path.read_bytes()  # as the harness reads it: the first byte picks the kind
        if data:
            seen.add(check(data[1:], fresh(obcore.kinds()[data[0] % len(obcore.kinds())])))
    assert seen == {"accepted", "rejected", "refused"}


def test_huge_frame():
    n = 20000
    bids = ",".join(f'["{100000 - i}.00","1.000"]' for i in range(n))
    asks = ",".join(f'["{100001 + i}.00","1.000"]' for i in range(n))
    text = (
        '{"topic":"orderbook.1000.BTCUSDT","type":"snapshot","ts":1,"data":{"s":"BTCUSDT",'
        f'"b":[{bids}],"a":[{asks}],"u":1,"seq":1}}}}'
    )
    for kind in obcore.kinds():
        book = obcore.Book("0.10", "0.001", kind=kind)
        book.apply(text)
        assert (book.bid_count, book.ask_count) == (n, n)
        assert book.best_bid() == (1000000, 1000) and book.best_ask() == (1000010, 1000)
        book.check_integrity()
