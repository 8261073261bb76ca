"""Running a sweep: the study, its workers, the holdout, and what is written at the end.

A worker is a loop around ``study.optimize(..., n_trials=1)``. Before each trial it counts
the study's trials (finished, running and queued) against ``--trials``, so the total is the
study's, not the worker's; when the total is reached it waits for the trials still running
elsewhere, failing and retrying those whose worker stopped sending heartbeats.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import multiprocessing.connection
import os
import socket
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from mmbot.config import (
    Config,
    ConfigError,
    apply_overrides,
    config_to_dict,
    load_config,
    parse_overrides,
)
from mmbot.sweep.errors import SweepError, TrialCrash, TrialError
from mmbot.sweep.metrics import OBJECTIVES, Objective, TrialMetrics, combine, metrics_from_result
from mmbot.sweep.space import SearchSpace, load_space
from mmbot.sweep.storage import default_url, mask_url, open_storage

__all__ = [
    "SweepOutcome",
    "SweepSpec",
    "TrialRecord",
    "evaluate",
    "make_spec",
    "run_sweep",
    "run_worker",
]

#: the study attribute that pins what a study is searching; a second command must match it
SETUP_ATTR = "mmbot_sweep"


@dataclass(frozen=True)
class SweepSpec:
    """Everything a worker needs; picklable, so ``--jobs`` workers get it whole."""

    space: SearchSpace
    base: Config
    trials: int
    out_dir: Path
    storage_url: str | None = None
    study_name: str = "mmbot-sweep"
    data: tuple[str, ...] = ()
    holdout: tuple[str, ...] = ()
    duration_s: float | None = None
    objective: Objective = field(default_factory=Objective)
    jobs: int = 1
    top: int = 5
    heartbeat_s: int = 10
    #: the one symbol each recording replays (a backtest would replay all of them)
    symbols: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.storage_url or default_url(self.out_dir)

    @property
    def search_data(self) -> tuple[str, ...]:
        return self.data or (self.base.sim.data,)

    @property
    def seed(self) -> int:
        return self.base.sim.seed

    def setup(self) -> dict[str, Any]:
        """What must agree between every command that works on one study."""
        base = config_to_dict(self.base)
        base["run"] = {k: v for k, v in base["run"].items() if k not in ("out_dir", "db_path")}
        del base["sim"]["data"]  # paths differ between machines; "data" below identifies it
        return {
            "space": self.space.to_dict(),
            "objective": self.objective.to_dict(),
            "base_config": base,
            "data": [_data_id(d) for d in self.search_data],
            "duration_s": self.duration_s,
        }


def _data_id(data: str) -> str:
    # other machines keep their copy elsewhere: the name and size identify a recording
    if data == "synthetic":
        return data
    return f"{Path(data).name} ({Path(data).stat().st_size} bytes)"


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _decimal_option(name: str, text: str | None, *, positive: bool) -> Decimal | None:
    if text is None:
        return None
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise SweepError(f"{name}: expected a decimal number, got {text!r}") from None
    if not d.is_finite() or d < 0 or (positive and d == 0):
        raise SweepError(f"{name}: must be {'> 0' if positive else '>= 0'}, got {text!r}")
    return d


def make_spec(
    *,
    space: str | os.PathLike[str],
    trials: int,
    out_dir: str | os.PathLike[str],
    config: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] = (),
    storage: str | None = None,
    study: str = "mmbot-sweep",
    data: Sequence[str] = (),
    holdout: Sequence[str] = (),
    duration_s: float | None = None,
    objective: str = "net_pnl",
    inventory_charge: str | None = None,
    max_inventory_qty: str | None = None,
    max_drawdown_quote: str | None = None,
    seed: int | None = None,
    jobs: int = 1,
    top: int = 5,
    heartbeat_s: int = 10,
) -> SweepSpec:
    """Validate a sweep's inputs; every problem is found here, before any trial runs.

    The base config is ``config`` (or the bundled one) with ``overrides`` (``KEY=VALUE``, as
    ``--set`` takes them) and ``seed`` as ``sim.seed``. Each space key is checked against it.

    Raises
    ------
    SweepError, ConfigError
        Naming the option, file or key at fault.
    """
    if trials < 1:
        raise SweepError(f"--trials must be >= 1, got {trials}")
    if jobs < 1:
        raise SweepError(f"--jobs must be >= 1, got {jobs}")
    if top < 1:
        raise SweepError(f"--top must be >= 1, got {top}")
    if heartbeat_s < 1:
        raise SweepError(f"--heartbeat-s must be >= 1, got {heartbeat_s}")
    if duration_s is not None and not duration_s > 0:
        raise SweepError(f"--duration-s must be > 0, got {duration_s}")
    if not study:
        raise SweepError("--study must not be empty")
    if objective not in OBJECTIVES:
        raise SweepError(f"--objective: unknown {objective!r} (one of {', '.join(OBJECTIVES)})")
    charge = _decimal_option("--inventory-charge", inventory_charge, positive=False)
    if (objective == "inventory") != (charge is not None):
        raise SweepError("--inventory-charge goes with --objective inventory, and it needs one")
    obj = Objective(
        objective,
        inventory_charge=charge,
        max_inventory_qty=_decimal_option("--max-inventory", max_inventory_qty, positive=True),
        max_drawdown_quote=_decimal_option("--max-drawdown", max_drawdown_quote, positive=True),
    )
    base = load_config(config)
    sets = parse_overrides(overrides)
    if seed is not None:
        sets["sim.seed"] = seed
    base = apply_overrides(base, sets)
    for flag, files in (("--data", data), ("--holdout", holdout)):
        for f in files:
            if f != "synthetic" and not Path(f).is_file():
                raise SweepError(f"{flag}: {f!r} is not a file")
    shared = set(data or (base.sim.data,)) & set(holdout)
    if shared:
        raise SweepError(
            f"--holdout must be data the search never sees; also searched: "
            f"{', '.join(sorted(shared))}"
        )
    if base.sim.data != "synthetic" and not data and not Path(base.sim.data).is_file():
        raise SweepError(f"sim.data: {base.sim.data!r} is not a file")
    searched = data or (base.sim.data,)
    symbols = _swept_symbols(base, (*searched, *holdout))
    seconds = duration_s if duration_s is not None else base.run.duration_s
    if objective == "sharpe" and "synthetic" in searched and seconds < 120:
        raise SweepError(
            f"--objective sharpe needs at least 2 minutes of data; synthetic data "
            f"runs {seconds:g} s (--duration-s)"
        )
    space_obj = load_space(space)
    space_obj.check(base, os.fspath(space))
    out = Path(out_dir)
    return SweepSpec(
        space=space_obj,
        base=base,
        trials=trials,
        out_dir=out,
        storage_url=storage,
        study_name=study,
        data=tuple(data),
        holdout=tuple(holdout),
        duration_s=duration_s,
        objective=obj,
        jobs=jobs,
        top=top,
        heartbeat_s=heartbeat_s,
        symbols=symbols,
    )


def _swept_symbols(base: Config, data: Sequence[str]) -> dict[str, str]:
    """Return the symbol each recording in ``data`` replays in a trial.

    A sweep tunes one symbol's figures; a recording's symbol is chosen as a one-symbol
    backtest chooses it (``venue.symbol`` if the recording holds it, else its only one).

    Raises
    ------
    SweepError
        For several symbols at once, or a recording with no symbol to choose.
    """
    from mmbot.backtest import BacktestError, resolve_recording  # noqa: PLC0415

    if len(base.venue.symbol_list) > 1:
        raise SweepError(
            f"venue.symbols: the sweep tunes one symbol's backtest, got "
            f"{', '.join(base.venue.symbol_list)}; sweep each with --set venue.symbol=NAME"
        )
    chosen = {}
    for d in dict.fromkeys(data):
        if d != "synthetic":
            try:
                cfg, _ = resolve_recording(apply_overrides(base, {"sim.data": d}))
            except BacktestError as exc:
                raise SweepError(str(exc)) from None
            chosen[d] = cfg.venue.symbol
    return chosen


# ---------------------------------------------------------------------------- one trial
def evaluate(
    cfg: Config,
    data: Sequence[str],
    duration_s: float | None,
    symbols: Mapping[str, str] | None = None,
) -> TrialMetrics:
    """Backtest ``cfg`` on each data source and combine the figures (deterministic).

    ``symbols`` maps a recording to the one symbol it replays (see ``SweepSpec.symbols``).
    """
    from mmbot.backtest import run_backtest  # noqa: PLC0415  (heavy; workers import it)

    parts = []
    for d in data:
        run_cfg = apply_overrides(cfg, {"sim.data": d})
        only = (symbols or {}).get(d)
        result = run_backtest(run_cfg, duration_s=duration_s, symbols=[only] if only else None)
        parts.append(metrics_from_result(result))
    return combine(parts)


class _Objective:
    def __init__(self, spec: SweepSpec) -> None:
        self.spec = spec
        self.worker = _worker_id()
        self.evaluated = 0

    def __call__(self, trial: Any) -> float:
        import optuna  # noqa: PLC0415

        spec = self.spec
        trial.set_user_attr("worker", self.worker)
        # Workers that checked the total at the same moment may both have made a trial; trial
        # numbers are assigned under a lock, so the later one is the surplus and stands down.
        before = sum(
            1
            for t in trial.study.get_trials(deepcopy=False)
            if t.number < trial.number and _counts(t)
        )
        if before >= spec.trials:
            trial.set_user_attr("surplus", True)
            raise optuna.TrialPruned(f"surplus: the study's {spec.trials} trials were claimed")
        self.evaluated += 1
        params = spec.space.suggest(trial)
        try:
            cfg = apply_overrides(spec.base, params)
            metrics = evaluate(cfg, spec.search_data, spec.duration_s, spec.symbols)
            value, exact = spec.objective.score(metrics)
        except (ConfigError, TrialError) as e:
            trial.set_user_attr("error", str(e))
            raise TrialError(str(e)) from e
        except Exception as e:
            # A bug in the backtest, not in these values. One bad corner of the space must not
            # stop a shared study, so the trial fails with its traceback kept in the storage,
            # and the command exits non-zero at the end (``SweepOutcome.crashed``).
            trial.set_user_attr("error", f"{type(e).__name__}: {e}")
            trial.set_user_attr("traceback", traceback.format_exc())
            raise TrialCrash(f"{type(e).__name__}: {e}") from e
        trial.set_user_attr("metrics", metrics.to_dict())
        if exact is not None:
            trial.set_user_attr("objective_exact", exact)
        for name, excess in spec.objective.constraints(metrics).items():
            trial.set_constraint(name, excess)  # TPE samples around feasible trials
        return value


# ---------------------------------------------------------------------------- the study
def _sampler(spec: SweepSpec, worker_index: int | None) -> Any:
    import optuna  # noqa: PLC0415

    if spec.jobs == 1 and spec.storage_url is None:
        seed = spec.seed  # one local worker: the whole sweep repeats exactly
    else:
        # identical samplers on several workers would propose identical trials
        key = f"{spec.seed}:{worker_index}:{_worker_id()}".encode()
        seed = int.from_bytes(hashlib.sha256(key).digest()[:4], "big")
    return optuna.samplers.TPESampler(seed=seed)


def open_study(spec: SweepSpec, worker_index: int | None = None) -> Any:
    """Create or join the study; refuse one that searches something else.

    Raises
    ------
    SweepError
        If a study of that name exists with a different space, objective, base config, data
        or duration, or was not made by ``mmbot sweep``.
    """
    import optuna  # noqa: PLC0415

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # trial errors go to sweep.json
    storage = open_storage(spec.url, spec.heartbeat_s)
    study = optuna.create_study(
        storage=storage,
        study_name=spec.study_name,
        direction="maximize",
        sampler=_sampler(spec, worker_index),
        load_if_exists=True,
    )
    want = spec.setup()
    # trials before attributes: the creator sets the attribute before its first trial, so a
    # study seen with trials but no attribute really is someone else's
    trials = study.get_trials(deepcopy=False)
    have = study.user_attrs.get(SETUP_ATTR)
    if have is None:
        if trials:
            raise SweepError(
                f"study {spec.study_name!r} in {mask_url(spec.url)} was not made "
                "by mmbot sweep; choose another --study"
            )
        study.set_user_attr(SETUP_ATTR, want)
    elif have != want:
        diff = sorted(k for k in want.keys() | have.keys() if want.get(k) != have.get(k))
        raise SweepError(
            f"study {spec.study_name!r} exists with another setup (differs in: "
            f"{', '.join(diff)}); use the same arguments or another --study"
        )
    return study


@dataclass(frozen=True)
class Counts:
    claimed: int
    running: int
    waiting: int
    complete: int
    failed: int


def _counts(t: Any) -> bool:
    """Whether a trial counts toward the total: finished, running or queued.

    A failed trial counts only when the trial itself failed (its values were refused); one
    whose worker died or was interrupted does not, and a dead worker's retry counts instead.
    A surplus trial (see ``_Objective``) does not count.
    """
    from optuna.trial import TrialState  # noqa: PLC0415

    if t.state == TrialState.FAIL:
        return "error" in t.user_attrs
    if t.state == TrialState.PRUNED:
        return "surplus" not in t.user_attrs
    return True


def count_trials(study: Any) -> Counts:
    """Count the study's trials; ``claimed`` is what counts toward ``--trials``."""
    from optuna.trial import TrialState  # noqa: PLC0415

    trials = study.get_trials(deepcopy=False)
    n = dict.fromkeys(TrialState, 0)
    for t in trials:
        n[t.state] += 1
    return Counts(
        sum(1 for t in trials if _counts(t)),
        n[TrialState.RUNNING],
        n[TrialState.WAITING],
        n[TrialState.COMPLETE],
        n[TrialState.FAIL],
    )


