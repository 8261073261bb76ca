"""Local Bybit v5 exchange simulator on one 127.0.0.1 port: the public entry points.

The real pybit and ccxt clients connect to it unchanged except for their URLs
(``mmbot.bybit.LocalEndpoint`` / ``local_http`` for pybit). The pieces:

* :mod:`mmbot.sim.account`: the account and the matching-engine glue;
* :mod:`mmbot.sim.dispatch`: trading requests, batches, rate windows, request faults;
* :mod:`mmbot.sim.market`: market data sources, implied trades, public topics;
* :mod:`mmbot.sim.routes`: the aiohttp routes and WebSockets, disconnect protection;
* :mod:`mmbot.sim.handle`: start/stop in a thread and the thread-safe test handle;
* :mod:`mmbot.sim.protocol`: Bybit's wire shapes and signatures.
"""

from mmbot.sim.account import SimSymbol
from mmbot.sim.handle import SimulatorHandle, server_tls_context, start_simulator
from mmbot.sim.market import recording_source, synthetic_source, touch_trades
from mmbot.sim.routes import DEFAULT_API_KEY, DEFAULT_API_SECRET, SimServer

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_API_SECRET",
    "SimServer",
    "SimSymbol",
    "SimulatorHandle",
    "recording_source",
    "server_tls_context",
    "start_simulator",
    "synthetic_source",
    "touch_trades",
]
