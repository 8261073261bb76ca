"""The read-ahead frame reader and read loop against websocket-client's own parsing.

Both read a real socket pair. The reference is websocket-client's ``WebSocket`` with its
UTF-8 check on (``recv_data_frame``, plus the decode its app's read loop does for a text
message): what pybit gets by default. Ours is :class:`mmbot.bybit.frames._ReadAheadDispatcher`'s
real loop (text frames through the fast path, everything else through websocket-client's
``recv_data_frame`` over our buffer), fed the same bytes cut into chunks that reach the
reader exactly as cut (the sender waits until the reader has taken each one).

For any valid stream, in any chunking, both return the same messages in the same order.
For a stream that breaks RFC 6455, ours returns the messages before the bad frame, then
raises FrameProtocolError; where websocket-client also refuses, it returns the same
messages first. Where websocket-client accepts what RFC 6455 forbids (a masked server
frame, a long or fragmented pong, a fragmented close), ours is stricter.
"""

import array
import fcntl
import socket
import struct
import termios
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websocket import ABNF, WebSocket, WebSocketApp, WebSocketConnectionClosedException

from mmbot.bybit import frames
from mmbot.bybit.frames import (
    STATUS_INVALID_PAYLOAD,
    STATUS_MESSAGE_TOO_BIG,
    FrameProtocolError,
    ReadAheadFrames,
    _ReadAheadDispatcher,
)

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def encode(
    opcode: int, payload: bytes, fin: bool = True, mask: bytes | None = None, rsv: int = 0
) -> bytes:
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
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


def _unread(sock) -> int:
    buf = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), termios.FIONREAD, buf)
    return buf[0]


def send_exactly(writer, reader_sock, data: bytes, cuts, stop) -> threading.Thread:
    """Write ``data`` cut at ``cuts`` from a thread; each piece goes once the reader has
    taken everything before it, so every read ends at a cut. Then shut the writer (the
    reader sees the end of the stream). ``stop`` set: the reader has stopped reading."""
    writer.settimeout(5)

    def run():
        at = 0
        try:
            for cut in sorted(set(c for c in cuts if 0 < c < len(data))) + [len(data)]:
                writer.sendall(data[at:cut])
                at = cut
                end = time.monotonic() + 5
                while _unread(reader_sock) and not stop.is_set() and time.monotonic() < end:
                    time.sleep(0)  # a condition: the reader took the piece
            writer.shutdown(socket.SHUT_WR)
        except OSError:
            assert stop.is_set()  # only a reader that stopped early leaves a write stuck

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def read_reference(data: bytes):
    """websocket-client with its UTF-8 check: the messages, and the error that ended it."""
    a, b = socket.socketpair()
    out, err = [], None
    try:
        t = threading.Thread(target=lambda: (a.sendall(data), a.shutdown(socket.SHUT_WR)))
        t.daemon = True
        t.start()
        ws = WebSocket(skip_utf8_validation=False)
        ws.sock, ws.connected = b, True
        try:
            while True:
                op, frame = ws.recv_data_frame(True)
                if op == TEXT:
                    frame.data.decode("utf-8")  # what its app's read loop does
                out.append((op, bytes(frame.data)))
                if op == CLOSE:
                    break
        except WebSocketConnectionClosedException:
            pass  # the end of the stream
        except Exception as exc:  # noqa: BLE001 - the reference's verdict, compared below
            err = exc
        t.join(5)
    finally:
        a.close()
        b.close()
    return out, err


def read_ours(data: bytes, cuts=()):
    """The read-ahead loop: the messages (fast-path texts marked), and the error."""
    a, b = socket.socketpair()
    out, err, handler_errors = [], None, []
    try:
        ws = client_over(b)
        app = WebSocketApp("ws://127.0.0.1:9", on_error=lambda app, e: handler_errors.append(e))
        app.sock, app.keep_running = ws, True

        def read_callback():  # websocket-client's run_forever read(), minus its callbacks
            op, frame = ws.recv_data_frame(True)
            out.append((op, bytes(frame.data)))
            return op != CLOSE

        def check_callback():  # a reader that loses its place fails the test, never hangs it
            if time.monotonic() > deadline:
                raise TimeoutError("the reader is stuck")
            return True

        b.settimeout(5)  # likewise for a read that waits for bytes that never come
        loop = _ReadAheadDispatcher(app, 0.2, on_text=lambda p: out.append((TEXT, p)))
        stop = threading.Event()
        t = send_exactly(a, b, data, cuts, stop)
        deadline = time.monotonic() + 10
        try:
            loop.read(b, read_callback, check_callback)
        except WebSocketConnectionClosedException:
            pass
        except FrameProtocolError as exc:
            err = exc
        stop.set()
        t.join(10)
    finally:
        a.close()
        b.close()
    assert not handler_errors
    return out, err


