"""Quote models and the ladder rules, against hand-computed numbers.

Books here are tiny stand-ins exposing the three reads models use (best_bid, best_ask,
microprice in ticks); one test at the end runs a model on a real obcore.Book.
"""

import dataclasses
import math
import random
from decimal import Decimal

import pytest

import obcore
from mmbot.config import (
    AvellanedaConfig,
    Config,
    ConfigError,
    FixedConfig,
    GlftConfig,
    SkewConfig,
    StrategyConfig,
)
from mmbot.instrument import Instrument
from mmbot.strategy import (
    MODELS,
    AvellanedaStoikovModel,
    FixedSpreadModel,
    GlftModel,
    InventorySkewModel,
    MarketView,
    Quote,
    QuoteModel,
    base,
    build_ladder,
    build_model,
)
from mmbot.strategy.avellaneda import as_quotes
from mmbot.strategy.glft import EwmaVolatility, IntensityEstimator, glft_coefficients

# tick 0.1, lot 0.001, no min notional: sizes are exactly what the model asks for
INS = Instrument("BTCUSDT", "linear", "0.1", "0.001", 1, 1000, Decimal("0"))


class Book:
    def __init__(self, bid=(10000, 5), ask=(10004, 5), micro=None):
        self.bid, self.ask, self.micro = bid, ask, micro

    def best_bid(self):
        return self.bid

    def best_ask(self):
        return self.ask

    def microprice(self):
        if self.bid is None or self.ask is None:
            return None
        return self.micro if self.micro is not None else (self.bid[0] + self.ask[0]) / 2


def view(book=None, position_lots=0, now_ms=0, ins=INS, **kw):
    return MarketView(book or Book(), position_lots, now_ms, ins, **kw)


def strat(**kw):
    kw.setdefault("order_qty", "0.002")
    # these tests check the models' own prices; the fee floor has its own tests below
    kw.setdefault("min_spread_bps", 0.0)
    return StrategyConfig(**kw)


def prices(quotes, side):
    return [q.price_ticks for q in quotes if q.side == side]


def sizes(quotes, side):
    return [q.qty_lots for q in quotes if q.side == side]


# ---------------------------------------------------------------------------- fixed
def test_fixed_spread_around_mid():
    # mid 10002, 5 bps -> half 5.001 ticks: bid 9996.999 -> 9996, ask 10007.001 -> 10008
    m = FixedSpreadModel(strat(fixed=FixedConfig(half_spread_bps=5.0)))
    assert m.quotes(view()) == [Quote("Buy", 9996, 2, 0), Quote("Sell", 10008, 2, 0)]


def test_fixed_spread_around_microprice():
    # microprice 10003, half 5.0015: bid 9997.9985 -> 9997, ask 10008.0015 -> 10009
    m = FixedSpreadModel(strat(reference="microprice", fixed=FixedConfig(half_spread_bps=5.0)))
    q = m.quotes(view(Book(micro=10003.0)))
    assert (prices(q, "Buy"), prices(q, "Sell")) == ([9997], [10009])


def test_no_quotes_without_a_two_sided_book():
    m = FixedSpreadModel(strat())
    assert m.quotes(view(Book(bid=None))) == []
    assert m.quotes(view(Book(ask=None))) == []


def test_ladder_levels_and_spacing():
    m = FixedSpreadModel(
        strat(levels=3, level_spacing_ticks=2, fixed=FixedConfig(half_spread_bps=5.0))
    )
    q = m.quotes(view())
    assert prices(q, "Buy") == [9996, 9994, 9992]
    assert prices(q, "Sell") == [10008, 10010, 10012]
    assert [x.level for x in q] == [0, 1, 2, 0, 1, 2]


