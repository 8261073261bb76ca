"""Live latency as a ratio, in one run: ``mmbot run`` against a simulator in another
process versus the in-process backtest.

``python -m benchmarks --live`` repeats, in turn (so a burst of load on the machine hits
both):

- ``mmbot backtest`` (the venue in the bot's own process, frames in a tight loop): its
  timing.json's ``tick_to_order`` p50, frame in to order requests handed to the venue;
- ``mmbot sim`` in one process and ``mmbot run --sim-url`` in another (the real pybit
  clients over loopback): its timing.json's ``recv_to_order``, frame received on the
  socket thread to the order request written to the trade socket, at p50/p90/p99, with
  the feed hook to the runner (``feed_hop_us``; the same thread unless the gate was
  held) and ``tick_to_order`` beside it.

- the same backtest paced as a live feed arrives (``--paced-s`` simulated seconds, a
  ``--pace-ms`` sleep before each orderbook frame; 0 turns it off): the same code and frames
  as the tight loop, but each frame finds the CPU as a live frame does, after a wait.

Each side is a fresh process every round; the table shows the medians over the rounds and
the ratio of the live ``recv_to_order`` p50 to the backtest's ``tick_to_order`` p50 (the
issue's target: 2x or less).

``recv_to_order`` counts only frames that wrote at least one order request, while
``tick_to_order`` counts every frame (most send nothing). The like-for-like ratio divides
by the backtest's ``tick_to_order_sent`` instead: ``tick_to_order`` over the frames that
sent, the same frames as ``recv_to_order``. Both ratios are printed.

The tight loop runs the frame path back to back, hot in the CPU's caches and branch
predictors; live, frames come 20 ms apart and each finds the path cold. On this 2-vCPU VM
a 2 ms sleep between frames already makes the backtest's ``tick_to_order`` 1.6x slower
and 20 ms 4-5x (``mmbot backtest`` with a sleep in its frame source, 2026-11-30). The paced
backtest separates the two: ``paced_ratio`` (live ``recv_to_order`` p50 over the paced
backtest's ``tick_to_order_sent`` p50, the same frames) is what the live plumbing (socket,
feed, gate, the request's encoding and write) adds over the bot's own code run cold.

``--compare`` adds, each round, a live run whose trade socket writes through pybit and
websocket-client (``MMBOT_TRADE_SEND=pybit``) next to the default one, which writes its
frames itself (:class:`mmbot.bybit.clients.LocalWebSocketTrading`).

``--baseline-src DIR`` adds, each round, a live run of another checkout's ``mmbot``
package (``DIR/mmbot``, first on ``PYTHONPATH``; obcore stays this environment's) against
its own fresh simulator, in alternating order with this tree's: before/after in one run.
Make DIR with e.g. ``mkdir -p /tmp/main-src && git archive main src/mmbot | tar -x
--strip-components=1 -C /tmp/main-src``.

``--tls`` adds, each round, a live run against a simulator serving TLS (``https``/``wss``,
as Bybit; a throwaway CA from ``trustme``, a test dependency): the feed reads TLS and the
trade socket writes TLS, as on Bybit. ``recv_to_order`` ends when the order frame is
written, or handed to the trade socket's writer thread; ``order queued -> written`` is
how long the handed ones waited for it.

``--awake`` adds, each round, a live run with ``[run] keep_cpus_awake = true`` (an
idle-priority spinner on each of the bot's CPUs, :mod:`mmbot.awake`) and the paced backtest
with the same spinners: on a VM an idle CPU halts, and most of a cold frame's cost is
coming back from that halt. Use it with ``--pin``, so only the bot's CPU spins.

``--pin`` runs the simulator on CPU 0 and the bot (both sides) on CPU 1. Unpinned, on a
2-vCPU machine the simulator process often wakes on the CPU of the bot's thread that just
wrote it an order and preempts it (the request wakes it): the order is already in the
simulator's socket, but the bot's thread gets its CPU back only after the simulator has
handled the request, and ``recv_to_order`` includes that wait. A remote exchange never
takes the bot's CPU; pinned, neither does the simulator.

Each live run's timing.json also gives the frame path's stages from the frame's receive
on the socket thread (``recv_to_book``, ``recv_to_quote``, ``recv_to_order``, p50/p90/p99)
and where the frames ran (``gate``: processed by the socket thread that received them, or
queued for the session thread) and how the order frames were written (``trade_writes``:
by the sending thread, or by the trade socket's writer thread).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["main", "run_backtest_point", "run_live_point", "run_paced_point", "start_sim"]

TARGET_RATIO = 2.0
# Both sides quote with this config. With the defaults' tolerances a quiet synthetic market
# moves a quote a few times a minute, too few live orders for a p50; with none, every
# frame that moves the mid requotes, until the order rate limits (10/s) say no.
CONFIG = """\
[strategy]
requote_tolerance_ticks = 0
[orders]
requote_tolerance_spread_frac = 0.0
min_quote_lifetime_ms = 0
"""


def _mmbot(*args: str) -> list[str]:
    return [sys.executable, "-m", "mmbot", *args]


def _timing(out: Path) -> dict:
    with open(out / "timing.json") as fh:
        return json.load(fh)


def _pinned(cpus: set[int] | None):
    """A ``preexec_fn`` that runs the child on ``cpus`` only (None: anywhere)."""
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def run_backtest_point(
    duration_s: float, out: Path, config: str, cpus: set[int] | None = None
) -> dict:
    """Run ``mmbot backtest`` for ``duration_s`` simulated seconds; return its timing."""
    subprocess.run(
        _mmbot(
            "backtest",
            "--config",
            config,
            "--out",
            str(out),
            "--duration-s",
            str(duration_s),
            "--no-chart",
        ),
        check=True,
        stdout=subprocess.DEVNULL,
        preexec_fn=_pinned(cpus),
    )
    return _timing(out)


def run_paced_point(
    duration_s: float,
    pace_ms: float,
    out: Path,
    config: str,
    cpus: set[int] | None = None,
    awake: bool = False,
) -> dict:
    """Run the backtest of :func:`run_backtest_point` in a fresh process, sleeping
    ``pace_ms`` before each orderbook frame; return its timing. ``awake``: with an
    idle-priority spinner on each of its CPUs (:class:`mmbot.awake.AwakeCpus`)."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-c",
            _PACED_CHILD,
            config,
            str(duration_s),
            str(pace_ms),
            str(out),
            "awake" if awake else "",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        preexec_fn=_pinned(cpus),
    )
    return _timing(out)


