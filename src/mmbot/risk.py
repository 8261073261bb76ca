"""Pre-quote risk checks: limits, drawdown kill switch, and the market-health guard.

:meth:`RiskManager.evaluate` runs before every requote and returns a :class:`RiskDecision`.
In order of precedence:

1. **Kill switch** (latched): net PnL falling ``max_drawdown`` below its running peak
   pulls every quote until :meth:`RiskManager.reset_kill`; with ``flatten_on_kill`` the
   decision also asks the caller to flatten the position.
2. **Health**: a disconnected venue, an out-of-sync book, a book with no update for
   ``stale_book_ms`` or no mark price pulls every quote. After an outage quoting resumes
   only once healthy without a break for ``resume_after_ms`` (hysteresis, so a flickering
   feed does not make the bot flap); waiting for the first book at start-up is not an
   outage.
3. **Limits**: the position may not pass ``max_position_lots`` nor ``max_notional`` (at the
   mark) on either side. ``max_buy_lots``/``max_sell_lots`` say how many lots the resting
   quotes of that side may add up to; ``allow_buy``/``allow_sell`` are whether that is > 0.

Several symbols in one account share an :class:`AccountRisk` on top of their own managers:

* **Total notional**: the worst-case gross notional of every symbol (the larger of
  ``position + working buys`` and ``-(position - working sells)``, the order manager's
  exposure, valued at the symbol's mark) adds up to at most ``max_total_notional``. Each
  symbol's position cap is tightened to the room the other symbols leave, so the order
  manager does not send a new order or a size-up that would pass it.
* **Total drawdown**: the account's net PnL (the sum over symbols) falling
  ``max_total_drawdown`` below its peak trips every symbol's kill switch at once.

Public API
----------
AccountLimits, AccountRisk, RiskLimits, RiskDecision, RiskManager.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction
from typing import Any

from mmbot.config import ConfigError, RiskConfig
from mmbot.instrument import Instrument
from mmbot.records import RiskState

__all__ = [
    "ACCOUNT_KEY",
    "AccountLimits",
    "AccountRisk",
    "RiskDecision",
    "RiskLimits",
    "RiskManager",
]

log = logging.getLogger(__name__)

#: the records' risk-state key of the account (no symbol has a ``*`` in its name)
ACCOUNT_KEY = "*account*"


@dataclass(frozen=True)
class RiskLimits:
    """Limits in integer lots and exact quote-currency amounts.

    Parameters
    ----------
    max_position_lots : int
        Largest absolute position (> 0).
    max_notional : Decimal
        Largest absolute position value at the mark, quote currency (> 0).
    max_drawdown : Decimal
        Net-PnL drop from its peak that trips the kill switch (> 0).
    flatten_on_kill : bool
        Ask for the position to be flattened when the kill switch trips.
    stale_book_ms : int
        A book older than this is stale (> 0).
    max_frame_age_ms : int
        A book whose last frame was older than this when it arrived (receive time minus
        the exchange's stamp, clock offset corrected) is lagging: treated as stale (> 0).
    resume_after_ms : int
        Healthy time required after an outage before quoting again (>= 0).
    """

    max_position_lots: int
    max_notional: Decimal
    max_drawdown: Decimal
    flatten_on_kill: bool = False
    stale_book_ms: int = 2000
    resume_after_ms: int = 1000
    max_frame_age_ms: int = 1000

    def __post_init__(self) -> None:
        if not isinstance(self.max_position_lots, int) or self.max_position_lots <= 0:
            raise ValueError(
                f"max_position_lots must be a positive int, got {self.max_position_lots!r}"
            )
        for name in ("max_notional", "max_drawdown"):
            v = getattr(self, name)
            if not isinstance(v, Decimal) or not v.is_finite() or v <= 0:
                raise ValueError(f"{name} must be a positive finite Decimal, got {v!r}")
        if self.stale_book_ms <= 0:
            raise ValueError(f"stale_book_ms must be > 0, got {self.stale_book_ms!r}")
        if self.resume_after_ms < 0:
            raise ValueError(f"resume_after_ms must be >= 0, got {self.resume_after_ms!r}")
        if self.max_frame_age_ms <= 0:
            raise ValueError(f"max_frame_age_ms must be > 0, got {self.max_frame_age_ms!r}")

    @classmethod
    def from_config(
        cls, risk: RiskConfig, instrument: Instrument, key_of: Callable[[str], str] = str
    ) -> RiskLimits:
        """Build from ``[risk]`` and the venue's instrument rules; ``max_position_qty``
        rounds down to whole lots. ``key_of`` names where a key was set
        (:meth:`mmbot.config.Config.symbol_key`: ``symbols.ETHUSDT.risk.max_position_qty``
        for an override).

        Raises
        ------
        ConfigError
            If the caps cannot hold one valid order: a max position below one lot or
            below the instrument's minimum order quantity, or a max notional below its
            minimum order value. The message names the key, the value and the rule.
        """
        lots = int(
            (Decimal(risk.max_position_qty) / Decimal(instrument.lot_size)).to_integral_value(
                ROUND_FLOOR
            )
        )
        pos_key, notional_key = key_of("risk.max_position_qty"), key_of("risk.max_notional_quote")
        if lots <= 0:
            raise ConfigError(
                f"{pos_key}: {risk.max_position_qty!r} is less than one lot "
                f"({instrument.lot_size}) of {instrument.symbol}"
            )
        if lots < instrument.min_qty_lots:
            raise ConfigError(
                f"{pos_key}: {risk.max_position_qty!r} is less than the minimum "
                f"order quantity {instrument.qty_str(instrument.min_qty_lots)} of "
                f"{instrument.symbol}"
            )
        if Decimal(risk.max_notional_quote) < instrument.min_notional:
            raise ConfigError(
                f"{notional_key}: {risk.max_notional_quote!r} is less than the "
                f"minimum order value {instrument.min_notional} of {instrument.symbol}"
            )
        return cls(
            max_position_lots=lots,
            max_notional=Decimal(risk.max_notional_quote),
            max_drawdown=Decimal(risk.max_drawdown_quote),
            flatten_on_kill=risk.flatten_on_kill,
            stale_book_ms=risk.stale_book_ms,
            resume_after_ms=risk.resume_after_ms,
            max_frame_age_ms=risk.max_frame_age_ms,
        )


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """What the runner may do now.

    ``pull_all``: cancel every resting quote. ``flatten``: also close the position.
    ``max_buy_lots``/``max_sell_lots``: the most the resting quotes of that side may add up
    to (pass them into ``MarketView`` so the ladder stays inside). ``cap_lots``: the
    position limit now (the tighter of the position and notional limits); the order manager
    keeps the worst case of each side within it. ``reason`` is "ok" or a human-readable
    cause.
    """

    allow_buy: bool
    allow_sell: bool
    pull_all: bool
    flatten: bool
    reason: str
    max_buy_lots: int = 0
    max_sell_lots: int = 0
    cap_lots: int = 0


class RiskManager:
    """Stateful risk evaluation (peak PnL, kill latch, health hysteresis).

    Parameters
    ----------
    limits : RiskLimits
    instrument : Instrument
        Values the position at the mark for the notional limit.
    """

    def __init__(self, limits: RiskLimits, instrument: Instrument) -> None:
        self.instrument = instrument
        self.set_limits(limits)
        # PnL starts at zero, so a run that only loses is measured from zero.
        self.peak_pnl: Decimal | None = Decimal(0)
        self.killed = False
        self.kill_reason = ""
        self._healthy_since: int | None = None
        self._had_outage = False
        self._ever_healthy = False
        self.state = "ok"  # "ok" | "limited" | "paused" | "recovering" | "killed"
        self._last: RiskDecision | None = None

    def set_limits(self, limits: RiskLimits) -> None:
        """Take new limits (a config reload); the kill latch, the drawdown peak and the
        health timers stay, so a reload never un-kills a bot or forgets a loss."""
        # Lots allowed by the notional limit at mark m: _notional_num // (_notional_den * m),
        # integers only because this runs before every requote.
        ratio = Fraction(limits.max_notional) / Fraction(self.instrument.notional(1, 1))
        self.limits = limits
        self._notional_num, self._notional_den = ratio.numerator, ratio.denominator

    def durable_state(self) -> RiskState:
        """Return what must survive a restart: the kill latch and the drawdown peak."""
        return RiskState(self.killed, self.kill_reason, self.peak_pnl)

    def restore(self, state: RiskState) -> None:
        """Take the state a previous process saved (see :meth:`durable_state`)."""
        self.killed = state.killed
        self.kill_reason = state.kill_reason
        self.peak_pnl = state.peak_pnl

    def trip(self, reason: str) -> None:
        """Latch the kill switch from outside (the account's drawdown)."""
        if not self.killed:
            self.killed = True
            self.kill_reason = reason

    def reset_kill(self, *, reset_peak: bool = True) -> None:
        """Re-arm after a kill (an operator decision).

        By default the peak restarts at the next PnL seen, so the loss that tripped the
        switch is not counted again.
        """
        self.killed = False
        self.kill_reason = ""
        if reset_peak:
            self.peak_pnl = None

    def evaluate(
        self,
        *,
        position_lots: int,
        mark_ticks: int | Decimal | None,
        pnl: Decimal | None,
        book_synced: bool,
        last_book_update_ms: int | None,
        venue_connected: bool,
        now_ms: int,
        inflight_buy_lots: int = 0,
        inflight_sell_lots: int = 0,
        frame_age_ms: float | None = None,
    ) -> RiskDecision:
        """Return the decision for this moment.

        Parameters
        ----------
        position_lots : int
            Signed position.
        mark_ticks : int, Decimal or None
            The venue's mark price (or the exact mid) in ticks, not necessarily whole;
            None when there is none.
        pnl : Decimal or None
            Net PnL (realized + unrealized - fees); None skips the drawdown check.
        book_synced : bool
            ``book.synced``.
        last_book_update_ms : int or None
            When the book last changed (same clock as ``now_ms``); None = never.
        venue_connected : bool
        now_ms : int
        inflight_buy_lots, inflight_sell_lots : int
            Lots in orders that may still fill but are not part of the next quote set
            (e.g. cancels not yet confirmed); they use up room on their side.
        frame_age_ms : float or None
            Age of the last book frame when it arrived (see ``max_frame_age_ms``); None
            when not measured (backtests).
        """
        lim = self.limits
        if pnl is not None:
            if self.peak_pnl is None or pnl > self.peak_pnl:
                self.peak_pnl = pnl
            if not self.killed and self.peak_pnl - pnl >= lim.max_drawdown:
                self.killed = True
                self.kill_reason = (
                    f"kill switch: drawdown {self.peak_pnl - pnl} from peak {self.peak_pnl} "
                    f">= {lim.max_drawdown}"
                )
        if self.killed:
            self.state = "killed"
            return RiskDecision(
                False, False, True, lim.flatten_on_kill and position_lots != 0, self.kill_reason
            )

        problems = []
        if not venue_connected:
            problems.append("venue disconnected")
        if not book_synced:
            problems.append("book out of sync")
        if last_book_update_ms is None:
            problems.append("no book update yet")
        elif now_ms - last_book_update_ms > lim.stale_book_ms:
            problems.append(f"book stale ({now_ms - last_book_update_ms} ms)")
        if frame_age_ms is not None and frame_age_ms > lim.max_frame_age_ms:
            # a feed that falls behind still updates the book: only the age shows it
            problems.append(f"book lagging (last frame {frame_age_ms:.0f} ms old)")
        if mark_ticks is None or mark_ticks <= 0:
            problems.append("no mark price")
        if problems:
            self._healthy_since = None
            # Waiting for the first book at start-up is not an outage: quote at once.
            self._had_outage = self._ever_healthy
            self.state = "paused"
            return RiskDecision(False, False, True, False, "; ".join(problems))
        if self._healthy_since is None:
            self._healthy_since = now_ms
        self._ever_healthy = True
        if self._had_outage:
            healthy_ms = now_ms - self._healthy_since
            if healthy_ms < lim.resume_after_ms:
                self.state = "recovering"
                return RiskDecision(
                    False,
                    False,
                    True,
                    False,
                    f"recovering: healthy for {healthy_ms} of {lim.resume_after_ms} ms",
                )
            self._had_outage = False

        limit = lim.max_position_lots
        assert mark_ticks is not None  # "no mark price" returned above
        # integers, exact: a Fraction of the mark cost ~5 us a decision
        mark_n, mark_d = mark_ticks.as_integer_ratio()
        by_notional = (self._notional_num * mark_d) // (self._notional_den * mark_n)
        if by_notional < limit:
            limit = by_notional
        max_buy = limit - position_lots - inflight_buy_lots
        max_sell = limit + position_lots - inflight_sell_lots
        max_buy = max_buy if max_buy > 0 else 0
        max_sell = max_sell if max_sell > 0 else 0
        last = self._last
        if max_buy and max_sell:
            self.state = "ok"
            # Most calls repeat the previous decision; reuse it instead of building a new one.
            if (
                last is not None
                and last.reason == "ok"
                and last.max_buy_lots == max_buy
                and last.max_sell_lots == max_sell
                and last.cap_lots == limit
            ):
                return last
            reason = "ok"
        else:
            blocked = "buys" if not max_buy else "sells"
            if not max_buy and not max_sell:
                blocked = "buys and sells"
            which = "notional" if by_notional == limit else "position"
            reason, self.state = f"{which} limit {limit} lots: no {blocked}", "limited"
        self._last = RiskDecision(
            max_buy > 0, max_sell > 0, False, False, reason, max_buy, max_sell, limit
        )
        return self._last


@dataclass(frozen=True)
class AccountLimits:
    """Caps across every symbol of one account, quote currency.

    Parameters
    ----------
    max_total_notional : Decimal
        Largest total worst-case gross notional (> 0).
    max_total_drawdown : Decimal
        Drop of the total net PnL from its peak that kills every symbol (> 0).
    """

    max_total_notional: Decimal
    max_total_drawdown: Decimal

    def __post_init__(self) -> None:
        for name in ("max_total_notional", "max_total_drawdown"):
            v = getattr(self, name)
            if not isinstance(v, Decimal) or not v.is_finite() or v <= 0:
                raise ValueError(f"{name} must be a positive finite Decimal, got {v!r}")

    @classmethod
    def from_config(cls, risk: RiskConfig) -> AccountLimits:
        """Build from ``[risk]`` (``"auto"`` caps are the per-symbol ones)."""
        notional, drawdown = risk.account_caps()
        return cls(notional, drawdown)


class AccountRisk:
    """The account-level caps shared by the runners of one process (one thread).

    Each runner reports its worst-case gross notional whenever its orders, position or
    mark change (:meth:`set_exposure`) and its net PnL before every decision
    (:meth:`set_pnl`), and asks :meth:`cap_lots` for the room the other symbols leave it.
    Sums are exact (Decimal); an exposure that cannot be valued (no mark yet) leaves the
    other symbols no room at all, since its size is unknown (fail closed).

    Parameters
    ----------
    limits : AccountLimits
    records : mmbot.records.Records or None
        Where the account's kill latch and drawdown peak persist (key :data:`ACCOUNT_KEY`).
    """

    def __init__(self, limits: AccountLimits, records: Any = None) -> None:
        self.limits = limits
        self.records = records
        self._gross: dict[str, Decimal | None] = {}
        self._pnl: dict[str, Decimal] = {}
        self._managers: dict[str, RiskManager] = {}
        self._on_kill: dict[str, Callable[[int], None]] = {}
        self.peak_pnl: Decimal | None = Decimal(0)
        self.killed = False
        self.kill_reason = ""
        self._saved: RiskState | None = None
        self.cap_limited = 0  # decisions whose cap the account tightened
        if records is not None:
            state = records.load_risk_state(ACCOUNT_KEY)
            if state is not None:
                self.killed, self.kill_reason = state.killed, state.kill_reason
                self.peak_pnl = state.peak_pnl
                self._saved = state

    def add(self, symbol: str, manager: RiskManager, on_kill: Callable[[int], None]) -> None:
        """Register ``symbol``'s risk manager; ``on_kill(now_ms)`` runs when the account
        kill switch trips (the runner pulls its quotes at once)."""
        if symbol in self._managers:
            raise ValueError(f"{symbol} is already registered with the account")
        self._managers[symbol] = manager
        self._gross[symbol] = Decimal(0)
        self._on_kill[symbol] = on_kill
        if self.killed:
            manager.trip(self.kill_reason)

    @property
    def symbols(self) -> tuple[str, ...]:
        """The registered symbols."""
        return tuple(self._managers)

    def set_exposure(self, symbol: str, gross_notional: Decimal | None) -> None:
        """Take ``symbol``'s worst-case gross notional now (None: it has exposure but no
        mark to value it)."""
        self._gross[symbol] = gross_notional

    def exposure(self, symbol: str) -> Decimal | None:
        """Return the last gross notional reported for ``symbol``."""
        return self._gross[symbol]

    def total_notional(self) -> Decimal | None:
        """Return the total gross notional (None if a symbol's cannot be valued)."""
        total = Decimal(0)
        for v in self._gross.values():
            if v is None:
                return None
            total += v
        return total

    def total_pnl(self) -> Decimal:
        """Return the account's net PnL: the sum of the symbols' that are known."""
        return sum(self._pnl.values(), Decimal(0))

    def cap_lots(self, symbol: str, lot_value: Decimal | None) -> int:
        """Return the largest worst-case position (lots, either side) ``symbol`` may hold
        without the total passing ``max_total_notional``; ``lot_value`` is one lot's
        notional at its mark (None: no mark, no room)."""
        if lot_value is None or lot_value <= 0:
            return 0
        room = self.limits.max_total_notional
        for other, v in self._gross.items():
            if other == symbol:
                continue
            if v is None:
                return 0
            room -= v
        if room <= 0:
            return 0
        # exact: a rounded Decimal quotient could round up onto the next whole lot
        room_n, room_d = room.as_integer_ratio()
        lot_n, lot_d = lot_value.as_integer_ratio()
        return (room_n * lot_d) // (room_d * lot_n)

    def set_pnl(self, symbol: str, pnl: Decimal | None, now_ms: int) -> None:
        """Take ``symbol``'s net PnL and check the total drawdown; a breach trips every
        symbol's kill switch and asks each runner to pull its quotes."""
        if pnl is not None:
            self._pnl[symbol] = pnl
        total = self.total_pnl()
        if self.peak_pnl is None or total > self.peak_pnl:
            self.peak_pnl = total
        if not self.killed and self.peak_pnl - total >= self.limits.max_total_drawdown:
            self.killed = True
            self.kill_reason = (
                f"account kill switch: total drawdown {self.peak_pnl - total} from peak "
                f"{self.peak_pnl} >= {self.limits.max_total_drawdown}"
            )
            log.warning("%s: pulling every symbol", self.kill_reason)
            for manager in self._managers.values():
                manager.trip(self.kill_reason)
            self._save(now_ms)
            for other, pull in self._on_kill.items():
                if other != symbol:  # the caller is deciding now: it pulls on its own
                    pull(now_ms)
        elif self.records is not None:
            self._save(now_ms)

    def reset_kill(self, now_ms: int) -> None:
        """Re-arm after an account kill (an operator decision); the peak restarts."""
        self.killed = False
        self.kill_reason = ""
        self.peak_pnl = None
        self._save(now_ms)

    def _save(self, now_ms: int) -> None:
        if self.records is None:
            return
        state = RiskState(self.killed, self.kill_reason, self.peak_pnl)
        if state != self._saved:
            self.records.save_risk_state(ACCOUNT_KEY, state, now_ms)
            self._saved = state
