"""The performance figures of a run, one implementation for ``mmbot backtest`` and
``mmbot run`` (summary.json key ``metrics`` and the end-of-run text).

Inputs are the runner's own record: the exact net PnL sampled with the book mid
(``History.t_ms`` / ``History.net_pnl_exact``), the fills of this run (:class:`Trade`,
``Runner.trades``) and the number of orders sent. Money is exact Decimal, written as
decimal strings; ratios and durations are floats. Definitions (also in
docs/metrics.md):

- ``max_drawdown_quote``: the largest fall of net PnL from its running peak, over the
  sampled equity curve (every ``history_interval_ms``, 250 ms by default, marked at the
  mid). ``max_drawdown_duration_s``: the longest time net PnL spent below its running
  peak (from the peak to the first sample back at or above it, or to the end of the run).
- ``sharpe_per_minute``: mean / sample standard deviation of the per-minute changes of net
  PnL (minute boundaries counted from the first sample; the value at a boundary is the
  last sample at or before it); None with fewer than two whole minutes or no variation.
  ``sharpe_annualized`` multiplies it by sqrt(525,600), the minutes in a 24/7 year.
- ``fill_ratio``: fills per order sent (new orders and amends, ``orders_sent``).
- ``avg_time_in_inventory_s`` / ``p95_time_in_inventory_s``: lots are matched first in,
  first out; each lot's time in inventory is from the fill that opened it to the fill that
  closed it. Average and 95th percentile (nearest rank) over lots, weighted by size. Lots
  still open at the end are not counted (``open_lots_at_end`` says how many).
- ``realized_spread_per_fill_quote``: the edge captured at the fill against the mid then
  (in a backtest the exchange's mid at the match, as in the attribution's gross edge; live,
  the runner's book mid when it booked the fill), ``sum(side * (mid - price) * qty) /
  fills`` in quote currency (side +1 buy, -1 sell); ``realized_spread_per_fill_bps`` is
  the mean of ``side * (mid - price) / mid`` in bps. The spread left after adverse
  selection is in ``markouts``.
- ``turnover_quote``: traded notional, ``sum(price * qty)``; ``turnover_per_hour_quote``
  divides it by the run's length in hours.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

from mmbot.pnl import _EXACT, _ROUNDING, _div, format_money

__all__ = ["MINUTES_PER_YEAR", "Trade", "metrics_text", "run_metrics"]

#: minutes in a year of a market that never closes
MINUTES_PER_YEAR = 525_600

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Trade:
    """One fill of this run, as the runner saw it (the trades export writes these).

    ``mid2_ticks`` is best bid + best ask in ticks when the fill was booked (twice the mid,
    so it stays an integer; None without a two-sided book). ``level`` is the ladder level
    of the order (None when the order is not one of this run's quotes; -1 a flatten).
    """

    ts_ms: int
    exec_id: str
    side: str
    price_ticks: int
    qty_lots: int
    fee: Decimal
    is_maker: bool
    level: int | None
    mid2_ticks: int | None


def _drawdown(times: Sequence[int], equity: Sequence[Decimal]) -> tuple[Decimal, float]:
    max_dd = _ZERO
    longest_ms = 0
    peak = None
    peak_ms = 0
    under_since: int | None = None
    for t, v in zip(times, equity, strict=True):
        if peak is None or v >= peak:
            if under_since is not None:
                longest_ms = max(longest_ms, t - under_since)
                under_since = None
            peak, peak_ms = v, t
            continue
        if under_since is None:
            under_since = peak_ms
        if peak - v > max_dd:
            max_dd = peak - v
    if under_since is not None and times:
        longest_ms = max(longest_ms, times[-1] - under_since)
    return max_dd, longest_ms / 1000


def _minute_changes(times: Sequence[int], equity: Sequence[Decimal]) -> list[Decimal]:
    if not times:
        return []
    start = times[0]
    values: list[Decimal] = []
    boundary = start
    i = 0
    while boundary <= times[-1]:
        while i + 1 < len(times) and times[i + 1] <= boundary:
            i += 1
        values.append(equity[i])
        boundary += 60_000
    return [b - a for a, b in zip(values, values[1:], strict=False)]


def _sharpe(changes: Sequence[Decimal]) -> float | None:
    if len(changes) < 2:
        return None
    # a ratio, not money: 80 significant digits, rounded
    with localcontext(_ROUNDING):
        n = len(changes)
        mean = sum(changes, _ZERO) / n
        var = sum(((c - mean) ** 2 for c in changes), _ZERO) / (n - 1)
        if var == 0:
            return None
        return float(mean / var.sqrt())


def _inventory_times(trades: Sequence[Trade]) -> tuple[list[tuple[int, int]], int]:
    """Return ([(held_ms, lots)], open lots at the end) by FIFO matching."""
    book: deque[list[int]] = deque()  # [ts_ms, signed lots] of open lots, oldest first
    held: list[tuple[int, int]] = []
    for tr in trades:
        s = 1 if tr.side == "Buy" else -1
        left = tr.qty_lots
        while left and book and (book[0][1] > 0) != (s > 0):
            opened = book[0]
            take = min(left, abs(opened[1]))
            held.append((tr.ts_ms - opened[0], take))
            opened[1] -= take if opened[1] > 0 else -take
            left -= take
            if opened[1] == 0:
                book.popleft()
        if left:
            book.append([tr.ts_ms, s * left])
    return held, sum(abs(b[1]) for b in book)


def _weighted_p(held: Sequence[tuple[int, int]], q: float) -> float:
    ordered = sorted(held)
    total = sum(w for _, w in ordered)
    rank = math.ceil(q * total)
    seen = 0
    for ms, w in ordered:
        seen += w
        if seen >= rank:
            return ms / 1000
    return ordered[-1][0] / 1000


def run_metrics(
    times: Sequence[int],
    equity: Sequence[Decimal],
    trades: Sequence[Trade],
    orders_sent: int,
    *,
    unit: Decimal,
    duration_s: float,
) -> dict[str, Any]:
    """Return the figures defined in the module docstring.

    Parameters
    ----------
    times, equity : sequences
        Sample times (ms) and the exact net PnL at each, in time order.
    trades : sequence of Trade
        This run's fills in time order.
    orders_sent : int
        New orders plus amends sent this run.
    unit : Decimal
        Value of one tick times one lot in quote currency (``Instrument.notional(1, 1)``).
    duration_s : float
        The run's length, for turnover per hour.
    """
    dd, dd_s = _drawdown(times, equity)
    changes = _minute_changes(times, equity)
    sharpe = _sharpe(changes)
    held, open_lots = _inventory_times(trades)
    fills = len(trades)
    with localcontext(_EXACT):
        edge2 = sum(
            (
                ((1 if t.side == "Buy" else -1) * (t.mid2_ticks - 2 * t.price_ticks) * t.qty_lots)
                for t in trades
                if t.mid2_ticks is not None
            ),
            0,
        )
        edge_bps = [
            (1 if t.side == "Buy" else -1) * (t.mid2_ticks - 2 * t.price_ticks) / t.mid2_ticks * 1e4
            for t in trades
            if t.mid2_ticks
        ]
        turnover = sum((t.price_ticks * t.qty_lots for t in trades), 0) * unit
    spread = _div(unit * edge2, 2 * fills) if fills else None
    hours = duration_s / 3600
    held_lots = sum(w for _, w in held)
    return {
        "max_drawdown_quote": format_money(dd),
        "max_drawdown_duration_s": round(dd_s, 3),
        "sharpe_per_minute": None if sharpe is None else round(sharpe, 4),
        "sharpe_annualized": (
            None if sharpe is None else round(sharpe * math.sqrt(MINUTES_PER_YEAR), 2)
        ),
        "whole_minutes": len(changes),
        "fill_ratio": round(fills / orders_sent, 4) if orders_sent else None,
        "avg_time_in_inventory_s": (
            round(sum(ms * w for ms, w in held) / held_lots / 1000, 3) if held_lots else None
        ),
        "p95_time_in_inventory_s": round(_weighted_p(held, 0.95), 3) if held else None,
        "open_lots_at_end": open_lots,
        "realized_spread_per_fill_quote": None if spread is None else format_money(spread),
        "realized_spread_per_fill_bps": (
            round(sum(edge_bps) / len(edge_bps), 3) if edge_bps else None
        ),
        "turnover_quote": format_money(turnover),
        "turnover_per_hour_quote": (
            format_money(_div(turnover, Decimal(repr(hours)))) if hours > 0 else None
        ),
    }


def metrics_text(m: dict[str, Any]) -> str:
    """Return the figures of :func:`run_metrics` as the end-of-run text lines."""
    return "\n".join(
        [
            f"max drawdown {m['max_drawdown_quote']} over {m['max_drawdown_duration_s']} s; "
            f"Sharpe per minute {m['sharpe_per_minute']} (annualized {m['sharpe_annualized']}, "
            f"{m['whole_minutes']} minutes)",
            f"fill ratio {m['fill_ratio']} fills per order sent; time in inventory avg "
            f"{m['avg_time_in_inventory_s']} s, p95 {m['p95_time_in_inventory_s']} s "
            f"({m['open_lots_at_end']} lots still open)",
            f"realized spread per fill {m['realized_spread_per_fill_quote']} "
            f"({m['realized_spread_per_fill_bps']} bps); turnover {m['turnover_quote']} "
            f"({m['turnover_per_hour_quote']} per hour)",
        ]
    )
