"""Latency samples and their percentiles: one implementation for every timing mmbot reports
(frame to book, tick to quote, tick to order, the live loop's thread hop)."""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Iterable
from typing import Any

__all__ = ["LatencyStats", "age_summary_ms"]


class LatencyStats:
    """Latency samples in nanoseconds: exact percentiles over the first ``max_samples``,
    plus a log2 histogram over all of them.

    Parameters
    ----------
    max_samples : int
        Raw samples kept for exact percentiles (memory: 8 bytes each).
    """

    __slots__ = ("samples", "max_samples", "count", "total_ns", "max_ns", "histogram", "recent")

    def __init__(self, max_samples: int = 1_000_000) -> None:
        self.samples = array("q")
        self.max_samples = max_samples
        self.count = 0
        self.total_ns = 0
        self.max_ns = 0  # over every sample, kept or not
        self.histogram = [0] * 64  # bucket i holds samples in [2**i, 2**(i+1)) ns
        # a live dashboard wants the current figure, cheaply: percentiles of the last few
        self.recent: deque[int] = deque(maxlen=2048)

    @classmethod
    def merged(cls, stats: Iterable[LatencyStats]) -> LatencyStats:
        """Return one set of samples holding every sample kept by ``stats`` (several
        symbols' timings as the run's)."""
        out = cls()
        for st in stats:
            for ns in st.samples:
                out.add(ns)
        return out

    def add(self, ns: int) -> None:
        """Record one sample."""
        self.count += 1
        self.total_ns += ns
        if ns > self.max_ns:
            self.max_ns = ns
        self.histogram[ns.bit_length() - 1 if ns > 1 else 0] += 1
        self.recent.append(ns)
        samples = self.samples
        if len(samples) < self.max_samples:
            samples.append(ns)

    def recent_percentile(self, p: float) -> int | None:
        """Return the ``p``-th percentile (0..100) of the last 2048 samples in ns, or None."""
        if not self.recent:
            return None
        ordered = sorted(self.recent)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]

    def percentile(self, p: float) -> int | None:
        """Return the ``p``-th percentile (0..100) of the kept samples in ns, or None."""
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        idx = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
        return ordered[idx]

    @property
    def median_ns(self) -> int | None:
        """Median in ns (None before the first sample)."""
        return self.percentile(50)

    def summary(self) -> dict[str, Any]:
        """Return count, mean, p50, p90, p99 and max in microseconds, and the histogram."""
        if not self.samples:
            return {"count": 0}
        ordered = sorted(self.samples)

        def pct(p: float) -> float:
            return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] / 1000

        return {
            "count": self.count,
            "mean_us": round(self.total_ns / self.count / 1000, 3),
            "p50_us": pct(50),
            "p90_us": pct(90),
            "p99_us": pct(99),
            "max_us": ordered[-1] / 1000,
            "histogram_log2_ns": {f"{2**i}": n for i, n in enumerate(self.histogram) if n},
        }


def age_summary_ms(stats: LatencyStats) -> dict[str, Any]:
    """Return frame ages (``stats`` holds nanoseconds) as count, p50, p90, p99 and max in ms."""
    if not stats.samples:
        return {"count": 0}
    ordered = sorted(stats.samples)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] / 1e6, 3)

    return {
        "count": stats.count,
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": round(max(ordered[-1], stats.max_ns) / 1e6, 3),
    }
