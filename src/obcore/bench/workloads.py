"""Benchmark workloads: a synthetic Bybit stream or a user's recording, parsed once.

A :class:`Workload` holds the raw frames (for the full-message benchmark) and the same
frames already JSON-decoded (for the level-update benchmark), starting at a snapshot.
Decoding happens once, untimed, with ``orjson`` when it is installed and the standard
``json`` module otherwise: both give the same dicts of strings.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

try:
    from orjson import loads as decode
except ImportError:  # the wheel's only dependency is numpy; orjson comes with obcore[bench]
    from json import loads as decode

from obcore.recording import read_frames
from obcore.synthetic import generate_frames

__all__ = ["Workload", "synthetic", "from_recording", "WorkloadError", "decode"]


class WorkloadError(ValueError):
    """A recording cannot be turned into a replayable workload (the message says why)."""


@dataclass
class Workload:
    """One replayable orderbook stream.

    Attributes
    ----------
    name : str
        Label used in tables, JSON and pytest ids (``"synthetic-200"``, ``"rec-btc"``).
    frames : list of str
        Raw frames; ``frames[0]`` is a snapshot, the rest follow it in ``u`` order.
    msgs : list of dict
        :func:`decode` of each frame (what a peer gets after JSON decoding).
    """

    name: str
    symbol: str
    topic: str
    category: str
    tick_size: str
    lot_size: str
    frames: list[str]
    msgs: list[dict] = field(repr=False)

    @property
    def depth(self) -> int:
        """Levels a side in the first snapshot."""
        d = self.msgs[0]["data"]
        return max(len(d["b"]), len(d["a"]))

    @property
    def deltas(self) -> int:
        """Number of frames after the first snapshot."""
        return len(self.frames) - 1

    def level_updates(self, upto: int | None = None) -> int:
        """Number of ``[price, size]`` entries in frames ``1..upto`` (all when None)."""
        return sum(len(m["data"]["b"]) + len(m["data"]["a"]) for m in self.msgs[1:upto])

    @property
    def vwap_lots(self) -> int:
        """VWAP target size in lots: the first snapshot's five best bids, summed."""
        lot = Decimal(self.lot_size)
        total = sum(Decimal(q) / lot for _, q in self.msgs[0]["data"]["b"][:5])
        return max(1, int(total))

    def prefix(self, messages: int) -> Workload:
        """Return this workload cut to its first ``messages`` frames (at least the snapshot)."""
        n = max(1, messages)
        return Workload(
            self.name,
            self.symbol,
            self.topic,
            self.category,
            self.tick_size,
            self.lot_size,
            self.frames[:n],
            self.msgs[:n],
        )


def synthetic(
    depth: int = 200, messages: int = 2000, seed: int = 0, *, name: str | None = None, **kw
) -> Workload:
    """Return a seeded synthetic BTCUSDT-like workload (see :mod:`obcore.synthetic`).

    Parameters
    ----------
    depth : int
        Levels a side (50, 200, 1000 on Bybit; 10,000 for scaling).
    messages : int
        Frames including the initial snapshot.
    seed : int
        Generator seed.
    **kw
        Passed to :func:`obcore.synthetic.generate_frames` (tick_size, lot_size, ...).
    """
    kw.setdefault("tick_size", "0.1")
    kw.setdefault("lot_size", "0.001")
    kw.setdefault("symbol", "BTCUSDT")
    kw.setdefault("category", "linear")
    frames = list(generate_frames(depth=depth, messages=messages, seed=seed, **kw))
    msgs = [decode(f) for f in frames]
    return Workload(
        name or f"synthetic-{depth}",
        kw["symbol"],
        msgs[0]["topic"],
        kw["category"],
        kw["tick_size"],
        kw["lot_size"],
        frames,
        msgs,
    )


def _decimals(text: str) -> int:
    return len(text.partition(".")[2])


def _book_shaped(msg: dict) -> bool:
    data = msg.get("data")
    return (
        isinstance(data, dict)
        and isinstance(data.get("b"), list)
        and isinstance(data.get("a"), list)
        and type(data.get("u")) is int
    )


