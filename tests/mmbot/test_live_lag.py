"""Lag detection end to end: the simulator delays its market frames (stamps unchanged),
the live session sees their age pass ``max_frame_age_ms`` and pulls every quote through
risk, then quotes again once frames are fresh."""

from __future__ import annotations

import threading

import pytest
from support.waiting import wait_for

from mmbot.config import parse_config
from mmbot.live import LiveSession, clock_offset_ms
from mmbot.sim.server import SimSymbol, start_simulator

SYM = "BTCUSDT"
pytestmark = pytest.mark.slow


@pytest.fixture
def sim():
    h = start_simulator(symbols=[SimSymbol(SYM)], speed=2.0)
    h.wait_market()
    yield h
    h.stop()


def test_delayed_frames_pull_quotes_until_fresh_again(sim):
    cfg = parse_config({"risk": {"max_frame_age_ms": 400, "resume_after_ms": 100}})
    s = LiveSession(cfg, SYM, "sim", sim=sim).open()
    assert abs(s.clock_offset_ms) < 50  # one machine, one clock
    t = threading.Thread(target=s.run, kwargs={"duration_s": 60}, daemon=True)
    t.start()
    try:
        assert wait_for(lambda: sim.open_orders(SYM), timeout_s=15)
        sim.delay_public(1.0)  # frames now arrive a second old
        assert wait_for(lambda: "book lagging" in s.runner.risk_reason, timeout_s=15)
        assert wait_for(lambda: not sim.open_orders(SYM), timeout_s=10)
        assert s.runner.frame_age_ms > 400
        sim.delay_public(0)
        assert wait_for(lambda: sim.open_orders(SYM), timeout_s=15)
        assert s.runner.frame_age_ms < 400
    finally:
        s.request_stop()
        t.join(30)
    timing = s.timing()
    assert timing["frame_age_ms"]["max_ms"] >= 1000
    for key in ("recv_to_book", "recv_to_quote", "recv_to_order"):
        assert timing[key]["count"] > 0 and "p90_us" in timing[key], key
    assert s.summary()["frame_age_ms"]["count"] > 0


def test_clock_offset_uses_the_fastest_round_trip():
    class FakeHttp:
        def __init__(self):
            self.calls = 0

        def get_server_time(self):
            import time  # noqa: PLC0415

            self.calls += 1
            # the exchange runs 250 ms ahead of us
            return {"result": {"timeSecond": "0", "timeNano": str(time.time_ns() + 250_000_000)}}

    http = FakeHttp()
    assert abs(clock_offset_ms(http) - 250) < 20 and http.calls == 3