# ---------------------------------------------------------------------------- ladder rules
def test_min_spread_widens_symmetrically():
    # zero model spread, min 10 bps of 10002 = 10.002 ticks around 10002
    m = FixedSpreadModel(strat(min_spread_bps=10.0, fixed=FixedConfig(half_spread_bps=0.0)))
    q = m.quotes(view())
    assert (prices(q, "Buy"), prices(q, "Sell")) == ([9996], [10008])


def test_spread_is_never_below_one_tick():
    # zero spread, no min: 1 tick gap around 10002 -> 10001.5 / 10002.5 -> 10001 / 10003
    m = FixedSpreadModel(strat(fixed=FixedConfig(half_spread_bps=0.0)))
    q = m.quotes(view())
    assert (prices(q, "Buy"), prices(q, "Sell")) == ([10001], [10003])


def test_post_only_clamp_never_crosses_or_touches():
    v = view()  # best bid 10000, best ask 10004
    q = build_ladder(v, 10010.0, 10020.0, 1, 1)
    assert prices(q, "Buy") == [10003]  # strictly below the best ask
    q = build_ladder(v, 9980.0, 9990.0, 1, 1)
    assert prices(q, "Sell") == [10001]  # strictly above the best bid
    q = build_ladder(v, 10004.0, 10000.0 + 10, 1, 1)
    assert prices(q, "Buy") == [10003]  # touching the ask is clamped too


def test_clamp_keeps_ladder_spacing():
    q = build_ladder(view(), 10010.0, 10020.0, 1, 1, levels=3, level_spacing_ticks=5)
    assert prices(q, "Buy") == [10003, 9998, 9993]


def test_float_noise_does_not_cost_a_tick():
    q = build_ladder(view(), 9996.9999999999, 10008.0000000001, 1, 1)
    assert (prices(q, "Buy"), prices(q, "Sell")) == ([9997], [10008])


def test_size_capped_at_instrument_max():
    ins = Instrument("X", "linear", "0.1", "0.001", 1, 3, Decimal("0"))
    q = build_ladder(view(ins=ins), 9990.0, 10010.0, 5, 5)
    assert sizes(q, "Buy") == [3] and sizes(q, "Sell") == [3]


def test_size_raised_to_min_notional():
    # 999.6 USDT * 0.001 = 0.9996 per lot; 5 USDT needs 5.002 -> 6 lots
    ins = Instrument("X", "linear", "0.1", "0.001", 1, 1000, Decimal("5"))
    q = build_ladder(view(ins=ins), 9996.0, 10010.0, 2, 2)
    assert q[0] == Quote("Buy", 9996, 6, 0)
    assert q[1] == Quote("Sell", 10010, 5, 0)  # 1001.0 * 0.005 = 5.005 >= 5


def test_size_raised_to_min_qty():
    ins = Instrument("X", "linear", "0.1", "0.001", 4, 1000, Decimal("0"))
    q = build_ladder(view(ins=ins), 9996.0, 10010.0, 1, 1)
    assert sizes(q, "Buy") == [4] and sizes(q, "Sell") == [4]


def test_risk_room_trims_the_ladder():
    v = view(max_buy_lots=5, max_sell_lots=0)
    q = build_ladder(v, 9996.0, 10010.0, 2, 2, levels=4)
    assert sizes(q, "Buy") == [2, 2, 1]
    assert sizes(q, "Sell") == []


def test_risk_room_below_min_size_drops_the_level():
    ins = Instrument("X", "linear", "0.1", "0.001", 3, 1000, Decimal("0"))
    q = build_ladder(view(ins=ins, max_buy_lots=5), 9996.0, 10010.0, 3, 3, levels=3)
    assert sizes(q, "Buy") == [3]


def test_non_positive_prices_are_dropped():
    q = build_ladder(view(Book(bid=(3, 1), ask=(5, 1))), 2.0, 6.0, 1, 1, levels=4)
    assert prices(q, "Buy") == [2, 1]


def test_zero_size_leaves_side_unquoted():
    q = build_ladder(view(), 9996.0, 10010.0, 0, 2)
    assert [x.side for x in q] == ["Sell"]


