"""pybit's clients aimed at a base URL, with the fixes they need against a fast server.

Bybit hosts are hard-coded in pybit (``wss://`` and ``https://``; see the project's Bybit
notes, section 2.2): :class:`LocalEndpoint` rewrites the host of every (re)connect, so the
real pybit classes talk to the local simulator unchanged. With no base URL they talk to
Bybit itself.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
import queue
import re
import select
import socket
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable

from pybit.unified_trading import HTTP, WebSocket, WebSocketTrading
from websocket import (
    WebSocketConnectionClosedException,
    WebSocketPayloadException,
    WebSocketProtocolException,
)

from mmbot.bybit.frames import (
    STATUS_PROTOCOL_ERROR,
    ReadAheadFrames,
    _read_ahead_dispatcher,
)
from mmbot.latency import LatencyStats
from mmbot.rfc6455 import text_frame_header

__all__ = [
    "LocalEndpoint",
    "LocalWebSocket",
    "LocalWebSocketTrading",
    "MaskKeys",
    "RawTextFrames",
    "ReadAheadFrames",
    "DecodedTextFrames",
    "FrameWriter",
    "client_text_frame",
    "local_http",
]

log = logging.getLogger(__name__)


class LocalEndpoint:
    """Mixin that points a pybit WebSocket class at ``ws_base`` (overriding pybit's
    ``_connect``), and closes two races pybit's subscribe has with a fast server.

    ``_connect`` runs at construction and on every reconnect, so the rewrite survives
    reconnects. With ``ws_base`` None the real Bybit URL is kept.

    pybit's ``subscribe`` sends the request and only then registers the topic's callback.
    A server that answers at once (the local simulator; Bybit's round trip mostly hides
    it) can deliver the topic's first message before that: pybit finds no callback,
    raises, and closes the socket for good, and the next ``subscribe`` waits for a
    connection with no timeout. Here a message for a topic with no callback yet waits
    until the subscribe in progress has registered it.
    """

    ws_base: str | None = None

    @property
    def _subscribing(self) -> threading.Lock:
        # held by a subscribe from its send to its callback's registration; setdefault is
        # atomic, so the first caller's lock is everyone's
        return self.__dict__.setdefault("_subscribe_lock", threading.Lock())

    def _connect(self, url):
        if self.ws_base:
            url = re.sub(r"^wss?://[^/]+", self.ws_base, url)
        return super()._connect(url)

    def subscribe(self, topic, callback, symbol=False):
        with self._subscribing:
            return super().subscribe(topic, callback, symbol)

    def _process_normal_message(self, message):
        if message.get("topic") not in self.callback_directory:
            with self._subscribing:  # a subscribe in progress registers it, or none is
                pass
        return super()._process_normal_message(message)

    def _process_subscription_message(self, message):
        # pybit stores subscriptions[req_id] only *after* ws.send, so a fast server (the
        # local simulator) can ack before it exists and pybit raises KeyError, killing
        # the socket. A successful ack carries no state we need: accept it.
        req_id = message.get("req_id")
        if req_id and req_id not in self.subscriptions and message.get("success") is True:
            log.debug("subscribe ack for %s arrived before pybit registered it", req_id)
            return
        if message.get("success") is False:
            # pybit's own failure path pops topic[0] of a JSON string (KeyError); log instead.
            log.error("subscription refused: %s", message.get("ret_msg"))
            return
        return super()._process_subscription_message(message)


class RawTextFrames:
    """Mixin: websocket-client hands TEXT frames to ``_on_message`` as raw ``bytes``.

    pybit runs websocket-client without ``skip_utf8_validation`` and no C validator is
    installed, so every text frame is checked byte by byte in Python: ~60-140 µs for a
    350-byte frame, about three quarters of a busy feed's CPU (``python -m benchmarks
    feed`` measures it). pybit hard-codes the ``run_forever`` call inside ``_connect``;
    rather than copy ``_connect``, this catches pybit's ``self.ws = WebSocketApp(...)``
    assignment (a data descriptor wins over the instance dict) and binds
    ``skip_utf8_validation=True`` to that app's ``run_forever``, which pybit's thread
    looks up afterwards. It survives reconnects, since each builds a new app.

    UTF-8 is still validated, in C, by whoever reads the bytes: obcore's raw parser
    rejects invalid UTF-8 (a ``FrameError``), and ``bytes.decode`` is the C codec. The
    subclass's ``_on_message`` must accept ``bytes`` and decode whatever it passes on to
    pybit (pybit's own handlers expect ``str``). Set ``raw_frames = False`` (before
    ``_connect``) to keep websocket-client's check and read loop, as the feed benchmark's
    baseline does.

    The app's read loop is :mod:`mmbot.bybit.frames`' read-ahead loop: each whole, final
    text frame's payload goes straight to ``_on_message`` (no frame object, no
    websocket-client or pybit callback wrappers); every other frame goes through
    websocket-client as before. A frame that breaks RFC 6455 (a masked frame, a long or
    fragmented control frame, invalid UTF-8 in a text message...) fails the connection:
    :meth:`_on_error` closes it with the error's status and hands pybit a disconnect, so
    pybit reconnects and resubscribes (pybit treats any other error as fatal and stops
    the socket for good).
    """

    raw_frames = True

    @property
    def ws(self):
        try:
            return self.__dict__["_raw_ws"]
        except KeyError:
            raise AttributeError("ws") from None  # pybit's exit() tests hasattr(self, "ws")

    @ws.setter
    def ws(self, app):
        if app is not None and self.raw_frames:
            app.run_forever = functools.partial(app.run_forever, skip_utf8_validation=True)
            # run_forever asks the app for its read loop: ours drains the read-ahead and
            # hands text payloads to _on_message itself (pybit's on_message lambda does
            # nothing else)
            app.create_dispatcher = functools.partial(_read_ahead_dispatcher, app, self._on_message)
        self.__dict__["_raw_ws"] = app

    def _on_error(self, error):
        if isinstance(error, (WebSocketProtocolException, WebSocketPayloadException)):
            # The server's stream is broken: nothing after this frame can be trusted, and
            # a new connection (fresh snapshots) is the cure. pybit would exit for good on
            # an error type it does not know, so fail this connection and report a
            # disconnect, which pybit answers by reconnecting and resubscribing.
            status = getattr(error, "status", STATUS_PROTOCOL_ERROR)
            log.error("%s; failing the connection (close %d) to reconnect", error, status)
            app = self.__dict__.get("_raw_ws")
            sock = app.sock if app is not None else None
            if sock is not None:
                try:
                    sock.close(status=status, timeout=0)  # no wait for the peer's close
                except Exception as exc:
                    log.warning("close after a protocol error failed: %s", exc)
            error = WebSocketConnectionClosedException(f"protocol error: {error}")
        return super()._on_error(error)


class DecodedTextFrames(RawTextFrames):
    """Mixin: :class:`RawTextFrames` for a socket whose messages all go to pybit's own
    handlers (the private and trade sockets): each is decoded with the C codec (which
    rejects invalid UTF-8 as websocket-client's check would), then handed to pybit.

    These sockets' threads take the GIL for every ack and order push; websocket-client's
    per-byte check made each such turn ~60-150 µs longer, time the quoting thread waits
    for the GIL after its own socket write.
    """

    def _on_message(self, message):
        if type(message) is bytes:
            message = message.decode()
        return super()._on_message(message)


class LocalWebSocket(LocalEndpoint, WebSocket):
    """pybit ``WebSocket`` (public or private) aimed at ``ws_base``."""

    def __init__(self, *args, ws_base: str | None = None, **kwargs):
        self.ws_base = ws_base
        super().__init__(*args, **kwargs)


_MASK_POOL_BYTES = 4096


def client_text_frame(payload: bytes, mask_key: bytes) -> bytes:
    """Return one final, masked TEXT frame carrying ``payload``: the bytes websocket-client's
    ``ABNF.create_frame(text).format()`` writes when its mask key is ``mask_key``.

    The XOR is two ``int.from_bytes`` and one ``to_bytes`` (C loops over the payload), as
    websocket-client does it; what this saves is the Python around it (frame object,
    field checks, ``chr().encode()`` per header byte).
    """
    n = len(payload)
    head = text_frame_header(n, masked=True)
    if not n:
        return head + mask_key
    mask = int.from_bytes(mask_key * (n >> 2) + mask_key[: n & 3], "little")
    return head + mask_key + (int.from_bytes(payload, "little") ^ mask).to_bytes(n, "little")


class MaskKeys:
    """Client mask keys cut from ``os.urandom`` drawn 4 KiB at a time.

    RFC 6455 wants each key from a strong source of entropy. websocket-client calls
    ``os.urandom(4)`` per frame, and that call releases the GIL (``getrandom``): a chance
    for another thread to take it in the middle of an order's send. One draw serves 1,024
    frames.
    """

    __slots__ = ("_pool", "_pos")

    def __init__(self) -> None:
        self._pool = b""
        self._pos = 0

    def __call__(self) -> bytes:
        pos = self._pos
        if pos + 4 > len(self._pool):
            self._pool = os.urandom(_MASK_POOL_BYTES)
            pos = 0
        self._pos = pos + 4
        return self._pool[pos : pos + 4]


#: the largest frame a TLS socket's caller writes itself (when the socket is writable): an
#: order request is a few hundred bytes, the smallest send buffer Linux allows is 4,608
TLS_INLINE_MAX_BYTES = 2048


class FrameWriter:
    """Writes whole frames to one socket, in order, without ever blocking the caller.

    A write tries the socket at once: when nothing is queued, websocket-client's send
    lock is free (pybit's pinger is not mid-send) and the kernel takes the whole frame
    (``send`` with ``MSG_DONTWAIT``), the frame is on the socket when :meth:`write`
    returns, with no thread hop. Otherwise the frame (or the part the kernel did not
    take) goes to a backlog that a writer thread of its own drains with blocking
    ``sendall`` calls, and every later write queues behind it until the backlog is empty,
    so frames never reorder. A partly written frame keeps the send lock held until the
    writer has finished it (websocket-client's lock is a plain ``threading.Lock``, which
    another thread may release), so a ping can never land inside it.

    A TLS socket (Bybit itself) takes no send flags. There a write goes onto the socket
    at once only when ``poll`` says the socket is writable and the frame is at most
    :data:`TLS_INLINE_MAX_BYTES`: Linux reports a TCP socket writable only while its send
    buffer is under its limit, and a send that starts under the limit takes a small write
    whole, so the TLS record's one ``write`` cannot wait. Every other frame goes to the
    writer thread, as on plain sockets.

    ``queued_write`` times each frame handed to the writer thread, from :meth:`write` to
    the end of its ``sendall``: how long the frames that could not go at once waited.

    Parameters
    ----------
    sock : socket.socket
        The connected socket (websocket-client's ``WebSocket.sock``).
    send_lock : threading.Lock
        websocket-client's send lock (``WebSocket.lock``), held around every write.
    queued_write : LatencyStats, optional
        Where to add the queued frames' waits (one set over a connection's writers).
    """

    def __init__(
        self, sock: socket.socket, send_lock, queued_write: LatencyStats | None = None
    ) -> None:
        self.sock = sock
        self._send_lock = send_lock
        # guards the backlog and the flags; never held while a call can block
        self._mu = threading.Lock()
        self._backlog: deque[tuple[bytes, Callable[[BaseException], None] | None, int]] = deque()
        self._busy = False  # the writer thread has the backlog (and takes the send lock)
        self._holding = False  # a write left the send lock held for the writer thread
        self._tokens: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        # a socket with a timeout polls before it sends, even with MSG_DONTWAIT
        self._direct = type(sock) is socket.socket and sock.gettimeout() is None
        self._writable: select.poll | None = None
        if isinstance(sock, ssl.SSLSocket):
            self._writable = select.poll()
            self._writable.register(sock, select.POLLOUT)
        #: frames written by the caller itself / handed to the writer thread
        self.inline = 0
        self.queued = 0
        self.failed = 0
        # added to by the writer thread only
        self.queued_write = LatencyStats() if queued_write is None else queued_write

    def write(self, frame: bytes, on_fail: Callable[[BaseException], None] | None = None):
        """Write ``frame`` now if the socket takes it without waiting, else queue it.

        Returns True when the whole frame was written here. ``on_fail(exc)`` is called
        (on the writer thread) if a queued frame can no longer be written. Raises
        ``WebSocketConnectionClosedException`` after :meth:`close`, and what the socket
        raises for a direct write (nothing of the frame was queued then).
        """
        with self._mu:
            if self._closed:
                raise WebSocketConnectionClosedException("Connection is already closed.")
            if not self._busy and self._can_go(frame) and self._send_lock.acquire(blocking=False):
                try:
                    if self._direct:
                        n = self.sock.send(frame, socket.MSG_DONTWAIT)
                    elif self._writable is not None and self._writable.poll(0):
                        n = self.sock.send(frame)  # TLS, small, and the kernel has room
                    else:
                        n = 0
                except BlockingIOError:
                    n = 0
                except BaseException:
                    self._send_lock.release()
                    raise
                if n == len(frame):
                    self._send_lock.release()
                    self.inline += 1
                    return True
                frame = frame[n:]
                self._holding = True  # released by the writer thread after the rest
            self._backlog.append((frame, on_fail, time.perf_counter_ns()))
            self.queued += 1
            if not self._busy:
                self._busy = True
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="mmbot-trade-writer", daemon=True
                    )
                    self._thread.start()
                self._tokens.put(None)
        return False

    def _can_go(self, frame: bytes) -> bool:
        return self._direct or (self._writable is not None and len(frame) <= TLS_INLINE_MAX_BYTES)

    def close(self) -> None:
        """Stop the writer thread once the backlog is written (or has failed)."""
        with self._mu:
            self._closed = True
            if self._thread is not None and not self._busy:
                self._tokens.put(None)

    def _run(self) -> None:
        while True:
            self._tokens.get()
            with self._mu:
                if not self._busy:
                    if self._closed:
                        return
                    continue
                holding = self._holding
            if not holding:
                self._send_lock.acquire()  # this thread waits, never a caller
            self._drain()

    def _drain(self) -> None:
        error: BaseException | None = None
        locked = True
        try:
            while True:
                with self._mu:
                    if not self._backlog:
                        # under _mu: the next write finds the lock free and writes itself
                        self._send_lock.release()
                        locked = False
                        self._busy = self._holding = False
                        if self._closed:
                            self._tokens.put(None)  # let _run return
                        return
                    frame, on_fail, queued_ns = self._backlog.popleft()
                if error is None:
                    try:
                        self.sock.sendall(frame)
                        self.queued_write.add(time.perf_counter_ns() - queued_ns)
                        continue
                    except BaseException as exc:  # noqa: BLE001  (each request is told, below)
                        error = exc
                        log.warning("trade socket: write failed: %s", exc)
                # the socket is broken: this frame and the rest are not sent; pybit's
                # reader sees the drop and the venue reports the link down
                self.failed += 1
                if on_fail is not None:
                    try:
                        on_fail(error)
                    except Exception:
                        log.exception("trade socket: reporting a failed write")
        finally:
            if locked:  # an exception escaped (not the socket's: those are handled)
                self._send_lock.release()


# compact: fewer bytes to mask and to send; the server parses either
_encode = json.JSONEncoder(separators=(",", ":")).encode


class LocalWebSocketTrading(LocalEndpoint, WebSocketTrading):
    """pybit ``WebSocketTrading`` aimed at ``ws_base``, writing its order requests itself.

    pybit's request path costs about 20 µs a request on a warm CPU and several times that
    on the cold one a quiet live session wakes up on (``python -m benchmarks --live``):
    ``uuid4()`` and a mask key each make a ``getrandom`` call that releases the GIL,
    ``json.dumps`` builds the message from a fresh dict, and websocket-client's frame
    object checks its fields and formats the header byte by byte. Here the reqId is a
    random per-connection prefix and a counter, the header's fixed part is formatted
    once, mask keys come from :class:`MaskKeys`, the frame from
    :func:`client_text_frame`, and the write goes through a :class:`FrameWriter`: it
    never blocks the sending thread (in ``mmbot run``, often pybit's socket thread that
    received the frame), and it holds websocket-client's own send lock, so pybit's pings
    (sent through websocket-client) never interleave with it. The message
    is pybit's: same keys and values, compact separators. ``own_frames = False`` (or
    ``MMBOT_TRADE_SEND=pybit`` in the environment, for the live benchmark's baseline)
    sends through pybit and websocket-client instead, whose blocking ``sendall`` can
    stall the sending thread when the socket's buffer is full (a baseline, not for use).
    """

    own_frames = os.environ.get("MMBOT_TRADE_SEND", "") != "pybit"

    def __init__(self, *args, ws_base: str | None = None, **kwargs):
        self.ws_base = ws_base
        # unique per connection object and short: Bybit allows 36 characters
        self._req_prefix = os.urandom(8).hex() + "-"
        self._req_seq = itertools.count(1)
        self._mask_key = MaskKeys()
        self._writer: FrameWriter | None = None
        self._writer_mu = threading.Lock()
        #: frames written by the sending thread / by the writer thread (older writers too)
        self.writes_inline = 0
        self.writes_queued = 0
        #: how long the frames the writer thread wrote waited for it (every writer's)
        self.queued_write = LatencyStats()
        super().__init__(*args, **kwargs)
        tail = ""
        if self.recv_window:
            tail += ',"X-BAPI-RECV-WINDOW":' + _encode(self.recv_window)
        if self.referral_id:
            tail += ',"Referer":' + _encode(self.referral_id)
        self._header_tail = tail + '},"op":"'

    def _send_order_operation(self, operation, callback, request, error_callback=None):
        # pybit registers the reply callback *after* ws.send; a fast server's reply then
        # finds no callback and is dropped, error replies (10006, 10019) included.
        # Same message as pybit's, registered first.
        if not self.own_frames:
            return self._send_through_pybit(operation, callback, request, error_callback)
        request_id = self._req_prefix + str(next(self._req_seq))
        text = (
            '{"reqId":"'
            + request_id
            + '","header":{"X-BAPI-TIMESTAMP":'
            + str(time.time_ns() // 1_000_000)
            + self._header_tail
            + operation
            + '","args":['
            + _encode(request)
            + "]}"
        )
        self._set_callback(request_id, callback, error_callback)

        def not_written(exc: BaseException) -> None:
            # a queued frame the writer thread could not write: the request never left
            self._pop_callback(request_id)
            if error_callback is not None:
                error_callback({"retCode": -1, "retMsg": f"not sent: {exc}"})

        try:
            self._write_text(text, not_written)
        except Exception:
            self._pop_callback(request_id)
            raise

    def _write_text(
        self, text: str, on_fail: Callable[[BaseException], None] | None = None
    ) -> bool:
        """Write one text frame without blocking (:class:`FrameWriter`); return whether
        it went onto the socket here (False: the writer thread writes it)."""
        ws = self.ws.sock  # websocket-client's WebSocket; None once closed
        raw = None if ws is None else ws.sock
        if raw is None or not ws.connected:
            raise WebSocketConnectionClosedException("Connection is already closed.")
        frame = client_text_frame(text.encode(), self._mask_key())
        writer = self._writer
        if writer is None or writer.sock is not raw:
            with self._writer_mu:
                writer = self._writer
                if writer is None or writer.sock is not raw:  # a new connection
                    if writer is not None:
                        writer.close()
                    writer = self._writer = FrameWriter(raw, ws.lock, self.queued_write)
        if writer.write(frame, on_fail):
            self.writes_inline += 1
            return True
        self.writes_queued += 1
        return False

    def exit(self):
        """Close the socket and stop the frame writer's thread."""
        with self._writer_mu:
            if self._writer is not None:
                self._writer.close()
        super().exit()

    def _send_through_pybit(self, operation, callback, request, error_callback=None):
        request_id = str(uuid.uuid4())
        message = {
            "reqId": request_id,
            "header": {"X-BAPI-TIMESTAMP": time.time_ns() // 1_000_000},
            "op": operation,
            "args": [request],
        }
        if self.recv_window:
            message["header"]["X-BAPI-RECV-WINDOW"] = self.recv_window
        if self.referral_id:
            message["header"]["Referer"] = self.referral_id
        self._set_callback(request_id, callback, error_callback)
        try:
            self.ws.send(json.dumps(message))
        except Exception:
            self._pop_callback(request_id)
            raise


def local_http(http_base: str | None = None, **kwargs) -> HTTP:
    """Return a pybit ``HTTP`` session, pointed at ``http_base`` when given.

    ``kwargs`` go to ``HTTP`` (``testnet``, ``api_key``, ``api_secret``, ``retry_delay``...).

    ``REQUESTS_CA_BUNDLE`` (requests' own variable: a CA bundle to verify servers with, e.g.
    a simulator serving TLS, or a proxy's) is applied here: pybit sends with
    ``Session.send``, which skips the environment that ``Session.request`` would read.
    """
    kwargs.setdefault("testnet", False)
    session = HTTP(**kwargs)
    if http_base:
        session.endpoint = http_base.rstrip("/")
    ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE")
    if ca_bundle:
        session.client.verify = ca_bundle
    return session
