"""Recordings: the format, backtests that take the symbol and rules from them, one-line
errors with exit status 2 for anything missing or contradictory, and latency replay."""

from __future__ import annotations

import json
import logging

import pytest

from mmbot import cli
from mmbot.recorder import FrameRecorder, RoundTrip, read_recording
from mmbot.venue.sim import ReplayLatency
from obcore.recording import write_frames
from obcore.synthetic import generate_frames


def _info(symbol: str, tick: str, step: str = "0.001") -> dict:
    return {
        "symbol": symbol,
        "priceFilter": {"tickSize": tick},
        "lotSizeFilter": {
            "qtyStep": step,
            "minOrderQty": step,
            "maxOrderQty": "1000",
            "minNotionalValue": "5",
        },
    }


def _frames(symbol="ETHUSDT", messages=400, trades=True):
    return list(
        generate_frames(
            symbol=symbol,
            tick_size="0.01",
            lot_size="0.001",
            start_price="3000.00",
            depth=50,
            messages=messages,
            seed=4,
            trades_per_s=20 if trades else 0,
            trade_size_mean_lots=30,
        )
    )


def _record(path, frames, instruments=None, trips=()):
    rec = FrameRecorder(str(path), instruments=instruments)
    for f in frames:
        ts = json.loads(f)["ts"]
        rec.write(f, recv_ns=ts * 1_000_000 + 3_000_000)  # 3 ms feed latency
    for t in trips:
        rec.write_round_trip(*t)
    rec.close()
    return path


def _cli(tmp_path, capsys, *args):
    logging.disable(logging.WARNING)
    try:
        code = cli.main(
            [
                "backtest",
                "--out",
                str(tmp_path / "out"),
                "--no-chart",
                "--set",
                "strategy.min_spread_bps=0",
                "--set",
                "strategy.fixed.half_spread_bps=0.5",
                *args,
            ]
        )
    finally:
        logging.disable(logging.NOTSET)
    captured = capsys.readouterr()
    return code, captured.err


def test_format_round_trip(tmp_path):
    frames = _frames(messages=50)
    ins = {"category": "linear", "list": [_info("ETHUSDT", "0.01")]}
    sent_ns, exchange_ms, recv_ns = (
        1_700_000_000_000_000_000,
        1_700_000_000_004,
        1_700_000_000_009_000_000,
    )
    path = _record(
        tmp_path / "r.jsonl.gz", frames, ins, [("create", "a-1", sent_ns, exchange_ms, recv_ns)]
    )
    rec = read_recording(path)
    assert rec.instruments == ins and rec.symbols == ["ETHUSDT"]
    assert rec.topics == {"orderbook.50.ETHUSDT", "publicTrade.ETHUSDT"}
    assert rec.frame_count == len(frames)
    got = list(rec.frames())
    assert [f for _, f in got] == frames
    assert got[0][0] == json.loads(frames[0])["ts"] * 1_000_000 + 3_000_000
    (rt,) = rec.round_trips
    assert (rt.entry_ms, rt.response_ms) == (4.5, 4.5)  # mid-millisecond exchange stamp


def test_backtest_takes_symbol_and_rules_from_the_header(tmp_path, capsys):
    # the config says BTCUSDT with tick 0.1; the recording is ETHUSDT with tick 0.01
    # (before: 0 frames replayed and exit 0, or an OffTickError traceback)
    ins = {"category": "linear", "list": [_info("ETHUSDT", "0.01")]}
    path = _record(tmp_path / "eth.jsonl", _frames(), ins)
    code, err = _cli(tmp_path, capsys, "--data", str(path))
    assert (code, err) == (0, "")
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["symbol"] == "ETHUSDT" and s["frames"] == 400
    assert s["config"]["sim"]["tick_size"] == "0.01" and s["fill_model"]["trades_in_data"]
    assert s["fills"] > 0


