"""FrameWriter: the trade socket's writes never block the caller, keep their order, never
interleave with another writer of the same socket (pybit's pings), and a frame that can no
longer be written is reported, never dropped silently.

Real sockets (``socket.socketpair``, with small buffers; some tests also over TLS, with a
throwaway CA); every wait is on a condition with a timeout as the failure guard.
"""

from __future__ import annotations

import socket
import threading

import pytest
from support.waiting import wait_for
from websocket import WebSocketConnectionClosedException

from mmbot.bybit.clients import FrameWriter


def frame(i: int, size: int = 300) -> bytes:
    body = f"<{i:06d}".encode()
    return body + b"." * (size - len(body) - 1) + b">"


def read_exactly(sock: socket.socket, n: int) -> bytes:
    sock.settimeout(10)
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(min(65536, n - len(out)))
        assert chunk, "peer closed early"
        out += chunk
    return bytes(out)


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    yield a, b
    a.close()
    b.close()


@pytest.fixture(params=["tcp", "tls"])
def any_pair(request):
    """A plain socket pair, or a TLS one: TLS takes no ``MSG_DONTWAIT``, so there the
    writer asks ``poll`` for room (every order request on Bybit used to wait for the
    writer thread's wake-up, tens of µs, even when the socket had room)."""
    return request.getfixturevalue("pair" if request.param == "tcp" else "tls_pair")


def test_a_free_socket_is_written_by_the_caller_itself(any_pair):
    a, b = any_pair
    w = FrameWriter(a, threading.Lock())
    assert w.write(frame(1)) is True
    assert read_exactly(b, 300) == frame(1)
    assert (w.inline, w.queued) == (1, 0)


def test_a_held_send_lock_queues_and_the_writer_thread_writes_in_order(pair):
    a, b = pair
    lock = threading.Lock()
    w = FrameWriter(a, lock)
    lock.acquire()  # pybit's pinger in the middle of a send
    assert w.write(frame(1)) is False  # returned at once, not written
    assert w.write(frame(2)) is False  # behind it, even though it is also free to go
    lock.release()
    assert read_exactly(b, 600) == frame(1) + frame(2)
    assert wait_for(lambda: not w._busy)
    assert w.write(frame(3)) is True  # the backlog is empty: direct again
    assert read_exactly(b, 300) == frame(3)


def test_a_full_socket_never_blocks_the_caller_and_loses_nothing(any_pair):
    a, b = any_pair  # small buffers (4 KiB asked)
    w = FrameWriter(a, threading.Lock())
    n = 2000  # 600 kB: far more than both buffers hold while nobody reads
    done = threading.Event()

    def caller():
        for i in range(n):
            w.write(frame(i))
        done.set()

    t = threading.Thread(target=caller, daemon=True)
    t.start()
    assert done.wait(10), "a write blocked on the full socket"
    assert w.inline > 0 and w.queued > 0  # the first went at once, then the writer thread
    got = read_exactly(b, 300 * n)
    assert got == b"".join(frame(i) for i in range(n))  # whole, in order
    assert wait_for(lambda: w.queued_write.count == w.queued)  # each queued wait timed


def test_a_partly_written_frame_keeps_the_send_lock_until_it_is_complete(pair):
    # another writer of the socket (pybit's pinger, under websocket-client's lock) must
    # never land inside one of our frames
    a, b = pair
    lock = threading.Lock()
    w = FrameWriter(a, lock)
    big = [frame(i, 5000) for i in range(40)]
    pings = 200
    stop = threading.Event()

    def pinger():
        sent = 0
        while sent < pings and not stop.is_set():
            with lock:
                a.sendall(b"#")
            sent += 1

    for f in big[:20]:
        w.write(f)
    t = threading.Thread(target=pinger, daemon=True)
    t.start()
    for f in big[20:]:
        w.write(f)
    data = read_exactly(b, sum(map(len, big)) + pings)
    t.join(10)
    stop.set()
    frames = data.replace(b"#", b"")
    assert frames == b"".join(big)
    # every '#' sits between two frames, never inside one
    pos = 0
    boundaries = {0}
    for f in big:
        pos += len(f)
        boundaries.add(pos)
    offset = 0
    for i, byte in enumerate(data):
        if byte == ord("#"):
            assert i - offset in boundaries, f"a ping inside a frame at byte {i - offset}"
            offset += 1


def test_a_frame_the_writer_thread_cannot_write_is_reported(pair):
    a, b = pair
    lock = threading.Lock()
    w = FrameWriter(a, lock)
    failed = []
    lock.acquire()
    w.write(frame(1), failed.append)
    w.write(frame(2), failed.append)
    b.close()
    a.shutdown(socket.SHUT_WR)  # the connection is gone before the writer gets the lock
    lock.release()
    assert wait_for(lambda: len(failed) == 2)
    assert all(isinstance(e, OSError) for e in failed)
    assert w.failed == 2


def test_a_closed_writer_refuses_and_its_thread_ends(pair):
    a, b = pair
    lock = threading.Lock()
    w = FrameWriter(a, lock)
    lock.acquire()
    w.write(frame(1))  # starts the writer thread
    lock.release()
    assert read_exactly(b, 300) == frame(1)
    w.close()
    assert w._thread is not None
    w._thread.join(10)
    assert not w._thread.is_alive()
    with pytest.raises(WebSocketConnectionClosedException):
        w.write(frame(2))


def test_a_direct_write_error_propagates_to_the_caller(pair):
    a, b = pair
    lock = threading.Lock()
    w = FrameWriter(a, lock)
    b.close()
    a.shutdown(socket.SHUT_WR)
    with pytest.raises(OSError):
        w.write(frame(1))
    assert lock.acquire(blocking=False)  # released on the error


# ---------------------------------------------------------------------------- over TLS


@pytest.fixture
def tls_pair():
    """A connected TLS pair over a socketpair (client a, server b), handshake done."""
    import ssl  # noqa: PLC0415

    import trustme  # noqa: PLC0415

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    raw_a, raw_b = socket.socketpair()
    raw_a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    raw_b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    box = {}
    server = threading.Thread(
        target=lambda: box.setdefault("b", server_ctx.wrap_socket(raw_b, server_side=True))
    )
    server.start()
    a = client_ctx.wrap_socket(raw_a, server_hostname="127.0.0.1")
    server.join(10)
    b = box["b"]
    yield a, b
    a.close()
    b.close()


def test_a_large_tls_frame_goes_to_the_writer_thread_and_keeps_its_place(tls_pair):
    a, b = tls_pair
    w = FrameWriter(a, threading.Lock())
    big = frame(1, 3000)  # over TLS_INLINE_MAX_BYTES: its write might wait for room
    assert w.write(big) is False
    w.write(frame(2))  # behind it while the backlog is not empty
    assert read_exactly(b, 3300) == big + frame(2)
    assert wait_for(lambda: w.queued_write.count >= 1)
