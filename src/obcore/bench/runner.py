"""The comparison runner behind ``obcore-bench`` (and the repository's ``python -m benchmarks``).

For each peer (every obcore variant; when installed, order-book, SortedDict and pybit; with
``--quick``/``--full``, the pure-Python reference) on one workload (synthetic, or
``--recording FILE``):

- ``level_ns``: ns per level update, replaying already-decoded messages;
- ``frame_us``: µs per message from raw frame text (JSON decoding included);
- ``best_ns``, ``top10_ns``, ``vwap_ns``: cost of that read right after every message
  (each read timed on its own, minus the clock's cost): reads after writes are what a
  quoting loop does, and where a lazily sorted book pays;
- scaling: ``level_ns`` on synthetic books of 50 to 10,000 levels a side;
- memory: resident memory the book holds for a 10,000-level-a-side book, measured in a
  fresh subprocess per peer (C allocations included).

Each repetition resets the peer and applies the snapshot untimed, then times the deltas.
Reported numbers are medians over repetitions, and ratios divide the baseline's median
by each peer's, both from the same run. Slow peers replay a prefix of the
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
import warnings
from importlib import metadata, util

import obcore
from obcore.bench.peers import (
    FLOOR_NOTE,
    PYBIT_NOTE,
    ExactBook,
    PeerMismatch,
    check_peer,
    make_peer,
    peer_names,
    skipped_peers,
)
from obcore.bench.workloads import Workload, WorkloadError, from_recording, synthetic
from obcore.synthetic import decimal_scale

__all__ = [
    "BenchError",
    "PROFILES",
    "build_parser",
    "execute",
    "format_table",
    "main",
    "run",
    "write_json",
]

# What order-book is to the peers: the library most Python feeds use (cryptofeed).
PREFERRED_BASELINE = "order-book"


class BenchError(Exception):
    """A request the runner cannot carry out (bad option, missing optional package)."""


# Run sizes. ``short`` answers "which variant on my data?" in seconds; ``full`` is the
# method behind docs/performance.md; ``quick`` is the full method at small sizes.
PROFILES = {
    "short": {
        "repeat": 5,
        "budget": 0.05,
        "messages": 300,
        "depths": [],
        "scale_messages": 200,
        "memory": False,
        "memory_messages": 100,
        "reference": False,
        "recording_messages": 2000,
    },
    "quick": {
        "repeat": 3,
        "budget": 0.1,
        "messages": 300,
        "depths": [50, 1000],
        "scale_messages": 200,
        "memory": True,
        "memory_messages": 100,
        "reference": True,
        "recording_messages": None,
    },
    "full": {
        "repeat": 11,
        "budget": 0.3,
        "messages": 2000,
        "depths": [50, 200, 1000, 10_000],
        "scale_messages": 1000,
        "memory": True,
        "memory_messages": 500,
        "reference": True,
        "recording_messages": None,
    },
}


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
            items = wl.msgs[1 : n + 1]
            apply = peer.apply_levels
        else:
            peer.apply_frame(wl.frames[0])
            items = wl.frames[1 : n + 1]
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
    for m in wl.msgs[: n + 1]:
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
    return {name: {m: statistics.median(v) for m, v in ms.items()} for name, ms in samples.items()}


def _make_timers(names, wl: Workload, reps: int, budget_s: float) -> dict:
    # The decoded workload is hundreds of thousands of long-lived objects. Frozen, they are
    # out of the collector's way: the gc.collect() before each replay stays cheap, and a
    # collection during a timed replay costs what it would in a bot that does not hold a
    # whole recording in memory. Refcounting still frees them when the workload goes.
    gc.collect()
    gc.freeze()
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
        "top10_ns": read(lambda p, q: lambda: p.top(10)),
        "vwap_ns": read(lambda p, q: lambda: p.vwap("a", q)),
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
        _log(
            f"  {name}: {r['level_ns']:.0f} ns/level, {r['frame_us']:.2f} µs/msg, best "
            f"{r['best_ns']:.0f} ns ({t.n} msgs timed)"
        )
    return out


def measure_scaling(names, depths, messages: int, reps: int, budget_s: float, seed: int) -> dict:
    """ns per level update at each depth: ``{depth: {peer: ns}}``."""
    out = {}
    for depth in depths:
        wl = synthetic(depth=depth, messages=messages, seed=seed)
        timers = _make_timers(names, wl, reps, budget_s)
        medians = _interleaved(
            timers, reps, {"level_ns": lambda t: t._once("levels") / t.wl.level_updates(t.n + 1)}
        )
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
    from obcore.bench.memory import measure  # noqa: PLC0415 - only when memory is measured

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
        "versions": {
            d: _version(d)
            for d in (
                "obcore",
                "Cython",
                "numpy",
                "orjson",
                "order-book",
                "sortedcontainers",
                "pybit",
            )
        },
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        # Other processes share these cores; a load above the core count means noisy timings.
        "loadavg_at_start": os.getloadavg(),
    }


def _row(cells, widths) -> str:
    return "  ".join(
        str(x).rjust(w) if i else str(x).ljust(w)
        for i, (x, w) in enumerate(zip(cells, widths, strict=True))
    )


def _ratio(x: float) -> str:
    return f"{x:.1f}x" if x >= 0.95 else f"{x:.2g}x"


def format_table(results: dict) -> str:
    """The console table: medians, and speedups relative to the run's baseline."""
    main = results["main"]
    baseline = results.get("baseline")
    base = main.get(baseline, {}) if baseline else {}
    cols = [
        ("level_ns", "ns/level", "{:,.0f}"),
        ("frame_us", "µs/msg", "{:,.2f}"),
        ("best_ns", "best ns", "{:,.0f}"),
        ("top10_ns", "top10 ns", "{:,.0f}"),
        ("vwap_ns", "vwap ns", "{:,.0f}"),
    ]
    mem = results.get("memory", {})
    head = ["peer"] + [h for _, h, _ in cols] + [f"x {baseline} (level/msg)"]
    if mem:
        head.append("MiB @10k")
    rows = []
    for name in results["peers"]:
        r = main.get(name)
        if r is None:
            continue
        if "error" in r:
            rows.append([name, "WRONG RESULT: excluded"] + [""] * (len(head) - 2))
            continue
        row = [name] + [fmt.format(r[k]) if r.get(k) is not None else "-" for k, _, fmt in cols]
        if "level_ns" in base:
            row.append(
                f"{_ratio(base['level_ns'] / r['level_ns'])} / "
                f"{_ratio(base['frame_us'] / r['frame_us'])}"
            )
        else:
            row.append("-")
        if mem:
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
        srows = [
            [n] + [f"{scaling[d][n]:,.0f}" if n in scaling[d] else "-" for d in depths]
            for n in results["peers"]
        ]
        sw = [max(len(str(x)) for x in col) for col in zip(sh, *srows, strict=True)]
        lines += [_row(r, sw) for r in [sh] + srows]
    lines += ["", *("note: " + n for n in results.get("notes", []))]
    return "\n".join(lines)


