"""One check for any frame input, shared by the pytest fuzzers, the corpus replay and the
atheris harness (tests/obcore/fuzz/fuzz_frames.py).

``check(payload)`` applies ``payload`` to three books that start from the same snapshot:

- the compiled book, given the raw text (obcore's C parser);
- the compiled book, given what ``strict_loads`` (stdlib json) makes of the text (the dict path);
- the pure-Python reference ``PyBook``, given the same dict.

They must agree: all reject it with an ObcoreError, leaving each book exactly as it was, or
all accept it with the same result and the same book. The oracle is the stdlib's JSON parser
plus the two rules obcore documents on top of JSON: duplicate keys among the ones it reads are
an error (json.loads keeps the last), and values nested deeper than OB_MAX_DEPTH are refused.
"""

from __future__ import annotations

import json
import sys

import obcore
from obcore._reference import PyBook

TICK, LOT = "0.10", "0.001"
TOPIC = "orderbook.50.BTCUSDT"
BASE_U = 177400507
BASE = (
    '{"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":1687940967466,'
    '"data":{"s":"BTCUSDT","b":[["30247.20","30.028"],["30240.00","1.000"],["30239.90","0.250"]],'
    '"a":[["30248.70","0.500"],["30249.30","0.892"]],"u":177400507,"seq":66544703342},'
    '"cts":1687940967464}'
)
TOP_KEYS = {"topic", "type", "ts", "cts", "data"}
DATA_KEYS = {"b", "a", "u", "seq", "s"}
MAX_DEPTH = 64  # OB_MAX_DEPTH in _parse.h: containers an unknown value may nest, exclusive


class Refused(Exception):
    """The oracle says the raw parser must refuse this text."""


# id(object) -> its duplicated keys, for the objects of the text being parsed (all alive)
_DUPS: dict[int, set] = {}


def _pairs(pairs):
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen, dups = set(), set()
        for k, _ in pairs:
            (dups if k in seen else seen).add(k)
        _DUPS[id(obj)] = dups
    return obj


def _refuse_constant(name):
    raise Refused(f"{name} is not JSON")


def _depth(v) -> int:
    # Iterative: json.loads of some Pythons (3.13) builds values deeper than the recursion limit.
    deepest, stack = 0, [(v, 0)]
    while stack:
        x, d = stack.pop()
        if isinstance(x, dict):
            x = list(x.values())
        if isinstance(x, list):
            deepest = max(deepest, d + 1)
            stack.extend((y, d + 1) for y in x)
    return deepest


def strict_loads(payload: str | bytes) -> dict:
    """Parse ``payload`` as obcore's raw path must; raise Refused where it must refuse."""
    if isinstance(payload, bytes):
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Refused(str(exc)) from None
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    _DUPS.clear()
    try:
        msg = json.loads(payload, object_pairs_hook=_pairs, parse_constant=_refuse_constant)
        if not isinstance(msg, dict):
            raise Refused("not an object")
        dups = _DUPS.get(id(msg), set()) & TOP_KEYS
        if dups:
            raise Refused(f"duplicate {sorted(dups)}")
        unknown = [v for k, v in msg.items() if k not in TOP_KEYS]
        data = msg.get("data")
        if isinstance(data, dict):
            dups = _DUPS.get(id(data), set()) & DATA_KEYS
            if dups:
                raise Refused(f"duplicate data.{sorted(dups)}")
            unknown += [v for k, v in data.items() if k not in DATA_KEYS]
    except (ValueError, RecursionError) as exc:
        raise Refused(str(exc)) from None
    finally:
        sys.set_int_max_str_digits(old)
        _DUPS.clear()
    if any(_depth(v) >= MAX_DEPTH for v in unknown):
        raise Refused("nested too deeply")
    return msg


def state(book) -> tuple:
    return (
        book.bids().tolist(),
        book.asks().tolist(),
        book.update_id,
        book.seq,
        book.ts,
        book.cts,
        book.synced,
        book.symbol,
        book.topic,
    )


def fresh(kind: str | None = None):
    raw = obcore.Book(TICK, LOT, kind=kind)
    viadict = obcore.Book(TICK, LOT, kind=kind)
    ref = PyBook(TICK, LOT)
    for b in (raw, viadict, ref):
        b.apply(BASE)
    return raw, viadict, ref


def _outcome(book, frame):
    try:
        return ("ok", int(book.apply(frame)))
    except obcore.ObcoreError as exc:
        return ("error", exc)


def check(payload: str | bytes, books=None) -> str:
    """Apply ``payload`` to the three books (fresh ones by default); assert they agree.

    Returns "accepted", "rejected" or "refused" (not JSON, by the oracle's rules).
    """
    raw, viadict, ref = books if books is not None else fresh()
    before = state(raw)
    got = _outcome(raw, payload)
    try:
        msg = strict_loads(payload)
    except Refused as why:
        # Not JSON: refused, though maybe for a fault found first in text order (a bad number
        # before the broken bracket), so any ParseError, never a sequencing outcome.
        assert got[0] == "error" and isinstance(got[1], obcore.ParseError), (payload, why, got)
        assert state(raw) == before
        raw.check_integrity()
        return "refused"
    want = _outcome(ref, msg)
    via = _outcome(viadict, msg)
    assert got[0] == want[0] == via[0], (payload, got, via, want)
    raw.check_integrity()
    viadict.check_integrity()
    if got[0] == "error":
        assert state(raw) == state(viadict) == state(ref), payload
        if isinstance(got[1], obcore.SequenceGapError):
            assert state(raw)[:-3] == before[:-3] and not raw.synced  # levels kept, out of sync
        else:
            assert state(raw) == before, payload
        return "rejected"
    assert got[1] == want[1] == via[1], (payload, got, via, want)
    assert state(raw) == state(viadict) == state(ref), payload
    assert raw.snapshot() == ref.snapshot()
    return "accepted"
