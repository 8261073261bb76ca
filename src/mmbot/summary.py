"""The numbers every report shows, from one runner: ``mmbot backtest`` and ``mmbot run``
build their summary.json on :func:`trading_summary` and add what only they know (the
backtest's fill model and data, the live run's venue and feed). :func:`account_totals`
adds up several symbols' runners (the ``total`` of a summary).

Money is an exact plain decimal string (:func:`mmbot.pnl.format_money`), never rounded, so
the parts of an attribution add up to net PnL digit for digit; sizes are integer lots with
the quantity as the instrument writes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Context, Decimal, Inexact, localcontext
from typing import Any

from mmbot.pnl import format_money
from mmbot.runner import Runner

__all__ = ["account_totals", "trading_summary", "signed_qty"]

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


def account_totals(runners: Mapping[str, Runner], account: Any = None) -> dict[str, Any]:
    """Return the sums over ``runners`` (money exact, in quote currency): fills, turnover,
    PnL (realized, unrealized, fees, funding, net), the worst-case gross notional now
    (positions plus working orders at each mark), order counts, and with ``account``
    (:class:`mmbot.risk.AccountRisk`) its caps and kill switch.

    Unrealized and net PnL and the gross notional are None while a symbol has no mark.
    """
    with localcontext(_EXACT):
        return _account_totals(runners, account)


# every sum here must be exact: Inexact turns a silent rounding into an error
_EXACT = Context(prec=80, traps=[Inexact])


def _account_totals(runners: Mapping[str, Runner], account: Any) -> dict[str, Any]:
    realized = fees = funding = turnover = Decimal(0)
    unrealized: Decimal | None = Decimal(0)
    gross: Decimal | None = Decimal(0)
    for r in runners.values():
        pnl = r.pnl
        realized += pnl.realized
        fees += pnl.fees
        funding += pnl.funding
        turnover += pnl.turnover
        mark = r.mark_ticks()
        lots = r.gross_lots()
        if mark is None:
            unrealized = None
            if lots:
                gross = None
            continue
        if unrealized is not None:
            unrealized += pnl.unrealized(mark)
        if gross is not None:
            gross += r.instrument.notional(lots, 1) * mark
    net = None if unrealized is None else realized + unrealized - fees - funding
    out: dict[str, Any] = {
        "symbols": len(runners),
        "fills": sum(r.pnl.fill_count for r in runners.values()),
        "turnover_quote": format_money(turnover),
        "realized_pnl": format_money(realized),
        "unrealized_pnl": None if unrealized is None else format_money(unrealized),
        "fees": format_money(fees),
        "funding": format_money(funding),
        "net_pnl": None if net is None else format_money(net),
        "gross_notional_quote": None if gross is None else format_money(gross),
        "quote_updates": sum(r.quote_updates for r in runners.values()),
        "orders_sent": sum(r.orders_sent for r in runners.values()),
        "risk_pulls": sum(r.risk_pulls for r in runners.values()),
        "max_total_notional_quote": None,
        "max_total_drawdown_quote": None,
        "kill_switch": None,
    }
    if account is not None:
        out["max_total_notional_quote"] = format_money(account.limits.max_total_notional)
        out["max_total_drawdown_quote"] = format_money(account.limits.max_total_drawdown)
        out["kill_switch"] = account.kill_reason if account.killed else None
        out["account_cap_limited"] = account.cap_limited
    return out
