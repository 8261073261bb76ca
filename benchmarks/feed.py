"""Feed scale: how many depth-50 books one BookFeed connection keeps up with.

``python -m benchmarks --feed`` starts a loopback server in its own process that speaks
just enough of Bybit's public WebSocket (upgrade, subscribe acks, pings) and replays
``orderbook.50`` deltas for N symbols at Bybit's 20 ms cadence (50 frames/s each), every
frame stamped ``ts``/``cts`` with the server's wall clock when it is built. This process
runs one :class:`mmbot.bybit.BookFeed` (the real pybit socket, the real hook, obcore
books) against it and, for each N, reports over a measuring window:

- frames/s offered (written by the server) and applied (by the feed's books);
- the feed process's CPU (all its threads) as a percentage of one core;
- the frames' age at receipt (local receive time minus ``cts``; one clock, so no
  offset): p99 and max, and the p50 of the window's first and last thirds, whose slope
  says whether the lag grows (see ``LAG_GROWTH_MS_PER_S``).

``--handoff MODE[,MODE]`` prototypes where ``mmbot run`` could process the frame (a queue
to a consumer thread, an eventfd, the socket thread itself, a :class:`benchmarks.primitives.Gate`;
see :mod:`benchmarks.handoff`): per frame the book is updated and an order request is
written, and the hop, receive to book updated and receive to order written are reported
at p50/p90/p99, in rounds of every mode in turn.

``--baseline`` runs each N a second time with websocket-client's pure-Python UTF-8 check
(``BookFeed(raw_frames=False)``, what pybit does by default) for a before/after in one run.

The server writes frames in batches with one ``transport.write`` per 2 ms tick and stops
generating while more than 8 MiB wait in its buffer, so "offered" is what it managed to
send, and a feed that falls behind shows as ages growing toward that buffer's worth.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import multiprocessing as mp
import os
import struct
import sys
import time

__all__ = ["main", "run_point"]

DEFAULT_SYMBOLS = "1,10,100,300,1000"
FRAMES_PER_SYMBOL_S = 50  # orderbook.50 pushes every 20 ms
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TEMPLATE_FRAMES = 400  # deltas per symbol before its book is re-sent as a snapshot
# "lag growing": the median frame age rose by more than this many ms per second of the
# window, i.e. the feed fell behind real time by more than 0.5%
LAG_GROWTH_MS_PER_S = 5.0
SERVER_SHORT = 0.95  # offered below this share of the target: the server fell short


# ---------------------------------------------------------------------- the server


def _templates():
    """One synthetic depth-50 stream, split into (snapshot levels, [(bids, asks)] deltas)."""
    from obcore.synthetic import generate_frames  # noqa: PLC0415

    frames = [
        json.loads(f) for f in generate_frames(depth=50, messages=_TEMPLATE_FRAMES + 1, seed=7)
    ]
    dump = lambda levels: json.dumps(levels, separators=(",", ":"))  # noqa: E731
    snap = (dump(frames[0]["data"]["b"]), dump(frames[0]["data"]["a"]))
    return snap, [(dump(f["data"]["b"]), dump(f["data"]["a"])) for f in frames[1:]]


_FRAME = (
    '{"topic":"orderbook.50.%s","type":"%s","ts":%d,"data":{"s":"%s","b":%s,"a":%s,'
    '"u":%d,"seq":%d},"cts":%d}'
)


def _ws_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x80 | opcode, n) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, n) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, n) + payload


class _Conn(asyncio.Protocol):
    def __init__(self, server):
        self.server = server
        self.buf = b""
        self.upgraded = False
        self.transport = None
        self.symbols: list[list] = []  # [symbol, u, template index]

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        if self in self.server.conns:
            self.server.conns.remove(self)

    def data_received(self, data):
        self.buf += data
        if not self.upgraded:
            if b"\r\n\r\n" not in self.buf:
                return
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            key = next(
                line.split(b":", 1)[1].strip()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
            self.transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            self.upgraded = True
            self.server.conns.append(self)
        while len(self.buf) >= 2:
            b0, b1 = self.buf[0], self.buf[1]
            n, at = b1 & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    return
                n, at = struct.unpack("!H", self.buf[2:4])[0], 4
            elif n == 127:
                if len(self.buf) < 10:
                    return
                n, at = struct.unpack("!Q", self.buf[2:10])[0], 10
            if len(self.buf) < at + 4 + n:
                return
            mask = self.buf[at : at + 4]
            payload = bytes(c ^ mask[i % 4] for i, c in enumerate(self.buf[at + 4 : at + 4 + n]))
            self.buf = self.buf[at + 4 + n :]
            self.on_frame(b0 & 0x0F, payload)

    def on_frame(self, opcode, payload):
        if opcode == 0x8:
            self.transport.close()
        elif opcode == 0x9:
            self.transport.write(_ws_frame(payload, 0xA))
        elif opcode == 0x1:
            msg = json.loads(payload)
            op = msg.get("op")
            if op == "ping":
                self.send(
                    {
                        "success": True,
                        "ret_msg": "pong",
                        "conn_id": "bench",
                        "req_id": "",
                        "op": "ping",
                    }
                )
            elif op in ("subscribe", "unsubscribe"):
                self.send(
                    {
                        "success": True,
                        "ret_msg": "",
                        "conn_id": "bench",
                        "req_id": msg.get("req_id", ""),
                        "op": op,
                    }
                )
                if op == "subscribe":
                    for topic in msg.get("args", ()):
                        sym = [topic.rsplit(".", 1)[1], 0, 0]
                        self.transport.write(self.server.snapshot(sym))
                        self.symbols.append(sym)
                        self.server.count(1)

    def send(self, obj):
        self.transport.write(_ws_frame(json.dumps(obj).encode()))


class _Server:
    def __init__(self, sent, paused, held):
        self.held = held  # multiprocessing.Value: ticks skipped because the reader was behind
        self.conns: list[_Conn] = []
        self.sent = sent  # multiprocessing.Value: book frames written so far, snapshots too
        # multiprocessing.Value: 1 stops publishing, and the server answers 2 once it has
        self.paused = paused
        self.snap, self.deltas = _templates()
        self.seq = 1

    def frame(self, sym: list, kind: str, b: str, a: str) -> bytes:
        sym[1] += 1
        self.seq += 1
        now = time.time_ns() // 1_000_000
        return _ws_frame(
            (_FRAME % (sym[0], kind, now, sym[0], b, a, sym[1], self.seq, now)).encode()
        )

    def snapshot(self, sym: list) -> bytes:
        sym[2] = 0
        return self.frame(sym, "snapshot", *self.snap)

    def next_frame(self, sym: list) -> bytes:
        if sym[2] >= len(self.deltas):
            return self.snapshot(sym)
        b, a = self.deltas[sym[2]]
        sym[2] += 1
        return self.frame(sym, "delta", b, a)

    async def publish(self):
        start, due_sent, rr = time.monotonic(), 0, 0
        while True:
            await asyncio.sleep(0.002)
            if self.paused.value:
                self.paused.value = 2  # the acknowledgement: nothing more is written
                # the run starts when it is unpaused: no burst for the time paused
                start, due_sent = time.monotonic(), 0
                continue
            for conn in list(self.conns):
                syms = conn.symbols
                if not syms:
                    continue
                if conn.transport.get_write_buffer_size() > 8 * 2**20:
                    self.held.value += 1  # only this process writes it
                    continue  # the reader is behind: stop piling on
                target = int((time.monotonic() - start) * FRAMES_PER_SYMBOL_S * len(syms))
                n = min(target - due_sent, len(syms) * 5)
                if n <= 0:
                    continue
                out = []
                for _ in range(n):
                    rr = (rr + 1) % len(syms)
                    out.append(self.next_frame(syms[rr]))
                conn.transport.write(b"".join(out))
                due_sent = target
                self.count(n)

    def count(self, n: int) -> None:
        with self.sent.get_lock():
            self.sent.value += n


def _serve(port_out, sent, paused, held):
    async def main():
        server = _Server(sent, paused, held)
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(lambda: _Conn(server), "127.0.0.1", 0)
        port_out.send(srv.sockets[0].getsockname()[1])
        await server.publish()

    asyncio.run(main())


# ---------------------------------------------------------------------- the client


def run_point(
    n_symbols: int,
    *,
    seconds: float = 6.0,
    raw_frames: bool = True,
    warmup_s: float = 1.0,
    handoff: str | None = None,
    drain_s: float = 30.0,
) -> dict:
    """Run one feed against a fresh server process with ``n_symbols``; return the row.

    After the window the server stops publishing and the row's ``frames_applied`` is
    taken once it equals ``frames_written`` (or after ``drain_s``).
    """
    from benchmarks.handoff import make_mode, set_switch  # noqa: PLC0415
    from mmbot.bybit import BookFeed  # noqa: PLC0415
    from mmbot.latency import LatencyStats, age_summary_ms  # noqa: PLC0415

    consumer = make_mode(handoff) if handoff is not None else None
    switch = set_switch(consumer) if consumer is not None else sys.getswitchinterval()
    if consumer is not None:
        consumer.start()

    ctx = mp.get_context("spawn")
    recv_end, send_end = ctx.Pipe(duplex=False)
    sent, paused, held = ctx.Value("q", 0), ctx.Value("b", 1), ctx.Value("q", 0)
    proc = ctx.Process(target=_serve, args=(send_end, sent, paused, held), daemon=True)
    proc.start()
    feed = None
    try:
        port = recv_end.recv()
        feed = BookFeed(
            "linear",
            ws_base=f"ws://127.0.0.1:{port}",
            raw_frames=raw_frames,
            resync_timeout_s=30.0,
            on_frame=consumer.on_frame if consumer is not None and consumer.forward else None,
            on_update=consumer.on_update if consumer is not None and not consumer.forward else None,
        )
        symbols = [f"S{i:04d}USDT" for i in range(n_symbols)]
        for s in symbols:
            feed.add_book(s, "0.1", "0.001", depth=50)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(e.synced for e in feed.books.values()):
            time.sleep(0.05)
        synced = sum(e.synced for e in feed.books.values())
        # deltas start once every book has its snapshot: the steady state is measured,
        # not the backlog piled up while N subscribe requests went out one by one
        paused.value = 0
        time.sleep(warmup_s)
        applied0 = sum(e.frames for e in feed.books.values())
        sent0, cpu0, t0 = sent.value, time.process_time(), time.monotonic()
        srv0, held0 = _cpu_s(proc.pid), held.value
        if consumer is not None:
            consumer.reset()
        # the window in thirds, each with its own ages: a feed that falls behind shows as
        # the last third's ages above the first's
        thirds = []
        for _ in range(3):
            part = LatencyStats()
            feed.frame_age = part
            if consumer is not None:
                consumer.age = part
            thirds.append(part)
            time.sleep(seconds / 3)
        applied1 = sum(e.frames for e in feed.books.values())
        sent1, cpu1, t1 = sent.value, time.process_time(), time.monotonic()
        srv1, held1 = _cpu_s(proc.pid), held.value
        first_s, last_s = age_summary_ms(thirds[0]), age_summary_ms(thirds[-1])
        whole = LatencyStats()
        for part in thirds:
            for ns in part.samples:
                whole.add(ns)
        ages = age_summary_ms(whole)
        wall = t1 - t0
        growth = _growth_ms_per_s(first_s.get("p50_ms"), last_s.get("p50_ms"), wall)
        offered = round((sent1 - sent0) / wall)
        target = n_symbols * FRAMES_PER_SYMBOL_S
        # the reference count: once the server stops, every book frame it wrote must be
        # applied (forward mode: reach the consumer's books), none lost or doubled
        paused.value = 1
        deadline = time.monotonic() + 10
        while paused.value != 2 and time.monotonic() < deadline:
            time.sleep(0.005)  # the server finishes the tick it is in, then acknowledges
        written = sent.value
        applied_total = _wait_applied(feed, consumer, written, drain_s)
        extra = {}
        if consumer is not None:
            extra = {
                f"{name}_{p}_us": stats.summary().get(f"{p}_us")
                for name, stats in (
                    ("hop", consumer.hop),
                    ("recv_to_book", consumer.to_book),
                    ("recv_to_order", consumer.to_order),
                )
                for p in ("p50", "p90", "p99")
            }
        return {
            "handoff": handoff or "-",
            **extra,
            "symbols": n_symbols,
            "utf8_check": "python" if not raw_frames else "C (obcore)",
            "synced": synced,
            "target_frames_s": target,
            "offered_frames_s": offered,
            "applied_frames_s": round((applied1 - applied0) / wall),
            "feed_cpu_pct": round(100 * (cpu1 - cpu0) / wall, 1),
            # per frame, what a loaded machine changes least (it steals time, not work)
            "feed_cpu_us_per_frame": round(1e6 * (cpu1 - cpu0) / max(applied1 - applied0, 1), 1),
            "server_cpu_pct": round(100 * (srv1 - srv0) / wall, 1),
            # the server sends what it can; below the target it was the limit, or the
            # feed held it back (8 MiB waiting in its send buffer: backpressure)
            "server_short": offered < SERVER_SHORT * target,
            "backpressure": held1 > held0,
            "age_p99_ms": ages.get("p99_ms"),
            "age_max_ms": ages.get("max_ms"),
            "age_p50_first_third_ms": first_s.get("p50_ms"),
            "age_p50_last_third_ms": last_s.get("p50_ms"),
            "age_growth_ms_per_s": growth,
            # a feed that held the server back is behind by a full buffer, whatever the
            # slope (the buffer caps the lag, so the ages stop growing)
            "lag_growing": growth is None or growth > LAG_GROWTH_MS_PER_S or held1 > held0,
            "hook_p50_us": feed.latency_us().get("p50_us"),
            "frames_written": written,
            "frames_applied": applied_total,
        }
    finally:
        sys.setswitchinterval(switch)
        if consumer is not None:
            consumer.close()
        if feed is not None:
            feed.exit()
        proc.kill()
        proc.join(5)


def _applied(feed, consumer) -> int:
    if consumer is not None and consumer.forward:
        return consumer.applied
    return sum(e.frames for e in feed.books.values())


def _wait_applied(feed, consumer, written: int, drain_s: float) -> int:
    """Wait until ``written`` frames are applied (or ``drain_s`` passes); return the count."""
    deadline = time.monotonic() + drain_s
    while (n := _applied(feed, consumer)) < written and time.monotonic() < deadline:
        time.sleep(0.01)
    return n


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) of process ``pid`` so far (Linux)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _growth_ms_per_s(first_ms, last_ms, wall_s: float):
    """How fast the median age grew between the window's first and last thirds (their
    centres are two thirds of the window apart), in ms per second; None without ages."""
    if first_ms is None or last_ms is None or wall_s <= 0:
        return None
    return round((last_ms - first_ms) / (wall_s * 2 / 3), 2)


def _table(rows: list[dict]) -> str:
    head = (
        "symbols",
        "utf-8 check",
        "target/s",
        "offered/s",
        "applied/s",
        "feed CPU",
        "CPU µs/frame",
        "server CPU",
        "age p99 ms",
        "age max ms",
        "age p50 1st -> last third ms",
        "lag growing",
    )
    return _markdown(
        head,
        (
            (
                r["symbols"],
                r["utf8_check"],
                r["target_frames_s"],
                f"{r['offered_frames_s']}" + (" (short)" if r["server_short"] else ""),
                r["applied_frames_s"],
                f"{r['feed_cpu_pct']}%",
                r["feed_cpu_us_per_frame"],
                f"{r['server_cpu_pct']}%",
                r["age_p99_ms"],
                r["age_max_ms"],
                f"{r['age_p50_first_third_ms']} -> {r['age_p50_last_third_ms']}",
                _lag_word(r),
            )
            for r in rows
        ),
    )


def _markdown(head: tuple, rows) -> str:
    """A Markdown table: ``head``, then one line per row of cells."""
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    lines += [" | ".join(str(x) for x in cells) for cells in rows]
    return "\n".join(lines)


def _write_json(path: str, rows: list[dict]) -> None:
    """Write the rows to ``path`` ('' writes nothing)."""
    if path:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w") as fh:
            json.dump(rows, fh, indent=1)


def _lag_word(r: dict) -> str:
    growth = r["age_growth_ms_per_s"]
    why = "backpressure" if r["backpressure"] else f"{growth} ms/s"
    return f"{'yes' if r['lag_growing'] else 'no'} ({why})"


def _notes(rows: list[dict]) -> list[str]:
    """Say where the server, not the feed, was the limit."""
    out = []
    for r in rows:
        if r["server_short"] and not r["lag_growing"] and not r["backpressure"]:
            out.append(
                f"{r['symbols']} symbols: the server offered {r['offered_frames_s']} of "
                f"{r['target_frames_s']} frames/s ({r['server_cpu_pct']}% of a core) and the "
                "feed kept up with what it got: a server limit, not a feed limit"
            )
        elif r["server_short"]:
            out.append(
                f"{r['symbols']} symbols: offered {r['offered_frames_s']} of "
                f"{r['target_frames_s']} frames/s and the feed "
                + ("held it back" if r["backpressure"] else "fell behind")
                + ": the feed (or the machine it shares) is the limit"
            )
    return out


def _medians(rows: list[dict]) -> list[dict]:
    """One row per (symbols, mode): the median of every number over the rounds."""
    import statistics  # noqa: PLC0415

    groups: dict = {}
    for r in rows:
        groups.setdefault((r["symbols"], r["handoff"]), []).append(r)
    out = []
    for group in groups.values():
        row = dict(group[0])
        for k, v in row.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "symbols":
                values = [g[k] for g in group if g.get(k) is not None]
                row[k] = round(statistics.median(values), 1) if values else None
        row["lag_growing"] = sum(g["lag_growing"] for g in group) * 2 > len(group)
        row["backpressure"] = any(g["backpressure"] for g in group)
        row["frames_applied"] = row["frames_written"] = 0
        if any(g["frames_applied"] != g["frames_written"] for g in group):
            row["frames_applied"] = -1
        out.append(row)
    return out


def _handoff_table(rows: list[dict]) -> str:
    head = (
        "symbols",
        "mode",
        "applied/s",
        "feed CPU",
        "hop p50/p90/p99 µs",
        "recv->book p50/p90/p99 µs",
        "recv->order p50/p90/p99 µs",
        "age max ms",
        "lag growing",
        "applied all",
    )
    return _markdown(
        head,
        (
            (
                r["symbols"],
                r["handoff"],
                r["applied_frames_s"],
                f"{r['feed_cpu_pct']}%",
                f"{r['hop_p50_us']}/{r['hop_p90_us']}/{r['hop_p99_us']}",
                f"{r['recv_to_book_p50_us']}/{r['recv_to_book_p90_us']}/{r['recv_to_book_p99_us']}",
                f"{r['recv_to_order_p50_us']}/{r['recv_to_order_p90_us']}/"
                f"{r['recv_to_order_p99_us']}",
                r["age_max_ms"],
                _lag_word(r),
                "yes" if r["frames_applied"] == r["frames_written"] else "NO",
            )
            for r in rows
        ),
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks --feed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--symbols",
        default=DEFAULT_SYMBOLS,
        help=f"comma-separated symbol counts (default {DEFAULT_SYMBOLS})",
    )
    ap.add_argument("--seconds", type=float, default=6.0, help="measuring window per count")
    ap.add_argument(
        "--baseline",
        action="store_true",
        help="also run each count with websocket-client's Python UTF-8 check",
    )
    ap.add_argument(
        "--handoff",
        default="",
        help="comma-separated hand-off modes (queue, switch, yield, wake, eventfd, inline, "
        "inline-send; see benchmarks/handoff.py): time frame to book to order",
    )
    ap.add_argument("--rounds", type=int, default=3, help="--handoff: rounds of every mode")
    ap.add_argument("--json", default="out/feed.json", help="results file ('' for none)")
    args = ap.parse_args(argv)
    counts = [int(x) for x in args.symbols.split(",") if x]
    rows = []
    if args.handoff:
        # rounds of every mode in turn, so a burst of load on the machine hits all of them
        modes = args.handoff.split(",")
        for rnd in range(args.rounds):
            for n in counts:
                for mode in modes:
                    row = run_point(n, seconds=args.seconds, handoff=mode)
                    row["round"] = rnd
                    rows.append(row)
                    print(_handoff_table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
        print(f"where the frame is processed ({args.rounds} rounds, each row one run):")
        print(_handoff_table(rows))
        print(f"medians over the {args.rounds} rounds:")
        print(_handoff_table(_medians(rows)))
        _write_json(args.json, rows)
        return 0
    for n in counts:
        for raw in (False, True) if args.baseline else (True,):
            rows.append(run_point(n, seconds=args.seconds, raw_frames=raw))
            print(_table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(
        f"feed scale, one BookFeed connection, orderbook.50 at 50 frames/s a symbol "
        f"({os.cpu_count()} CPUs, Python {sys.version.split()[0]}):"
    )
    print(_table(rows))
    for line in _notes(rows):
        print(f"note: {line}")
    _write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
