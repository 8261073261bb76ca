# Public C-level API of obcore.Book, for Cython code that cimports it:
#     from obcore.book cimport Book
# Prices are int64 ticks, sizes int64 lots. The c_* methods never touch Python objects.
cimport cython
from libc.stdint cimport int64_t

from obcore.side cimport Side


cdef struct GridScale:  # mirrors _parse.h ob_scale
    int64_t mant
    int dec


# Best-first rows copied out of a side for one read (see Book._rows).
cdef struct Rows:
    int64_t* k
    int64_t* q
    Py_ssize_t n
    bint owned


cdef class Book:
    cdef readonly str kind
    cdef readonly Py_ssize_t max_depth
    cdef Side _bids          # keys are minus the bid price, so the best bid is the smallest key
    cdef Side _asks
    cdef Side _rpi_bids      # RPI sizes of orderbook.rpi levels; None until one is seen
    cdef Side _rpi_asks
    cdef GridScale _px
    cdef GridScale _qty
    cdef str _tick_size
    cdef str _lot_size
    cdef int64_t _u
    cdef int64_t _seq
    cdef int64_t _ts
    cdef int64_t _cts
    cdef bint _synced
    cdef bint _has_snapshot
    cdef int _desync         # why _synced is false (see book.pyx)
    cdef bint _ready         # __init__ completed; writes refuse before that
    cdef bint _reading       # the scratch rows are in use by a read
    cdef object _symbol      # str or None
    cdef object _topic       # str or None
    cdef bytes _symbol_b
    cdef bytes _topic_b
    cdef void* _stage        # parser staging, see book.pyx
    cdef int64_t* _sk        # scratch for ordered reads
    cdef int64_t* _sq
    cdef Py_ssize_t _scap

    # Apply one raw frame (UTF-8 JSON text); returns 1 snapshot, 2 delta, 0 stale; raises on
    # any rejected frame, leaving the book unchanged.
    cdef int apply_raw(self, const char* buf, Py_ssize_t n) except -1
    cdef int set_level_c(self, bint is_bid, int64_t ticks, int64_t lots) except -1

    cdef bint c_has_bid(self) noexcept
    cdef bint c_has_ask(self) noexcept
    cdef int64_t c_best_bid(self) noexcept       # ticks; meaningless when c_has_bid() is false
    cdef int64_t c_best_ask(self) noexcept
    cdef int64_t c_best_bid_qty(self) noexcept   # lots, 0 when empty
    cdef int64_t c_best_ask_qty(self) noexcept
    cdef Py_ssize_t c_bid_count(self) noexcept
    cdef Py_ssize_t c_ask_count(self) noexcept
    # Copy up to n levels best-first into ticks/lots; returns how many.
    cdef Py_ssize_t c_depth(self, bint is_bid, int64_t* ticks, int64_t* lots, Py_ssize_t n) noexcept

    cdef object _frame_error(self, const char* buf, Py_ssize_t n)
    cdef int _stage_error(self, void* err, str field) except -1
    cdef int64_t _parse_c(self, text, bint is_price, str field, Py_ssize_t index,
                          str part=*) except? -1
    cdef int _commit(self, void* stage) except -1

    @cython.final
    cdef void _write_staged(self, void* stage) noexcept
    cdef object _levels_array(self, bint is_bid, n, bint rpi=*)
    cdef list _export(self, bint is_bid, n)
    cdef int _rows(self, bint is_bid, Py_ssize_t n, Rows* r) except -1
    cdef int _side_rows(self, Side s, bint is_bid, Py_ssize_t n, Rows* r) except -1

    @cython.final
    cdef int _reserve_staged(self, void* stage) except -1
    cdef void _release(self, Rows* r) noexcept

    @cython.final
    cdef int _check_ready(self) except -1
    cdef str _format(self, value, bint is_price)
