"""End to end: a real ``mmbot run`` process against the simulator with faults injected.

Each of the three sockets is dropped, a position push overtakes its execution, amends and
cancels lose 110001 races, requests are refused with 10006, and the exchange deleverages
the position and charges funding. The simulator, not the bot, reports the largest
worst-case exposure the account ever had; the cap held, and the bot's final position,
realized PnL, fees and funding equal the simulator's exactly.
"""

from __future__ import annotations

import json
import signal
import subprocess

import pytest
from support.bot import mmbot_run
from support.waiting import wait_for

from mmbot.pnl import format_money
from mmbot.sim.server import SimSymbol

SYM = "BTCUSDT"
CAP_LOTS = 3
pytestmark = pytest.mark.slow


@pytest.fixture
def sim(start_sim):
    return start_sim(symbols=[SimSymbol(SYM)], speed=2.0)


def test_faults_keep_the_cap_and_the_books_agree(tmp_path, sim):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f"""
[strategy]
levels = 2
[risk]
max_position_qty = "{CAP_LOTS / 1000:.3f}"
max_drawdown_quote = "1000"
[orders]
min_quote_lifetime_ms = 50
""")
    out = tmp_path / "out"
    bot = subprocess.Popen(
        mmbot_run(
            sim.http_url,
            "--config",
            str(cfg),
            "--duration",
            "120",
            "--no-dashboard",
            "--out",
            str(out),
            "--db",
            "",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def quoting(side=None):
            return any(side is None or o["side"] == side for o in sim.open_orders(SYM))

        def fills():
            return len([x for x in sim.executions(SYM) if x["execType"] == "Trade"])

        assert wait_for(quoting, timeout_s=20)
        sim.position_first(True)  # position pushes overtake executions
        for side in ("Buy", "Buy", "Sell"):
            n = fills()
            assert wait_for(lambda s=side: quoting(s), timeout_s=15)
            sim.taker_hit(SYM, side)
            assert wait_for(lambda n=n: fills() > n, timeout_s=10)
        sim.position_first(False)
        sim.race_next(2)  # the next amends/cancels lose a race
        sim.reject_next(3, 10006)  # and then three requests are refused
        for kind in ("public", "private", "trade"):
            assert wait_for(quoting, timeout_s=20)
            live = {o["orderId"] for o in sim.open_orders(SYM)}
            assert sim.drop(kind) >= 1

            # blind: the bot cancels everything over REST (the window can be a few ms),
            # then quotes again with new orders
            def gone(live=live):
                return not live & {o["orderId"] for o in sim.open_orders(SYM)}

            assert wait_for(gone, timeout_s=10), kind
            assert wait_for(quoting, timeout_s=20), kind
        long_, short = sim.max_exposure(SYM)
        assert long_ <= CAP_LOTS and short <= CAP_LOTS, (long_, short)

        # the exchange's own moves: deleverage one lot of the position, charge funding
        if sim.position_lots(SYM) == 0:
            n = fills()
            assert wait_for(lambda: quoting("Buy"), timeout_s=15)
            sim.taker_hit(SYM, "Buy")
            assert wait_for(lambda: fills() > n, timeout_s=10)
        sim.inject_funding(SYM, "0.0001")
        sim.inject_adl(SYM, 1)
        assert wait_for(lambda: quoting(), timeout_s=20)
    finally:
        bot.send_signal(signal.SIGINT)  # a clean stop: cancel all, write report
        stdout, stderr = bot.communicate(timeout=60)
    assert bot.returncode == 0, stderr[-3000:]
    assert sim.open_orders(SYM) == []
    venue = sim.summary(SYM)
    bot_summary = json.loads((out / "summary.json").read_text())
    assert bot_summary["final_position_lots"] == venue["position_lots"]
    assert bot_summary["realized_pnl"] == format_money(venue["realized"])
    assert bot_summary["fees"] == format_money(venue["fees"])
    assert bot_summary["funding"] == format_money(venue["funding"])
    assert venue["funding"] != 0 and bot_summary["fills"] >= 4
