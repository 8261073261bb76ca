from libc.stdint cimport int64_t

from obcore.side cimport Side


cdef class SortedArraySide(Side):
    # Keys descending, so the best (smallest) key is last and the near-touch inserts
    # that dominate L2 feeds move only the few elements after them.
    cdef int64_t* keys
    cdef int64_t* qtys
    cdef Py_ssize_t cap

    cdef int _grow(self, Py_ssize_t need) noexcept
