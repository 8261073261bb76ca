"""Memory held by one peer's book, measured in a fresh process.

``tracemalloc`` does not see C allocations (obcore, order-book), so this measures the
process's resident set instead: RSS after loading the workload, then RSS and peak RSS
after replaying it into a book that is kept alive. Run as::

    python -m obcore.bench.memory --peer obcore-sortedarray --depth 10000 --messages 500
    python -m obcore.bench.memory --peer obcore-ladder --depth 50 --books 1000

With ``--books N`` the process builds N books (construction included) and replays the
stream into each, which gives the cost of one more book of a small depth, where a single
book is below RSS's page granularity. ``per_book_bytes`` includes the harness adapter
around each book (a small Python object and two 10x2 int64 read buffers, about 1 KiB).

It prints one JSON object. :func:`measure` runs it in a subprocess and returns that object.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys

__all__ = ["measure"]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _run(peer_name: str, depth: int, messages: int, seed: int, books: int = 1) -> dict:
    from obcore.bench.peers import make_peer  # noqa: PLC0415 - imported after the baseline
    from obcore.bench.workloads import synthetic  # noqa: PLC0415

    wl = synthetic(depth=depth, messages=messages, seed=seed)
    frames, topic = wl.frames, wl.topic
    del wl  # the parsed copies: only the raw text stays alive during the replay
    if books == 1:
        peers = [make_peer(peer_name, "0.1", "0.001", topic)]
    gc.collect()
    rss0 = _rss_bytes()
    peak0 = _maxrss_bytes()
    if books > 1:
        peers = [make_peer(peer_name, "0.1", "0.001", topic) for _ in range(books)]
    for peer in peers:
        for f in frames:
            peer.apply_frame(f)
    gc.collect()
    rss1 = _rss_bytes()
    peak1 = _maxrss_bytes()
    levels = sum(len(s) for s in peers[0].levels(10**9))
    return {
        "peer": peer_name,
        "depth": depth,
        "messages": messages,
        "levels": levels,
        "books": books,
        "rss_growth_bytes": rss1 - rss0,
        "per_book_bytes": (rss1 - rss0) / books,
        "peak_growth_bytes": max(0, peak1 - peak0),
        "rss_bytes": rss1,
    }


def measure(
    peer_name: str,
    depth: int = 10_000,
    messages: int = 500,
    seed: int = 0,
    timeout_s: float = 600,
    books: int = 1,
) -> dict:
    """Replay a synthetic book of ``depth`` levels a side into ``peer_name`` in a subprocess.

    Returns
    -------
    dict
        ``rss_growth_bytes`` (resident memory the book added and kept; with ``books``
        > 1, all of them), ``per_book_bytes``, ``peak_growth_bytes`` (peak RSS above the
        pre-replay peak) and ``levels`` (in one book).

    Raises
    ------
    RuntimeError
        If the subprocess fails (its stderr is included).
    """
    cmd = [
        sys.executable,
        "-m",
        "obcore.bench.memory",
        "--peer",
        peer_name,
        "--depth",
        str(depth),
        "--messages",
        str(messages),
        "--seed",
        str(seed),
        "--books",
        str(books),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(f"memory measurement for {peer_name} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m obcore.bench.memory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--peer", required=True)
    ap.add_argument("--depth", type=int, default=10_000)
    ap.add_argument("--messages", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--books", type=int, default=1, help="build this many books and report the growth per book"
    )
    a = ap.parse_args(argv)
    if a.books < 1:
        ap.error("--books must be at least 1")
    print(json.dumps(_run(a.peer, a.depth, a.messages, a.seed, a.books)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
