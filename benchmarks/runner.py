"""``python -m benchmarks``: obcore-bench's runner with the repository's defaults.

The method lives in :mod:`obcore.bench` (shipped in the wheel as ``obcore-bench``); this
module only changes what a run in the repository does by default (the full method, results
to out/benchmarks.json, the chart to docs/img/benchmarks.png) and adds ``--callgrind``,
which needs valgrind and this folder.
"""

from __future__ import annotations

import sys

from obcore.bench.runner import build_parser as _bench_parser
from obcore.bench.runner import execute, write_json
from obcore.bench.workloads import WorkloadError, from_recording, synthetic

__all__ = ["main", "build_parser"]

PROG = "python -m benchmarks"


def build_parser():
    ap = _bench_parser(
        prog=PROG,
        profile="full",
        json_default="out/benchmarks.json",
        chart_default="docs/img/benchmarks.png",
    )
    ap.add_argument(
        "--callgrind",
        metavar="KIND",
        help="count instructions per message for one obcore kind (or peer) under "
        "valgrind --tool=callgrind instead of timing (JSON to "
        "out/callgrind-KIND.json unless --json)",
    )
    return ap


def run_callgrind(args) -> int:
    from benchmarks.callgrind import CallgrindError, count_instructions  # noqa: PLC0415
    from obcore.bench.peers import peer_names  # noqa: PLC0415

    kind = args.callgrind
    names = peer_names() + ["pybit-full"]
    name = kind if kind in names else f"obcore-{kind}"
    if name not in names:
        print(f"{PROG}: error: unknown kind or peer {kind!r}; available: {names}", file=sys.stderr)
        return 2
    if args.recording:
        wl = from_recording(
            args.recording,
            tick_size=args.tick_size,
            lot_size=args.lot_size,
            topic=args.topic,
            max_messages=args.messages or 500,
        )
    else:
        wl = synthetic(depth=args.depth, messages=args.messages or 500, seed=args.seed)
    print(
        f"callgrind: {name} on {wl.name} ({wl.deltas} deltas); three runs under valgrind, "
        "this takes a minute or more",
        file=sys.stderr,
    )
    try:
        r = count_instructions(name, wl.frames, wl.tick_size, wl.lot_size)
    except CallgrindError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    r["workload"] = wl.name
    print(f"{name} on {wl.name}, {r['deltas']} deltas, {r['level_updates']} level updates:")
    print(f"  raw frame -> book:        {r['frames_ir_per_message']:>12,.0f} instructions/message")
    print(
        f"  decoded message -> book:  {r['levels_ir_per_message']:>12,.0f} instructions/message"
        f"  ({r['levels_ir_per_level']:,.0f} per level update)"
    )
    write_json(args.json, r)
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--feed" in argv:
        # feed scale is its own measurement (a server process, a live socket): own options
        from benchmarks.feed import main as feed_main  # noqa: PLC0415

        argv.remove("--feed")
        return feed_main(argv)
    if "--live" in argv:
        from benchmarks.live import main as live_main  # noqa: PLC0415

        argv.remove("--live")
        return live_main(argv)
    if "--sim" in argv:
        from benchmarks.sim import main as sim_main  # noqa: PLC0415

        argv.remove("--sim")
        return sim_main(argv)
    args = build_parser().parse_args(argv)
    if args.callgrind:
        # Instruction counts go beside, never over, the timing results.
        if args.json == "out/benchmarks.json":
            args.json = f"out/callgrind-{args.callgrind}.json"
        try:
            return run_callgrind(args)
        except (WorkloadError, OSError) as e:
            print(f"{PROG}: error: {e}", file=sys.stderr)
            return 2
    return execute(args, prog=PROG)
