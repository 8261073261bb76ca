"""Backtests: a strategy over synthetic or recorded data on the in-process simulated venue.

:func:`run_backtest` wires ``MatchingEngine -> SimVenue -> Runner`` from a
:class:`mmbot.config.Config`, replays the data on the simulated clock, cancels everything at
the end, and returns a :class:`BacktestResult`; :func:`mmbot.report.write_report` turns it
into ``summary.json`` (deterministic: identical bytes for the same config, data and seed),
``timing.json`` (wall-clock measurements, which naturally vary) and ``chart.png``.

Several symbols (a multi-symbol recording, ``symbols=``, or ``[venue] symbols``) replay on
one simulated venue (an engine per symbol, one clock, one latency model) with a runner per
symbol built as ``mmbot run`` builds them, under the same account caps; the summary then
has ``symbols`` (each symbol's summary) and ``total`` (:func:`mmbot.summary.account_totals`).
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import obcore
from mmbot.attribution import attribute, markouts
from mmbot.build import build_runner, build_runners
from mmbot.config import Config, ConfigError, config_to_dict
from mmbot.instrument import Instrument, InstrumentError, instruments_from_response
from mmbot.latency import LatencyStats
from mmbot.metrics import run_metrics
from mmbot.orders import FLATTEN_LEVEL
from mmbot.pnl import format_money
from mmbot.recorder import Recording, RecordingError, read_recording
from mmbot.risk import AccountRisk
from mmbot.runner import EventRouter, Runner
from mmbot.sim.engine import MarketDataError, MatchingEngine
from mmbot.summary import account_totals, trading_summary
from mmbot.venue.sim import ReplayLatency, SimVenue
from obcore.synthetic import generate_frames

__all__ = [
    "BacktestError",
    "BacktestResult",
    "market_frames",
    "recorded_symbols",
    "resolve_recording",
    "run_backtest",
    "symbol_list",
]

#: simulated time after the data ends for cancels and in-flight events to settle
SETTLE_MS = 2000
#: timer tick for risk checks while the data is silent
TIMER_MS = 100


@dataclass
class BacktestResult:
    """Everything a report needs."""

    summary: dict[str, Any]
    timing: dict[str, Any]
    runner: Runner
    engine: MatchingEngine
    config: Config
    extra: dict[str, Any] = field(default_factory=dict)
    #: every symbol's runner and engine (``runner``/``engine`` are the first symbol's)
    runners: dict[str, Runner] = field(default_factory=dict)
    engines: dict[str, MatchingEngine] = field(default_factory=dict)
    account: AccountRisk | None = None


class BacktestError(ValueError):
    """The backtest cannot run as configured (bad data, missing instrument rules, ...)."""


def _load_instruments(path: str) -> dict[str, Instrument]:
    """Read a saved instruments-info response (or its ``result``) into instruments by symbol."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise BacktestError(f"--instruments {path}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise BacktestError(f"--instruments {path}: not JSON: {exc}") from None
    return _instruments_of(data, f"--instruments {path}")


def _instruments_of(data: Any, where: str) -> dict[str, Instrument]:
    if isinstance(data, dict) and "result" not in data and "list" in data:
        data = {"retCode": 0, "result": data}  # a bare result, as the header stores it
    try:
        return instruments_from_response(data)
    except InstrumentError as exc:
        raise BacktestError(f"{where}: {exc}") from None


