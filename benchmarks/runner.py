"""The comparison runner behind ``python -m benchmarks``.

For each peer (every obcore variant, the pure-Python reference, order-book, SortedDict,
pybit) on one workload (synthetic, or ``--recording FILE``):

- ``level_ns``: ns per level update, replaying orjson-decoded messages;
- ``frame_us``: µs per message from raw frame text (JSON decoding included);
- ``best_ns``, ``top10_ns``, ``vwap_ns``: cost of that read right after every message
  (each read timed on its own, minus the clock's cost): reads after writes are what a
  quoting loop does, and where a lazily sorted book pays;
- scaling: ``level_ns`` on synthetic books of 50 to 10,000 levels a side;
- memory: resident memory the book holds for a 10,000-level-a-side book, measured in a
  fresh subprocess per peer (C allocations included).

Each repetition resets the peer and applies the snapshot untimed, then times the deltas.
Reported numbers are medians over repetitions. Slow peers replay a prefix of the
workload sized to a time budget (``messages_timed`` in the JSON). After the timed runs
every peer's top 10 levels a side and VWAP are checked against an exact reference; a
peer that disagrees is reported as failed and gets no numbers.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata

from benchmarks.peers import (
    PYBIT_NOTE,
    ExactBook,
    PeerMismatch,
    check_peer,
    make_peer,
    peer_names,
)
from benchmarks.workloads import Workload, WorkloadError, from_recording, synthetic

__all__ = ["main", "run"]

BASELINE = "order-book"


def _now():
    return time.perf_counter_ns()


class _Timer:
    """Times replays of one peer over a workload prefix sized to a budget."""

    def __init__(self, peer, wl: Workload, budget_s: float, reps: int):
        self.peer = peer
        self.wl = wl
        self.reps = reps
        self.budget_ns = budget_s * 1e9
        self.n = wl.deltas  # deltas replayed per repetition

    def _once(self, mode: str, read=None, n=None) -> int:
        """Replay once; return ns spent applying, or in ``read`` after each message."""
        peer, wl = self.peer, self.wl
        n = self.n if n is None else n
        peer.reset()
        if mode == "levels":
            peer.apply_levels(wl.msgs[0])
            items = wl.msgs[1:n + 1]
            apply = peer.apply_levels
        else:
            peer.apply_frame(wl.frames[0])
            items = wl.frames[1:n + 1]
            apply = peer.apply_frame
        gc.collect()
        now = _now
        if read is None:
            t0 = now()
            for x in items:
                apply(x)
            return now() - t0
        spent = 0
        for x in items:
            apply(x)
            t0 = now()
            read()
            spent += now() - t0
        return spent

    def size_prefix(self) -> None:
        """Shrink the replay so one repetition of the slowest mode fits the budget."""
        probe = min(self.wl.deltas, 50)
        per_msg = self._once("frame", n=probe) / probe
        if per_msg * self.wl.deltas > self.budget_ns:
            self.n = max(probe, int(self.budget_ns / per_msg))

    def median(self, mode: str) -> float:
        return statistics.median(self._once(mode) for _ in range(self.reps))


def _oracle(wl: Workload, n: int) -> ExactBook:
    book = ExactBook(wl.tick_size, wl.lot_size)
    for m in wl.msgs[:n + 1]:
        book.apply_levels(m)
    return book


def _check(peer, wl: Workload, n: int, oracle_cache: dict) -> None:
    if n not in oracle_cache:
        oracle_cache[n] = _oracle(wl, n)
    check_peer(peer, oracle_cache[n], 10, wl.vwap_lots)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _interleaved(timers: dict, reps: int, metrics: dict) -> dict:
    """Collect ``reps`` samples of every metric for every peer, round-robin.

    On a shared machine, load comes in bursts; taking one sample of each peer in turn
    spreads a burst over all of them instead of penalising whichever ran during it.
    """
    samples = {name: {m: [] for m in metrics} for name in timers}
    for _ in range(reps):
        for name, t in timers.items():
            for m, fn in metrics.items():
                samples[name][m].append(fn(t))
    return {name: {m: statistics.median(v) for m, v in ms.items()}
            for name, ms in samples.items()}


def _make_timers(names, wl: Workload, reps: int, budget_s: float) -> dict:
    timers = {}
    for name in names:
        t = _Timer(make_peer(name, wl.tick_size, wl.lot_size, wl.topic), wl, budget_s, reps)
        t.size_prefix()
        timers[name] = t
    return timers


def measure_main(names, wl: Workload, reps: int, budget_s: float) -> dict:
    """Time every peer on ``wl``; return ``{peer: metrics}`` (``error`` on a mismatch)."""
    timers = _make_timers(names, wl, reps, budget_s)
    qty = {id(t): t.peer.native_qty(wl.vwap_lots) for t in timers.values()}

    def read(make_reader):
        # make_reader(peer, vwap_qty) -> the zero-argument read to time after each message
        return lambda t: t._once("frame", read=make_reader(t.peer, qty[id(t)])) / t.n

    def nothing():
        pass

    metrics = {
        "level_ns": lambda t: t._once("levels") / t.wl.level_updates(t.n + 1),
        "frame_us": lambda t: t._once("frame") / t.n / 1000,
        # The same timed loop around an empty function, in the same cache state right
        # after a write: subtracted from each read below, so a read costs its body only
        # (plus a lambda hop for top10/vwap), e.g. best_bid() + best_ask() for obcore.
        "null_ns": read(lambda p, q: nothing),
        "best_ns": read(lambda p, q: p.best),
        "top10_ns": read(lambda p, q: (lambda: p.top(10))),
        "vwap_ns": read(lambda p, q: (lambda: p.vwap("a", q))),
    }
    medians = _interleaved(timers, reps, metrics)
    out = {}
    oracles: dict[int, ExactBook] = {}
    for name, t in timers.items():
        try:
            _check(t.peer, wl, t.n, oracles)  # state after the last replay
        except PeerMismatch as e:
            out[name] = {"error": str(e)}
            _log(f"  {name}: WRONG RESULT, excluded: {e}")
            continue
        r = {"messages_timed": t.n, "levels_timed": wl.level_updates(t.n + 1), **medians[name]}
        for k in ("best_ns", "top10_ns", "vwap_ns"):
            r[k] -= r["null_ns"]
        out[name] = r
        _log(f"  {name}: {r['level_ns']:.0f} ns/level, {r['frame_us']:.2f} µs/msg, best "
             f"{r['best_ns']:.0f} ns ({t.n} msgs timed)")
    return out


def measure_scaling(names, depths, messages: int, reps: int, budget_s: float,
                    seed: int) -> dict:
    """ns per level update at each depth: ``{depth: {peer: ns}}``."""
    out = {}
    for depth in depths:
        wl = synthetic(depth=depth, messages=messages, seed=seed)
        timers = _make_timers(names, wl, reps, budget_s)
        medians = _interleaved(timers, reps, {
            "level_ns": lambda t: t._once("levels") / t.wl.level_updates(t.n + 1)})
        oracles: dict[int, ExactBook] = {}
        row = {}
        for name, t in timers.items():
            try:
                _check(t.peer, wl, t.n, oracles)
            except PeerMismatch as e:
                _log(f"  depth {depth}: {name}: WRONG RESULT, excluded: {e}")
                continue
            row[name] = medians[name]["level_ns"]
        out[str(depth)] = row
        _log(f"  depth {depth}: " + ", ".join(f"{k} {v:.0f}" for k, v in row.items()))
    return out


def measure_memory(names, depth: int, messages: int) -> dict:
    """Resident bytes each peer's book holds at ``depth`` levels a side (subprocess each)."""
    from benchmarks.memory import measure  # noqa: PLC0415

    out = {}
    for name in names:
        try:
            out[name] = measure(name, depth=depth, messages=messages)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            out[name] = {"error": str(e)}
            _log(f"  memory {name}: failed: {e}")
    return out


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
        "versions": {d: _version(d) for d in
                     ("obcore", "Cython", "numpy", "orjson", "order-book", "sortedcontainers",
                      "pybit")},
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        # Other processes share these cores; a load above the core count means noisy timings.
        "loadavg_at_start": os.getloadavg(),
    }


