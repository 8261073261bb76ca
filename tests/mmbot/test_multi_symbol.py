"""Several symbols in one process: ``mmbot backtest`` of a two-symbol recording, and
``mmbot run --symbols`` against the real local simulator (one public, one trade and one
private connection) under the account caps."""

from __future__ import annotations

import heapq
import io
import json
import subprocess
import threading
from decimal import Decimal

import pytest
from rich.console import Console
from support.bot import mmbot_run
from support.waiting import wait_for

from mmbot import cli
from mmbot.backtest import run_backtest
from mmbot.build import build_runners
from mmbot.config import apply_overrides, load_config
from mmbot.dashboard import render
from mmbot.instrument import Instrument
from mmbot.live import LiveSession
from mmbot.recorder import FrameRecorder
from mmbot.records import Records
from mmbot.sim.engine import MatchingEngine
from mmbot.sim.server import SimSymbol, start_simulator
from mmbot.venue.sim import SimVenue
from obcore.synthetic import generate_frames

BTC, ETH, SOL = "BTCUSDT", "ETHUSDT", "SOLUSDT"


def _info(symbol: str) -> dict:
    return {
        "symbol": symbol,
        "priceFilter": {"tickSize": "0.01"},
        "lotSizeFilter": {
            "qtyStep": "0.001",
            "minOrderQty": "0.001",
            "maxOrderQty": "1000",
            "minNotionalValue": "5",
        },
    }


def _market(symbol: str, seed: int, price: str, messages: int = 1500):
    return generate_frames(
        symbol=symbol,
        tick_size="0.01",
        lot_size="0.001",
        start_price=price,
        depth=50,
        messages=messages,
        seed=seed,
        trades_per_s=20,
        trade_size_mean_lots=30,
    )


def _ts(frame: str) -> int:
    return json.loads(frame)["ts"]


@pytest.fixture(scope="module")
def two_symbol_recording(tmp_path_factory):
    path = tmp_path_factory.mktemp("rec") / "two.jsonl"
    rec = FrameRecorder(
        str(path), instruments={"category": "linear", "list": [_info(ETH), _info(SOL)]}
    )
    for frame in heapq.merge(_market(ETH, 4, "3000.00"), _market(SOL, 9, "150.00"), key=_ts):
        rec.write(frame, recv_ns=_ts(frame) * 1_000_000 + 3_000_000)
    rec.close()
    return path


def _config(path, **extra):
    overrides = {
        "sim.data": str(path),
        "strategy.min_spread_bps": 0.0,
        "strategy.fixed.half_spread_bps": 0.5,
        "strategy.order_qty": "0.01",
        # the account's caps do not bind: notional, drawdown and the request budgets,
        # which the symbols share as Bybit counts them per account (the bot's and the
        # exchange's: a PRO account's)
        "risk.max_total_notional_quote": "1000000",
        "risk.max_total_drawdown_quote": "1000000",
        **{f"orders.{k}_per_s": 1000 for k in ("place", "amend", "cancel", "batch")},
        "sim.rate_limit_per_s": 1000,
        **extra,
    }
    return apply_overrides(load_config(), overrides)


def _fills(runner):
    return [(t.ts_ms, t.side, t.price_ticks, t.qty_lots, t.fee, t.is_maker) for t in runner.trades]


def test_two_symbol_backtest_fills_equal_the_one_symbol_backtests(two_symbol_recording):
    cfg = _config(two_symbol_recording)
    both = run_backtest(cfg)
    assert list(both.runners) == [ETH, SOL]  # every symbol of the recording by default
    assert set(both.summary["symbols"]) == {ETH, SOL}
    total_fills = 0
    for sym in (ETH, SOL):
        alone = run_backtest(cfg, symbols=[sym])
        assert list(alone.summary)[:3] != ["symbols"] and alone.summary["symbol"] == sym
        fills = _fills(both.runners[sym])
        assert fills and fills == _fills(alone.runner), sym
        one = both.summary["symbols"][sym]
        for key in ("fills", "realized_pnl", "fees", "net_pnl", "final_position_lots"):
            assert one[key] == alone.summary[key], (sym, key)
        total_fills += len(fills)
    total = both.summary["total"]
    assert total["fills"] == total_fills
    net = sum(Decimal(both.summary["symbols"][s]["net_pnl"]) for s in (ETH, SOL))
    assert Decimal(total["net_pnl"]) == net  # exact
    assert total["max_total_notional_quote"] == "1000000"
    assert both.timing["frames"] == sum(r.frames for r in both.runners.values())