def test_book_only_recording_without_rules_needs_instruments(tmp_path, capsys):
    path = tmp_path / "old.jsonl"
    write_frames(path, _frames(trades=False))  # bare frames, the pre-header format
    code, err = _cli(tmp_path, capsys, "--data", str(path))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "no instrument rules for ETHUSDT" in err and "--instruments" in err
    assert "400 frames (orderbook.50.ETHUSDT)" in err
    saved = tmp_path / "ins.json"
    saved.write_text(
        json.dumps(
            {"retCode": 0, "result": {"category": "linear", "list": [_info("ETHUSDT", "0.01")]}}
        )
    )
    code, err = _cli(tmp_path, capsys, "--data", str(path), "--instruments", str(saved))
    assert (code, err) == (0, "")


def test_contradictory_rules_are_an_error(tmp_path, capsys):
    path = _record(
        tmp_path / "eth.jsonl",
        _frames(messages=20),
        {"category": "linear", "list": [_info("ETHUSDT", "0.01")]},
    )
    saved = tmp_path / "ins.json"
    saved.write_text(json.dumps({"category": "linear", "list": [_info("ETHUSDT", "0.05")]}))
    code, err = _cli(tmp_path, capsys, "--data", str(path), "--instruments", str(saved))
    assert code == 2 and "disagree" in err and "0.05" in err and err.count("\n") == 1


def test_two_symbols_replay_together_and_an_unrecorded_choice_is_an_error(tmp_path, capsys):
    frames = _frames("ETHUSDT", 20) + _frames("SOLUSDT", 20)
    path = _record(tmp_path / "two.jsonl", frames)
    # both replay (the configured BTCUSDT is not a choice): each needs its rules
    code, err = _cli(tmp_path, capsys, "--data", str(path))
    assert code == 2 and "no instrument rules for ETHUSDT" in err
    code, err = _cli(tmp_path, capsys, "--data", str(path), "--symbols", "BTCUSDT")
    assert code == 2 and "no BTCUSDT in it" in err and "ETHUSDT, SOLUSDT" in err


def test_zero_frames_is_an_error(tmp_path, capsys):
    path = _record(
        tmp_path / "empty.jsonl", [], {"category": "linear", "list": [_info("ETHUSDT", "0.01")]}
    )
    code, err = _cli(tmp_path, capsys, "--data", str(path))
    assert code == 2 and "0 frames" in err


def test_off_tick_data_is_a_one_line_error(tmp_path, capsys):
    # rules say tick 0.05; the frames have prices like 3000.01
    path = _record(
        tmp_path / "eth.jsonl",
        _frames(messages=20),
        {"category": "linear", "list": [_info("ETHUSDT", "0.05")]},
    )
    code, err = _cli(tmp_path, capsys, "--data", str(path))
    assert code == 2 and "OffTickError" in err and err.count("\n") == 1


def test_set_a_decimal_key_with_a_bare_number(tmp_path, capsys):
    # TOML reads 0.01 as a float; the key wants a decimal string: the typed text is kept
    code, err = _cli(
        tmp_path,
        capsys,
        "--duration-s",
        "2",
        "--set",
        "sim.tick_size=0.01",
        "--set",
        "sim.start_price=65000.01",
    )
    assert (code, err) == (0, "")
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["config"]["sim"]["tick_size"] == "0.01"


def test_unknown_cli_values_name_the_accepted_ones(tmp_path, capsys):
    code, err = _cli(tmp_path, capsys, "--queue-model", "fifo")
    assert code == 2 and "'risk_averse' | 'prob_power' | 'optimistic'" in err
    code, err = _cli(tmp_path, capsys, "--latency", "random")
    assert code == 2 and "'constant' | 'replay'" in err