def _row(cells, widths) -> str:
    return "  ".join(str(x).rjust(w) if i else str(x).ljust(w)
                     for i, (x, w) in enumerate(zip(cells, widths, strict=True)))


def format_table(results: dict) -> str:
    """The console table: medians, and speedups relative to order-book."""
    main = results["main"]
    base = main.get(BASELINE, {})
    cols = [("level_ns", "ns/level", "{:,.0f}"), ("frame_us", "µs/msg", "{:,.2f}"),
            ("best_ns", "best ns", "{:,.0f}"), ("top10_ns", "top10 ns", "{:,.0f}"),
            ("vwap_ns", "vwap ns", "{:,.0f}")]
    mem = results.get("memory", {})
    head = ["peer"] + [h for _, h, _ in cols] + [f"x {BASELINE} (level/msg)", "MiB @10k"]
    rows = []
    for name in results["peers"]:
        r = main.get(name)
        if r is None:
            continue
        if "error" in r:
            rows.append([name, "WRONG RESULT: excluded"] + [""] * (len(head) - 2))
            continue
        row = [name] + [fmt.format(r[k]) if r.get(k) is not None else "-" for k, _, fmt in cols]
        if base and "level_ns" in base:
            row.append(f"{base['level_ns'] / r['level_ns']:.1f}x / "
                       f"{base['frame_us'] / r['frame_us']:.1f}x")
        else:
            row.append("-")
        m = mem.get(name, {})
        row.append(f"{m['rss_growth_bytes'] / 2**20:.1f}" if "rss_growth_bytes" in m else "-")
        rows.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    lines = [_row(r, widths) for r in [head] + rows]
    lines.insert(1, "-" * len(lines[0]))
    scaling = results.get("scaling") or {}
    if scaling:
        depths = sorted(scaling, key=int)
        lines += ["", "ns per level update by levels a side:"]
        sh = ["peer"] + depths
        srows = [[n] + [f"{scaling[d][n]:,.0f}" if n in scaling[d] else "-" for d in depths]
                 for n in results["peers"]]
        sw = [max(len(str(x)) for x in col) for col in zip(sh, *srows, strict=True)]
        lines += [_row(r, sw) for r in [sh] + srows]
    lines += ["", *("note: " + n for n in results.get("notes", []))]
    return "\n".join(lines)


