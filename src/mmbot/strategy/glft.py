"""GLFT: the Gueant-Lehalle-Fernandez-Tapia closed-form market maker with online estimates.

The asymptotic closed form (Gueant 2017, with ``xi = gamma`` and order size ``Delta = 1``,
inventory ``q`` in multiples of ``order_qty``) gives, for fill intensity
``lambda(depth) = A * exp(-k * depth)``::

    c1 = 1 / (gamma * Delta) * ln(1 + gamma * Delta / k)
    c2 = sqrt(gamma / (2 * A * Delta * k) * (1 + gamma * Delta / k) ** (k / (gamma * Delta) + 1))
    half_spread = c1 + Delta / 2 * sigma * c2
    skew        = sigma * c2
    bid = ref - skew * q - half_spread,  ask = ref - skew * q + half_spread

Units: ticks, seconds; ``gamma`` and ``k`` per tick, ``A`` per second, ``sigma`` in ticks per
square-root second. ``sigma`` comes from :class:`EwmaVolatility` and ``(A, k)`` from
:class:`IntensityEstimator`, both starting at the configured priors.
"""

from __future__ import annotations

import math

from mmbot.config import GlftConfig, StrategyConfig
from mmbot.strategy.base import BaseQuoteModel, MarketView, Quote
from mmbot.types import BUY

__all__ = ["EwmaVolatility", "GlftModel", "IntensityEstimator", "glft_coefficients"]


def glft_coefficients(gamma: float, a_per_s: float, k_per_tick: float) -> tuple[float, float]:
    """Return ``(c1, c2)`` of the GLFT closed form with ``xi = gamma``, ``Delta = 1``."""
    x = gamma / k_per_tick
    c1 = math.log1p(x) / gamma
    c2 = math.sqrt(gamma / (2.0 * a_per_s * k_per_tick) * (1.0 + x) ** (1.0 / x + 1.0))
    return c1, c2


class EwmaVolatility:
    """Exponentially weighted variance of mid changes per second, in ticks**2 / s.

    The mid is sampled at most every ``sample_ms``; each sample updates
    ``var += alpha * (dmid**2 / dt_s - var)`` with ``alpha = 1 - 2 ** (-dt_s / halflife_s)``.
    Before the first sample the variance is the prior, ``(prior_bps * 1e-4 * mid) ** 2``.
    """

    __slots__ = ("prior_bps", "halflife_s", "sample_ms", "var", "_last_ms", "_last_mid", "samples")

    def __init__(self, prior_bps_per_sqrt_s: float, halflife_s: float, sample_ms: int) -> None:
        self.prior_bps = prior_bps_per_sqrt_s
        self.halflife_s = halflife_s
        self.sample_ms = sample_ms
        self.var: float | None = None
        self._last_ms = 0
        self._last_mid = 0.0
        self.samples = 0

    def update(self, mid_ticks: float, now_ms: int) -> None:
        """Feed the current mid (ticks) at ``now_ms``."""
        if self.var is None:
            s = self.prior_bps * 1e-4 * mid_ticks
            self.var = s * s
            self._last_ms, self._last_mid = now_ms, mid_ticks
            return
        dt_ms = now_ms - self._last_ms
        if dt_ms < self.sample_ms:
            return
        dt_s = dt_ms * 1e-3
        d = mid_ticks - self._last_mid
        alpha = 1.0 - 2.0 ** (-dt_s / self.halflife_s)
        self.var += alpha * (d * d / dt_s - self.var)
        self._last_ms, self._last_mid = now_ms, mid_ticks
        self.samples += 1

    @property
    def sigma(self) -> float:
        """Volatility in ticks per square-root second (0 before any update)."""
        return math.sqrt(self.var) if self.var else 0.0