def test_order_qty_off_the_lot_grid_is_an_error():
    m = FixedSpreadModel(strat(order_qty="0.0005"))
    with pytest.raises(ValueError, match="0.0005"):
        m.quotes(view())


# ---------------------------------------------------------------------------- skew
SKEW = SkewConfig(half_spread_bps=5.0, max_inventory_qty="0.010", price_skew_bps=4.0, size_skew=1.0)


def test_skew_long_moves_quotes_down_and_shrinks_bid():
    # q = 5/10 = 0.5; centre = 10002 * (1 - 0.5 * 4e-4) = 9999.9996; half 5.001
    # bid 9994.9986 -> 9994, ask 10005.0006 -> 10006; bid size floor(4 * 0.5) = 2
    m = InventorySkewModel(strat(order_qty="0.004", skew=SKEW))
    q = m.quotes(view(position_lots=5))
    assert q == [Quote("Buy", 9994, 2, 0), Quote("Sell", 10006, 4, 0)]


def test_skew_full_short_stops_selling_and_moves_up():
    # q = -1: centre = 10002 * 1.0004 = 10006.0008; bid 10000.9998 -> 10000; ask size 0
    m = InventorySkewModel(strat(order_qty="0.004", skew=SKEW))
    assert m.quotes(view(position_lots=-10)) == [Quote("Buy", 10000, 4, 0)]
    assert m.quotes(view(position_lots=-25)) == [Quote("Buy", 10000, 4, 0)]  # clamped at -1


def test_skew_flat_is_the_fixed_model():
    m = InventorySkewModel(strat(order_qty="0.004", skew=SKEW))
    f = FixedSpreadModel(strat(order_qty="0.004", fixed=FixedConfig(half_spread_bps=5.0)))
    assert m.quotes(view()) == f.quotes(view())


# ---------------------------------------------------------------------------- Avellaneda-Stoikov
def test_as_formula_hand_computed():
    # r = 1000 - 2 * 0.1 * 2**2 * 10 = 992; spread = 4 + 20 * ln(1.1) = 5.906203596
    bid, ask = as_quotes(1000.0, 2.0, 0.1, 2.0, 1.0, 10.0)
    assert bid == pytest.approx(989.0468982019568, abs=1e-9)
    assert ask == pytest.approx(994.9531017980432, abs=1e-9)


MID_1000 = Book(bid=(999, 5), ask=(1001, 5))
# sigma 20 bps of 1000 ticks = 2 ticks per sqrt(s)
AS = AvellanedaConfig(gamma_per_tick=0.1, sigma_bps_per_sqrt_s=20.0, k_per_tick=1.0, horizon_s=10.0)


def test_as_model_flat():
    # r = 1000, half = 2.953101798: 997.047 -> 997, 1002.953 -> 1003
    m = AvellanedaStoikovModel(strat(order_qty="0.001", avellaneda=AS))
    assert m.quotes(view(MID_1000)) == [Quote("Buy", 997, 1, 0), Quote("Sell", 1003, 1, 0)]


def test_as_model_long_one_unit_is_clamped_post_only():
    # q = 1: r = 996; bid 993.047 -> 993; ask 998.953 -> 999 touches best bid 999 -> 1000
    m = AvellanedaStoikovModel(strat(order_qty="0.001", avellaneda=AS))
    assert m.quotes(view(MID_1000, position_lots=1)) == [
        Quote("Buy", 993, 1, 0),
        Quote("Sell", 1000, 1, 0),
    ]


def test_as_inventory_is_in_order_size_units():
    m = AvellanedaStoikovModel(strat(order_qty="0.002", avellaneda=AS))
    assert prices(m.quotes(view(MID_1000, position_lots=2)), "Buy") == [993]


