"""Backtest CLI end to end, determinism, the runner's cancel-on-stop, and CLI registration."""
from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from mmbot import cli
from mmbot.commands.backtest import apply_overrides
from mmbot.config import ConfigError, load_config
from mmbot.latency import LatencyStats
from mmbot.orders import OrderManager
from mmbot.pnl import PnLTracker
from mmbot.runner import Runner
from mmbot.sim.engine import MatchingEngine
from mmbot.strategy import build_model
from mmbot.venue.sim import SimVenue
from obcore.synthetic import generate_frames

# a thin explicit spread so a 20 s run trades (the fee-aware default barely does in 20 s)
SHORT = ["--duration-s", "20", "--set", "strategy.min_spread_bps=0",
         "--set", "strategy.fixed.half_spread_bps=0.3"]


def run_cli(tmp_path, name, *extra):
    out = tmp_path / name
    code = cli.main(["backtest", "--out", str(out), *SHORT, *extra])
    return code, out


def test_cli_backtest_writes_report_and_is_deterministic(tmp_path, capsys):
    logging.disable(logging.WARNING)  # post-only amend refusals are expected and logged
    try:
        code, out = run_cli(tmp_path, "a")
        code2, out2 = run_cli(tmp_path, "b")
    finally:
        logging.disable(logging.NOTSET)
    assert code == code2 == 0
    summary = (out / "summary.json").read_bytes()
    assert summary == (out2 / "summary.json").read_bytes()
    s = json.loads(summary)
    assert s["fills"] > 0 and s["frames"] == 1000 and s["simulated_s"] == pytest.approx(20, abs=0.1)
    assert s["open_orders_at_end"] == 0  # everything cancelled at the end
    assert s["volume_lots"] >= s["max_inventory_lots"] > 0
    # the runner's PnL agrees with the engine's own accounting
    assert float(s["fees"]) == pytest.approx(float(s["engine"]["fees"]), abs=1e-6)
    assert s["final_position_lots"] == s["engine"]["position_lots"]
    timing = json.loads((out / "timing.json").read_text())
    assert timing["tick_to_quote"]["count"] == 1000 and timing["tick_to_quote"]["p50_us"] > 0
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert '"fills"' in printed and "chart.png" in printed


def test_cli_seed_and_overrides_change_the_run(tmp_path):
    logging.disable(logging.WARNING)
    try:
        _, a = run_cli(tmp_path, "a", "--no-chart")
        _, b = run_cli(tmp_path, "b", "--no-chart", "--seed", "5", "--set", "strategy.levels=1")
    finally:
        logging.disable(logging.NOTSET)
    sa = json.loads((a / "summary.json").read_text())
    sb = json.loads((b / "summary.json").read_text())
    assert (sb["seed"], sb["config"]["strategy"]["levels"]) == (5, 1)
    assert sa["fills"] != sb["fills"] or sa["net_pnl"] != sb["net_pnl"]
    assert not (a / "chart.png").exists()


def test_cli_records_to_sqlite(tmp_path):
    from mmbot.records import Records  # noqa: PLC0415

    db = tmp_path / "bt.sqlite"
    logging.disable(logging.WARNING)
    try:
        code, out = run_cli(tmp_path, "a", "--no-chart", "--db", str(db))
    finally:
        logging.disable(logging.NOTSET)
    assert code == 0
    s = json.loads((out / "summary.json").read_text())
    with Records(db) as rec:
        fills = rec.load_fills()
        assert len(fills) == s["fills"]
        assert sum(f.qty_lots for f in fills) == s["volume_lots"]
        assert rec.load_orders(open_only=True) == []  # the final cancel-all was recorded
        assert rec.load_pnl()[-1]["position_lots"] == s["final_position_lots"]


def test_cli_rejects_bad_overrides(tmp_path, capsys):
    assert cli.main(["backtest", "--out", str(tmp_path), "--set", "strategy.nope=1"]) == 2
    assert "strategy.nope" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="levels"):
        apply_overrides(load_config(), {"strategy.levels": 0})


