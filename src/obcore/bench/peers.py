"""The books being compared, behind one small interface.

Every peer implements:

- ``reset()``: forget everything;
- ``apply_levels(msg)``: apply one message already JSON-decoded (the
  "level updates from parsed ``[price, size]`` string pairs" benchmark); a snapshot
  replaces the book;
- ``apply_frame(text)``: apply one raw frame, JSON decoding included, the way a user of
  that library would do it (obcore parses in C; peers use ``orjson.loads``; pybit uses
  its own ``_on_message`` path: ``json.loads`` + book update + ``copy.deepcopy``);
- reads in the library's native types: ``best()``, ``top(n)``, ``vwap(side, qty)``;
- normalised reads for checking, in integer ticks and lots: ``levels(n)`` and
  ``vwap_ticks(side, lots)``.

Peers:

- ``obcore-<kind>``: :class:`obcore.Book` for each compiled variant in ``obcore.kinds()``;
- ``reference``: ``obcore._reference.PyBook`` (pure Python), when it exists;
- ``floor``: the speed floor, a minimal Cython flat tick array with strings parsed in C
  (``obcore.bench._floor``); a lower bound for the level update, not a correct book;
- ``order-book``: the ``order-book`` C extension (PyPI) keyed by ``float(price)`` with
  float sizes, as cryptofeed uses it;
- ``sorteddict``: two ``sortedcontainers.SortedDict`` keyed by ``float(price)``;
- ``pybit``: pybit 5.17.0's ``_process_delta_orderbook`` on a ``WebSocket`` built without
  a network. Its book is an unsorted list of string pairs (inserts are appended), so its
  reads must scan the side: ``b[0]`` is not the best bid after a delta.

Only obcore's variants need nothing beyond the wheel. The other peers come with
``pip install obcore[bench]``; :func:`skipped_peers` says which are missing and why.

After a replay, :func:`check_peer` compares a peer's top levels and VWAP with
:class:`ExactBook`, a dict of integer ticks parsed with ``Decimal``, so a fast wrong
answer cannot win.
"""

from __future__ import annotations

import copy
import heapq
import importlib.util
from decimal import Decimal

import numpy as np

from obcore.bench.workloads import decode

__all__ = [
    "FLOOR_NOTE",
    "ExactBook",
    "ObcorePeer",
    "ReferencePeer",
    "FloorPeer",
    "OrderBookPeer",
    "SortedDictPeer",
    "PybitPeer",
    "PybitFullPeer",
    "all_peers",
    "peer_names",
    "skipped_peers",
    "make_peer",
    "check_peer",
    "PeerMismatch",
]

PYBIT_NOTE = (
    "pybit keeps each side as an unsorted list of string pairs (inserts are "
    "appended), so reading its best bid/ask or depth needs a scan or sort; "
    "b[0] is not the best bid after a delta"
)


FLOOR_NOTE = (
    "floor is a minimal Cython flat tick array (a dense size array a side, strings parsed "
    "in C by obcore's parser; no staging, sequencing or recentring, and orjson for raw "
    "frames): a lower bound for a level update, not a book"
)


class PeerMismatch(AssertionError):
    """A peer's book disagrees with the exact reference after a replay."""


class _Scale:
    """Exact conversion of a peer's native prices/sizes to integer ticks/lots."""

    def __init__(self, tick_size: str, lot_size: str):
        self.tick = Decimal(tick_size)
        self.lot = Decimal(lot_size)

    def ticks(self, price) -> int:
        # repr() of a float parsed from a short decimal string gives that string back.
        d = Decimal(price if isinstance(price, str) else repr(price)) / self.tick
        if d != d.to_integral_value():
            raise PeerMismatch(f"price {price!r} is not on the {self.tick} tick")
        return int(d)

    def lots(self, size) -> int:
        d = Decimal(size if isinstance(size, str) else repr(size)) / self.lot
        if d != d.to_integral_value():
            raise PeerMismatch(f"size {size!r} is not on the {self.lot} lot step")
        return int(d)


