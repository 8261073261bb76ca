"""WebSocket frame headers (RFC 6455 section 5.2), written by both ends we own.

The bot's trade socket writes its order frames itself (:mod:`mmbot.bybit.clients`) and
the simulator writes its market frames in batches (:mod:`mmbot.sim.routes`); both build
the same header, which lives here so neither end imports the other. Reading frames is
:mod:`mmbot.bybit.frames`' job.
"""

from __future__ import annotations

import struct

__all__ = ["text_frame_header"]

_PACK_HEAD16 = struct.Struct("!BBH").pack
_PACK_HEAD64 = struct.Struct("!BBQ").pack


def text_frame_header(n: int, masked: bool = False) -> bytes:
    """Return the header of one final, uncompressed text frame of ``n`` payload bytes: a
    server's (unmasked), or a client's (mask bit set; its 4-byte key goes between this
    header and the payload).

    >>> text_frame_header(5), text_frame_header(5, masked=True)
    (b'\\x81\\x05', b'\\x81\\x85')
    >>> text_frame_header(300)
    b'\\x81~\\x01,'
    """
    mask_bit = 0x80 if masked else 0
    if n < 126:
        return bytes((0x81, mask_bit | n))
    if n < 65536:
        return _PACK_HEAD16(0x81, mask_bit | 126, n)
    return _PACK_HEAD64(0x81, mask_bit | 127, n)
