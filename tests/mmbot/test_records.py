"""SQLite records: WAL, idempotent fills, newest order state wins, reload after restart."""

import sqlite3
from decimal import Decimal

import pytest

from mmbot.instrument import Instrument
from mmbot.pnl import PnLTracker
from mmbot.records import FillRecord, OrderRecord, QueuedRecords, Records, RiskState

UNIT = Instrument("X", "linear", "1", "1", 1, 10**9, Decimal(0))


def fill(exec_id, side="Buy", price=100, qty=1, fee="0.1", maker=True, ms=1):
    return {
        "exec_id": exec_id,
        "order_id": "o-" + exec_id,
        "order_link_id": "l-" + exec_id,
        "symbol": "X",
        "side": side,
        "price_ticks": price,
        "qty_lots": qty,
        "fee": fee,
        "is_maker": maker,
        "exec_ms": ms,
    }


def order(link, status="New", updated=1, filled=0, oid="o1"):
    return {
        "order_link_id": link,
        "order_id": oid,
        "symbol": "X",
        "side": "Buy",
        "price_ticks": 100,
        "qty_lots": 3,
        "filled_lots": filled,
        "status": status,
        "created_ms": 1,
        "updated_ms": updated,
    }


def test_file_uses_wal_and_creates_parent_dirs(tmp_path):
    path = tmp_path / "a" / "b" / "mm.sqlite"
    with Records(path) as rec:
        assert rec.journal_mode == "wal"
    assert path.exists()


def test_fill_ids_are_idempotent(tmp_path):
    with Records(tmp_path / "r.sqlite") as rec:
        assert rec.record_fill(fill("e1")) is True
        assert rec.record_fill(fill("e1", price=999)) is False
        assert rec.record_fill(fill("e2", side="Sell", fee="-0.025", maker=False)) is True
        fills = rec.load_fills()
    assert fills == [
        FillRecord("e1", "o-e1", "l-e1", "X", "Buy", 100, 1, Decimal("0.1"), True, 1),
        FillRecord("e2", "o-e2", "l-e2", "X", "Sell", 100, 1, Decimal("-0.025"), False, 1),
    ]


def test_float_fee_is_stored_as_its_shortest_decimal(tmp_path):
    with Records(":memory:") as rec:
        rec.record_fill(fill("e1", fee=0.013))
        assert rec.load_fills()[0].fee == Decimal("0.013")


def test_object_shaped_records_are_accepted():
    class Exec:  # the shape of mmbot.types.Execution
        exec_id, order_id, order_link_id, symbol, side = "e9", "o9", "l9", "X", "Sell"
        price_ticks, qty_lots, fee, fee_rate, is_maker, exec_ms = 101, 2, 0.5, 0.001, True, 7

    with Records(":memory:") as rec:
        assert rec.record_fill(Exec())
        assert rec.load_fills()[0].price_ticks == 101


def test_newest_order_state_wins_and_open_filter(tmp_path):
    with Records(tmp_path / "r.sqlite") as rec:
        rec.record_order(order("a", "New", 1))
        rec.record_order(order("a", "PartiallyFilled", 5, filled=1))
        rec.record_order(order("a", "New", 3))  # a stale replay: ignored
        rec.record_order(order("b", "New", 2, oid="o2"))
        rec.record_order(order("b", "Cancelled", 4, oid="o2"))
        rec.record_order(order("", "New", 1, oid="orphan"))  # no link id: keyed by order id
        orders = rec.load_orders()
        assert [(o.order_link_id, o.status, o.filled_lots) for o in orders] == [
            ("a", "PartiallyFilled", 1),
            ("b", "Cancelled", 0),
            ("", "New", 0),
        ]
        assert [o.order_id for o in rec.load_orders(open_only=True)] == ["o1", "orphan"]
        assert rec.load_orders(symbol="Y") == []
        assert isinstance(orders[0], OrderRecord)