def _vwap_walk(levels, qty):
    """Average price of taking ``qty`` from best-first ``(price, size)`` pairs, or None."""
    left = qty
    notional = 0.0
    for p, q in levels:
        take = q if q < left else left
        notional += p * take
        left -= take
        if left <= 0:
            return notional / qty
    return None


class ExactBook:
    """The oracle: ``{ticks: lots}`` per side, parsed exactly, sorted on every read."""

    name = "exact"

    def __init__(self, tick_size: str, lot_size: str):
        self.scale = _Scale(tick_size, lot_size)
        self.reset()

    def reset(self):
        self.b: dict[int, int] = {}
        self.a: dict[int, int] = {}

    def apply_levels(self, msg: dict) -> None:
        data = msg["data"]
        if msg["type"] == "snapshot":
            self.reset()
        t, lt = self.scale.ticks, self.scale.lots
        for side, levels in ((self.b, data["b"]), (self.a, data["a"])):
            for p, q in levels:
                k, v = t(p), lt(q)
                if v == 0:
                    side.pop(k, None)
                else:
                    side[k] = v

    def apply_frame(self, text: str) -> None:
        self.apply_levels(decode(text))

    def levels(self, n: int):
        return (sorted(self.b.items(), reverse=True)[:n], sorted(self.a.items())[:n])

    def vwap_ticks(self, side: str, lots: int):
        items = sorted(self.b.items(), reverse=True) if side == "b" else sorted(self.a.items())
        return _vwap_walk(((float(p), q) for p, q in items), lots)


class ObcorePeer:
    """:class:`obcore.Book` of one compiled kind; raw frames are parsed in C."""

    def __init__(self, tick_size: str, lot_size: str, kind: str):
        import obcore  # noqa: PLC0415 - the runner must work (and say why) without a build

        self._Book = obcore.Book
        self.kind = kind
        self.name = f"obcore-{kind}"
        self.tick_size, self.lot_size = tick_size, lot_size
        self._out_b = np.zeros((10, 2), dtype=np.int64)
        self._out_a = np.zeros((10, 2), dtype=np.int64)
        self.reset()

    def reset(self):
        self.book = self._Book(self.tick_size, self.lot_size, kind=self.kind)
        self.apply_frame = self.book.apply

    def apply_levels(self, msg: dict) -> None:
        # Like the other peers: no sequencing, one call per message with the parsed pairs.
        data = msg["data"]
        if msg["type"] == "snapshot":
            self.book.clear()
        self.book.apply_levels(data["b"], data["a"])

    def best(self):
        b = self.book
        return b.best_bid(), b.best_ask()

    def top(self, n: int = 10):
        # depth_into fills preallocated buffers: what obcore recommends after every message.
        b = self.book
        if n == 10:
            return b.depth_into("b", self._out_b), b.depth_into("a", self._out_a)
        return b.depth_into("b", self._out_b[:n]), b.depth_into("a", self._out_a[:n])

    def native_qty(self, lots: int):
        return lots

    def vwap(self, side: str, qty):
        return self.book.vwap(side, qty)

    def levels(self, n: int):
        return (
            [tuple(r) for r in self.book.bids(n).tolist()],
            [tuple(r) for r in self.book.asks(n).tolist()],
        )

    def vwap_ticks(self, side: str, lots: int):
        return self.book.vwap(side, lots)


class ReferencePeer(ObcorePeer):
    """``obcore._reference.PyBook``: the pure-Python reference with obcore's API."""

    def __init__(self, tick_size: str, lot_size: str):
        from obcore._reference import PyBook  # noqa: PLC0415 - optional until it lands

        self._Book = lambda t, lt, kind=None: PyBook(t, lt)
        self.kind = "reference"
        self.name = "reference"
        self.tick_size, self.lot_size = tick_size, lot_size
        self.reset()

    def top(self, n: int = 10):
        return self.book.bids(n), self.book.asks(n)


