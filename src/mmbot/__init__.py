"""mmbot: a market maker for Bybit v5 built on the obcore orderbook engine.

The strategy, order manager and risk code talk to a ``Venue`` interface and never
import pybit; see ``mmbot.instrument``, ``mmbot.strategy``, ``mmbot.risk``,
``mmbot.pnl``, ``mmbot.records`` and ``mmbot.config``.
"""

__version__ = "0.1.0"
