"""Search strategy parameters with optuna: one backtest per trial, the best config at the end.

The study lives in a file in --out, or in a PostgreSQL database that every machine running
the same command shares (--storage, --study); --trials is the study's total.
Outputs in --out: best.toml, sweep.json, optimization_history.png, param_importances.png.

Examples:
  mmbot sweep --space space.toml --trials 50 --out sw --duration-s 120
  mmbot sweep --space space.toml --trials 200 --out sw --jobs 2 --data day1.jsonl.gz \\
      --holdout day2.jsonl.gz
  mmbot sweep --space space.toml --trials 1000 --out sw \\
      --storage postgresql://mm@db.example:5432/sweeps --study btc-fixed
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

from mmbot.commands.options import add_overrides
from mmbot.config import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the sweep options."""
    parser.add_argument(
        "--space",
        required=True,
        metavar="TOML",
        help="search space: [space] with dotted config keys",
    )
    parser.add_argument(
        "--trials",
        required=True,
        type=int,
        metavar="N",
        help="trials in the study, counted over every worker and machine",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--config", metavar="TOML", help="base config (default: bundled)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="K",
        help="worker processes on this machine (default 1)",
    )
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="shared study: postgresql://user@host:port/db (default: a SQLite file in --out)",
    )
    parser.add_argument("--study", default="mmbot-sweep", metavar="NAME", help="study name")
    parser.add_argument(
        "--data",
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE",
        help="recordings to search on (default: [sim] data)",
    )
    parser.add_argument(
        "--holdout",
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE",
        help="recordings the search never sees; the top trials re-run on them",
    )
    parser.add_argument(
        "--duration-s",
        type=float,
        default=None,
        metavar="S",
        help="simulated seconds of synthetic data per trial",
    )
    add_overrides(parser, "a base config key")
    parser.add_argument(
        "--objective", default="net_pnl", help="net_pnl (default) | sharpe | inventory"
    )
    parser.add_argument(
        "--inventory-charge",
        metavar="QUOTE",
        help="for --objective inventory: quote currency charged per unit of "
        "time-averaged |inventory|",
    )
    parser.add_argument(
        "--max-inventory", metavar="QTY", help="constraint: largest |inventory| in base currency"
    )
    parser.add_argument(
        "--max-drawdown", metavar="QUOTE", help="constraint: largest drawdown from peak net PnL"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="data/latency seed and sampler seed (default: [sim] seed)",
    )
    parser.add_argument(
        "--top",
        type=int,
        default=5,
        metavar="N",
        help="trials in the final table and re-run on --holdout (default 5)",
    )
    parser.add_argument(
        "--no-plots",
        action="store_true",
        help="skip the PNG plots (each worker of a shared study draws them)",
    )
    parser.add_argument(
        "--heartbeat-s",
        type=int,
        default=10,
        metavar="S",
        help="worker heartbeat; a trial silent 3 heartbeats is retried",
    )


def run(args: argparse.Namespace) -> int:
    """Run the sweep, write its outputs, print the top trials; 0 on success."""
    if importlib.util.find_spec("optuna") is None:
        print("mmbot sweep: optuna is not installed; pip install 'obcore[mmbot]'", file=sys.stderr)
        return 2
    from mmbot import sweep  # noqa: PLC0415  (optuna is heavy; keeps `mmbot --help` fast)

    tty = sys.stderr.isatty()
    shown: list[str] = []

    def progress(counts, best) -> None:
        line = sweep.progress_line(args.trials, counts, best, args.objective)
        if shown and shown[-1] == line:
            return
        shown.append(line)
        print(
            ("\r" + line + "\033[K") if tty else line,
            end="" if tty else "\n",
            file=sys.stderr,
            flush=True,
        )

    try:
        spec = sweep.make_spec(
            space=args.space,
            trials=args.trials,
            out_dir=args.out,
            config=args.config,
            overrides=args.overrides,
            storage=args.storage,
            study=args.study,
            data=args.data,
            holdout=args.holdout,
            duration_s=args.duration_s,
            objective=args.objective,
            inventory_charge=args.inventory_charge,
            max_inventory_qty=args.max_inventory,
            max_drawdown_quote=args.max_drawdown,
            seed=args.seed,
            jobs=args.jobs,
            top=args.top,
            heartbeat_s=args.heartbeat_s,
        )
        outcome = sweep.run_sweep(spec, progress=progress)
    except (sweep.SweepError, ConfigError) as exc:
        if tty:
            print(file=sys.stderr)
        print(f"mmbot sweep: {exc}", file=sys.stderr)
        return 2
    if tty:
        print(file=sys.stderr)
    paths = sweep.write_outputs(outcome, plots=not args.no_plots)
    print(sweep.top_table(outcome))
    print(f"this process ran {outcome.ran_here} trial(s) of study {spec.study_name!r}")
    for name, path in paths.items():
        print(f"{name}: {path}")
    if outcome.crashed:
        numbers = ", ".join(f"#{r.number}" for r in outcome.crashed)
        print(
            f"mmbot sweep: trial(s) {numbers} crashed in the backtest (a bug, not bad "
            f"input): {outcome.crashed[0].error}; tracebacks in sweep.json",
            file=sys.stderr,
        )
        return 1
    if outcome.best is None:
        print(
            "mmbot sweep: no trial completed within the constraints; see sweep.json",
            file=sys.stderr,
        )
        return 2
    return 0