def run_worker(
    spec: SweepSpec,
    *,
    worker_index: int | None = None,
    study: Any = None,
    on_trial: Callable[[Any], None] | None = None,
) -> int:
    """Run trials until the study holds ``spec.trials``; return how many this worker ran.

    ``study`` is an already opened study (:func:`open_study`); by default it is opened here.
    """
    import optuna  # noqa: PLC0415

    if study is None:
        study = open_study(spec, worker_index)
    objective = _Objective(spec)
    poll_s = min(1.0, spec.heartbeat_s / 2)
    while True:
        c = count_trials(study)
        if c.claimed < spec.trials or c.waiting:
            study.optimize(objective, n_trials=1, catch=(TrialError, TrialCrash))
            if on_trial is not None:
                on_trial(study)
            continue
        if not c.running:
            return objective.evaluated
        # the total is claimed but others still run: wait for them, or for their heartbeats
        # to go stale, in which case their trials come back as queued retries
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        time.sleep(poll_s)


def _child(spec: SweepSpec, index: int) -> None:
    import sys  # noqa: PLC0415

    try:
        run_worker(spec, worker_index=index)
    except (SweepError, ConfigError) as e:
        print(f"mmbot sweep: worker {index}: {e}", file=sys.stderr)
        sys.exit(2)


