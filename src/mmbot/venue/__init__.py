"""Venues: where orders go. ``base`` defines the interface; ``sim`` and ``bybit`` implement it."""
from mmbot.venue.base import *  # noqa: F403 - re-export the interface types
from mmbot.venue.base import __all__  # noqa: F401