def test_a_broken_command_module_is_a_bug_not_a_missing_extra(monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "nonexistent", "a command nobody wrote")
    with pytest.raises(ModuleNotFoundError, match="mmbot.commands.nonexistent"):
        cli.main(["nonexistent"])


@pytest.mark.slow
@pytest.mark.parametrize("blocked", ["pybit", "dotenv"])
def test_a_missing_extra_names_the_install_command(blocked):
    # an installation without the mmbot extra: the module cannot be imported
    code = (f"import sys; sys.modules[{blocked!r}] = None; from mmbot.cli import main; "
            "sys.exit(main(['run', '--out', 'x', '--duration', '1']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and 'pip install "obcore[mmbot]"' in lines[0] and blocked in lines[0]


class Boom(Exception):
    pass


class ExplodingModel:
    """Quotes normally, then raises (an unhandled strategy bug)."""

    def __init__(self, inner, after_frames: int, exc=Boom):
        self.inner = inner
        self.after = after_frames
        self.exc = exc
        self.calls = 0

    def on_book(self, view):
        self.inner.on_book(view)

    def on_fill(self, *a):
        self.inner.on_fill(*a)

    def quotes(self, view):
        self.calls += 1
        if self.calls > self.after:
            raise self.exc("strategy bug")
        return self.inner.quotes(view)


def make_runner(model_wrapper=None):
    cfg = apply_overrides(load_config(), {"strategy.fixed.half_spread_bps": 0.3})
    ins = cfg.sim.instrument("BTCUSDT")
    engine = MatchingEngine(symbol="BTCUSDT", tick_size="0.1", lot_size="0.001")
    venue = SimVenue(engine, order_latency_ms=2, md_latency_ms=1)
    model = build_model(cfg)
    if model_wrapper is not None:
        model = model_wrapper(model)
    orders = OrderManager(venue, "BTCUSDT", min_quote_lifetime_ms=0)
    runner = Runner(instrument=ins, venue=venue, model=model, orders=orders,
                    pnl=PnLTracker(ins, "0.0002", "0.00055"))
    return runner, venue, engine


@pytest.mark.parametrize("exc", [Boom, KeyboardInterrupt])
def test_runner_cancels_everything_on_unhandled_error(exc):
    runner, venue, engine = make_runner(lambda m: ExplodingModel(m, 50, exc))
    with pytest.raises(exc):
        runner.run(venue.stream(generate_frames(messages=500, depth=50, seed=3)))
    assert runner.stopped
    assert engine.open_orders()  # orders were resting when the error hit ...
    venue.advance(venue.now_ms() + 100)
    assert engine.open_orders() == []  # ... and the cancel-all took them all down
    assert runner.orders.all_done()
    # frames arriving after the stop never requote
    sent = runner.orders.requests_sent
    runner.model.after = 10**9  # the model works again; the runner must still stay quiet
    for frame, now in venue.stream(generate_frames(messages=20, depth=50, seed=4)):
        runner.on_frame(frame, now)
    assert runner.orders.requests_sent == sent


def test_runner_quotes_two_sided_and_measures_latency():
    runner, venue, engine = make_runner()
    runner.run(venue.stream(generate_frames(messages=300, depth=50, seed=3), timer_ms=100))
    assert runner.frames == 300 and runner.tick_to_quote.count == 300
    assert runner.quote_updates > 0 and runner.orders_sent >= 2
    h = runner.history
    pairs = [(b, a, m) for b, a, m in zip(h.bid_ticks, h.ask_ticks, h.mid_ticks, strict=True)
             if b == b and a == a]  # NaN != NaN: skip samples without both quotes
    assert pairs and all(b < m < a for b, a, m in pairs)


def test_latency_stats_percentiles():
    s = LatencyStats(max_samples=10)
    for ns in [5000, 1000, 3000, 2000, 4000]:
        s.add(ns)
    assert s.median_ns == 3000 and s.percentile(0) == 1000 and s.percentile(100) == 5000
    summary = s.summary()
    assert summary["p50_us"] == 3.0 and summary["count"] == 5
    assert sum(summary["histogram_log2_ns"].values()) == 5
