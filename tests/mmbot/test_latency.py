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


def test_histogram_buckets_are_powers_of_two():
    s = LatencyStats(max_samples=2)
    # bucket i holds [2**i, 2**(i+1)) ns; zero and negative samples (a clock offset) go to 0
    for ns in [-5, 0, 1, 2, 3, 4, 1023, 1024]:
        s.add(ns)
    assert s.histogram[:11] == [3, 2, 1, 0, 0, 0, 0, 0, 0, 1, 1]
    assert s.count == 8 and s.max_ns == 1024 and list(s.samples) == [-5, 0]
