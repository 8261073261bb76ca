"""Server-to-client WebSocket frames cut out of large reads, checked against RFC 6455.

websocket-client asks the socket for exactly the bytes it needs next (2 for the header, 2
or 8 for the length, then the payload): three ``recv`` calls per frame through several
Python layers, one ``select`` per frame in its read loop, and per frame an ``ABNF``
object, a continuation check, two callback wrappers and pybit's lambda. On a busy feed
that was most of the CPU once the UTF-8 check had gone (``python -m benchmarks --feed``).

:class:`ReadAheadFrames` reads up to 64 KiB per ``recv`` and cuts frames out of that
buffer. :func:`_read_ahead_dispatcher` is the connection's read loop: it hands every
whole, final, unfragmented text frame straight to a text handler (a ``bytes`` payload,
no frame object) and lets websocket-client read everything else through
:meth:`ReadAheadFrames.recv_frame` from the same buffer: pings, pongs, closes and
fragmented messages go exactly where websocket-client sends them.

Both paths fail the connection (raise :class:`FrameProtocolError`) on what RFC 6455 says
a client must not accept, including some websocket-client lets through:

- a masked frame (a server never masks, section 5.1);
- reserved bits set (no extension is negotiated), an unknown opcode;
- a control frame that is fragmented or longer than 125 bytes (5.5);
- a continuation with no fragmented message in progress, or a new text/binary frame
  inside one (5.4);
- a text message that is not valid UTF-8 (8.1; checked in C: ``bytes.isascii``, then the
  UTF-8 codec only for non-ASCII payloads);
- a close frame with a 1-byte body, an invalid status code, or a reason that is not UTF-8
  (5.5.1, 7.4);
- a 64-bit length with its most significant bit set (5.2);
- a frame, or a fragmented message in total, longer than :data:`MAX_FRAME_BYTES`
  (close code 1009), refused on the header: the payload is never asked for, so a
  length of 2**63 - 1 costs nothing.

The error reaches pybit's ``_on_error`` through websocket-client's disconnect path;
:class:`~mmbot.bybit.clients.RawTextFrames` closes the socket with the error's status
and lets pybit reconnect and resubscribe, so every book resyncs from a fresh snapshot.
"""

from __future__ import annotations

import logging
import selectors
import struct
from collections.abc import Callable

from websocket import ABNF, WebSocketConnectionClosedException, WebSocketProtocolException
from websocket._dispatcher import Dispatcher

__all__ = [
    "MAX_FRAME_BYTES",
    "STATUS_INVALID_PAYLOAD",
    "STATUS_MESSAGE_TOO_BIG",
    "STATUS_PROTOCOL_ERROR",
    "FrameProtocolError",
    "ReadAheadFrames",
]

log = logging.getLogger(__name__)

STATUS_PROTOCOL_ERROR = 1002
STATUS_INVALID_PAYLOAD = 1007  # a text message that is not UTF-8
STATUS_MESSAGE_TOO_BIG = 1009
#: The longest frame, and fragmented message, a reader takes. Bybit's biggest messages are
#: orderbook.1000 snapshots: 2,000 levels of about 25 bytes, some 50-100 KB (the
#: simulator's 200-level snapshot is 8 KB). 16 MiB is two orders of magnitude above that,
#: and small enough that a broken or hostile length costs no memory worth the name.
MAX_FRAME_BYTES = 16 * 2**20

_READ_AHEAD = 65536
_UNPACK_H = struct.Struct("!H").unpack_from
_UNPACK_Q = struct.Struct("!Q").unpack_from
_TEXT, _BINARY, _CLOSE = ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY, ABNF.OPCODE_CLOSE
_FIN_TEXT = 0x80 | _TEXT  # the fast path's first header byte: final, no rsv bits, text
_is_valid_close_status = ABNF._is_valid_close_status


class FrameProtocolError(WebSocketProtocolException):
    """The server broke RFC 6455: the connection must be failed.

    Attributes
    ----------
    status : int
        The close code to send: 1002 (protocol error), 1007 (a text message that is
        not UTF-8) or 1009 (a frame or message over :data:`MAX_FRAME_BYTES`).
    """

    def __init__(self, message: str, status: int = STATUS_PROTOCOL_ERROR):
        super().__init__(message)
        self.status = status


def _check_utf8(payload: bytes, what: str) -> None:
    if payload.isascii():  # Bybit's frames are: one C pass, no decode
        return
    try:
        payload.decode()
    except UnicodeDecodeError as exc:
        raise FrameProtocolError(
            f"{what} is not valid UTF-8 ({exc.reason} at byte {exc.start}): {payload[:80]!r}",
            STATUS_INVALID_PAYLOAD,
        ) from None


