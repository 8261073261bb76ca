"""Config: defaults, round trip, unknown keys and bad types named by dotted key, secrets."""

import dataclasses
import os
import pickle
from decimal import Decimal
from pathlib import Path

import pytest

from mmbot.build import build_runners
from mmbot.config import (
    Config,
    ConfigError,
    RunConfig,
    Secrets,
    SimConfig,
    StrategyConfig,
    dumps_toml,
    load_config,
    load_secrets,
    parse_config,
)
from mmbot.instrument import Instrument
from mmbot.live import chosen_symbols
from mmbot.sim.engine import MatchingEngine
from mmbot.venue.sim import SimVenue

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mmbot.toml"


def write(tmp_path, text):
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_default_toml_matches_dataclass_defaults():
    assert load_config() == Config()


def test_example_config_loads():
    cfg = load_config(EXAMPLE)
    assert cfg.strategy.model == "glft" and cfg.strategy.levels == 3
    assert cfg.sim.maker_fee_rate == Decimal("0.0002")  # regular tier, not an assumed rebate
    assert cfg.strategy.min_spread_bps == "auto"
    assert cfg.risk.flatten_on_kill is True
    assert cfg.orders.place_per_s == 10  # untouched keys keep their defaults


def test_round_trip_through_toml(tmp_path):
    cfg = load_config(EXAMPLE)
    assert load_config(write(tmp_path, dumps_toml(cfg))) == cfg
    assert load_config(write(tmp_path, dumps_toml(Config()))) == Config()


def test_partial_file_keeps_defaults(tmp_path):
    cfg = load_config(
        write(tmp_path, "[strategy]\nlevels = 4\n[strategy.fixed]\nhalf_spread_bps = 3\n")
    )
    assert cfg.strategy.levels == 4
    assert cfg.strategy.fixed.half_spread_bps == 3.0  # int accepted for a float key
    assert cfg.venue == Config().venue


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[strategy]\nlevles = 2\n", "unknown config key 'strategy.levles'"),
        (
            "[strategy.glft]\ngama_per_tick = 1.0\n",
            "unknown config key 'strategy.glft.gama_per_tick'",
        ),
        ("[strategie]\nlevels = 2\n", "unknown config key 'strategie'"),
        ('[strategy]\nlevels = "2"\n', "strategy.levels: expected an integer, got str '2'"),
        ("[strategy]\nlevels = 2.0\n", "strategy.levels: expected an integer, got float"),
        ("[risk]\nflatten_on_kill = 1\n", "risk.flatten_on_kill: expected bool, got int"),
        ("[risk]\nmax_position_qty = 0.05\n", "risk.max_position_qty: expected str.*quote decimal"),
        ('[venue]\nkind = "live"\n', "venue.kind: expected one of 'sim' | 'testnet' | 'mainnet'"),
        ("[strategy]\nfixed = 3\n", "strategy.fixed: expected a table"),
        ("venue = 3\n", "venue: expected a table"),
        ("[strategy]\nlevels = 0\n", "strategy.levels: must be > 0, got 0"),
        ('[strategy]\norder_qty = "abc"\n', "strategy.order_qty: must be a decimal"),
        ('[strategy]\norder_qty = "0"\n', "strategy.order_qty: must be a positive decimal"),
        ("[strategy.skew]\nsize_skew = 1.5\n", "strategy.skew.size_skew: must be in \\[0, 1\\]"),
        (
            "[strategy.fixed]\nhalf_spread_bps = nan\n",
            "strategy.fixed.half_spread_bps: must be finite",
        ),
        ('[sim]\nmin_notional_quote = "-1"\n', "sim.min_notional_quote: must be >= 0"),
        ("[run]\nduration_s = 0\n", "run.duration_s: must be > 0"),
        (
            "[strategy]\nmin_spread_bps = true\n",
            "strategy.min_spread_bps: expected a number or 'auto', got bool",
        ),
    ],
)
def test_bad_files_name_the_dotted_key(tmp_path, text, match):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError, match=match) as ei:
        load_config(p)
    assert str(ei.value).startswith(str(p))


@pytest.mark.parametrize("key", ["api_key", "api_secret", "BYBIT_API_SECRET"])
def test_secrets_in_the_file_are_refused_with_a_pointer_to_env(tmp_path, key):
    with pytest.raises(ConfigError, match=f"venue.{key}: secrets are not read from the config"):
        load_config(write(tmp_path, f'[venue]\n{key} = "abc"\n'))


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(write(tmp_path, "[venue\n"))
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.toml")


def test_parse_config_from_mapping():
    assert parse_config({"run": {"duration_s": 60}}).run.duration_s == 60.0


