# cython: language_level=3
"""Indexed-heap side: a binary min-heap of levels plus an int64 -> heap position hash map.

Invariants (checked by ``check()``):

- heap[parent(i)].key < heap[i].key for every i > 0, so the best level is heap[0];
- every heap entry has qty > 0, and table[heap[i].slot] holds its key with pos == i;
- the table holds exactly ``count`` occupied slots, each reachable by linear probing
  from its key's home slot without crossing an empty slot (deletion shifts entries
  back instead of leaving tombstones, so probe chains never rot);
- best_key/best_qty are heap[0]'s (EMPTY_KEY/0 when empty).

Costs: get O(1) expected; set O(1) expected to change a quantity, O(log n) to insert
or delete any level; fill(n) O(n log n) without touching the heap (best-first walk over
a small auxiliary heap of candidate positions); trim() O(n): a scan of the leaves per level
dropped when it drops a few (the usual case), else it finds the depth-th best key,
compacts and re-heapifies, O(n + depth log depth); clear() O(n). Only reserve()
allocates; the table stays at most half full.
"""
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.stdint cimport int64_t, uint64_t

from obcore.side cimport EMPTY_KEY, Side

# 2**64 / golden ratio: Fibonacci hashing spreads runs of adjacent ticks, and prices
# equal modulo the table size, across the table.
cdef uint64_t _FIB = 0x9E3779B97F4A7C15ULL
cdef Py_ssize_t _MIN_TABLE = 16
cdef Py_ssize_t _MIN_HEAP = 8
# trim() dropping at most this many levels scans the leaves once per level dropped.
cdef Py_ssize_t _TRIM_BY_LEAVES = 4


cdef inline void _cand_push(HeapCand* aux, Py_ssize_t size, HeapCand c) noexcept nogil:
    # Add c to the candidate heap aux[0:size] (the caller grows size by one).
    cdef Py_ssize_t parent
    while size > 0:
        parent = (size - 1) >> 1
        if aux[parent].key <= c.key:
            break
        aux[size] = aux[parent]
        size = parent
    aux[size] = c


cdef inline void _cand_replace_top(HeapCand* aux, Py_ssize_t size, HeapCand c) noexcept nogil:
    # Replace aux[0] with c and restore order: one sift instead of a pop plus a push.
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t ch
    while True:
        ch = 2 * i + 1
        if ch >= size:
            break
        if ch + 1 < size and aux[ch + 1].key < aux[ch].key:
            ch += 1
        if aux[ch].key >= c.key:
            break
        aux[i] = aux[ch]
        i = ch
    aux[i] = c