def from_recording(
    path: str,
    *,
    tick_size: str | None = None,
    lot_size: str | None = None,
    topic: str | None = None,
    max_messages: int | None = None,
    name: str | None = None,
) -> Workload:
    """Load a recording (see :mod:`obcore.recording` for the format) as a workload.

    Only ``orderbook.*`` frames of one topic are kept (``topic``, or the most frequent
    one). Replay starts at the first snapshot and stops before the first ``u`` gap (a
    gap in a live recording means frames were lost; a warning says where).

    Parameters
    ----------
    path : str
        A file of raw frames, one per line, plain or ``.gz``.
    tick_size, lot_size : str, optional
        The instrument's steps. When omitted they are inferred as ``10**-d`` where ``d``
        is the most decimals seen in prices / sizes, which parses every level exactly but
        may be finer than the real tick (a warning says so).
    max_messages : int, optional
        Keep at most this many frames (snapshot included).

    Raises
    ------
    WorkloadError
        No orderbook frames, no snapshot, an unknown ``topic``, or an orderbook frame
        without Bybit's shape (``data`` with ``b`` and ``a`` lists and an integer ``u``).
    """
    by_topic: dict[str, list[tuple[str, dict]]] = {}
    counts: Counter[str] = Counter()
    for line_no, text in enumerate(read_frames(path), 1):
        if '"orderbook.' not in text:
            continue
        try:
            msg = decode(text)
        except json.JSONDecodeError as e:  # orjson's error subclasses it
            raise WorkloadError(f"{path}:{line_no}: not JSON: {e}") from e
        t = msg.get("topic") if isinstance(msg, dict) else None
        if not isinstance(t, str) or not t.startswith("orderbook."):
            continue
        if not _book_shaped(msg):
            raise WorkloadError(
                f"{path}:{line_no}: {t} frame without data.b, data.a lists "
                f"and an integer data.u: {text[:120]}"
            )
        by_topic.setdefault(t, []).append((text, msg))
        counts[t] += 1
    if not counts:
        raise WorkloadError(f"{path}: no orderbook frames")
    if topic is None:
        topic = counts.most_common(1)[0][0]
    elif topic not in by_topic:
        raise WorkloadError(f"{path}: no frames for topic {topic!r}; found {sorted(by_topic)}")
    items = by_topic[topic]
    start = next((i for i, (_, m) in enumerate(items) if m.get("type") == "snapshot"), None)
    if start is None:
        raise WorkloadError(f"{path}: topic {topic!r} has no snapshot to start from")
    items = items[start:]
    keep = 1
    for i in range(1, len(items)):
        m = items[i][1]
        if m.get("type") == "delta" and m["data"]["u"] != items[i - 1][1]["data"]["u"] + 1:
            warnings.warn(
                f"{path}: u gap after {items[i - 1][1]['data']['u']} "
                f"(next {m['data']['u']}); replaying the {keep} frames before it",
                stacklevel=2,
            )
            break
        keep += 1
    items = items[:keep]
    if max_messages is not None:
        items = items[: max(1, max_messages)]
    if tick_size is None or lot_size is None:
        pd = qd = 0
        for _, m in items:
            for p, q in m["data"]["b"] + m["data"]["a"]:
                pd = max(pd, _decimals(p))
                qd = max(qd, _decimals(q))
        inferred_tick = "1" if pd == 0 else "0." + "0" * (pd - 1) + "1"
        inferred_lot = "1" if qd == 0 else "0." + "0" * (qd - 1) + "1"
        if tick_size is None:
            tick_size = inferred_tick
            warnings.warn(
                f"{path}: tick size inferred as {tick_size} from the prices; pass "
                "--tick-size for the real one",
                stacklevel=2,
            )
        if lot_size is None:
            lot_size = inferred_lot
            warnings.warn(
                f"{path}: lot size inferred as {lot_size} from the sizes; pass "
                "--lot-size for the real one",
                stacklevel=2,
            )
    frames = [t for t, _ in items]
    msgs = [m for _, m in items]
    symbol = msgs[0]["data"].get("s") or topic.rsplit(".", 1)[-1]
    category = (
        "linear"
        if all(_decimals(p) == _decimals(tick_size) for p, _ in msgs[0]["data"]["b"][:20])
        else "spot"
    )
    stem = name or "rec-" + str(path).rsplit("/", 1)[-1].split(".", 1)[0]
    return Workload(stem, symbol, topic, category, tick_size, lot_size, frames, msgs)