class FloorPeer:
    """The speed floor: :class:`obcore.bench._floor.FloorBook`, a minimal Cython flat tick
    array fed the same string pairs, parsed in C by obcore's parser. Not a correct book (no
    staging, no sequencing, a fixed window); it is checked against the reference like every
    peer so the floor is at least right on the workload it times."""

    name = "floor"
    note = FLOOR_NOTE

    def __init__(self, tick_size: str, lot_size: str):
        from orjson import loads  # noqa: PLC0415 - the measured path is orjson + the array

        from obcore.bench._floor import FloorBook  # noqa: PLC0415 - built with the wheel

        self._FloorBook = FloorBook
        self._loads = loads
        self.tick_size, self.lot_size = tick_size, lot_size
        self.reset()

    def reset(self):
        self.book = self._FloorBook(self.tick_size, self.lot_size)

    def apply_levels(self, msg: dict) -> None:
        data = msg["data"]
        if msg["type"] == "snapshot":
            self.book.clear()
        self.book.apply_levels(data["b"], data["a"])

    def apply_frame(self, text: str) -> None:
        self.apply_levels(self._loads(text))

    def best(self):
        b = self.book
        return b.best_bid(), b.best_ask()

    def top(self, n: int = 10):
        return self.book.levels(True, n), self.book.levels(False, n)

    def native_qty(self, lots: int):
        return lots

    def vwap(self, side: str, qty):
        book = self.book
        return _vwap_walk(book.levels(side == "b", len(book)), qty)

    def levels(self, n: int):
        return self.top(n)

    def vwap_ticks(self, side: str, lots: int):
        return self.vwap(side, lots)


class OrderBookPeer:
    """``order_book.OrderBook`` (C, PyPI ``order-book``) keyed by float price, as cryptofeed."""

    name = "order-book"

    def __init__(self, tick_size: str, lot_size: str):
        from order_book import OrderBook  # noqa: PLC0415
        from orjson import loads  # noqa: PLC0415 - the measured path is orjson + order-book

        self._OrderBook = OrderBook
        self._loads = loads
        self.scale = _Scale(tick_size, lot_size)
        self.reset()

    def reset(self):
        self.book = self._OrderBook()

    def apply_levels(self, msg: dict) -> None:
        data = msg["data"]
        if msg["type"] == "snapshot":
            self.book = self._OrderBook()
        book = self.book
        for side, levels in ((book.bids, data["b"]), (book.asks, data["a"])):
            for p, q in levels:
                price = float(p)
                size = float(q)
                if size == 0:
                    # cryptofeed checks membership before deleting; so do we.
                    if price in side:
                        del side[price]
                else:
                    side[price] = size

    def apply_frame(self, text: str) -> None:
        self.apply_levels(self._loads(text))

    def best(self):
        return self.book.bids.index(0), self.book.asks.index(0)

    def _side_top(self, side, n):
        k = min(n, len(side))
        index = side.index
        return [index(i) for i in range(k)]

    def top(self, n: int = 10):
        return self._side_top(self.book.bids, n), self._side_top(self.book.asks, n)

    def native_qty(self, lots: int):
        return float(lots * self.scale.lot)

    def vwap(self, side: str, qty):
        s = self.book.bids if side == "b" else self.book.asks
        index = s.index
        return _vwap_walk((index(i) for i in range(len(s))), qty)

    def levels(self, n: int):
        t, lt = self.scale.ticks, self.scale.lots
        b, a = self.top(n)
        return [(t(p), lt(q)) for p, q in b], [(t(p), lt(q)) for p, q in a]

    def vwap_ticks(self, side: str, lots: int):
        v = self.vwap(side, self.native_qty(lots))
        return None if v is None else v / float(self.scale.tick)


