"""``mmbot backtest`` end to end: report, determinism, records, bad overrides."""

from __future__ import annotations

import json
import logging

import pytest

from mmbot import cli
from mmbot.config import ConfigError, apply_overrides, load_config

# a thin explicit spread so a 20 s run trades (the fee-aware default barely does in 20 s)
SHORT = [
    "--duration-s",
    "20",
    "--set",
    "strategy.min_spread_bps=0",
    "--set",
    "strategy.fixed.half_spread_bps=0.3",
]


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