def test_bad_records_raise_and_store_nothing():
    with Records(":memory:") as rec:
        with pytest.raises(ValueError, match="neither order_link_id nor order_id"):
            rec.record_order(order("", oid=""))
        with pytest.raises(ValueError, match="missing 'exec_ms'"):
            rec.record_fill({k: v for k, v in fill("e1").items() if k != "exec_ms"})
        with pytest.raises(ValueError, match="fee: must be finite"):
            rec.record_fill(fill("e1", fee="NaN"))
        assert rec.load_fills() == [] and rec.load_orders() == []


def test_restart_replays_into_a_tracker_without_double_counting(tmp_path):
    path = tmp_path / "r.sqlite"
    live = PnLTracker(UNIT, "0.001", "0.002")
    with Records(path) as rec:
        for f in [
            fill("e1", "Buy", 100, 10, "1.0"),
            fill("e2", "Sell", 110, 4, "0.44"),
            fill("e3", "Sell", 90, 10, "1.8", maker=False),
        ]:
            rec.record_fill(f)
            live.on_fill(
                f["side"],
                f["price_ticks"],
                f["qty_lots"],
                is_maker=f["is_maker"],
                fee=f["fee"],
                fill_id=f["exec_id"],
            )
        rec.record_pnl(live.snapshot(95, 1000))
    # restart: a fresh process reads the file back
    restored = PnLTracker(UNIT, "0.001", "0.002")
    with Records(path) as rec:
        assert rec.replay_fills(restored) == 3
        assert rec.replay_fills(restored) == 0  # replaying twice changes nothing
        assert rec.record_fill(fill("e2", "Sell", 110, 4, "0.44")) is False
        assert rec.record_fill(fill("e4", "Buy", 95, 4, "0.38")) is True
        snaps = rec.load_pnl()
    assert restored.snapshot(95, 1000) == live.snapshot(95, 1000)
    assert restored.realized == Decimal(40 - 60)  # 4 * (110 - 100) + 6 * (90 - 100)
    assert snaps == [
        {
            k: v
            for k, v in live.snapshot(95, 1000).items()
            if k not in ("maker_fills", "avg_entry_price")
        }
        | {"mark": Decimal(95)}
    ]
    with Records(path) as rec:  # the fill recorded after the restart is there too
        assert [f.exec_id for f in rec.load_fills()] == ["e1", "e2", "e3", "e4"]


def test_pnl_snapshot_at_same_ts_replaces():
    t = PnLTracker(UNIT)
    with Records(":memory:") as rec:
        rec.record_pnl(t.snapshot(None, 5))
        t.on_fill("Buy", 100, 1)
        rec.record_pnl(t.snapshot(100, 5))
        snaps = rec.load_pnl()
    assert len(snaps) == 1 and snaps[0]["position_lots"] == 1


def test_unknown_schema_version_is_refused(tmp_path):
    path = tmp_path / "r.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(ValueError, match="schema version 99"):
        Records(path)


def test_close_is_idempotent():
    rec = Records(":memory:")
    rec.close()
    rec.close()


def _downgrade(path, version):
    """Turn a current file into one of an older schema version, as that mmbot wrote it."""
    db = sqlite3.connect(path)
    db.execute("DROP TABLE config_reloads")
    if version == 1:
        db.execute("ALTER TABLE fills DROP COLUMN exec_type")
        db.execute("ALTER TABLE pnl_snapshots DROP COLUMN funding")
        db.execute("ALTER TABLE pnl_snapshots DROP COLUMN mark")
    db.execute(f"PRAGMA user_version = {version}")
    db.commit()
    db.close()


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_schema_is_migrated_in_place(tmp_path, version):
    path = tmp_path / "old.sqlite"
    Records(path).close()
    _downgrade(path, version)
    with Records(path) as rec:
        rec.record_reload(5, "x.toml", False, ["venue.symbol"], "refused")
        assert rec.load_reloads() == [
            {
                "ts_ms": 5,
                "path": "x.toml",
                "accepted": False,
                "changed": ["venue.symbol"],
                "message": "refused",
            }
        ]
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 3
    cols = {r[1] for r in db.execute("PRAGMA table_info(pnl_snapshots)")}
    assert {"funding", "mark"} <= cols
    db.close()


