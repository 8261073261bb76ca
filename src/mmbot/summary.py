"""The numbers every report shows, from one runner: ``mmbot backtest`` and ``mmbot run``
build their summary.json on :func:`trading_summary` and add what only they know (the
backtest's fill model and data, the live run's venue and feed).

Money is an exact plain decimal string (:func:`mmbot.pnl.format_money`), never rounded, so
the parts of an attribution add up to net PnL digit for digit; sizes are integer lots with
the quantity as the instrument writes it.
"""

from __future__ import annotations

from typing import Any

from mmbot.pnl import format_money
from mmbot.runner import Runner

__all__ = ["trading_summary", "signed_qty"]

_POST_ONLY_REJECT = "EC_PostOnlyWillTakeLiquidity"


def signed_qty(instrument: Any, lots: int) -> str:
    """Return a signed position as the instrument writes quantities (``-0.003``)."""
    return instrument.qty_str(lots) if lots >= 0 else "-" + instrument.qty_str(-lots)


def trading_summary(runner: Runner) -> dict[str, Any]:
    """Return fills, volume, PnL (realized, unrealized, fees, funding, net), inventory, the
    mark, and the quote and order counts of ``runner``'s run."""
    inst, pnl, orders = runner.instrument, runner.pnl, runner.orders
    mark = runner.mark_ticks()
    mark_price = runner.mark_price()
    statuses: dict[str, int] = {}
    for m in orders.orders.values():
        statuses[m.status.value] = statuses.get(m.status.value, 0) + 1
    return {
        "frames": runner.frames,
        "fills": pnl.fill_count,
        "maker_fills": pnl.maker_fills,
        "volume_lots": pnl.volume_lots,
        "volume_qty": inst.qty_str(pnl.volume_lots),
        "turnover_quote": format_money(pnl.turnover),
        "realized_pnl": format_money(pnl.realized),
        "unrealized_pnl": None if mark is None else format_money(pnl.unrealized(mark)),
        "fees": format_money(pnl.fees),
        "funding": format_money(pnl.funding),
        "net_pnl": None if mark is None else format_money(pnl.net(mark)),
        "final_position_lots": pnl.position_lots,
        "final_position_qty": signed_qty(inst, pnl.position_lots),
        "max_inventory_lots": pnl.max_abs_position_lots,
        "max_inventory_qty": inst.qty_str(pnl.max_abs_position_lots),
        "mark_price": None if mark_price is None else format_money(mark_price),
        "quote_updates": runner.quote_updates,
        "orders_sent": runner.orders_sent,
        "requests_sent": orders.requests_sent,
        "rate_limit_deferrals": orders.rate_deferrals,
        "rate_limit_deferrals_by_side": dict(orders.deferrals_by_side),
        "amends_by_side": dict(orders.amends_by_side),
        "cap_deferrals": orders.cap_deferrals,
        "request_errors": orders.request_errors,
        "post_only_rejects": sum(
            1 for m in orders.orders.values() if m.reject_reason == _POST_ONLY_REJECT
        ),
        "order_statuses": dict(sorted(statuses.items())),
        "risk_pulls": runner.risk_pulls,
        "flattens": runner.flattens,
        "book_errors": runner.book_errors,
    }