def _check_step(value: str | None, what: str) -> None:
    if value is None:
        return
    try:
        decimal_scale(value, what)
    except (TypeError, ValueError) as e:
        raise BenchError(str(e)) from None


def _choose_peers(args, profile: dict) -> tuple[list[str], dict[str, list[str]]]:
    """Return (peers to run, optional peers skipped because they are not installed)."""
    available = peer_names(include_reference=True)
    missing = skipped_peers()
    if not args.peers:
        names = [n for n in available if n != "reference" or profile["reference"]]
        return names, missing
    names = [n for n in args.peers.split(",") if n]
    known = set(available) | set(missing) | {"pybit-full"}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise BenchError(f"unknown peers {unknown}; available here: {available}")
    absent = [n for n in names if n in missing]
    if absent:
        need = sorted({d for n in absent for d in missing[n]})
        raise BenchError(f"peers {absent} need {', '.join(need)}: pip install 'obcore[bench]'")
    if "pybit-full" in names and "pybit" in missing:
        raise BenchError("pybit-full needs pybit: pip install 'obcore[bench]'")
    return names, {}


def _choose_baseline(args, names: list[str]) -> str:
    if args.baseline:
        if args.baseline not in names:
            raise BenchError(f"baseline {args.baseline!r} is not among the peers run: {names}")
        return args.baseline
    if PREFERRED_BASELINE in names:
        return PREFERRED_BASELINE
    default = f"obcore-{obcore.kinds()[0]}"  # kinds() lists the default variant first
    return default if default in names else names[0]


