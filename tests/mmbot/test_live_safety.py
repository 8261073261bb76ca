"""``mmbot run`` fails closed: an unsafe configuration stops before the first order, risk
limits are never optional, and a kill switch stays latched across a restart."""

from __future__ import annotations

import subprocess
import threading

import pytest
from support.bot import mmbot_run
from support.waiting import wait_for

from mmbot.config import load_config, parse_config
from mmbot.live import LiveSession
from mmbot.records import Records
from mmbot.sim.server import SimSymbol

SYM = "BTCUSDT"
pytestmark = pytest.mark.slow


@pytest.fixture
def sim(start_sim):
    # the venue's minimum order quantity is two lots
    return start_sim(symbols=[SimSymbol(SYM, min_qty="0.002")], speed=2.0)


def run_cli(tmp_path, sim, risk: str, *extra: str) -> subprocess.CompletedProcess:
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f"[risk]\n{risk}\n")
    return subprocess.run(
        mmbot_run(
            sim.http_url,
            "--config",
            str(cfg),
            "--duration",
            "3",
            "--no-dashboard",
            "--db",
            "",
            *extra,
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_nothing_traded(sim):
    s = sim.summary(SYM)
    assert (s["max_long_lots"], s["max_short_lots"], s["position_lots"]) == (0, 0, 0)
    assert sim.executions(SYM) == [] and sim.open_orders(SYM) == []


@pytest.mark.parametrize(
    "risk, named",
    [
        # less than one 0.001 lot, and a drawdown limit of a cent: today's repro
        ('max_position_qty = "0.0005"\nmax_drawdown_quote = "0.01"', "risk.max_position_qty"),
        # one lot, but the venue's minimum order is two
        ('max_position_qty = "0.001"', "risk.max_position_qty"),
        # a notional cap below the venue's minimum order value
        ('max_notional_quote = "1"', "risk.max_notional_quote"),
    ],
)
def test_a_cap_that_cannot_hold_one_order_stops_before_trading(tmp_path, sim, risk, named):
    proc = run_cli(tmp_path, sim, risk)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"mmbot run: {named}:"), err
    assert_nothing_traded(sim)


def test_no_risk_is_refused_for_a_live_run(tmp_path, sim):
    proc = run_cli(tmp_path, sim, "", "--no-risk")
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "--no-risk is for backtests only" in line
    assert_nothing_traded(sim)


def test_a_tripped_kill_switch_stays_latched_across_a_restart(tmp_path, sim):
    cfg = parse_config({"risk": {"max_drawdown_quote": "0.000001"}})
    db = str(tmp_path / "mmbot.sqlite")

    def session(config=cfg, **kw):
        return LiveSession(config, SYM, "sim", sim=sim, records=Records(db), **kw).open()

    first = session()
    t = threading.Thread(target=first.run, kwargs={"duration_s": 30}, daemon=True)
    t.start()
    assert wait_for(lambda: sim.open_orders(SYM), timeout_s=10)
    sim.taker_hit(SYM, "Buy")  # a fill pays a fee: a drawdown from 0
    assert wait_for(lambda: first.runner.risk.killed, timeout_s=10)
    assert wait_for(lambda: not sim.open_orders(SYM), timeout_s=10)
    first.request_stop()
    t.join(20)
    first.records.close()

    again = session()  # the restart: still killed, no quote
    assert again.runner.risk.killed
    frames = again.runner.frames
    t = threading.Thread(target=again.run, kwargs={"duration_s": 30}, daemon=True)
    t.start()
    assert wait_for(lambda: again.runner.frames >= frames + 50, timeout_s=20)
    assert again.runner.orders_sent == 0 and sim.open_orders(SYM) == []
    again.request_stop()
    t.join(20)
    again.records.close()

    # the user widens the limit and clears the latch
    cleared = session(parse_config({"risk": {"max_drawdown_quote": "1000"}}), reset_kill=True)
    assert not cleared.runner.risk.killed
    t = threading.Thread(target=cleared.run, kwargs={"duration_s": 30}, daemon=True)
    t.start()
    assert wait_for(lambda: sim.open_orders(SYM), timeout_s=10)
    cleared.request_stop()
    t.join(20)
    cleared.records.close()
    assert not t.is_alive() and sim.open_orders(SYM) == []


def test_the_default_config_trades_with_fees_from_the_venue(sim):
    s = LiveSession(load_config(None), SYM, "sim", sim=sim)
    try:
        s.open()
        assert (str(s.maker_fee_rate), str(s.taker_fee_rate)) == ("0.0002", "0.00055")
        assert s.runner.risk is not None
    finally:
        s.close()
