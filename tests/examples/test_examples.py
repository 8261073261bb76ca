"""Each program under examples/ runs as a user would run it, against the local simulator.

The simulator runs in this process on 127.0.0.1; each example runs in a subprocess and is
watched through its stdout. Waits are on lines the example prints, never fixed sleeps.
"""

import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import threading

import pytest

import obcore

pytestmark = pytest.mark.slow

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
TIMEOUT_S = 20.0


class Program:
    """An example in a subprocess; its stdout lines are collected as they arrive."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [sys.executable, *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            # Ctrl-C as in a terminal: a suite run as a background job hands its children
            # SIGINT ignored, and then Python never raises the KeyboardInterrupt the
            # examples stop on
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait(self, cond, what: str, timeout_s: float = TIMEOUT_S):
        """Block until ``cond(lines)`` is truthy; fail with the output so far if it never is."""
        with self._changed:
            ok = self._changed.wait_for(
                lambda: cond(self.lines) or self.proc.poll() is not None, timeout_s
            )
            if ok and cond(self.lines):
                return
        self.proc.kill()
        pytest.fail(
            f"{what}: not seen; exit={self.proc.poll()}\nstdout:\n"
            + "\n".join(self.lines[-30:])
            + "\nstderr:\n"
            + self.proc.stderr.read()[-3000:]
        )

    def wait_line(self, pattern: str, start: int = 0) -> int:
        """Wait for a line matching ``pattern`` at index >= ``start``; return its index."""
        rx = re.compile(pattern)
        found = []

        def cond(lines):
            found[:] = [i for i in range(start, len(lines)) if rx.search(lines[i])][:1]
            return found

        self.wait(cond, f"a line matching {pattern!r}")
        return found[0]

    def interrupt(self) -> str:
        """Ctrl-C; return stderr after a clean exit."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail("did not exit after SIGINT")
        self._reader.join(TIMEOUT_S)
        err = self.proc.stderr.read()
        assert self.proc.returncode == 0, err
        return err

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def sim():
    mmbot_sim = pytest.importorskip("mmbot.sim.server")
    h = mmbot_sim.start_simulator(
        symbols=(
            mmbot_sim.SimSymbol("BTCUSDT"),
            mmbot_sim.SimSymbol("ETHUSDT", tick_size="0.01", lot_size="0.01", min_qty="0.01"),
        ),
        speed=2.0,
    )
    h.wait_market()
    yield h
    h.stop()


def server_touch(sim, symbol: str, tick: str) -> str:
    bid, ask = sim.best(symbol)
    fmt = obcore.Book(tick, "1").price_str
    return f"{symbol} {fmt(bid)} x {fmt(ask)}"


def check_touch_matches_server(sim, prog: Program, symbol: str, tick: str):
    """Freeze the market; the last touch the example printed must become the server's."""
    sim.pause_market()
    want = server_touch(sim, symbol, tick)
    touch = re.compile(rf"^{symbol} \d+\.\d+ x \d+\.\d+$")  # not the status lines
    prog.wait(
        lambda lines: [x for x in lines if touch.match(x)][-1:] == [want],
        f"{symbol}'s last printed touch == server's {want!r}",
    )
    sim.pause_market(False)


def test_pybit_book(sim):
    pytest.importorskip("pybit")
    prog = Program(
        EXAMPLES / "pybit_book.py",
        "--ws-base",
        sim.ws_url,
        "--symbol",
        "BTCUSDT:0.1:0.001",
        "--symbol",
        "ETHUSDT:0.01:0.01",
    )
    try:
        prog.wait_line(r"^BTCUSDT synced \(snapshot\)$")
        prog.wait_line(r"^ETHUSDT synced \(snapshot\)$")
        n = prog.wait_line(r"^BTCUSDT \d+\.\d x \d+\.\d$")
        sim.skip_u("BTCUSDT")  # a lost delta: the book must resync
        gap = prog.wait_line(r"^BTCUSDT OUT OF SYNC \(SequenceGapError: ", n)
        prog.wait_line(r"^BTCUSDT synced \(snapshot\)$", gap)
        check_touch_matches_server(sim, prog, "BTCUSDT", "0.1")
        check_touch_matches_server(sim, prog, "ETHUSDT", "0.01")
        # the other pybit subscription works beside the books; waited for, not assumed
        # to have arrived by now (under load it had not: trades_seen=0)
        prog.wait_line(r"^BTCUSDT trades \+[1-9]\d*$")
        prog.interrupt()
        final = {x.split()[1]: x for x in prog.lines if x.startswith("final ")}
        assert "resyncs=1 " in final["BTCUSDT:"] and "resyncs=0 " in final["ETHUSDT:"]
        assert not any(x.startswith("ETHUSDT OUT OF SYNC") for x in prog.lines)
        assert re.search(r"trades_seen=[1-9]", final["BTCUSDT:"]), final
    finally:
        prog.close()


def test_asyncio_raw_feed(sim):
    pytest.importorskip("aiohttp")
    prog = Program(
        EXAMPLES / "asyncio_raw_feed.py", sim.ws_url, "BTCUSDT:0.1:0.001", "ETHUSDT:0.01:0.01"
    )
    try:
        prog.wait_line(r"^synced orderbook\.50\.BTCUSDT at u=")
        prog.wait_line(r"^synced orderbook\.50\.ETHUSDT at u=")
        n = prog.wait_line(r"^ETHUSDT \d+\.\d\d x \d+\.\d\d$")
        sim.skip_u("ETHUSDT")
        gap = prog.wait_line(
            r"^gap on orderbook\.50\.ETHUSDT \(expected u=\d+, got \d+\); "
            r"resubscribing$",
            n,
        )
        prog.wait_line(r"^resynced orderbook\.50\.ETHUSDT at u=", gap)
        # A bad frame that reuses the next u (no update lost): dropped, the book stays
        # synced and keeps up with the market without a resubscribe.
        sim.send_malformed("bad_price", "BTCUSDT")
        bad = prog.wait_line(r"^dropped a bad frame: MalformedNumberError: data\.b\[0\] price")
        prog.wait_line(r"^BTCUSDT \d+\.\d x \d+\.\d$", bad)
        check_touch_matches_server(sim, prog, "BTCUSDT", "0.1")
        assert not any(x.startswith("gap on orderbook.50.BTCUSDT") for x in prog.lines)
        check_touch_matches_server(sim, prog, "ETHUSDT", "0.01")
        prog.interrupt()
        finals = [x for x in prog.lines if x.startswith("final ")]
        assert len(finals) == 2 and all("synced=True" in x for x in finals), finals
    finally:
        prog.close()


def test_cython_strategy(tmp_path):
    pytest.importorskip("Cython")
    work = tmp_path / "cython_strategy"
    shutil.copytree(
        EXAMPLES / "cython_strategy", work, ignore=shutil.ignore_patterns("build", "*.so", "*.c")
    )
    build = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace", "-q"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    run = subprocess.run(
        [sys.executable, "run.py"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(work)),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert lines[-1].startswith("ok: "), run.stdout
