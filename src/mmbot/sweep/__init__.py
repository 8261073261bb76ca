"""Parameter search for mmbot on optuna: ``mmbot sweep``.

A sweep backtests one config per trial, with the values optuna proposes for the dotted keys
of a space file, and maximizes an objective (net PnL, Sharpe of per-minute PnL, or net PnL
minus an inventory charge) under optional constraints (max |inventory|, max drawdown). The
study lives in a SQLite file in the output directory, or in a PostgreSQL database that
several machines share; optuna does the scheduling.

Public API
----------
make_spec, SweepSpec, run_sweep, run_worker, evaluate, SweepOutcome, TrialRecord,
write_outputs, top_table, progress_line, load_space, parse_space, SearchSpace, Range, Choice,
Objective, OBJECTIVES, TrialMetrics, mask_url, SweepError, SpaceError, StorageError,
TrialError.
"""

from __future__ import annotations

from mmbot.sweep.errors import SpaceError, StorageError, SweepError, TrialError
from mmbot.sweep.metrics import OBJECTIVES, Objective, TrialMetrics
from mmbot.sweep.output import progress_line, top_table, write_outputs
from mmbot.sweep.space import Choice, Range, SearchSpace, load_space, parse_space
from mmbot.sweep.storage import mask_url
from mmbot.sweep.study import (
    SweepOutcome,
    SweepSpec,
    TrialRecord,
    evaluate,
    make_spec,
    run_sweep,
    run_worker,
)

__all__ = [
    "OBJECTIVES",
    "Choice",
    "Objective",
    "Range",
    "SearchSpace",
    "SpaceError",
    "StorageError",
    "SweepError",
    "SweepOutcome",
    "SweepSpec",
    "TrialError",
    "TrialMetrics",
    "TrialRecord",
    "evaluate",
    "load_space",
    "make_spec",
    "mask_url",
    "parse_space",
    "progress_line",
    "run_sweep",
    "run_worker",
    "top_table",
    "write_outputs",
]
