# cython: language_level=3
"""A speed floor for the level-update benchmark: a minimal flat tick array. Not an order book.

What it is: one dense int64 size array per side, indexed by ``price_ticks - base`` over a
fixed window of ``span`` ticks (``base`` is set by the first level after a clear, half a
window below it), with the best index tracked on every write. Levels arrive the way
``obcore.Book.apply_levels`` gets them (lists of ``[price, size]`` str pairs) and their
decimal strings are parsed in C by obcore's own exact parser (``_parse.h``), so the floor
pays exactly the parse and the Python list access every obcore variant pays, plus one
array store, and nothing else.

What it is not: it has no staging (a bad level raises half way through a message, leaving
the levels before it applied), no sequencing, no recentring (a price outside the window
raises ``ValueError``: the benchmark's workloads stay well inside 1 << 20 ticks), no RPI
sizes, no max depth, and reads scan the array. Those are what a correct book pays for;
this is the lower bound the ladder's per-level cost is compared with
(``obcore.bench.peers.FloorPeer``), and the benchmark checks its book against the exact
reference like every other peer's.
"""
from cpython.ref cimport PyObject
from libc.stdint cimport int64_t
from libc.stdlib cimport calloc, free


cdef extern from "Python.h":
    bint _list_exact "PyList_CheckExact"(PyObject* o)
    Py_ssize_t _list_size "PyList_GET_SIZE"(PyObject* o)
    PyObject* _list_item "PyList_GET_ITEM"(PyObject* o, Py_ssize_t i)
    bint _str_exact "PyUnicode_CheckExact"(PyObject* o)
    bint _str_ascii "PyUnicode_IS_COMPACT_ASCII"(PyObject* o)
    const char* _str_data "PyUnicode_DATA"(PyObject* o)
    Py_ssize_t _str_len "PyUnicode_GET_LENGTH"(PyObject* o)


cdef extern from "_parse.h" nogil:
    ctypedef struct ob_scale:
        int64_t mant
        int dec
    enum:
        OB_OK
    int ob_parse_scaled(const char* s, size_t n, const ob_scale* sc, int64_t* out)
    int ob_parse_step(const char* s, size_t n, ob_scale* sc)


cdef enum:
    FLOOR_SPAN = 1 << 20


cdef inline bint _ascii(PyObject* o) noexcept:
    return _str_exact(o) and _str_ascii(o)


cdef int _bad_level(PyObject* lvl) except -1:
    raise ValueError(f"floor: {<object>lvl!r} is not a [price, size] pair of numbers on the grid")


cdef int _scale(str text, ob_scale* sc) except -1:
    cdef bytes b = text.encode()
    if ob_parse_step(b, len(b), sc) != OB_OK:
        raise ValueError(f"floor: bad step {text!r}")
    return 0


