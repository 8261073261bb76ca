# One side of an L2 book. Every data-structure variant subclasses Side.
#
# Keys ascend and the best level is the smallest key: asks store the price in ticks,
# bids store minus the price, so one implementation serves both sides. Quantities are
# lots, always > 0 for a stored level.
from libc.stdint cimport int64_t

# best_key of an empty side.
cdef enum:
    EMPTY_KEY = 0x7FFFFFFFFFFFFFFF

cdef class Side:
    # Number of levels stored.
    cdef Py_ssize_t count
    # Kept current by every write so reads never pay for writes.
    cdef int64_t best_key
    cdef int64_t best_qty

    # Make the next `extra` inserts unable to fail (allocate now). Book calls this before
    # committing a frame, so a commit never stops half way.
    cdef int reserve(self, Py_ssize_t extra) except -1
    # qty > 0 inserts or replaces; qty == 0 deletes (absent key: no-op). Cannot fail after
    # reserve() covered the insert.
    cdef void set(self, int64_t key, int64_t qty) noexcept
    # set() for each of n staged (key, qty) pairs kv[2i], kv[2i + 1], in order: one call per
    # side per frame. Cannot fail after reserve() covered the inserts.
    cdef void set_many(self, const int64_t* kv, Py_ssize_t n) noexcept
    # Quantity at key, 0 when absent.
    cdef int64_t get(self, int64_t key) noexcept
    cdef void clear(self) noexcept
    # Copy up to n levels, best first, into keys/qtys; return how many were copied.
    cdef Py_ssize_t fill(self, int64_t* keys, int64_t* qtys, Py_ssize_t n) noexcept
    # Delete the worst levels until at most `depth` remain.
    cdef void trim(self, Py_ssize_t depth) noexcept
    # Raise AssertionError naming the broken invariant.
    cdef int check(self) except -1
