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
import time
import uuid

from pybit.unified_trading import HTTP, WebSocket, WebSocketTrading

__all__ = [
    "LocalEndpoint",
    "LocalWebSocket",
    "LocalWebSocketTrading",
    "RawTextFrames",
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
        self.__dict__["_raw_ws"] = app


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
