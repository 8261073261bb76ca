"""mmbot: a market maker for Bybit v5 built on the obcore orderbook engine.

The strategy, order manager and risk code talk to a ``Venue`` interface and never
import pybit; see ``mmbot.instrument``, ``mmbot.strategy``, ``mmbot.risk``,
``mmbot.pnl``, ``mmbot.records`` and ``mmbot.config``.
"""

from obcore import __version__  # one distribution, one version

__all__ = ["__version__"]