def _floor_note(main: dict) -> str | None:
    """How far each obcore variant is from the speed floor, or None without the floor."""
    floor = main.get("floor", {})
    if "level_ns" not in floor:
        return None
    ratios = [
        f"{name} {r['level_ns'] / floor['level_ns']:.2f}x / "
        f"{r['frame_us'] / floor['frame_us']:.2f}x"
        for name, r in main.items()
        if name.startswith("obcore-") and "level_ns" in r
    ]
    return (
        f"{FLOOR_NOTE}; time relative to the floor (per level / per message, lower is "
        f"better): " + ", ".join(ratios)
    )


def _validate(wl: Workload, path: str) -> None:
    """Replay ``wl`` once through obcore so a recording that does not fit the tick or lot
    size fails before anything is timed, with the frame that does not fit."""
    book = obcore.Book(wl.tick_size, wl.lot_size)
    for i, frame in enumerate(wl.frames):
        try:
            book.apply(frame)
        except obcore.ObcoreError as e:
            raise BenchError(f"{path}: {wl.topic} frame {i}: {e}") from None


def run(args) -> dict:
    """Run the comparison described by parsed ``args``; return the results dict.

    Raises
    ------
    BenchError
        A bad option or a requested peer that is not installed.
    WorkloadError, OSError, obcore.ObcoreError
        A recording that cannot be replayed (unreadable, not Bybit frames, off the
        given tick or lot size).
    """
    profile = PROFILES[args.profile]
    reps = args.repeat or profile["repeat"]
    budget_s = args.budget or profile["budget"]
    messages = args.messages or profile["messages"]
    depths = (
        [int(d) for d in args.depths.split(",") if d]
        if args.depths is not None
        else profile["depths"]
    )
    memory = profile["memory"] if args.memory is None else args.memory
    _check_step(args.tick_size, "--tick-size")
    _check_step(args.lot_size, "--lot-size")
    names, skipped = _choose_peers(args, profile)
    baseline = _choose_baseline(args, names)

    if args.recording:
        cap = args.messages or profile["recording_messages"]
        wl = from_recording(
            args.recording,
            tick_size=args.tick_size,
            lot_size=args.lot_size,
            topic=args.topic,
            max_messages=cap,
        )
        if cap is not None and len(wl.frames) == cap and not args.messages:
            _log(
                f"replaying the first {cap:,} frames of the recording (--messages N for "
                "more, --full for all)"
            )
        _validate(wl, args.recording)
    else:
        wl = synthetic(depth=args.depth, messages=messages, seed=args.seed)
    if wl.deltas < 1:
        raise BenchError(f"{wl.name}: a snapshot but no delta to replay")
    _log(
        f"workload {wl.name}: {wl.topic}, {wl.depth} levels a side, {wl.deltas} deltas, "
        f"{wl.level_updates() / max(1, wl.deltas):.1f} levels per delta; "
        f"{args.profile} run, {reps} repetitions"
    )
    notes = [
        f"medians of {reps} repetitions; the ratio column divides {baseline}'s median by "
        "each peer's, measured in this run (higher is faster)",
        "reads are timed one by one right after each message, minus the same timing "
        "around an empty function (null_ns)",
    ]
    if {"order-book", "sorteddict"} & set(names):
        notes += [
            "obcore parses raw frames in C; order-book and SortedDict use orjson.loads "
            "and are keyed by float(price), as cryptofeed does"
        ]
    if any(n.startswith("pybit") for n in names):
        notes.append("pybit runs its own _on_message (json.loads + book + deepcopy)")
    if any(n.startswith("pybit") for n in names):
        notes.append(PYBIT_NOTE)
    notes.append(
        "every peer's top 10 levels and VWAP were checked against an exact "
        "reference after the replay"
    )
    if skipped:
        what = ", ".join(f"{n} (needs {' + '.join(d)})" for n, d in skipped.items())
        notes.append(
            f"peers skipped, not installed: {what}; pip install 'obcore[bench]' "
            "to compare with them"
        )
        _log(f"skipping peers that are not installed: {what}")
    machine = machine_info()
    load, cores = machine["loadavg_at_start"][0], machine["cores"] or 1
    notes.append(
        f"load average {load:.2f} on {cores} cores at the start"
        + (": other processes share the cores, expect noisy timings" if load > cores else "")
    )
    results = {
        "machine": machine,
        "settings": {
            "profile": args.profile,
            "repeat": reps,
            "budget_s": budget_s,
            "seed": args.seed,
        },
        "workload": {
            "name": wl.name,
            "topic": wl.topic,
            "depth": wl.depth,
            "deltas": wl.deltas,
            "tick_size": wl.tick_size,
            "lot_size": wl.lot_size,
            "mean_levels_per_delta": wl.level_updates() / max(1, wl.deltas),
            "vwap_lots": wl.vwap_lots,
            "recording": args.recording,
        },
        "peers": names,
        "baseline": baseline,
        "skipped_peers": skipped,
        "notes": notes,
    }
    _log("main workload:")
    results["main"] = measure_main(names, wl, reps, budget_s)
    floor_note = _floor_note(results["main"])
    if floor_note:
        notes.insert(1, floor_note)
    if depths:
        _log("scaling:")
        results["scaling"] = measure_scaling(
            names,
            depths,
            args.scale_messages or profile["scale_messages"],
            reps,
            budget_s,
            args.seed,
        )
    if memory:
        _log("memory:")
        results["memory"] = measure_memory(names, 10_000, profile["memory_messages"])
        notes.append(
            "memory: resident-set growth while building a 10,000-level-a-side "
            "book (plus deltas) in a fresh process"
        )
    return results


