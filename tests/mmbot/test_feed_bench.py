"""Smoke tests of ``python -m benchmarks --feed`` and ``--sim``: tiny N, no
timing asserted; each must run end to end against its server process."""

import pytest
from benchmarks.feed import _growth_ms_per_s, main, run_point
from benchmarks.handoff import MODES


@pytest.mark.slow
@pytest.mark.parametrize("raw_frames", [True, False])
def test_feed_benchmark_runs_with_two_symbols(raw_frames):
    row = run_point(2, seconds=2.0, raw_frames=raw_frames, warmup_s=0.2)
    assert row["synced"] == 2
    assert row["applied_frames_s"] > 0 and row["offered_frames_s"] > 0
    assert row["age_max_ms"] is not None and row["feed_cpu_pct"] >= 0
    assert isinstance(row["lag_growing"], bool) and row["age_growth_ms_per_s"] is not None


@pytest.mark.slow
@pytest.mark.parametrize("handoff", [None, *MODES])
def test_every_frame_the_server_wrote_is_applied_once(handoff):
    # The reference count is the server's: once it stops, the books (the consumer's in a
    # forward mode) must have applied exactly what it wrote. A frame left in the feed's
    # read-ahead buffer, lost in a hand-off or applied twice shows here.
    row = run_point(20, seconds=1.5, warmup_s=0.2, handoff=handoff)
    assert row["frames_written"] > 20 * 50
    assert row["frames_applied"] == row["frames_written"]
    if handoff is not None:
        assert row["recv_to_order_p50_us"] is not None


def test_growth_is_the_median_age_slope_between_the_outer_thirds():
    # thirds of a 6 s window: their centres are 4 s apart
    assert _growth_ms_per_s(10.0, 30.0, 6.0) == 5.0
    assert _growth_ms_per_s(None, 30.0, 6.0) is None


def test_live_ratio_is_live_recv_to_order_over_backtest_tick_to_order():
    from benchmarks.live import _row, summarize  # noqa: PLC0415

    def timing(**p50):
        return {k: {"p50_us": v, "p90_us": v, "p99_us": v} for k, v in p50.items()}

    rows = [
        _row("backtest", 0, timing(tick_to_order=30.0)),
        _row("live", 0, timing(recv_to_order=90.0, tick_to_order=40.0)),
        _row("backtest", 1, timing(tick_to_order=20.0)),
        _row("live", 1, timing(recv_to_order=50.0, tick_to_order=30.0)),
        _row("backtest", 2, timing(tick_to_order=25.0)),
        _row("live", 2, timing(recv_to_order=60.0, tick_to_order=35.0)),
    ]
    s = summarize(rows)
    assert s["backtest"]["tick_to_order_p50_us"] == 25.0
    assert s["live"]["recv_to_order_p50_us"] == 60.0
    assert s["ratio"] == 2.4 and s["ratio_per_round"] == [3.0, 2.5, 2.4]
    assert s["tick_ratio"] == 1.4


def test_an_awake_live_run_is_set_beside_the_paced_backtest_that_had_the_same_spinners():
    from benchmarks.live import _row, summarize  # noqa: PLC0415

    def timing(**p50):
        return {k: {"p50_us": v, "p90_us": v, "p99_us": v} for k, v in p50.items()}

    rows = [
        _row("backtest", 0, timing(tick_to_order=30.0, tick_to_order_sent=40.0)),
        _row("paced", 0, timing(tick_to_order_sent=100.0)),
        _row("paced-awake", 0, timing(tick_to_order_sent=50.0)),
        _row("live", 0, timing(recv_to_order=200.0)),
        _row("live-awake", 0, timing(recv_to_order=150.0)),
    ]
    plain, awake = summarize(rows), summarize(rows, "live-awake")
    assert (plain["paced_kind"], plain["paced_ratio"], plain["sent_ratio"]) == ("paced", 2.0, 5.0)
    assert (awake["paced_kind"], awake["paced_ratio"], awake["sent_ratio"]) == (
        "paced-awake",
        3.0,
        3.75,
    )


@pytest.mark.slow
def test_feed_benchmark_cli_writes_json(tmp_path, capsys):
    out = tmp_path / "feed.json"
    assert main(["--symbols", "1", "--seconds", "2", "--json", str(out)]) == 0
    assert out.exists() and "applied/s" in capsys.readouterr().out


@pytest.mark.slow
def test_sim_benchmark_runs_with_two_symbols():
    from benchmarks.sim import run_point as sim_point  # noqa: PLC0415

    row = sim_point(2, seconds=1.0, warmup_s=0.2)
    assert row["published_frames_s"] > 0 and row["resyncs"] == 0
