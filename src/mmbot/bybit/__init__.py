"""Everything that speaks to Bybit through pybit, and nothing else does.

- :mod:`mmbot.bybit.clients`: pybit's clients aimed at a base URL (Bybit or the local
  simulator), with the fixes they need against a fast server.
- :mod:`mmbot.bybit.frames`: the sockets' read loop: frames cut out of large reads,
  text frames handed straight to the hook, RFC 6455 violations fail the connection.
- :mod:`mmbot.bybit.book_feed`: :class:`BookFeed`, the public stream that hands raw
  orderbook frames to obcore books.
- :mod:`mmbot.bybit.venue`: :class:`BybitVenue`, the :class:`~mmbot.venue.base.Venue` on
  Bybit v5 (REST, trade socket, private streams).
- :mod:`mmbot.bybit.messages`: Bybit's message shapes to :mod:`mmbot.types`.
"""

from mmbot.bybit.book_feed import BookFeed, FeedBook
from mmbot.bybit.clients import LocalEndpoint, LocalWebSocket, LocalWebSocketTrading, local_http
from mmbot.bybit.venue import BybitVenue

__all__ = [
    "BookFeed",
    "BybitVenue",
    "FeedBook",
    "LocalEndpoint",
    "LocalWebSocket",
    "LocalWebSocketTrading",
    "local_http",
]
