"""The abstract :class:`Venue` that strategy, order manager and risk code talk to, and the
venue's request-rate limits.

The types a venue takes and reports (requests, orders, executions, events) live in
:mod:`mmbot.types`. Live venues may call the event handler from their own threads; the
runner is responsible for handing events to its single owning thread. ``SimVenue`` calls it
synchronously.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

from mmbot.types import (
    AmendRequest,
    CancelRequest,
    EventHandler,
    Order,
    OrderRequest,
    Position,
    VenueEvent,
)

__all__ = ["RateLimits", "Venue"]


@dataclass(slots=True)
class RateLimits:
    """Per-second order-entry limits of a venue (Bybit per-UID defaults for linear)."""

    create_cancel_per_s: int = 10
    amend_per_s: int = 10
    cancel_all_per_s: int = 10
    max_batch: int = 20

    @classmethod
    def for_category(cls, category: str) -> RateLimits:
        """Return Bybit's default limits for ``"linear"`` or ``"spot"``."""
        if category == "spot":
            return cls(create_cancel_per_s=20, amend_per_s=10, cancel_all_per_s=20, max_batch=10)
        if category in ("linear", "inverse"):
            return cls()
        raise ValueError(f"category must be 'linear', 'inverse' or 'spot', got {category!r}")

    def per_class(self) -> dict[str, int]:
        """Return the limits by the request classes an exchange counts apart (cancel-all
        counts as a cancel)."""
        return {
            "create": self.create_cancel_per_s,
            "amend": self.amend_per_s,
            "cancel": self.create_cancel_per_s,
        }


class Venue(abc.ABC):
    """Where orders go. Strategy, order manager and risk only ever see this interface.

    Subclasses must set :attr:`category` and implement the abstract methods. Batch forms
    default to one call per item; venues with real batch endpoints override them.
    """

    #: Bybit category of the instruments traded here ("linear", "spot", ...).
    category: str = "linear"
    #: Whether :meth:`amend` is supported (otherwise the order manager cancels/replaces).
    supports_amend: bool = True

    def __init__(self) -> None:
        self._handler: EventHandler | None = None
        self.rate_limits = RateLimits.for_category(self.category)

    # -- events ---------------------------------------------------------------------------
    def set_handler(self, handler: EventHandler | None) -> None:
        """Set the callable that receives every :data:`VenueEvent` (``None`` to detach)."""
        self._handler = handler

    def emit(self, event: VenueEvent) -> None:
        """Deliver ``event`` to the handler (a venue implementation calls this)."""
        handler = self._handler
        if handler is not None:
            handler(event)

    # -- clock and state ------------------------------------------------------------------
    @abc.abstractmethod
    def now_ms(self) -> int:
        """Return the venue clock in epoch milliseconds (simulated for ``SimVenue``)."""

    @property
    @abc.abstractmethod
    def connected(self) -> bool:
        """Whether order entry and the private streams are up."""

    @abc.abstractmethod
    def instrument_info(self, symbol: str) -> dict:
        """Return one element of Bybit's ``get_instruments_info`` ``result.list``.

        Feed it to ``mmbot.instrument.Instrument.from_bybit(venue.category, info)``.
        """

    @abc.abstractmethod
    def open_orders(self, symbol: str) -> list[Order]:
        """Return the venue's open orders for ``symbol`` (blocking query, e.g. REST)."""

    def order_status(self, symbol: str, order_link_id: str) -> Order | None:
        """Return the venue's state of one of our orders, open or closed, by client id; None
        when the venue has never seen it (blocking query, e.g. REST order history).

        The default knows nothing (None), which keeps an unacknowledged create counted as
        in flight until it times out: the safe answer for a venue that cannot say.
        """
        return None

    @abc.abstractmethod
    def position(self, symbol: str) -> Position:
        """Return the venue's current position for ``symbol`` (blocking query)."""

    # -- order entry ----------------------------------------------------------------------
    @abc.abstractmethod
    def place(self, request: OrderRequest) -> None:
        """Send a new order; the outcome arrives as events."""

    @abc.abstractmethod
    def amend(self, request: AmendRequest) -> None:
        """Send an amend; the outcome arrives as events."""

    @abc.abstractmethod
    def cancel(self, request: CancelRequest) -> None:
        """Send a cancel; the outcome arrives as events."""

    @abc.abstractmethod
    def cancel_all(self, symbol: str) -> None:
        """Cancel every open order on ``symbol``; the outcome arrives as events."""

    def place_batch(self, requests: Sequence[OrderRequest]) -> None:
        """Send several new orders (at most ``rate_limits.max_batch``)."""
        self._check_batch(requests)
        for request in requests:
            self.place(request)

    def amend_batch(self, requests: Sequence[AmendRequest]) -> None:
        """Send several amends (at most ``rate_limits.max_batch``)."""
        self._check_batch(requests)
        for request in requests:
            self.amend(request)

    def cancel_batch(self, requests: Sequence[CancelRequest]) -> None:
        """Send several cancels (at most ``rate_limits.max_batch``)."""
        self._check_batch(requests)
        for request in requests:
            self.cancel(request)

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections; the default does nothing."""

    def _check_batch(self, requests: Sequence[object]) -> None:
        if len(requests) > self.rate_limits.max_batch:
            raise ValueError(
                f"batch of {len(requests)} exceeds the venue's max_batch "
                f"{self.rate_limits.max_batch}"
            )
