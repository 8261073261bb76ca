"""Backtests: a strategy over synthetic or recorded data on the in-process simulated venue.

:func:`run_backtest` wires ``MatchingEngine -> SimVenue -> Runner`` from a
:class:`mmbot.config.Config`, replays the data on the simulated clock, cancels everything at
the end, and returns a :class:`BacktestResult`; :func:`mmbot.report.write_report` turns it
into ``summary.json`` (deterministic: identical bytes for the same config, data and seed),
``timing.json`` (wall-clock measurements, which naturally vary) and ``chart.png``.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from mmbot.attribution import attribute, markouts
from mmbot.config import Config, config_to_dict
from mmbot.orders import FLATTEN_LEVEL, OrderManager
from mmbot.pnl import PnLTracker
from mmbot.risk import RiskLimits, RiskManager
from mmbot.runner import Runner
from mmbot.sim.engine import MatchingEngine
from mmbot.strategy import build_model
from mmbot.venue.sim import SimVenue
from obcore.recording import read_frames
from obcore.synthetic import generate_frames

__all__ = ["BacktestResult", "run_backtest", "market_frames"]

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


def market_frames(cfg: Config, *, duration_s: float | None = None) -> Iterator[str]:
    """Return the market data of a backtest: the seeded synthetic stream or a recording.

    For synthetic data the number of frames is ``duration_s * 1000 / sim.interval_ms``
    (``duration_s`` defaults to ``run.duration_s``). A recording is replayed whole.
    """
    sim = cfg.sim
    if sim.data == "synthetic":
        seconds = cfg.run.duration_s if duration_s is None else duration_s
        messages = max(1, int(seconds * 1000 // sim.interval_ms))
        return generate_frames(
            symbol=cfg.venue.symbol,
            tick_size=sim.tick_size,
            lot_size=sim.lot_size,
            depth=sim.depth,
            messages=messages,
            seed=sim.seed,
            levels_per_delta=sim.levels_per_delta,
            start_price=sim.start_price,
            interval_ms=sim.interval_ms,
            category=cfg.venue.category,
            trades_per_s=sim.trades_per_s,
            trade_size_mean_lots=max(1, int(Decimal(sim.trade_size_mean_qty)
                                            / Decimal(sim.lot_size))),
            trade_buy_ratio=sim.trade_buy_ratio,
            trade_size_alpha=sim.trade_size_alpha,
        )
    path = Path(sim.data)
    if not path.is_file():
        raise FileNotFoundError(f"sim.data: recording {sim.data!r} does not exist")
    return read_frames(path)


def _orderbook_only(frames: Iterable[str], symbol: str) -> Iterator[str]:
    """Keep frames of this symbol's orderbook and trades (recordings may hold more topics)."""
    for frame in frames:
        head = frame[:64]
        if ("orderbook." in head or "publicTrade." in head) and symbol in head:
            yield frame


def _book_frames_only(stream: Iterator[tuple[str | None, int]]
                      ) -> Iterator[tuple[str | None, int]]:
    """Hide publicTrade frames from the bot: the engine fills on them, the runner's book
    takes orderbook frames only (as the live feed subscribes orderbook topics only)."""
    for frame, now_ms in stream:
        if frame is None or '"topic":"publicTrade.' not in frame[:40]:
            yield frame, now_ms


def _risk_manager(cfg: Config, instrument) -> RiskManager:
    return RiskManager(RiskLimits.from_config(cfg.risk, instrument), instrument)