# ---------------------------------------------------------------------------- results
@dataclass(frozen=True)
class TrialRecord:
    """One trial as sweep.json shows it."""

    number: int
    state: str
    params: dict[str, Any]
    value: float | None
    objective_exact: str | None
    metrics: dict[str, Any] | None
    feasible: bool | None
    worker: str | None
    retry_of: int | None
    error: str | None
    surplus: bool
    traceback: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _record(t: Any) -> TrialRecord:
    from optuna.trial import TrialState  # noqa: PLC0415

    cons = t.constraints
    complete = t.state == TrialState.COMPLETE
    return TrialRecord(
        number=t.number,
        state=t.state.name,
        params=dict(t.params),
        value=t.value if complete else None,
        objective_exact=t.user_attrs.get("objective_exact") if complete else None,
        metrics=t.user_attrs.get("metrics") if complete else None,
        feasible=all(c <= 0 for c in cons.values()) if complete and cons else None,
        worker=t.user_attrs.get("worker"),
        retry_of=t.system_attrs.get("failed_trial"),
        error=t.user_attrs.get("error") if t.state == TrialState.FAIL else None,
        surplus=bool(t.user_attrs.get("surplus")),
        traceback=t.user_attrs.get("traceback") if t.state == TrialState.FAIL else None,
    )