cdef class FloorBook:
    """Dense per-tick sizes for both sides; see the module docstring (a floor, not a book)."""

    cdef int64_t* bid
    cdef int64_t* ask
    cdef int64_t base
    cdef Py_ssize_t best_b      # index of the best bid, -1 when the side is empty
    cdef Py_ssize_t best_a      # index of the best ask, FLOOR_SPAN when empty
    cdef Py_ssize_t n_b
    cdef Py_ssize_t n_a
    cdef bint based
    cdef ob_scale px
    cdef ob_scale qty

    def __cinit__(self, str tick_size, str lot_size):
        _scale(tick_size, &self.px)
        _scale(lot_size, &self.qty)
        self._alloc()

    cdef int _alloc(self) except -1:
        # calloc of a large block maps fresh zero pages: only the pages a replay touches are
        # ever faulted in, so clearing is a free and a calloc, not a sweep of 16 MB.
        free(self.bid)
        free(self.ask)
        self.bid = <int64_t*>calloc(FLOOR_SPAN, sizeof(int64_t))
        self.ask = <int64_t*>calloc(FLOOR_SPAN, sizeof(int64_t))
        if self.bid is NULL or self.ask is NULL:
            raise MemoryError()
        self.best_b = -1
        self.best_a = FLOOR_SPAN
        self.n_b = self.n_a = 0
        self.based = False
        return 0

    def __dealloc__(self):
        free(self.bid)
        free(self.ask)

    def clear(self):
        """Forget every level."""
        self._alloc()

    cdef int _side(self, PyObject* levels, bint is_bid) except -1:
        # Everything the loop updates lives in locals: stores through the size array may
        # alias the object's int64 fields, which the compiler would otherwise reload.
        cdef Py_ssize_t k, n, i
        cdef PyObject* lvl
        cdef PyObject* p
        cdef PyObject* q
        cdef int64_t ticks, lots, old
        cdef int64_t* sz = self.bid if is_bid else self.ask
        cdef Py_ssize_t best = self.best_b if is_bid else self.best_a
        cdef Py_ssize_t count = self.n_b if is_bid else self.n_a
        cdef int64_t base = self.base
        cdef bint based = self.based
        try:
            n = _list_size(levels)
            for k in range(n):
                lvl = _list_item(levels, k)
                if not _list_exact(lvl) or _list_size(lvl) < 2:
                    _bad_level(lvl)
                p = _list_item(lvl, 0)
                q = _list_item(lvl, 1)
                if not (_ascii(p) and _ascii(q)) or ob_parse_scaled(
                        _str_data(p), <size_t>_str_len(p), &self.px, &ticks) != OB_OK or \
                        ob_parse_scaled(_str_data(q), <size_t>_str_len(q), &self.qty,
                                        &lots) != OB_OK:
                    _bad_level(lvl)
                if not based:
                    base = ticks - FLOOR_SPAN // 2
                    based = True
                i = <Py_ssize_t>(ticks - base)
                if <size_t>i >= FLOOR_SPAN:
                    _bad_level(lvl)
                old = sz[i]
                sz[i] = lots
                if is_bid:
                    if lots:
                        count += old == 0
                        if i > best:
                            best = i
                    elif old:
                        count -= 1
                        if i == best:
                            if count == 0:
                                best = -1
                            else:
                                while sz[best] == 0:
                                    best -= 1
                else:
                    if lots:
                        count += old == 0
                        if i < best:
                            best = i
                    elif old:
                        count -= 1
                        if i == best:
                            if count == 0:
                                best = FLOOR_SPAN
                            else:
                                while sz[best] == 0:
                                    best += 1
        finally:
            self.base = base
            self.based = based
            if is_bid:
                self.best_b = best
                self.n_b = count
            else:
                self.best_a = best
                self.n_a = count
        return 0

    def apply_levels(self, list bids, list asks):
        """Apply ``[price, size]`` str pairs to each side (size ``"0"`` deletes).

        A price outside the fixed window, or a bad level, raises ValueError
        with the levels before it applied (no staging: this is a floor, not a book).
        """
        self._side(<PyObject*>bids, True)
        self._side(<PyObject*>asks, False)

    def best_bid(self):
        """The best bid in ticks, or None."""
        return self.base + self.best_b if self.n_b else None

    def best_ask(self):
        """The best ask in ticks, or None."""
        return self.base + self.best_a if self.n_a else None

    def levels(self, bint is_bid, Py_ssize_t n):
        """Up to ``n`` ``(ticks, lots)`` levels of one side, best first (a scan)."""
        cdef list out = []
        cdef Py_ssize_t i
        cdef int64_t* sz = self.bid if is_bid else self.ask
        # Stop at the side's last level, not at the window's end.
        n = min(n, self.n_b if is_bid else self.n_a)
        if is_bid:
            i = self.best_b
            while i >= 0 and len(out) < n:
                if sz[i]:
                    out.append((self.base + i, sz[i]))
                i -= 1
        else:
            i = self.best_a
            while i < FLOOR_SPAN and len(out) < n:
                if sz[i]:
                    out.append((self.base + i, sz[i]))
                i += 1
        return out

    def __len__(self):
        return self.n_b + self.n_a
