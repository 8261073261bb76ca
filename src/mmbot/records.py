"""Durable records of orders, fills and PnL snapshots in SQLite, so a restart loses nothing.

One file, WAL mode (readers such as a dashboard never block the writer), each write its own
transaction. Writes are idempotent, so replaying the venue's history after a restart is
safe:

- fills are keyed by the venue's execution id; a second insert of the same id is ignored
  (:meth:`Records.record_fill` returns False);
- orders are keyed by ``order_link_id`` (or the venue ``order_id`` when there is none) and
  only a newer or equal ``updated_ms`` replaces the stored state;
- PnL snapshots are keyed by timestamp;
- the risk state (the kill-switch latch and the PnL peak the drawdown is measured from) is
  one row per key, so a bot killed after its kill switch tripped stays killed on restart;
- config reloads (``mmbot run`` on SIGHUP), accepted or refused, are a log
  (:meth:`Records.record_reload`).

The schema is versioned (``PRAGMA user_version``, :data:`SCHEMA_VERSION`); an older file is
migrated in place, one version at a time (``_MIGRATIONS``), and a newer one is refused.

Money is stored as decimal text and read back as ``Decimal``; prices and sizes as integer
ticks and lots.

Public API
----------
Records, QueuedRecords (writes from any thread, applied by the owner), OrderRecord,
FillRecord, RiskState.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from mmbot.pnl import as_decimal

__all__ = ["FillRecord", "OrderRecord", "QueuedRecords", "Records", "RiskState"]

SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    key TEXT PRIMARY KEY,
    order_link_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    price_ticks INTEGER NOT NULL,
    qty_lots INTEGER NOT NULL,
    filled_lots INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    reject_reason TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS fills (
    exec_id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    order_link_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    price_ticks INTEGER NOT NULL,
    qty_lots INTEGER NOT NULL,
    fee TEXT NOT NULL,
    is_maker INTEGER NOT NULL,
    exec_ms INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    exec_type TEXT NOT NULL DEFAULT 'Trade'
);
CREATE INDEX IF NOT EXISTS fills_by_seq ON fills(seq);
CREATE TABLE IF NOT EXISTS pnl_snapshots (
    ts_ms INTEGER PRIMARY KEY,
    position_lots INTEGER NOT NULL,
    mark_ticks INTEGER,
    realized TEXT NOT NULL,
    unrealized TEXT NOT NULL,
    fees TEXT NOT NULL,
    net TEXT NOT NULL,
    turnover TEXT NOT NULL,
    volume_lots INTEGER NOT NULL,
    fills INTEGER NOT NULL,
    max_abs_position_lots INTEGER NOT NULL,
    funding TEXT NOT NULL DEFAULT '0',
    mark TEXT
);
CREATE TABLE IF NOT EXISTS risk_state (
    symbol TEXT PRIMARY KEY,
    killed INTEGER NOT NULL,
    kill_reason TEXT NOT NULL,
    peak_pnl TEXT,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS config_reloads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    path TEXT NOT NULL,
    accepted INTEGER NOT NULL,
    changed TEXT NOT NULL,
    message TEXT NOT NULL
);
"""
# v1 -> v2: columns added since (a v1 file keeps its rows)
_MIGRATE_1_TO_2 = (
    "ALTER TABLE fills ADD COLUMN exec_type TEXT NOT NULL DEFAULT 'Trade'",
    "ALTER TABLE pnl_snapshots ADD COLUMN funding TEXT NOT NULL DEFAULT '0'",
    "ALTER TABLE pnl_snapshots ADD COLUMN mark TEXT",
)
# v2 -> v3: the config reload log (a new table; the _SCHEMA script creates it)
_MIGRATE_2_TO_3: tuple[str, ...] = ()
#: version -> the statements that bring a file of that version to the next one
_MIGRATIONS = {1: _MIGRATE_1_TO_2, 2: _MIGRATE_2_TO_3}

# Order states after which an order can no longer trade (Bybit orderStatus values).
_DONE = ("Filled", "Cancelled", "Rejected", "Deactivated", "PartiallyFilledCanceled")


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """A stored order state."""

    order_link_id: str
    order_id: str
    symbol: str
    side: str
    price_ticks: int
    qty_lots: int
    filled_lots: int
    status: str
    created_ms: int
    updated_ms: int
    reject_reason: str = ""


@dataclass(frozen=True, slots=True)
class FillRecord:
    """A stored fill; ``fee`` in quote currency, negative for a rebate."""

    exec_id: str
    order_id: str
    order_link_id: str
    symbol: str
    side: str
    price_ticks: int
    qty_lots: int
    fee: Decimal
    is_maker: bool
    exec_ms: int
    exec_type: str = "Trade"