# ---------------------------------------------------------------------------- GLFT
def test_glft_coefficients_hand_computed():
    # gamma 0.1, A 1, k 0.5: c1 = 10 ln 1.2; c2 = sqrt(0.1/(2*1*0.5) * 1.2**6) = sqrt(0.2985984)
    c1, c2 = glft_coefficients(0.1, 1.0, 0.5)
    assert c1 == pytest.approx(1.8232155679395, abs=1e-12)
    assert c2 == pytest.approx(0.5464415796771, abs=1e-12)


GLFT = GlftConfig(
    gamma_per_tick=0.1,
    sigma_bps_per_sqrt_s=20.0,
    intensity_a_per_s=1.0,
    intensity_k_per_tick=0.5,
    intensity_prior_weight_s=10.0,
    refit_interval_ms=0,
)


def test_glft_model_flat_and_long():
    m = GlftModel(strat(order_qty="0.001", glft=GLFT))
    # sigma = 2 ticks: half = c1 + c2 = 2.36966: 997.63 -> 997, 1002.37 -> 1003
    assert m.quotes(view(MID_1000)) == [Quote("Buy", 997, 1, 0), Quote("Sell", 1003, 1, 0)]
    # q = 1: r = 1000 - 2 * c2 = 998.90712; bid 996.5375 -> 996, ask 1001.2768 -> 1002
    assert m.quotes(view(MID_1000, position_lots=1)) == [
        Quote("Buy", 996, 1, 0),
        Quote("Sell", 1002, 1, 0),
    ]


def test_ewma_volatility_hand_computed():
    # prior 0; half-life 1 s, samples every 1 s -> alpha 0.5; each return 2 ticks in 1 s
    v = EwmaVolatility(0.0, 1.0, 1000)
    for i, mid in enumerate([1000, 1002, 1000, 1002]):
        v.update(mid, i * 1000)
    assert v.var == pytest.approx(3.5)  # 0 -> 2 -> 3 -> 3.5
    v.update(1010, 3500)  # inside the sampling interval: ignored
    assert v.var == pytest.approx(3.5) and v.samples == 3


def test_ewma_volatility_starts_at_prior():
    v = EwmaVolatility(20.0, 1.0, 1000)
    v.update(1000.0, 0)
    assert v.sigma == pytest.approx(2.0)


def test_intensity_fit_recovers_exact_exponential():
    est = IntensityEstimator(1.0, 0.3, prior_weight_s=0.0, max_depth_ticks=10)
    for depth, fills in [(1, 8), (2, 4), (3, 2)]:  # rate 16 * 2**-depth per second
        est.add_exposure(depth, 1.0)
        for _ in range(fills):
            est.add_fill(depth)
    a, k = est.fit()
    assert a == pytest.approx(16.0) and k == pytest.approx(math.log(2))


def test_intensity_fit_without_data_is_the_prior():
    est = IntensityEstimator(2.5, 0.4, prior_weight_s=30.0, max_depth_ticks=20)
    a, k = est.fit()
    assert a == pytest.approx(2.5) and k == pytest.approx(0.4)
    est0 = IntensityEstimator(2.5, 0.4, prior_weight_s=0.0, max_depth_ticks=20)
    assert est0.fit() == (2.5, 0.4)  # no points at all


def test_glft_learns_from_fills_and_exposure():
    m = GlftModel(
        strat(order_qty="0.001", glft=dataclasses.replace(GLFT, intensity_prior_weight_s=0.0))
    )
    v0 = view(MID_1000, now_ms=0)
    m.on_book(v0)
    m.quotes(v0)  # bid 997 (depth 3), ask 1003 (depth 3)
    m.on_book(view(MID_1000, now_ms=2000))  # quoting alone credits nothing: no live order
    assert sum(m.intensity.exposure_s) == 0
    m.on_order(_order("b", "Buy", 997, "New", 0), 0)
    m.on_order(_order("s", "Sell", 1003, "New", 0), 0)
    m.on_fill("Buy", 997, 1, 2000)
    m.on_fill("Sell", 1003, 1, 2000)
    m.on_order(_order("b", "Buy", 997, "Filled", 2000), 2000)
    m.on_order(_order("s", "Sell", 1003, "Filled", 2000), 2000)
    assert m.intensity.exposure_s[3] == pytest.approx(4.0)  # 2 s live at depth 3, both sides
    assert m.intensity.fills[3] == 2
    m.quotes(view(MID_1000, now_ms=2000))
    # one bucket only: not enough points for a slope, so the prior stays
    assert (m.a_per_s, m.k_per_tick) == (1.0, 0.5)


