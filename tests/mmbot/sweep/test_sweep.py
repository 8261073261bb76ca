"""mmbot sweep: space validation, metrics, a local sweep end to end, bad inputs, and a real
PostgreSQL server shared by worker processes (one of them killed mid-trial)."""

from __future__ import annotations

import heapq
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
from support.waiting import wait_for

from mmbot import cli
from mmbot.backtest import run_backtest
from mmbot.config import ConfigError, apply_overrides, load_config, parse_overrides
from mmbot.recorder import FrameRecorder
from mmbot.sim.protocol import instrument_info
from mmbot.sweep import (
    SpaceError,
    evaluate,
    load_space,
    make_spec,
    mask_url,
)
from mmbot.sweep.metrics import Objective, metrics_from_result
from obcore.synthetic import generate_frames

HERE = Path(__file__).parent
SPACE = """
[space]
"strategy.fixed.half_spread_bps" = { low = 0.2, high = 2.0, log = true }
"strategy.levels" = { low = 1, high = 3 }
"strategy.reference" = { choices = ["mid", "microprice"] }
"""
FAST = ["--duration-s", "10"]


@pytest.fixture
def space(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text(SPACE)
    return path


def recording(
    path: Path, seed: int, seconds: int = 10, symbols: tuple[str, ...] = ("BTCUSDT",)
) -> Path:
    """A synthetic stream saved as a recording with its instrument rules in the header, so
    holdout data differs from the search's; several symbols' streams interleave by time."""
    infos = [instrument_info("linear", s, "0.1", "0.001", "0.001", "1190", "5") for s in symbols]
    recorder = FrameRecorder(str(path), instruments={"category": "linear", "list": infos})
    streams = [
        generate_frames(
            symbol=symbol,
            tick_size="0.1",
            lot_size="0.001",
            depth=50,
            messages=seconds * 50,
            seed=seed + i,
            interval_ms=20,
        )
        for i, symbol in enumerate(symbols)
    ]
    for frame in heapq.merge(*streams, key=lambda f: json.loads(f)["ts"]):
        recorder.write(frame)
    recorder.close()
    return path


# ---------------------------------------------------------------------------- config
def test_set_overrides_parse_like_toml():
    assert parse_overrides(["strategy.levels=3", "sim.data=x.gz", "a.b=0.5", "c= true"]) == {
        "strategy.levels": 3,
        "sim.data": "x.gz",
        "a.b": 0.5,
        "c": True,
    }
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_overrides(["strategy.levels"])


# ---------------------------------------------------------------------------- space
@pytest.mark.parametrize(
    "entry, message",
    [
        ('"strategy.nope" = { low = 1, high = 2 }', "strategy.nope"),
        ('"strategy.levels" = { low = 3, high = 1 }', "bad range"),
        ('"strategy.levels" = { low = 1.5, high = 3.0 }', "expected an integer"),
        ('"strategy.levels" = { low = 0, high = 3 }', "must be > 0"),
        ('"strategy.fixed.half_spread_bps" = { low = 0.0, high = 1.0, log = true }', "log range"),
        ('"strategy.model" = { choices = ["fixed", "martingale"] }', "martingale"),
        ('"strategy.order_qty" = { low = 0.001, high = 0.01 }', "quote decimal amounts"),
        ('"strategy.levels" = { low = 1 }', "needs both low and high"),
        ('"strategy.levels" = { low = 1, high = 3, step = 1 }', "unknown field"),
        ('"strategy.levels" = 3', "expected a table"),
        ('"strategy.fixed" = { choices = [1, 2] }', "expected a table"),
        ('"sim.seed" = { low = 0, high = 9 }', "cannot be searched"),
        ('"strategy.levels" = { choices = [] }', "non-empty"),
    ],
)
def test_bad_space_is_refused_naming_the_key(tmp_path, entry, message):
    path = tmp_path / "space.toml"
    path.write_text(f"[space]\n{entry}\n")
    key = entry.split('"')[1]
    with pytest.raises(SpaceError, match=message) as e:
        make_spec(space=path, trials=2, out_dir=tmp_path / "out")
    assert key in str(e.value) and str(path) in str(e.value)


def test_space_types_follow_the_bounds(space):
    params = {p.key: p for p in load_space(space).params}
    assert params["strategy.levels"].integer
    assert not params["strategy.fixed.half_spread_bps"].integer
    assert params["strategy.reference"].choices == ("mid", "microprice")


# ---------------------------------------------------------------------------- metrics
@dataclass
class _History:
    t_ms: list = field(default_factory=list)
    net_pnl: list = field(default_factory=list)
    position_lots: list = field(default_factory=list)


@dataclass
class _Result:
    summary: dict
    runner: object
    config: object


def test_metrics_per_minute_pnl_drawdown_and_inventory():
    # samples every 30 s: minute marks at 60 s and 120 s close on the samples taken there
    h = _History(
        t_ms=[0, 30_000, 60_000, 90_000, 120_000, 150_000],
        net_pnl=[0.0, 1.5, 1.0, -0.5, 2.25, 2.0],
        position_lots=[0, 2, -4, 0, 2, 4],
    )
    summary = {"net_pnl": "1.75", "fills": 7, "max_inventory_qty": "0.004"}
    m = metrics_from_result(_Result(summary, type("R", (), {"history": h})(), load_config()))
    assert m.minute_pnl == (Decimal("1"), Decimal("1.25"))
    assert m.max_drawdown_quote == Decimal("2")  # peak 1.5, trough -0.5
    assert m.mean_abs_inventory_qty == Decimal("0.002")  # 12 lots over 6 samples, lot 0.001
    assert m.net_pnl == Decimal("1.75") and m.max_inventory_qty == Decimal("0.004")
    assert m.sharpe() == pytest.approx(2.25 / 2 / (0.25 / 2**0.5))
    charged = Objective("inventory", inventory_charge=Decimal("250")).score(m)
    assert charged == (pytest.approx(1.25), "1.25")
    limits = Objective(max_inventory_qty=Decimal("0.003"), max_drawdown_quote=Decimal("5"))
    assert limits.constraints(m) == {
        "max_inventory_qty": pytest.approx(0.001),
        "max_drawdown_quote": pytest.approx(-3.0),
    }


# ---------------------------------------------------------------------------- local sweep
def _sweep(*args: str) -> int:
    return cli.main(["sweep", *args])


def test_a_two_symbol_recording_is_swept_on_the_configured_symbol(tmp_path, space):
    # a backtest replays every symbol of a recording; a sweep tunes one symbol's figures
    rec = str(recording(tmp_path / "two.jsonl", seed=3, symbols=("BTCUSDT", "ETHUSDT")))
    out = tmp_path / "sw"
    args = ["--space", str(space), "--trials", "2", "--data", rec, "--out", str(out)]
    assert _sweep(*args, "--set", "venue.symbol=ETHUSDT") == 0
    s = json.loads((out / "sweep.json").read_text())
    assert s["counts"] == {"COMPLETE": 2}
    for t in s["trials"]:
        cfg = apply_overrides(load_config(), {**t["params"], "sim.data": rec})
        alone = run_backtest(cfg, symbols=["ETHUSDT"])
        assert t["metrics"] == metrics_from_result(alone).to_dict()


def test_a_sweep_of_several_symbols_at_once_is_refused(tmp_path, space, capsys):
    args = ["--space", str(space), "--trials", "1", *FAST, "--out", str(tmp_path / "sw")]
    assert _sweep(*args, "--set", 'venue.symbols=["BTCUSDT","ETHUSDT"]') == 2
    assert "venue.symbols: the sweep tunes one symbol" in capsys.readouterr().err
    rec = str(recording(tmp_path / "two.jsonl", seed=3, symbols=("BTCUSDT", "ETHUSDT")))
    assert _sweep(*args, "--data", rec, "--set", "venue.symbol=SOLUSDT") == 2
    assert "SOLUSDT" in capsys.readouterr().err


def test_local_sweep_writes_every_output_and_repeats_exactly(tmp_path, space, capsys):
    hold = recording(tmp_path / "hold.jsonl.gz", seed=7)
    args = ["--space", str(space), "--trials", "4", *FAST, "--holdout", str(hold), "--top", "2"]
    assert _sweep(*args, "--out", str(tmp_path / "a")) == 0
    printed = capsys.readouterr()
    assert "4/4 trials" in printed.err.splitlines()[-1]
    assert "holdout net_pnl" in printed.out  # the table shows both numbers side by side
    out = tmp_path / "a"
    s = json.loads((out / "sweep.json").read_text())
    assert s["counts"] == {"COMPLETE": 4} and s["ran_here"] == 4
    assert s["storage"].startswith("sqlite:///") and s["storage"].endswith("study.sqlite3")
    assert s["study"] == "mmbot-sweep" and s["objective"]["name"] == "net_pnl"
    for t in s["trials"]:
        assert set(t["params"]) == set(s["space"])
        assert t["objective_exact"] == t["metrics"]["net_pnl"]
        assert t["value"] == float(Decimal(t["objective_exact"]))  # float only for optuna
    best = max(s["trials"], key=lambda t: (t["value"], -t["number"]))
    assert s["best"]["number"] == best["number"]
    cfg = load_config(out / "best.toml")  # ready for `mmbot run --config`
    assert cfg.strategy.levels == best["params"]["strategy.levels"]
    assert cfg.strategy.reference == best["params"]["strategy.reference"]
    assert cfg.strategy.fixed.half_spread_bps == best["params"]["strategy.fixed.half_spread_bps"]
    assert [row["number"] for row in s["holdout"]] == [
        t["number"] for t in sorted(s["trials"], key=lambda t: (-t["value"], t["number"]))[:2]
    ]
    for row in s["holdout"]:
        params = next(t["params"] for t in s["trials"] if t["number"] == row["number"])
        # the holdout figures are a backtest of that trial's config on the holdout file
        again = evaluate(apply_overrides(load_config(), params), [str(hold)], 10.0)
        assert row["holdout"]["metrics"] == again.to_dict()
        assert row["holdout"]["objective_exact"] == again.to_dict()["net_pnl"]
    for png in ("optimization_history.png", "param_importances.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the same command into another directory: the same trials, the same figures
    assert _sweep(*args, "--out", str(tmp_path / "b")) == 0
    s2 = json.loads((tmp_path / "b" / "sweep.json").read_text())
    strip = [{k: t[k] for k in ("params", "value", "metrics")} for t in s["trials"]]
    assert strip == [{k: t[k] for k in ("params", "value", "metrics")} for t in s2["trials"]]
    # run again on the finished study: nothing to do, same answer
    capsys.readouterr()
    assert _sweep(*args, "--out", str(out), "--no-plots") == 0
    assert "ran 0 trial(s)" in capsys.readouterr().out
    assert json.loads((out / "sweep.json").read_text())["best"] == s["best"]
    # the same study with another space is refused before any trial
    other = tmp_path / "other.toml"
    other.write_text('[space]\n"strategy.levels" = { low = 1, high = 2 }\n')
    assert (
        _sweep(
            "--space", str(other), "--trials", "4", *FAST, "--holdout", str(hold), "--out", str(out)
        )
        == 2
    )
    assert "differs in: space" in capsys.readouterr().err


def test_constraints_and_inventory_objective(tmp_path, space):
    out = tmp_path / "c"
    assert (
        _sweep(
            "--space",
            str(space),
            "--trials",
            "4",
            *FAST,
            "--out",
            str(out),
            "--objective",
            "inventory",
            "--inventory-charge",
            "100",
            "--max-inventory",
            "0.002",
            "--max-drawdown",
            "0.05",
        )
        == 0
    )
    s = json.loads((out / "sweep.json").read_text())
    assert s["objective"]["constraints"] == {
        "max_inventory_qty": "0.002",
        "max_drawdown_quote": "0.05",
    }
    for t in s["trials"]:
        m = t["metrics"]
        assert t["feasible"] == (
            Decimal(m["max_inventory_qty"]) <= Decimal("0.002")
            and Decimal(m["max_drawdown_quote"]) <= Decimal("0.05")
        )
        charge = Decimal("100") * Decimal(m["mean_abs_inventory_qty"])
        assert Decimal(t["objective_exact"]) == Decimal(m["net_pnl"]) - charge
    feasible = [t for t in s["trials"] if t["feasible"]]
    if feasible:
        assert (
            s["best"]["number"] == max(feasible, key=lambda t: (t["value"], -t["number"]))["number"]
        )
    else:
        assert s["best"] is None and not (out / "best.toml").exists()


@pytest.mark.slow
def test_local_jobs_share_the_study_file(tmp_path, space, capsys):
    out = tmp_path / "j"
    assert (
        _sweep(
            "--space",
            str(space),
            "--trials",
            "6",
            *FAST,
            "--out",
            str(out),
            "--jobs",
            "2",
            "--no-plots",
        )
        == 0
    )
    assert "ran 6 trial(s)" in capsys.readouterr().out
    s = json.loads((out / "sweep.json").read_text())
    # exactly the total; a worker that lost the race for the last trial stood down (PRUNED)
    assert s["counts"]["COMPLETE"] == 6 and set(s["counts"]) <= {"COMPLETE", "PRUNED"}
    assert all(t["surplus"] for t in s["trials"] if t["state"] == "PRUNED")
    pids = {t["worker"].rsplit(":", 1)[1] for t in s["trials"]}
    # worker processes ran the trials (how they split them depends on their start-up times)
    assert 1 <= len(pids) <= 2 and str(os.getpid()) not in pids


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--space", "{missing}"], "cannot read space file"),
        (["--space", "{bad_toml}"], "invalid TOML"),
        (["--storage", "redis://127.0.0.1/0"], "unsupported storage URL"),
        (["--storage", "postgresql://mm:hunter2@127.0.0.1:notaport/db"], "bad storage URL"),
        (["--storage", "postgresql://mm:hunter2@127.0.0.1:{port}/db"], "cannot open storage"),
        (["--holdout", "{missing}"], "--holdout"),
        (["--objective", "inventory"], "--inventory-charge"),
        (["--objective", "sharpe"], "2 minutes"),
        (["--set", "strategy.levels=zero"], "strategy.levels"),
        (["--trials", "0"], "--trials"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, space, capsys, args, message):
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("[space\n")
    subst = {"missing": tmp_path / "nope.toml", "bad_toml": bad_toml, "port": _free_port()}
    args = [a.format(**subst) for a in args]
    base = {"--space": str(space), "--trials": "2", "--out": str(tmp_path / "o")}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    argv = [x for kv in base.items() for x in kv] + FAST
    assert _sweep(*argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mmbot sweep: ") and message in err
    assert "hunter2" not in err and "Traceback" not in err


def test_mask_url():
    assert mask_url("postgresql://mm:s3cr:et@db:5432/x") == "postgresql://mm:***@db:5432/x"
    assert mask_url("postgresql://mm@db/x") == "postgresql://mm@db/x"


# ---------------------------------------------------------------------------- PostgreSQL
def _pg_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True)
    bindir = Path(out.stdout.strip())
    return bindir if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists() else None


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL on 127.0.0.1 with trust auth; yields a URL maker per database."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (pg_config --bindir has no initdb)")
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="mmbot-pg-"))
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres system user
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    port = _free_port()
    data = root / "data"
    subprocess.run(
        [
            *as_user,
            bindir / "initdb",
            "-D",
            data,
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *as_user,
            bindir / "pg_ctl",
            "-D",
            data,
            "-l",
            root / "log",
            "-w",
            "-o",
            f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    import psycopg  # noqa: PLC0415

    from mmbot.sweep.storage import open_storage  # noqa: PLC0415

    def database(name: str, template: str = "template1") -> str:
        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return f"postgresql://postgres@127.0.0.1:{port}/{name}"

    # optuna's tables take seconds to create; make them once and copy them per test
    open_storage(database("optuna"), heartbeat_s=1).engine.dispose()

    try:
        yield lambda name: database(name, "optuna")
    finally:
        subprocess.run(
            [*as_user, bindir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop"],
            check=True,
            capture_output=True,
        )
        shutil.rmtree(root)


def _worker(*args: str, script: list[str] | None = None) -> subprocess.Popen:
    cmd = [sys.executable, *(script or ["-m", "mmbot", "sweep"]), *args]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HERE
    )


def _ran(stdout: str) -> int:
    line = next(x for x in stdout.splitlines() if x.startswith("this process ran"))
    return int(line.split()[3])


def _trials(url: str, study: str):
    import optuna  # noqa: PLC0415

    return optuna.load_study(study_name=study, storage=url).get_trials(deepcopy=False)


@pytest.mark.slow
def test_two_workers_share_one_postgres_study(tmp_path, space, postgres):
    url = postgres("two")
    common = [
        "--space",
        str(space),
        "--trials",
        "8",
        *FAST,
        "--storage",
        url,
        "--study",
        "shared",
        "--heartbeat-s",
        "1",
        "--no-plots",
    ]
    procs = [_worker(*common, "--out", str(tmp_path / f"w{i}")) for i in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    ran = [_ran(out) for out, _ in results]
    trials = _trials(url, "shared")
    states = [t.state.name for t in trials]
    # --trials is the study's total; a worker that lost the race for the last trial stood down
    assert states.count("COMPLETE") == 8 and set(states) <= {"COMPLETE", "PRUNED"}
    assert all(t.user_attrs.get("surplus") for t in trials if t.state.name == "PRUNED")
    assert sum(ran) == 8 and min(ran) > 0, ran
    by_worker = {t.user_attrs["worker"] for t in trials}
    assert {w.rsplit(":", 1)[1] for w in by_worker} == {str(p.pid) for p in procs}
    a, b = (json.loads((tmp_path / f"w{i}" / "sweep.json").read_text()) for i in range(2))
    assert a["trials"] == b["trials"] and a["best"] == b["best"]
    assert a["storage"] == url and a["study"] == "shared"
    print(
        f"two workers: {ran} trials, study total {states.count('COMPLETE')} complete, "
        f"{states.count('PRUNED')} surplus, best #{a['best']['number']} "
        f"net_pnl {a['best']['objective_exact']}"
    )


@pytest.mark.slow
def test_killed_worker_trial_is_retried(tmp_path, space, postgres):
    url = postgres("kill")
    common = [
        "--space",
        str(space),
        "--trials",
        "4",
        *FAST,
        "--storage",
        url,
        "--study",
        "kill",
        "--heartbeat-s",
        "1",
        "--no-plots",
    ]
    victim = _worker(
        *common, "--out", str(tmp_path / "victim"), script=[str(HERE / "sweep_victim.py")]
    )

    def victim_running():
        if victim.poll() is not None:
            pytest.fail(f"victim exited early: {victim.communicate()[1]}")
        try:
            trials = _trials(url, "kill")
        except KeyError:  # its study is not created yet
            return None
        return next(
            (
                t
                for t in trials
                if t.state.name == "RUNNING"
                and t.user_attrs.get("worker", "").endswith(f":{victim.pid}")
            ),
            None,
        )

    assert wait_for(victim_running, timeout_s=60, step_s=0.1)
    killed = victim_running()
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    survivor = _worker(*common, "--out", str(tmp_path / "survivor"))
    out, err = survivor.communicate(timeout=120)
    assert survivor.returncode == 0, err
    trials = {t.number: t for t in _trials(url, "kill")}
    assert trials[killed.number].state.name == "FAIL"  # failed by the survivor, once stale
    retries = [t for t in trials.values() if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retries) == 1
    retry = retries[0]
    assert retry.state.name == "COMPLETE" and retry.params == killed.params
    assert retry.user_attrs["worker"].endswith(f":{survivor.pid}")
    complete = [t for t in trials.values() if t.state.name == "COMPLETE"]
    assert len(complete) == 4 and _ran(out) == 4
    s = json.loads((tmp_path / "survivor" / "sweep.json").read_text())
    assert s["counts"] == {"COMPLETE": 4, "FAIL": 1}
    assert [t["retry_of"] for t in s["trials"] if t["retry_of"] is not None] == [killed.number]
    print(
        f"killed trial #{killed.number} retried as #{retry.number}, study total "
        f"{len(complete)} complete"
    )


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # ask/tell by hand, on purpose
def test_a_trial_beyond_the_total_stands_down(tmp_path, space):
    """Two workers that both saw N-1 trials may both create one; the later one is surplus."""
    import optuna  # noqa: PLC0415

    from mmbot.sweep.study import _Objective, count_trials, open_study  # noqa: PLC0415

    spec = make_spec(space=space, trials=1, out_dir=tmp_path, duration_s=5)
    study = open_study(spec)
    first, second = study.ask(), study.ask()  # as two racing workers would
    with pytest.raises(optuna.TrialPruned, match="surplus"):
        _Objective(spec)(second)
    study.tell(second, state=optuna.trial.TrialState.PRUNED)
    study.tell(first, _Objective(spec)(first))
    assert count_trials(study).claimed == 1


def test_a_crashing_backtest_is_kept_and_fails_the_command(tmp_path, space, capsys, monkeypatch):
    import mmbot.sweep.study  # noqa: PLC0415

    def crash(cfg, data, duration_s, symbols):
        raise ZeroDivisionError("engine bug")

    monkeypatch.setattr(mmbot.sweep.study, "evaluate", crash)
    assert _sweep("--space", str(space), "--trials", "2", *FAST, "--out", str(tmp_path)) == 1
    err = capsys.readouterr().err.splitlines()[-1]
    assert "#0, #1 crashed" in err and "ZeroDivisionError: engine bug" in err
    s = json.loads((tmp_path / "sweep.json").read_text())
    assert s["counts"] == {"FAIL": 2} and s["best"] is None
    assert all("raise ZeroDivisionError" in t["traceback"] for t in s["trials"])
