# cython: language_level=3
"""Abstract base of the per-side data structures (see side.pxd for the contract)."""


cdef class Side:
    def __cinit__(self):
        # The base class's writes and reads are no-ops that cannot raise (they are noexcept
        # for the subclasses' sake): an instance of it would silently drop every level.
        if type(self) is Side:
            raise TypeError("obcore.side.Side is abstract: instantiate a subclass")
        self.count = 0
        self.best_key = EMPTY_KEY
        self.best_qty = 0

    cdef int reserve(self, Py_ssize_t extra) except -1:
        raise NotImplementedError

    cdef void set(self, int64_t key, int64_t qty) noexcept:
        pass

    cdef void set_many(self, const int64_t* kv, Py_ssize_t n) noexcept:
        # The generic loop; a variant whose set() is worth inlining overrides it.
        cdef Py_ssize_t i
        for i in range(n):
            self.set(kv[2 * i], kv[2 * i + 1])

    cdef int64_t get(self, int64_t key) noexcept:
        return 0

    cdef void clear(self) noexcept:
        pass

    cdef Py_ssize_t fill(self, int64_t* keys, int64_t* qtys, Py_ssize_t n) noexcept:
        return 0

    cdef void trim(self, Py_ssize_t depth) noexcept:
        pass

    cdef int check(self) except -1:
        raise NotImplementedError
