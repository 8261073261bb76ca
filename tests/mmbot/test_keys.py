"""Dashboard keys: ``r`` re-reads the config like SIGHUP, ``q`` stops like Ctrl-C; the
terminal is restored afterwards. Keys come through a real pseudo-terminal."""

import json
import os
import pty
import subprocess
import termios
import threading

import pytest
from support.bot import mmbot_run, quoted_spread, reload_rows
from support.waiting import wait_for

from mmbot.keys import KeyCommands

SYM = "BTCUSDT"


@pytest.fixture
def terminal():
    """A pseudo-terminal: (master fd to type into, slave side as a text stream)."""
    master, slave = pty.openpty()
    stream = os.fdopen(slave, "r")
    try:
        yield master, stream
    finally:
        stream.close()
        os.close(master)


def test_each_bound_key_runs_its_action_once_and_others_are_ignored(terminal):
    master, stream = terminal
    pressed = []
    got_q = threading.Event()
    bindings = {"r": lambda: pressed.append("r"), "q": lambda: (pressed.append("q"), got_q.set())}
    before = termios.tcgetattr(stream.fileno())
    with KeyCommands(bindings, stream) as keys:
        assert keys.active
        # cbreak: no echo and no line buffering while the dashboard runs
        assert not termios.tcgetattr(stream.fileno())[3] & (termios.ECHO | termios.ICANON)
        os.write(master, b"xrzq")
        assert got_q.wait(10)
    assert pressed == ["r", "q"]
    assert termios.tcgetattr(stream.fileno()) == before


def test_not_a_terminal_reads_nothing():
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "r") as stream:
        os.write(write_fd, b"rq")
        with KeyCommands({"r": pytest.fail, "q": pytest.fail}, stream) as keys:
            assert not keys.active
        os.close(write_fd)
        assert stream.read() == "rq"  # left for whoever reads stdin


def test_an_action_that_raises_still_restores_the_terminal(terminal):
    master, stream = terminal
    before = termios.tcgetattr(stream.fileno())
    with pytest.raises(RuntimeError, match="boom"), KeyCommands({}, stream):
        raise RuntimeError("boom")
    assert termios.tcgetattr(stream.fileno()) == before


@pytest.mark.slow
def test_r_in_the_dashboard_reloads_the_config_and_q_stops(tmp_path, start_sim, terminal):
    sim = start_sim(speed=2.0)
    master, stream = terminal
    cfg, db, out = tmp_path / "live.toml", tmp_path / "mm.sqlite", tmp_path / "out"
    cfg.write_text("[strategy.fixed]\nhalf_spread_bps = 3.0\n")
    cmd = mmbot_run(sim.http_url, "--db", str(db), "--config", str(cfg), "--out", str(out))
    cmd += ["--duration", "120"]  # the dashboard runs: no --no-dashboard
    with open(tmp_path / "stdout", "w") as stdout, open(tmp_path / "stderr", "w") as stderr:
        bot = subprocess.Popen(cmd, stdin=stream, stdout=stdout, stderr=stderr)
    try:
        # a full spread of 2 x 3 bps of ~65,000 is ~39 USDT; 2 x 20 bps is ~260
        assert wait_for(lambda: 0 < (quoted_spread(sim, SYM) or 0) < 120, timeout_s=30), (
            "never quoted"
        )
        cfg.write_text("[strategy.fixed]\nhalf_spread_bps = 20.0\n")
        os.write(master, b"r")
        assert wait_for(
            lambda: [r[:2] for r in reload_rows(db)] == [(1, "strategy.fixed.half_spread_bps")], 15
        )
        assert wait_for(lambda: (quoted_spread(sim, SYM) or 0) > 200, timeout_s=15)
        os.write(master, b"q")
        assert bot.wait(timeout=60) == 0, (tmp_path / "stderr").read_text()[-3000:]
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.wait()
    assert sim.open_orders(SYM) == []  # q cancels everything, as Ctrl-C does
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config_reloads"] == {"accepted": 1, "refused": 0}
    assert "Traceback" not in (tmp_path / "stderr").read_text()
