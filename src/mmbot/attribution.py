"""Where the PnL came from: attribution of net PnL and fill markouts, exact Decimal money.

Every fill ``i`` (side ``s_i`` = +1 for a buy, -1 for a sell; price ``p_i``, size ``q_i``,
fee ``f_i``) happened while the market mid was ``m_i``. With ``M`` the mark at the end
(the price net PnL is valued at) and ``u`` the value of one tick times one lot::

    gross_edge    = sum s_i * (m_i - p_i) * q_i * u     what the quotes earned vs the mid
    inventory_pnl = sum s_i * (M - m_i) * q_i * u       what holding the fills earned after
    fees          = -sum f_i                            a rebate is positive
    funding       = -funding paid                       (received is positive)

    gross_edge + inventory_pnl = sum s_i * (M - p_i) * q_i * u = realized + unrealized
    gross_edge + inventory_pnl + fees + funding = net_pnl                        exactly

The markout of a fill at horizon ``h`` is ``s_i * (mid(t_i + h) - p_i) * q_i * u``: the edge
still left ``h`` after the fill. Falling markouts mean adverse selection. A fill whose
horizon runs past the end of the data is left out of that horizon (``fills`` says how many
were counted).

Public API
----------
MARKOUT_HORIZONS_S, attribute, markouts, explain_run, AttributionError.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, localcontext
from typing import Any

from mmbot.pnl import _EXACT
from mmbot.sim.engine import FillRecord

__all__ = ["MARKOUT_HORIZONS_S", "AttributionError", "attribute", "explain_run", "markouts"]

#: markout horizons in seconds (summary keys "1s", "5s", "30s", "60s")
MARKOUT_HORIZONS_S = (1, 5, 30, 60)

_ZERO = Decimal(0)


class AttributionError(ValueError):
    """The attribution parts do not add up to net PnL (the fills and the PnL disagree)."""


def _sign(side: str) -> int:
    return 1 if side == "Buy" else -1


def attribute(
    fills: Sequence[FillRecord],
    *,
    mark_ticks: int | Decimal | None,
    unit: Decimal,
    net_pnl: Decimal,
    fees: Decimal | None = None,
    funding: Decimal = _ZERO,
) -> dict[str, Decimal]:
    """Return ``{"gross_edge", "inventory_pnl", "fees", "funding"}`` summing to ``net_pnl``.

    Parameters
    ----------
    fills : sequence of FillRecord
        Every fill of the run, with the mid at the fill (a fill without a two-sided book
        counts its own price as the mid: no edge).
    mark_ticks : int, Decimal or None
        The end mark net PnL was valued at, in (possibly fractional) ticks (None: no book,
        only valid when flat).
    unit : Decimal
        Value of one tick times one lot in quote currency.
    net_pnl : Decimal
        The run's net PnL, checked against the sum.
    fees : Decimal, optional
        Fees paid in total (instead of the fills' own ``fee``).
    funding : Decimal
        Funding paid in total (negative when received).

    Raises
    ------
    AttributionError
        If the parts do not sum to ``net_pnl`` exactly.
    """
    # in half-tick-lots: mids are (bid + ask) / 2; a fractional mark makes inv2 a Decimal
    edge2 = 0
    inv2: int | Decimal = 0
    fee_part = _ZERO
    position = 0
    with localcontext(_EXACT):
        for f in fills:
            s = _sign(f.side)
            mid2 = f.mid2_ticks if f.mid2_ticks is not None else 2 * f.price_ticks
            edge2 += s * (mid2 - 2 * f.price_ticks) * f.qty_lots
            if mark_ticks is not None:
                inv2 += s * (2 * mark_ticks - mid2) * f.qty_lots
            fee_part -= f.fee
            position += s * f.qty_lots
        if mark_ticks is None and position:
            raise AttributionError("cannot value an open position without a mark")
        parts = {
            "gross_edge": unit * edge2 / 2,
            "inventory_pnl": unit * inv2 / 2,
            "fees": fee_part if fees is None else -fees,
            "funding": -funding,
        }
        total = sum(parts.values(), _ZERO)
    if total != net_pnl:
        raise AttributionError(
            f"attribution sums to {total}, net PnL is {net_pnl} ({len(fills)} fills)"
        )
    return parts


def _mid2_at(times: Sequence[int], mids2: Sequence[int], t_ms: int) -> int | None:
    i = bisect_right(times, t_ms) - 1
    return mids2[i] if i >= 0 else None


def markouts(
    fills: Iterable[FillRecord],
    mid_log: Sequence[tuple[int, int]],
    *,
    unit: Decimal,
    level_of: Mapping[str, Any] | None = None,
    horizons_s: Sequence[int] = MARKOUT_HORIZONS_S,
) -> dict[str, dict[str, Any]]:
    """Return markouts keyed ``"1s"``, ``"5s"``, ...: totals, per side and per ladder level.

    Parameters
    ----------
    fills : iterable of FillRecord
    mid_log : sequence of (ts_ms, bid + ask in ticks)
        The market mid at each change, in time order (``MatchingEngine.mid_log``).
    unit : Decimal
        Value of one tick times one lot.
    level_of : mapping, optional
        orderLinkId -> ladder level (anything str()-able); unknown links count as "other".
    """
    fills = list(fills)
    times = [t for t, _ in mid_log]
    mids2 = [m for _, m in mid_log]
    end_ms = times[-1] if times else None
    levels = level_of or {}
    out: dict[str, dict[str, Any]] = {}
    with localcontext(_EXACT):
        for h in horizons_s:
            total2 = 0
            counted = 0
            per_side: dict[str, int] = {"Buy": 0, "Sell": 0}
            per_level: dict[str, int] = {}
            for f in fills:
                t = f.ts_ms + h * 1000
                if end_ms is None or t > end_ms:
                    continue
                mid2 = _mid2_at(times, mids2, t)
                if mid2 is None:
                    continue
                v2 = _sign(f.side) * (mid2 - 2 * f.price_ticks) * f.qty_lots
                total2 += v2
                counted += 1
                per_side[f.side] += v2
                key = str(levels.get(f.order_link_id, "other"))
                per_level[key] = per_level.get(key, 0) + v2
            out[f"{h}s"] = {
                "total": unit * total2 / 2,
                "fills": counted,
                "per_side": {k: unit * v / 2 for k, v in per_side.items()},
                "per_level": {k: unit * v / 2 for k, v in sorted(per_level.items())},
            }
    return out


def explain_run(
    history: Any,
    pnl: Any,
    mark_ticks: int | Decimal | None,
    unit: Decimal,
    level_of: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Attribution and markouts of a live run, from the runner's own record.

    A live bot sees no exchange-side mid at each fill; the mid is the runner's sampled
    book mid (``history``, every few hundred ms) at or before the fill, so the split between
    gross edge and inventory is approximate while the sum is still exactly ``net_pnl``.
    Returns ``{"attribution": ..., "markouts": ...}`` with decimal strings, or both None and
    a ``"why"`` when the run's fills are not all in ``history`` (a restart restored some).
    """
    fills = history.fills
    if len(fills) != pnl.fill_count or mark_ticks is None and pnl.position_lots:
        return {
            "attribution": None,
            "markouts": None,
            "why": "restored fills or no mark: the run's own record does not cover net PnL",
        }
    times = list(history.t_ms)
    mids2 = [round(2 * m) for m in history.mid_ticks]
    mid_log = list(zip(times, mids2, strict=True))
    records = []
    for i, (t, side, price, lots) in enumerate(fills):
        mid2 = _mid2_at(times, mids2, t)
        records.append(FillRecord(f"f{i}", "", t, side, price, lots, _ZERO, True, mid2))
    parts = attribute(
        records,
        mark_ticks=mark_ticks,
        unit=unit,
        net_pnl=pnl.net(mark_ticks),
        fees=pnl.fees,
        funding=pnl.funding,
    )
    marks = markouts(records, mid_log, unit=unit, level_of=level_of)
    return {"attribution": _strings(parts), "markouts": _strings(marks)}


def _strings(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strings(v) for k, v in node.items()}
    if isinstance(node, Decimal):
        return format(node.normalize() + 0, "f")
    return node
