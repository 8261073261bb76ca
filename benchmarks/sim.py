"""Simulator publish rate: frames/s one ``mmbot sim`` process sends to one subscriber.

``python -m benchmarks --sim`` starts ``mmbot sim`` in its own process with N synthetic
symbols at Bybit's 20 ms depth-50 cadence (so N x 50 frames/s are due), subscribes a
:class:`mmbot.bybit.BookFeed` to ``orderbook.50`` of every symbol, and reports over a
measuring window the frames/s the feed applied (every one checked by obcore: a frame out
of sequence would resync its book and show as ``resyncs``), the simulator process's CPU
(% of one core, from /proc), the frames it published per CPU-second it got (what one
whole core would carry: on a shared machine the simulator often gets less than a core),
the feed's CPU (this process) and the frames' age at receipt (growing when it falls
behind its clock).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time

__all__ = ["main", "run_point"]


# `mmbot sim` knows a few real symbols; the benchmark wants any number of them
_SERVE = """
import sys, time
from mmbot.sim.server import SimSymbol, start_simulator
h = start_simulator(int(sys.argv[1]), [SimSymbol(s) for s in sys.argv[2].split(",")],
                    interval_ms=20)
h.wait_market()
print("ready", flush=True)
while True:
    time.sleep(3600)
"""


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_point(
    n_symbols: int, *, seconds: float = 5.0, warmup_s: float = 2.0, python: str = sys.executable
) -> dict:
    """Run one simulator process with ``n_symbols`` and one feed; return the row."""
    from mmbot.bybit import BookFeed  # noqa: PLC0415
    from mmbot.latency import LatencyStats, age_summary_ms  # noqa: PLC0415

    port = _free_port()
    symbols = [f"S{i:03d}USDT" for i in range(n_symbols)]
    proc = subprocess.Popen(
        [python, "-c", _SERVE, str(port), ",".join(symbols)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    feed = None
    try:
        line = proc.stdout.readline()  # it says "ready" once it listens
        if "ready" not in line:
            raise RuntimeError(f"simulator did not start: {line}{proc.stdout.read()}")
        feed = BookFeed("linear", ws_base=f"ws://127.0.0.1:{port}", resync_timeout_s=30.0)
        for s in symbols:
            feed.add_book(s, "0.1", "0.001", depth=50)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(e.synced for e in feed.books.values()):
            time.sleep(0.05)
        time.sleep(warmup_s)
        frames0 = sum(e.frames for e in feed.books.values())
        resyncs0 = sum(e.resyncs for e in feed.books.values())
        cpu0, feed0, t0 = _cpu_s(proc.pid), time.process_time(), time.monotonic()
        feed.frame_age = LatencyStats()
        time.sleep(seconds)
        frames1 = sum(e.frames for e in feed.books.values())
        cpu1, feed1, t1 = _cpu_s(proc.pid), time.process_time(), time.monotonic()
        ages = age_summary_ms(feed.frame_age)
        wall = t1 - t0
        frames = frames1 - frames0
        return {
            "symbols": n_symbols,
            "python": python,
            "due_frames_s": n_symbols * 50,
            "published_frames_s": round(frames / wall),
            "sim_cpu_pct": round(100 * (cpu1 - cpu0) / wall, 1),
            "frames_per_sim_cpu_s": round(frames / (cpu1 - cpu0)) if cpu1 > cpu0 else None,
            "feed_cpu_pct": round(100 * (feed1 - feed0) / wall, 1),
            "resyncs": sum(e.resyncs for e in feed.books.values()) - resyncs0,
            "age_p50_ms": ages.get("p50_ms"),
            "age_max_ms": ages.get("max_ms"),
        }
    finally:
        if feed is not None:
            feed.exit()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks --sim",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--symbols", default="50,200", help="comma-separated symbol counts")
    ap.add_argument("--seconds", type=float, default=5.0, help="measuring window per count")
    ap.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter that runs the simulator; several, comma-separated, "
        "alternate (e.g. another checkout's venv, for a before/after)",
    )
    ap.add_argument("--json", default="out/sim.json", help="results file ('' for none)")
    args = ap.parse_args(argv)
    rows = [
        run_point(int(n), seconds=args.seconds, python=py)
        for n in args.symbols.split(",")
        if n
        for py in args.python.split(",")
    ]
    print("simulator publish rate, one `mmbot sim` process, orderbook.50 every 20 ms a symbol:")
    print(
        "python | symbols | due/s | published/s | sim CPU | frames/sim CPU-s | feed CPU | "
        "resyncs | age p50 ms | age max ms"
    )
    print("--- | --- | --- | --- | --- | --- | --- | --- | --- | ---")
    for r in rows:
        print(
            f"{r['python']} | {r['symbols']} | {r['due_frames_s']} | {r['published_frames_s']} | "
            f"{r['sim_cpu_pct']}% | {r['frames_per_sim_cpu_s']} | {r['feed_cpu_pct']}% | "
            f"{r['resyncs']} | {r['age_p50_ms']} | {r['age_max_ms']}"
        )
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
