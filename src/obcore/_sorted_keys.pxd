# Search in an int64 key array sorted descending, shared by the sorted-array side and the
# ladder's overflow (both keep the best, smallest, key at the end).
from libc.stdint cimport int64_t


cdef inline Py_ssize_t find_desc(const int64_t* keys, Py_ssize_t n, int64_t key) noexcept nogil:
    # First index whose key is <= key. Scans back from the best end first: most updates
    # land within a few levels of the touch; a binary search covers the rest.
    cdef Py_ssize_t i = n - 1
    cdef Py_ssize_t stop = n - 8 if n > 8 else 0
    cdef Py_ssize_t lo, hi, mid
    while i >= stop:
        if keys[i] >= key:
            return i if keys[i] == key else i + 1
        i -= 1
    if stop == 0:
        return 0
    lo = 0
    hi = stop
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] > key:
            lo = mid + 1
        else:
            hi = mid
    return lo
