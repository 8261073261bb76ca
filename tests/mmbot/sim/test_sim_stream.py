"""The market stream's send path: one task drives every symbol, and each connection's due
frames leave in one transport write (``mmbot.sim.routes``)."""

import io
import json

import pytest
import websocket
from support.waiting import wait_for
from websocket._abnf import ABNF, frame_buffer

from mmbot.sim.account import SimSymbol
from mmbot.sim.market import synthetic_source
from mmbot.sim.routes import raw_transport, ws_text_frame
from mmbot.sim.server import start_simulator


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 200_000])
def test_text_frames_parse_as_rfc_6455_frames(size):
    # websocket-client's own frame parser (what pybit reads with), on back-to-back frames
    texts = ["x" * size, "é" * (size // 2), "{}"]
    data = io.BytesIO(b"".join(ws_text_frame(t) for t in texts))
    parser = frame_buffer(data.read, skip_utf8_validation=False)
    for text in texts:
        frame = parser.recv_frame()
        # (mask_value holds the mask bit here: a server never masks)
        assert (frame.fin, frame.opcode, frame.mask_value) == (1, ABNF.OPCODE_TEXT, 0)
        assert frame.data.decode() == text
    assert data.read() == b""


@pytest.mark.slow
def test_many_symbols_on_one_connection_each_topic_in_order():
    names = [f"S{i:02d}USDT" for i in range(24)]
    with start_simulator(0, [SimSymbol(s) for s in names], interval_ms=20) as sim:
        sim.wait_market()
        ws = websocket.create_connection(f"{sim.ws_url}/v5/public/linear", timeout=5)
        try:
            topics = [f"orderbook.50.{s}" for s in names] + [f"publicTrade.{names[0]}"]
            ws.send(json.dumps({"op": "subscribe", "args": topics}))
            msgs = []
            # every symbol's snapshot and then 10 more frames of each
            while not all(sum(m.get("topic") == t for m in msgs) > 10 for t in topics[:-1]):
                msgs.append(json.loads(ws.recv()))
            # the one-write batch reaches into aiohttp's private writer: an aiohttp shaped
            # otherwise falls back to send_str, correct but slow, and must not go unnoticed
            fast = sim.call(lambda: [raw_transport(c.ws) is not None for c in sim.server.conns])
            assert fast and all(fast)
        finally:
            ws.close()
    for topic in topics[:-1]:
        frames = [m for m in msgs if m.get("topic") == topic]
        assert frames[0]["type"] == "snapshot"
        us = [f["data"]["u"] for f in frames]
        assert us == list(range(us[0], us[0] + len(us))), topic
        ts = [f["ts"] for f in frames]
        assert ts == sorted(ts), topic


@pytest.mark.slow
def test_a_source_that_fails_stops_only_its_own_symbol(caplog):
    def broken():
        yield "not json"

    good = SimSymbol("BTCUSDT")
    bad = SimSymbol("ETHUSDT", tick_size="0.01", lot_size="0.01", min_qty="0.01")
    sources = {"BTCUSDT": lambda: synthetic_source(good), "ETHUSDT": broken}
    with start_simulator(0, [good, bad], sources=sources) as sim:
        assert wait_for(lambda: "market stream for ETHUSDT stopped" in caplog.text)
        before = sim.call(lambda: sim.server.account.engines["BTCUSDT"].market_frames)
        assert wait_for(
            lambda: (
                sim.call(lambda: sim.server.account.engines["BTCUSDT"].market_frames) > before + 5
            )
        )