def write_json(path: str, obj: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def build_parser(
    prog: str = "obcore-bench",
    profile: str = "short",
    json_default: str | None = None,
    chart_default: str | None = None,
) -> argparse.ArgumentParser:
    """The command line of ``obcore-bench``; the repository's runner changes the defaults."""
    ap = argparse.ArgumentParser(
        prog=prog,
        description="Compare obcore's book variants (and, when installed, order-book, "
        "SortedDict, pybit) on a synthetic Bybit v5 orderbook stream or on "
        "your own recording. Prints medians and ratios against a baseline "
        "measured in the same run.",
    )
    ap.set_defaults(profile=profile)
    size = ap.add_mutually_exclusive_group()
    size.add_argument(
        "--full",
        dest="profile",
        action="store_const",
        const="full",
        help="the full method: 11 repetitions, 2,000 frames, scaling to "
        "10,000 levels, memory (several minutes)",
    )
    size.add_argument(
        "--quick",
        dest="profile",
        action="store_const",
        const="quick",
        help="the full method at small sizes (about a minute)",
    )
    size.add_argument(
        "--short",
        dest="profile",
        action="store_const",
        const="short",
        help="the main workload only, 5 repetitions (seconds; obcore-bench's default)",
    )
    ap.add_argument(
        "--recording",
        metavar="FILE",
        help="replay a recording: raw frames, one per line, plain or .gz "
        "(the format of obcore.recording and `mmbot record`)",
    )
    ap.add_argument(
        "--tick-size",
        help="the recording's tick size (default: inferred from the most decimals seen)",
    )
    ap.add_argument("--lot-size", help="the recording's lot size (default: inferred)")
    ap.add_argument("--topic", help="the recording's orderbook topic (default: the most frequent)")
    ap.add_argument(
        "--peers",
        help="comma-separated peer names (default: every installed "
        "one; 'reference' only with --quick/--full)",
    )
    ap.add_argument(
        "--baseline",
        help="the peer the ratios are against (default: order-book "
        "when installed, else the default obcore variant)",
    )
    ap.add_argument(
        "--depth",
        type=int,
        default=200,
        help="synthetic main workload: levels a side (default 200)",
    )
    ap.add_argument(
        "--messages",
        type=int,
        help="frames in the main workload (synthetic: default 300, full 2000; "
        "a recording: default its first 2000, with --quick/--full all)",
    )
    ap.add_argument(
        "--depths",
        help="scaling depths, comma-separated (full default "
        "50,200,1000,10000; empty string to skip)",
    )
    ap.add_argument("--scale-messages", type=int, help="frames per scaling workload")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--repeat", type=int, help="repetitions per measurement (default 5, quick 3, full 11)"
    )
    ap.add_argument(
        "--budget",
        type=float,
        help="seconds per repetition before a slow peer replays a prefix "
        "(default 0.05, quick 0.1, full 0.3)",
    )
    ap.add_argument(
        "--memory",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure each book's resident memory at 10,000 levels a side in a "
        "fresh process (default: on with --quick/--full)",
    )
    ap.add_argument(
        "--json",
        default=json_default,
        metavar="PATH",
        help="write the results as JSON" + (f" (default {json_default})" if json_default else ""),
    )
    ap.add_argument(
        "--chart",
        default=chart_default,
        metavar="PATH",
        help="render a PNG chart (needs matplotlib)"
        + (f" (default {chart_default})" if chart_default else ""),
    )
    ap.add_argument("--no-chart", action="store_true", help="do not render the chart")
    return ap


