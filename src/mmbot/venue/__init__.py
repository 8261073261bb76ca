"""Venues: where orders go. ``base`` defines the interface, ``sim`` is the in-process
simulated venue; the Bybit venue lives in :mod:`mmbot.bybit`."""

from mmbot.venue.base import RateLimits, Venue

__all__ = ["RateLimits", "Venue"]
