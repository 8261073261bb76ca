"""Seeded generator of realistic Bybit v5 orderbook streams, as raw frame text.

The frames are byte-compatible with what Bybit's public WebSocket sends on
``orderbook.{depth}.{symbol}``: compact JSON, key order
``topic, type, ts, data{s, b, a, u, seq}, cts``, prices and sizes as decimal strings
(linear: the tick's number of decimals, e.g. ``"65000.0"`` for tick ``"0.1"``; spot:
trailing zeros stripped, e.g. ``"29328"``; sizes with the lot's decimals; a delete is
size ``"0"``), bids best first (descending) and asks best first (ascending).

What the stream looks like, and why:

- The first frame is a snapshot of ``depth`` levels a side; every later frame is a
  delta with ``u`` one higher than the previous frame (snapshots included), and a
  monotonic but non-contiguous ``seq``, as on Bybit.
- Each delta changes about ``levels_per_delta`` levels, concentrated near the touch
  (the level index from the best price is geometric), because that is where real books
  change and where a tree or array pays most.
- About ``delete_ratio`` of the level changes are deletes; inserts balance them so the
  book stays near ``depth`` levels a side, and levels pushed past ``depth`` are deleted
  (Bybit only shows the top ``depth``).
- The touch drifts: some deltas consume the best levels on one side and improve the
  other, so the best price random-walks and a structure cannot assume a fixed centre.
- A delta never deletes an absent level, never repeats a price within one side, and the
  book after every frame is never crossed.
- Optional periodic snapshots (``snapshot_every``) re-send the whole book, which a
  consumer must treat as a replacement.
- Optional public trades (``trades_per_s > 0``): a ``publicTrade.{symbol}`` frame comes
  just before the orderbook delta that shows its effect, with the same ``ts``. Every
  trade takes resting size at the touch of the opposite side, best price first, and
  the delta carries exactly the reductions the trades made (plus unrelated changes
  elsewhere). Takers arrive as a Poisson process of ``trades_per_s``, each a ``Buy``
  with probability ``trade_buy_ratio`` and of a Pareto-distributed size with mean
  ``trade_size_mean_lots`` and tail index ``trade_size_alpha`` (heavy tailed, as real
  order flow is: most takers nibble at the touch, a few sweep several levels); a taker
  that clears a level sweeps on to the next, and the other side follows it (up to five
  levels next to the new touch), so a sweep moves the price instead of leaving a hole.
  The touch moves that consume whole best levels are trades too, so with trades on,
  size at the touch only ever leaves through a trade or an explicit random change
  deeper than the touch. With ``trades_per_s == 0`` (the default) the stream is
  orderbook frames only, byte-identical to what it was before trades existed.

Everything is integer arithmetic on ticks and lots, and the output depends only on the
arguments: the same seed always gives the same frames.

Examples
--------
>>> from obcore.synthetic import generate_frames
>>> frames = list(generate_frames(depth=50, messages=3, seed=1))
>>> frames[0][:60]
'{"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":17000'
>>> len(frames)
3
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left, insort
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from math import log as _log
from types import ModuleType

__all__ = ["SyntheticStream", "generate_frames", "decimal_scale"]

_compiled: ModuleType | None
try:
    # the same frames, ~8x faster: the simulator generates one stream per symbol
    from obcore import _synthetic as _compiled
except ImportError:  # pragma: no cover - a checkout without the build: the pure generator
    _compiled = None

_CATEGORIES = ("linear", "spot")


def decimal_scale(value: str, what: str) -> tuple[int, int]:
    """Return ``(units, decimals)`` such that ``value == units / 10**decimals`` exactly.

    Parameters
    ----------
    value : str
        A positive decimal string such as ``"0.1"`` or ``"0.010"``. The number of
        decimals is taken as written, so ``"0.10"`` has two (Bybit's priceScale).
    what : str
        The name of the field, used in error messages.

    Raises
    ------
    ValueError
        If ``value`` is not a plain positive decimal string.
    """
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a decimal string, got {type(value).__name__}: {value!r}")
    text = value.strip()
    whole, dot, frac = text.partition(".")
    if not whole.isdigit() or (dot and not frac.isdigit()) or text != value:
        raise ValueError(f"{what} must be a plain decimal string like '0.1', got {value!r}")
    units = int(whole + frac)
    if units <= 0:
        raise ValueError(f"{what} must be positive, got {value!r}")
    return units, len(frac)


def _ticks_of(price: str, tick_units: int, tick_decimals: int, what: str) -> int:
    try:
        d = Decimal(price)
    except (InvalidOperation, TypeError) as e:
        raise ValueError(f"{what} must be a decimal string, got {price!r}") from e
    scaled = d.scaleb(tick_decimals)
    if scaled != scaled.to_integral_value() or int(scaled) % tick_units:
        raise ValueError(f"{what} {price!r} is not a multiple of the tick size")
    ticks = int(scaled) // tick_units
    if ticks <= 0:
        raise ValueError(f"{what} must be positive, got {price!r}")
    return ticks


def _formatter(units: int, decimals: int, strip: bool):
    """Return a function formatting an integer count of steps as Bybit's decimal string."""
    if decimals == 0:
        return lambda n: str(n * units)
    scale = 10**decimals

    if not strip:

        def fmt(n: int) -> str:
            q, r = divmod(n * units, scale)
            return f"{q}.{r:0{decimals}d}"
    else:

        def fmt(n: int) -> str:
            q, r = divmod(n * units, scale)
            if r == 0:
                return str(q)
            return f"{q}.{r:0{decimals}d}".rstrip("0")

    return fmt


class _Texts(dict):
    """Integer -> its decimal text, formatted once: a stream re-sends the same prices
    and sizes frame after frame, and a dict hit costs a fraction of formatting.

    ``zero`` is the text of 0 (a delete's size is ``"0"``, not ``"0.000"``).
    """

    __slots__ = ("fmt", "zero")
    # A random walk visits new prices, and heavy-tailed sizes new sizes, forever: bound
    # the memory (~120 kB a cache; a simulator runs two per symbol). At 1,024 a depth-200
    # stream misses ~2 of its ~25 levels a frame.
    LIMIT = 1024

    def __init__(self, fmt, zero: str | None = None) -> None:
        super().__init__()
        self.fmt = fmt
        self.zero = zero
        if zero is not None:
            self[0] = zero

    def __missing__(self, n: int) -> str:
        if len(self) >= self.LIMIT:
            self.clear()
            if self.zero is not None:
                self[0] = self.zero
        text = self[n] = self.fmt(n)
        return text


class SyntheticStream:
    """A seeded Bybit v5 orderbook stream; iterate it for raw frame strings.

    The generator's own book (``bids_lots`` / ``asks_lots``, integer ticks to integer
    lots) is the ground truth after the frames produced so far, so a test can compare a
    replayed book against it.

    Parameters
    ----------
    symbol : str
        Instrument name, used in the topic and ``data.s``.
    tick_size, lot_size : str
        Decimal strings; prices and sizes are formatted from them exactly.
    depth : int
        Levels a side that the stream maintains (50, 200, 1000 on Bybit; any value
        >= 1 works, e.g. 10,000 for scaling benchmarks). Depth 1 streams are
        snapshots only, as on Bybit.
    messages : int
        Number of frames, the initial snapshot included.
    seed : int
        Random seed; the frames are a pure function of all arguments.
    levels_per_delta : int
        Mean number of level changes per delta.
    delete_ratio : float
        Approximate fraction of level changes that are deletes (0 <= r < 0.5).
    snapshot_every : int
        Re-send a full snapshot every this many frames (0: only the first frame).
    start_price : str
        Best bid at the start (the best ask is one tick above).
    start_ts_ms, interval_ms : int
        ``ts`` of the first frame and the spacing between frames, in milliseconds.
    category : {"linear", "spot"}
        Controls price formatting (fixed decimals vs trailing zeros stripped).
    start_update_id : int
        ``u`` of the first frame. Must not be 1 unless you mean a restart snapshot.
    trades_per_s : float
        Mean rate of taker orders (0: no ``publicTrade`` frames). ``messages`` counts
        orderbook frames only; trade frames come on top.
    trade_size_mean_lots : int
        Mean taker order size in lots (Pareto, at least one lot).
    trade_size_alpha : float
        Tail index of the Pareto taker size (> 1; smaller is heavier tailed).
    trade_buy_ratio : float
        Probability that a taker buys (lifts asks).
    """

    def __init__(
        self,
        *,
        symbol: str = "BTCUSDT",
        tick_size: str = "0.1",
        lot_size: str = "0.001",
        depth: int = 200,
        messages: int = 1000,
        seed: int = 0,
        levels_per_delta: int = 11,
        delete_ratio: float = 0.25,
        snapshot_every: int = 0,
        start_price: str = "65000.0",
        start_ts_ms: int = 1_700_000_000_000,
        interval_ms: int = 20,
        category: str = "linear",
        start_update_id: int = 80_000_000,
        trades_per_s: float = 0.0,
        trade_size_mean_lots: int = 20,
        trade_buy_ratio: float = 0.5,
        trade_size_alpha: float = 1.5,
    ) -> None:
        if category not in _CATEGORIES:
            raise ValueError(f"category must be one of {_CATEGORIES}, got {category!r}")
        if not isinstance(symbol, str) or not symbol or '"' in symbol or "\\" in symbol:
            raise ValueError(f"symbol must be a non-empty plain string, got {symbol!r}")
        for name, v, lo in (
            ("depth", depth, 1),
            ("messages", messages, 0),
            ("levels_per_delta", levels_per_delta, 1),
            ("snapshot_every", snapshot_every, 0),
            ("interval_ms", interval_ms, 0),
            ("start_ts_ms", start_ts_ms, 0),
            ("start_update_id", start_update_id, 1),
        ):
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
        if not 0.0 <= float(delete_ratio) < 0.5:
            raise ValueError(f"delete_ratio must be in [0, 0.5), got {delete_ratio!r}")
        if not 0.0 <= float(trades_per_s) < 1e6:
            raise ValueError(f"trades_per_s must be in [0, 1e6), got {trades_per_s!r}")
        if (
            not isinstance(trade_size_mean_lots, int)
            or isinstance(trade_size_mean_lots, bool)
            or trade_size_mean_lots < 1
        ):
            raise ValueError(
                f"trade_size_mean_lots must be an int >= 1, got {trade_size_mean_lots!r}"
            )
        if not 0.0 <= float(trade_buy_ratio) <= 1.0:
            raise ValueError(f"trade_buy_ratio must be in [0, 1], got {trade_buy_ratio!r}")
        if not 1.0 < float(trade_size_alpha) < 100.0:
            raise ValueError(f"trade_size_alpha must be in (1, 100), got {trade_size_alpha!r}")
        self.trade_size_alpha = float(trade_size_alpha)
        self.trades_per_s = float(trades_per_s)
        self.trade_size_mean_lots = trade_size_mean_lots
        self.trade_buy_ratio = float(trade_buy_ratio)
        self.trade_topic = f"publicTrade.{symbol}"
        # trades of the delta being built: (taker side, price ticks, lots), in order
        self._trades: list[tuple[str, int, int]] = []
        self._trade_count = 0
        self._last_trade: int | None = None
        self._last_dir = "PlusTick"
        self.symbol = symbol
        self.category = category
        self.depth = depth
        self.messages = messages
        self.seed = seed
        self.levels_per_delta = levels_per_delta
        self.delete_ratio = float(delete_ratio)
        self.snapshot_every = snapshot_every
        self.start_ts_ms = start_ts_ms
        self.interval_ms = interval_ms
        self.start_update_id = start_update_id
        self.tick_size = tick_size
        self.lot_size = lot_size
        self.topic = f"orderbook.{depth}.{symbol}"
        tick_units, tick_decimals = decimal_scale(tick_size, "tick_size")
        lot_units, lot_decimals = decimal_scale(lot_size, "lot_size")
        self._scales = (tick_units, tick_decimals, lot_units, lot_decimals)
        self.start_price_ticks = _ticks_of(start_price, tick_units, tick_decimals, "start_price")
        self.price_str = _formatter(tick_units, tick_decimals, strip=category == "spot")
        self.size_str = _formatter(lot_units, lot_decimals, strip=False)
        # a level is '["<price>","<size>"]': cache both halves, quotes included
        price_str, size_str = self.price_str, self.size_str
        self._level_heads = _Texts(lambda n: f'["{price_str(n)}","')
        self._level_tails = _Texts(lambda n: f'{size_str(n)}"]', zero='0"]')
        # Ground truth after the frames generated so far (ticks -> lots).
        self.bids_lots: dict[int, int] = {}
        self.asks_lots: dict[int, int] = {}

    def __iter__(self) -> Iterator[str]:
        return self.frames()

    # -- the generator ---------------------------------------------------------------

    def frames(self) -> Iterator[str]:
        """Yield the frames, resetting the ground-truth book first.

        The compiled generator (``obcore._synthetic``) makes them when it is built and
        the prices fit it; otherwise :meth:`_py_frames`, the reference it must match
        byte for byte, does.

        Yields
        ------
        str
            One raw Bybit v5 orderbook frame (compact JSON, no trailing newline).
        """
        return self._frames(truth=True)

    def _frames(self, *, truth: bool) -> Iterator[str]:
        # truth=False: nobody can read bids_lots/asks_lots (generate_frames keeps the
        # stream to itself), so the compiled generator need not keep them up to date
        if _compiled is not None and self.start_price_ticks < _compiled.MAX_TICKS:
            return _compiled.frames(self, random.Random(self.seed), self._scales, truth)
        return self._py_frames()

    def _py_frames(self) -> Iterator[str]:
        """The pure-Python generator: the reference for the compiled one."""
        rng = random.Random(self.seed)
        bids = self.bids_lots
        asks = self.asks_lots
        bids.clear()
        asks.clear()
        # Sorted ascending tick lists alongside the dicts: the best bid is bid_keys[-1],
        # the best ask ask_keys[0]; index i from the touch is bid_keys[-1 - i] / ask_keys[i].
        bid_keys: list[int] = []
        ask_keys: list[int] = []
        self._seed_book(rng, bids, asks, bid_keys, ask_keys)

        u = self.start_update_id
        seq = rng.randrange(10_000_000_000, 60_000_000_000)
        ts = self.start_ts_ms
        self._trade_count = 0
        self._last_trade = None
        self._last_dir = "PlusTick"
        for i in range(self.messages):
            self._trades = []
            snapshot = (
                i == 0 or self.depth == 1 or (self.snapshot_every and i % self.snapshot_every == 0)
            )
            if snapshot:
                if i and self.depth > 1:
                    # Let the book evolve between snapshots so a re-sent snapshot differs.
                    self._delta(rng, bids, asks, bid_keys, ask_keys)
                b = [(p, bids[p]) for p in reversed(bid_keys)]
                a = [(p, asks[p]) for p in ask_keys]
            else:
                changes_b, changes_a = self._delta(rng, bids, asks, bid_keys, ask_keys)
                b = sorted(changes_b.items(), reverse=True)
                a = sorted(changes_a.items())
            cts = ts - rng.randrange(1, 4)
            if self._trades:
                # the trade happened first; the delta after it shows what it took
                yield self._trade_frame(ts, seq)
            yield self._frame("snapshot" if snapshot else "delta", ts, b, a, u, seq, cts)
            u += 1
            seq += rng.randrange(1, 60)
            ts += self.interval_ms

    def _frame(self, kind, ts, b, a, u, seq, cts) -> str:
        head = self._level_heads
        tail = self._level_tails
        bt = ",".join([head[p] + tail[q] for p, q in b])
        at = ",".join([head[p] + tail[q] for p, q in a])
        return (
            f'{{"topic":"{self.topic}","type":"{kind}","ts":{ts},'
            f'"data":{{"s":"{self.symbol}","b":[{bt}],"a":[{at}],"u":{u},"seq":{seq}}},'
            f'"cts":{cts}}}'
        )

    def _trade_frame(self, ts: int, seq: int) -> str:
        ps = self.price_str
        ss = self.size_str
        items = []
        for side, price, lots in self._trades:
            last = self._last_trade
            if last is None or price > last:
                self._last_dir = "PlusTick"
            elif price < last:
                self._last_dir = "MinusTick"
            else:
                self._last_dir = (
                    "ZeroPlusTick"
                    if self._last_dir in ("PlusTick", "ZeroPlusTick")
                    else "ZeroMinusTick"
                )
            self._last_trade = price
            self._trade_count += 1
            items.append(
                f'{{"T":{ts},"s":"{self.symbol}","S":"{side}","v":"{ss(lots)}",'
                f'"p":"{ps(price)}","L":"{self._last_dir}",'
                f'"i":"00000000-0000-4000-8000-{self._trade_count:012d}",'
                f'"BT":false,"seq":{seq}}}'
            )
        return (
            f'{{"topic":"{self.trade_topic}","type":"snapshot","ts":{ts},'
            f'"data":[{",".join(items)}]}}'
        )

    def _take(
        self, rng, taker: str, lots: int, bid_keys, ask_keys, bids, asks, delete, put, ch_b, ch_a
    ) -> None:
        """A taker of ``lots`` sweeps the opposite side from its best price; never empties it."""
        keys, side, ch = (ask_keys, asks, ch_a) if taker == "Buy" else (bid_keys, bids, ch_b)
        while lots > 0 and keys:
            p = keys[0] if taker == "Buy" else keys[-1]
            have = side[p]
            if lots >= have:
                if len(keys) == 1:
                    lots = have - 1  # leave one lot: a side never empties
                    if lots <= 0:
                        return
                    self._trades.append((taker, p, lots))
                    put(keys, side, ch, p, 1)
                    return
                self._trades.append((taker, p, have))
                delete(keys, side, ch, p)
                lots -= have
            else:
                self._trades.append((taker, p, lots))
                put(keys, side, ch, p, have - lots)
                lots = 0

    def _follow(self, rng, taker: str, bid_keys, ask_keys, bids, asks, put, ch_b, ch_a) -> None:
        """After a sweep left the spread wider than two ticks, fill up to five levels of
        the other side next to the new touch (one tick spread again)."""
        if not bid_keys or not ask_keys or ask_keys[0] - bid_keys[-1] <= 2:
            return
        if taker == "Buy":
            p, floor = ask_keys[0] - 1, bid_keys[-1]
            for i in range(5):
                if p <= floor:
                    break
                if p not in bids and p not in ch_b:  # never refill a level traded now
                    put(bid_keys, bids, ch_b, p, self._size(rng, i))
                p -= 1 + (rng.random() < 0.3)
        else:
            p, ceil = bid_keys[-1] + 1, ask_keys[0]
            for i in range(5):
                if p >= ceil:
                    break
                if p not in asks and p not in ch_a:
                    put(ask_keys, asks, ch_a, p, self._size(rng, i))
                p += 1 + (rng.random() < 0.3)

    def _size(self, rng: random.Random, index: int) -> int:
        # Heavy-tailed sizes, larger away from the touch, as in real books.
        # rng.paretovariate(1.3) written out (the same draw and float): this runs ~20
        # times a frame, and the call was a third of its cost
        return 1 + int((1.0 - rng.random()) ** (-1.0 / 1.3) * 40 * (1 + index / 20)) % 500_000

    def _seed_book(self, rng, bids, asks, bid_keys, ask_keys) -> None:
        best_bid = self.start_price_ticks
        best_ask = best_bid + 1
        # Dense near the touch, gappier further out.
        p = best_bid
        while len(bid_keys) < self.depth and p > 0:
            bids[p] = self._size(rng, len(bid_keys))
            bid_keys.append(p)
            p -= 1 + (rng.random() < 0.15 + 0.5 * len(bid_keys) / self.depth)
        bid_keys.reverse()
        p = best_ask
        while len(ask_keys) < self.depth:
            asks[p] = self._size(rng, len(ask_keys))
            ask_keys.append(p)
            p += 1 + (rng.random() < 0.15 + 0.5 * len(ask_keys) / self.depth)

    def _near_index(self, rng: random.Random, n: int) -> int:
        # Geometric level index from the touch: ~half of the changes within 3 levels.
        # rng.expovariate(0.22) written out (the same draw and float), as in _size
        i = int(-_log(1.0 - rng.random()) / 0.22)
        return i if i < n else rng.randrange(n)

    def _delta(self, rng, bids, asks, bid_keys, ask_keys):
        """Mutate the ground truth by one delta; return the changes per side (0 = delete)."""
        ch_b: dict[int, int] = {}
        ch_a: dict[int, int] = {}
        mean = self.levels_per_delta
        target = max(1, round(rng.gauss(mean, mean / 3)))

        # Prices inserted by this delta: deleting one again (the depth trim can) must
        # drop the change, not send a delete of a level the consumer never had.
        fresh: set[tuple[bool, int]] = set()

        def delete(side_keys, side, ch, p):
            del side[p]
            del side_keys[bisect_left(side_keys, p)]
            key = (ch is ch_b, p)
            if key in fresh:
                fresh.discard(key)
                del ch[p]
            else:
                ch[p] = 0

        def put(side_keys, side, ch, p, q):
            if p not in side:
                insort(side_keys, p)
                if p not in ch:
                    fresh.add((ch is ch_b, p))
            side[p] = q
            ch[p] = q

        def rebalance(is_bid):
            # Bybit shows only the top `depth` levels: trim what an insert pushed out,
            # refill from beyond the visible window what a delete uncovered.
            keys, side, ch = (bid_keys, bids, ch_b) if is_bid else (ask_keys, asks, ch_a)
            while len(keys) > self.depth:
                delete(keys, side, ch, keys[0] if is_bid else keys[-1])
            while 0 < len(keys) < self.depth:
                p = (
                    keys[0] - 1 - (rng.random() < 0.5)
                    if is_bid
                    else keys[-1] + 1 + (rng.random() < 0.5)
                )
                if p <= 0:
                    break
                put(keys, side, ch, p, self._size(rng, len(keys)))

        trading = self.trades_per_s > 0
        swept: list[str] = []
        if trading:
            # Poisson arrivals in this frame's interval (Knuth's method: the rate is small)
            limit = math.exp(-self.trades_per_s * self.interval_ms / 1000.0)
            prod = rng.random()
            while prod > limit:
                taker = "Buy" if rng.random() < self.trade_buy_ratio else "Sell"
                alpha = self.trade_size_alpha
                scale = self.trade_size_mean_lots * (alpha - 1.0) / alpha  # Pareto mean
                lots = max(1, round(scale * rng.paretovariate(alpha)))
                self._take(
                    rng, taker, lots, bid_keys, ask_keys, bids, asks, delete, put, ch_b, ch_a
                )
                swept.append(taker)
                prod *= rng.random()
            rebalance(True)
            rebalance(False)

        # Touch move: consume the best level(s) of one side and improve the other.
        if rng.random() < 0.3 and bid_keys and ask_keys:
            k = 1 + (rng.random() < 0.3)
            if rng.random() < 0.5:
                floor = ask_keys[0] + k
                while ask_keys and ask_keys[0] < floor and len(ask_keys) > 1:
                    if trading:  # a buyer took the level
                        self._trades.append(("Buy", ask_keys[0], asks[ask_keys[0]]))
                    delete(ask_keys, asks, ch_a, ask_keys[0])
                p = ask_keys[0] - 1 - (rng.random() < 0.2)
                if p > bid_keys[-1]:
                    put(bid_keys, bids, ch_b, p, self._size(rng, 0))
            else:
                ceil = bid_keys[-1] - k
                while bid_keys and bid_keys[-1] > ceil and len(bid_keys) > 1:
                    if trading:  # a seller took the level
                        self._trades.append(("Sell", bid_keys[-1], bids[bid_keys[-1]]))
                    delete(bid_keys, bids, ch_b, bid_keys[-1])
                p = bid_keys[-1] + 1 + (rng.random() < 0.2)
                if p < ask_keys[0]:
                    put(ask_keys, asks, ch_a, p, self._size(rng, 0))
            rebalance(True)
            rebalance(False)

        # The other side follows a sweep (price impact), as market makers requote: no hole
        # of many ticks stays open at the touch. After every trade of the frame, so a trade
        # only ever takes size that rested before the frame.
        for taker in swept:
            self._follow(rng, taker, bid_keys, ask_keys, bids, asks, put, ch_b, ch_a)

        # Each random insert or delete costs a second change at the tail (trim/refill),
        # so a fraction p of each gives 2p / (1 + 2p) deletes overall: solve for p.
        p_del = self.delete_ratio / (2 - 2 * self.delete_ratio)
        tries = 0
        while len(ch_b) + len(ch_a) < target and tries < 8 * target:
            tries += 1
            is_bid = rng.random() < 0.5
            keys, side, ch = (bid_keys, bids, ch_b) if is_bid else (ask_keys, asks, ch_a)
            n = len(keys)
            r = rng.random()
            i = self._near_index(rng, n)
            if r < p_del and n > 1:
                p = keys[-1 - i] if is_bid else keys[i]
                if p in ch:
                    continue
                delete(keys, side, ch, p)
                rebalance(is_bid)
            elif r < 2 * p_del or n == 0:
                # Insert at a vacant tick near index i, never crossing the other side.
                if is_bid:
                    limit = ask_keys[0] - 1 if ask_keys else None
                    p = (keys[-1 - i] if n else self.start_price_ticks) + (1 if i == 0 else -1)
                    if limit is not None and p > limit:
                        p = limit
                    step = -1
                else:
                    limit = bid_keys[-1] + 1 if bid_keys else None
                    p = (keys[i] if n else self.start_price_ticks + 1) + (-1 if i == 0 else 1)
                    if limit is not None and p < limit:
                        p = limit
                    step = 1
                for _ in range(64):
                    if p > 0 and p not in side and p not in ch:
                        break
                    p += step
                else:
                    continue
                if p <= 0:
                    continue
                put(keys, side, ch, p, self._size(rng, i))
                rebalance(is_bid)
            elif n:
                p = keys[-1 - i] if is_bid else keys[i]
                if p in ch:
                    continue
                old = side[p]
                q = max(1, old + int(rng.gauss(0, 1 + old / 2)))
                if q == old:
                    q = old + 1
                put(keys, side, ch, p, q)

        rebalance(True)
        rebalance(False)
        return ch_b, ch_a


def generate_frames(
    *,
    symbol: str = "BTCUSDT",
    tick_size: str = "0.1",
    lot_size: str = "0.001",
    depth: int = 200,
    messages: int = 1000,
    seed: int = 0,
    levels_per_delta: int = 11,
    delete_ratio: float = 0.25,
    snapshot_every: int = 0,
    start_price: str = "65000.0",
    start_ts_ms: int = 1_700_000_000_000,
    interval_ms: int = 20,
    category: str = "linear",
    start_update_id: int = 80_000_000,
    trades_per_s: float = 0.0,
    trade_size_mean_lots: int = 20,
    trade_buy_ratio: float = 0.5,
    trade_size_alpha: float = 1.5,
) -> Iterator[str]:
    """Yield a seeded, realistic Bybit v5 orderbook stream as raw frame strings.

    The first frame is a snapshot; the rest are deltas with ``u`` incremented by one per
    frame, plus a snapshot every ``snapshot_every`` frames if asked, and with
    ``trades_per_s > 0`` a ``publicTrade`` frame before each delta that has trades. See
    :class:`SyntheticStream` for the parameters and the module docstring for the shape
    of the stream.

    Returns
    -------
    Iterator[str]
        ``messages`` frames, each compact JSON exactly as Bybit sends it.
    """
    return SyntheticStream(
        symbol=symbol,
        tick_size=tick_size,
        lot_size=lot_size,
        depth=depth,
        messages=messages,
        seed=seed,
        levels_per_delta=levels_per_delta,
        delete_ratio=delete_ratio,
        snapshot_every=snapshot_every,
        start_price=start_price,
        start_ts_ms=start_ts_ms,
        interval_ms=interval_ms,
        category=category,
        start_update_id=start_update_id,
        trades_per_s=trades_per_s,
        trade_size_mean_lots=trade_size_mean_lots,
        trade_buy_ratio=trade_buy_ratio,
        trade_size_alpha=trade_size_alpha,
    )._frames(truth=False)
