# cython: language_level=3
"""Skip-list side: a pool of fixed-height nodes linked by int32 index.

Invariants (checked by ``check()``):

- level 0 from the head visits every live node, keys strictly ascending, qty > 0;
- each level i > 0 is the subsequence of level 0 made of the nodes whose height > i;
- every node's ``prev`` is its level 0 predecessor (the head for the first), ``tail``
  is the last node (0 when empty);
- ``level`` is the tallest live tower (1 when empty) and the head links nothing above it;
- pool slots [1, used) are either live or on the free list, never both;
- best_key/best_qty are the first node's (EMPTY_KEY/0 when empty).

Costs: get/set O(log n) expected, and O(1) plus the tower height for levels near the
touch (the best is the first node, so near-touch searches stop at once on the upper
levels); fill(n) O(n); trim() O(log n + dropped) via the tail and back links; clear()
O(1). set() never allocates once reserve() has covered the insert; heights come from a
xorshift64* generator seeded per instance, so a given sequence of writes always builds
the same list.
"""
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from libc.stdint cimport INT32_MAX, int32_t, int64_t, uint64_t
from libc.string cimport memset

from obcore.side cimport EMPTY_KEY, Side

# Fixed seed: heights (and so performance) must not differ from run to run.
cdef uint64_t _SEED = 0x9E3779B97F4A7C15ULL