def test_sections_are_frozen():
    cfg = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.strategy.levels = 3  # type: ignore[misc]


def test_direct_construction_is_validated_too():
    with pytest.raises(ConfigError, match="strategy.level_spacing_ticks: must be > 0"):
        StrategyConfig(level_spacing_ticks=0)


def test_sim_fee_rates_and_instrument():
    sim = SimConfig(maker_fee_bps=-0.25, taker_fee_bps=5.5)
    assert sim.maker_fee_rate == Decimal("-0.000025") and sim.taker_fee_rate == Decimal("0.00055")
    assert sim.instrument("BTCUSDT") == Instrument(
        "BTCUSDT", "linear", "0.1", "0.001", 1, 1_190_000, Decimal("5")
    )


def test_run_db_file_default():
    assert RunConfig(out_dir="o").db_file == Path("o") / "mmbot.sqlite"
    assert RunConfig(db_path="x.db").db_file == Path("x.db")


def test_secrets_from_env_win_over_dotenv_and_never_print(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("BYBIT_API_KEY=filekey\nBYBIT_API_SECRET=filesecret\n")
    s = load_secrets(env_file, environ={})
    assert (s.api_key, s.api_secret) == ("filekey", "filesecret")
    s = load_secrets(env_file, environ={"BYBIT_API_KEY": "envkey"})
    assert (s.api_key, s.api_secret) == ("envkey", "filesecret")
    for text in (repr(s), str(s), f"{s}", repr([s])):
        assert "envkey" not in text and "filesecret" not in text
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(s)


def test_missing_secrets(tmp_path):
    assert load_secrets(tmp_path / "none.env", environ={}) is None
    with pytest.raises(ConfigError, match="missing BYBIT_API_SECRET") as ei:
        load_secrets(None, environ={"BYBIT_API_KEY": "sekrit-key"}, required=True)
    assert "sekrit-key" not in str(ei.value)
    with pytest.raises(ConfigError, match="both be non-empty"):
        Secrets("", "x")


def test_dotenv_file_does_not_leak_into_os_environ(tmp_path, monkeypatch):
    monkeypatch.delenv("BYBIT_API_KEY", raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("BYBIT_API_KEY=filekey\nBYBIT_API_SECRET=filesecret\n")
    load_secrets(env_file)
    assert "BYBIT_API_KEY" not in os.environ


# ---------------------------------------------------------------- several symbols
MULTI = """
[venue]
symbols = ["BTCUSDT", "ETHUSDT"]
[risk]
max_total_notional_quote = "8000"
[symbols.ETHUSDT.risk]
max_position_qty = "0.5"
[symbols.ETHUSDT.strategy]
order_qty = "0.01"
[symbols.ETHUSDT.strategy.fixed]
half_spread_bps = 5
"""


def test_symbols_and_per_symbol_overrides(tmp_path):
    cfg = load_config(write(tmp_path, MULTI))
    assert cfg.venue.symbol_list == ("BTCUSDT", "ETHUSDT")
    assert cfg.venue.symbol == "BTCUSDT"  # the first, for code that reads one symbol
    eth, btc = cfg.for_symbol("ETHUSDT"), cfg.for_symbol("BTCUSDT")
    assert eth.risk.max_position_qty == "0.5" and btc.risk.max_position_qty == "0.05"
    assert eth.strategy.order_qty == "0.01" and eth.strategy.fixed.half_spread_bps == 5.0
    assert eth.strategy.levels == btc.strategy.levels == 1  # merged over the defaults
    assert eth.venue.symbol == "ETHUSDT"
    assert cfg.risk.account_caps() == (Decimal("8000"), Decimal("50"))  # drawdown "auto"
    assert cfg.symbol_key("ETHUSDT", "risk.max_position_qty") == (
        "symbols.ETHUSDT.risk.max_position_qty"
    )
    assert cfg.symbol_key("ETHUSDT", "risk.max_notional_quote") == "risk.max_notional_quote"
    assert load_config(write(tmp_path, dumps_toml(cfg))) == cfg  # round trip


def test_one_symbol_config_is_unchanged():
    cfg = Config()
    assert cfg.venue.symbol_list == ("BTCUSDT",) and cfg.symbols == {}
    assert cfg.risk.account_caps() == (Decimal("5000"), Decimal("50"))  # "auto"
    assert not cfg.risk.account_caps_explicit


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[venue]\nsymbols = ["BTCUSDT"]\n[symbols.BTCUSDT.risk]\nmax_pos = "1"',
            "unknown config key 'symbols.BTCUSDT.risk.max_pos'",
        ),
        (
            '[venue]\nsymbols = ["BTCUSDT"]\n[symbols.BTCUSDT.strategy.fixed]\nspread = 1',
            "unknown config key 'symbols.BTCUSDT.strategy.fixed.spread'",
        ),
        (
            '[venue]\nsymbols = ["BTCUSDT"]\n[symbols.BTCUSDT.orders]\nplace_per_s = 1',
            "unknown config key 'symbols.BTCUSDT.orders'",
        ),
        (
            '[venue]\nsymbols = ["BTCUSDT"]\n[symbols.BTCUSDT.risk]\nmax_position_qty = "-1"',
            "symbols.BTCUSDT.risk.max_position_qty: must be a positive decimal",
        ),
        (
            '[venue]\nsymbols = ["BTCUSDT"]\n[symbols.BTCUSDT.strategy]\nlevels = 0',
            "symbols.BTCUSDT.strategy.levels: must be > 0",
        ),
        (
            '[venue]\nsymbols = ["A"]\n[symbols.A.risk]\nmax_total_notional_quote = "1"',
            "symbols.A.risk.max_total_notional_quote: an account cap",
        ),
        (
            '[venue]\nsymbol = "SOLUSDT"\nsymbols = ["BTCUSDT", "ETHUSDT"]',
            "venue.symbol: must be one of venue.symbols",
        ),
        ('[venue]\nsymbols = ["BTCUSDT", "BTCUSDT"]', "venue.symbols: must not repeat"),
        ('[venue]\nsymbols = ["BTCUSDT", ""]', "venue.symbols: every symbol must be"),
        ('[venue]\nsymbols = "BTCUSDT"', "venue.symbols: expected a list"),
        ('[venue]\nsymbols = ["BTCUSDT", 1]', "venue.symbols[1]: expected str"),
        ('[risk]\nmax_total_notional_quote = "0"', "risk.max_total_notional_quote: must be a"),
        ('[risk]\nmax_total_drawdown_quote = "lots"', "risk.max_total_drawdown_quote: must be a"),
        ("[symbols]\nBTCUSDT = 1", "symbols.BTCUSDT: expected a table"),
    ],
)
def test_multi_symbol_config_errors_name_the_dotted_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_cli_symbols_are_checked_against_the_override_tables(tmp_path):
    stray = load_config(write(tmp_path, '[symbols.XRPUSDT.risk]\nmax_position_qty = "1"'))
    with pytest.raises(ConfigError, match=r"symbols.XRPUSDT: not a quoted symbol"):
        chosen_symbols(stray)  # quoting BTCUSDT alone: the table would do nothing
    assert chosen_symbols(stray, symbols="BTCUSDT,XRPUSDT") == ["BTCUSDT", "XRPUSDT"]
    cfg = load_config(write(tmp_path, MULTI))
    assert chosen_symbols(cfg) == ["BTCUSDT", "ETHUSDT"]
    assert chosen_symbols(cfg, symbols="ETHUSDT,BTCUSDT") == ["ETHUSDT", "BTCUSDT"]
    with pytest.raises(ConfigError, match="symbols.ETHUSDT: not a quoted symbol"):
        chosen_symbols(cfg, symbols="BTCUSDT")  # its ETHUSDT table would go unused
    with pytest.raises(ConfigError, match="give one of them"):
        chosen_symbols(cfg, symbol="BTCUSDT", symbols="BTCUSDT")
    with pytest.raises(ConfigError, match="--symbols: expected names"):
        chosen_symbols(cfg, symbols="BTCUSDT,")


def test_per_symbol_risk_is_checked_against_that_symbols_rules(tmp_path):
    cfg = load_config(
        write(tmp_path, MULTI.replace('max_position_qty = "0.5"', 'max_position_qty = "0.005"'))
    )
    # ETHUSDT trades in lots of 0.01: 0.005 is less than one lot
    btc = Instrument("BTCUSDT", "linear", "0.1", "0.001", 1, 10**6, Decimal(5))
    eth = Instrument("ETHUSDT", "linear", "0.01", "0.01", 1, 10**6, Decimal(5))
    venue = SimVenue(MatchingEngine(symbol="BTCUSDT", tick_size="0.1", lot_size="0.001"))
    with pytest.raises(ConfigError) as err:
        build_runners(
            cfg,
            venue=venue,
            instruments={"BTCUSDT": btc, "ETHUSDT": eth},
            fee_rates=dict.fromkeys(("BTCUSDT", "ETHUSDT"), (Decimal(0), Decimal(0))),
            link_prefix="t-",
        )
    assert str(err.value).startswith("symbols.ETHUSDT.risk.max_position_qty: '0.005'")
    assert "ETHUSDT" in str(err.value)
