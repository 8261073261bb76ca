"""Trades export: every fill of a run as a CSV (or Parquet) table, for notebooks.

``mmbot backtest --trades FILE`` and ``mmbot run --trades FILE`` write the runner's fills
(:class:`mmbot.metrics.Trade`) with these columns:

``time`` (ISO 8601 UTC, milliseconds), ``ts_ms``, ``exec_id``, ``side`` (Buy/Sell),
``price``, ``qty``, ``fee`` (quote currency, positive when paid, negative a rebate),
``liquidity`` (maker/taker), ``level`` (ladder level; ``flatten`` for a flatten order,
empty when the order is not one of this run's quotes) and ``mid`` (the mid at the fill:
the exchange's at the match in a backtest, the runner's book when it booked the fill live;
empty without a two-sided book).

Prices, sizes, fees and mids are exact decimal strings in both formats (a float column
would round money). ``.parquet`` needs pyarrow; without it the command stops before the
run with one line (:func:`check_trades_path`).
"""

from __future__ import annotations

import csv
import importlib.util
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from mmbot.config import ConfigError
from mmbot.metrics import Trade
from mmbot.orders import FLATTEN_LEVEL

__all__ = [
    "COLUMNS",
    "check_trades_path",
    "symbol_path",
    "trade_rows",
    "write_all_trades",
    "write_trades",
]

COLUMNS = ("time", "ts_ms", "exec_id", "side", "price", "qty", "fee", "liquidity", "level", "mid")
_FORMATS = {".csv": "csv", ".parquet": "parquet"}


def _have_pyarrow() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


def check_trades_path(path: str | os.PathLike[str]) -> str:
    """Return the format (``"csv"`` or ``"parquet"``) of ``path``, before any run starts.

    Raises
    ------
    ConfigError
        For another extension, or ``.parquet`` without pyarrow installed.
    """
    where = os.fspath(path)
    fmt = _FORMATS.get(Path(where).suffix.lower())
    if fmt is None:
        raise ConfigError(f"--trades {where}: expected a .csv or .parquet file name")
    if fmt == "parquet" and not _have_pyarrow():
        raise ConfigError(
            f"--trades {where}: Parquet needs pyarrow (pip install pyarrow); or write .csv"
        )
    return fmt


def symbol_path(path: str | os.PathLike[str], symbol: str) -> str:
    """Return ``path`` with ``-SYMBOL`` before its extension (one file per symbol of a
    multi-symbol run: ``fills.csv`` -> ``fills-ETHUSDT.csv``)."""
    p = Path(path)
    return os.fspath(p.with_name(f"{p.stem}-{symbol}{p.suffix}"))


def _decimal_str(d: Decimal) -> str:
    return format(d.normalize() + 0, "f")


def trade_rows(trades: Sequence[Trade], instrument: Any) -> list[dict[str, str | int]]:
    """Return one dict per fill with :data:`COLUMNS` as keys (exact strings for money)."""
    tick = instrument.price(1)
    rows = []
    for t in trades:
        level: str | int = ""
        if t.level == FLATTEN_LEVEL:
            level = "flatten"
        elif t.level is not None:
            level = t.level
        rows.append(
            {
                "time": datetime.fromtimestamp(t.ts_ms / 1000, UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                "ts_ms": t.ts_ms,
                "exec_id": t.exec_id,
                "side": t.side,
                "price": instrument.price_str(t.price_ticks),
                "qty": instrument.qty_str(t.qty_lots),
                "fee": _decimal_str(t.fee),
                "liquidity": "maker" if t.is_maker else "taker",
                "level": level,
                "mid": "" if t.mid2_ticks is None else _decimal_str(tick * t.mid2_ticks / 2),
            }
        )
    return rows


def write_trades(path: str | os.PathLike[str], trades: Sequence[Trade], instrument: Any) -> Path:
    """Write ``trades`` to ``path`` (.csv, or .parquet with pyarrow); return the path.

    Raises
    ------
    ConfigError
        As :func:`check_trades_path`.
    """
    fmt = check_trades_path(path)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = trade_rows(trades, instrument)
    if fmt == "csv":
        with out.open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(rows)
        return out
    import pyarrow as pa  # noqa: PLC0415 - optional, checked above
    import pyarrow.parquet as pq  # noqa: PLC0415

    columns = {c: [r[c] for r in rows] for c in COLUMNS}
    # level mixes ints and "flatten": a string column, like the money ones
    columns["level"] = [str(v) for v in columns["level"]]
    schema = pa.schema([(c, pa.int64() if c == "ts_ms" else pa.string()) for c in COLUMNS])
    pq.write_table(pa.table(columns, schema=schema), out)
    return out


def write_all_trades(path: str | os.PathLike[str], runners: Mapping[str, Any]) -> dict[str, Path]:
    """Write each runner's fills (:func:`write_trades`): to ``path`` for one runner, to
    :func:`symbol_path` files for several; return ``{"trades" or "trades SYMBOL": path}``."""
    if len(runners) == 1:
        (r,) = runners.values()
        return {"trades": write_trades(path, r.trades, r.instrument)}
    return {
        f"trades {sym}": write_trades(symbol_path(path, sym), r.trades, r.instrument)
        for sym, r in runners.items()
    }
