"""Backtest a quote model on the in-process simulated venue and write a report.

With no options it runs the default synthetic backtest (bundled config plus the backtest
defaults below: a few simulated minutes, seed 0), which takes seconds and writes the same
summary.json every time. Outputs in --out: summary.json (fills, volume, PnL, fees,
inventory, quote counts, config; deterministic), timing.json (wall-clock run time and
tick-to-quote latency percentiles) and chart.png.

Examples:
  mmbot backtest --out bt
  mmbot backtest --config my.toml --out bt --duration-s 600 --seed 3
  mmbot backtest --out bt --set strategy.model=glft --set strategy.levels=3
  mmbot backtest --out bt --data recording.jsonl.gz
"""
from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

from mmbot.config import Config, ConfigError, config_to_dict, load_config, parse_config

#: applied on top of the bundled config when no --config is given: a short demonstration
#: with the bundled fee-aware quotes (no thinner spread: that would only show fee losses)
BACKTEST_DEFAULTS = {
    "strategy.levels": 2,
    "run.duration_s": 180.0,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the backtest options."""
    parser.add_argument("--config", metavar="TOML", help="config file (default: bundled "
                        "defaults plus the backtest defaults)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="output directory (default: [run] out_dir)")
    parser.add_argument("--duration-s", type=float, default=None,
                        help="simulated seconds of synthetic data (default: [run] duration_s)")
    parser.add_argument("--seed", type=int, default=None, help="synthetic data/latency seed")
    parser.add_argument("--data", default=None,
                        help="'synthetic' or a recording of raw frames (.gz ok)")
    parser.add_argument("--model", default=None, help="fixed | skew | avellaneda | glft")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a config key, e.g. strategy.levels=3 (repeatable; "
                             "VALUE is TOML, bare words are strings)")
    parser.add_argument("--no-chart", action="store_true", help="skip chart.png")
    parser.add_argument("--no-risk", action="store_true", help="quote without [risk] limits")
    parser.add_argument("--db", default=None, metavar="PATH",
                        help="also record orders, fills and PnL snapshots to this SQLite file")


def _toml_value(text: str):
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(cfg: Config, overrides: dict[str, object]) -> Config:
    """Return ``cfg`` with dotted keys replaced, validated like a config file.

    Raises
    ------
    ConfigError
        For an unknown key or a bad value (naming the key).
    """
    data = config_to_dict(cfg)
    for key, value in overrides.items():
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"unknown config section {key!r}")
            node = node[part]
        if parts[-1] not in node:
            raise ConfigError(f"unknown config key {key!r}")
        node[parts[-1]] = value
    return parse_config(data)


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
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = _toml_value(value.strip())
    if args.out is not None:
        overrides["run.out_dir"] = args.out
    return apply_overrides(cfg, overrides)


def run(args: argparse.Namespace) -> int:
    """Run the backtest, write the report, print a short summary; 0 on success."""
    from mmbot.backtest import run_backtest  # noqa: PLC0415  (keeps `mmbot --help` fast)
    from mmbot.report import write_report  # noqa: PLC0415

    try:
        cfg = build_config(args)
    except ConfigError as exc:
        print(f"mmbot backtest: {exc}", file=sys.stderr)
        return 2
    records = None
    if args.db:
        from mmbot.records import Records  # noqa: PLC0415

        records = Records(args.db)
    try:
        result = run_backtest(cfg, records=records, use_risk=not args.no_risk)
    except FileNotFoundError as exc:
        print(f"mmbot backtest: {exc}", file=sys.stderr)
        return 2
    finally:
        if records is not None:
            records.close()
    out = Path(cfg.run.out_dir)
    paths = write_report(out, result, chart=not args.no_chart)
    s, t = result.summary, result.timing
    brief = {k: s[k] for k in ("fills", "volume_qty", "realized_pnl", "unrealized_pnl", "fees",
                               "net_pnl", "max_inventory_qty", "quote_updates", "simulated_s")}
    brief["tick_to_quote_p50_us"] = t["tick_to_quote"].get("p50_us")
    brief["wall_s"] = t["wall_s"]
    print(json.dumps(brief, indent=2))
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0
