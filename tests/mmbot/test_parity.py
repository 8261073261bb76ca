"""Live/backtest parity: a simulated `mmbot run --record FILE`, then `mmbot backtest --data
FILE --latency replay` with the same config, agree on fills and, on a trending market, on
the inventory: its sign at the end and its path second by second.

What the two can and cannot share (measured, see the README's parity paragraph): given
the live exchange's own sequence of requests, the backtest's engine on the recorded
frames reproduces the live fills exactly. The bots' request streams differ, though: the
live bot acts after its thread hop and processing (not replayed) and learns of fills
over the private stream (the backtest replays the order-ack latency for them), so the
two diverge within the first second and afterwards are two runs of one strategy on one
market. On a driftless market the end inventory is then the small difference of ~70
buys and sells and its sign is a coin toss between the two; on a trending market adverse
selection gives it a sign (an up-trend sells to a market maker: it ends short).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from decimal import Decimal

import pytest
from support.bot import mmbot_run

import obcore
from mmbot import cli
from mmbot.recorder import read_recording
from mmbot.records import Records

CONFIG = """
[sim]
seed = {seed}
[strategy]
min_spread_bps = 0.0       # a thin explicit spread, so a short run has fills to compare
levels = 2                 # more fills, less relative noise between the two
[strategy.fixed]
half_spread_bps = 0.3
"""

# ``[sim] seed`` of the embedded simulator's synthetic market (no code, no new knob: the
# seeded random walk already trends for some seeds). A run covers the ~3000 frames from
# the bot's start, a few hundred frames in; the mid's change in ticks over every window
# of 2500-3300 frames starting in the first 800 (scanned with obcore.synthetic):
#   seed 0 ("flat"):  -41 .. +158, no steady trend (the recordings moved -3.5 to -21):
#                     fills are compared, the inventory is not (a coin toss between the two)
#   seed 75 ("up"):   +102 .. +300
#   seed 82 ("down"): -358 .. -113
TRENDS = {"flat": 0, "up": 75, "down": 82}

#: |mid drift| over the recording (ticks) below which a "trending" market did not trend
MIN_DRIFT_TICKS = 50
#: most the fill counts may differ, as a share of the live count, or chance (below),
#: whichever is larger. The flat market is the issue's claim (25%; 15 runs measured, at
#: most 21% apart). The trending markets fill fewer quotes (the up one 40-60 a run), so
#: their counts are noisier: in 13 runs (6 up, 7 down; 10 under two busy loops) at most
#: 25.4% apart (59 live, 44 backtest, up).
MAX_FILL_GAP = {"flat": 0.25, "up": 0.35, "down": 0.35}
#: most the live and backtest positions (lots) may differ at any whole second, or chance
#: (below), whichever is larger. Measured on trending markets before this bound was set:
#: 3-10 lots in fifteen runs. The gap is the noise of two request streams that diverged,
#: about the size of the end position itself, so this catches a one-sided or runaway
#: inventory, not a lot.
MAX_PATH_GAP_LOTS = 15


def _chance(live: int, backtest: int) -> float:
    """Three standard deviations of the difference of two independent counts of these
    sizes (Poisson: variance = count): how far two runs that diverged drift apart by
    chance alone. Bounds set at the largest gap measured failed about one run in ten
    under load (later runs measured a fill gap of 27% on the flat market, 17 of 62, and
    a path gap of 16 lots); a real disagreement (one side filling twice as often, an
    inventory that runs away on one side) is several times larger."""
    return 3 * (live + backtest) ** 0.5


def _run_pair(tmp_path, seed: int) -> tuple[dict, dict, str, str, str]:
    cfg = tmp_path / "parity.toml"
    cfg.write_text(CONFIG.format(seed=seed))
    rec, live_out = tmp_path / "run.jsonl", tmp_path / "live"
    live_db, bt_db = tmp_path / "live.sqlite", tmp_path / "bt.sqlite"
    # 60 s of simulated market at 3x speed (20 s of wall time), loopback simulator
    subprocess.run(
        mmbot_run(
            None,
            *("--config", str(cfg), "--duration", "20", "--speed", "3", "--no-dashboard"),
            *("--db", str(live_db), "--record", str(rec), "--out", str(live_out)),
        ),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        timeout=180,
    )
    logging.disable(logging.WARNING)
    try:
        code = cli.main(
            [
                "backtest",
                "--config",
                str(cfg),
                "--data",
                str(rec),
                "--latency",
                "replay",
                "--out",
                str(tmp_path / "bt"),
                "--no-chart",
                "--db",
                str(bt_db),
            ]
        )
    finally:
        logging.disable(logging.NOTSET)
    assert code == 0
    live = json.loads((live_out / "summary.json").read_text())
    bt = json.loads((tmp_path / "bt" / "summary.json").read_text())
    return live, bt, str(rec), str(live_db), str(bt_db)


def _mid2_drift(rec_path: str) -> int:
    """Return how far best bid + best ask (ticks) moved from the recording's first book
    frame to its last: twice the mid's drift, so half ticks stay whole."""
    recording = read_recording(rec_path)
    assert recording.instruments is not None
    info = recording.instruments["list"][0]
    book = obcore.Book(
        tick_size=info["priceFilter"]["tickSize"], lot_size=info["lotSizeFilter"]["qtyStep"]
    )
    first = last = None
    for _, frame in recording.frames():
        if (obcore.frame_topic(frame) or "").startswith("orderbook"):
            book.apply(frame)
            mid2 = book.best_bid()[0] + book.best_ask()[0]
            first = mid2 if first is None else first
            last = mid2
    assert first is not None and last is not None
    return last - first


