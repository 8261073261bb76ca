"""PnL attribution and markouts: hand-computed numbers, and exact agreement with net PnL."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest

from mmbot import cli
from mmbot.attribution import AttributionError, attribute, markouts
from mmbot.instrument import Instrument
from mmbot.pnl import PnLTracker
from mmbot.sim.engine import FillRecord

# tick 0.1, lot 0.001: one tick*lot is 0.0001 quote
INS = Instrument("X", "linear", "0.1", "0.001", 1, 10**6, Decimal(0))
UNIT = Decimal("0.0001")


def fill(ts, side, price, qty, fee, mid2, link="a"):
    return FillRecord(f"e{ts}", link, ts, side, price, qty, Decimal(fee), True, mid2)


def test_attribution_by_hand():
    # buy 2 lots at 99.9 with mid 100.0 (mid2 2000), sell 1 at 100.2 with mid 100.05
    fills = [fill(0, "Buy", 999, 2, "0.00004", 2000), fill(10, "Sell", 1002, 1, "0.00002", 2001)]
    # edge: 2*(1000-999) + 1*(1002-1000.5) = 3.5 tick-lots = 0.00035
    # inventory at mark 1003: 2*(1003-1000) - 1*(1003-1000.5) = 3.5 tick-lots = 0.00035
    parts = attribute(fills, mark_ticks=1003, unit=UNIT, net_pnl=Decimal("0.00064"))
    assert parts == {
        "gross_edge": Decimal("0.00035"),
        "inventory_pnl": Decimal("0.00035"),
        "fees": Decimal("-0.00006"),
        "funding": Decimal(0),
    }
    # the same fills through the PnL tracker give the same net, to the last digit
    t = PnLTracker(INS)
    for f in fills:
        t.on_fill(f.side, f.price_ticks, f.qty_lots, fee=f.fee)
    assert t.net(1003) == Decimal("0.00064")


def test_attribution_that_does_not_add_up_is_an_error():
    with pytest.raises(AttributionError, match="sums to"):
        attribute(
            [fill(0, "Buy", 999, 2, "0", 2000)], mark_ticks=1000, unit=UNIT, net_pnl=Decimal("1")
        )


def test_markouts_by_hand():
    fills = [fill(1000, "Buy", 999, 2, "0", 2000, "b"), fill(1500, "Sell", 1002, 1, "0", 2001, "s")]
    mid_log = [(0, 2000), (2000, 1996), (6000, 2010), (7000, 2010)]
    m = markouts(fills, mid_log, unit=UNIT, level_of={"b": 0, "s": 1}, horizons_s=(1, 5, 30))
    # 1s: buy at t=2000 mid 998 -> 2*(998-999) = -2; sell at t=2500 mid 998 -> 1002-998 = 4
    assert m["1s"]["total"] == Decimal("0.0002") and m["1s"]["fills"] == 2
    assert m["1s"]["per_side"] == {"Buy": Decimal("-0.0002"), "Sell": Decimal("0.0004")}
    assert m["1s"]["per_level"] == {"0": Decimal("-0.0002"), "1": Decimal("0.0004")}
    # 5s: buy at 6000 mid 1005 -> +12; sell at 6500 mid 1005 -> 1002-1005 = -3
    assert m["5s"]["total"] == Decimal("0.0009")
    # 30s runs past the data: nothing counted
    assert m["30s"]["fills"] == 0 and m["30s"]["total"] == 0


def test_default_backtest_summary_explains_net_pnl_exactly(tmp_path):
    out = tmp_path / "bt"
    logging.disable(logging.WARNING)
    try:
        assert cli.main(["backtest", "--out", str(out), "--duration-s", "60", "--no-chart"]) == 0
    finally:
        logging.disable(logging.NOTSET)
    s = json.loads((out / "summary.json").read_text())
    parts = s["attribution"]
    assert set(parts) == {"gross_edge", "inventory_pnl", "fees", "funding"}
    assert sum(Decimal(v) for v in parts.values()) == Decimal(s["net_pnl"])
    assert Decimal(parts["fees"]) == -Decimal(s["fees"])
    assert set(s["markouts"]) == {"1s", "5s", "30s", "60s"}
    for h in s["markouts"].values():
        assert sum(Decimal(v) for v in h["per_side"].values()) == Decimal(h["total"])
        assert sum(Decimal(v) for v in h["per_level"].values()) == Decimal(h["total"])
    fm = s["fill_model"]
    assert (fm["queue_model"], fm["queue_power"]) == ("prob_power", 3.0)
    assert fm["latency"]["model"] == "constant"
    assert (fm["maker_fee_rate"], fm["taker_fee_rate"]) == ("0.0002", "0.00055")
