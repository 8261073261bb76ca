"""A user's own quote model (``strategy.model = "module:Class"``), loaded without a fork."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from support.bot import mmbot_run

from mmbot import cli
from mmbot.config import Config, ConfigError, SimConfig, StrategyConfig, apply_overrides
from mmbot.strategy import MarketView, build_model
from mmbot.sweep import make_spec
from mmbot.sweep.errors import SpaceError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODEL = "my_model:MicropriceSkewModel"
SYM = "BTCUSDT"


@pytest.fixture
def examples_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))


def _config(tmp_path, params="half_spread_bps = 5.0\nskew = 0.5\n", model=MODEL):
    path = tmp_path / "my.toml"
    path.write_text(f'[strategy]\nmodel = "{model}"\n[strategy.params]\n{params}')
    return path


class _Book:
    """Just the reads a model may make, with values chosen by hand."""

    def __init__(self, bid, ask, micro):
        self._bid, self._ask, self._micro = bid, ask, micro

    def best_bid(self):
        return self._bid

    def best_ask(self):
        return self._ask

    def microprice(self):
        return self._micro


@pytest.mark.parametrize(
    "skew, bid, ask",
    [
        # mid 650005, microprice 650008, half spread 5 bps of the mid = 325.0025 ticks
        (0.5, 649681, 650332),  # centre 650006.5: 649681.4975 floored, 650331.5025 ceiled
        (0.0, 649679, 650331),  # centre 650005:   649679.9975 floored, 650330.0025 ceiled
    ],
)
def test_example_model_quotes_around_the_skewed_centre(examples_on_path, skew, bid, ask):
    cfg = apply_overrides(
        Config(),
        {
            "strategy.model": MODEL,
            "strategy.params.half_spread_bps": 5.0,
            "strategy.params.skew": skew,
        },
    )
    model = build_model(cfg)
    view = MarketView(
        book=_Book((650000, 5), (650010, 5), 650008.0),
        position_lots=0,
        now_ms=0,
        instrument=SimConfig().instrument(SYM),
    )
    quotes = model.quotes(view)
    assert [(q.side, q.price_ticks, q.qty_lots) for q in quotes] == [
        ("Buy", bid, 1),
        ("Sell", ask, 1),
    ]


@pytest.mark.parametrize(
    "params, message",
    [
        ("edge_bps = 1.0\n", "strategy.params.edge_bps: unknown parameter"),
        ("skew = 2.0\n", r"strategy.params.skew: must be in \[0, 1\]"),
        ('half_spread_bps = "wide"\n', "strategy.params.half_spread_bps: expected a number"),
    ],
)
def test_invalid_params_stop_the_backtest_with_one_line(
    examples_on_path, tmp_path, capsys, params, message
):
    code = cli.main(
        ["backtest", "--config", str(_config(tmp_path, params)), "--out", str(tmp_path / "out")]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("mmbot backtest: ") and re.search(message, err)
    assert not (tmp_path / "out" / "summary.json").exists()


@pytest.mark.parametrize(
    "model, message",
    [
        ("no_such_module:Model", "cannot import no_such_module"),
        ("my_model:NoSuchClass", "my_model has no NoSuchClass"),
        ("my_model:DEFAULTS", "not a class"),
        ("no_such_entry_point", "unknown model"),
    ],
)
def test_a_model_that_cannot_load_stops_with_one_line(
    examples_on_path, tmp_path, capsys, model, message
):
    code = cli.main(
        ["backtest", "--config", str(_config(tmp_path, "", model)), "--out", str(tmp_path / "out")]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "strategy.model" in err and message in err


def test_a_module_that_raises_on_import_is_one_config_error(tmp_path, monkeypatch):
    (tmp_path / "broken_model.py").write_text("raise RuntimeError('no licence file')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        ConfigError, match="importing broken_model raised RuntimeError: no licence file"
    ):
        build_model(StrategyConfig(model="broken_model:M"))


def test_bundled_models_refuse_plugin_params():
    with pytest.raises(ConfigError, match="strategy.params: only a plugin model"):
        build_model(StrategyConfig(model="fixed", params={"skew": 1.0}))


def test_params_round_trip_through_toml_and_set(examples_on_path, tmp_path):
    from mmbot.config import dumps_toml, load_config  # noqa: PLC0415

    cfg = load_config(_config(tmp_path))
    assert cfg.strategy.params == {"half_spread_bps": 5.0, "skew": 0.5}
    cfg = apply_overrides(cfg, {"strategy.params.skew": 0.25})
    (tmp_path / "back.toml").write_text(dumps_toml(cfg))
    assert load_config(tmp_path / "back.toml") == cfg
    with pytest.raises(ConfigError, match="strategy.params.skew: expected a string, number"):
        apply_overrides(cfg, {"strategy.params.skew": [1, 2]})


def test_sweep_searches_plugin_params_and_the_model_validates_the_bounds(
    examples_on_path, tmp_path
):
    cfg = _config(tmp_path)
    space = tmp_path / "space.toml"
    space.write_text('[space]\n"strategy.params.skew" = { low = 0.0, high = 1.0 }\n')
    spec = make_spec(space=space, trials=2, out_dir=tmp_path / "out", config=cfg)
    assert [p.key for p in spec.space.params] == ["strategy.params.skew"]
    space.write_text('[space]\n"strategy.params.skew" = { low = 0.0, high = 2.0 }\n')
    with pytest.raises(SpaceError, match=r"strategy.params.skew.*= 2.0.*must be in \[0, 1\]"):
        make_spec(space=space, trials=2, out_dir=tmp_path / "out", config=cfg)


def test_example_model_backtests_through_the_cli(examples_on_path, tmp_path, capsys):
    out = tmp_path / "bt"
    code = cli.main(
        [
            "backtest",
            "--config",
            str(_config(tmp_path)),
            "--out",
            str(out),
            "--duration-s",
            "30",
            "--no-chart",
        ]
    )
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["strategy"]["model"] == MODEL
    assert summary["config"]["strategy"]["params"] == {"half_spread_bps": 5.0, "skew": 0.5}
    assert summary["quote_updates"] > 0


@pytest.mark.slow
def test_example_model_runs_live_against_the_simulator(tmp_path, start_sim):
    sim = start_sim(speed=2.0)
    out = tmp_path / "out"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(EXAMPLES), os.environ.get("PYTHONPATH", "")]),
        PYTHONUNBUFFERED="1",
    )
    cmd = mmbot_run(
        sim.http_url,
        "--db",
        "",
        "--config",
        str(_config(tmp_path)),
        "--no-dashboard",
        "--duration",
        "4",
        "--out",
        str(out),
        "--trades",
        str(tmp_path / "fills.csv"),
    )
    # `--duration` ends the run on its own: wait on the process, never a fixed sleep
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=90)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == MODEL
    assert summary["orders_sent"] > 0 and summary["open_orders_at_end"] == 0
    assert sim.open_orders(SYM) == []
    # the run's report carries the same metrics as a backtest's, text and JSON
    assert set(summary["metrics"]) >= {
        "max_drawdown_quote",
        "sharpe_per_minute",
        "fill_ratio",
        "turnover_quote",
    }
    assert "max drawdown" in proc.stdout and "fill ratio" in proc.stdout
    # --trades: one row per fill of this run, header always present
    lines = (tmp_path / "fills.csv").read_text().splitlines()
    assert lines[0].startswith("time,ts_ms,exec_id,side,price,qty,fee,liquidity,level,mid")
    assert len(lines) - 1 == summary["fills_this_run"]


def test_a_config_with_params_stays_hashable():
    a = StrategyConfig(model="m:M", params={"x": 1})
    b = StrategyConfig(model="m:M", params={"x": 2})
    assert hash(Config(strategy=a)) == hash(Config(strategy=a)) and a != b