class ReadAheadFrames:
    """Frame reader for one websocket-client connection, over a read-ahead buffer.

    Installed as the connection's ``frame_buffer.recv_frame``, :meth:`recv_frame` returns
    websocket-client's ``ABNF`` frames; :meth:`take_texts` is the dispatcher's fast path.
    Both keep one record of the fragmented message in progress, so either may read the
    next frame.
    """

    __slots__ = ("sock", "buf", "pos", "_message_opcode", "_message_bytes", "_text_parts")

    def __init__(self, sock):
        self.sock = sock  # websocket.WebSocket: its _recv raises on a closed socket
        self.buf = b""
        self.pos = 0
        self._message_opcode = 0  # opcode of the fragmented message in progress, 0 if none
        self._message_bytes = 0  # its payload bytes so far
        self._text_parts: list[bytes] = []  # its payloads so far, when it is text

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

    def fill(self) -> None:
        """Read the socket once (blocking until some bytes arrive) into the buffer."""
        chunk = self.sock._recv(_READ_AHEAD)
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0

    def _need(self, n: int) -> None:
        # the buffer holds whole frames most of the time, so this slice is rare and short
        while len(self.buf) - self.pos < n:
            chunk = self.sock._recv(max(_READ_AHEAD, n))
            self.buf = self.buf[self.pos :] + chunk
            self.pos = 0

    def _check_header(self, b1: int, b2: int, n: int) -> None:
        """Raise FrameProtocolError for a header RFC 6455 forbids from a server."""
        opcode = b1 & 0x0F
        if b2 & 0x80:
            raise FrameProtocolError(f"server frame (opcode 0x{opcode:x}) is masked")
        if b1 & 0x70:
            raise FrameProtocolError(
                f"reserved bits set in frame header 0x{b1:02x} (no extension was negotiated)"
            )
        if opcode >= 0x8:
            if opcode > 0xA:
                raise FrameProtocolError(f"unknown opcode 0x{opcode:x}")
            if not b1 & 0x80:
                raise FrameProtocolError(f"control frame (opcode 0x{opcode:x}) is fragmented")
            if n > 125:
                raise FrameProtocolError(
                    f"control frame (opcode 0x{opcode:x}) carries {n} bytes (at most 125)"
                )
        elif opcode > _BINARY:
            raise FrameProtocolError(f"unknown opcode 0x{opcode:x}")
        elif opcode == 0:
            if not self._message_opcode:
                raise FrameProtocolError("continuation frame with no fragmented message")
        elif self._message_opcode:
            raise FrameProtocolError(
                f"data frame (opcode 0x{opcode:x}) inside a fragmented message"
            )
        if n >> 63:
            raise FrameProtocolError(f"frame length {n} has its most significant bit set")
        limit = MAX_FRAME_BYTES
        if n > limit:
            raise FrameProtocolError(
                f"frame (opcode 0x{opcode:x}) announces {n} bytes; the limit is {limit}",
                STATUS_MESSAGE_TOO_BIG,
            )
        if opcode == 0 and self._message_bytes + n > limit:
            raise FrameProtocolError(
                f"fragmented message of {self._message_bytes + n} bytes; the limit is {limit}",
                STATUS_MESSAGE_TOO_BIG,
            )

    def recv_frame(self) -> ABNF:
        """Return the next frame, reading the socket only when the buffer runs out.

        Raises
        ------
        FrameProtocolError
            The frame breaks RFC 6455 (see the module docstring); nothing after it can be
            trusted.
        websocket.WebSocketConnectionClosedException
            The socket closed.
        """
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
        self._check_header(b1, b2, n)  # before the payload: a bad length is never read
        self._need(head + n)
        buf, pos = self.buf, self.pos
        payload = buf[pos + head : pos + head + n]
        self.pos = pos + head + n
        if self.pos == len(buf):
            self.buf, self.pos = b"", 0
        opcode, fin = b1 & 0x0F, b1 >> 7
        if opcode <= _BINARY:
            self._track_message(opcode, fin, payload)
        elif opcode == _CLOSE:
            _check_close(payload)
        return ABNF(fin, 0, 0, 0, opcode, 0, payload)

    def _track_message(self, opcode: int, fin: int, payload: bytes) -> None:
        if opcode:  # the first frame of a message
            if fin:
                if opcode == _TEXT:
                    _check_utf8(payload, "text frame")
            else:
                self._message_opcode = opcode
                self._message_bytes = len(payload)
                self._text_parts = [payload] if opcode == _TEXT else []
            return
        self._message_bytes += len(payload)
        if self._message_opcode == _TEXT:
            self._text_parts.append(payload)
        if fin:
            if self._message_opcode == _TEXT:
                text, self._text_parts = b"".join(self._text_parts), []
                _check_utf8(text, "fragmented text message")
            self._message_opcode = 0
            self._message_bytes = 0

    def take_texts(self, on_text: Callable[[bytes], object], app) -> bool:
        """Hand each buffered whole, final, unmasked text frame to ``on_text``, in order,
        while no fragmented message is in progress; stop at the first other frame, at an
        incomplete text frame, or when ``app.keep_running`` goes False.

        Returns whether the buffer starts a frame that is not for this path: read it with
        :meth:`recv_frame`, which checks its header at once and waits for the rest of it
        as websocket-client would. An exception from ``on_text`` goes where
        websocket-client sends a callback's: logged, then to ``app.on_error``.
        """
        buf, pos = self.buf, self.pos
        end = len(buf)
        if self._message_opcode:
            return end - pos >= 2
        other = False
        try:
            while end - pos >= 2:
                n = buf[pos + 1]
                if buf[pos] != _FIN_TEXT or n > 126:  # masked, 64-bit length: not ours
                    other = True
                    break
                if n < 126:
                    start = pos + 2
                else:
                    if end - pos < 4:
                        break
                    n, start = _UNPACK_H(buf, pos + 2)[0], pos + 4
                stop = start + n
                if stop > end:
                    break
                payload = buf[start:stop]
                if not payload.isascii():
                    _check_utf8(payload, "text frame")
                pos = stop
                try:
                    on_text(payload)
                except Exception as exc:  # websocket-client's _callback, for the same handler
                    log.error("error from callback %r: %s", on_text, exc)
                    if app.on_error:
                        app.on_error(app, exc)
                if not app.keep_running:
                    return False
        finally:
            if pos == end:
                self.buf, self.pos = b"", 0
            else:
                self.pos = pos
        return other