def run_backtest(
    cfg: Config,
    *,
    frames: Iterable[str] | None = None,
    duration_s: float | None = None,
    records: Any = None,
    use_risk: bool = True,
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
    """
    sim = cfg.sim
    symbol = cfg.venue.symbol
    instrument = sim.instrument(symbol, cfg.venue.category)
    engine = MatchingEngine(
        symbol=symbol,
        tick_size=sim.tick_size,
        lot_size=sim.lot_size,
        category=cfg.venue.category,
        maker_fee_rate=sim.maker_fee_rate,
        taker_fee_rate=sim.taker_fee_rate,
        min_qty_lots=instrument.min_qty_lots,
        max_qty_lots=instrument.max_qty_lots,
        min_notional=instrument.min_notional,
        queue_model=sim.queue_model,
        queue_power=sim.queue_power,
    )
    venue = SimVenue(
        engine,
        order_latency_ms=sim.order_latency_ms,
        response_latency_ms=sim.response_latency_ms,
        md_latency_ms=sim.md_latency_ms,
        seed=sim.seed,
    )
    data = frames if frames is not None else market_frames(cfg, duration_s=duration_s)
    data = _orderbook_only(data, symbol)
    orders = OrderManager.from_config(
        venue, symbol, cfg.orders,
        tolerance_ticks=cfg.strategy.requote_tolerance_ticks,
        link_prefix=f"bt{sim.seed}-",
    )
    pnl = PnLTracker(instrument, sim.maker_fee_rate, sim.taker_fee_rate)
    runner = Runner(
        instrument=instrument,
        venue=venue,
        model=build_model(cfg),
        orders=orders,
        pnl=pnl,
        risk=_risk_manager(cfg, instrument) if use_risk else None,
        records=records,
        snapshot_interval_ms=cfg.run.snapshot_interval_ms,
    )
    wall0 = time.perf_counter()
    runner.run(_book_frames_only(venue.stream(data, timer_ms=TIMER_MS)))
    end_ms = venue.now_ms()
    venue.advance(end_ms + SETTLE_MS)  # deliver the cancel-all and any last fills
    runner.write_snapshot(venue.now_ms())
    wall_s = time.perf_counter() - wall0
    summary = _summary(cfg, runner, engine, venue, instrument, end_ms)
    timing = {
        "wall_s": round(wall_s, 3),
        "frames": runner.frames,
        "frames_per_wall_s": round(runner.frames / wall_s, 1) if wall_s > 0 else None,
        "simulated_s_per_wall_s": round(summary["simulated_s"] / wall_s, 1) if wall_s else None,
        "tick_to_quote": runner.tick_to_quote.summary(),
        "tick_to_order": runner.tick_to_order.summary(),
    }
    return BacktestResult(summary, timing, runner, engine, cfg)


def _dec(value: Decimal | float | int) -> str:
    """Money as an exact plain decimal string (shortest repr for floats), unrounded so the
    attribution parts add up to net PnL digit for digit."""
    if isinstance(value, Decimal):
        return format(value.normalize() + 0, "f")
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


def _explain(runner: Runner, engine: MatchingEngine, instrument, mark: int | None
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    unit = instrument.notional(1, 1)
    parts = attribute(engine.fill_log, mark_ticks=mark, unit=unit,
                      net_pnl=runner.pnl.net(mark))
    levels = {link: ("flatten" if m.level == FLATTEN_LEVEL else m.level)
              for link, m in runner.orders.orders.items()}
    marks = markouts(engine.fill_log, engine.mid_log, unit=unit, level_of=levels)
    return _dec_tree(parts), _dec_tree(marks)


def _config_echo(cfg: Config) -> dict[str, Any]:
    """The config minus where outputs go, so runs into different directories compare equal."""
    data = config_to_dict(cfg)
    data["run"] = {k: v for k, v in data["run"].items() if k not in ("out_dir", "db_path")}
    return data


def _summary(cfg, runner: Runner, engine: MatchingEngine, venue: SimVenue, instrument,
             end_ms: int) -> dict[str, Any]:
    pnl = runner.pnl
    mark = runner._mark_ticks()
    h = runner.history
    start_ms = h.t_ms[0] if h.t_ms else end_ms
    orders = runner.orders
    statuses: dict[str, int] = {}
    for m in orders.orders.values():
        statuses[m.status.value] = statuses.get(m.status.value, 0) + 1
    post_only_rejects = sum(1 for m in orders.orders.values()
                            if m.reject_reason == "EC_PostOnlyWillTakeLiquidity")
    attribution, marks = _explain(runner, engine, instrument, mark)
    return {
        "attribution": attribution,
        "markouts": marks,
        "fill_model": _fill_model(cfg, engine, venue),
        "symbol": cfg.venue.symbol,
        "category": cfg.venue.category,
        "model": cfg.strategy.model,
        "data": cfg.sim.data,
        "seed": cfg.sim.seed,
        "frames": runner.frames,
        "simulated_s": round((end_ms - start_ms) / 1000, 3),
        "fills": pnl.fill_count,
        "maker_fills": pnl.maker_fills,
        "volume_lots": pnl.volume_lots,
        "volume_qty": instrument.qty_str(pnl.volume_lots),
        "turnover_quote": _dec(pnl.turnover),
        "realized_pnl": _dec(pnl.realized),
        "unrealized_pnl": _dec(pnl.unrealized(mark)),
        "fees": _dec(pnl.fees),
        "net_pnl": _dec(pnl.net(mark)),
        "final_position_lots": pnl.position_lots,
        "max_inventory_lots": pnl.max_abs_position_lots,
        "max_inventory_qty": instrument.qty_str(pnl.max_abs_position_lots),
        "mark_price": None if mark is None else instrument.price_str(mark),
        "quote_updates": runner.quote_updates,
        "orders_sent": runner.orders_sent,
        "requests_sent": orders.requests_sent,
        "rate_limit_deferrals": orders.rate_deferrals,
        "request_errors": orders.request_errors,
        "post_only_rejects": post_only_rejects,
        "order_statuses": dict(sorted(statuses.items())),
        "open_orders_at_end": len(engine.open_orders()),
        "risk_pulls": runner.risk_pulls,
        "flattens": runner.flattens,
        "book_errors": runner.book_errors,
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