class IntensityEstimator:
    """Fit ``lambda(depth) = A * exp(-k * depth)`` to our own fills.

    Time our orders were live at the venue at each depth (ticks from the reference when
    the order was placed, ``0..max_depth_ticks``) and the fills of those orders give a
    rate per depth bucket. Each bucket also carries
    ``prior_weight_s`` seconds of pseudo-exposure with the prior's expected fills, so a
    bucket without data follows the prior and a fit with no data returns the prior exactly.
    ``fit`` is a least-squares line through ``log(rate)`` vs depth, weighted by fill count
    (the inverse variance of a Poisson log-rate).
    """

    def __init__(
        self, a_prior: float, k_prior: float, prior_weight_s: float, max_depth_ticks: int
    ) -> None:
        self.a_prior = a_prior
        self.k_prior = k_prior
        self.prior_weight_s = prior_weight_s
        self.max_depth = max_depth_ticks
        self.exposure_s = [0.0] * (max_depth_ticks + 1)
        self.fills = [0] * (max_depth_ticks + 1)

    def _bucket(self, depth_ticks: float) -> int | None:
        # beyond the range is left out, not piled into the last bucket: a quote 200 ticks
        # out says nothing about the rate at max_depth_ticks
        d = int(round(depth_ticks))
        return 0 if d < 0 else (None if d > self.max_depth else d)

    def add_exposure(self, depth_ticks: float, seconds: float) -> None:
        """Record ``seconds`` of one quote resting ``depth_ticks`` from the reference
        (ignored beyond ``max_depth_ticks``)."""
        b = self._bucket(depth_ticks)
        if b is not None:
            self.exposure_s[b] += seconds

    def add_fill(self, depth_ticks: float) -> None:
        """Record one fill of a quote that rested ``depth_ticks`` from the reference
        (ignored beyond ``max_depth_ticks``)."""
        b = self._bucket(depth_ticks)
        if b is not None:
            self.fills[b] += 1

    def fit(self) -> tuple[float, float]:
        """Return ``(A_per_s, k_per_tick)``; the prior when there is too little data."""
        w_sum = wx = wy = wxx = wxy = 0.0
        points = 0
        pw = self.prior_weight_s
        for d in range(self.max_depth + 1):
            e = self.exposure_s[d] + pw
            n = self.fills[d] + pw * self.a_prior * math.exp(-self.k_prior * d)
            if e <= 0.0 or n <= 0.0:
                continue
            y = math.log(n / e)
            w_sum += n
            wx += n * d
            wy += n * y
            wxx += n * d * d
            wxy += n * d * y
            points += 1
        if points < 2:
            return self.a_prior, self.k_prior
        den = w_sum * wxx - wx * wx
        if den <= 0.0:
            return self.a_prior, self.k_prior
        slope = (w_sum * wxy - wx * wy) / den
        intercept = (wy - slope * wx) / w_sum
        if slope >= 0.0:
            # Fills do not thin out with depth: the data cannot say anything about k.
            return self.a_prior, self.k_prior
        return math.exp(intercept), -slope