cdef class SkipListSide(Side):
    def __cinit__(self):
        self.nodes = NULL
        self.cap = 0
        self.rng_state = _SEED
        if self._grow(64) < 0:
            raise MemoryError()
        self._reset()

    def __dealloc__(self):
        PyMem_Free(self.nodes)
        self.nodes = NULL

    cdef void _reset(self) noexcept nogil:
        memset(&self.nodes[0], 0, sizeof(SkipNode))
        self.nodes[0].height = SKIP_MAX_HEIGHT
        self.used = 1
        self.free_head = 0
        self.tail = 0
        self.level = 1
        self.count = 0
        self.best_key = EMPTY_KEY
        self.best_qty = 0

    cdef int _grow(self, Py_ssize_t need) noexcept:
        # Returns -1 instead of raising so set()'s last-resort path can use it too.
        cdef Py_ssize_t cap = self.cap
        cdef SkipNode* p
        if need <= cap:
            return 0
        if need > <Py_ssize_t>INT32_MAX:
            return -1
        if cap < 64:
            cap = 64
        while cap < need:
            cap *= 2
        if cap > <Py_ssize_t>INT32_MAX:
            cap = INT32_MAX
        p = <SkipNode*>PyMem_Realloc(self.nodes, cap * sizeof(SkipNode))
        if p is NULL:
            return -1
        self.nodes = p
        self.cap = cap
        return 0

    cdef int reserve(self, Py_ssize_t extra) except -1:
        # Free slots = never-used tail of the pool + the free list = cap - 1 - count.
        if extra > 0 and self._grow(self.count + extra + 1) < 0:
            raise MemoryError()
        return 0

    cdef int32_t _random_height(self) noexcept nogil:
        # xorshift64*; the high half is the better-mixed one. Each extra level has
        # probability 1/4: fewer links per node than 1/2 for ~the same search cost.
        cdef uint64_t x = self.rng_state
        cdef uint64_t r
        cdef int32_t h = 1
        x ^= x >> 12
        x ^= x << 25
        x ^= x >> 27
        self.rng_state = x
        r = (x * 2685821657736338717ULL) >> 32
        while (r & 3) == 0 and h < SKIP_MAX_HEIGHT:
            h += 1
            r >>= 2
        return h

    cdef int32_t _find(self, int64_t key) noexcept nogil:
        # Node holding key, or 0.
        cdef SkipNode* nodes = self.nodes
        cdef int32_t x = 0
        cdef int32_t nx = 0
        cdef int i
        for i in range(self.level - 1, -1, -1):
            nx = nodes[x].next[i]
            while nx != 0 and nodes[nx].key < key:
                x = nx
                nx = nodes[x].next[i]
            if nx != 0 and nodes[nx].key == key:
                return nx
        return 0

    cdef void _release(self, int32_t i) noexcept nogil:
        self.nodes[i].next[0] = self.free_head
        self.nodes[i].height = 0
        self.free_head = i

    cdef void set(self, int64_t key, int64_t qty) noexcept:
        cdef SkipNode* nodes = self.nodes
        cdef int32_t update[SKIP_MAX_HEIGHT]
        cdef int32_t x = 0
        cdef int32_t nx = 0
        cdef int32_t n, h, first
        cdef int i
        for i in range(self.level - 1, -1, -1):
            nx = nodes[x].next[i]
            while nx != 0 and nodes[nx].key < key:
                x = nx
                nx = nodes[x].next[i]
            update[i] = x
        # nx is now update[0]'s successor: the first node with key >= key, or 0.
        if nx != 0 and nodes[nx].key == key:
            if qty != 0:
                nodes[nx].qty = qty
                if update[0] == 0:
                    self.best_qty = qty
                return
            for i in range(nodes[nx].height):
                nodes[update[i]].next[i] = nodes[nx].next[i]
            n = nodes[nx].next[0]
            if n != 0:
                nodes[n].prev = update[0]
            else:
                self.tail = update[0]
            self._release(nx)
            self.count -= 1
            while self.level > 1 and nodes[0].next[self.level - 1] == 0:
                self.level -= 1
            if update[0] == 0:
                first = nodes[0].next[0]
                if first != 0:
                    self.best_key = nodes[first].key
                    self.best_qty = nodes[first].qty
                else:
                    self.best_key = EMPTY_KEY
                    self.best_qty = 0
            return
        if qty == 0:
            return
        if self.free_head == 0 and self.used == self.cap:
            # Contract breach (no reserve()); growing beats writing past the pool. If
            # even that fails the level cannot be stored, and check() will not see it:
            # callers that skip reserve() accept that.
            if self._grow(self.cap + 1) < 0:
                return
            nodes = self.nodes
        if self.free_head != 0:
            n = self.free_head
            self.free_head = nodes[n].next[0]
        else:
            n = <int32_t>self.used
            self.used += 1
        h = self._random_height()
        if h > self.level:
            for i in range(self.level, h):
                update[i] = 0
            self.level = h
        nodes[n].key = key
        nodes[n].qty = qty
        nodes[n].height = h
        nodes[n].prev = update[0]
        for i in range(h):
            nodes[n].next[i] = nodes[update[i]].next[i]
            nodes[update[i]].next[i] = n
        nx = nodes[n].next[0]
        if nx != 0:
            nodes[nx].prev = n
        else:
            self.tail = n
        self.count += 1
        if update[0] == 0:
            self.best_key = key
            self.best_qty = qty

    cdef int64_t get(self, int64_t key) noexcept:
        cdef int32_t n = self._find(key)
        return self.nodes[n].qty if n != 0 else 0

    cdef void clear(self) noexcept:
        self._reset()

    cdef Py_ssize_t fill(self, int64_t* keys, int64_t* qtys, Py_ssize_t n) noexcept:
        cdef SkipNode* nodes = self.nodes
        cdef int32_t x = nodes[0].next[0]
        cdef Py_ssize_t j = 0
        while x != 0 and j < n:
            keys[j] = nodes[x].key
            qtys[j] = nodes[x].qty
            j += 1
            x = nodes[x].next[0]
        return j

    cdef void trim(self, Py_ssize_t depth) noexcept:
        cdef SkipNode* nodes = self.nodes
        cdef Py_ssize_t drop = self.count - depth
        cdef int32_t keep, dropped, x, nx
        cdef int64_t keep_key
        cdef Py_ssize_t _j
        cdef int i
        if drop <= 0:
            return
        if depth <= 0:
            self._reset()
            return
        # Last node kept: walk back from the tail, so the cost follows what is dropped.
        keep = self.tail
        for _j in range(drop):
            keep = nodes[keep].prev
        keep_key = nodes[keep].key
        dropped = nodes[keep].next[0]
        # On each level, the last node with key <= keep_key becomes that level's end.
        x = 0
        for i in range(self.level - 1, -1, -1):
            nx = nodes[x].next[i]
            while nx != 0 and nodes[nx].key <= keep_key:
                x = nx
                nx = nodes[x].next[i]
            nodes[x].next[i] = 0
        # Level 0 links among the dropped nodes are still intact up to the old tail.
        x = dropped
        while x != 0:
            nx = nodes[x].next[0]
            self._release(x)
            x = nx
        self.tail = keep
        self.count = depth
        while self.level > 1 and nodes[0].next[self.level - 1] == 0:
            self.level -= 1

    cdef int check(self) except -1:
        cdef SkipNode* nodes = self.nodes
        cdef Py_ssize_t seen = 0
        cdef Py_ssize_t free_seen = 0
        cdef Py_ssize_t limit = self.used
        cdef int32_t x, y, prev
        cdef int i
        if nodes is NULL:
            raise AssertionError("skiplist: node pool is NULL")
        if not (1 <= self.level <= SKIP_MAX_HEIGHT):
            raise AssertionError(f"skiplist: level {self.level} out of range")
        if not (1 <= self.used <= self.cap):
            raise AssertionError(f"skiplist: used {self.used} outside [1, cap {self.cap}]")
        for i in range(self.level, SKIP_MAX_HEIGHT):
            if nodes[0].next[i] != 0:
                raise AssertionError(f"skiplist: head links level {i} above level {self.level}")
        if self.level > 1 and nodes[0].next[self.level - 1] == 0:
            raise AssertionError(f"skiplist: level {self.level} but its top list is empty")
        # Level 0: order, quantities, back links, tail.
        prev = 0
        x = nodes[0].next[0]
        while x != 0:
            if x < 1 or x >= self.used:
                raise AssertionError(f"skiplist: level 0 links to slot {x} outside the pool")
            seen += 1
            if seen > limit:
                raise AssertionError("skiplist: level 0 has a cycle")
            if nodes[x].qty <= 0:
                raise AssertionError(f"skiplist: key {nodes[x].key} has qty {nodes[x].qty} <= 0")
            if not (1 <= nodes[x].height <= self.level):
                raise AssertionError(
                    f"skiplist: key {nodes[x].key} has height {nodes[x].height}, "
                    f"level {self.level}")
            if nodes[x].prev != prev:
                raise AssertionError(f"skiplist: back link of key {nodes[x].key} is wrong")
            if prev != 0 and nodes[prev].key >= nodes[x].key:
                raise AssertionError(f"skiplist: keys not ascending at {nodes[x].key}")
            prev = x
            x = nodes[x].next[0]
        if seen != self.count:
            raise AssertionError(f"skiplist: count {self.count} but level 0 holds {seen}")
        if self.tail != prev:
            raise AssertionError("skiplist: tail is not the last node")
        # Upper levels: exactly the nodes taller than the level, in level 0 order.
        for i in range(1, self.level):
            y = nodes[0].next[0]
            x = nodes[0].next[i]
            while True:
                while y != 0 and nodes[y].height <= i:
                    y = nodes[y].next[0]
                if x != y:
                    raise AssertionError(f"skiplist: level {i} is not the towers taller than {i}")
                if x == 0:
                    break
                x = nodes[x].next[i]
                y = nodes[y].next[0]
        # Free list: every pool slot is live or free.
        x = self.free_head
        while x != 0:
            if x < 1 or x >= self.used or nodes[x].height != 0:
                raise AssertionError(f"skiplist: free list holds bad slot {x}")
            free_seen += 1
            if free_seen > limit:
                raise AssertionError("skiplist: free list has a cycle")
            x = nodes[x].next[0]
        if seen + free_seen + 1 != self.used:
            raise AssertionError(
                f"skiplist: {seen} live + {free_seen} free + head != {self.used} used slots")
        x = nodes[0].next[0]
        if x != 0:
            if self.best_key != nodes[x].key or self.best_qty != nodes[x].qty:
                raise AssertionError("skiplist: cached best differs from the first node")
        elif self.best_key != EMPTY_KEY or self.best_qty != 0:
            raise AssertionError("skiplist: empty side has a cached best")
        return 0
