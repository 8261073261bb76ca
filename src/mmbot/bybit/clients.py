"""pybit's clients aimed at a base URL, with the fixes they need against a fast server.

Bybit hosts are hard-coded in pybit (``wss://`` and ``https://``; see the project's Bybit
notes, section 2.2): :class:`LocalEndpoint` rewrites the host of every (re)connect, so the
real pybit classes talk to the local simulator unchanged. With no base URL they talk to
Bybit itself.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import selectors
import struct
import time
import uuid

from pybit.unified_trading import HTTP, WebSocket, WebSocketTrading
from websocket import ABNF
from websocket._dispatcher import Dispatcher

__all__ = [
    "LocalEndpoint",
    "LocalWebSocket",
    "LocalWebSocketTrading",
    "RawTextFrames",
    "ReadAheadFrames",
    "local_http",
]

log = logging.getLogger(__name__)


class LocalEndpoint:
    """Mixin that points a pybit WebSocket class at ``ws_base`` (overriding pybit's
    ``_connect``).

    ``_connect`` runs at construction and on every reconnect, so the rewrite survives
    reconnects. With ``ws_base`` None the real Bybit URL is kept.
    """

    ws_base: str | None = None

    def _connect(self, url):
        if self.ws_base:
            url = re.sub(r"^wss?://[^/]+", self.ws_base, url)
        return super()._connect(url)

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
    ``_connect``) to keep websocket-client's check, as the feed benchmark's baseline does.
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
            # run_forever asks the app for its read loop: ours drains the read-ahead
            app.create_dispatcher = functools.partial(_read_ahead_dispatcher, app)
        self.__dict__["_raw_ws"] = app


_READ_AHEAD = 65536
_UNPACK_H = struct.Struct("!H").unpack_from
_UNPACK_Q = struct.Struct("!Q").unpack_from


class ReadAheadFrames:
    """WebSocket frame reader for one websocket-client connection that reads the socket in
    large chunks and cuts frames out of that buffer.

    websocket-client asks the socket for exactly the bytes it needs next (2 for the
    header, 2 or 8 for the length, then the payload): three ``recv`` calls and their
    Python wrappers per frame, and one ``select`` per frame in its read loop, which
    together were about two thirds of a busy feed's CPU (``python -m benchmarks --feed``).
    Installed as the connection's ``frame_buffer.recv_frame``, it returns the same
    ``ABNF`` frames, validated the same way; :func:`_read_ahead_dispatcher`'s loop reads
    every complete frame already buffered before it waits on the socket again, so a
    buffered frame never waits for the next packet.
    """

    __slots__ = ("sock", "buf", "pos", "skip_utf8_validation")

    def __init__(self, sock, skip_utf8_validation: bool = True):
        self.sock = sock  # websocket.WebSocket: its _recv raises on a closed socket
        self.buf = b""
        self.pos = 0
        self.skip_utf8_validation = skip_utf8_validation

    def has_frame(self) -> bool:
        """Whether a whole frame is buffered (so reading it will not touch the socket)."""
        buf, pos = self.buf, self.pos
        avail = len(buf) - pos
        if avail < 2:
            return False
        n = buf[pos + 1] & 0x7F
        head = 2
        if n == 126:
            if avail < 4:
                return False
            n, head = _UNPACK_H(buf, pos + 2)[0], 4
        elif n == 127:
            if avail < 10:
                return False
            n, head = _UNPACK_Q(buf, pos + 2)[0], 10
        if buf[pos + 1] & 0x80:
            head += 4
        return avail >= head + n

    def _need(self, n: int) -> None:
        # the buffer holds whole frames most of the time, so this slice is rare and short
        while len(self.buf) - self.pos < n:
            chunk = self.sock._recv(max(_READ_AHEAD, n))
            self.buf = self.buf[self.pos :] + chunk
            self.pos = 0

    def recv_frame(self) -> ABNF:
        """Return the next frame, reading the socket only when the buffer runs out."""
        self._need(2)
        buf, pos = self.buf, self.pos
        b1, b2 = buf[pos], buf[pos + 1]
        n = b2 & 0x7F
        head = 2
        if n == 126:
            self._need(4)
            buf, pos = self.buf, self.pos
            n, head = _UNPACK_H(buf, pos + 2)[0], 4
        elif n == 127:
            self._need(10)
            buf, pos = self.buf, self.pos
            n, head = _UNPACK_Q(buf, pos + 2)[0], 10
        masked = b2 >> 7
        if masked:
            head += 4
        self._need(head + n)
        buf, pos = self.buf, self.pos
        payload = buf[pos + head : pos + head + n]
        if masked:  # servers never mask; websocket-client accepts it, so do we
            payload = ABNF.mask(buf[pos + head - 4 : pos + head], payload)
        self.pos = pos + head + n
        if self.pos == len(buf):
            self.buf, self.pos = b"", 0
        frame = ABNF(b1 >> 7 & 1, b1 >> 6 & 1, b1 >> 5 & 1, b1 >> 4 & 1, b1 & 0xF, masked, payload)
        frame.validate(self.skip_utf8_validation)
        return frame


class _ReadAheadDispatcher(Dispatcher):
    """websocket-client's plain read loop, reading buffered frames before waiting."""

    def read(self, sock, read_callback, check_callback) -> None:
        app = self.app
        if app.sock is None:
            return
        ws = app.sock
        raw = ws.sock
        if raw is None:
            return
        reader = ReadAheadFrames(ws, ws.frame_buffer.skip_utf8_validation)
        # an instance attribute over the method: a new app.sock on every connect
        setattr(ws.frame_buffer, "recv_frame", reader.recv_frame)  # noqa: B010
        pending = getattr(raw, "pending", None)  # TLS: decrypted bytes the socket won't signal
        sel = selectors.DefaultSelector()
        sel.register(raw, selectors.EVENT_READ)
        try:
            while app.keep_running:
                if (
                    reader.has_frame()
                    or (pending is not None and pending())
                    or sel.select(self.ping_timeout)
                ):
                    if not read_callback():
                        break
                check_callback()
        finally:
            sel.close()


def _read_ahead_dispatcher(app, ping_timeout, dispatcher=None, *args, **kwargs):
    if dispatcher is not None:  # a caller's own dispatcher: websocket-client's wrapper
        return type(app).create_dispatcher(app, ping_timeout, dispatcher, *args, **kwargs)
    return _ReadAheadDispatcher(app, ping_timeout or 10)


class LocalWebSocket(LocalEndpoint, WebSocket):
    """pybit ``WebSocket`` (public or private) aimed at ``ws_base``."""

    def __init__(self, *args, ws_base: str | None = None, **kwargs):
        self.ws_base = ws_base
        super().__init__(*args, **kwargs)


class LocalWebSocketTrading(LocalEndpoint, WebSocketTrading):
    """pybit ``WebSocketTrading`` aimed at ``ws_base``."""

    def __init__(self, *args, ws_base: str | None = None, **kwargs):
        self.ws_base = ws_base
        super().__init__(*args, **kwargs)

    def _send_order_operation(self, operation, callback, request, error_callback=None):
        # pybit registers the reply callback *after* ws.send; a fast server's reply then
        # finds no callback and is dropped, error replies (10006, 10019) included.
        # Same message as pybit's, registered first.
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
    """
    kwargs.setdefault("testnet", False)
    session = HTTP(**kwargs)
    if http_base:
        session.endpoint = http_base.rstrip("/")
    return session
