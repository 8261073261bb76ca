"""Live terminal dashboard for ``mmbot run`` (rich): book top, own quotes, inventory, PnL,
fills, message rate and feed latency. It only reads a :func:`snapshot` dict, built on the
runner's thread, so rendering never touches the book or the order manager directly.

One symbol gets the detailed panel; several get a table with a row per symbol (book top,
our quotes, position, net PnL, fills, sync, frame age, risk) and a total row (the
account's net PnL, fills and gross notional against its cap).
"""

from __future__ import annotations

from rich.console import Group
from rich.panel import Panel
from rich.table import Table

__all__ = ["render"]


def _fmt(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def render(s: dict):
    """Return a rich renderable for one dashboard snapshot (see ``commands.run``)."""
    if len(s.get("rows") or ()) > 1:
        return _render_symbols(s)
    top = Table.grid(padding=(0, 2))
    top.add_column(justify="right", style="bold")
    top.add_column()
    top.add_column(justify="right", style="bold")
    top.add_column()
    top.add_row("symbol", s["symbol"], "venue", s["venue"])
    top.add_row(
        "best bid", f"{s['bid']}  x {s['bid_qty']}", "best ask", f"{s['ask']}  x {s['ask_qty']}"
    )
    top.add_row("our bid", s["our_bid"], "our ask", s["our_ask"])
    top.add_row("position", s["position"], "open orders", str(s["open_orders"]))
    top.add_row("net PnL", _fmt(s["net_pnl"], 4), "fees", _fmt(s["fees"], 4))
    top.add_row("fills", str(s["fills"]), "volume", s["volume"])
    top.add_row(
        "book",
        "synced" if s["synced"] else "[red]OUT OF SYNC[/red]",
        "venue link",
        "up" if s["connected"] else "[red]down[/red]",
    )
    top.add_row("risk", s["risk"] or "ok", "resyncs", str(s["resyncs"]))
    top.add_row("msgs/s", _fmt(s["msg_rate"], 1), "frames", str(s["frames"]))
    top.add_row(
        "feed hop p50",
        f"{_fmt(s['feed_p50_us'], 1)} µs",
        "tick->quote p50",
        f"{_fmt(s['t2q_p50_us'], 1)} µs",
    )
    if s.get("frame_age_ms") is not None:  # live: receive time minus the exchange's stamp
        top.add_row("frame age", f"{_fmt(s['frame_age_ms'], 1)} ms", "", "")
    top.add_row(
        "elapsed",
        f"{s['elapsed_s']:.1f} s",
        "remaining",
        "-" if s["remaining_s"] is None else f"{s['remaining_s']:.1f} s",
    )
    if s.get("last_reload"):
        top.add_row("config reload", s["last_reload"], "", "")
    recent = Table(title="recent fills", expand=True)
    for col in ("time", "side", "price", "qty"):
        recent.add_column(col)
    for row in s["recent_fills"][-5:]:
        recent.add_row(*row)
    return Panel(Group(top, recent), title="mmbot run", subtitle=_keys(s))


def _keys(s: dict) -> str:
    if s.get("keys", True):
        return "r re-reads the config · q or Ctrl-C cancels all and exits"
    return "Ctrl-C cancels all and exits"


def _render_symbols(s: dict):
    rows, total = s["rows"], s["total"]
    head = Table.grid(padding=(0, 2))
    for _ in range(4):
        head.add_column()
    head.add_row(
        "venue",
        s["venue"],
        "venue link",
        "up" if s["connected"] else "[red]down[/red]",
    )
    head.add_row("msgs/s", _fmt(s["msg_rate"], 1), "resyncs", str(s["resyncs"]))
    if s.get("last_reload"):
        head.add_row("config reload", s["last_reload"], "", "")
    head.add_row(
        "feed hop p50",
        f"{_fmt(s['feed_p50_us'], 1)} µs",
        "elapsed",
        f"{s['elapsed_s']:.1f} s"
        + ("" if s["remaining_s"] is None else f" ({s['remaining_s']:.1f} s left)"),
    )
    table = Table(expand=True)
    for col in (
        "symbol",
        "bid",
        "ask",
        "our bid",
        "our ask",
        "position",
        "net PnL",
        "fills",
        "book",
        "age ms",
        "risk",
    ):
        table.add_column(col, justify="left" if col in ("symbol", "risk") else "right")
    for r in rows:
        table.add_row(
            r["symbol"],
            r["bid"],
            r["ask"],
            r["our_bid"],
            r["our_ask"],
            r["position"],
            _fmt(r["net_pnl"]),
            str(r["fills"]),
            "synced" if r["synced"] else "[red]OUT[/red]",
            _fmt(r["frame_age_ms"], 1),
            r["risk"] or "ok",
        )
    gross = total["gross_notional_quote"]
    cap = total["max_total_notional_quote"]
    table.add_row(
        "[bold]total[/bold]",
        "",
        "",
        "",
        "",
        f"gross {_fmt(gross)}" + (f" / {cap}" if cap else ""),
        _fmt(total["net_pnl"]),
        str(total["fills"]),
        "",
        "",
        total["kill_switch"] or "",
        style="bold",
    )
    return Panel(Group(head, table), title="mmbot run", subtitle=_keys(s))
