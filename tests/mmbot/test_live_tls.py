"""``mmbot run``'s clients over TLS, as against Bybit itself (``https``/``wss``), against
the real simulator serving TLS on 127.0.0.1 with a certificate from a throwaway CA.

Over TLS the feed's read-ahead loop must also drain what the TLS layer has decrypted but
the socket no longer signals (``SSLSocket.pending``), and the trade socket's writes take
no send flags, so :class:`FrameWriter` asks ``poll`` whether the socket has room first:
neither path runs against a plain-TCP simulator.
"""

from __future__ import annotations

import ssl
import subprocess
import sys
import threading

import pytest
import trustme
from support.waiting import wait_for

from mmbot.bybit.clients import local_http
from mmbot.config import load_config
from mmbot.live import LiveSession, RemoteSim
from mmbot.sim.server import SimSymbol, server_tls_context

pytestmark = pytest.mark.slow  # real sockets to a simulator on 127.0.0.1

SYM = "BTCUSDT"


@pytest.fixture
def tls_files(tmp_path, monkeypatch):
    """(cert, key) for 127.0.0.1 from a new CA, which every client here trusts (the
    variables websocket-client and requests read)."""
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    cert, key, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("WEBSOCKET_CLIENT_CA_BUNDLE", str(ca_file))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    return str(cert), str(key)


def test_the_bot_quotes_fills_and_stops_over_tls(tls_files, start_sim):
    sim = start_sim(symbols=[SimSymbol(SYM)], speed=2.0, ssl_context=server_tls_context(*tls_files))
    assert sim.http_url.startswith("https://") and sim.ws_url.startswith("wss://")
    session = LiveSession(load_config(None), SYM, "sim", sim=sim).open()
    t = threading.Thread(target=session.run, kwargs={"duration_s": 60}, daemon=True)
    t.start()
    try:
        assert wait_for(lambda: len(sim.open_orders(SYM)) >= 2, timeout_s=15)
        assert isinstance(session.feed.ws.sock.sock, ssl.SSLSocket)  # the feed reads TLS
        sim.taker_hit(SYM, "Buy")  # a fill: execution and order pushes over the private wss
        assert wait_for(lambda: session.runner.orders.position_lots != 0, timeout_s=15)
        frames = session.runner.frames
        assert wait_for(lambda: session.runner.frames >= frames + 50, timeout_s=15)
    finally:
        session.request_stop()
        t.join(30)
    assert not t.is_alive()
    # the same position on both sides, every order closed at the venue and in the bot
    assert session.runner.orders.position_lots == sim.position_lots(SYM) != 0
    assert sim.open_orders(SYM) == []
    assert all(m.done for m in session.runner.orders.orders.values())
    assert session.runner.book_errors == 0 and session.feed.by_symbol[SYM].resyncs == 0
    # TLS takes no send flags: the sending thread wrote when poll said the socket had room
    writes = session.timing()["trade_writes"]
    assert writes["inline"] > 0
    assert writes["queued_write"]["count"] == writes["queued"]


def test_pybit_http_trusts_requests_ca_bundle_through_local_http(tls_files, start_sim):
    sim = start_sim(symbols=[SimSymbol(SYM)], ssl_context=server_tls_context(*tls_files))
    # pybit sends with Session.send, which does not read REQUESTS_CA_BUNDLE by itself
    assert local_http(sim.http_url).get_server_time()["retCode"] == 0


def test_a_tls_key_that_does_not_match_is_a_clear_error(tmp_path, tls_files):
    other = trustme.CA().issue_cert("127.0.0.1")
    key = tmp_path / "other-key.pem"
    other.private_key_pem.write_to_path(str(key))
    with pytest.raises(ValueError, match="cannot load the TLS certificate"):
        server_tls_context(tls_files[0], str(key))


def test_sim_url_https_keeps_tls_for_every_client():
    remote = RemoteSim("https://localhost:9443")
    assert (remote.http_url, remote.ws_url) == ("https://127.0.0.1:9443", "wss://127.0.0.1:9443")
    with pytest.raises(ValueError, match="--sim-url must be"):
        RemoteSim("https://example.com:9443")


def test_mmbot_sim_serves_tls_from_the_command_line(tls_files):
    cert, key = tls_files
    proc = subprocess.Popen(
        [sys.executable, "-m", "mmbot", "sim", "--port", "0", "--tls-cert", cert, "--tls-key", key],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = next(line.split()[-1] for line in proc.stdout if line.strip().startswith("REST"))
        assert url.startswith("https://127.0.0.1:")
        assert local_http(url).get_server_time()["retCode"] == 0
    finally:
        proc.kill()
        proc.wait(10)


def test_mmbot_sim_wants_the_tls_cert_and_key_together(tls_files):
    done = subprocess.run(
        [sys.executable, "-m", "mmbot", "sim", "--port", "0", "--tls-cert", tls_files[0]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--tls-cert and --tls-key go together" in done.stderr
