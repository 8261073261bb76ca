"""ReadAheadFrames against websocket-client's own frame reader, over a real socket pair.

The reference is websocket-client's ``frame_buffer`` (what pybit reads with by default):
for any sequence of frames, arriving in any chunking, the read-ahead reader must return
the same frames (opcode, fin, payload) in the same order, and say a frame is buffered only
when reading it needs no more bytes from the socket.
"""

import socket
import struct
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websocket import ABNF, WebSocket

from mmbot.bybit.clients import ReadAheadFrames


def encode(opcode: int, payload: bytes, fin: bool = True, mask: bytes | None = None) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    n, bit = len(payload), 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if mask:
        return head + mask + ABNF.mask(mask, payload)
    return head + payload


def client_over(sock) -> WebSocket:
    ws = WebSocket(skip_utf8_validation=True)
    ws.sock = sock
    ws.connected = True
    return ws


def send_chunked(sock, data: bytes, cuts: list[int]):
    """Write ``data`` in pieces cut at ``cuts``, from another thread (the reader blocks)."""

    def run():
        at = 0
        for cut in sorted(set(c for c in cuts if 0 < c < len(data))) + [len(data)]:
            sock.sendall(data[at:cut])
            at = cut

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


frames_st = st.lists(
    st.tuples(
        st.sampled_from([ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY, ABNF.OPCODE_PING]),
        st.one_of(
            st.binary(max_size=130),
            st.integers(125, 70_000).map(lambda n: (bytes(range(256)) * 274)[:n]),
        ),
        st.one_of(st.none(), st.binary(min_size=4, max_size=4)),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(frames=frames_st, cuts=st.lists(st.integers(0, 200_000), max_size=8))
def test_same_frames_as_websocket_client_in_any_chunking(frames, cuts):
    data = b"".join(encode(op, p, mask=m) for op, p, m in frames)
    results = []
    for reader_of in ("websocket-client", "read-ahead"):
        a, b = socket.socketpair()
        try:
            t = send_chunked(a, data, cuts)
            ws = client_over(b)
            read = ws.frame_buffer.recv_frame
            if reader_of == "read-ahead":
                read = ReadAheadFrames(ws).recv_frame
            results.append([(f.opcode, f.fin, bytes(f.data)) for f in (read() for _ in frames)])
            t.join()
        finally:
            a.close()
            b.close()
    assert results[0] == results[1] == [(op, 1, p) for op, p, _ in frames]


def test_has_frame_only_when_a_whole_frame_is_buffered():
    a, b = socket.socketpair()
    try:
        reader = ReadAheadFrames(client_over(b))
        first, second = encode(1, b"a" * 300), encode(1, b"b" * 10)
        a.sendall(first + second[:3])
        assert reader.recv_frame().data == b"a" * 300  # one recv took the second's start
        assert not reader.has_frame()  # 3 of its 12 bytes: reading would block
        a.sendall(second[3:])
        reader._need(len(second))
        assert reader.has_frame()
        assert reader.recv_frame().data == b"b" * 10
        assert not reader.has_frame()
    finally:
        a.close()
        b.close()


def test_a_closed_socket_raises_like_websocket_client():
    from websocket import WebSocketConnectionClosedException  # noqa: PLC0415

    a, b = socket.socketpair()
    try:
        a.sendall(encode(1, b"x" * 50)[:10])
        a.close()
        with pytest.raises(WebSocketConnectionClosedException):
            ReadAheadFrames(client_over(b)).recv_frame()
    finally:
        b.close()