@dataclass(frozen=True, slots=True)
class RiskState:
    """The risk manager's durable state: the kill latch and the drawdown peak."""

    killed: bool
    kill_reason: str
    peak_pnl: Decimal | None


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        v = obj.get(name, default)
    else:
        v = getattr(obj, name, default)
    if v is None:
        raise ValueError(f"record is missing {name!r}: {obj!r:.200}")
    return v


def _decimal_text(name: str, v: Any) -> str:
    return str(as_decimal(name, v))


class Records:
    """SQLite store of orders, fills and PnL snapshots.

    Parameters
    ----------
    path : str or PathLike
        Database file; parent directories are created. ``":memory:"`` for tests.

    Examples
    --------
    >>> with Records(":memory:") as rec:
    ...     rec.record_fill({"exec_id": "e1", "order_id": "o1", "order_link_id": "l1",
    ...                      "symbol": "BTCUSDT", "side": "Buy", "price_ticks": 650000,
    ...                      "qty_lots": 1, "fee": "0.013", "is_maker": True, "exec_ms": 5})
    True
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we open transactions explicitly, one per write.
        # one thread at a time, not necessarily the one that opened it (a session is
        # opened on one thread and run on another)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if not 0 <= version <= SCHEMA_VERSION:
            self._db.close()
            raise ValueError(
                f"{self.path}: records schema version {version}, this mmbot writes {SCHEMA_VERSION}"
            )
        if version:
            # each older version steps up to the next, in one transaction (rows kept)
            with self._db:
                self._db.execute("BEGIN")
                for v in range(version, SCHEMA_VERSION):
                    for stmt in _MIGRATIONS[v]:
                        self._db.execute(stmt)
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM fills").fetchone()[0]

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close the database (idempotent)."""
        if self._db is not None:
            self._db.close()
            self._db = None  # type: ignore[assignment]

    def __enter__(self) -> Records:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def journal_mode(self) -> str:
        """SQLite journal mode in use ("wal" for files, "memory" for ``:memory:``)."""
        return self._db.execute("PRAGMA journal_mode").fetchone()[0]

    # ------------------------------------------------------------------ writes
    def record_order(self, order: Any) -> None:
        """Store an order state (an ``Order``-like object or a mapping with its fields).

        Fields: ``order_link_id, order_id, symbol, side, price_ticks, qty_lots,
        filled_lots, status, created_ms, updated_ms`` and optional ``reject_reason``.
        An older ``updated_ms`` than the stored one is ignored.
        """
        link = str(_get(order, "order_link_id", ""))
        oid = str(_get(order, "order_id", ""))
        if not link and not oid:
            raise ValueError(f"order has neither order_link_id nor order_id: {order!r:.200}")
        row = (
            link or f"id:{oid}",
            link,
            oid,
            str(_get(order, "symbol")),
            str(_get(order, "side")),
            int(_get(order, "price_ticks")),
            int(_get(order, "qty_lots")),
            int(_get(order, "filled_lots", 0)),
            str(_get(order, "status")),
            int(_get(order, "created_ms", 0)),
            int(_get(order, "updated_ms", 0)),
            str(_get(order, "reject_reason", "")),
        )
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO orders VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(key) DO UPDATE SET order_id=excluded.order_id, "
                "price_ticks=excluded.price_ticks, qty_lots=excluded.qty_lots, "
                "filled_lots=excluded.filled_lots, status=excluded.status, "
                "updated_ms=excluded.updated_ms, reject_reason=excluded.reject_reason "
                "WHERE excluded.updated_ms >= orders.updated_ms",
                row,
            )

    def record_fill(self, fill: Any) -> bool:
        """Store a fill; return False if its ``exec_id`` is already stored.

        Accepts an ``Execution``-like object or a mapping with ``exec_id, order_id,
        order_link_id, symbol, side, price_ticks, qty_lots, fee, is_maker, exec_ms`` and
        optional ``exec_type`` (Bybit's: Trade, AdlTrade, BustTrade, Funding).
        """
        exec_id = str(_get(fill, "exec_id"))
        if not exec_id:
            raise ValueError("fill has an empty exec_id")
        row = (
            exec_id,
            str(_get(fill, "order_id", "")),
            str(_get(fill, "order_link_id", "")),
            str(_get(fill, "symbol")),
            str(_get(fill, "side")),
            int(_get(fill, "price_ticks")),
            int(_get(fill, "qty_lots")),
            _decimal_text("fee", _get(fill, "fee")),
            int(bool(_get(fill, "is_maker"))),
            int(_get(fill, "exec_ms")),
            self._seq + 1,
            str(_get(fill, "exec_type", "Trade")),
        )
        with self._db:
            self._db.execute("BEGIN")
            cur = self._db.execute(
                "INSERT OR IGNORE INTO fills VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", row
            )
        if cur.rowcount:
            self._seq += 1
            return True
        return False

    def record_pnl(self, snapshot: Mapping[str, Any]) -> None:
        """Store a ``PnLTracker.snapshot()`` dict (a second one at the same ts replaces it).

        The mark is stored exactly as text (``mark``); ``mark_ticks`` keeps its floor for
        readers of the first schema.
        """
        mark = snapshot.get("mark_ticks")
        row = (
            int(snapshot["ts_ms"]),
            int(snapshot["position_lots"]),
            None if mark is None else int(mark),
            *(
                _decimal_text(k, snapshot[k])
                for k in ("realized", "unrealized", "fees", "net", "turnover")
            ),
            int(snapshot["volume_lots"]),
            int(snapshot["fills"]),
            int(snapshot["max_abs_position_lots"]),
            _decimal_text("funding", snapshot.get("funding", 0)),
            None if mark is None else _decimal_text("mark_ticks", mark),
        )
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT OR REPLACE INTO pnl_snapshots VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", row
            )

    def save_risk_state(self, symbol: str, state: RiskState, now_ms: int) -> None:
        """Store the risk state of ``symbol`` (replacing the previous one)."""
        peak = None if state.peak_pnl is None else _decimal_text("peak_pnl", state.peak_pnl)
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT OR REPLACE INTO risk_state VALUES (?,?,?,?,?)",
                (symbol, int(state.killed), state.kill_reason, peak, now_ms),
            )

    def load_risk_state(self, symbol: str) -> RiskState | None:
        """Return the stored risk state of ``symbol``, or None."""
        row = self._db.execute(
            "SELECT killed, kill_reason, peak_pnl FROM risk_state WHERE symbol = ?", (symbol,)
        ).fetchone()
        if row is None:
            return None
        return RiskState(bool(row[0]), row[1], None if row[2] is None else Decimal(row[2]))

    def record_reload(
        self, ts_ms: int, path: str, accepted: bool, changed: Iterable[str], message: str
    ) -> None:
        """Log one config reload attempt (accepted or refused) and what it changed."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO config_reloads (ts_ms, path, accepted, changed, message) "
                "VALUES (?,?,?,?,?)",
                (ts_ms, path, int(accepted), ",".join(changed), message),
            )

    def load_reloads(self) -> list[dict[str, Any]]:
        """Return the config reload log, oldest first."""
        rows = self._db.execute(
            "SELECT ts_ms, path, accepted, changed, message FROM config_reloads ORDER BY id"
        ).fetchall()
        return [
            {
                "ts_ms": r[0],
                "path": r[1],
                "accepted": bool(r[2]),
                "changed": r[3].split(",") if r[3] else [],
                "message": r[4],
            }
            for r in rows
        ]

    # ------------------------------------------------------------------ reads
    def load_orders(
        self, *, open_only: bool = False, symbol: str | None = None
    ) -> list[OrderRecord]:
        """Return stored orders (oldest first); ``open_only`` drops finished ones."""
        sql = (
            "SELECT order_link_id, order_id, symbol, side, price_ticks, qty_lots, filled_lots, "
            "status, created_ms, updated_ms, reject_reason FROM orders WHERE 1=1"
        )
        args: list[Any] = []
        if open_only:
            sql += f" AND status NOT IN ({','.join('?' * len(_DONE))})"
            args += _DONE
        if symbol is not None:
            sql += " AND symbol = ?"
            args.append(symbol)
        sql += " ORDER BY created_ms, rowid"
        return [OrderRecord(*r) for r in self._db.execute(sql, args)]

    def load_fills(self, *, symbol: str | None = None) -> list[FillRecord]:
        """Return stored fills in the order they were recorded."""
        sql = (
            "SELECT exec_id, order_id, order_link_id, symbol, side, price_ticks, qty_lots, "
            "fee, is_maker, exec_ms, exec_type FROM fills"
        )
        args: list[Any] = []
        if symbol is not None:
            sql += " WHERE symbol = ?"
            args.append(symbol)
        sql += " ORDER BY seq"
        return [
            FillRecord(e, o, link, s, side, p, q, Decimal(fee), bool(m), t, x)
            for e, o, link, s, side, p, q, fee, m, t, x in self._db.execute(sql, args)
        ]

    def load_pnl(self) -> list[dict[str, Any]]:
        """Return stored PnL snapshots, oldest first (money as Decimal)."""
        cols = (
            "ts_ms",
            "position_lots",
            "mark_ticks",
            "realized",
            "unrealized",
            "fees",
            "net",
            "turnover",
            "volume_lots",
            "fills",
            "max_abs_position_lots",
            "funding",
            "mark",
        )
        out = []
        for r in self._db.execute(f"SELECT {', '.join(cols)} FROM pnl_snapshots ORDER BY ts_ms"):
            d = dict(zip(cols, r, strict=True))
            for k in ("realized", "unrealized", "fees", "net", "turnover", "funding"):
                d[k] = Decimal(d[k])
            d["mark"] = None if d["mark"] is None else Decimal(d["mark"])
            out.append(d)
        return out

    def replay_fills(self, tracker: Any, *, symbol: str | None = None) -> int:
        """Feed every stored fill into a ``PnLTracker``; return how many it applied.

        Fills the tracker has already seen (same exec id) are skipped by the tracker.
        """
        return sum(tracker.on_execution(f) for f in self.load_fills(symbol=symbol))


class QueuedRecords:
    """:class:`Records` for a writer on any thread, applied by the one thread that owns
    the database.

    ``mmbot run`` processes frames and venue events on pybit's socket threads, where
    nothing may wait on the disk. Each write here only appends the call to a queue (a
    ``deque`` append: never blocks, never touches SQLite) and calls ``on_write()`` so
    the owner thread wakes; the owner's :meth:`flush` applies the queued writes in the
    order they were made, each its own transaction as before. Reads go to the database
    on the owner thread, after a :meth:`flush`, so they see every write made before them.

    What a crash can lose: the writes made since the owner's last flush, a wake-up ago
    (the owner flushes after every wake and timer tick). The orders and fills come back
    from the venue on restart either way (reconcile and the executions read-back). The
    kill latch would not, and a restart without it quotes again: a risk state that says
    killed is written at once, on the thread that saves it, with every write queued before
    it (the one write that waits on the disk off the owner thread; kills are rare).

    Parameters
    ----------
    records : Records
    on_write : callable() or None
        Called after each queued write, on the writer's thread; must not block.
    """

    def __init__(self, records: Records, on_write: Any = None) -> None:
        self.records = records
        self.path = records.path
        self.on_write = on_write
        self._queue: deque[tuple[Any, tuple]] = deque()
        # one flusher at a time: the owner, or a thread writing the kill latch through
        self._flush_lock = threading.Lock()

    def _put(self, method: Any, *args: Any) -> None:
        self._queue.append((method, args))
        if self.on_write is not None:
            self.on_write()

    # writes: any thread
    def record_order(self, order: Any) -> None:
        """Queue :meth:`Records.record_order`."""
        self._put(self.records.record_order, order)

    def record_fill(self, fill: Any) -> None:
        """Queue :meth:`Records.record_fill` (a duplicate exec id is ignored there)."""
        self._put(self.records.record_fill, fill)

    def record_pnl(self, snapshot: Mapping[str, Any]) -> None:
        """Queue :meth:`Records.record_pnl`."""
        self._put(self.records.record_pnl, snapshot)

    def save_risk_state(self, symbol: str, state: RiskState, now_ms: int) -> None:
        """Queue :meth:`Records.save_risk_state`; a killed state is written before this
        returns (with the writes queued before it), on this thread."""
        self._put(self.records.save_risk_state, symbol, state, now_ms)
        if state.killed:
            self.flush()

    def record_reload(
        self, ts_ms: int, path: str, accepted: bool, changed: Iterable[str], message: str
    ) -> None:
        """Queue :meth:`Records.record_reload`."""
        self._put(self.records.record_reload, ts_ms, path, accepted, tuple(changed), message)

    def pending(self) -> int:
        """Writes queued and not applied yet (a snapshot)."""
        return len(self._queue)

    # the owner thread (and a killed risk state's writer)
    def flush(self) -> int:
        """Apply every queued write, oldest first; return how many. A write that raises
        propagates (it is consumed; the ones behind it stay queued)."""
        q = self._queue
        n = 0
        with self._flush_lock:
            while q:
                method, args = q.popleft()
                method(*args)
                n += 1
        return n

    def load_risk_state(self, symbol: str) -> RiskState | None:
        """:meth:`Records.load_risk_state` after a :meth:`flush`."""
        self.flush()
        return self.records.load_risk_state(symbol)

    def load_orders(self, **kw: Any) -> list[OrderRecord]:
        """:meth:`Records.load_orders` after a :meth:`flush`."""
        self.flush()
        return self.records.load_orders(**kw)

    def load_fills(self, **kw: Any) -> list[FillRecord]:
        """:meth:`Records.load_fills` after a :meth:`flush`."""
        self.flush()
        return self.records.load_fills(**kw)

    def load_pnl(self) -> list[dict[str, Any]]:
        """:meth:`Records.load_pnl` after a :meth:`flush`."""
        self.flush()
        return self.records.load_pnl()

    def replay_fills(self, tracker: Any, *, symbol: str | None = None) -> int:
        """:meth:`Records.replay_fills` after a :meth:`flush`."""
        self.flush()
        return self.records.replay_fills(tracker, symbol=symbol)
