"""What a trial is judged on: figures of one or more backtests, and the objectives over them.

The backtest summary gives net PnL and the largest |inventory| exactly. The per-minute PnL,
the drawdown and the mean |inventory| come from the runner's sampled history (every 250 ms by
default). The runner keeps those samples as floats; they are quantized back to the summary's
money quantum (1e-8), which restores the exact value for any PnL below about 1e7.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mmbot.sweep.errors import TrialError

__all__ = ["OBJECTIVES", "Objective", "TrialMetrics", "metrics_from_result", "combine"]

_QUANTUM = Decimal("1e-8")
_MINUTE_MS = 60_000

#: objective name -> what it means (every objective is maximized)
OBJECTIVES = {
    "net_pnl": "net PnL in quote currency (realized + unrealized - fees), summed over the data",
    "sharpe": "mean / standard deviation of per-minute net PnL changes (not annualized)",
    "inventory": "net PnL minus --inventory-charge per unit of time-averaged |inventory|",
}


def _money(x: float | Decimal) -> Decimal:
    d = x if isinstance(x, Decimal) else Decimal(repr(x))
    return d.quantize(_QUANTUM) + 0


def _text(d: Decimal) -> str:
    return format(d.normalize() + 0, "f")


@dataclass(frozen=True)
class TrialMetrics:
    """The figures of one trial; money is Decimal."""

    net_pnl: Decimal
    fills: int
    max_inventory_qty: Decimal
    mean_abs_inventory_qty: Decimal
    max_drawdown_quote: Decimal
    minute_pnl: tuple[Decimal, ...]

    def sharpe(self) -> float:
        """Sharpe ratio of the per-minute PnL changes.

        Raises
        ------
        TrialError
            With fewer than two whole minutes of data, or a flat nonzero series.
        """
        if len(self.minute_pnl) < 2:
            raise TrialError(
                f"sharpe needs at least 2 whole minutes of data, got {len(self.minute_pnl)}"
            )
        if len(set(self.minute_pnl)) == 1:
            if self.minute_pnl[0] == 0:  # never traded: no edge and no risk
                return 0.0
            raise TrialError("sharpe is undefined: per-minute PnL never varies")
        values = [float(x) for x in self.minute_pnl]  # a ratio, not money
        return statistics.fmean(values) / statistics.stdev(values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "net_pnl": _text(self.net_pnl),
            "fills": self.fills,
            "max_inventory_qty": _text(self.max_inventory_qty),
            "mean_abs_inventory_qty": _text(self.mean_abs_inventory_qty),
            "max_drawdown_quote": _text(self.max_drawdown_quote),
            "minutes": len(self.minute_pnl),
        }


def metrics_from_result(result: Any) -> TrialMetrics:
    """Figures of one :class:`mmbot.backtest.BacktestResult`."""
    s = result.summary
    h = result.runner.history
    lot = Decimal(result.config.sim.lot_size)
    net = Decimal(s["net_pnl"])
    series = [_money(v) for v in h.net_pnl] + [net]
    peak = Decimal(0)
    drawdown = Decimal(0)
    for v in series:
        peak = max(peak, v)
        drawdown = max(drawdown, peak - v)
    minutes: list[Decimal] = []
    if h.t_ms:
        t0 = h.t_ms[0]
        prev = _money(h.net_pnl[0])
        boundary = t0 + _MINUTE_MS
        last = prev
        for t, v in zip(h.t_ms, h.net_pnl, strict=True):
            while t > boundary:  # the sample at or before each minute mark closes that minute
                minutes.append(last - prev)
                prev = last
                boundary += _MINUTE_MS
            last = _money(v)
        if h.t_ms[-1] == boundary:
            minutes.append(last - prev)
    if h.position_lots:
        mean_abs = Decimal(sum(abs(p) for p in h.position_lots)) / len(h.position_lots) * lot
    else:
        mean_abs = Decimal(0)
    return TrialMetrics(
        net_pnl=net,
        fills=int(s["fills"]),
        max_inventory_qty=Decimal(s["max_inventory_qty"]),
        mean_abs_inventory_qty=_money(mean_abs),
        max_drawdown_quote=drawdown,
        minute_pnl=tuple(minutes),
    )


def combine(parts: Sequence[TrialMetrics]) -> TrialMetrics:
    """One trial over several data files: PnL adds up, the worst inventory and drawdown count,
    and the per-minute series are pooled."""
    return TrialMetrics(
        net_pnl=sum((p.net_pnl for p in parts), Decimal(0)),
        fills=sum(p.fills for p in parts),
        max_inventory_qty=max(p.max_inventory_qty for p in parts),
        mean_abs_inventory_qty=sum((p.mean_abs_inventory_qty for p in parts), Decimal(0)),
        max_drawdown_quote=max(p.max_drawdown_quote for p in parts),
        minute_pnl=tuple(m for p in parts for m in p.minute_pnl),
    )


@dataclass(frozen=True)
class Objective:
    """An objective by name, with its parameters and the optional constraints."""

    name: str = "net_pnl"
    inventory_charge: Decimal | None = None
    max_inventory_qty: Decimal | None = None
    max_drawdown_quote: Decimal | None = None

    def score(self, m: TrialMetrics) -> tuple[float, str | None]:
        """The value optuna maximizes, and its exact decimal text where it is money."""
        if self.name == "net_pnl":
            return float(m.net_pnl), _text(m.net_pnl)
        if self.name == "inventory":
            assert self.inventory_charge is not None  # checked when the sweep is set up
            v = m.net_pnl - self.inventory_charge * m.mean_abs_inventory_qty
            return float(v), _text(v)
        if self.name == "sharpe":
            return m.sharpe(), None
        raise ValueError(f"unknown objective {self.name!r}")  # checked when the sweep is set up

    def constraints(self, m: TrialMetrics) -> dict[str, float]:
        """optuna's convention: a trial is feasible when every value is <= 0."""
        out = {}
        if self.max_inventory_qty is not None:
            out["max_inventory_qty"] = float(m.max_inventory_qty - self.max_inventory_qty)
        if self.max_drawdown_quote is not None:
            out["max_drawdown_quote"] = float(m.max_drawdown_quote - self.max_drawdown_quote)
        return out

    @property
    def constrained(self) -> bool:
        return self.max_inventory_qty is not None or self.max_drawdown_quote is not None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "direction": "maximize",
            "meaning": OBJECTIVES[self.name],
        }
        if self.inventory_charge is not None:
            d["inventory_charge"] = _text(self.inventory_charge)
        if self.constrained:
            d["constraints"] = {
                k: _text(v)
                for k, v in (
                    ("max_inventory_qty", self.max_inventory_qty),
                    ("max_drawdown_quote", self.max_drawdown_quote),
                )
                if v is not None
            }
        return d
