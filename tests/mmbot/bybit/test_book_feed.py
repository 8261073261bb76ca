"""BookFeed (pybit WebSocket -> obcore) against the local simulator over loopback sockets.

The reference for "the book is right" is the simulator's own ladder (a plain dict book,
independent of obcore) read while the market is paused.
"""

import pytest
from support.waiting import wait_for
from websocket import ABNF

import obcore
from mmbot.bybit import BookFeed
from mmbot.recorder import FrameRecorder, read_recording
from mmbot.sim.server import SimSymbol

pytestmark = pytest.mark.slow  # real sockets to a simulator on 127.0.0.1

SYMBOLS = (
    SimSymbol("BTCUSDT"),
    SimSymbol("ETHUSDT", tick_size="0.01", lot_size="0.01", min_qty="0.01"),
)


@pytest.fixture(scope="module")
def sim(start_module_sim):
    return start_module_sim(symbols=SYMBOLS, speed=2.0)


@pytest.fixture(scope="module")
def feed(sim):
    statuses = []
    f = BookFeed(
        "linear", ws_base=sim.ws_url, on_status=lambda *a: statuses.append(a), resync_timeout_s=2.0
    )
    f.statuses = statuses
    f.add_book("BTCUSDT", "0.1", "0.001", depth=50)
    f.add_book("ETHUSDT", "0.01", "0.01", depth=50)
    assert wait_for(lambda: f.synced("BTCUSDT") and f.synced("ETHUSDT"))
    yield f
    f.exit()


def assert_matches_server(sim, feed, symbol):
    """Pause the market, let the last frames land, compare top 50 with the server's ladder."""
    sim.pause_market()
    try:
        server = sim.book_levels(symbol, 50)  # paused: this is what the last frame leaves

        def levels():
            book = feed.book(symbol)
            return [tuple(r) for r in book.bids(50).tolist()], [
                tuple(r) for r in book.asks(50).tolist()
            ]

        # frames already on the wire land after the pause: wait for them, not a fixed time
        assert wait_for(lambda: feed.synced(symbol) and list(levels()) == list(server))
        assert list(levels()) == list(server)
        feed.book(symbol).check_integrity()
    finally:
        sim.pause_market(False)


def test_many_symbols_on_one_connection(sim, feed):
    assert_matches_server(sim, feed, "BTCUSDT")
    assert_matches_server(sim, feed, "ETHUSDT")
    assert feed.by_symbol["BTCUSDT"].frames > 1 and feed.by_symbol["ETHUSDT"].frames > 1
    assert not feed.stale("BTCUSDT")
    assert wait_for(lambda: feed.latency_us()["count"] > 0)  # sampled: one message in 8
    assert feed.latency_us()["p50_us"] > 0


@pytest.mark.parametrize("fault", ["skip_u", "truncated", "bad_price"])
def test_gap_or_rejected_frame_resyncs_only_that_book(sim, feed, fault):
    btc, eth = feed.by_symbol["BTCUSDT"], feed.by_symbol["ETHUSDT"]
    n_btc, n_eth, n_status = btc.resyncs, eth.resyncs, len(feed.statuses)
    if fault == "skip_u":
        sim.skip_u("BTCUSDT")
    else:
        sim.send_malformed(fault, "BTCUSDT")
    assert wait_for(lambda: btc.resyncs == n_btc + 1 and btc.synced)
    assert eth.resyncs == n_eth
    # The risk layer heard "out of sync" then "synced" for BTCUSDT only.
    news = feed.statuses[n_status:]
    assert news[0][0] == "BTCUSDT" and news[0][1] is False
    assert ("BTCUSDT", True, "snapshot") in news
    assert all(s[0] == "BTCUSDT" for s in news)
    assert_matches_server(sim, feed, "BTCUSDT")


def test_u1_restart_snapshot_replaces_without_resync(sim, feed):
    btc = feed.by_symbol["BTCUSDT"]
    n = btc.resyncs
    sim.restart_book("BTCUSDT")
    assert wait_for(lambda: btc.book.update_id < 100 and btc.synced)
    assert btc.resyncs == n
    assert_matches_server(sim, feed, "BTCUSDT")


def test_dropped_connection_reconnects_and_resubscribes(sim, feed):
    n = feed.reconnects
    n_status = len(feed.statuses)
    sim.drop("public")
    assert wait_for(lambda: feed.reconnects > n)
    assert wait_for(lambda: feed.synced("BTCUSDT") and feed.synced("ETHUSDT"))
    reasons = {(s[0], s[2]) for s in feed.statuses[n_status:] if s[1] is False}
    assert ("BTCUSDT", "disconnected") in reasons and ("ETHUSDT", "disconnected") in reasons
    assert_matches_server(sim, feed, "ETHUSDT")


def test_a_book_already_resyncing_hears_of_a_dropped_connection(sim, feed):
    # Regression: _reset told only books that were valid, so a book mid-resync when the
    # link dropped got no DISCONNECTED, and its runner never marked the public link down.
    n = feed.reconnects
    n_status = len(feed.statuses)
    btc = feed.by_symbol["BTCUSDT"]
    with feed._lock:  # the unsubscribe ack waits on it: BTCUSDT stays mid-resync
        feed.resync("BTCUSDT", "test")
        assert btc.resyncing
        sim.drop("public")
    assert wait_for(lambda: feed.reconnects > n)
    assert wait_for(lambda: feed.synced("BTCUSDT") and feed.synced("ETHUSDT"))
    reasons = {(s[0], s[2]) for s in feed.statuses[n_status:] if s[1] is False}
    assert ("BTCUSDT", "disconnected") in reasons and ("ETHUSDT", "disconnected") in reasons


