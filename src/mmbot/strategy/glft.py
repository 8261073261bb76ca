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

    Time spent quoting at each depth (ticks from the reference, ``0..max_depth_ticks``) and
    the fills there give a rate per depth bucket. Each bucket also carries
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

    def _bucket(self, depth_ticks: float) -> int:
        d = int(round(depth_ticks))
        return 0 if d < 0 else (self.max_depth if d > self.max_depth else d)

    def add_exposure(self, depth_ticks: float, seconds: float) -> None:
        """Record ``seconds`` of one quote resting ``depth_ticks`` from the reference."""
        self.exposure_s[self._bucket(depth_ticks)] += seconds

    def add_fill(self, depth_ticks: float) -> None:
        """Record one fill of a quote that rested ``depth_ticks`` from the reference."""
        self.fills[self._bucket(depth_ticks)] += 1

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
    """GLFT quotes with online volatility and fill-intensity estimates (see module doc)."""

    def __init__(self, strategy: StrategyConfig, params: GlftConfig | None = None,
                 maker_fee_bps: float = 2.0) -> None:
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
        self._last_book_ms: int | None = None
        self._bid_ticks: int | None = None
        self._ask_ticks: int | None = None

    def on_book(self, view: MarketView) -> None:
        """Sample the mid for volatility and credit quoting time to the current depths."""
        ref = self.reference(view)
        if ref is None:
            return
        now = view.now_ms
        self.vol.update(ref, now)
        if self._last_book_ms is not None and now > self._last_book_ms:
            dt_s = (now - self._last_book_ms) * 1e-3
            if self._bid_ticks is not None:
                self.intensity.add_exposure(ref - self._bid_ticks, dt_s)
            if self._ask_ticks is not None:
                self.intensity.add_exposure(self._ask_ticks - ref, dt_s)
        self._last_book_ms = now
        self._ref = ref

    def on_fill(self, side: str, price_ticks: int, qty_lots: int, now_ms: int) -> None:
        """Count a fill at its depth from the last seen reference price."""
        if self._ref is None:
            return
        depth = self._ref - price_ticks if side == BUY else price_ticks - self._ref
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
        self._bid_ticks = self._ask_ticks = None
        for qt in out:
            if qt.level == 0:
                if qt.side == BUY:
                    self._bid_ticks = qt.price_ticks
                else:
                    self._ask_ticks = qt.price_ticks
        return out
