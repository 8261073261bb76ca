"""Smoke tests of ``python -m benchmarks --feed`` and ``--sim``: tiny N, no
timing asserted; each must run end to end against its server process."""

import pytest
from benchmarks.feed import main, run_point


@pytest.mark.slow
@pytest.mark.parametrize("raw_frames", [True, False])
def test_feed_benchmark_runs_with_two_symbols(raw_frames):
    row = run_point(2, seconds=2.0, raw_frames=raw_frames, warmup_s=0.2)
    assert row["synced"] == 2
    assert row["applied_frames_s"] > 0 and row["offered_frames_s"] > 0
    assert row["age_max_ms"] is not None and row["feed_cpu_pct"] >= 0


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
