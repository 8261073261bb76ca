"""``mmbot run`` end to end over loopback: faults mid-run, clean stop, crash + restart."""

import json
import os
import re
import signal
import sqlite3
import subprocess
import threading

import pytest
from support.bot import mmbot_run
from support.waiting import wait_for

from mmbot.config import load_config
from mmbot.live import LiveSession
from mmbot.sim.server import SimSymbol

pytestmark = pytest.mark.slow  # real sockets to a simulator on 127.0.0.1

SYM = "BTCUSDT"


@pytest.fixture
def sim(start_sim):
    return start_sim(symbols=[SimSymbol(SYM)], speed=2.0)


def test_faults_mid_run_leave_no_orphans_and_the_right_position(sim):
    session = LiveSession(load_config(None), SYM, "sim", sim=sim).open()
    t = threading.Thread(target=session.run, kwargs={"duration_s": 30}, daemon=True)
    t.start()
    try:
        assert wait_for(lambda: sim.open_orders(SYM))  # quoting
        sim.taker_hit(SYM, "Buy")  # a fill mid-run
        sim.skip_u(SYM)  # gap -> resync
        assert wait_for(lambda: session.resyncs >= 1)
        # While a resync is in flight the feed drops every non-snapshot frame on purpose,
        # so the next fault is injected only once the book is back in sync.
        assert wait_for(lambda: session.feed.synced(SYM))
        sim.send_malformed("truncated", SYM)  # rejected frame -> resync
        assert wait_for(lambda: session.resyncs >= 2)
        sim.reject_next(3, 10006)  # refused orders
        sim.drop("public")  # feed reconnect
        sim.drop("private")  # venue reconnect
        sim.delay_private(0.2)
        assert wait_for(lambda: session.feed.reconnects >= 1 and session.feed.synced(SYM))
        assert wait_for(lambda: sim.open_orders(SYM), timeout_s=8)  # quotes restored
        sim.delay_private(0)
    finally:
        session.request_stop()
        t.join(20)
    assert not t.is_alive()
    assert sim.open_orders(SYM) == []  # no orphan order
    assert session.runner.orders.position_lots == sim.position_lots(SYM)
    s = session.summary()
    assert s["book_resyncs"] >= 2 and s["frames"] > 0


def test_crash_then_restart_reconciles_from_the_venue(sim):
    cfg = load_config(None)
    crashed = LiveSession(cfg, SYM, "sim", sim=sim).open()
    t = threading.Thread(target=crashed.run, kwargs={"duration_s": 30}, daemon=True)
    t.start()
    assert wait_for(lambda: len(sim.open_orders(SYM)) >= 2)
    sim.taker_hit(SYM, "Sell")
    assert wait_for(lambda: sim.position_lots(SYM) != 0)
    # Crash: sockets die, nothing is cancelled (no close()).
    crashed.close = lambda: None
    crashed.request_stop()
    t.join(5)
    crashed.feed.exit()
    crashed.venue.close()
    left_over = {o["orderLinkId"] for o in sim.open_orders(SYM)}
    assert left_over
    restarted = LiveSession(cfg, SYM, "sim", sim=sim).open()  # start() reconciles
    try:
        assert wait_for(lambda: not (left_over & {o["orderLinkId"] for o in sim.open_orders(SYM)}))
        assert restarted.runner.orders.position_lots == sim.position_lots(SYM) != 0
    finally:
        restarted.close()
    assert sim.open_orders(SYM) == []