def test_models_satisfy_protocol_and_factory():
    for name, cls in [
        ("fixed", FixedSpreadModel),
        ("skew", InventorySkewModel),
        ("avellaneda", AvellanedaStoikovModel),
        ("glft", GlftModel),
    ]:
        cfg = Config().replace(strategy=StrategyConfig(model=name))
        m = build_model(cfg)
        assert type(m) is cls and isinstance(m, QuoteModel)
        assert build_model(cfg.strategy).__class__ is cls


def test_factory_rejects_unknown_model():
    bad = dataclasses.replace(StrategyConfig(), model="fixed")
    object.__setattr__(bad, "model", "martingale")
    with pytest.raises(ConfigError, match="martingale"):
        build_model(bad)


def test_every_model_quotes_valid_orders_on_a_real_book():
    obcore = pytest.importorskip("obcore", reason="compiled obcore not built yet")
    ins = Instrument("BTCUSDT", "linear", "0.1", "0.001", 1, 1_190_000, Decimal("5"))
    book = ins.new_book()
    book.apply(
        {
            "topic": "orderbook.50.BTCUSDT",
            "type": "snapshot",
            "ts": 1,
            "data": {
                "s": "BTCUSDT",
                "b": [["65000.0", "1.0"], ["64999.9", "2"]],
                "a": [["65000.1", "1.5"], ["65000.3", "1"]],
                "u": 1,
                "seq": 1,
            },
        }
    )
    assert isinstance(book, obcore.Book)
    for name in ("fixed", "skew", "avellaneda", "glft"):
        m = build_model(StrategyConfig(model=name, levels=3))
        v = MarketView(book, 0, 0, ins)
        m.on_book(v)
        q = m.quotes(v)
        assert q, name
        for x in q:
            assert isinstance(x.price_ticks, int) and isinstance(x.qty_lots, int)
            if x.side == "Buy":
                assert x.price_ticks < 650001
            else:
                assert x.price_ticks > 650000
            assert x.qty_lots >= ins.min_lots_at(x.price_ticks)


def test_build_ladder_memo_matches_a_fresh_build():
    """Cached or not, build_ladder returns what building from scratch returns."""

    ins = Instrument.from_rules(
        "BTCUSDT",
        "linear",
        tick_size="0.1",
        lot_size="0.001",
        min_qty="0.001",
        max_qty="1190",
        min_notional="5",
    )
    rnd = random.Random(3)
    book = obcore.Book("0.1", "0.001")
    for _ in range(400):
        if rnd.random() < 0.5:  # move the touch half of the time
            bid = rnd.randint(649_990, 650_000)
            ask = bid + rnd.randint(1, 3)
            book.apply(
                {
                    "type": "snapshot",
                    "data": {
                        "u": 1,
                        "b": [[book.price_str(bid), "1"]],
                        "a": [[book.price_str(ask), "1"]],
                    },
                }
            )
        bid = book.best_bid()[0]
        view = base.MarketView(book, 0, 0, ins, rnd.choice([None, 3, 0]), rnd.choice([None, 2]))
        px = (bid + rnd.choice([-1.5, 0.2, 1.0]), bid + rnd.choice([0.5, 2.0, 4.0]))
        lots = (rnd.choice([0, 1, 2]), rnd.choice([1, 2]))
        kw = dict(
            levels=rnd.choice([1, 3]),
            level_spacing_ticks=rnd.choice([1, 2]),
            min_spread_ticks=rnd.choice([0.0, 3.0]),
        )
        fresh = base._build_ladder(
            ins,
            book.best_bid(),
            book.best_ask(),
            *px,
            *lots,
            kw["levels"],
            kw["level_spacing_ticks"],
            kw["min_spread_ticks"],
            view.max_buy_lots,
            view.max_sell_lots,
        )
        assert base.build_ladder(view, *px, *lots, **kw) == fresh  # often a miss
        assert base.build_ladder(view, *px, *lots, **kw) == fresh  # now certainly a hit


