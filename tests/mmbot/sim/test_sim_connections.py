"""How the simulator ends WebSocket connections: every close is logged with its reason, and a
failure on our side closes the connection (code 1011) instead of leaving it open and mute.

The clients are bare websocket-client connections, so what the test sees is the wire: the
close frame's status code, or a frame that never comes.
"""

import json
import logging
import struct
import time

import pytest
import websocket
from support.waiting import wait_for

from mmbot.sim import routes
from mmbot.sim.protocol import sign_ws_auth

pytestmark = pytest.mark.slow  # real sockets to a simulator on 127.0.0.1

ROUTES_LOG = "mmbot.sim.routes"


def _close_status(ws: websocket.WebSocket) -> int:
    """Read frames until the server's close frame; return its status code.

    Raises websocket-client's timeout error when no close comes within the socket timeout.
    """
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return struct.unpack("!H", data[:2])[0]


def _records(caplog, level: int, needle: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == ROUTES_LOG and r.levelno == level and needle in r.getMessage()
    ]


def test_client_close_is_logged_with_its_code(start_sim, caplog):
    caplog.set_level(logging.WARNING, logger=ROUTES_LOG)
    sim = start_sim(paused=True)
    ws = websocket.create_connection(f"{sim.ws_url}/v5/public/linear", timeout=5)
    ws.close(status=4001)
    assert wait_for(lambda: _records(caplog, logging.WARNING, "closed by the client (code 4001)"))
    (rec,) = _records(caplog, logging.WARNING, "closed by the client")
    assert rec.getMessage().startswith("public connection ")


def test_a_normal_close_is_logged_as_info(start_sim, caplog):
    # every bot's clean exit closes its sockets with 1000: not a warning each
    caplog.set_level(logging.INFO, logger=ROUTES_LOG)
    sim = start_sim(paused=True)
    ws = websocket.create_connection(f"{sim.ws_url}/v5/public/linear", timeout=5)
    ws.close()
    assert wait_for(lambda: _records(caplog, logging.INFO, "closed by the client (code 1000)"))
    assert not _records(caplog, logging.WARNING, "closed")


def test_server_shutdown_close_is_logged(start_sim, caplog):
    caplog.set_level(logging.INFO, logger=ROUTES_LOG)
    sim = start_sim(paused=True)
    ws = websocket.create_connection(f"{sim.ws_url}/v5/private", timeout=5)
    sim.stop()
    assert _close_status(ws) == 1000
    assert wait_for(lambda: _records(caplog, logging.INFO, "closed: server shutdown"))
    (rec,) = _records(caplog, logging.INFO, "private connection")
    assert "server shutdown" in rec.getMessage()
    # cancelling the send pumps at shutdown is not a failure
    assert not [r for r in caplog.records if r.name == ROUTES_LOG and r.levelno >= logging.ERROR]


@pytest.mark.parametrize("error", [ValueError, RuntimeError])
def test_pump_failure_is_logged_and_closes_the_connection(start_sim, caplog, monkeypatch, error):
    # No request reaches a pump failure today: every reply is ASCII JSON built by
    # mmbot.sim.protocol. The failure is made here in the one call the pump's write path
    # makes into another module (the frame header), as a bug or a new aiohttp would.
    # RuntimeError too: the write path takes it for aiohttp's "socket closing" and stopped
    # the pump quietly while the socket was open.
    caplog.set_level(logging.WARNING, logger=ROUTES_LOG)
    sim = start_sim(paused=True)
    ws = websocket.create_connection(f"{sim.ws_url}/v5/public/linear", timeout=5)

    def broken_header(n, masked=False):
        raise error(f"injected: no header for {n} bytes")

    monkeypatch.setattr(routes, "text_frame_header", broken_header)
    ws.send(json.dumps({"op": "ping", "req_id": "p1"}))
    # The pong cannot be written: the client must see the connection end (1011), not wait
    # for ever on a socket the server no longer writes to.
    assert _close_status(ws) == 1011
    (err,) = _records(caplog, logging.ERROR, "send pump failed")
    assert err.exc_info is not None and "injected" in str(err.exc_info[1])
    assert wait_for(lambda: _records(caplog, logging.WARNING, "closed: send pump failed"))
    assert "sent 1011" in _records(caplog, logging.WARNING, "closed:")[0].getMessage()


def test_handler_exception_is_logged_and_closes_the_connection(start_sim, caplog, monkeypatch):
    # The same for a request handler that raises: made here by breaking the public
    # handler's ack builder, as a bug in it would.
    caplog.set_level(logging.WARNING, logger=ROUTES_LOG)
    sim = start_sim(paused=True)
    ws = websocket.create_connection(f"{sim.ws_url}/v5/public/linear", timeout=5)

    def broken_pong(*args, **kwargs):
        raise KeyError("injected")

    monkeypatch.setattr(routes.P, "public_pong", broken_pong)
    ws.send(json.dumps({"op": "ping", "req_id": "p1"}))
    assert _close_status(ws) == 1011
    (err,) = _records(caplog, logging.ERROR, "failed")
    assert err.exc_info is not None and "injected" in str(err.exc_info[1])
    assert "'op': 'ping'" in err.getMessage()
    assert wait_for(lambda: _records(caplog, logging.WARNING, "closed: handler exception"))
    assert "sent 1011" in _records(caplog, logging.WARNING, "closed:")[0].getMessage()


@pytest.mark.parametrize(
    "bad",
    [{"header": [1], "args": [{}]}, {"args": {"category": "linear"}}],
    ids=["header-not-an-object", "args-an-object"],
)
def test_a_malformed_trade_request_is_refused_not_a_crash(start_sim, caplog, bad):
    # Both raised in the trade handler (AttributeError, KeyError 0): the connection closed
    # and the request got no answer. Bybit answers a malformed request with 10001.
    caplog.set_level(logging.WARNING, logger=ROUTES_LOG)
    sim = start_sim(paused=True)
    ws = websocket.create_connection(f"{sim.ws_url}/v5/trade", timeout=5)
    expires = int(time.time() * 1000) + 10_000
    sig = sign_ws_auth(sim.api_secret, expires)
    ws.send(json.dumps({"op": "auth", "args": [sim.api_key, expires, sig]}))
    assert json.loads(ws.recv())["retCode"] == 0
    req = {"reqId": "r1", "op": "order.create"}
    req["header"] = {"X-BAPI-TIMESTAMP": str(int(time.time() * 1000))}
    ws.send(json.dumps(req | bad))
    reply = json.loads(ws.recv())
    assert (reply["reqId"], reply["retCode"]) == ("r1", 10001), reply
    field = next(iter(bad))
    assert field in reply["retMsg"], reply
    ws.send(json.dumps({"op": "ping"}))  # the connection still serves
    assert json.loads(ws.recv())["op"] == "pong"
    assert not [r for r in caplog.records if r.name == ROUTES_LOG and r.levelno >= logging.ERROR]
