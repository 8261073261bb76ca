"""A slow, obviously-correct pure-Python model of :class:`obcore.Book` (the test oracle).

It shares no code with the compiled book: numbers go through :class:`decimal.Decimal`, frames
through :func:`json.loads`, levels live in dicts and are sorted on every read. Tests replay the
same messages into both and compare every query. It is not a fallback: nothing imports it
unless asked.

>>> book = PyBook("0.1", "0.001")
>>> book.apply({"type": "snapshot", "data": {"s": "BTCUSDT", "u": 1,
...             "b": [["65114.2", "0.5"]], "a": [["65114.3", "1.25"]]}})
<Applied.SNAPSHOT: 1>
>>> book.best_bid(), book.best_ask(), book.spread()
((651142, 500), (651143, 1250), 1)
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal, localcontext

import numpy as np

from obcore._errors import (
    FrameError,
    MalformedNumberError,
    NegativeValueError,
    NumberOverflowError,
    OffStepError,
    OffTickError,
    OutOfSyncError,
    SequenceGapError,
)

INT64_MAX = 2**63 - 1
_PLAIN = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)


def _applied():
    # the enum only, imported late: the model itself is independent of the compiled book
    from obcore.book import Applied  # noqa: PLC0415

    return Applied


def step_decimals(step: str) -> int:
    return len(step.partition(".")[2])


def parse_decimal(text: str, step: str, where: str, is_price: bool) -> int:
    """``text`` as a whole number of ``step``s, with obcore's error classes and precedence.

    Overflow is judged on the value in units of 10**-decimals(step), the widest integer the
    engine holds while parsing.
    """
    if not isinstance(text, str):
        raise FrameError(f"{where}: expected a string", where, repr(text))
    negative = text.startswith("-")
    body = text[1:] if negative else text
    if not _PLAIN.fullmatch(body):
        raise MalformedNumberError(f"{where} {text!r} is not a plain decimal number", where, text)
    if negative:
        raise NegativeValueError(f"{where} {text!r} is negative", where, text)
    dec = step_decimals(step)
    with localcontext() as ctx:
        ctx.prec = 200
        units = Decimal(body).scaleb(dec)
        if units.to_integral_value(rounding="ROUND_FLOOR") > INT64_MAX:
            raise NumberOverflowError(f"{where} {text!r} does not fit in int64", where, text)
        count = Decimal(body) / Decimal(step)
    if count != count.to_integral_value():
        cls = OffTickError if is_price else OffStepError
        raise cls(f"{where} {text!r} is not a multiple of {step}", where, text)
    return int(count)


def format_decimal(count: int, step: str) -> str:
    dec = step_decimals(step)
    value = Decimal(count) * Decimal(step)
    return f"{value:.{dec}f}"


def _side_is_bid(side) -> bool:
    if side in ("b", "bid", "bids"):
        return True
    if side in ("a", "ask", "asks"):
        return False
    raise ValueError(f"side must be 'b'/'bid' or 'a'/'ask', not {side!r}")


_MISSING = object()


def _int_arg(value, what: str) -> int:
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an int, not {type(value).__name__}") from None
    if not -(2**63) <= value <= INT64_MAX:
        raise NumberOverflowError(f"{what} does not fit in int64", what, str(value))
    return value


def _int_field(d: dict, key: str, field: str) -> int | None:
    v = d.get(key, _MISSING)
    if v is _MISSING:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise FrameError(f"{field}: expected an integer", field, repr(v))
    if v < 0:
        raise NegativeValueError(f"{field} must not be negative", field, str(v))
    if v > INT64_MAX:
        raise NumberOverflowError(f"{field} does not fit in int64", field, str(v))
    return v


class PyBook:
    """Reference model with the same public API as :class:`obcore.Book`."""

    kind = "reference"

    def __init__(self, tick_size, lot_size, kind=None, max_depth: int = 0, symbol=None, topic=None):
        self._tick = str(tick_size)
        self._lot = str(lot_size)
        if max_depth < 0:
            raise ValueError("max_depth must be >= 0")
        self.max_depth = max_depth
        self.bid_levels: dict[int, int] = {}
        self.ask_levels: dict[int, int] = {}
        # RPI sizes of orderbook.rpi levels [price, size, rpiSize], kept apart; None until seen
        self.rpi_levels: tuple[dict[int, int], dict[int, int]] | None = None
        self.update_id = 0
        self.seq = -1
        self.ts = 0
        self.cts = 0
        self.synced = False
        self._has_snapshot = False
        self.symbol = symbol
        self.topic = topic

    # -- numbers
    @property
    def tick_size(self) -> str:
        return self._tick

    @property
    def lot_size(self) -> str:
        return self._lot

    def parse_price(self, text: str) -> int:
        return parse_decimal(text, self._tick, "price", True)

    def parse_size(self, text: str) -> int:
        return parse_decimal(text, self._lot, "size", False)

    def price_str(self, ticks: int) -> str:
        return format_decimal(ticks, self._tick)

    def size_str(self, lots: int) -> str:
        return format_decimal(lots, self._lot)

    # -- applying
    def apply(self, frame):
        if isinstance(frame, (bytes, bytearray, memoryview)):
            frame = bytes(frame).decode("utf-8")
        if isinstance(frame, str):
            try:
                frame = json.loads(frame)
            except (ValueError, RecursionError) as exc:
                raise FrameError(f"frame: not JSON ({exc})", "frame", "") from None
        if not isinstance(frame, Mapping):
            raise FrameError("frame: expected an object", "frame", "")
        kind = frame.get("type")
        if kind not in ("snapshot", "delta"):
            raise FrameError("type: missing or invalid", "type", repr(kind))
        topic = frame.get("topic", _MISSING)
        if topic is _MISSING:
            topic = None
        elif not isinstance(topic, str):
            raise FrameError("topic: expected a string", "topic", repr(topic))
        ts = _int_field(frame, "ts", "ts")
        cts = _int_field(frame, "cts", "cts")
        data = frame.get("data")
        if not isinstance(data, Mapping):
            raise FrameError("data: missing or not an object", "data", "")
        u = _int_field(data, "u", "data.u")
        if u is None:
            raise FrameError("data.u: missing", "data.u", "")
        seq = _int_field(data, "seq", "data.seq")
        sym = data.get("s", _MISSING)
        if sym is _MISSING:
            sym = None
        elif not isinstance(sym, str):
            raise FrameError("data.s: expected a string", "data.s", repr(sym))
        for name, text in (("topic", topic), ("data.s", sym)):
            try:
                (text or "").encode("utf-8")
            except UnicodeEncodeError:
                raise FrameError(f"{name}: lone surrogate", name, repr(text)) from None
        staged = {}
        for key in ("b", "a"):
            field = "data." + key
            levels = data.get(key)
            if not isinstance(levels, (list, tuple)):
                raise FrameError(f"{field}: missing or not an array", field, "")
            staged[key] = self._stage(levels, field)
        if sym == "" or sym is not None and self.symbol is not None and sym != self.symbol:
            raise FrameError(
                f"data.s: frame is for {sym!r}, this book is {self.symbol!r}", "data.s", sym
            )
        if topic == "" or topic is not None and self.topic is not None and topic != self.topic:
            raise FrameError(
                f"topic: frame is for {topic!r}, this book reads {self.topic!r}", "topic", topic
            )
        Applied = _applied()
        if kind == "delta":
            if not self.synced:
                raise OutOfSyncError("delta refused while out of sync")
            if u <= self.update_id:
                return Applied.STALE
            if u != self.update_id + 1:
                self.synced = False
                raise SequenceGapError("update id gap", self.update_id + 1, u)
        else:
            self.bid_levels.clear()
            self.ask_levels.clear()
            for ladder in self.rpi_levels or ():
                ladder.clear()
        self._write(staged["b"], staged["a"])
        self.update_id = u
        if seq is not None:
            self.seq = seq
        if ts is not None:
            self.ts = ts
        if cts is not None:
            self.cts = cts
        if kind == "snapshot":
            self.synced = True
            self._has_snapshot = True
            if self.symbol is None and sym is not None:
                self.symbol = sym
        if self.topic is None and topic is not None:
            self.topic = topic
        if self.crossed:
            self.synced = False  # a correct stream never crosses: resync
        return Applied.SNAPSHOT if kind == "snapshot" else Applied.DELTA

    def apply_rest(self, result):
        if isinstance(result, Mapping) and "retCode" in result:
            if result.get("retCode") != 0:
                raise FrameError("retCode: REST error", "retCode", repr(result.get("retCode")))
            result = result.get("result")
        if not isinstance(result, Mapping):
            raise FrameError("result: expected an object", "result", repr(result))
        frame = {
            "type": "snapshot",
            "data": {k: result[k] for k in ("s", "b", "a", "u", "seq") if k in result},
        }
        frame.update({k: result[k] for k in ("ts", "cts") if k in result})
        return self.apply(frame)

    def _stage(self, levels, field):
        out, rpi = [], []
        for i, lvl in enumerate(levels):
            if not isinstance(lvl, (list, tuple)) or len(lvl) not in (2, 3):
                raise FrameError(
                    f"{field}[{i}]: expected [price, size(, rpiSize)]", field, repr(lvl)
                )
            price = parse_decimal(lvl[0], self._tick, f"{field}[{i}] price", True)
            out.append((price, parse_decimal(lvl[1], self._lot, f"{field}[{i}] size", False)))
            if len(lvl) == 3:
                rpi.append(
                    (price, parse_decimal(lvl[2], self._lot, f"{field}[{i}] rpi size", False))
                )
        return out, rpi

    def _write(self, bids, asks) -> None:
        if (bids[1] or asks[1]) and self.rpi_levels is None:
            self.rpi_levels = ({}, {})
        for (levels, rpi), ladder, rpi_ladder in (
            (bids, self.bid_levels, self.rpi_levels and self.rpi_levels[0]),
            (asks, self.ask_levels, self.rpi_levels and self.rpi_levels[1]),
        ):
            for staged, into in ((levels, ladder), (rpi, rpi_ladder)):
                for price, size in staged:
                    if size:
                        into[price] = size
                    else:
                        into.pop(price, None)
        self._trim()

    def _trim(self) -> None:
        if not self.max_depth:
            return
        sides = [(self.bid_levels, True), (self.ask_levels, False)]
        if self.rpi_levels is not None:
            sides += [(self.rpi_levels[0], True), (self.rpi_levels[1], False)]
        for ladder, is_bid in sides:
            keep = sorted(ladder, reverse=is_bid)[: self.max_depth]
            for price in set(ladder) - set(keep):
                del ladder[price]

    def set_level(self, side, ticks: int, lots: int) -> None:
        ticks, lots = _int_arg(ticks, "ticks"), _int_arg(lots, "lots")
        if ticks < 0 or lots < 0:
            raise NegativeValueError("ticks and lots must be >= 0", "level", "")
        ladder = self.bid_levels if _side_is_bid(side) else self.ask_levels
        if lots:
            ladder[ticks] = lots
        else:
            ladder.pop(ticks, None)
        self._trim()

    def update(self, side, price: str, size: str) -> None:
        self.set_level(side, self.parse_price(price), self.parse_size(size))

    def apply_levels(self, bids=(), asks=()) -> None:
        staged = [self._stage(levels, name) for name, levels in (("bids", bids), ("asks", asks))]
        self._write(*staged)

    def clear(self) -> None:
        self.bid_levels.clear()
        self.ask_levels.clear()
        for ladder in self.rpi_levels or ():
            ladder.clear()
        self.synced = False

    # -- reads
    def _sorted(self, is_bid: bool) -> list[tuple[int, int]]:
        ladder = self.bid_levels if is_bid else self.ask_levels
        return sorted(ladder.items(), reverse=is_bid)

    def levels(self, side) -> Iterator[tuple[int, int]]:
        return iter(self._sorted(_side_is_bid(side)))

    def best_bid(self):
        lv = self._sorted(True)
        return lv[0] if lv else None

    def best_ask(self):
        lv = self._sorted(False)
        return lv[0] if lv else None

    @property
    def bid_count(self) -> int:
        return len(self.bid_levels)

    @property
    def ask_count(self) -> int:
        return len(self.ask_levels)

    def __len__(self) -> int:
        return len(self.bid_levels) + len(self.ask_levels)

    def _array(self, is_bid: bool, n) -> np.ndarray:
        lv = self._sorted(is_bid)
        if n is not None:
            lv = lv[:n]
        return np.array(lv, dtype=np.int64).reshape(len(lv), 2)

    def bids(self, n=None) -> np.ndarray:
        return self._array(True, n)

    def _rpi_array(self, is_bid: bool, n) -> np.ndarray:
        ladder = self.rpi_levels[0 if is_bid else 1] if self.rpi_levels else {}
        lv = sorted(ladder.items(), reverse=is_bid)[:n]
        return np.array(lv, dtype=np.int64).reshape(len(lv), 2)

    def rpi_bids(self, n=None) -> np.ndarray:
        return self._rpi_array(True, n)

    def rpi_asks(self, n=None) -> np.ndarray:
        return self._rpi_array(False, n)

    def rpi_size_at(self, side, ticks: int) -> int:
        ticks = _int_arg(ticks, "ticks")
        if not self.rpi_levels:
            return 0
        return self.rpi_levels[0 if _side_is_bid(side) else 1].get(ticks, 0)

    def asks(self, n=None) -> np.ndarray:
        return self._array(False, n)

    def mid(self):
        b, a = self.best_bid(), self.best_ask()
        return None if b is None or a is None else (b[0] + a[0]) / 2

    def spread(self):
        b, a = self.best_bid(), self.best_ask()
        return None if b is None or a is None else a[0] - b[0]

    def microprice(self):
        b, a = self.best_bid(), self.best_ask()
        if b is None or a is None:
            return None
        return (b[0] * a[1] + a[0] * b[1]) / (a[1] + b[1])

    @property
    def crossed(self) -> bool:
        b, a = self.best_bid(), self.best_ask()
        return bool(b and a and b[0] >= a[0])

    def size_at(self, side, ticks: int) -> int:
        ladder = self.bid_levels if _side_is_bid(side) else self.ask_levels
        return ladder.get(ticks, 0)

    def cum_size(self, side, ticks: int) -> int:
        if _side_is_bid(side):
            return sum(q for p, q in self.bid_levels.items() if p >= ticks)
        return sum(q for p, q in self.ask_levels.items() if p <= ticks)

    def vwap(self, side, lots: int):
        if lots <= 0:
            raise ValueError("lots must be > 0")
        left, notional = lots, 0
        for price, size in self._sorted(_side_is_bid(side)):
            take = min(size, left)
            notional += price * take
            left -= take
            if not left:
                return notional / lots
        return None

    def imbalance(self, n: int = 1):
        if n <= 0:
            raise ValueError("n must be > 0")
        b = sum(q for _, q in self._sorted(True)[:n])
        a = sum(q for _, q in self._sorted(False)[:n])
        return None if a + b == 0 else (b - a) / (b + a)

    def check_integrity(self) -> None:
        for ladder in (self.bid_levels, self.ask_levels):
            assert all(q > 0 for q in ladder.values()), "non-positive size stored"
            assert all(p >= 0 for p in ladder), "negative price stored"

    def snapshot(self, n=None) -> dict:
        def rows(is_bid):
            main = dict(self._sorted(is_bid))
            if self.rpi_levels is None:
                return [[self.price_str(p), self.size_str(q)] for p, q in main.items()][:n]
            rpi = self.rpi_levels[0 if is_bid else 1]
            return [
                [self.price_str(p), self.size_str(main.get(p, 0)), self.size_str(rpi.get(p, 0))]
                for p in sorted(main.keys() | rpi.keys(), reverse=is_bid)
            ][:n]

        data = {"b": rows(True), "a": rows(False), "u": self.update_id}
        if self.symbol is not None:
            data = {"s": self.symbol, **data}
        if self.seq >= 0:
            data["seq"] = self.seq
        msg = {"type": "snapshot", "ts": self.ts, "data": data}
        if self.topic is not None:
            msg = {"topic": self.topic, **msg}
        if self.cts:
            msg["cts"] = self.cts
        return msg
