# cython: language_level=3
"""A toy quoting rule in Cython that reads the top of an obcore book through its C API.

``from obcore.book cimport Book`` works wherever obcore is installed: the wheel ships
``book.pxd`` (and ``side.pxd``) next to the compiled module. The ``c_*`` methods read the
book's cached touch and copy levels into C arrays without creating a Python object, and
``apply_raw`` takes a frame's bytes straight into the C parser.

*** THIS IS A TEST STRATEGY WITH NO ALPHA ADVANTAGE WHATSOEVER. ***
"""
from libc.math cimport ceil, floor
from libc.stdint cimport int64_t

from obcore.book cimport Book

cdef enum:
    MAX_LEVELS = 64    # levels read per side, on the C stack


cdef class Quoter:
    """Quote ``half_spread`` ticks around a fair price skewed by the top-``levels`` imbalance.

    The quotes are post-only safe: the bid stays below the best ask and the ask above the
    best bid, so neither would take liquidity.
    """

    cdef readonly int64_t half_spread
    cdef readonly Py_ssize_t levels

    def __init__(self, int64_t half_spread, Py_ssize_t levels=5):
        if half_spread < 0 or not 0 < levels <= MAX_LEVELS:
            raise ValueError(f"need half_spread >= 0 and 0 < levels <= {MAX_LEVELS}")
        self.half_spread = half_spread
        self.levels = levels

    cpdef object quote(self, Book book):
        """Return ``(bid ticks, ask ticks)``, or None while either side is empty."""
        cdef int64_t ticks[MAX_LEVELS]
        cdef int64_t lots[MAX_LEVELS]
        cdef int64_t bid, ask, my_bid, my_ask
        cdef double bid_lots = 0, ask_lots = 0, fair
        cdef Py_ssize_t i, n
        if not book.c_has_bid() or not book.c_has_ask():
            return None
        bid = book.c_best_bid()
        ask = book.c_best_ask()
        n = book.c_depth(True, ticks, lots, self.levels)
        for i in range(n):
            bid_lots += lots[i]
        n = book.c_depth(False, ticks, lots, self.levels)
        for i in range(n):
            ask_lots += lots[i]
        # More size bid than offered pushes the fair price toward the ask, and back.
        fair = (bid + ask) / 2.0 + (bid_lots - ask_lots) / (bid_lots + ask_lots) * (ask - bid) / 2.0
        my_bid = min(<int64_t>floor(fair) - self.half_spread, ask - 1)
        my_ask = max(<int64_t>ceil(fair) + self.half_spread, bid + 1)
        return my_bid, my_ask

    def on_frame(self, Book book, bytes frame):
        """Apply one raw frame (UTF-8 bytes) in C, then quote. obcore's errors propagate."""
        book.apply_raw(frame, len(frame))
        return self.quote(book)