def test_cli_run_writes_report(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        mmbot_run(None, "--duration", "3", "--no-dashboard", "--out", str(out)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "report:" in proc.stdout and "tick-to-quote" in proc.stdout
    assert "frame received -> order written p50" in proc.stdout
    assert "CPUs kept awake" not in proc.stdout  # [run] keep_cpus_awake is off by default
    summary = json.loads((out / "summary.json").read_text())
    # the same report as `mmbot backtest` (mmbot.report), plus the live keys
    for key in (
        "fills",
        "volume_qty",
        "realized_pnl",
        "unrealized_pnl",
        "net_pnl",
        "fees",
        "max_inventory_qty",
        "quote_updates",
        "orders_sent",
        "venue_position_qty",
        "book_resyncs",
        "timing_file",
        "chart_file",
    ):
        assert key in summary
    assert summary["frames"] > 0 and summary["open_orders_at_end"] == 0
    timing = json.loads((out / "timing.json").read_text())
    assert timing["tick_to_quote"]["count"] > 0 and timing["feed_hop_us"]["count"] > 0
    assert timing["awake_cpus"] == []
    assert (out / "chart.png").stat().st_size > 1000
    assert (out / "mmbot.sqlite").exists()


def _db_rows(db, sql):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _db_fills(db):
    try:
        return _db_rows(db, "SELECT exec_id, side, qty_lots FROM fills ORDER BY seq")
    except sqlite3.OperationalError:  # not created yet
        return []


def test_sigkill_the_bot_process_then_restart_restores_without_double_counting(tmp_path, sim):
    """A real `mmbot run` process against a simulator this test owns: SIGKILL, restart."""
    cfg = tmp_path / "touch.toml"
    # quote at the touch: an explicit min_spread_bps overrides the fee-aware floor
    cfg.write_text("[strategy]\nmin_spread_bps = 0.0\n[strategy.fixed]\nhalf_spread_bps = 0.0\n")
    db = tmp_path / "mm.sqlite"
    cmd = mmbot_run(sim.http_url, "--db", str(db), "--config", str(cfg), "--no-dashboard")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    first = subprocess.Popen(
        cmd + ["--duration", "60"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    try:
        assert wait_for(lambda: len(_db_fills(db)) >= 2, timeout_s=25), "no fills recorded"
        # Freeze the market so no fill can race the kill: quotes sit at the touch.
        sim.pause_market()
        assert wait_for(lambda: sim.open_orders(SYM), timeout_s=5)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
    left_over = sim.open_orders(SYM)
    assert left_over  # a crash cancels nothing
    # a fill while the bot is down: only the venue's execution list knows it
    sim.taker_hit(SYM, left_over[0]["side"])
    down_execs = {x["execId"] for x in sim.executions(SYM)} - {f[0] for f in _db_fills(db)}
    assert down_execs
    sim.pause_market(False)
    second = subprocess.run(
        cmd + ["--duration", "3"], capture_output=True, text=True, timeout=45, env=env
    )
    assert second.returncode == 0, second.stderr[-3000:]
    # no orphan: the old orders were cancelled, the new ones on the clean stop
    assert sim.open_orders(SYM) == []
    venue_execs = [x["execId"] for x in sim.executions(SYM)]
    fills = _db_fills(db)
    ids = [f[0] for f in fills]
    assert len(ids) == len(set(ids)) and len(venue_execs) == len(set(venue_execs))
    assert set(ids) == set(venue_execs)  # nothing lost, nothing twice
    assert down_execs <= set(ids)
    signed = sum(q if side == "Buy" else -q for _, side, q in fills)
    assert signed == sim.position_lots(SYM)
    # PnL continues: the restarted process counted the old fills once, and its last
    # snapshot agrees with the database and the venue
    m = re.search(r"(\d+) in total with (\d+) restored and (\d+) read back", second.stdout)
    assert m, second.stdout
    total, restored, backfilled = map(int, m.groups())
    assert total == len(ids) and restored >= 2 and backfilled >= len(down_execs)
    ts_ms, pos, n = _db_rows(
        db, "SELECT ts_ms, position_lots, fills FROM pnl_snapshots ORDER BY ts_ms DESC LIMIT 1"
    )[0]
    assert (pos, n) == (sim.position_lots(SYM), len(ids))
    counts = [r[0] for r in _db_rows(db, "SELECT fills FROM pnl_snapshots ORDER BY ts_ms")]
    assert counts == sorted(counts)  # never reset by the restart


def test_ctrl_c_cancels_every_order_and_exits_cleanly(tmp_path, sim):
    """SIGINT (Ctrl-C) to a real `mmbot run` process: all orders cancelled, exit code 0."""
    cmd = mmbot_run(
        sim.http_url,
        *("--db", "", "--no-dashboard", "--duration", "60", "--out", str(tmp_path / "out")),
    )
    bot = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        assert wait_for(lambda: sim.open_orders(SYM), timeout_s=25), "the bot never quoted"
        bot.send_signal(signal.SIGINT)
        out, err = bot.communicate(timeout=30)
        assert bot.returncode == 0, err[-3000:]
        assert sim.open_orders(SYM) == []
        assert "Traceback" not in err
        assert (tmp_path / "out" / "summary.json").is_file()
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.wait(10)