def run(args) -> dict:
    """Run the comparison described by parsed ``args``; return the results dict."""
    quick = args.quick
    reps = args.repeat or (3 if quick else 11)
    budget_s = args.budget or (0.1 if quick else 0.3)
    messages = args.messages or (300 if quick else 2000)
    depths = [int(d) for d in args.depths.split(",") if d] if args.depths is not None else (
        [50, 1000] if quick else [50, 200, 1000, 10_000])
    names = args.peers.split(",") if args.peers else peer_names()
    unknown = [n for n in names if n not in peer_names() + ["pybit-full"]]
    if unknown:
        raise SystemExit(f"unknown peers {unknown}; available: {peer_names()}")

    if args.recording:
        wl = from_recording(args.recording, tick_size=args.tick_size, lot_size=args.lot_size,
                            topic=args.topic, max_messages=args.messages)
    else:
        wl = synthetic(depth=args.depth, messages=messages, seed=args.seed)
    _log(f"workload {wl.name}: {wl.topic}, {wl.depth} levels a side, {wl.deltas} deltas, "
         f"{wl.level_updates() / max(1, wl.deltas):.1f} levels per delta")
    results = {
        "machine": machine_info(),
        "settings": {"repeat": reps, "budget_s": budget_s, "quick": quick, "seed": args.seed},
        "workload": {"name": wl.name, "topic": wl.topic, "depth": wl.depth,
                     "deltas": wl.deltas, "tick_size": wl.tick_size, "lot_size": wl.lot_size,
                     "mean_levels_per_delta": wl.level_updates() / max(1, wl.deltas),
                     "vwap_lots": wl.vwap_lots, "recording": args.recording},
        "peers": names,
        "notes": [
            "medians over repetitions; reads are timed one by one right after each message, "
            "minus the same timing around an empty function (null_ns)",
            "obcore parses raw frames in C; order-book and SortedDict use orjson.loads; "
            "pybit uses its own _on_message (json.loads + book + deepcopy)",
            "order-book and SortedDict are keyed by float(price) (as cryptofeed does)",
            PYBIT_NOTE,
            "every peer's top 10 levels and VWAP were checked against an exact reference "
            "after the replay",
        ],
    }
    _log("main workload:")
    results["main"] = measure_main(names, wl, reps, budget_s)
    if depths:
        _log("scaling:")
        results["scaling"] = measure_scaling(names, depths, args.scale_messages or (
            200 if quick else 1000), reps, budget_s, args.seed)
    if not args.no_memory:
        _log("memory:")
        results["memory"] = measure_memory(names, 10_000, 100 if quick else 500)
        results["notes"].append("memory: resident-set growth while building a 10,000-level-"
                                "a-side book (plus deltas) in a fresh process")
    return results


