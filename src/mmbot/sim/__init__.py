"""Simulated trading: the matching engine shared by ``SimVenue`` and the local Bybit simulator."""

from mmbot.sim.engine import MatchingEngine, OrderRejected

__all__ = ["MatchingEngine", "OrderRejected"]