def test_replay_latency_interpolates_by_time():
    ms = 1_000_000
    # exchange stamps are whole ms: the middle of the ms is taken
    trips = [
        RoundTrip("create", "a", 1000 * ms, 1004, 1010 * ms + ms // 2),  # entry 4.5, resp 6
        RoundTrip("create", "b", 2000 * ms, 2012, 2014 * ms + ms // 2),
    ]  # entry 12.5, resp 2
    lat = ReplayLatency(trips, md_fallback_ms=7)
    # round half to even: 4.5 -> 4, 12.5 -> 12
    assert (lat.entry(500), lat.response(500)) == (4, 6)  # before: the first
    assert (lat.entry(1500), lat.response(1500)) == (8, 4)  # halfway: 4.5..12.5, 6..2
    assert (lat.entry(1750), lat.response(1750)) == (10, 3)  # 10.5 -> 10
    assert (lat.entry(9000), lat.response(9000)) == (12, 2)  # after: the last
    assert lat.feed(1000, 1003 * ms + 999) == 3 and lat.feed(1000, None) == 7
    fast = ReplayLatency([RoundTrip("create", "c", 1000 * ms, 1000, 1001 * ms)])
    assert fast.entry(1000) == 1  # never 0: one clock tick
    assert lat.feed(1000, 999 * ms) == 0  # clock skew: never negative


def test_replay_latency_backtest_uses_recorded_times(tmp_path, capsys):
    ms = 1_000_000
    frames = _frames(messages=200)
    t0 = json.loads(frames[0])["ts"]
    trips = [("create", "x", (t0 + 100) * ms, t0 + 140, (t0 + 151) * ms)]  # 40.5 in, 10.5 out
    path = _record(
        tmp_path / "eth.jsonl",
        frames,
        {"category": "linear", "list": [_info("ETHUSDT", "0.01")]},
        trips,
    )
    code, err = _cli(tmp_path, capsys, "--data", str(path), "--latency", "replay")
    assert (code, err) == (0, "")
    lat = json.loads((tmp_path / "out" / "summary.json").read_text())["fill_model"]["latency"]
    assert (lat["model"], lat["entry_ms_median"], lat["response_ms_median"]) == (
        "replay",
        40.5,
        10.5,
    )
    code, err = _cli(tmp_path, capsys, "--latency", "replay")
    assert code == 2 and "needs a recording" in err


def test_frames_out_of_time_order_are_a_one_line_error(tmp_path, capsys):
    frames = _frames(messages=30, trades=False)
    frames[10], frames[20] = frames[20], frames[10]
    path = _record(
        tmp_path / "eth.jsonl", frames, {"category": "linear", "list": [_info("ETHUSDT", "0.01")]}
    )
    code, err = _cli(tmp_path, capsys, "--data", str(path))
    assert code == 2 and "time order" in err and err.count("\n") == 1


def test_a_malformed_line_is_a_one_line_error(tmp_path, capsys):
    path = _record(
        tmp_path / "eth.jsonl",
        _frames(messages=20, trades=False),
        {"category": "linear", "list": [_info("ETHUSDT", "0.01")]},
    )
    with open(path, "a") as fh:
        fh.write("garbage line\n")
    code, err = _cli(tmp_path, capsys, "--data", str(path))
    assert code == 2 and "line 22" in err and err.count("\n") == 1


@pytest.mark.slow
def test_mmbot_record_writes_rules_trades_and_receive_times(tmp_path, capsys):
    path = tmp_path / "rec.jsonl.gz"
    assert cli.main(["record", str(path), "--symbols", "BTCUSDT,ETHUSDT", "--duration", "3"]) == 0
    rec = read_recording(path)
    assert sorted(i["symbol"] for i in rec.instruments["list"]) == ["BTCUSDT", "ETHUSDT"]
    assert rec.instruments["category"] == "linear"
    assert {"orderbook.50.BTCUSDT", "orderbook.50.ETHUSDT"} <= rec.topics
    assert any(t.startswith("publicTrade.") for t in rec.topics)
    for ns, frame in rec.frames():
        assert ns is not None and 0 <= ns // 1_000_000 - json.loads(frame)["ts"] < 5_000
    capsys.readouterr()
    # and it replays: the rules come from the header
    code, err = _cli(tmp_path, capsys, "--data", str(path))
    assert (code, err) == (0, "")
