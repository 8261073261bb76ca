# cython: language_level=3
"""Sorted-array side: two parallel C arrays, keys descending, best key at the end.

Invariants: keys[0] > keys[1] > ... > keys[count-1]; every qtys[i] > 0;
best_key == keys[count-1] and best_qty == qtys[count-1] when count > 0.
"""
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from libc.stdint cimport int64_t
from libc.stdio cimport fprintf, stderr
from libc.stdlib cimport abort
from libc.string cimport memmove

from obcore._sorted_keys cimport find_desc
from obcore.side cimport EMPTY_KEY, Side


cdef class SortedArraySide(Side):
    def __dealloc__(self):
        PyMem_Free(self.keys)
        PyMem_Free(self.qtys)
        self.keys = NULL
        self.qtys = NULL

    cdef int reserve(self, Py_ssize_t extra) except -1:
        if self._grow(self.count + extra) < 0:
            raise MemoryError()
        return 0

    cdef int _grow(self, Py_ssize_t need) noexcept:
        cdef Py_ssize_t cap = self.cap
        cdef int64_t* k
        cdef int64_t* q
        if need <= cap:
            return 0
        if cap < 64:
            cap = 64
        while cap < need:
            cap *= 2
        k = <int64_t*>PyMem_Realloc(self.keys, cap * sizeof(int64_t))
        if k is NULL:
            return -1
        self.keys = k
        q = <int64_t*>PyMem_Realloc(self.qtys, cap * sizeof(int64_t))
        if q is NULL:
            return -1
        self.qtys = q
        self.cap = cap
        return 0

    cdef void set(self, int64_t key, int64_t qty) noexcept:
        cdef Py_ssize_t n = self.count
        cdef Py_ssize_t i = find_desc(self.keys, self.count, key)
        cdef int64_t* keys = self.keys
        cdef int64_t* qtys = self.qtys
        if i < n and keys[i] == key:
            if qty == 0:
                memmove(keys + i, keys + i + 1, (n - i - 1) * sizeof(int64_t))
                memmove(qtys + i, qtys + i + 1, (n - i - 1) * sizeof(int64_t))
                n -= 1
                self.count = n
            else:
                qtys[i] = qty
        elif qty != 0:
            if n == self.cap:
                # Only a caller that skipped reserve() gets here. Growing keeps memory safe;
                # if even that fails there is no way to report it from a noexcept write.
                if self._grow(n + 1) < 0:
                    fprintf(stderr,
                            b"obcore: SortedArraySide.set out of memory without reserve()\n")
                    abort()
                keys = self.keys
                qtys = self.qtys
            memmove(keys + i + 1, keys + i, (n - i) * sizeof(int64_t))
            memmove(qtys + i + 1, qtys + i, (n - i) * sizeof(int64_t))
            keys[i] = key
            qtys[i] = qty
            n += 1
            self.count = n
        else:
            return
        if n:
            self.best_key = keys[n - 1]
            self.best_qty = qtys[n - 1]
        else:
            self.best_key = EMPTY_KEY
            self.best_qty = 0

    cdef int64_t get(self, int64_t key) noexcept:
        cdef Py_ssize_t i = find_desc(self.keys, self.count, key)
        if i < self.count and self.keys[i] == key:
            return self.qtys[i]
        return 0

    cdef void clear(self) noexcept:
        self.count = 0
        self.best_key = EMPTY_KEY
        self.best_qty = 0

    cdef Py_ssize_t fill(self, int64_t* keys, int64_t* qtys, Py_ssize_t n) noexcept:
        cdef Py_ssize_t m = self.count if self.count < n else n
        cdef Py_ssize_t j
        cdef Py_ssize_t last = self.count - 1
        for j in range(m):
            keys[j] = self.keys[last - j]
            qtys[j] = self.qtys[last - j]
        return m

    cdef void trim(self, Py_ssize_t depth) noexcept:
        cdef Py_ssize_t drop = self.count - depth
        if drop <= 0:
            return
        memmove(self.keys, self.keys + drop, depth * sizeof(int64_t))
        memmove(self.qtys, self.qtys + drop, depth * sizeof(int64_t))
        self.count = depth
        if depth == 0:
            self.best_key = EMPTY_KEY
            self.best_qty = 0

    cdef int check(self) except -1:
        cdef Py_ssize_t i
        cdef Py_ssize_t n = self.count
        for i in range(n):
            if self.qtys[i] <= 0:
                raise AssertionError(f"sortedarray: level {i} has qty {self.qtys[i]} <= 0")
            if i and self.keys[i - 1] <= self.keys[i]:
                raise AssertionError(f"sortedarray: keys not descending at {i}")
        if n:
            if self.best_key != self.keys[n - 1] or self.best_qty != self.qtys[n - 1]:
                raise AssertionError("sortedarray: cached best differs from the array")
        elif self.best_key != EMPTY_KEY or self.best_qty != 0:
            raise AssertionError("sortedarray: empty side has a cached best")
        return 0
