"""``mmbot run`` end to end over loopback: faults mid-run, clean stop, crash + restart."""
import json
import subprocess
import sys
import threading
import time

import pytest

from mmbot.commands.run import LiveSession
from mmbot.config import load_config
from mmbot.sim.server import SimSymbol, start_simulator

SYM = "BTCUSDT"


def wait_for(cond, timeout_s=5.0, step_s=0.05):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step_s)
    return False


@pytest.fixture
def sim():
    h = start_simulator(symbols=[SimSymbol(SYM)], speed=2.0)
    h.wait_market()
    yield h
    h.stop()


def test_faults_mid_run_leave_no_orphans_and_the_right_position(sim):
    session = LiveSession(load_config(None), SYM, "sim", sim=sim).open()
    t = threading.Thread(target=session.run, kwargs={"duration_s": 30}, daemon=True)
    t.start()
    try:
        assert wait_for(lambda: sim.open_orders(SYM))            # quoting
        sim.taker_hit(SYM, "Buy")                                 # a fill mid-run
        sim.skip_u(SYM)                                           # gap -> resync
        assert wait_for(lambda: session.resyncs >= 1)
        sim.send_malformed("truncated", SYM)                      # rejected frame -> resync
        assert wait_for(lambda: session.resyncs >= 2)
        sim.reject_next(3, 10006)                                 # refused orders
        sim.drop("public")                                        # feed reconnect
        sim.drop("private")                                       # venue reconnect
        sim.delay_private(0.2)
        assert wait_for(lambda: session.feed.reconnects >= 1 and session.feed.synced(SYM))
        assert wait_for(lambda: sim.open_orders(SYM), timeout_s=8)   # quotes restored
        sim.delay_private(0)
    finally:
        session.request_stop()
        t.join(20)
    assert not t.is_alive()
    assert sim.open_orders(SYM) == []                             # no orphan order
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
    restarted = LiveSession(cfg, SYM, "sim", sim=sim).open()     # start() reconciles
    try:
        assert wait_for(lambda: not (left_over & {o["orderLinkId"] for o in sim.open_orders(SYM)}))
        assert restarted.runner.orders.position_lots == sim.position_lots(SYM) != 0
    finally:
        restarted.close()
    assert sim.open_orders(SYM) == []


@pytest.mark.slow
def test_cli_run_writes_report(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "mmbot", "run", "--duration", "3",
                           "--no-dashboard", "--out", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "report:" in proc.stdout and "tick-to-quote" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    for key in ("fills", "volume_qty", "net_pnl", "fees", "max_abs_position_qty",
                "tick_to_quote", "feed_hop_us"):
        assert key in summary
    assert summary["frames"] > 0
    assert (out / "chart.png").stat().st_size > 1000