def ranked(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    """Complete, feasible trials, best first (ties: the earlier trial)."""
    ok = [r for r in records if r.state == "COMPLETE" and r.feasible is not False]
    return sorted(ok, key=lambda r: (-(r.value or 0.0), r.number))


@dataclass
class SweepOutcome:
    """What a sweep found; :mod:`mmbot.sweep.output` writes it."""

    spec: SweepSpec
    records: list[TrialRecord]
    best: TrialRecord | None
    best_config: Config | None
    holdout: list[dict[str, Any]]
    ran_here: int
    study: Any = None

    @property
    def crashed(self) -> list[TrialRecord]:
        """Failed trials whose backtest raised an unexpected exception (a bug)."""
        return [r for r in self.records if r.traceback is not None]

    @property
    def top(self) -> list[TrialRecord]:
        return ranked(self.records)[: self.spec.top]


def _holdout(spec: SweepSpec, top: Sequence[TrialRecord]) -> list[dict[str, Any]]:
    rows = []
    for r in top:
        cfg = apply_overrides(spec.base, r.params)
        row: dict[str, Any] = {
            "number": r.number,
            "search": {
                "value": r.value,
                "objective_exact": r.objective_exact,
                "metrics": r.metrics,
            },
        }
        try:
            m = evaluate(cfg, spec.holdout, spec.duration_s, spec.symbols)
            value, exact = spec.objective.score(m)
        except TrialError as e:
            row["holdout"] = {"error": str(e)}
        else:
            row["holdout"] = {"value": value, "objective_exact": exact, "metrics": m.to_dict()}
        rows.append(row)
    return rows


def collect(spec: SweepSpec, study: Any, ran_here: int) -> SweepOutcome:
    """Read every trial back, pick the best, and re-run the top ones on the holdout data."""
    records = [_record(t) for t in study.get_trials(deepcopy=False)]
    order = ranked(records)
    best = order[0] if order else None
    best_cfg = apply_overrides(spec.base, best.params) if best is not None else None
    holdout = _holdout(spec, order[: spec.top]) if spec.holdout else []
    return SweepOutcome(spec, records, best, best_cfg, holdout, ran_here, study)


def run_sweep(
    spec: SweepSpec, *, progress: Callable[[Counts, TrialRecord | None], None] | None = None
) -> SweepOutcome:
    """Run (or join) the sweep and return its outcome; nothing is written here.

    With ``spec.jobs == 1`` the trials run in this process; otherwise ``jobs`` worker
    processes run them while this process reports progress from the storage.

    Raises
    ------
    SweepError
        For bad input found before the first trial, or a worker that failed.
    """
    if spec.storage_url is None:
        spec.out_dir.mkdir(parents=True, exist_ok=True)  # the study file lives there
    study = open_study(spec)  # also refuses a mismatched study before any worker starts

    def report() -> None:
        if progress is not None:
            records = [_record(t) for t in study.get_trials(deepcopy=False)]
            order = ranked(records)
            progress(count_trials(study), order[0] if order else None)

    if spec.jobs == 1:
        ran = run_worker(spec, study=study, on_trial=lambda _s: report())
    else:
        ctx = multiprocessing.get_context("spawn")  # forked optuna/SQLAlchemy state is unsafe
        procs = [ctx.Process(target=_child, args=(spec, i), daemon=True) for i in range(spec.jobs)]
        for p in procs:
            p.start()
        last = None
        try:
            while any(p.is_alive() for p in procs):
                counts = count_trials(study)
                if counts != last:
                    last = counts
                    report()
                multiprocessing.connection.wait(
                    [p.sentinel for p in procs if p.is_alive()], timeout=0.5
                )
        finally:
            for p in procs:
                if p.is_alive():
                    p.terminate()
                p.join()
        bad = [(i, p.exitcode) for i, p in enumerate(procs) if p.exitcode != 0]
        if bad:
            raise SweepError(
                "worker(s) failed: " + ", ".join(f"#{i} exit status {code}" for i, code in bad)
            )
        mine = {f"{socket.gethostname()}:{p.pid}" for p in procs}
        ran = sum(
            1
            for t in study.get_trials(deepcopy=False)
            if t.user_attrs.get("worker") in mine and "surplus" not in t.user_attrs
        )
        report()
    return collect(spec, study, ran)
