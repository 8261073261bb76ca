"""Backtest/run reports: ``summary.json``, ``timing.json`` and a PNG chart.

``summary.json`` holds only simulated quantities (fills, volume, PnL, fees, inventory,
quote counts, the config) written with sorted keys, so the same backtest writes the same
bytes every time. Wall-clock measurements (tick-to-quote latency, run time) differ from
run to run and go to ``timing.json``; the CLI prints both.

The chart is drawn with matplotlib's Agg canvas directly (no pyplot, no global state):
price panel (mid, the bot's level-0 bid/ask quotes, fills), inventory, net PnL, and the
markout curve (the gross edge at the fill, then the markouts at +1/5/30/60 s, per side).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["write_report", "write_json", "plot_chart"]


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as stable, human-readable JSON (sorted keys, trailing newline)."""
    path.write_text(
        json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8"
    )
    return path


def plot_chart(
    path: Path,
    history,
    *,
    tick_size: str,
    lot_size: str,
    title: str = "",
    markouts: dict[str, Any] | None = None,
    edge: str | None = None,
) -> Path:
    """Draw price/quotes/fills, inventory and net PnL over time into a PNG at ``path``,
    plus the markout curve (total markout vs horizon, per side) when ``markouts`` is given;
    ``edge`` (the gross edge at fill) is its point at 0 s."""
    tick = float(tick_size)
    lot = float(lot_size)
    t0 = history.t_ms[0] if history.t_ms else 0
    ts = [(t - t0) / 1000 for t in history.t_ms]
    fig = Figure(figsize=(11, 10 if markouts else 8), dpi=100)
    FigureCanvasAgg(fig)
    rows = 4 if markouts else 3
    grid = fig.add_gridspec(rows, 1, height_ratios=[3, 1.2, 1.5, 1.6][:rows])
    ax_px = fig.add_subplot(grid[0])
    ax_inv = fig.add_subplot(grid[1], sharex=ax_px)
    ax_pnl = fig.add_subplot(grid[2], sharex=ax_px)
    ax_px.plot(ts, [m * tick for m in history.mid_ticks], color="0.3", lw=0.8, label="mid")
    ax_px.plot(
        ts,
        [b * tick if not math.isnan(b) else b for b in history.bid_ticks],
        color="tab:green",
        lw=0.6,
        alpha=0.8,
        label="our bid",
    )
    ax_px.plot(
        ts,
        [a * tick if not math.isnan(a) else a for a in history.ask_ticks],
        color="tab:red",
        lw=0.6,
        alpha=0.8,
        label="our ask",
    )
    buys = [((t - t0) / 1000, p * tick) for t, s, p, _ in history.fills if s == "Buy"]
    sells = [((t - t0) / 1000, p * tick) for t, s, p, _ in history.fills if s == "Sell"]
    if buys:
        bx, by = zip(*buys, strict=True)
        ax_px.scatter(bx, by, marker="^", s=14, color="tab:green", label="buy fill", zorder=3)
    if sells:
        sx, sy = zip(*sells, strict=True)
        ax_px.scatter(sx, sy, marker="v", s=14, color="tab:red", label="sell fill", zorder=3)
    ax_px.set_ylabel("price")
    ax_px.legend(loc="upper left", fontsize=8, ncol=5)
    ax_px.ticklabel_format(axis="y", useOffset=False, style="plain")
    ax_inv.step(ts, [p * lot for p in history.position_lots], where="post", color="tab:blue")
    ax_inv.axhline(0, color="0.6", lw=0.5)
    ax_inv.set_ylabel("inventory")
    ax_pnl.plot(ts, history.net_pnl, color="tab:purple")
    ax_pnl.axhline(0, color="0.6", lw=0.5)
    ax_pnl.set_ylabel("net PnL (quote)")
    ax_pnl.set_xlabel("simulated seconds")
    if markouts:
        _plot_markouts(fig.add_subplot(grid[3]), markouts, edge)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    # no timestamps or versions in the file, so identical runs give identical PNGs
    fig.savefig(path, format="png", metadata={"Software": None})
    return path


def _plot_markouts(ax, markouts: dict[str, Any], edge: str | None) -> None:
    # plotting only: the exact Decimal values are in summary.json
    horizons = sorted(markouts, key=lambda k: int(k.rstrip("s")))
    xs = [int(h.rstrip("s")) for h in horizons]
    total = [float(markouts[h]["total"]) for h in horizons]
    if edge is not None:
        xs, total = [0, *xs], [float(edge), *total]
    ax.plot(xs, total, marker="o", color="tab:purple", label="all fills")
    for side, color in (("Buy", "tab:green"), ("Sell", "tab:red")):
        ax.plot(
            [int(h.rstrip("s")) for h in horizons],
            [float(markouts[h]["per_side"][side]) for h in horizons],
            marker=".",
            lw=0.8,
            color=color,
            label=f"{side.lower()} fills",
        )
    ax.axhline(0, color="0.6", lw=0.5)
    ax.set_xlabel("seconds after the fill")
    ax.set_ylabel("markout (quote)")
    ax.legend(loc="upper right", fontsize=8, ncol=3)


def write_report(out_dir: str | Path, result, *, chart: bool = True) -> dict[str, Path]:
    """Write ``summary.json``, ``timing.json`` and (unless ``chart=False``) ``chart.png``.

    Parameters
    ----------
    out_dir : path
        Created if missing.
    result : mmbot.backtest.BacktestResult

    Returns
    -------
    dict
        ``{"summary": path, "timing": path, "chart": path}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if len(result.runners) > 1:
        return _write_many(out, result, chart=chart)
    paths = {}
    summary = dict(result.summary)
    if chart:
        summary["chart_file"] = "chart.png"
    paths["summary"] = write_json(out / "summary.json", summary)
    paths["timing"] = write_json(out / "timing.json", result.timing)
    if chart:
        s = result.summary
        title = (
            f"{s['symbol']} {s['model']} seed {s['seed']}: {s['fills']} fills, "
            f"net PnL {s['net_pnl']}, max inventory {s['max_inventory_qty']}"
        )
        sim = result.config.sim
        paths["chart"] = plot_chart(
            out / "chart.png",
            result.runner.history,
            tick_size=sim.tick_size,
            lot_size=sim.lot_size,
            title=title,
            markouts=s.get("markouts"),
            edge=s.get("attribution", {}).get("gross_edge"),
        )
    return paths


def _write_many(out: Path, result, *, chart: bool) -> dict[str, Path]:
    """The report of a multi-symbol backtest: one summary and timing, a chart per symbol
    (``chart-SYMBOL.png``, named in that symbol's summary)."""
    summary = dict(result.summary)
    per = {sym: dict(one) for sym, one in summary["symbols"].items()}
    summary["symbols"] = per
    charts: dict[str, Path] = {}
    if chart:
        for sym, one in per.items():
            one["chart_file"] = f"chart-{sym}.png"
            inst = result.runners[sym].instrument
            charts[f"chart-{sym}"] = plot_chart(
                out / one["chart_file"],
                result.runners[sym].history,
                tick_size=inst.tick_size,
                lot_size=inst.lot_size,
                title=(
                    f"{sym} {one['model']} seed {one['seed']}: {one['fills']} fills, "
                    f"net PnL {one['net_pnl']}, max inventory {one['max_inventory_qty']}"
                ),
                markouts=one.get("markouts"),
                edge=one.get("attribution", {}).get("gross_edge"),
            )
    return {
        "summary": write_json(out / "summary.json", summary),
        "timing": write_json(out / "timing.json", result.timing),
        **charts,
    }