def test_queued_writes_wait_for_the_owners_flush_and_keep_their_order(tmp_path):
    import threading  # noqa: PLC0415

    rec = Records(tmp_path / "q.sqlite")
    woken = []
    q = QueuedRecords(rec, on_write=lambda: woken.append(threading.get_ident()))

    def socket_thread():
        q.record_order(order("a", updated=1))
        q.record_fill(fill("e1"))
        q.record_order(order("a", status="Filled", updated=2, filled=3))
        q.save_risk_state("X", RiskState(False, "", Decimal("5")), 3)
        q.record_pnl(
            {
                "ts_ms": 4,
                "position_lots": 3,
                "mark_ticks": 100,
                "realized": 0,
                "unrealized": 0,
                "fees": "0.1",
                "funding": 0,
                "net": "-0.1",
                "turnover": 300,
                "volume_lots": 3,
                "fills": 1,
                "maker_fills": 1,
                "max_abs_position_lots": 3,
                "avg_entry_price": None,
            }
        )

    t = threading.Thread(target=socket_thread)
    t.start()
    t.join()
    assert len(woken) == 5 and q.pending() == 5
    assert rec.load_orders() == [] and rec.load_fills() == []  # nothing on that thread
    assert q.flush() == 5
    (stored,) = rec.load_orders()
    assert (stored.status, stored.filled_lots) == ("Filled", 3)  # the later write won
    assert [f.exec_id for f in rec.load_fills()] == ["e1"]
    assert rec.load_risk_state("X").peak_pnl == Decimal("5")
    rec.close()


def test_queued_reads_see_every_write_made_before_them():
    with Records(":memory:") as rec:
        q = QueuedRecords(rec)
        q.record_fill(fill("e1"))
        assert [f.exec_id for f in q.load_fills()] == ["e1"]
        q.save_risk_state("X", RiskState(True, "kill", None), 1)
        assert q.load_risk_state("X").killed
        assert q.pending() == 0


def test_a_bad_queued_write_raises_at_the_flush_and_the_rest_stay_queued():
    with Records(":memory:") as rec:
        q = QueuedRecords(rec)
        q.record_order(order("", oid=""))
        q.record_fill(fill("e1"))
        with pytest.raises(ValueError, match="neither order_link_id nor order_id"):
            q.flush()
        assert q.pending() == 1  # not lost: the owner may flush again
        assert q.flush() == 1 and [f.exec_id for f in rec.load_fills()] == ["e1"]


def test_a_killed_risk_state_is_written_at_once_with_the_writes_before_it(tmp_path):
    # the kill latch must survive a crash a moment after the kill: a restart without it
    # quotes again (the orders and fills come back from the venue, the latch does not)
    import threading  # noqa: PLC0415

    rec = Records(tmp_path / "q.sqlite")
    q = QueuedRecords(rec)

    def socket_thread():
        q.record_fill(fill("e1"))
        q.save_risk_state("X", RiskState(True, "drawdown 5 > 1", Decimal("0")), 3)
        q.record_fill(fill("e2"))

    t = threading.Thread(target=socket_thread)
    t.start()
    t.join()
    assert rec.load_risk_state("X") == RiskState(True, "drawdown 5 > 1", Decimal("0"))
    assert [f.exec_id for f in rec.load_fills()] == ["e1"]  # in order, nothing behind it
    assert q.pending() == 1 and q.flush() == 1
    assert [f.exec_id for f in rec.load_fills()] == ["e1", "e2"]
    rec.close()
