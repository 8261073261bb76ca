"""``--trades FILE``: every fill of a run as a table, money as exact strings."""

import csv
import json
from decimal import Decimal

import pytest

import mmbot.trades
from mmbot import cli
from mmbot.config import ConfigError, SimConfig
from mmbot.metrics import Trade
from mmbot.trades import COLUMNS, check_trades_path, trade_rows

INS = SimConfig().instrument("BTCUSDT")  # tick 0.1, lot 0.001
SHORT = [
    "--duration-s",
    "40",
    "--no-chart",
    "--set",
    "strategy.min_spread_bps=0",
    "--set",
    "strategy.fixed.half_spread_bps=0.3",
]


def test_rows_are_exact_and_complete():
    trades = [
        Trade(1_700_000_000_123, "e1", "Buy", 650000, 2, Decimal("0.026"), True, 0, 1300001),
        Trade(1_700_000_001_000, "e2", "Sell", 650012, 1, Decimal("-0.0013"), False, -1, None),
        Trade(1_700_000_002_000, "e3", "Sell", 650012, 1, Decimal("0"), True, None, 1300020),
    ]
    rows = trade_rows(trades, INS)
    assert list(rows[0]) == list(COLUMNS)
    assert rows[0] == {
        "time": "2023-11-14T22:13:20.123Z",
        "ts_ms": 1_700_000_000_123,
        "exec_id": "e1",
        "side": "Buy",
        "price": "65000.0",
        "qty": "0.002",
        "fee": "0.026",
        "liquidity": "maker",
        "level": 0,
        "mid": "65000.05",
    }  # (650000 + 650001) ticks / 2 x 0.1
    assert (rows[1]["fee"], rows[1]["liquidity"], rows[1]["level"], rows[1]["mid"]) == (
        "-0.0013",
        "taker",
        "flatten",
        "",
    )
    assert (rows[2]["level"], rows[2]["mid"], rows[2]["fee"]) == ("", "65001", "0")


@pytest.mark.parametrize(
    "name, message",
    [
        ("fills.txt", "expected a .csv or .parquet"),
        ("fills.parquet", "Parquet needs pyarrow"),
    ],
)
def test_an_unusable_trades_file_stops_before_the_run(tmp_path, capsys, monkeypatch, name, message):
    monkeypatch.setattr(mmbot.trades, "_have_pyarrow", lambda: False)
    out = tmp_path / "bt"
    code = cli.main(["backtest", "--out", str(out), "--trades", str(tmp_path / name), *SHORT])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err and name in err
    assert not out.exists()


def test_backtest_writes_every_fill(tmp_path, capsys):
    out, path = tmp_path / "bt", tmp_path / "fills.csv"
    assert cli.main(["backtest", "--out", str(out), "--trades", str(path), *SHORT]) == 0
    assert f"trades: {path}" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert summary["fills"] > 0 and len(rows) == summary["fills"]
    # the fees and volume add up to the PnL tracker's own totals, digit for digit
    assert sum(Decimal(r["fee"]) for r in rows) == Decimal(summary["fees"])
    assert sum(Decimal(r["qty"]) for r in rows) == Decimal(summary["volume_qty"])
    assert {r["side"] for r in rows} <= {"Buy", "Sell"}
    assert all(r["mid"] and r["level"] in ("0", "1", "flatten") for r in rows)
    assert [int(r["ts_ms"]) for r in rows] == sorted(int(r["ts_ms"]) for r in rows)


def test_parquet_round_trips_when_pyarrow_is_installed(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    trades = [Trade(1_000, "e1", "Buy", 650000, 2, Decimal("0.026"), True, 1, 1300001)]
    path = mmbot.trades.write_trades(tmp_path / "f.parquet", trades, INS)
    table = pq.read_table(path).to_pylist()
    assert table == [{**trade_rows(trades, INS)[0], "level": "1"}]


def test_check_trades_path_names_the_format():
    assert check_trades_path("x/FILLS.CSV") == "csv"
    with pytest.raises(ConfigError, match="--trades x.json"):
        check_trades_path("x.json")
