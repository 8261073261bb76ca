"""Backtest a quote model on the in-process simulated venue and write a report.

With no options it runs the default synthetic backtest (bundled config plus the backtest
defaults below: a few simulated minutes, seed 0), which takes seconds and writes the same
summary.json every time. Outputs in --out: summary.json (fills, volume, PnL, fees,
inventory, quote counts, the PnL attribution and markouts, the fill model, the config;
deterministic), timing.json (wall-clock run time and tick-to-quote latency percentiles)
and chart.png (with the markout curve). --trades FILE.csv (or .parquet) writes every fill.

Examples:
  mmbot backtest --out bt
  mmbot backtest --config my.toml --out bt --duration-s 600 --seed 3
  mmbot backtest --out bt --set strategy.model=glft --set strategy.levels=3
  mmbot backtest --out bt --data recording.jsonl.gz --latency replay
  mmbot backtest --out bt --data old.jsonl --instruments instruments.json
  mmbot backtest --out bt --queue-model risk_averse --maker-fee-bps -0.5

Errors (bad config, unusable recording, missing or contradictory instrument rules, 0
frames replayed) are one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mmbot.commands.options import add_overrides
from mmbot.config import (
    Config,
    ConfigError,
    apply_overrides,
    load_config,
    override_texts,
    parse_overrides,
)

#: applied on top of the bundled config when no --config is given: a short demonstration
#: with the bundled fee-aware quotes (no thinner spread: that would only show fee losses)
BACKTEST_DEFAULTS = {
    "strategy.levels": 2,
    "run.duration_s": 180.0,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the backtest options."""
    parser.add_argument(
        "--config",
        metavar="TOML",
        help="config file (default: bundled defaults plus the backtest defaults)",
    )
    parser.add_argument(
        "--out", metavar="DIR", default=None, help="output directory (default: [run] out_dir)"
    )
    parser.add_argument(
        "--duration-s",
        type=float,
        default=None,
        help="simulated seconds of synthetic data (default: [run] duration_s)",
    )
    parser.add_argument("--seed", type=int, default=None, help="synthetic data/latency seed")
    parser.add_argument(
        "--data", default=None, help="'synthetic' or a recording of raw frames (.gz ok)"
    )
    parser.add_argument(
        "--model", default=None, help="fixed | skew | avellaneda | glft | package.module:ClassName"
    )
    parser.add_argument(
        "--queue-model",
        default=None,
        help="risk_averse | prob_power | optimistic (sim.queue_model)",
    )
    parser.add_argument(
        "--latency",
        default=None,
        help="constant | replay (sim.latency; replay uses the recording's "
        "order round trips and receive times)",
    )
    parser.add_argument(
        "--maker-fee-bps",
        type=float,
        default=None,
        help="maker fee in bps, negative = rebate (sim.maker_fee_bps)",
    )
    parser.add_argument(
        "--taker-fee-bps", type=float, default=None, help="taker fee in bps (sim.taker_fee_bps)"
    )
    parser.add_argument(
        "--instruments",
        default=None,
        metavar="FILE",
        help="saved /v5/market/instruments-info response, for a recording "
        "without instrument rules in its header",
    )
    add_overrides(parser)
    parser.add_argument(
        "--symbols",
        metavar="A,B,...",
        default=None,
        help="replay these symbols together (default: [venue] symbols, else every "
        "symbol of the --data recording)",
    )
    parser.add_argument("--no-chart", action="store_true", help="skip chart.png")
    parser.add_argument("--no-risk", action="store_true", help="quote without [risk] limits")
    parser.add_argument(
        "--trades",
        default=None,
        metavar="FILE",
        help="write every fill to FILE.csv (or .parquet with pyarrow): time, "
        "side, price, qty, fee, liquidity, ladder level, mid at fill",
    )
    parser.add_argument(
        "--db",
        default=None,
        metavar="PATH",
        help="also record orders, fills and PnL snapshots to this SQLite file",
    )


def build_config(args: argparse.Namespace) -> Config:
    """Turn the command line into a validated :class:`Config`."""
    overrides: dict[str, object] = {}
    if args.config:
        cfg = load_config(args.config)
    else:
        cfg = load_config()
        overrides.update(BACKTEST_DEFAULTS)
    if args.duration_s is not None:
        overrides["run.duration_s"] = args.duration_s
    if args.seed is not None:
        overrides["sim.seed"] = args.seed
    if args.data is not None:
        overrides["sim.data"] = args.data
    if args.model is not None:
        overrides["strategy.model"] = args.model
    for flag, key in (
        ("queue_model", "sim.queue_model"),
        ("latency", "sim.latency"),
        ("maker_fee_bps", "sim.maker_fee_bps"),
        ("taker_fee_bps", "sim.taker_fee_bps"),
    ):
        if getattr(args, flag) is not None:
            overrides[key] = getattr(args, flag)
    overrides.update(parse_overrides(args.overrides))
    if args.out is not None:
        overrides["run.out_dir"] = args.out
    return apply_overrides(cfg, overrides, override_texts(args.overrides))


def run(args: argparse.Namespace) -> int:
    """Run the backtest, write the report, print a short summary; 0 on success."""
    from mmbot.backtest import BacktestError, run_backtest, symbol_list  # noqa: PLC0415
    from mmbot.instrument import InstrumentError  # noqa: PLC0415
    from mmbot.metrics import metrics_text  # noqa: PLC0415
    from mmbot.report import write_report  # noqa: PLC0415
    from mmbot.trades import check_trades_path, write_all_trades  # noqa: PLC0415
    from obcore import ObcoreError  # noqa: PLC0415

    try:
        cfg = build_config(args)
        if args.trades:
            check_trades_path(args.trades)
    except ConfigError as exc:
        print(f"mmbot backtest: {exc}", file=sys.stderr)
        return 2
    records = None
    if args.db:
        from mmbot.records import Records  # noqa: PLC0415

        records = Records(args.db)
    try:
        result = run_backtest(
            cfg,
            records=records,
            use_risk=not args.no_risk,
            instruments_file=args.instruments,
            symbols=symbol_list(args.symbols),
        )
    except (BacktestError, ConfigError, InstrumentError) as exc:
        print(f"mmbot backtest: {exc}", file=sys.stderr)
        return 2
    except ObcoreError as exc:  # data that does not fit the instrument rules
        print(f"mmbot backtest: {cfg.sim.data}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    finally:
        if records is not None:
            records.close()
    out = Path(cfg.run.out_dir)
    paths = write_report(out, result, chart=not args.no_chart)
    if args.trades:
        paths.update(write_all_trades(args.trades, result.runners or {"": result.runner}))
    s, t = result.summary, result.timing
    if "total" in s:  # several symbols
        print(json.dumps({"total": s["total"], "wall_s": t["wall_s"]}, indent=2))
        for sym, one in s["symbols"].items():
            print(f"{sym}: {metrics_text(one['metrics'])}")
        for name, path in paths.items():
            print(f"{name}: {path}")
        return 0
    brief = {
        k: s[k]
        for k in (
            "fills",
            "volume_qty",
            "realized_pnl",
            "unrealized_pnl",
            "fees",
            "net_pnl",
            "max_inventory_qty",
            "quote_updates",
            "simulated_s",
        )
    }
    brief["tick_to_quote_p50_us"] = t["tick_to_quote"].get("p50_us")
    brief["wall_s"] = t["wall_s"]
    print(json.dumps(brief, indent=2))
    print(metrics_text(s["metrics"]))
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0
