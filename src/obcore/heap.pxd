from libc.stdint cimport int64_t

from obcore.side cimport Side


# A level in the heap array; `slot` is where its key sits in the hash table, so moving a
# heap entry updates the table without hashing.
ctypedef struct HeapEntry:
    int64_t key
    int64_t qty
    Py_ssize_t slot

# A hash table slot: key -> heap position; pos < 0 marks an empty slot (every int64 is a
# valid key, so the key itself cannot be the marker).
ctypedef struct HeapSlot:
    int64_t key
    Py_ssize_t pos


# fill()/trim() candidate: a heap position with its key copied in, so ordering the
# candidates never chases a pointer.
ctypedef struct HeapCand:
    int64_t key
    Py_ssize_t pos


cdef class HeapSide(Side):
    cdef HeapEntry* heap
    cdef Py_ssize_t heap_cap
    cdef HeapSlot* table
    # Power of two, at least twice the largest count reserve() allowed for.
    cdef Py_ssize_t table_cap
    # 64 - log2(table_cap): Fibonacci hashing keeps the top bits.
    cdef int table_shift
    # fill()/trim() scratch: a min-heap of candidates, heap_cap + 1 long.
    cdef HeapCand* aux

    cdef int _grow(self, Py_ssize_t need) noexcept
    cdef Py_ssize_t _home(self, int64_t key) noexcept nogil
    cdef Py_ssize_t _lookup(self, int64_t key) noexcept nogil
    cdef void _table_delete(self, Py_ssize_t slot) noexcept nogil
    cdef void _sift_up(self, Py_ssize_t pos) noexcept nogil
    cdef void _sift_down(self, Py_ssize_t pos) noexcept nogil
    cdef void _remove_at(self, Py_ssize_t pos) noexcept nogil
    cdef void _set_best(self) noexcept nogil
    cdef Py_ssize_t _walk(self, int64_t* keys, int64_t* qtys, Py_ssize_t n) noexcept nogil