def _check_close(payload: bytes) -> None:
    if not payload:
        return
    if len(payload) == 1:
        raise FrameProtocolError("close frame body is 1 byte (a status code is 2)")
    code = _UNPACK_H(payload, 0)[0]
    if not _is_valid_close_status(code):
        raise FrameProtocolError(f"close frame carries invalid status code {code}")
    _check_utf8(payload[2:], "close reason")


class _ReadAheadDispatcher(Dispatcher):
    """websocket-client's plain read loop over a :class:`ReadAheadFrames` buffer.

    With a text handler (and no ``on_data``/``on_cont_message`` on the app, which would
    want every frame), each ``recv`` is followed by one loop over the whole frames it
    completed; ``check_callback`` (the ping-timeout check) runs once per read, not per
    frame.
    """

    def __init__(self, app, ping_timeout, on_text: Callable[[bytes], object] | None = None):
        super().__init__(app, ping_timeout)
        self.on_text = on_text

    def read(self, sock, read_callback, check_callback) -> None:
        app = self.app
        if app.sock is None:
            return
        ws = app.sock
        raw = ws.sock
        if raw is None:
            return
        reader = ReadAheadFrames(ws)
        # an instance attribute over the method: a new app.sock on every connect
        setattr(ws.frame_buffer, "recv_frame", reader.recv_frame)  # noqa: B010
        on_text = self.on_text
        if app.on_data is not None or app.on_cont_message is not None:
            on_text = None
        pending = getattr(raw, "pending", None)  # TLS: decrypted bytes the socket won't signal
        has_frame = reader.has_frame
        sel = selectors.DefaultSelector()
        sel.register(raw, selectors.EVENT_READ)
        try:
            while app.keep_running:
                if (
                    has_frame()
                    or (pending is not None and pending())
                    or sel.select(self.ping_timeout)
                ):
                    if on_text is None:
                        if not read_callback():
                            break
                    else:
                        # websocket-client's read() returns when the app was closed
                        # meanwhile (close() clears the flag, then its handshake ends the
                        # stream): reading on would report a drop, and pybit would
                        # reconnect a socket it was told to close
                        if not app.keep_running:
                            break
                        if not has_frame():
                            try:
                                reader.fill()
                            except (WebSocketConnectionClosedException, OSError):
                                if not app.keep_running:  # closed while this read waited
                                    break
                                raise
                        # whole frames of another kind, one at a time through
                        # websocket-client (it may need more bytes: a fragmented message)
                        while reader.take_texts(on_text, app):
                            if not read_callback():
                                return
                        if not app.keep_running:
                            break  # run_forever tears the connection down
                check_callback()
        finally:
            sel.close()


def _read_ahead_dispatcher(app, on_text, ping_timeout, dispatcher=None, *args, **kwargs):
    """``WebSocketApp.create_dispatcher`` with the read-ahead loop (``on_text`` may be None)."""
    if dispatcher is not None:  # a caller's own dispatcher: websocket-client's wrapper
        return type(app).create_dispatcher(app, ping_timeout, dispatcher, *args, **kwargs)
    return _ReadAheadDispatcher(app, ping_timeout or 10, on_text)