cdef class HeapSide(Side):
    def __cinit__(self):
        self.heap = NULL
        self.table = NULL
        self.aux = NULL
        self.heap_cap = 0
        self.table_cap = 0
        if self._grow(_MIN_HEAP) < 0:
            raise MemoryError()

    def __dealloc__(self):
        PyMem_Free(self.heap)
        PyMem_Free(self.table)
        PyMem_Free(self.aux)
        self.heap = NULL
        self.table = NULL
        self.aux = NULL

    cdef int _grow(self, Py_ssize_t need) noexcept:
        # Returns -1 instead of raising so set()'s last-resort path can use it too. Every
        # allocation happens before anything is replaced, so a failure changes nothing
        # that matters (a larger heap or aux array is harmless).
        cdef Py_ssize_t cap = self.heap_cap
        cdef Py_ssize_t tcap = self.table_cap
        cdef Py_ssize_t i, s
        cdef int bits
        cdef HeapEntry* h
        cdef HeapSlot* t
        cdef HeapCand* a
        if need <= cap and 2 * need <= tcap:
            return 0
        if need > (<Py_ssize_t>1 << 40):
            return -1
        if need > cap:
            if cap < _MIN_HEAP:
                cap = _MIN_HEAP
            while cap < need:
                cap *= 2
            a = <HeapCand*>PyMem_Realloc(self.aux, (cap + 1) * sizeof(HeapCand))
            if a is NULL:
                return -1
            self.aux = a
            h = <HeapEntry*>PyMem_Realloc(self.heap, cap * sizeof(HeapEntry))
            if h is NULL:
                return -1
            self.heap = h
            self.heap_cap = cap
        if 2 * need > tcap:
            # Size the table for the whole heap capacity so it regrows with the heap,
            # not at every other reserve().
            tcap = _MIN_TABLE
            bits = 4
            while tcap < 2 * self.heap_cap or tcap < 2 * need:
                tcap *= 2
                bits += 1
            t = <HeapSlot*>PyMem_Malloc(tcap * sizeof(HeapSlot))
            if t is NULL:
                return -1
            for i in range(tcap):
                t[i].pos = -1
            PyMem_Free(self.table)
            self.table = t
            self.table_cap = tcap
            self.table_shift = 64 - bits
            for i in range(self.count):
                s = self._lookup(self.heap[i].key)
                t[s].key = self.heap[i].key
                t[s].pos = i
                self.heap[i].slot = s
        return 0

    cdef int reserve(self, Py_ssize_t extra) except -1:
        if extra > 0 and self._grow(self.count + extra) < 0:
            raise MemoryError()
        return 0

    cdef Py_ssize_t _home(self, int64_t key) noexcept nogil:
        return <Py_ssize_t>((<uint64_t>key * _FIB) >> self.table_shift)

    cdef Py_ssize_t _lookup(self, int64_t key) noexcept nogil:
        # Slot holding key, else the empty slot that ends its probe chain (the table is
        # never full, so one exists).
        cdef HeapSlot* table = self.table
        cdef Py_ssize_t mask = self.table_cap - 1
        cdef Py_ssize_t i = self._home(key)
        while table[i].pos >= 0 and table[i].key != key:
            i = (i + 1) & mask
        return i

    cdef void _table_delete(self, Py_ssize_t slot) noexcept nogil:
        # Backward-shift deletion: pull later chain members into the hole unless their
        # home lies cyclically in (hole, j], where moving them would break their chain.
        cdef HeapSlot* table = self.table
        cdef Py_ssize_t mask = self.table_cap - 1
        cdef Py_ssize_t i = slot
        cdef Py_ssize_t j = slot
        cdef Py_ssize_t k
        while True:
            j = (j + 1) & mask
            if table[j].pos < 0:
                break
            k = self._home(table[j].key)
            if i <= j:
                if i < k <= j:
                    continue
            elif i < k or k <= j:
                continue
            table[i] = table[j]
            self.heap[table[i].pos].slot = i
            i = j
        table[i].pos = -1

    cdef void _sift_up(self, Py_ssize_t pos) noexcept nogil:
        cdef HeapEntry* heap = self.heap
        cdef HeapSlot* table = self.table
        cdef HeapEntry e = heap[pos]
        cdef Py_ssize_t parent
        while pos > 0:
            parent = (pos - 1) >> 1
            if heap[parent].key <= e.key:
                break
            heap[pos] = heap[parent]
            table[heap[pos].slot].pos = pos
            pos = parent
        heap[pos] = e
        table[e.slot].pos = pos

    cdef void _sift_down(self, Py_ssize_t pos) noexcept nogil:
        cdef HeapEntry* heap = self.heap
        cdef HeapSlot* table = self.table
        cdef HeapEntry e = heap[pos]
        cdef Py_ssize_t n = self.count
        cdef Py_ssize_t c
        while True:
            c = 2 * pos + 1
            if c >= n:
                break
            if c + 1 < n and heap[c + 1].key < heap[c].key:
                c += 1
            if heap[c].key >= e.key:
                break
            heap[pos] = heap[c]
            table[heap[pos].slot].pos = pos
            pos = c
        heap[pos] = e
        table[e.slot].pos = pos

    cdef void _remove_at(self, Py_ssize_t pos) noexcept nogil:
        cdef HeapEntry* heap = self.heap
        cdef Py_ssize_t slot = heap[pos].slot
        cdef Py_ssize_t last = self.count - 1
        self.count = last
        if pos != last:
            heap[pos] = heap[last]
            self.table[heap[pos].slot].pos = pos
            if pos > 0 and heap[(pos - 1) >> 1].key > heap[pos].key:
                self._sift_up(pos)
            else:
                self._sift_down(pos)
        # After the heap moves: the shift fixes up heap[...].slot of entries it moves.
        self._table_delete(slot)

    cdef void _set_best(self) noexcept nogil:
        if self.count:
            self.best_key = self.heap[0].key
            self.best_qty = self.heap[0].qty
        else:
            self.best_key = EMPTY_KEY
            self.best_qty = 0

    cdef void set(self, int64_t key, int64_t qty) noexcept:
        cdef Py_ssize_t slot = self._lookup(key)
        cdef Py_ssize_t pos = self.table[slot].pos
        if pos >= 0:
            if qty != 0:
                self.heap[pos].qty = qty
                if pos == 0:
                    self.best_qty = qty
                return
            self._remove_at(pos)
            self._set_best()
            return
        if qty == 0:
            return
        if self.count >= self.heap_cap or 2 * (self.count + 1) > self.table_cap:
            # Contract breach (no reserve()); growing beats writing past the arrays. If
            # even that fails the level cannot be stored: callers that skip reserve()
            # accept that.
            if self._grow(self.count + 1) < 0:
                return
            slot = self._lookup(key)
        pos = self.count
        self.table[slot].key = key
        self.table[slot].pos = pos
        self.heap[pos].key = key
        self.heap[pos].qty = qty
        self.heap[pos].slot = slot
        self.count = pos + 1
        self._sift_up(pos)
        if self.heap[0].key == key:
            self.best_key = key
            self.best_qty = qty

    cdef int64_t get(self, int64_t key) noexcept:
        cdef Py_ssize_t pos = self.table[self._lookup(key)].pos
        return self.heap[pos].qty if pos >= 0 else 0

    cdef void clear(self) noexcept:
        cdef Py_ssize_t i
        for i in range(self.count):
            self.table[self.heap[i].slot].pos = -1
        self.count = 0
        self._set_best()

    cdef Py_ssize_t _walk(self, int64_t* keys, int64_t* qtys, Py_ssize_t n) noexcept nogil:
        # Visit the n best levels best first (1 <= n <= count), copying them out unless
        # keys is NULL; return the heap position of the n-th. The next best level is
        # always a child of one already taken, so the candidates are the untaken
        # children of taken positions: at most count of them, and aux holds heap_cap + 1.
        cdef const HeapEntry* heap = self.heap
        cdef HeapCand* aux = self.aux
        cdef Py_ssize_t count = self.count
        cdef Py_ssize_t size = 1
        cdef Py_ssize_t top = 0
        cdef Py_ssize_t j, c
        cdef HeapCand cand
        aux[0].key = heap[0].key
        aux[0].pos = 0
        for j in range(n):
            top = aux[0].pos
            if keys is not NULL:
                keys[j] = heap[top].key
                qtys[j] = heap[top].qty
            c = 2 * top + 1
            if c < count:
                # The left child takes the taken level's place; the right one joins.
                cand.key = heap[c].key
                cand.pos = c
                _cand_replace_top(aux, size, cand)
                c += 1
                if c < count:
                    cand.key = heap[c].key
                    cand.pos = c
                    _cand_push(aux, size, cand)
                    size += 1
            else:
                size -= 1
                if size > 0:
                    _cand_replace_top(aux, size, aux[size])
        return top

    cdef Py_ssize_t fill(self, int64_t* keys, int64_t* qtys, Py_ssize_t n) noexcept:
        if n > self.count:
            n = self.count
        if n <= 0:
            return 0
        self._walk(keys, qtys, n)
        return n

    cdef void trim(self, Py_ssize_t depth) noexcept:
        # A heap cannot find its worst levels faster than a scan, so this is O(n) either
        # way. A live feed over max_depth drops a level or two per frame: the worst level
        # of a min-heap is a leaf, and scanning the leaves (half the array, one key
        # compare each) is cheaper than the general path (find the depth-th best key,
        # compact, re-heapify), which costs O(n + depth log depth).
        cdef HeapEntry* heap = self.heap
        cdef HeapSlot* table = self.table
        cdef Py_ssize_t n = self.count
        cdef Py_ssize_t i, w
        cdef int64_t limit
        if n <= depth:
            return
        if depth <= 0:
            self.clear()
            return
        if n - depth <= _TRIM_BY_LEAVES:
            while n > depth:
                w = n >> 1
                for i in range(w + 1, n):
                    if heap[i].key > heap[w].key:
                        w = i
                self._remove_at(w)
                n -= 1
            self._set_best()
            return
        limit = self.heap[self._walk(NULL, NULL, depth)].key
        # Table first, while every heap entry is still where its slot says: the backward
        # shift rewrites heap[...].slot of the entries it moves.
        for i in range(n):
            if heap[i].key > limit:
                self._table_delete(heap[i].slot)
        w = 0
        for i in range(n):
            if heap[i].key <= limit:
                heap[w] = heap[i]
                table[heap[w].slot].pos = w
                w += 1
        self.count = w
        i = (w >> 1) - 1
        while i >= 0:
            self._sift_down(i)
            i -= 1
        self._set_best()

    cdef int check(self) except -1:
        cdef HeapEntry* heap = self.heap
        cdef HeapSlot* table = self.table
        cdef Py_ssize_t n = self.count
        cdef Py_ssize_t occupied = 0
        cdef Py_ssize_t i, s, pos
        if heap is NULL or table is NULL or self.aux is NULL:
            raise AssertionError("heap: an array is NULL")
        if self.table_cap < _MIN_TABLE or self.table_cap & (self.table_cap - 1):
            raise AssertionError(f"heap: table size {self.table_cap} is not a power of two >= 16")
        if (<Py_ssize_t>1 << (64 - self.table_shift)) != self.table_cap:
            raise AssertionError("heap: hash shift does not match the table size")
        if not (0 <= n <= self.heap_cap) or 2 * n > self.table_cap:
            raise AssertionError(
                f"heap: count {n} vs heap capacity {self.heap_cap}, table {self.table_cap}")
        for i in range(n):
            if heap[i].qty <= 0:
                raise AssertionError(f"heap: key {heap[i].key} has qty {heap[i].qty} <= 0")
            if i and heap[(i - 1) >> 1].key >= heap[i].key:
                raise AssertionError(f"heap: heap order broken at position {i}")
            s = heap[i].slot
            if not (0 <= s < self.table_cap):
                raise AssertionError(
                    f"heap: key {heap[i].key} points at slot {s} outside the table")
            if table[s].pos != i or table[s].key != heap[i].key:
                raise AssertionError(f"heap: slot {s} does not point back at position {i}")
        for s in range(self.table_cap):
            pos = table[s].pos
            if pos < 0:
                continue
            occupied += 1
            if pos >= n or heap[pos].slot != s:
                raise AssertionError(f"heap: slot {s} points at stale position {pos}")
            if self._lookup(table[s].key) != s:
                raise AssertionError(f"heap: key {table[s].key} unreachable from its home slot")
        if occupied != n:
            raise AssertionError(f"heap: table holds {occupied} keys, heap {n}")
        if n:
            if self.best_key != heap[0].key or self.best_qty != heap[0].qty:
                raise AssertionError("heap: cached best differs from the heap top")
        elif self.best_key != EMPTY_KEY or self.best_qty != 0:
            raise AssertionError("heap: empty side has a cached best")
        return 0