class GlftModel(BaseQuoteModel):
    """GLFT quotes with online volatility and fill-intensity estimates (see module doc).

    The intensity fit only counts what the venue saw: an order's exposure runs from the
    venue's ack (``on_order`` with a live status, at the order's ``updated_ms``) to its
    end (filled, cancelled, or moved by an amend), at the depth between its price and
    the reference when the bot decided that price; a fill counts at that same depth, not
    at the distance from wherever the reference has moved to by then.
    """

    def __init__(
        self, strategy: StrategyConfig, params: GlftConfig | None = None, maker_fee_bps: float = 2.0
    ) -> None:
        super().__init__(strategy, maker_fee_bps)
        p = self.params = params if params is not None else strategy.glft
        self.vol = EwmaVolatility(p.sigma_bps_per_sqrt_s, p.vol_halflife_s, p.vol_sample_ms)
        self.intensity = IntensityEstimator(
            p.intensity_a_per_s,
            p.intensity_k_per_tick,
            p.intensity_prior_weight_s,
            p.intensity_max_depth_ticks,
        )
        self.a_per_s = p.intensity_a_per_s
        self.k_per_tick = p.intensity_k_per_tick
        self._coeffs = glft_coefficients(p.gamma_per_tick, self.a_per_s, self.k_per_tick)
        self._dirty = False
        self._last_fit_ms: int | None = None
        self._ref: float | None = None
        # reference when each (side, price) was last quoted: the depth at placement
        self._quoted_ref: dict[tuple[str, int], float] = {}
        # live orders: link -> [side, price, depth at placement, exposure counted up to ms]
        self._live: dict[str, list] = {}

    def on_book(self, view: MarketView) -> None:
        """Sample the mid for volatility."""
        ref = self.reference(view)
        if ref is None:
            return
        self.vol.update(ref, view.now_ms)
        self._ref = ref

    def _depth(self, side: str, price: int) -> float | None:
        # only the model's own quotes: a flatten order or a price it never quoted is not
        # a sample of the intensity at any depth
        ref = self._quoted_ref.get((side, price))
        if ref is None:
            return None
        return ref - price if side == BUY else price - ref

    def _credit(self, entry: list, until_ms: int) -> None:
        if until_ms > entry[3]:
            self.intensity.add_exposure(entry[2], (until_ms - entry[3]) * 1e-3)
            entry[3] = until_ms

    def on_order(self, order, now_ms: int) -> None:
        """Track which orders are live at the venue, for the exposure of the fit."""
        t = order.updated_ms or now_ms
        link = order.order_link_id
        entry = self._live.get(link)
        live = order.status.value in ("New", "PartiallyFilled")
        if entry is not None and (not live or entry[1] != order.price_ticks):
            self._credit(entry, t)
            del self._live[link]
            self._dirty = True
            entry = None
        if live and entry is None:
            depth = self._depth(order.side, order.price_ticks)
            if depth is not None:
                self._live[link] = [order.side, order.price_ticks, depth, t]

    def on_fill(self, side: str, price_ticks: int, qty_lots: int, now_ms: int) -> None:
        """Count a fill at the depth its order was placed at."""
        depth = None
        for entry in self._live.values():
            if entry[0] == side and entry[1] == price_ticks:
                depth = entry[2]
                break
        if depth is None:
            return  # not one of the tracked quotes (see _depth)
        self.intensity.add_fill(depth)
        self._dirty = True

    def _maybe_refit(self, now_ms: int) -> None:
        if not self._dirty:
            return
        if (
            self._last_fit_ms is not None
            and now_ms - self._last_fit_ms < self.params.refit_interval_ms
        ):
            return
        for entry in self._live.values():  # exposure of orders still resting
            self._credit(entry, now_ms)
        self.a_per_s, self.k_per_tick = self.intensity.fit()
        self._coeffs = glft_coefficients(self.params.gamma_per_tick, self.a_per_s, self.k_per_tick)
        self._last_fit_ms = now_ms
        self._dirty = False

    def targets(self, view: MarketView) -> tuple[float, float, int, int] | None:
        ref = self.reference(view)
        if ref is None:
            return None
        if self.vol.var is None:
            self.vol.update(ref, view.now_ms)
        self._maybe_refit(view.now_ms)
        c1, c2 = self._coeffs
        sigma = self.vol.sigma
        half = c1 + 0.5 * sigma * c2
        r = ref - sigma * c2 * (view.position_lots / self.order_lots)
        return r - half, r + half, self.order_lots, self.order_lots

    def quotes(self, view: MarketView) -> list[Quote]:
        out = super().quotes(view)
        ref = self.reference(view)
        if ref is not None:
            self.remember_quotes(out, ref)
        return out

    def remember_quotes(self, quotes: list[Quote], ref: float) -> None:
        """Note the reference ``quotes`` were decided at: their depth if they go live."""
        refs = self._quoted_ref
        if len(refs) > 4096:  # prices long gone; keep the map small
            refs.clear()
        for qt in quotes:
            refs[(qt.side, qt.price_ticks)] = ref