def _fail(prog: str, msg: str) -> int:
    print(f"{prog}: error: {msg}", file=sys.stderr)
    return 2


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def execute(args, prog: str = "obcore-bench") -> int:
    """Run parsed ``args``: print the table, write the JSON and chart; return an exit code.

    Every expected failure is one line on stderr and exit code 2.
    """
    chart = None if args.no_chart else args.chart
    if chart and util.find_spec("matplotlib") is None:
        return _fail(
            prog,
            "--chart needs matplotlib, which is not installed: "
            "pip install matplotlib (or run without --chart)",
        )
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            results = run(args)
        print(format_table(results))
        if args.json:
            write_json(args.json, results)
            print(f"\nresults: {args.json}")
        if chart:
            from obcore.bench.plot import render  # noqa: PLC0415 - matplotlib is optional

            print(f"chart: {render(results, chart)}")
    except (BenchError, WorkloadError, obcore.ObcoreError) as e:
        return _fail(prog, str(e))
    except UnicodeDecodeError as e:
        return _fail(prog, f"{args.recording}: not UTF-8 text ({e.reason} at byte {e.start})")
    except OSError as e:
        return _fail(prog, f"{e.filename}: {e.strerror}" if e.filename else str(e))
    return 0


def main(argv=None) -> int:
    """``obcore-bench`` / ``python -m obcore.bench``."""
    args = build_parser().parse_args(argv)
    try:
        return execute(args)
    except KeyboardInterrupt:
        print("obcore-bench: interrupted", file=sys.stderr)
        return 130