def test_the_account_notional_cap_binds_in_a_backtest(two_symbol_recording):
    # each symbol alone may hold 0.05 (150 USDT of ETHUSDT); together at most 40 USDT
    capped = run_backtest(_config(two_symbol_recording, **{"risk.max_total_notional_quote": "40"}))
    assert capped.account is not None and capped.account.cap_limited > 0
    eth = capped.summary["symbols"][ETH]["max_inventory_lots"]
    free = run_backtest(_config(two_symbol_recording))
    assert eth <= free.summary["symbols"][ETH]["max_inventory_lots"]
    # 40 USDT is 13 lots of ETHUSDT at about 3000: one 10-lot order at most
    assert eth <= 13


def test_backtest_cli_symbols_chooses_and_reports(two_symbol_recording, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(
        ["backtest", "--data", str(two_symbol_recording), "--out", str(out), "--no-chart"]
        + ["--symbols", f"{SOL},{ETH}", "--set", "risk.max_total_notional_quote='900'"]
    )
    assert code == 0, capsys.readouterr().err
    s = json.loads((out / "summary.json").read_text())
    assert set(s["symbols"]) == {SOL, ETH} and s["total"]["max_total_notional_quote"] == "900"
    code = cli.main(
        ["backtest", "--data", str(two_symbol_recording), "--out", str(out), "--no-chart"]
        + ["--symbols", "XRPUSDT"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "no XRPUSDT in it" in err and f"{ETH}, {SOL}" in err


def test_synthetic_two_symbol_backtest_is_deterministic_and_the_first_is_the_one_symbol_run():
    cfg = apply_overrides(
        load_config(),
        {
            "strategy.min_spread_bps": 0.0,
            "strategy.fixed.half_spread_bps": 0.5,
            "risk.max_total_notional_quote": "1000000",
            "risk.max_total_drawdown_quote": "1000000",
            **{f"orders.{k}_per_s": 1000 for k in ("place", "amend", "cancel", "batch")},
            "sim.rate_limit_per_s": 1000,
        },
    )
    both = run_backtest(cfg, symbols=[BTC, ETH], duration_s=20)
    again = run_backtest(cfg, symbols=[BTC, ETH], duration_s=20)
    assert json.dumps(both.summary, sort_keys=True, default=str) == json.dumps(
        again.summary, sort_keys=True, default=str
    )
    alone = run_backtest(cfg, duration_s=20)  # BTCUSDT, seed 0: the first symbol's market
    assert _fills(both.runners[BTC]) == _fills(alone.runner) != []
    assert both.runners[ETH].frames > 0 and _fills(both.runners[ETH]) != _fills(alone.runner)


def test_symbols_share_the_accounts_request_budget_and_prefixes_differ():
    cfg = load_config()
    engines = [MatchingEngine(symbol=s, tick_size="0.01", lot_size="0.001") for s in (ETH, SOL)]
    venue = SimVenue(engines[0])
    venue.add_engine(engines[1])
    ins = {s: Instrument(s, "linear", "0.01", "0.001", 1, 10**6, Decimal(5)) for s in (ETH, SOL)}
    runners, account = build_runners(
        cfg,
        venue=venue,
        instruments=ins,
        fee_rates=dict.fromkeys(ins, (Decimal(0), Decimal(0))),
        link_prefix="t-",
    )
    eth, sol = runners[ETH].orders, runners[SOL].orders
    assert eth.limiters is sol.limiters  # 10 creates a second for the account, not each
    assert (eth.link_prefix, sol.link_prefix) == ("t-s0-", "t-s1-")
    assert account is not None and account.symbols == (ETH, SOL)


# ------------------------------------------------------------------ live, real sockets


@pytest.mark.slow
def test_run_symbols_rests_orders_on_both_and_reports_both(tmp_path):
    sim = start_simulator(symbols=[SimSymbol(BTC), SimSymbol("ETHUSDT")], speed=2.0)
    try:
        sim.wait_market()
        out = tmp_path / "out"
        bot = subprocess.Popen(
            mmbot_run(
                sim.http_url,
                *("--symbols", f"{BTC},ETHUSDT", "--duration", "12", "--no-dashboard"),
                *("--out", str(out)),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            both = wait_for(
                lambda: sim.open_orders(BTC) and sim.open_orders("ETHUSDT"), timeout_s=30
            )
            stdout, stderr = bot.communicate(timeout=60)
        finally:
            if bot.poll() is None:
                bot.kill()
                bot.wait(10)
        assert both, "orders never rested on both symbols"
        assert bot.returncode == 0, stderr[-3000:]
        assert sim.open_orders() == []  # the clean stop cancelled every symbol
    finally:
        sim.stop()
    s = json.loads((out / "summary.json").read_text())
    assert set(s["symbols"]) == {BTC, "ETHUSDT"}
    for one in s["symbols"].values():
        assert one["frames"] > 0 and one["orders_sent"] > 0 and one["open_orders_at_end"] == 0
    assert s["total"]["orders_sent"] == sum(o["orders_sent"] for o in s["symbols"].values())
    assert s["unrouted"] == 0
    timing = json.loads((out / "timing.json").read_text())
    assert set(timing["symbols"]) == {BTC, "ETHUSDT"} and timing["tick_to_quote"]["count"] > 0
    assert f"{BTC}: fills" in stdout and "ETHUSDT: fills" in stdout and "total: " in stdout
    assert (out / f"chart-{BTC}.png").exists() and (out / "chart-ETHUSDT.png").exists()


def _gross_value(sim, symbols) -> Decimal:
    """The venue's worst-case gross notional of ``symbols`` now, at its mids (one
    snapshot on the simulator's thread)."""

    def read():
        total = Decimal(0)
        for sym in symbols:
            eng = sim.server.account.engines[sym]
            buys = sells = 0
            for o in eng.open_orders():
                if o.side == "Buy":
                    buys += o.qty_lots - o.filled_lots
                else:
                    sells += o.qty_lots - o.filled_lots
            pos = eng.position_lots
            lots = max(pos + buys, sells - pos, 0)
            bid, ask = eng.book.best_bid(), eng.book.best_ask()
            mid_ticks = Decimal(bid[0] + ask[0]) / 2
            total += lots * Decimal("0.001") * mid_ticks * Decimal("0.1")
        return total

    return sim.call(read)


@pytest.mark.slow
def test_account_cap_holds_at_the_simulator(start_sim):
    # each symbol alone may quote 2 levels of 0.01 a side (about 1300 USDT each way, and
    # 2600 for both); the account allows 2000 in all
    symbols = [BTC, "ETHUSDT"]
    sim = start_sim(symbols=[SimSymbol(s) for s in symbols], speed=1.0)
    cfg = apply_overrides(
        load_config(),
        {
            "strategy.levels": 2,
            "strategy.order_qty": "0.01",
            "risk.max_position_qty": "0.05",
            "risk.max_total_notional_quote": "2000",
            "risk.stale_book_ms": 600000,  # the market is paused below: no frames
        },
    )
    session = LiveSession(cfg, symbols, "sim", sim=sim).open()
    t = threading.Thread(target=session.run, kwargs={"duration_s": 40}, daemon=True)
    t.start()
    seen: list[Decimal] = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            seen.append(_gross_value(sim, symbols))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()

    def in_step():
        return all(session.runners[s].orders.position_lots == sim.position_lots(s) for s in symbols)

    try:
        assert wait_for(lambda: sim.open_orders(BTC) and sim.open_orders("ETHUSDT"), timeout_s=20)
        sim.pause_market()  # a still market: exposure is valued at fixed mids
        for side in ("Buy", "Buy", "Sell", "Sell", "Sell"):  # fills move the positions
            for sym in symbols:
                sim.taker_hit(sym, side)
            assert wait_for(in_step, timeout_s=5)
            assert wait_for(lambda: sim.open_orders(BTC) or sim.open_orders("ETHUSDT"))
        assert session.account.cap_limited > 0
    finally:
        session.request_stop()
        t.join(30)
        stop.set()
        watcher.join(10)
    assert not t.is_alive()
    assert seen and max(seen) <= Decimal(2000), max(seen)
    assert max(seen) >= Decimal(1900)  # the cap was used, not avoided
    s = session.summary()
    assert s["total"]["max_total_notional_quote"] == "2000"
    assert sim.open_orders() == []
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(render(session.dashboard_snapshot()))
    shown = console.export_text()
    assert BTC in shown and "ETHUSDT" in shown and "total" in shown and "/ 2000" in shown


@pytest.mark.slow
def test_restart_restores_each_symbol_from_its_records(start_sim, tmp_path):
    symbols = [BTC, "ETHUSDT"]
    sim = start_sim(symbols=[SimSymbol(s) for s in symbols], speed=1.0)
    cfg = load_config(None)
    db = str(tmp_path / "mm.sqlite")
    first = LiveSession(cfg, symbols, "sim", sim=sim, records=Records(db)).open()
    t = threading.Thread(target=first.run, kwargs={"duration_s": 30}, daemon=True)
    t.start()
    try:
        assert wait_for(lambda: sim.open_orders(BTC) and sim.open_orders("ETHUSDT"), timeout_s=20)
        sim.pause_market()
        sim.taker_hit(BTC, "Buy")
        sim.taker_hit("ETHUSDT", "Sell")
        sim.taker_hit("ETHUSDT", "Buy")
        assert wait_for(
            lambda: (
                first.runners[BTC].pnl.fill_count == 1
                and first.runners["ETHUSDT"].pnl.fill_count == 2
            ),
            timeout_s=10,
        )
    finally:
        first.request_stop()
        t.join(30)
        first.records.close()
    assert not t.is_alive()
    positions = {s: sim.position_lots(s) for s in symbols}
    again = LiveSession(cfg, symbols, "sim", sim=sim, records=Records(db)).open()
    try:
        assert again.restored_by_symbol == {BTC: 1, "ETHUSDT": 2}
        for s in symbols:
            r = again.runners[s]
            assert r.pnl.fill_count == first.runners[s].pnl.fill_count
            assert r.pnl.realized == first.runners[s].pnl.realized
            assert r.orders.position_lots == positions[s]
        summary = again.summary()
        assert summary["symbols"]["ETHUSDT"]["restored_fills"] == 2
    finally:
        again.close()
        again.records.close()
    assert sim.open_orders() == []


@pytest.mark.slow
def test_reload_changes_one_symbols_limits_and_refuses_an_unquoted_table(start_sim, tmp_path):
    symbols = [BTC, "ETHUSDT"]
    sim = start_sim(symbols=[SimSymbol(s) for s in symbols], speed=1.0)
    path = tmp_path / "c.toml"
    path.write_text('[venue]\nsymbols = ["BTCUSDT", "ETHUSDT"]\n')
    session = LiveSession(load_config(path), symbols, "sim", sim=sim, config_path=str(path))
    session.open()
    try:
        path.write_text(
            '[venue]\nsymbols = ["BTCUSDT", "ETHUSDT"]\n'
            '[risk]\nmax_total_notional_quote = "3000"\n'
            '[symbols.ETHUSDT.risk]\nmax_position_qty = "0.02"\n'
        )
        outcome = session.reload()
        assert outcome.accepted, outcome.message
        assert session.runners["ETHUSDT"].risk.limits.max_position_lots == 20
        assert session.runners[BTC].risk.limits.max_position_lots == 50  # untouched
        assert session.account.limits.max_total_notional == Decimal(3000)
        path.write_text(
            '[venue]\nsymbols = ["BTCUSDT", "ETHUSDT"]\n'
            '[symbols.XRPUSDT.risk]\nmax_position_qty = "0.02"\n'
        )
        refused = session.reload()
        assert not refused.accepted and "symbols.XRPUSDT: not a quoted symbol" in refused.message
        assert session.runners["ETHUSDT"].risk.limits.max_position_lots == 20  # kept
    finally:
        session.close()
