"""The run metrics against numbers worked out by hand."""

import json
import math
from decimal import Decimal

from mmbot import cli
from mmbot.metrics import Trade, metrics_text, run_metrics

D = Decimal
UNIT = D("0.0001")  # tick 0.1 x lot 0.001

TIMES = [0, 30_000, 60_000, 90_000, 120_000, 180_000]
EQUITY = [D(0), D(2), D(-1), D(1), D(3), D("2")]
TRADES = [
    Trade(0, "a", "Buy", 1000, 2, D("0.0004"), True, 0, 2002),  # 1 tick under the mid
    Trade(10_000, "b", "Sell", 1003, 1, D("0.0002"), True, 0, 2004),  # 1 tick over
    Trade(40_000, "c", "Sell", 999, 1, D("0.0002"), False, 1, 2000),  # 1 tick under: -1
    Trade(50_000, "d", "Buy", 999, 1, D("0.0002"), True, 0, 1998),  # at the mid
]


def test_metrics_match_hand_computed_values():
    m = run_metrics(TIMES, EQUITY, TRADES, 8, unit=UNIT, duration_s=180.0)
    # peak 2 at 30 s, trough -1: drawdown 3; below the peak from 30 s until 120 s
    assert m["max_drawdown_quote"] == "3" and m["max_drawdown_duration_s"] == 90.0
    # minute values 0, -1, 3, 2 -> changes -1, 4, -1: mean 2/3, sample sd sqrt(25/3)
    sharpe = (2 / 3) / math.sqrt(25 / 3)
    assert m["sharpe_per_minute"] == round(sharpe, 4) == 0.2309
    assert m["sharpe_annualized"] == round(sharpe * math.sqrt(525_600), 2)
    assert m["whole_minutes"] == 3
    assert m["fill_ratio"] == 0.5  # 4 fills / 8 orders sent
    # FIFO: the first buy's 2 lots are closed at 10 s and 40 s; the last buy stays open
    assert m["avg_time_in_inventory_s"] == 25.0 and m["p95_time_in_inventory_s"] == 40.0
    assert m["open_lots_at_end"] == 1
    # edge in half ticks x lots: 4 + 2 - 2 + 0 = 4 -> 2 tick-lots x 0.0001 / 4 fills
    assert m["realized_spread_per_fill_quote"] == "0.00005"
    bps = (2 / 2002 + 2 / 2004 - 2 / 2000 + 0) * 1e4 / 4
    assert m["realized_spread_per_fill_bps"] == round(bps, 3) == 2.493
    # (1000 x 2 + 1003 + 999 + 999) tick-lots x 0.0001 = 0.5001; 180 s = 1/20 h
    assert m["turnover_quote"] == "0.5001" and m["turnover_per_hour_quote"] == "10.002"
    assert "max drawdown 3 over 90.0 s" in metrics_text(m)


def test_metrics_of_an_empty_run_are_none_not_errors():
    m = run_metrics([], [], [], 0, unit=UNIT, duration_s=0.0)
    assert m["max_drawdown_quote"] == "0" and m["sharpe_per_minute"] is None
    assert m["fill_ratio"] is None and m["avg_time_in_inventory_s"] is None
    assert m["realized_spread_per_fill_quote"] is None and m["turnover_quote"] == "0"


def test_a_position_flip_closes_then_opens():
    trades = [
        Trade(0, "a", "Buy", 1000, 1, D(0), True, 0, 2000),
        Trade(5_000, "b", "Sell", 1000, 3, D(0), True, 0, 2000),  # closes 1, opens 2
        Trade(9_000, "c", "Buy", 1000, 2, D(0), True, 0, 2000),
    ]
    m = run_metrics([], [], trades, 3, unit=UNIT, duration_s=10.0)
    # lots held 5 s (1 lot) and 4 s (2 lots): average 13/3 s, p95 at rank 3 -> 5 s
    assert m["avg_time_in_inventory_s"] == round(13 / 3, 3)
    assert m["p95_time_in_inventory_s"] == 5.0 and m["open_lots_at_end"] == 0


def test_backtest_summary_and_text_carry_the_metrics(tmp_path, capsys):
    out = tmp_path / "bt"
    code = cli.main(
        [
            "backtest",
            "--out",
            str(out),
            "--duration-s",
            "130",
            "--no-chart",
            "--set",
            "strategy.min_spread_bps=0",
            "--set",
            "strategy.fixed.half_spread_bps=0.3",
        ]
    )
    text = capsys.readouterr().out
    assert code == 0
    s = json.loads((out / "summary.json").read_text())
    m = s["metrics"]
    # the same traded notional as the PnL tracker's own count, digit for digit
    assert m["turnover_quote"] == s["turnover_quote"] and s["fills"] > 0
    assert m["fill_ratio"] == round(s["fills"] / s["orders_sent"], 4)
    assert m["whole_minutes"] == 2 and isinstance(m["max_drawdown_quote"], str)
    # the mid at each fill is the exchange's, as in the attribution: the spread per fill
    # times the fills is its gross edge (up to the 1e-8 rounding of the written figure)
    gross = Decimal(s["attribution"]["gross_edge"])
    per_fill = Decimal(m["realized_spread_per_fill_quote"])
    assert abs(per_fill * s["fills"] - gross) <= Decimal("0.5e-8") * s["fills"]
    assert "max drawdown" in text and "fill ratio" in text and "turnover" in text