def run_callgrind(args) -> int:
    from benchmarks.callgrind import CallgrindError, count_instructions  # noqa: PLC0415

    kind = args.callgrind
    names = peer_names() + ["pybit-full"]
    name = kind if kind in names else f"obcore-{kind}"
    if name not in names:
        raise SystemExit(f"unknown kind or peer {kind!r}; available: {names}")
    if args.recording:
        wl = from_recording(args.recording, tick_size=args.tick_size, lot_size=args.lot_size,
                            topic=args.topic, max_messages=args.messages or 500)
    else:
        wl = synthetic(depth=args.depth, messages=args.messages or 500, seed=args.seed)
    _log(f"callgrind: {name} on {wl.name} ({wl.deltas} deltas); three runs under valgrind, "
         "this takes a minute or more")
    try:
        r = count_instructions(name, wl.frames, wl.tick_size, wl.lot_size)
    except CallgrindError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    r["workload"] = wl.name
    print(f"{name} on {wl.name}, {r['deltas']} deltas, {r['level_updates']} level updates:")
    print(f"  raw frame -> book:        {r['frames_ir_per_message']:>12,.0f} instructions/message")
    print(f"  decoded message -> book:  {r['levels_ir_per_message']:>12,.0f} instructions/message"
          f"  ({r['levels_ir_per_level']:,.0f} per level update)")
    if args.json:
        _write_json(args.json, r)
    return 0


def _write_json(path: str, obj: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Compare obcore's book variants with order-book, SortedDict, pybit and "
                    "the pure-Python reference on a Bybit v5 orderbook stream.")
    ap.add_argument("--quick", action="store_true",
                    help="small sizes, few repetitions: a minute instead of several")
    ap.add_argument("--recording", metavar="FILE",
                    help="replay a recording (raw frames, one per line, plain or .gz)")
    ap.add_argument("--tick-size", help="recording's tick size (default: inferred)")
    ap.add_argument("--lot-size", help="recording's lot size (default: inferred)")
    ap.add_argument("--topic", help="recording's orderbook topic (default: the most frequent)")
    ap.add_argument("--callgrind", metavar="KIND",
                    help="count instructions per message for one obcore kind (or peer) under "
                         "valgrind --tool=callgrind instead of timing")
    ap.add_argument("--peers", help="comma-separated peer names (default: all available)")
    ap.add_argument("--depth", type=int, default=200,
                    help="synthetic main workload: levels a side (default 200)")
    ap.add_argument("--messages", type=int,
                    help="frames in the main workload (default 2000, quick 300)")
    ap.add_argument("--depths", help="scaling depths, comma-separated (default "
                                     "50,200,1000,10000; empty string to skip)")
    ap.add_argument("--scale-messages", type=int, help="frames per scaling workload")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, help="repetitions per measurement (default 11, quick 3)")
    ap.add_argument("--budget", type=float,
                    help="seconds per repetition before a slow peer replays a prefix "
                         "(default 0.3, quick 0.1)")
    ap.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    ap.add_argument("--json", default=None,
                    help="where to write the results (default out/benchmarks.json, or "
                         "out/callgrind-KIND.json with --callgrind)")
    ap.add_argument("--chart", default="docs/img/benchmarks.png",
                    help="where to render the PNG (default docs/img/benchmarks.png)")
    ap.add_argument("--no-chart", action="store_true")
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.callgrind:
            # Instruction counts go beside, never over, the timing results.
            args.json = args.json or f"out/callgrind-{args.callgrind}.json"
            return run_callgrind(args)
        args.json = args.json or "out/benchmarks.json"
        results = run(args)
    except WorkloadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_table(results))
    _write_json(args.json, results)
    print(f"\nresults: {args.json}")
    if not args.no_chart:
        from benchmarks.plot import render  # noqa: PLC0415

        print(f"chart: {render(results, args.chart)}")
    return 0