class SortedDictPeer:
    """Two ``sortedcontainers.SortedDict`` keyed by float price (ascending: bids read
    from the end)."""

    name = "sorteddict"

    def __init__(self, tick_size: str, lot_size: str):
        from orjson import loads  # noqa: PLC0415 - the measured path is orjson + SortedDict
        from sortedcontainers import SortedDict  # noqa: PLC0415

        self._SortedDict = SortedDict
        self._loads = loads
        self.scale = _Scale(tick_size, lot_size)
        self.reset()

    def reset(self):
        self.bids = self._SortedDict()
        self.asks = self._SortedDict()

    def apply_levels(self, msg: dict) -> None:
        data = msg["data"]
        if msg["type"] == "snapshot":
            self.reset()
        for side, levels in ((self.bids, data["b"]), (self.asks, data["a"])):
            for p, q in levels:
                price = float(p)
                size = float(q)
                if size == 0:
                    side.pop(price, None)
                else:
                    side[price] = size

    def apply_frame(self, text: str) -> None:
        self.apply_levels(self._loads(text))

    def best(self):
        return self.bids.peekitem(-1), self.asks.peekitem(0)

    def top(self, n: int = 10):
        return self.bids.items()[-n:][::-1], self.asks.items()[:n]

    def native_qty(self, lots: int):
        return float(lots * self.scale.lot)

    def vwap(self, side: str, qty):
        if side == "b":
            bids = self.bids
            return _vwap_walk(((p, bids[p]) for p in reversed(bids)), qty)
        return _vwap_walk(self.asks.items(), qty)

    def levels(self, n: int):
        t, lt = self.scale.ticks, self.scale.lots
        b, a = self.top(n)
        return [(t(p), lt(q)) for p, q in b], [(t(p), lt(q)) for p, q in a]

    def vwap_ticks(self, side: str, lots: int):
        v = self.vwap(side, self.native_qty(lots))
        return None if v is None else v / float(self.scale.tick)


def _float_price(level):
    return float(level[0])


class PybitPeer:
    """pybit 5.17.0's own book: ``WebSocket._process_delta_orderbook``, no network.

    ``apply_levels`` calls exactly the method pybit runs on every orderbook message.
    ``apply_frame`` is :class:`PybitFullPeer`'s path (``_on_message``).
    """

    name = "pybit"
    note = PYBIT_NOTE

    def __init__(self, tick_size: str, lot_size: str, topic: str = "orderbook.200.BTCUSDT"):
        from pybit.unified_trading import WebSocket  # noqa: PLC0415

        # object.__new__ skips __init__, which would connect; the book code only needs
        # `data`, and the message path needs `callback` and `callback_directory`.
        self.ws = object.__new__(WebSocket)
        self.topic = topic
        self.scale = _Scale(tick_size, lot_size)
        self.received = 0
        self.reset()

    def _user_callback(self, message):
        self.received += 1

    def reset(self):
        ws = self.ws
        ws.data = {}
        ws.callback = ws._handle_incoming_message
        ws.callback_directory = {self.topic: self._user_callback}
        self._process = ws._process_delta_orderbook
        self._on_message = ws._on_message

    def apply_levels(self, msg: dict) -> None:
        if msg["type"] == "snapshot":
            # pybit keeps the snapshot's lists and mutates them; give it fresh ones so a
            # pre-parsed workload can be replayed again (json.loads does this for pybit).
            d = msg["data"]
            msg = dict(msg, data=dict(d, b=[list(x) for x in d["b"]], a=[list(x) for x in d["a"]]))
        self._process(msg, self.topic)

    def apply_frame(self, text: str) -> None:
        self._on_message(text)

    def _side(self, s):
        return self.ws.data[self.topic][s]

    def best(self):
        return (max(self._side("b"), key=_float_price), min(self._side("a"), key=_float_price))

    def top(self, n: int = 10):
        return (
            heapq.nlargest(n, self._side("b"), key=_float_price),
            heapq.nsmallest(n, self._side("a"), key=_float_price),
        )

    def native_qty(self, lots: int):
        return float(lots * self.scale.lot)

    def vwap(self, side: str, qty):
        levels = self._side(side)
        ordered = sorted(levels, key=_float_price, reverse=side == "b")
        return _vwap_walk(((float(p), float(q)) for p, q in ordered), qty)

    def levels(self, n: int):
        t, lt = self.scale.ticks, self.scale.lots
        b, a = self.top(n)
        return [(t(p), lt(q)) for p, q in b], [(t(p), lt(q)) for p, q in a]

    def vwap_ticks(self, side: str, lots: int):
        v = self.vwap(side, self.native_qty(lots))
        return None if v is None else v / float(self.scale.tick)


