"""LatencyStats: exact percentiles over the kept samples and the log2 histogram."""

from mmbot.latency import LatencyStats


def test_latency_stats_percentiles():
    s = LatencyStats(max_samples=10)
    for ns in [5000, 1000, 3000, 2000, 4000]:
        s.add(ns)
    assert s.median_ns == 3000 and s.percentile(0) == 1000 and s.percentile(100) == 5000
    summary = s.summary()
    assert summary["p50_us"] == 3.0 and summary["count"] == 5
    assert sum(summary["histogram_log2_ns"].values()) == 5
