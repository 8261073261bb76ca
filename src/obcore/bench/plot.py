"""Render the runner's JSON results as one PNG (matplotlib, Agg backend)."""

from __future__ import annotations

import os

__all__ = ["render"]

_COLORS = {
    "order-book": "#7f7f7f",
    "sorteddict": "#bcbd22",
    "pybit": "#d62728",
    "reference": "#9467bd",
}
_OBCORE = ["#1f77b4", "#2ca02c", "#17becf", "#ff7f0e", "#8c564b", "#e377c2"]


def _color(name: str, obcore_names: list[str]) -> str:
    if name in _COLORS:
        return _COLORS[name]
    return _OBCORE[obcore_names.index(name) % len(_OBCORE)] if name in obcore_names else "k"


def render(results: dict, path: str) -> str:
    """Write a 2x2 chart of ``results`` (the runner's JSON) to ``path``; return the path.

    Panels: ns per level update and µs per message on the main workload (log scale,
    lower is better), read costs after each message, and ns per level update against
    book depth (log-log).
    """
    import matplotlib  # noqa: PLC0415 - optional dependency, only for the chart

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    main = results["main"]
    peers = [p for p in results["peers"] if p in main]
    obcore_names = [p for p in peers if p.startswith("obcore-")]
    colors = [_color(p, obcore_names) for p in peers]
    wl = results["workload"]
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))

    def bars(ax, key, title, unit):
        vals = [main[p].get(key) for p in peers]
        names = [p for p, v in zip(peers, vals, strict=True) if v]
        cols = [c for c, v in zip(colors, vals, strict=True) if v]
        vals = [v for v in vals if v]
        ax.barh(names, vals, color=cols)
        ax.set_xscale("log")
        ax.invert_yaxis()
        ax.set_xlabel(f"{unit} (log scale, lower is better)")
        ax.set_title(title)
        for y, v in enumerate(vals):
            ax.text(v, y, f" {v:,.0f}" if v >= 10 else f" {v:.2f}", va="center", fontsize=8)
        ax.grid(axis="x", which="both", alpha=0.3)

    bars(axes[0][0], "level_ns", "Level update from parsed [price, size] strings", "ns / level")
    bars(axes[0][1], "frame_us", "Whole message from raw frame text", "µs / message")

    ax = axes[1][0]
    reads = ["best_ns", "top10_ns", "vwap_ns"]
    width = 0.8 / max(1, len(peers))
    for i, (p, c) in enumerate(zip(peers, colors, strict=True)):
        vals = [max(main[p].get(r) or 0, 1) for r in reads]
        ax.bar([x + i * width for x in range(len(reads))], vals, width, label=p, color=c)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(reads))])
    ax.set_xticklabels(["best bid/ask", "top-10 depth", "VWAP"])
    ax.set_yscale("log")
    ax.set_ylabel("ns per read after each message (log)")
    ax.set_title("Reads after every write")
    # Headroom above the tallest bar keeps the legend off the bars on a log axis.
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi * 30)
    ax.legend(fontsize=7, ncol=4, loc="upper center")
    ax.grid(axis="y", which="both", alpha=0.3)

    ax = axes[1][1]
    scaling = results.get("scaling", {})
    depths = sorted(int(d) for d in scaling)
    for p, c in zip(peers, colors, strict=True):
        pts = [(d, scaling[str(d)][p]) for d in depths if scaling[str(d)].get(p)]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", label=p, color=c)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("levels a side")
    ax.set_ylabel("ns per level update (log)")
    ax.set_title("Scaling with book size" if depths else "Scaling: not measured")
    if depths:
        ax.legend(fontsize=7, ncol=2)
    ax.grid(which="both", alpha=0.3)

    m = results.get("machine", {})
    fig.suptitle(
        f"obcore vs peers: {wl['name']} ({wl['depth']} levels a side, "
        f"{wl['deltas']} deltas, {wl['mean_levels_per_delta']:.1f} levels/delta); "
        f"{m.get('cpu', '?')}, Python {m.get('python', '?')}",
        fontsize=10,
    )
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