# --------------------------------------------------------------------------- fee-aware floor
FEE_BOOK = Book(bid=(650000, 5), ask=(650001, 5))  # 65000.0 / 65000.1, mid 650000.5 ticks


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_quotes_at_least_the_maker_fee_plus_buffer(model):
    # default "auto": half-spread >= 2 bps fee + 1 bps buffer = 3 bps of 650000.5 ticks
    # = 195.00015 ticks, so bid <= 650000.5 - 195.00015 -> 649805, ask >= 650196
    cfg = StrategyConfig(model=model, order_qty="0.002")
    assert cfg.min_spread_bps == "auto" and cfg.adverse_buffer_bps == 1.0
    m = build_model(cfg, maker_fee_bps=2.0)
    q = m.quotes(view(FEE_BOOK))
    bid, ask = prices(q, "Buy")[0], prices(q, "Sell")[0]
    assert ask - bid >= 2 * 195.00015
    assert bid <= 649805 and ask >= 650196


def test_a_rebate_makes_the_floor_negative_and_the_model_rules():
    # -0.25 bps rebate + 1 bps buffer: floor 2 * 0.75 = 1.5 bps; the fixed model's 3 bps wins
    cfg = StrategyConfig(order_qty="0.002", adverse_buffer_bps=0.0)
    m = build_model(cfg, maker_fee_bps=-0.25)
    assert m.min_spread_floor_bps == -0.5
    q = m.quotes(view(FEE_BOOK))
    # 3 bps of 650000.5 = 195.00015 ticks: floor/ceil away from the mid
    assert (prices(q, "Buy"), prices(q, "Sell")) == ([649805], [650196])


def test_an_explicit_smaller_min_spread_overrides_the_fee_floor():
    cfg = StrategyConfig(
        order_qty="0.002", min_spread_bps=0.0, fixed=FixedConfig(half_spread_bps=0.0)
    )
    m = build_model(cfg, maker_fee_bps=2.0)
    q = m.quotes(view(FEE_BOOK))
    assert (prices(q, "Buy"), prices(q, "Sell")) == ([650000], [650001])


def test_the_floor_follows_the_config_fee():
    from mmbot.config import Config, SimConfig  # noqa: PLC0415

    cfg = Config(sim=SimConfig(maker_fee_bps=1.0))
    assert build_model(cfg).min_spread_floor_bps == 2 * (1.0 + 1.0)


# --------------------------------------------------------------------------- GLFT intensity fit
def _order(link, side, price, status, t):
    from mmbot.types import Order, OrderStatus  # noqa: PLC0415

    return Order("o-" + link, link, "BTCUSDT", side, price, 1, 0, OrderStatus(status), updated_ms=t)


def _glft(**kw):
    g = GlftConfig(
        intensity_prior_weight_s=kw.pop("prior_weight_s", 0.0),
        intensity_max_depth_ticks=20,
        refit_interval_ms=0,
    )
    return GlftModel(strat(model="glft", glft=g))