def _fills(db_path: str) -> list[tuple[int, int]]:
    """Return ``(exchange time ms, signed lots)`` of the fills recorded in ``db_path``."""
    records = Records(db_path)
    try:
        return sorted(
            (f.exec_ms, f.qty_lots if f.side == "Buy" else -f.qty_lots)
            for f in records.load_fills()
        )
    finally:
        records.close()


def _positions_by_second(fills: list[tuple[int, int]], start_ms: int, end_ms: int) -> list[int]:
    """Return the position (lots) after ``fills`` at every whole second from ``start_ms``
    through ``end_ms``."""
    path, pos, i = [], 0, 0
    for k in range((end_ms - start_ms) // 1000 + 2):
        t = start_ms + 1000 * k
        while i < len(fills) and fills[i][0] <= t:
            pos += fills[i][1]
            i += 1
        path.append(pos)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("market", sorted(TRENDS))
def test_simulated_run_and_its_backtest_agree(tmp_path, market):
    live, bt, rec, live_db, bt_db = _run_pair(tmp_path, TRENDS[market])
    recording = read_recording(rec)
    assert recording.round_trips and any(t.startswith("publicTrade.") for t in recording.topics)
    # the live report explains its PnL too, exactly
    assert sum(Decimal(v) for v in live["attribution"].values()) == Decimal(live["net_pnl"])
    assert set(live["markouts"]) == {"1s", "5s", "30s", "60s"}
    drift2 = _mid2_drift(rec)
    # wall-clock times: the 60 simulated seconds are 20 s of the exchange's clock
    live_fills, bt_fills = _fills(live_db), _fills(bt_db)
    start_ms = min(rt.sent_ns for rt in recording.round_trips) // 1_000_000
    end_ms = max(t for t, _ in live_fills + bt_fills)
    live_path = _positions_by_second(live_fills, start_ms, end_ms)
    bt_path = _positions_by_second(bt_fills, start_ms, end_ms)
    gap = max(abs(a - b) for a, b in zip(live_path, bt_path, strict=True))
    print(
        f"parity {market}: mid drift {drift2 / 2:+} ticks; live fills {live['fills']} "
        f"position {live['final_position_lots']}, backtest fills {bt['fills']} position "
        f"{bt['final_position_lots']}; path gap {gap} lots\n  live {live_path}\n  bt   {bt_path}"
    )
    assert live["fills"] >= 10
    assert abs(bt["fills"] - live["fills"]) <= max(
        MAX_FILL_GAP[market] * live["fills"], _chance(live["fills"], bt["fills"])
    )
    # the records hold the same fills as the summaries (the path is built from them)
    assert live_path[-1] == live["final_position_lots"]
    assert bt_path[-1] == bt["final_position_lots"]
    if market == "flat":
        return  # no inventory claim without a trend (see the module docstring)
    # the market did trend, in the direction its seed was chosen for
    assert abs(drift2) >= 2 * MIN_DRIFT_TICKS
    assert (drift2 > 0) == (market == "up")
    # adverse selection: a market maker ends against the trend, in both
    against = -1 if drift2 > 0 else 1
    assert live["final_position_lots"] * against > 0
    assert bt["final_position_lots"] * against > 0
    lots = sum(abs(q) for _, q in live_fills), sum(abs(q) for _, q in bt_fills)
    assert gap <= max(MAX_PATH_GAP_LOTS, _chance(*lots))