def write_raw(sim, data: bytes) -> int:
    """Write ``data`` as it is onto every public connection's socket, between the
    simulator's own frames (on its loop, so never inside one of them)."""

    def run():
        conns = [c for c in sim.server.conns if c.kind == "public" and c.ws._req]
        for conn in conns:
            conn.ws._req.transport.write(data)
        return len(conns)

    return sim.call(run)


BAD_UTF8 = b'{"topic":"orderbook.50.BTCUSDT","s":"\xff"}'


@pytest.mark.parametrize(
    "bad",
    [
        # a book frame whose text is not UTF-8: RFC 6455 fails the connection
        bytes([0x81, len(BAD_UTF8)]) + BAD_UTF8,
        b"\x81\x82abcd" + ABNF.mask(b"abcd", b"{}"),  # masked by the server
        b"\x89\x7e\x00\x7e" + b"p" * 126,  # a ping longer than 125 bytes
    ],
    ids=["invalid-utf8", "masked", "long-ping"],
)
def test_a_frame_breaking_the_protocol_drops_the_connection_and_resyncs(sim, feed, bad):
    assert wait_for(lambda: feed.synced("BTCUSDT") and feed.synced("ETHUSDT"))
    n, n_status = feed.reconnects, len(feed.statuses)
    rejected = {s: e.rejected for s, e in feed.by_symbol.items()}
    assert write_raw(sim, bad) == 1
    assert wait_for(lambda: feed.reconnects > n)
    assert wait_for(lambda: feed.synced("BTCUSDT") and feed.synced("ETHUSDT"))
    reasons = {(s[0], s[2]) for s in feed.statuses[n_status:] if s[1] is False}
    assert reasons == {("BTCUSDT", "disconnected"), ("ETHUSDT", "disconnected")}
    # the bad frame never reached a book: it failed the connection first
    assert {s: e.rejected for s, e in feed.by_symbol.items()} == rejected
    assert_matches_server(sim, feed, "BTCUSDT")
    assert_matches_server(sim, feed, "ETHUSDT")


def test_hook_never_raises_into_pybit(feed):
    # Garbage that is not even JSON must be logged and dropped, not raised.
    feed._on_message("{not json")
    feed._on_message('{"topic":"orderbook.50.NOPE","type":"delta"}')
    assert feed.is_connected()


def test_frames_arrive_as_bytes_without_the_python_utf8_check(feed):
    # RawTextFrames binds skip_utf8_validation to pybit's run_forever (see clients.py).
    assert feed.ws.run_forever.keywords == {"skip_utf8_validation": True}
    assert feed.by_symbol["BTCUSDT"].frames > 0


def test_invalid_utf8_in_a_book_frame_resyncs_that_book(sim, feed):
    btc, eth = feed.by_symbol["BTCUSDT"], feed.by_symbol["ETHUSDT"]
    assert wait_for(lambda: btc.synced)
    n_btc, n_eth = btc.resyncs, eth.resyncs
    u = btc.book.update_id + 1
    bad = (
        b'{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTC\xffUSDT",'
        b'"b":[],"a":[],"u":%d,"seq":1},"cts":1}' % u
    )
    feed._on_message(bad)  # obcore's parser rejects it (FrameError): resync, no raise
    assert btc.rejected >= 1
    assert wait_for(lambda: btc.resyncs == n_btc + 1 and btc.synced)
    assert eth.resyncs == n_eth
    # not a book frame: the C codec rejects it; logged and dropped, never raised into pybit
    feed._on_message(b'{"op":"pong","ret_msg":"\xc3\x28"}')
    assert feed.is_connected()


def test_frame_age_is_measured_against_the_exchange_stamp(feed):
    assert wait_for(lambda: feed.frame_age.count > 5)
    ages = feed.frame_age_ms()
    # loopback, one clock: a frame is milliseconds old (the simulator stamps cts 2 ms early)
    assert 0 <= ages["p50_ms"] < 1000 and ages["max_ms"] >= ages["p99_ms"] >= ages["p50_ms"]


def test_recorder_writes_replayable_gzip(sim, tmp_path):
    path = tmp_path / "frames.jsonl.gz"
    rec = FrameRecorder(str(path))
    f = BookFeed("linear", ws_base=sim.ws_url, recorder=rec)
    try:
        f.add_book("BTCUSDT", "0.1", "0.001", depth=50)
        assert wait_for(lambda: rec.frames > 20)
    finally:
        f.exit()
        rec.close()
    recording = read_recording(str(path))
    frames = [fr for ns, fr in recording.frames()]
    assert len(frames) == rec.frames
    assert all(ns is not None for ns, _ in recording.frames())
    replay = obcore.Book(tick_size="0.1", lot_size="0.001")
    kinds = [replay.apply(fr) for fr in frames]
    assert kinds[0] == obcore.Applied.SNAPSHOT and replay.synced
    replay.check_integrity()
