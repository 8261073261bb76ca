from libc.stdint cimport int32_t, int64_t, uint64_t

from obcore.side cimport Side

# Tallest tower. With a 1/4 promotion chance, 12 levels keep searches logarithmic up to
# 4**12 (about 16.7 million) levels a side, far beyond any L2 feed, and a fixed-size node
# is what lets one contiguous pool grow by realloc.
cdef enum:
    SKIP_MAX_HEIGHT = 12

# Nodes live in one pool array and link by int32 index, not pointer, so reserve() can
# realloc the pool without fixing up links. Index 0 is the head sentinel; because nothing
# ever links forward to the head, a forward link of 0 means "end of list".
ctypedef struct SkipNode:
    int64_t key
    int64_t qty
    # Level 0 back link (the head for the first node): makes trim() walk from the tail.
    int32_t prev
    int32_t height
    int32_t next[SKIP_MAX_HEIGHT]


cdef class SkipListSide(Side):
    cdef SkipNode* nodes
    # Pool slots allocated (head included).
    cdef Py_ssize_t cap
    # Pool slots ever handed out (head included); slots below it are live or on the free list.
    cdef Py_ssize_t used
    # Free list threaded through next[0]; 0 when empty.
    cdef int32_t free_head
    # Last (worst) node, 0 when empty.
    cdef int32_t tail
    # Height of the tallest live tower (1 when empty), so searches skip empty levels.
    cdef int32_t level
    cdef uint64_t rng_state

    cdef void _reset(self) noexcept nogil
    cdef int _grow(self, Py_ssize_t need) noexcept
    cdef int32_t _random_height(self) noexcept nogil
    cdef int32_t _find(self, int64_t key) noexcept nogil
    cdef void _release(self, int32_t i) noexcept nogil