def resolve_recording(cfg: Config, instruments_file: str | None = None) -> tuple[Config, Recording]:
    """Open ``sim.data`` and return the config with the recording's symbol and rules.

    The symbol is ``venue.symbol`` if the recording holds it, else the recording's only
    symbol. Tick, lot, limits and category come from the recording's header or from
    ``instruments_file`` (a saved instruments-info response); when both give rules for
    the symbol, they must agree.

    Raises
    ------
    BacktestError
        For anything missing or contradictory; the message says what the file holds.
    """
    rec = _open_recording(cfg.sim.data)
    if cfg.venue.symbol in rec.symbols:
        symbol = cfg.venue.symbol
    elif len(rec.symbols) == 1:
        symbol = rec.symbols[0]
    else:
        raise BacktestError(
            f"{rec.describe()}: venue.symbol {cfg.venue.symbol!r} is not one "
            f"of {', '.join(rec.symbols)}; choose with --set venue.symbol=NAME"
        )
    ins = _recorded_rules(rec, symbol, instruments_file)
    sim = dataclasses.replace(
        cfg.sim,
        tick_size=ins.tick_size,
        lot_size=ins.lot_size,
        min_order_qty=ins.qty_str(ins.min_qty_lots),
        max_order_qty=ins.qty_str(ins.max_qty_lots),
        min_notional_quote=str(ins.min_notional),
    )
    venue = dataclasses.replace(cfg.venue, symbol=symbol, category=ins.category)
    return cfg.replace(sim=sim, venue=venue), rec


def _open_recording(path: str) -> Recording:
    try:
        rec = read_recording(path)
    except RecordingError as exc:
        raise BacktestError(str(exc)) from None
    if rec.frame_count == 0:
        raise BacktestError(f"{rec.describe()}: nothing to replay")
    return rec


def symbol_list(text: str | None) -> list[str] | None:
    """Parse ``--symbols A,B`` (None: not given).

    Raises
    ------
    ConfigError
        An empty name.
    """
    if text is None:
        return None
    names = [n.strip() for n in text.split(",")]
    if not all(names) or len(set(names)) != len(names):
        raise ConfigError(f"--symbols: expected distinct names separated by commas, got {text!r}")
    return names


def recorded_symbols(
    rec: Recording, cfg: Config, symbols: Iterable[str] | None = None
) -> list[str]:
    """Return the symbols a backtest of ``rec`` replays: ``symbols`` (``--symbols``), else
    ``[venue] symbols`` when set, else every symbol the recording holds.

    Raises
    ------
    BacktestError
        A chosen symbol the recording does not hold.
    """
    names = list(symbols) if symbols else list(cfg.venue.symbols) or list(rec.symbols)
    missing = [n for n in names if n not in rec.symbols]
    if missing:
        raise BacktestError(
            f"{rec.describe()}: no {', '.join(missing)} in it (it holds "
            f"{', '.join(rec.symbols)}); choose with --symbols"
        )
    return names


def _recorded_rules(rec: Recording, symbol: str, instruments_file: str | None) -> Instrument:
    """Return ``symbol``'s rules from the recording's header or ``instruments_file``
    (they must agree when both have them)."""
    found: dict[str, Instrument] = {}
    if rec.instruments is not None:
        header = _instruments_of(rec.instruments, f"{rec.path} header")
        if symbol in header:
            found["the recording's header"] = header[symbol]
    if instruments_file is not None:
        given = _load_instruments(instruments_file)
        if symbol in given:
            found[f"--instruments {instruments_file}"] = given[symbol]
        elif not found:
            raise BacktestError(
                f"--instruments {instruments_file} has no rules for {symbol} "
                f"(it has {', '.join(sorted(given)) or 'none'})"
            )
    if not found:
        raise BacktestError(
            f"{rec.describe()}: no instrument rules for {symbol}; pass "
            f"--instruments FILE (a saved /v5/market/instruments-info response)"
        )
    rules = list(found.items())
    (where, ins), *others = rules
    for other_where, other in others:
        if other != ins:
            raise BacktestError(
                f"instrument rules for {symbol} disagree: {where} says tick "
                f"{ins.tick_size} lot {ins.lot_size} ({ins.category}), "
                f"{other_where} says tick {other.tick_size} lot "
                f"{other.lot_size} ({other.category})"
            )
    return ins


def market_frames(cfg: Config, *, duration_s: float | None = None) -> Iterator[str]:
    """Return the seeded synthetic market data of a backtest.

    The number of orderbook frames is ``duration_s * 1000 / sim.interval_ms``
    (``duration_s`` defaults to ``run.duration_s``); publicTrade frames come on top.
    Recordings are opened with :func:`resolve_recording`.
    """
    return _synthetic(cfg, cfg.venue.symbol, cfg.sim.seed, duration_s)