def _at_ref(m, ref2, t):
    # a book whose mid is ref2 / 2 ticks
    m.on_book(view(Book(bid=(ref2 // 2, 5), ask=(ref2 - ref2 // 2, 5)), now_ms=t))


def _quoted(m, side, price, ref):
    m.remember_quotes([Quote(side, price, 1)], ref)


def test_glft_fit_recovers_a_known_intensity():
    # orders at depth d live until filled (exponential with rate A*exp(-k*d)) or 2 s pass
    import random  # noqa: PLC0415

    a_true, k_true = 2.0, 0.4
    rng = random.Random(11)
    m = _glft()
    t = 0
    for i in range(6000):
        d = rng.randrange(0, 9)
        _at_ref(m, 2 * 10_000, t)  # reference 10000 at placement
        side = "Buy" if i % 2 else "Sell"
        price = 10_000 - d if side == "Buy" else 10_000 + d
        _quoted(m, side, price, 10_000.0)
        m.on_order(_order(f"q{i}", side, price, "New", t), t)
        fill_after = rng.expovariate(a_true * math.exp(-k_true * d))
        _at_ref(m, 2 * 10_050, t + 1)  # the reference moves away meanwhile
        if fill_after < 2.0:
            end = t + round(fill_after * 1000)
            m.on_fill(side, price, 1, end)
            m.on_order(_order(f"q{i}", side, price, "Filled", end), end)
        else:
            end = t + 2000
            m.on_order(_order(f"q{i}", side, price, "Cancelled", end), end)
        t = end + 1
    a, k = m.intensity.fit()
    assert a == pytest.approx(a_true, rel=0.2) and k == pytest.approx(k_true, rel=0.2)


def test_glft_counts_live_exposure_only_and_fill_depth_at_placement():
    m = _glft()
    _at_ref(m, 2 * 10_000, 0)
    _quoted(m, "Buy", 9_996, 10_000.0)
    m.on_order(_order("a", "Buy", 9_996, "New", 100), 105)  # depth 4 at placement
    _at_ref(m, 2 * 9_990, 500)  # reference falls 10 ticks
    m.on_fill("Buy", 9_996, 1, 1_100)
    m.on_order(_order("a", "Buy", 9_996, "Filled", 1_100), 1_105)
    # 30 s with no live order: no exposure anywhere (was: credited to the desired quote)
    for t in range(1_200, 31_200, 1_000):
        _at_ref(m, 2 * 9_990, t)
    assert m.intensity.fills[4] == 1 and sum(m.intensity.fills) == 1
    assert m.intensity.exposure_s[4] == pytest.approx(1.0) and sum(m.intensity.exposure_s) == 1.0
    # an amend to another price ends one exposure and starts another at its own depth
    _quoted(m, "Sell", 9_995, 9_990.0)
    _quoted(m, "Sell", 9_993, 9_990.0)
    m.on_order(_order("b", "Sell", 9_995, "New", 40_000), 40_000)  # ref 9990: depth 5
    m.on_order(_order("b", "Sell", 9_993, "New", 40_500), 40_500)  # depth 3
    # an order the model never quoted (a flatten) is no sample of the intensity
    m.on_order(_order("f", "Sell", 9_990, "New", 41_000), 41_000)
    m.on_fill("Sell", 9_990, 1, 41_001)
    m.on_order(_order("f", "Sell", 9_990, "Filled", 41_001), 41_001)
    assert m.intensity.exposure_s[0] == 0 and m.intensity.fills[0] == 0
    m.on_order(_order("b", "Sell", 9_993, "Cancelled", 41_000), 41_000)
    assert m.intensity.exposure_s[5] == pytest.approx(0.5)
    assert m.intensity.exposure_s[3] == pytest.approx(0.5)


def test_intensity_beyond_the_range_is_left_out_not_piled_into_the_last_bucket():
    est = IntensityEstimator(1.0, 0.3, prior_weight_s=0.0, max_depth_ticks=10)
    est.add_exposure(25, 3.0)
    est.add_fill(25)
    est.add_exposure(10, 1.0)
    assert est.exposure_s[10] == 1.0 and sum(est.fills) == 0