class PybitFullPeer(PybitPeer):
    """pybit's whole per-message path: ``_on_message`` (``json.loads``, book update,
    ``copy.deepcopy`` of the message, user callback), for both benchmarks."""

    name = "pybit-full"

    def apply_levels(self, msg: dict) -> None:
        # The message path after json.loads: routing, book update, deepcopy, callback.
        self.ws.callback(copy.deepcopy(msg) if msg["type"] == "snapshot" else msg)


_FLOAT_PEERS = {"order-book": OrderBookPeer, "sorteddict": SortedDictPeer}
_C_PEERS = {"floor": FloorPeer, **_FLOAT_PEERS}


# Optional peers: name -> the modules it needs (pip distribution in brackets when it differs).
_OPTIONAL = {
    "floor": (("orjson", "orjson"),),
    "order-book": (("order_book", "order-book"), ("orjson", "orjson")),
    "sorteddict": (("sortedcontainers", "sortedcontainers"), ("orjson", "orjson")),
    "pybit": (("pybit", "pybit"),),
}


def _missing(name: str) -> list[str]:
    return [dist for mod, dist in _OPTIONAL[name] if importlib.util.find_spec(mod) is None]


def peer_names(include_reference: bool = True) -> list[str]:
    """Names of every peer available in this environment, obcore variants first."""
    names = []
    try:
        import obcore  # noqa: PLC0415

        names += [f"obcore-{k}" for k in obcore.kinds()]
    except ImportError:
        pass
    if include_reference and importlib.util.find_spec("obcore._reference") is not None:
        names.append("reference")
    names += [name for name in _OPTIONAL if not _missing(name)]
    return names


def skipped_peers() -> dict[str, list[str]]:
    """Optional peers that cannot run here: ``{peer: [missing distributions]}``."""
    return {name: m for name in _OPTIONAL if (m := _missing(name))}


def make_peer(name: str, tick_size: str, lot_size: str, topic: str = "orderbook.200.BTCUSDT"):
    """Return a fresh peer by name (``obcore-<kind>``, ``reference``, ``floor``, ``order-book``,
    ``sorteddict``, ``pybit``, ``pybit-full``).

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if name.startswith("obcore-"):
        return ObcorePeer(tick_size, lot_size, name[len("obcore-") :])
    if name == "reference":
        return ReferencePeer(tick_size, lot_size)
    if name in _C_PEERS:
        return _C_PEERS[name](tick_size, lot_size)
    if name == "pybit":
        return PybitPeer(tick_size, lot_size, topic)
    if name == "pybit-full":
        return PybitFullPeer(tick_size, lot_size, topic)
    raise ValueError(f"unknown peer {name!r}; choose from {peer_names() + ['pybit-full']}")


def all_peers(
    tick_size: str,
    lot_size: str,
    topic: str = "orderbook.200.BTCUSDT",
    names: list[str] | None = None,
):
    """Return fresh peers for ``names`` (default: every available one)."""
    return [make_peer(n, tick_size, lot_size, topic) for n in (names or peer_names())]


def check_peer(peer, oracle: ExactBook, n: int = 10, vwap_lots: int | None = None) -> None:
    """Raise :class:`PeerMismatch` unless ``peer`` agrees with ``oracle``.

    Compares the best ``n`` levels a side (ticks and lots, exactly) and, when
    ``vwap_lots`` is given, the VWAP to that size on both sides (relative 1e-9: peers
    compute it in floating point).
    """
    got = peer.levels(n)
    want = oracle.levels(n)
    for side, g, w in (("bids", got[0], want[0]), ("asks", got[1], want[1])):
        if [tuple(x) for x in g] != w:
            raise PeerMismatch(
                f"{peer.name}: top {n} {side} differ from the reference:\n  got  {g}\n  want {w}"
            )
    if vwap_lots:
        for side in ("b", "a"):
            g, w = peer.vwap_ticks(side, vwap_lots), oracle.vwap_ticks(side, vwap_lots)
            if (g is None) != (w is None) or (w is not None and abs(g - w) > 1e-9 * abs(w)):
                raise PeerMismatch(
                    f"{peer.name}: vwap({side!r}, {vwap_lots} lots) = {g}, reference {w}"
                )