def _synthetic(cfg: Config, symbol: str, seed: int, duration_s: float | None) -> Iterator[str]:
    sim = cfg.sim
    if sim.data == "synthetic":
        seconds = cfg.run.duration_s if duration_s is None else duration_s
        messages = max(1, int(seconds * 1000 // sim.interval_ms))
        return generate_frames(
            symbol=symbol,
            tick_size=sim.tick_size,
            lot_size=sim.lot_size,
            depth=sim.depth,
            messages=messages,
            seed=seed,
            levels_per_delta=sim.levels_per_delta,
            start_price=sim.start_price,
            interval_ms=sim.interval_ms,
            category=cfg.venue.category,
            trades_per_s=sim.trades_per_s,
            trade_size_mean_lots=max(
                1, int(Decimal(sim.trade_size_mean_qty) / Decimal(sim.lot_size))
            ),
            trade_buy_ratio=sim.trade_buy_ratio,
            trade_size_alpha=sim.trade_size_alpha,
        )
    raise BacktestError(f"sim.data {sim.data!r} is a recording: use resolve_recording")


# A frame, or ``(recv_ns, frame)`` from a recording (see SimVenue.stream)
_Item = str | tuple[int | None, str]


def _orderbook_only(frames: Iterable[_Item], symbols: str | list[str]) -> Iterator[_Item]:
    """Keep frames of these symbols' orderbooks and trades (recordings may hold more
    topics and symbols)."""
    wanted = {symbols} if isinstance(symbols, str) else set(symbols)
    for item in frames:
        topic = obcore.frame_topic(item[1] if isinstance(item, tuple) else item) or ""
        if topic.startswith(("orderbook.", "publicTrade.")) and topic.rpartition(".")[2] in wanted:
            yield item


def _book_frames_only(
    stream: Iterator[tuple[str | bytes | None, int]],
) -> Iterator[tuple[str | bytes | None, int]]:
    """Hide publicTrade frames from the bot: the engine fills on them, the runner's book
    takes orderbook frames only (as the live feed subscribes orderbook topics only)."""
    for frame, now_ms in stream:
        if frame is None or not (obcore.frame_topic(frame) or "").startswith("publicTrade."):
            yield frame, now_ms


def run_backtest(
    cfg: Config,
    *,
    frames: Iterable[str] | None = None,
    duration_s: float | None = None,
    records: Any = None,
    use_risk: bool = True,
    instruments_file: str | None = None,
    symbols: Iterable[str] | None = None,
) -> BacktestResult:
    """Run one backtest and return its result.

    Parameters
    ----------
    cfg : Config
    frames : iterable of str, optional
        Raw frames to replay instead of ``sim.data``.
    duration_s : float, optional
        Synthetic data length (default ``run.duration_s``).
    records : mmbot.records.Records, optional
        Persist orders, fills and PnL snapshots.
    use_risk : bool
        Apply ``[risk]`` (default).
    instruments_file : str, optional
        A saved instruments-info response for a recording without rules in its header.
    symbols : iterable of str, optional
        The symbols to replay (``--symbols``); default ``[venue] symbols`` when set, else
        every symbol of a recording, else ``venue.symbol``. Several replay together (see
        the module docstring).

    Raises
    ------
    BacktestError
        Unusable data or rules, a replay latency without round trips, or 0 frames replayed.
    """
    rec = None
    names = list(symbols) if symbols else list(cfg.venue.symbols)
    if frames is None and cfg.sim.data != "synthetic":
        rec = _open_recording(cfg.sim.data)
        names = recorded_symbols(rec, cfg, names)
    if len(names) > 1:
        return _run_many(
            cfg.with_symbols(names),
            names,
            rec,
            instruments_file,
            frames,
            duration_s,
            records,
            use_risk,
        )
    if names:
        cfg = cfg.replace(venue=dataclasses.replace(cfg.venue, symbol=names[0], symbols=()))
    if rec is not None:
        cfg, rec = resolve_recording(cfg, instruments_file)
    sim = cfg.sim
    symbol = cfg.venue.symbol
    cfg.check_symbols([symbol])
    instrument = sim.instrument(symbol, cfg.venue.category)
    engine = _engine(cfg, instrument)
    venue = _sim_venue(cfg, engine, rec)
    data: Iterable[_Item]
    if frames is not None:
        data = frames
    elif rec is not None:
        data = rec.frames(symbol)
    else:
        data = market_frames(cfg, duration_s=duration_s)
    data = _orderbook_only(data, symbol)
    runner = build_runner(
        cfg,
        venue=venue,
        instrument=instrument,
        maker_fee_rate=sim.maker_fee_rate,
        taker_fee_rate=sim.taker_fee_rate,
        link_prefix=f"bt{sim.seed}-",
        records=records,
        use_risk=use_risk,
    )
    wall0 = time.perf_counter()
    try:
        runner.run(_book_frames_only(venue.stream(data, timer_ms=TIMER_MS)))
    except (MarketDataError, RecordingError) as exc:
        raise BacktestError(f"{sim.data}: {exc}") from exc
    if runner.frames == 0:
        where = rec.describe() if rec is not None else "the data"
        raise BacktestError(f"replayed 0 orderbook frames of {symbol}: {where}")
    end_ms = venue.now_ms()
    venue.advance(end_ms + SETTLE_MS)  # deliver the cancel-all and any last fills
    runner.write_snapshot(venue.now_ms())
    wall_s = time.perf_counter() - wall0
    _mids_at_match(runner, engine)
    summary = _summary(cfg, runner, engine, venue, instrument, end_ms)
    timing = {
        "wall_s": round(wall_s, 3),
        "frames": runner.frames,
        "frames_per_wall_s": round(runner.frames / wall_s, 1) if wall_s > 0 else None,
        "simulated_s_per_wall_s": round(summary["simulated_s"] / wall_s, 1) if wall_s else None,
        "tick_to_quote": runner.tick_to_quote.summary(),
        "tick_to_order": runner.tick_to_order.summary(),
        "tick_to_order_sent": runner.tick_to_order_sent.summary(),
    }
    return BacktestResult(summary, timing, runner, engine, cfg)


def _engine(cfg: Config, instrument: Instrument) -> MatchingEngine:
    sim = cfg.sim
    return MatchingEngine(
        symbol=instrument.symbol,
        tick_size=instrument.tick_size,
        lot_size=instrument.lot_size,
        category=instrument.category,
        maker_fee_rate=sim.maker_fee_rate,
        taker_fee_rate=sim.taker_fee_rate,
        min_qty_lots=instrument.min_qty_lots,
        max_qty_lots=instrument.max_qty_lots,
        min_notional=instrument.min_notional,
        queue_model=sim.queue_model,
        queue_power=sim.queue_power,
    )


def _sim_venue(cfg: Config, engine: MatchingEngine, rec: Recording | None) -> SimVenue:
    sim = cfg.sim
    latency = None
    if sim.latency == "replay":
        if rec is None:
            raise BacktestError(
                "sim.latency = 'replay' needs a recording (--data FILE) with order round trips"
            )
        try:
            latency = ReplayLatency(rec.round_trips, md_fallback_ms=sim.md_latency_ms)
        except ValueError as exc:
            raise BacktestError(f"{rec.describe()}: {exc}") from None
    return SimVenue(
        engine,
        order_latency_ms=sim.order_latency_ms,
        response_latency_ms=sim.response_latency_ms,
        md_latency_ms=sim.md_latency_ms,
        seed=sim.seed,
        latency=latency,
        rate_limits=sim.rate_limits(cfg.venue.category),
    )


def _run_many(
    cfg: Config,
    names: list[str],
    rec: Recording | None,
    instruments_file: str | None,
    frames: Iterable[str] | None,
    duration_s: float | None,
    records: Any,
    use_risk: bool,
) -> BacktestResult:
    """Replay several symbols on one simulated venue, a runner each, one clock."""
    sim = cfg.sim
    if rec is not None:
        instruments = {n: _recorded_rules(rec, n, instruments_file) for n in names}
    else:
        instruments = {n: sim.instrument(n, cfg.venue.category) for n in names}
    engines = {n: _engine(cfg, ins) for n, ins in instruments.items()}
    venue = _sim_venue(cfg, engines[names[0]], rec)
    for n in names[1:]:
        venue.add_engine(engines[n])
    data: Iterable[_Item]
    if frames is not None:
        data = frames
    elif rec is not None:
        data = rec.frames()
    else:
        # a market per symbol, seeds sim.seed + index, merged in time order
        markets: list[Iterator[str]] = [
            _synthetic(cfg, n, sim.seed + i, duration_s) for i, n in enumerate(names)
        ]
        merged: Iterator[str] = heapq.merge(*markets, key=_frame_ts)
        data = merged
    data = _orderbook_only(data, names)
    fees = (sim.maker_fee_rate, sim.taker_fee_rate)
    runners, account = build_runners(
        cfg,
        venue=venue,
        instruments=instruments,
        fee_rates=dict.fromkeys(names, fees),
        link_prefix=f"bt{sim.seed}-",
        records=records,
        use_risk=use_risk,
    )
    router = EventRouter(runners)
    unrouted = 0
    wall0 = time.perf_counter()
    started = False
    try:
        for frame, now_ms in _book_frames_only(venue.stream(data, timer_ms=TIMER_MS)):
            if not started:
                venue.set_handler(router.dispatch)
                for r in runners.values():
                    r.start(now_ms, attach=False)
                started = True
            if frame is None:
                for r in runners.values():
                    r.on_timer(now_ms)
                continue
            runner = runners.get((obcore.frame_topic(frame) or "").rpartition(".")[2])
            if runner is None:  # _orderbook_only keeps the chosen symbols only
                unrouted += 1
                continue
            runner.on_frame(frame, now_ms)
    except (MarketDataError, RecordingError) as exc:
        raise BacktestError(f"{sim.data}: {exc}") from exc
    finally:
        for r in runners.values():
            r.stop()
    for n, r in runners.items():
        if r.frames == 0:
            where = rec.describe() if rec is not None else "the data"
            raise BacktestError(f"replayed 0 orderbook frames of {n}: {where}")
    end_ms = venue.now_ms()
    venue.advance(end_ms + SETTLE_MS)  # deliver the cancel-alls and any last fills
    for r in runners.values():
        r.write_snapshot(venue.now_ms())
    wall_s = time.perf_counter() - wall0
    per: dict[str, Any] = {}
    for n, r in runners.items():
        _mids_at_match(r, engines[n])
        one = _summary(cfg.for_symbol(n), r, engines[n], venue, instruments[n], end_ms)
        del one["config"], one["timing_file"]
        per[n] = one
    first = per[names[0]]
    summary = {
        "symbols": per,
        "total": account_totals(runners, account),
        "unrouted": unrouted + router.unrouted,
        "category": cfg.venue.category,
        "data": sim.data,
        "seed": sim.seed,
        "simulated_s": max(one["simulated_s"] for one in per.values()),
        "fill_model": first["fill_model"],
        "config": _config_echo(cfg),
        "timing_file": "timing.json",
    }
    frames_total = sum(r.frames for r in runners.values())
    rs = list(runners.values())
    timing = {
        "wall_s": round(wall_s, 3),
        "frames": frames_total,
        "frames_per_wall_s": round(frames_total / wall_s, 1) if wall_s > 0 else None,
        "simulated_s_per_wall_s": round(summary["simulated_s"] / wall_s, 1) if wall_s else None,
        "tick_to_quote": LatencyStats.merged(r.tick_to_quote for r in rs).summary(),
        "tick_to_order": LatencyStats.merged(r.tick_to_order for r in rs).summary(),
        "tick_to_order_sent": LatencyStats.merged(r.tick_to_order_sent for r in rs).summary(),
        "symbols": {
            n: {
                "frames": r.frames,
                "tick_to_quote": r.tick_to_quote.summary(),
                "tick_to_order": r.tick_to_order.summary(),
            }
            for n, r in runners.items()
        },
    }
    return BacktestResult(
        summary,
        timing,
        runners[names[0]],
        engines[names[0]],
        cfg,
        runners=runners,
        engines=engines,
        account=account,
    )


def _frame_ts(frame: str) -> int:
    m = _TS.search(frame)
    if m is None:
        raise BacktestError(f'market frame has no "ts" field: {frame[:80]!r}')
    return int(m.group(1))


_TS = re.compile(r'"ts":\s*(\d+)')


def _mids_at_match(runner: Runner, engine: MatchingEngine) -> None:
    """Give each trade the exchange's mid at the match (the runner's book lags it by the
    latencies)."""
    mids = {f.exec_id: f.mid2_ticks for f in engine.fill_log}
    runner.trades = [
        dataclasses.replace(t, mid2_ticks=mids.get(t.exec_id, t.mid2_ticks)) for t in runner.trades
    ]


def _dec(value: Decimal | float | int) -> str:
    """Money (and rates) as :func:`format_money` writes them; a float (a model parameter
    such as a queue exponent) as its shortest repr."""
    if isinstance(value, Decimal):
        return format_money(value)
    return repr(value)


def _dec_tree(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _dec_tree(v) for k, v in node.items()}
    if isinstance(node, Decimal):
        return _dec(node)
    return node


def _fill_model(cfg: Config, engine: MatchingEngine, venue: SimVenue) -> dict[str, Any]:
    """Name the models that produced the fills, so a summary says what it assumed."""
    return {
        "queue_model": engine.queue_model,
        "queue_power": engine.queue_power if engine.queue_model == "prob_power" else None,
        "latency": venue.latency_description(),
        "maker_fee_rate": _dec(engine.maker_fee_rate),
        "taker_fee_rate": _dec(engine.taker_fee_rate),
        "trades_in_data": engine.trade_frames > 0,
    }


def _explain(
    runner: Runner, engine: MatchingEngine, instrument, mark
) -> tuple[dict[str, Any], dict[str, Any]]:
    unit = instrument.notional(1, 1)
    parts = attribute(
        engine.fill_log,
        mark_ticks=mark,
        unit=unit,
        net_pnl=runner.pnl.net(mark),
        funding=runner.pnl.funding,
    )
    levels = {
        link: ("flatten" if m.level == FLATTEN_LEVEL else m.level)
        for link, m in runner.orders.orders.items()
    }
    marks = markouts(engine.fill_log, engine.mid_log, unit=unit, level_of=levels)
    return _dec_tree(parts), _dec_tree(marks)


def _config_echo(cfg: Config) -> dict[str, Any]:
    """The config minus where outputs go, so runs into different directories compare equal."""
    data = config_to_dict(cfg)
    data["run"] = {k: v for k, v in data["run"].items() if k not in ("out_dir", "db_path")}
    return data


def _summary(
    cfg, runner: Runner, engine: MatchingEngine, venue: SimVenue, instrument, end_ms: int
) -> dict[str, Any]:
    mark = runner.mark_ticks()
    h = runner.history
    start_ms = h.t_ms[0] if h.t_ms else end_ms
    attribution, marks = _explain(runner, engine, instrument, mark)
    return {
        "metrics": run_metrics(
            h.t_ms,
            h.net_pnl_exact,
            runner.trades,
            runner.orders_sent,
            unit=instrument.notional(1, 1),
            duration_s=(end_ms - start_ms) / 1000,
        ),
        "attribution": attribution,
        "markouts": marks,
        "fill_model": _fill_model(cfg, engine, venue),
        "symbol": cfg.venue.symbol,
        "category": cfg.venue.category,
        "model": cfg.strategy.model,
        "data": cfg.sim.data,
        "seed": cfg.sim.seed,
        "simulated_s": round((end_ms - start_ms) / 1000, 3),
        **trading_summary(runner),
        "open_orders_at_end": len(engine.open_orders()),
        "engine": {
            "fills": engine.fills,
            "position_lots": engine.position_lots,
            "realized_pnl": _dec(engine.realized_pnl),
            "fees": _dec(engine.fees_paid),
            "market_errors": engine.market_errors,
        },
        "config": _config_echo(cfg),
        "timing_file": "timing.json",
    }