# The child: run_backtest over the synthetic frames, through a source that sleeps before
# each orderbook frame. The simulated venue pulls one frame ahead, so the sleep falls just
# before the runner gets the frame before it: a wait, then a frame, as live.
_PACED_CHILD = """
import contextlib, json, sys, time
from mmbot.awake import AwakeCpus
from mmbot.backtest import market_frames, run_backtest
from mmbot.config import load_config
config, seconds, pace_ms, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
cfg = load_config(config)
def paced(frames, pause=pace_ms / 1000):
    for frame in frames:
        if '"topic":"orderbook.' in frame[:60]:
            time.sleep(pause)
        yield frame
with AwakeCpus() if sys.argv[5] == "awake" else contextlib.nullcontext():
    result = run_backtest(cfg, frames=paced(market_frames(cfg, duration_s=seconds)))
with open(out + "/timing.json", "w") as fh:
    json.dump(result.timing, fh)
"""


def start_sim(
    cpus: set[int] | None = None, tls: tuple[str, str] | None = None
) -> tuple[subprocess.Popen, str]:
    """Start ``mmbot sim`` on a free port (serving TLS with ``tls``: cert and key files);
    return the process and its REST URL."""
    proc = subprocess.Popen(
        _mmbot("sim", "--port", "0", *(("--tls-cert", tls[0], "--tls-key", tls[1]) if tls else ())),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_pinned(cpus),
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip().startswith("REST"):
            return proc, line.split()[-1]
    proc.kill()
    raise RuntimeError("mmbot sim exited before printing its URL")


def run_live_point(
    seconds: float,
    out: Path,
    config: str,
    env: dict | None = None,
    pin: tuple[set[int], set[int]] | None = None,
    tls: tuple[str, str] | None = None,
) -> dict:
    """Run ``mmbot run --sim-url`` for ``seconds`` against a fresh ``mmbot sim``; return
    its timing. ``pin``: the simulator's CPUs and the bot's; ``tls``: the simulator's
    certificate and key (``env`` must make the bot trust it)."""
    sim, url = start_sim(pin[0] if pin else None, tls)
    try:
        subprocess.run(
            _mmbot(
                "run",
                "--config",
                config,
                "--sim-url",
                url,
                "--duration",
                str(seconds),
                "--out",
                str(out),
                "--db",
                "",
                "--no-dashboard",
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            preexec_fn=_pinned(pin[1] if pin else None),
        )
    finally:
        sim.kill()
        sim.wait(10)
    return _timing(out)


def _tls(tmp: Path) -> tuple[tuple[str, str], dict]:
    """A certificate for 127.0.0.1 from a throwaway CA: (cert, key) files, and the
    environment that makes the bot's clients trust it."""
    import trustme  # noqa: PLC0415  (a test dependency; only --tls needs it)

    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    cert, key, bundle = tmp / "cert.pem", tmp / "key.pem", tmp / "ca.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(bundle))
    env = {"WEBSOCKET_CLIENT_CA_BUNDLE": str(bundle), "REQUESTS_CA_BUNDLE": str(bundle)}
    return (str(cert), str(key)), env


def _get(timing: dict, key: str, p: str):
    return (timing.get(key) or {}).get(f"{p}_us")


def _row(kind: str, rnd: int, timing: dict) -> dict:
    row = {"kind": kind, "round": rnd, "frames": timing.get("frames")}
    for key in (
        "tick_to_order",
        "tick_to_order_sent",
        "recv_to_order",
        "recv_to_book",
        "recv_to_quote",
        "feed_hop_us",
    ):
        for p in ("p50", "p90", "p99"):
            row[f"{key}_{p}_us"] = _get(timing, key, p)
    row["recv_to_order_count"] = (timing.get("recv_to_order") or {}).get("count")
    for group in ("gate", "trade_writes"):  # absent from a baseline without them
        for k, v in (timing.get(group) or {}).items():
            if not isinstance(v, dict):
                row[f"{group}_{k}"] = v
    waited = (timing.get("trade_writes") or {}).get("queued_write") or {}
    for p in ("p50", "p90", "p99"):
        row[f"queued_write_{p}_us"] = waited.get(f"{p}_us")
    return row


def _median(rows: list[dict], key: str):
    values = [r[key] for r in rows if r.get(key) is not None]
    return round(statistics.median(values), 1) if values else None


def summarize(rows: list[dict], live_kind: str = "live") -> dict:
    """Medians per side and the ratio (live recv_to_order p50 / backtest tick_to_order p50)
    for the live runs of ``live_kind``; a ``-awake`` kind is set beside the paced backtest
    that ran with the same spinners."""
    bt = [r for r in rows if r["kind"] == "backtest"]
    live = [r for r in rows if r["kind"] == live_kind]
    paced_kind = "paced-awake" if live_kind.endswith("-awake") else "paced"
    paced = [r for r in rows if r["kind"] == paced_kind]
    keys = [k for k in rows[0] if k.endswith("_us")] if rows else []
    medians = {
        side: {k: _median(side_rows, k) for k in keys}
        for side, side_rows in (("backtest", bt), ("paced", paced), ("live", live))
    }
    out: dict[str, Any] = {"kind": live_kind, "paced_kind": paced_kind, **medians}
    out["rounds"] = len(bt)
    base = medians["backtest"]["tick_to_order_p50_us"]
    top = medians["live"]["recv_to_order_p50_us"]
    out["ratio"] = round(top / base, 2) if base and top else None
    # the same ratio round by round: each live run against the backtest just before it
    per_round = []
    for b, r in zip(bt, live, strict=False):  # a failed last round leaves one side short
        if b["tick_to_order_p50_us"] and r["recv_to_order_p50_us"]:
            per_round.append(round(r["recv_to_order_p50_us"] / b["tick_to_order_p50_us"], 2))
    out["ratio_per_round"] = per_round
    # like for like: the backtest over the frames that sent orders, as recv_to_order counts
    sent = medians["backtest"]["tick_to_order_sent_p50_us"]
    out["sent_ratio"] = round(top / sent, 2) if sent and top else None
    # like for like and as cold: the backtest paced as the live feed, frames that sent
    cold = medians["paced"]["tick_to_order_sent_p50_us"]
    out["paced_ratio"] = round(top / cold, 2) if cold and top else None
    # like for like: every frame on both sides, from the runner's entry (no hop)
    same = medians["live"]["tick_to_order_p50_us"]
    out["tick_ratio"] = round(same / base, 2) if base and same else None
    # where the frames ran and how the orders were written, summed over the rounds
    for key in ("gate_inline", "gate_queued", "trade_writes_inline", "trade_writes_queued"):
        values = [r[key] for r in live if r.get(key) is not None]
        out[key] = sum(values) if values else None
    return out


def _text(s: dict) -> str:
    b, c, v = s["backtest"], s["paced"], s["live"]

    def trio(side: dict, key: str) -> str:
        return "/".join(str(side.get(f"{key}_{p}_us")) for p in ("p50", "p90", "p99"))

    lines = [
        f"{s['kind']}: medians of {s['rounds']} interleaved rounds (µs, p50/p90/p99):",
        f"  backtest  tick -> order              {trio(b, 'tick_to_order')}",
        f"  backtest  tick -> order, sent frames {trio(b, 'tick_to_order_sent')}",
        f"  {s['paced_kind']:<9} tick -> order              {trio(c, 'tick_to_order')}",
        f"  {s['paced_kind']:<9} tick -> order, sent frames {trio(c, 'tick_to_order_sent')}",
        f"  live      frame received -> order    {trio(v, 'recv_to_order')}",
        f"  live      frame received -> book     {trio(v, 'recv_to_book')}",
        f"  live      frame received -> quote    {trio(v, 'recv_to_quote')}",
        f"  live      feed hook -> runner        {trio(v, 'feed_hop_us')}",
        f"  live      order queued -> written    {trio(v, 'queued_write')} "
        "(the frames the writer thread wrote)",
        f"  live      tick -> order              {trio(v, 'tick_to_order')}",
        f"  live      tick -> order, sent frames {trio(v, 'tick_to_order_sent')}",
        f"ratio live recv->order p50 / backtest tick->order p50: {s['ratio']}x "
        f"(per round {s['ratio_per_round']}; target <= {TARGET_RATIO}x)",
        f"like for like, live recv->order p50 / backtest tick->order p50 over the frames "
        f"that sent orders: {s['sent_ratio']}x",
        f"live recv->order p50 / paced backtest tick->order p50 over the frames that sent "
        f"orders (the live plumbing over the same code run as cold): {s['paced_ratio']}x",
        f"live tick->order p50 / backtest tick->order p50 (every frame, no hop): "
        f"{s['tick_ratio']}x",
        f"items run by the socket thread that received them {s['gate_inline']}, queued for "
        f"the session thread {s['gate_queued']}; order frames written by the sender "
        f"{s['trade_writes_inline']}, by the writer thread {s['trade_writes_queued']}",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks --live",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--rounds", type=int, default=3, help="interleaved repetitions (default 3)")
    ap.add_argument("--seconds", type=float, default=20.0, help="each live run's length")
    ap.add_argument(
        "--backtest-s", type=float, default=120.0, help="each backtest's simulated seconds"
    )
    ap.add_argument(
        "--paced-s",
        type=float,
        default=20.0,
        help="the paced backtest's simulated seconds (about as many wall seconds)",
    )
    ap.add_argument(
        "--pace-ms",
        type=float,
        default=20.0,
        help="the paced backtest's sleep before each orderbook frame (0: no paced run)",
    )
    ap.add_argument("--json", default="out/live.json", help="results file ('' for none)")
    ap.add_argument(
        "--compare",
        action="store_true",
        help="also run live with the trade socket writing through pybit (the old path)",
    )
    ap.add_argument(
        "--tls",
        action="store_true",
        help="also run live against a simulator serving TLS (https/wss), as Bybit",
    )
    ap.add_argument(
        "--awake",
        action="store_true",
        help="also run live and the paced backtest with [run] keep_cpus_awake (use --pin)",
    )
    ap.add_argument(
        "--pin",
        action="store_true",
        help="run the simulator on CPU 0 and the bot (live and backtest) on CPU 1",
    )
    ap.add_argument(
        "--baseline-src",
        default="",
        help="also run live with DIR/mmbot (another checkout's package) first on PYTHONPATH",
    )
    args = ap.parse_args(argv)
    rows: list[dict] = []
    pin = ({0}, {1}) if args.pin else None
    with tempfile.TemporaryDirectory(prefix="mmbot-live-bench-") as tmp:
        config = Path(tmp) / "bench.toml"
        config.write_text(CONFIG)
        awake_config = Path(tmp) / "bench-awake.toml"
        awake_config.write_text(CONFIG + "[run]\nkeep_cpus_awake = true\n")
        tls_files, tls_env = _tls(Path(tmp)) if args.tls else (None, None)
        for rnd in range(args.rounds):
            t0 = time.monotonic()
            bt = run_backtest_point(
                args.backtest_s, Path(tmp) / f"bt{rnd}", str(config), pin[1] if pin else None
            )
            rows.append(_row("backtest", rnd, bt))
            paced = ""
            paced_runs = ([False, True] if args.awake else [False]) if args.pace_ms > 0 else []
            for awake in paced_runs:
                kind = "paced-awake" if awake else "paced"
                pt = run_paced_point(
                    args.paced_s,
                    args.pace_ms,
                    Path(tmp) / f"{kind}{rnd}",
                    str(config),
                    pin[1] if pin else None,
                    awake=awake,
                )
                rows.append(_row(kind, rnd, pt))
                paced += f", {kind} {pt['tick_to_order_sent']['p50_us']} µs (sent frames)"
            kinds: list[tuple[str, dict | None]] = [("live", None)]
            if args.awake:
                kinds.append(("live-awake", None))
            if args.tls:
                kinds.append(("live-tls", tls_env))
            if args.compare:
                kinds.append(("live-pybit", {"MMBOT_TRADE_SEND": "pybit"}))
            if args.baseline_src:
                path = os.pathsep.join(
                    p for p in (args.baseline_src, os.environ.get("PYTHONPATH")) if p
                )
                kinds.append(("live-baseline", {"PYTHONPATH": path}))
                if args.tls:
                    kinds.append(("live-baseline-tls", {"PYTHONPATH": path, **(tls_env or {})}))
            kinds = kinds[:: 1 if rnd % 2 == 0 else -1]  # neither always runs warmer
            done = []
            for kind, env in kinds:
                live = run_live_point(
                    args.seconds,
                    Path(tmp) / f"{kind}{rnd}",
                    str(awake_config if kind.endswith("-awake") else config),
                    env=env,
                    pin=pin,
                    tls=tls_files if kind.endswith("-tls") else None,
                )
                rows.append(_row(kind, rnd, live))
                done.append(f"{kind} recv->order p50 {rows[-1]['recv_to_order_p50_us']} µs")
            print(
                f"round {rnd + 1}/{args.rounds}: backtest tick->order p50 "
                f"{bt['tick_to_order']['p50_us']} µs{paced}, {', '.join(done)} "
                f"({time.monotonic() - t0:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    shown = (
        ["live"]
        + ["live-awake"] * args.awake
        + ["live-tls"] * args.tls
        + ["live-pybit"] * args.compare
        + ["live-baseline"] * bool(args.baseline_src)
        + ["live-baseline-tls"] * bool(args.baseline_src and args.tls)
    )
    summaries = [summarize(rows, kind) for kind in shown]
    print("\n".join(_text(s) for s in summaries))
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump({"summary": summaries[0], "summaries": summaries, "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
