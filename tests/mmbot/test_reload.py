"""Config reload while `mmbot run` runs: SIGHUP, [strategy]/[risk] only, validated first."""

import json
import os
import signal
import subprocess

import pytest
from support.bot import mmbot_run, quoted_spread, reload_rows
from support.waiting import wait_for

from mmbot.config import ConfigError, SimConfig, load_config
from mmbot.reload import changed_keys, prepare_reload

SYM = "BTCUSDT"
INS = SimConfig().instrument(SYM)
FEES = {SYM: SimConfig().maker_fee_rate}


def _write(path, half_spread_bps, extra=""):
    path.write_text(f"[strategy.fixed]\nhalf_spread_bps = {half_spread_bps}\n{extra}")


def test_prepare_reload_names_the_changed_and_the_refused_keys(tmp_path):
    path = tmp_path / "c.toml"
    _write(path, 3.0)
    cfg = load_config(path)
    _write(path, 9.0, '[risk]\nmax_position_qty = "0.02"\n')
    ready = prepare_reload(cfg, str(path), {SYM: INS}, FEES)
    assert ready.changed == ("risk.max_position_qty", "strategy.fixed.half_spread_bps")
    assert ready.symbols[SYM].risk_limits.max_position_lots == 20
    _write(path, 9.0, "[run]\ndcp_window_s = 20\n[orders]\nplace_per_s = 5\n")
    with pytest.raises(
        ConfigError,
        match=r"^orders.place_per_s: only \[strategy\] and "
        r"\[risk\] can change while running \(also "
        r"changed: run.dcp_window_s\)",
    ):
        prepare_reload(cfg, str(path), {SYM: INS}, FEES)
    # the caps must hold one valid order of this instrument: checked before it applies
    _write(path, 9.0, '[risk]\nmax_notional_quote = "1"\n')
    with pytest.raises(ConfigError, match="risk.max_notional_quote"):
        prepare_reload(cfg, str(path), {SYM: INS}, FEES)
    assert changed_keys(cfg, cfg) == ()


@pytest.mark.slow
def test_sighup_applies_a_valid_reload_and_refuses_an_invalid_one(tmp_path, start_sim):
    sim = start_sim(speed=2.0)
    cfg, db, out = tmp_path / "live.toml", tmp_path / "mm.sqlite", tmp_path / "out"
    _write(cfg, 3.0)  # full spread ~6 bps of 65000: about 39 USDT
    cmd = mmbot_run(
        sim.http_url,
        "--db",
        str(db),
        "--config",
        str(cfg),
        "--no-dashboard",
        "--duration",
        "90",
        "--out",
        str(out),
    )
    bot = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        assert wait_for(lambda: (quoted_spread(sim, SYM) or 0) > 0, timeout_s=25), "never quoted"
        assert quoted_spread(sim, SYM) < 100

        # accepted: a wider spread (20 bps a side, about 260 USDT) reaches the exchange
        _write(cfg, 20.0)
        bot.send_signal(signal.SIGHUP)
        assert wait_for(lambda: len(reload_rows(db)) == 1, timeout_s=10)
        assert reload_rows(db)[0] == (
            1,
            "strategy.fixed.half_spread_bps",
            "accepted: strategy.fixed.half_spread_bps",
        )
        assert wait_for(lambda: (quoted_spread(sim, SYM) or 0) > 200, timeout_s=10)

        # refused: another section changed; the running config (20 bps) stays
        _write(cfg, 1.0, '[venue]\nsymbol = "ETHUSDT"\n')
        bot.send_signal(signal.SIGHUP)
        assert wait_for(lambda: len(reload_rows(db)) == 2, timeout_s=10)
        accepted, changed, message = reload_rows(db)[1]
        assert accepted == 0 and changed == ""
        assert "venue.symbol: only [strategy] and [risk] can change while running" in message

        # refused: an invalid value, validated before it could take effect
        _write(cfg, 1.0, "[strategy]\nlevels = 0\n")
        bot.send_signal(signal.SIGHUP)
        assert wait_for(lambda: len(reload_rows(db)) == 3, timeout_s=10)
        assert "strategy.levels: must be > 0" in reload_rows(db)[2][2]
        assert bot.poll() is None and (quoted_spread(sim, SYM) or 0) > 200  # still the 20 bps

        bot.send_signal(signal.SIGINT)
        stdout, stderr = bot.communicate(timeout=30)
        assert bot.returncode == 0, stderr[-3000:]
        assert "Traceback" not in stderr
        assert stderr.count("config reload from") == 3  # every attempt is logged
        assert "config reloads: 1 accepted, 2 refused" in stdout
        summary = json.loads((out / "summary.json").read_text())
        assert summary["config_reloads"] == {"accepted": 1, "refused": 2}
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.wait(10)