# ---------------------------------------------------------------------- valid streams

payload_text = st.one_of(
    st.text(max_size=200).map(str.encode),
    st.integers(126, 70_000).map(
        lambda n: ("é€x" * n).encode()[:n].decode(errors="ignore").encode()
    ),
)
control = st.tuples(st.sampled_from([PING, PONG]), st.binary(max_size=125))


@st.composite
def message(draw):
    """One message as (frames' bytes, the messages a reader returns for them)."""
    kind = draw(st.sampled_from(["text", "text", "binary", "control"]))
    if kind == "control":
        op, body = draw(control)
        return encode(op, body), [(op, body)]
    op = TEXT if kind == "text" else BINARY
    body = draw(payload_text) if op == TEXT else draw(st.binary(max_size=300))
    cuts = sorted(set(draw(st.lists(st.integers(0, len(body)), max_size=3))))
    parts = [body[i:j] for i, j in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    frames, returned = b"", []
    for i, part in enumerate(parts):  # a text fragment may end mid-character: legal
        last = i == len(parts) - 1
        frames += encode(op if i == 0 else CONT, part, fin=last)
        if not last and draw(st.booleans()):  # a control frame between fragments
            cop, cbody = draw(control)
            frames += encode(cop, cbody)
            returned.append((cop, cbody))
    return frames, [*returned, (op, body)]


@st.composite
def stream(draw):
    msgs = draw(st.lists(message(), min_size=1, max_size=6))
    data = b"".join(m[0] for m in msgs)
    expected = [r for m in msgs for r in m[1]]
    if draw(st.booleans()):
        close = struct.pack("!H", 1000) + draw(st.text(max_size=20)).encode()[:100]
        data += encode(CLOSE, close) + encode(TEXT, b"after close")  # never read
        expected.append((CLOSE, close))
    return data, expected


@settings(max_examples=80, deadline=None)
@given(s=stream(), cuts=st.lists(st.integers(0, 200_000), max_size=8))
def test_same_messages_as_websocket_client_in_any_chunking(s, cuts):
    data, expected = s
    ours, err = read_ours(data, cuts)
    assert err is None
    assert read_reference(data) == (expected, None)
    assert ours == expected


def test_a_stream_cut_at_every_byte_boundary():
    text = '{"topic":"orderbook.50.BTCUSDT","é":"€"}'.encode()
    data = (
        encode(TEXT, text)
        + encode(TEXT, b"x" * 300)  # 16-bit length
        + encode(TEXT, text[:7], fin=False)
        + encode(PING, b"keepalive")
        + encode(CONT, text[7:33], fin=False)  # ends inside the two bytes of "é"
        + encode(CONT, text[33:])
        + encode(BINARY, b"\x00\xff")
        + encode(PONG, b"")
        + encode(CLOSE, struct.pack("!H", 1000) + b"bye")
    )
    expected, none = read_reference(data)
    assert none is None and len(expected) == 7
    for at in range(1, len(data)):
        assert read_ours(data, [at]) == (expected, None), at
    assert read_ours(data, range(len(data))) == (expected, None)  # one byte at a time


@pytest.fixture
def pair():
    """A socket pair: the writing end, and a ReadAheadFrames on the other."""
    a, b = socket.socketpair()
    try:
        yield a, ReadAheadFrames(client_over(b))
    finally:
        a.close()
        b.close()


def test_text_frames_take_the_fast_path(pair):
    a, reader = pair
    app = WebSocketApp("ws://127.0.0.1:9")
    app.keep_running = True
    got = []
    a.sendall(encode(TEXT, b"one") + encode(TEXT, b"t" * 200) + encode(PING, b"p"))
    reader.fill()
    assert reader.take_texts(got.append, app)  # stopped at the ping, which is whole
    assert got == [b"one", b"t" * 200]
    frame = reader.recv_frame()  # websocket-client's path, from the same buffer
    assert (frame.opcode, frame.data) == (PING, b"p") and not reader.has_frame()


def test_has_frame_only_when_a_whole_frame_is_buffered(pair):
    a, reader = pair
    first, second = encode(1, b"a" * 300), encode(1, b"b" * 10)
    a.sendall(first + second[:3])
    assert reader.recv_frame().data == b"a" * 300  # one recv took the second's start
    assert not reader.has_frame()  # 3 of its 12 bytes: reading would block
    a.sendall(second[3:])
    reader._need(len(second))
    assert reader.has_frame()
    assert reader.recv_frame().data == b"b" * 10
    assert not reader.has_frame()


def test_a_closed_socket_raises_like_websocket_client(pair):
    a, reader = pair
    a.sendall(encode(1, b"x" * 50)[:10])
    a.close()
    with pytest.raises(WebSocketConnectionClosedException):
        reader.recv_frame()


# ---------------------------------------------------------------------- broken streams

# (name, bytes, what the error says, whether websocket-client refuses it too)
VIOLATIONS = [
    ("masked", encode(TEXT, b"hi", mask=b"abcd"), "is masked", False),
    ("masked ping", encode(PING, b"hi", mask=b"abcd"), "is masked", False),
    ("rsv1", encode(TEXT, b"hi", rsv=4), "reserved bits", True),
    ("rsv3", encode(BINARY, b"hi", rsv=1), "reserved bits", True),
    ("opcode 3", encode(0x3, b"hi"), "unknown opcode 0x3", True),
    ("opcode 0xb", encode(0xB, b""), "unknown opcode 0xb", True),
    ("long ping", encode(PING, b"p" * 126), "carries 126 bytes", True),
    ("long pong", encode(PONG, b"p" * 200), "carries 200 bytes", False),
    ("long close", encode(CLOSE, struct.pack("!H", 1000) + b"r" * 124), "carries 126", True),
    ("fragmented ping", encode(PING, b"p", fin=False), "is fragmented", True),
    ("fragmented pong", encode(PONG, b"p", fin=False), "is fragmented", False),
    ("lone continuation", encode(CONT, b"x"), "no fragmented message", True),
    (
        "text inside a fragmented text",
        encode(TEXT, b"ab", fin=False) + encode(TEXT, b"cd"),
        "inside a fragmented message",
        True,
    ),
    ("invalid UTF-8", encode(TEXT, b'{"s":"\xff"}'), "not valid UTF-8", True),
    ("overlong UTF-8", encode(TEXT, b"\xc0\xaf"), "not valid UTF-8", True),
    ("UTF-16 surrogate", encode(TEXT, b"\xed\xa0\x80"), "not valid UTF-8", True),
    (
        "invalid UTF-8 across fragments",
        encode(TEXT, b"ok \xe2\x82", fin=False) + encode(CONT, b"\x28"),
        "fragmented text message is not valid UTF-8",
        True,
    ),
    ("1-byte close", encode(CLOSE, b"\x03"), "1 byte", True),
    ("close code 1005", encode(CLOSE, struct.pack("!H", 1005)), "invalid status code 1005", True),
    ("close code 999", encode(CLOSE, struct.pack("!H", 999)), "invalid status code 999", True),
    (
        "close reason not UTF-8",
        encode(CLOSE, struct.pack("!H", 1000) + b"\xff"),
        "close reason is not valid UTF-8",
        True,
    ),
]


@settings(max_examples=60, deadline=None)
@given(
    before=st.lists(message(), max_size=3),
    violation=st.sampled_from(VIOLATIONS),
    cuts=st.lists(st.integers(0, 2_000), max_size=6),
)
def test_a_broken_frame_fails_after_the_messages_before_it(before, violation, cuts):
    name, bad, says, refused_by_websocket_client = violation
    data = b"".join(m[0] for m in before) + bad + encode(TEXT, b"never read")
    prefix = [r for m in before for r in m[1]]
    ours, err = read_ours(data, cuts)
    assert ours == prefix
    assert isinstance(err, FrameProtocolError) and says in str(err), (name, err)
    ref, ref_err = read_reference(data)
    assert ref[: len(prefix)] == prefix
    if refused_by_websocket_client:
        assert ref_err is not None and ref == prefix, name
    else:
        assert ref_err is None and len(ref) > len(prefix), name  # it accepted the frame


def test_invalid_utf8_closes_with_1007_and_other_errors_with_1002():
    assert read_ours(encode(TEXT, b"\xff"))[1].status == STATUS_INVALID_PAYLOAD == 1007
    assert read_ours(encode(TEXT, b"x", mask=b"abcd"))[1].status == 1002


def test_a_64_bit_length_with_its_top_bit_set_is_refused_before_reading_it():
    # websocket-client would try to read 2**63 bytes; ours refuses on the header
    data = bytes([0x82, 127]) + struct.pack("!Q", 1 << 63)
    ours, err = read_ours(data)
    assert ours == [] and "most significant bit" in str(err)


def test_a_frame_longer_than_the_limit_is_refused_before_reading_it():
    # a broken or hostile server announcing 2**63 - 1 bytes: websocket-client (and our
    # reader before the limit) asks the socket for that many at once
    for n in (2**63 - 1, frames.MAX_FRAME_BYTES + 1):
        data = bytes([0x81, 127]) + struct.pack("!Q", n) + b"x" * 100
        ours, err = read_ours(data)
        assert ours == [] and isinstance(err, FrameProtocolError), n
        assert f"{n} bytes" in str(err) and f"limit is {frames.MAX_FRAME_BYTES}" in str(err)
        assert err.status == STATUS_MESSAGE_TOO_BIG == 1009


def test_the_frame_limit_is_inclusive_and_counts_a_fragmented_message(monkeypatch):
    monkeypatch.setattr(frames, "MAX_FRAME_BYTES", 300)
    at_limit = encode(TEXT, b"a" * 300) + encode(BINARY, b"b" * 200, fin=False)
    at_limit += encode(PING, b"p") + encode(CONT, b"c" * 100)
    ours, err = read_ours(at_limit)
    assert err is None and ours == [
        (TEXT, b"a" * 300),
        (PING, b"p"),
        (BINARY, b"b" * 200 + b"c" * 100),
    ]
    over = encode(TEXT, b"t" * 200, fin=False) + encode(CONT, b"u" * 101) + encode(TEXT, b"no")
    ours, err = read_ours(encode(TEXT, b"ok") + over)
    assert ours == [(TEXT, b"ok")] and isinstance(err, FrameProtocolError)
    assert "fragmented message of 301 bytes" in str(err) and "limit is 300" in str(err)


def test_a_loop_told_to_stop_ends_quietly_when_the_peer_then_closes():
    # WebSocketApp.close() (pybit's exit) clears keep_running, then runs the close
    # handshake, and the server's end of stream reaches the read loop. websocket-client's
    # read() returns at once when keep_running is False; the loop must too, not read the
    # end of stream and raise a disconnect (pybit would answer it by reconnecting a feed
    # that was told to exit: seen as an exit() that never returned).
    a, b = socket.socketpair()
    try:
        app = WebSocketApp("ws://127.0.0.1:9", on_error=lambda app, e: pytest.fail(str(e)))
        app.sock, app.keep_running = client_over(b), True
        got = []
        loop = _ReadAheadDispatcher(app, 5, on_text=got.append)
        a.sendall(encode(TEXT, b"one"))

        def close_like_the_app():
            end = time.monotonic() + 5
            while not got and time.monotonic() < end:
                time.sleep(0.001)  # a condition: the loop took the frame and waits again
            app.keep_running = False
            a.shutdown(socket.SHUT_WR)  # the peer's end of stream, after the flag

        t = threading.Thread(target=close_like_the_app, daemon=True)
        t.start()
        loop.read(b, lambda: pytest.fail("websocket-client's read was not needed"), lambda: True)
        t.join(5)
        assert got == [b"one"]
    finally:
        a.close()
        b.close()
