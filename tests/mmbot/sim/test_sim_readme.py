"""README's "Test your own bot against a local Bybit" snippets run as written (the port
swapped for a free one), and the ``mmbot sim`` command's start, Ctrl-C and errors."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pybit._websocket_trading as wt
import pybit.unified_trading as ut
import pytest
import requests
from support.waiting import wait_for

from mmbot.bybit import local_http
from mmbot.sim.protocol import Scale
from mmbot.sim.server import SimSymbol, recording_source, start_simulator
from obcore.recording import write_frames
from obcore.synthetic import generate_frames

pytestmark = pytest.mark.slow
README = Path(__file__).resolve().parents[3] / "README.md"


def snippets() -> list[str]:
    text = README.read_text()
    section = text.split("## Test your own bot against a local Bybit", 1)[1].split("\n## ")[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_snippets_run_against_the_simulator(capsys):
    blocks = snippets()
    assert len(blocks) == 2
    sim = start_simulator(rate_limit_per_s=None)
    saved = (ut.PUBLIC_WSS, ut.PRIVATE_WSS, wt.TRADE_WSS)
    try:
        sim.wait_market()
        for code in blocks:
            exec(compile(code.replace("8765", str(sim.port)), "README", "exec"), {})
    finally:
        ut.PUBLIC_WSS, ut.PRIVATE_WSS, wt.TRADE_WSS = saved
        sim.stop()
    out = capsys.readouterr().out
    for word in ("mark ", "best bid ", "last ", "USDT "):
        assert word in out


def mmbot(*args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "mmbot", "sim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        **kw,
    )


def test_mmbot_sim_prints_its_urls_and_stops_on_ctrl_c():
    p = mmbot("--port", "0")
    try:
        lines = [p.stdout.readline() for _ in range(8)]
        assert lines[0].startswith("mmbot sim: Bybit v5 on 127.0.0.1:")
        assert any("api secret sim-secret" in line for line in lines)
        port = int(lines[0].split("127.0.0.1:")[1].split()[0])
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        p.send_signal(signal.SIGINT)
        assert p.wait(20) == 0, p.stderr.read()
    finally:
        p.kill()


def test_mmbot_sim_stops_on_ctrl_c_even_when_started_with_it_ignored():
    # a shell starts a background job (`mmbot sim &`, a CI step under nohup) with SIGINT
    # ignored, and Python then never raises KeyboardInterrupt: the simulator ran on, and
    # so did every test that stopped one with SIGINT. `mmbot run` handles SIGINT itself.
    p = mmbot("--port", "0", preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        lines = [p.stdout.readline() for _ in range(8)]
        assert lines[0].startswith("mmbot sim: Bybit v5 on 127.0.0.1:")
        p.send_signal(signal.SIGINT)
        assert p.wait(20) == 0, p.stderr.read()
    finally:
        p.kill()


@pytest.mark.parametrize(("category", "creates"), [("linear", "10"), ("spot", "20")])
def test_mmbot_sim_limits_creates_at_bybits_default_tier_for_its_category(category, creates):
    p = mmbot("--port", "0", "--category", category)
    try:
        lines = [p.stdout.readline() for _ in range(8)]
        port = int(lines[0].split("127.0.0.1:")[1].split()[0])
        key, secret = (
            next(x.split()[-1] for x in lines if x.strip().startswith(w))
            for w in ("api key", "api secret")
        )
        http = local_http(f"http://127.0.0.1:{port}", api_key=key, api_secret=secret)
        body = json.dumps(
            {
                "category": category,
                "symbol": "BTCUSDT",
                "side": "Buy",
                "orderType": "Limit",
                "qty": "0.01",
                "price": "1000.0",
            }
        )
        r = requests.post(
            f"http://127.0.0.1:{port}/v5/order/create",
            data=body,
            headers=http._prepare_headers(body, 5000),  # pybit signs; its reply drops headers
            timeout=10,
        )
        assert r.json()["retCode"] == 0, r.text
        assert r.headers["X-Bapi-Limit"] == creates
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(20)


def test_mmbot_sim_errors_are_one_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for args, needle in [
            (("--port", str(port)), "cannot listen on 127.0.0.1"),
            (("--symbols", "NOPE"), "unknown symbol 'NOPE'"),
            (("--data", "/no/such/file"), "cannot read recording"),
        ]:
            p = mmbot(*args)
            out, err = p.communicate(timeout=20)
            assert p.returncode == 2, err
            assert err.count("\n") == 1 and needle in err and "Traceback" not in err


def test_a_recording_is_the_market(tmp_path):

    path = tmp_path / "rec.jsonl.gz"
    frames = list(
        generate_frames(
            symbol="BTCUSDT",
            tick_size="0.1",
            lot_size="0.001",
            depth=50,
            messages=40,
            seed=3,
            start_price="65000.0",
            interval_ms=20,
            category="linear",
        )
    )
    write_frames(path, frames)
    # independent reference: the last frame's book, replayed with plain dicts
    book = {"b": {}, "a": {}}
    for raw in frames:
        msg = __import__("json").loads(raw)
        if msg["type"] == "snapshot":
            book = {"b": {}, "a": {}}
        for side in ("b", "a"):
            for p, q in msg["data"][side]:
                if Decimal(q) == 0:
                    book[side].pop(p, None)
                else:
                    book[side][p] = q
    best_bid = max(book["b"], key=Decimal)
    sim = start_simulator(
        symbols=[SimSymbol()],
        sources={"BTCUSDT": recording_source(str(path), "BTCUSDT")},
        speed=20.0,
    )
    try:
        sim.wait_market()
        assert wait_for(lambda: sim.best("BTCUSDT")[0] == Scale("0.1").to_units(best_bid))
    finally:
        sim.stop()
    with pytest.raises(ValueError, match="no orderbook frames of ETHUSDT"):
        recording_source(str(path), "ETHUSDT")
