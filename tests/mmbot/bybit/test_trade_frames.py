"""The trade socket's own order frames against pybit's and websocket-client's.

References: websocket-client's ``ABNF.create_frame(...).format()`` for the frame bytes
(same payload, same mask key), websocket-client's ``frame_buffer`` for reading them back
off a real socket, and pybit's own message (``own_frames = False``) for the JSON, both
sent by the real pybit ``WebSocketTrading`` to a loopback WebSocket server.
"""

import base64
import hashlib
import json
import socket
import threading

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from websocket import ABNF, WebSocketConnectionClosedException
from websocket._abnf import frame_buffer

from mmbot.bybit.clients import LocalWebSocketTrading, MaskKeys, client_text_frame

KEYS = st.binary(min_size=4, max_size=4)


def reference_frame(text: str, key: bytes) -> bytes:
    frame = ABNF.create_frame(text, ABNF.OPCODE_TEXT)
    frame.get_mask_key = lambda n: key
    return frame.format()


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=400), key=KEYS)
@example(text="", key=b"\0\0\0\0")
@example(text="x" * 125, key=b"\xff\xff\xff\xff")
@example(text="x" * 126, key=b"\1\2\3\4")
@example(text="é" * 70, key=b"\1\2\3\4")  # 140 bytes: the length is in bytes, not chars
def test_frame_equals_websocket_clients(text, key):
    assert client_text_frame(text.encode(), key) == reference_frame(text, key)


@pytest.mark.parametrize("n", [65535, 65536, 70001])
def test_long_frames_equal_websocket_clients(n):
    text = "".join(chr(33 + i % 90) for i in range(n))
    key = bytes([7, 99, 200, 13])
    assert client_text_frame(text.encode(), key) == reference_frame(text, key)


def test_mask_keys_are_four_bytes_and_refill():
    keys = MaskKeys()
    drawn = [keys() for _ in range(3000)]  # crosses two refills
    assert all(len(k) == 4 for k in drawn)
    assert len(set(drawn)) > 2900  # 32 random bits each: a repeat is rare, not systematic


# ---------------------------------------------------------------------- over a socket


class TradeServer:
    """A loopback WebSocket server that acks pybit's auth and keeps every text frame,
    read by websocket-client's own frame reader."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"ws://127.0.0.1:{self.listener.getsockname()[1]}"
        self.texts: list[str] = []
        self.frames: list[ABNF] = []
        self.cond = threading.Condition()
        self.conn = None
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        conn, _ = self.listener.accept()
        self.conn = conn
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(4096)
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key")
        )
        accept = base64.b64encode(
            hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
        )
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        reader = frame_buffer(conn.recv, skip_utf8_validation=False)
        while True:
            try:
                frame = reader.recv_frame()
            except Exception:
                return
            if frame.opcode != ABNF.OPCODE_TEXT:
                continue  # pings, and the close frame on exit()
            text = frame.data.decode()
            with self.cond:
                self.frames.append(frame)
                self.texts.append(text)
                self.cond.notify_all()
            message = json.loads(text)
            if message.get("op") == "auth":
                reply = b'{"retCode":0,"retMsg":"OK","op":"auth","connId":"t"}'
                conn.sendall(bytes([0x81, len(reply)]) + reply)  # a server's frame: unmasked

    def next_request(self, timeout=5.0) -> tuple[dict, ABNF]:
        with self.cond:
            assert self.cond.wait_for(
                lambda: any('"op":"order' in t.replace(" ", "") for t in self.texts), timeout
            )
            i = next(i for i, t in enumerate(self.texts) if '"op":"order' in t.replace(" ", ""))
            text, frame = self.texts.pop(i), self.frames.pop(i)
        return json.loads(text), frame

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


@pytest.fixture
def trading():
    server = TradeServer()
    client = LocalWebSocketTrading(
        testnet=False,
        api_key="k",
        api_secret="s",
        ws_base=server.url,
        recv_window=5000,
        referral_id="ref",
    )
    yield client, server
    client.exit()
    server.close()


REQUESTS = [
    (
        "place_order",
        "order.create",
        {
            "category": "linear",
            "symbol": "BTCUSDT",
            "side": "Buy",
            "orderType": "Limit",
            "qty": "0.001",
            "orderLinkId": "mm-1",
            "price": "65000.1",
            "timeInForce": "PostOnly",
            "reduceOnly": True,
        },
    ),
    (
        "amend_order",
        "order.amend",
        {
            "category": "linear",
            "symbol": "BTCUSDT",
            "orderId": "abc",
            "price": "65000.2",
        },
    ),
    (
        "cancel_batch_order",
        "order.cancel-batch",
        {
            "category": "linear",
            "request": [{"symbol": "BTCUSDT", "orderLinkId": f"mm-{i}"} for i in range(20)],
        },
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("method,op,request_", REQUESTS)
def test_own_request_is_pybits_message(trading, method, op, request_):
    client, server = trading
    seen = {}
    for own in (False, True):
        client.own_frames = own
        getattr(client, method)(lambda m: None, **request_)
        message, frame = server.next_request()
        assert frame.mask_value == 1 and frame.fin == 1 and frame.opcode == ABNF.OPCODE_TEXT
        seen[own] = message
    pybit, ours = seen[False], seen[True]
    assert ours["op"] == pybit["op"] == op
    assert ours["args"] == pybit["args"] == [request_]
    assert ours["header"].keys() == pybit["header"].keys()
    assert ours["header"]["X-BAPI-RECV-WINDOW"] == pybit["header"]["X-BAPI-RECV-WINDOW"]
    assert ours["header"]["Referer"] == pybit["header"]["Referer"] == "ref"
    assert isinstance(ours["header"]["X-BAPI-TIMESTAMP"], int)
    assert abs(ours["header"]["X-BAPI-TIMESTAMP"] - pybit["header"]["X-BAPI-TIMESTAMP"]) < 5000
    assert len(ours["reqId"]) <= 36
    # the reply callback is registered under the reqId that went out
    assert ours["reqId"] in client.callback_directory


@pytest.mark.slow
def test_request_ids_are_unique_per_connection(trading):
    client, server = trading
    for i in range(50):
        client.cancel_order(lambda m: None, category="linear", symbol="X", orderLinkId=str(i))
    ids = {server.next_request()[0]["reqId"] for _ in range(50)}
    assert len(ids) == 50


@pytest.mark.slow
def test_send_on_a_closed_socket_raises_and_forgets_the_callback(trading):
    client, server = trading
    client.ws.sock.close()  # what websocket-client leaves after the connection drops
    with pytest.raises((WebSocketConnectionClosedException, OSError)):
        client.place_order(lambda m: None, category="linear", symbol="X", orderLinkId="z")
    assert not client.callback_directory
