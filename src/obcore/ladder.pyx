# cython: language_level=3
"""Dense tick-ladder side: a ring of per-tick quantities around the touch, plus an overflow.

Layout. The window covers ``win_ticks`` consecutive keys ``[win_base, win_base + win_ticks)``
(a power of two, 4096 to start). Key ``k`` lives in slot ``k & win_mask`` of ``win_qtys``;
``win_bits`` has one bit per slot so the next level after a deleted best is found 64 slots
at a time with count-trailing-zeros. Levels whose key is above the window (worse than every
window level) live in the overflow, a sorted array ``ovf_keys``/``ovf_qtys``, keys
descending.

Out-of-range policy: no level is ever dropped.

- A key above the window goes to the overflow (exact, O(log n) plus a short memmove).
- A new best below the window recentres the window on it: window levels that fall off the
  top move to the overflow.
- When the best is deleted and the next level is in the upper half of the window, or the
  window is empty and the best is now in the overflow, the window recentres upward and
  overflow levels it now covers move into it.
- Recentring puts the best a quarter of the way into the window (room for the touch to
  improve, three quarters for depth), never allocates, and costs the levels moved plus,
  when moving down, a scan of the bitmap words leaving the window.
- ``reserve()`` is the only place that allocates: it sizes the overflow for every level
  the side can hold after the reserved inserts (so any recentre fits) and doubles the
  window, up to ``max_win_ticks`` (1 << 20), while the overflow holds enough levels the
  bigger window would cover (at least 16, and one per 128 ticks gained). The window never
  shrinks; ``clear()`` keeps it.

Invariants (``check()``):
- ``win_ticks`` is a power of two, ``win_mask == win_ticks - 1``, ``win_slot0`` is the slot of
  ``win_base`` and ``win_base + win_ticks - 1`` does not overflow int64;
- ``win_qtys[s] >= 0`` and its bit is set iff it is > 0; ``win_count`` is the number of set bits;
- overflow keys are strictly descending, above the window, with quantities > 0;
- ``count == win_count + ovf_count``; no key is below ``win_base``;
- a non-empty side has its best in the window: ``best_key`` is the first occupied key of the
  window and ``best_qty`` its quantity; an empty side has ``EMPTY_KEY`` and 0;
- ``lost == 0`` (set() was never asked to insert past what reserve() covered).
"""
from cpython.mem cimport PyMem_Calloc, PyMem_Free, PyMem_Realloc
from libc.stdint cimport INT64_MAX, INT64_MIN, int64_t, uint64_t
from libc.string cimport memmove

from obcore._sorted_keys cimport find_desc
from obcore.side cimport EMPTY_KEY, Side


cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    static inline int obcore_ladder_ctz(unsigned long long x) { return __builtin_ctzll(x); }
    static inline int obcore_ladder_clz(unsigned long long x) { return __builtin_clzll(x); }
    static inline int obcore_ladder_popcount(unsigned long long x) {
        return __builtin_popcountll(x);
    }
    #else
    /* Portable fallbacks; x is never 0 for ctz/clz. */
    static int obcore_ladder_ctz(unsigned long long x) {
        int n = 0; while (!(x & 1ULL)) { x >>= 1; n++; } return n; }
    static int obcore_ladder_clz(unsigned long long x) {
        int n = 0; while (!(x & (1ULL << 63))) { x <<= 1; n++; } return n; }
    static int obcore_ladder_popcount(unsigned long long x) {
        int n = 0; while (x) { x &= x - 1; n++; } return n; }
    #endif
    """
    int _ctz "obcore_ladder_ctz"(unsigned long long x) noexcept nogil
    int _clz "obcore_ladder_clz"(unsigned long long x) noexcept nogil
    int _popcount "obcore_ladder_popcount"(unsigned long long x) noexcept nogil


cdef enum:
    # Window growth needs at least this many overflow levels moving in...
    GROW_MIN_LEVELS = 16
    # ...and at least one per this many ticks the window gains, so bitmap scans stay short.
    GROW_TICKS_PER_LEVEL = 128


cdef inline Py_ssize_t _first_bit(const uint64_t* bits, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    # First set bit in [a, b), or b. Pure arithmetic on a bitmap the caller sized.
    cdef Py_ssize_t i, last, r
    cdef uint64_t word
    if a >= b:
        return b
    i = a >> 6
    last = (b - 1) >> 6
    word = bits[i] & (~(<uint64_t>0) << (a & 63))
    while True:
        if word:
            r = (i << 6) + _ctz(word)
            return r if r < b else b
        i += 1
        if i > last:
            return b
        word = bits[i]


cdef inline Py_ssize_t _last_bit(const uint64_t* bits, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    # Last set bit in [a, b), or -1. Pure arithmetic on a bitmap the caller sized.
    cdef Py_ssize_t i, first, r
    cdef uint64_t word
    if a >= b:
        return -1
    i = (b - 1) >> 6
    first = a >> 6
    word = bits[i] & (~(<uint64_t>0) >> (63 - ((b - 1) & 63)))
    while True:
        if word:
            r = (i << 6) + 63 - _clz(word)
            return r if r >= a else -1
        i -= 1
        if i < first:
            return -1
        word = bits[i]


cdef inline int64_t _base_for(int64_t best, Py_ssize_t w) noexcept nogil:
    # Window base putting `best` a quarter of the way in, clamped so the window stays
    # inside int64 (then key - base never wraps for a key in the window).
    cdef int64_t margin = w >> 2
    cdef int64_t b
    if best < INT64_MIN + margin:
        b = INT64_MIN
    else:
        b = best - margin
    if b > INT64_MAX - (w - 1):
        b = INT64_MAX - (w - 1)
    return b


cdef class LadderSide(Side):
    """One book side as a dense tick ladder around the touch (see the module docstring).

    Parameters
    ----------
    window_ticks : int, optional
        Initial window width in ticks, a power of two >= 64 (default 4096).
    max_window_ticks : int, optional
        Largest width reserve() may grow the window to, a power of two >= window_ticks
        (default 1 << 20).
    """

    def __cinit__(self, Py_ssize_t window_ticks=LADDER_WINDOW_TICKS,
                  Py_ssize_t max_window_ticks=LADDER_MAX_WINDOW_TICKS):
        if window_ticks < LADDER_MIN_WINDOW_TICKS or window_ticks & (window_ticks - 1):
            raise ValueError(f"window_ticks must be a power of two >= {LADDER_MIN_WINDOW_TICKS}, "
                             f"not {window_ticks}")
        if max_window_ticks < window_ticks or max_window_ticks & (max_window_ticks - 1):
            raise ValueError(f"max_window_ticks must be a power of two >= window_ticks "
                             f"({window_ticks}), not {max_window_ticks}")
        self.win_qtys = <int64_t*>PyMem_Calloc(window_ticks, sizeof(int64_t))
        if self.win_qtys is NULL:
            raise MemoryError()
        self.win_bits = <uint64_t*>PyMem_Calloc(window_ticks >> 6, sizeof(uint64_t))
        if self.win_bits is NULL:
            raise MemoryError()
        self.win_ticks = window_ticks
        self.win_mask = <uint64_t>(window_ticks - 1)
        self.max_win_ticks = max_window_ticks
        self.win_base = 0
        self.win_slot0 = 0

    def __dealloc__(self):
        PyMem_Free(self.win_qtys)
        PyMem_Free(self.win_bits)
        PyMem_Free(self.ovf_keys)
        PyMem_Free(self.ovf_qtys)
        self.win_qtys = NULL
        self.win_bits = NULL
        self.ovf_keys = NULL
        self.ovf_qtys = NULL

    # ------------------------------------------------------------------ window scans

    cdef Py_ssize_t _next_off(self, Py_ssize_t off) noexcept nogil:
        # First occupied window offset >= off, or win_ticks. Offsets [0, w - s0) are slots
        # [s0, w); offsets [w - s0, w) wrap to slots [0, s0).
        cdef Py_ssize_t w = self.win_ticks
        cdef Py_ssize_t s0 = self.win_slot0
        cdef Py_ssize_t slot, r
        if off >= w:
            return w
        slot = (s0 + off) & (w - 1)
        if slot >= s0:
            r = _first_bit(self.win_bits, slot, w)
            if r < w:
                return r - s0
            slot = 0
        r = _first_bit(self.win_bits, slot, s0)
        return r + w - s0 if r < s0 else w

    cdef Py_ssize_t _prev_off(self, Py_ssize_t off) noexcept nogil:
        # Last occupied window offset <= off, or -1.
        cdef Py_ssize_t w = self.win_ticks
        cdef Py_ssize_t s0 = self.win_slot0
        cdef Py_ssize_t slot, r
        if off < 0:
            return -1
        if off >= w:
            off = w - 1
        slot = (s0 + off) & (w - 1)
        if slot < s0:
            r = _last_bit(self.win_bits, 0, slot + 1)
            if r >= 0:
                return r + w - s0
            slot = w - 1
        r = _last_bit(self.win_bits, s0, slot + 1)
        return r - s0 if r >= 0 else -1

    # ------------------------------------------------------------------ overflow

    cdef void _ovf_set(self, int64_t key, int64_t qty) noexcept:
        # The key is above the window and the window holds the best, so the best is unchanged.
        cdef Py_ssize_t n = self.ovf_count
        cdef Py_ssize_t i = find_desc(self.ovf_keys, self.ovf_count, key)
        cdef int64_t* keys = self.ovf_keys
        cdef int64_t* qtys = self.ovf_qtys
        if i < n and keys[i] == key:
            if qty == 0:
                memmove(keys + i, keys + i + 1, (n - i - 1) * sizeof(int64_t))
                memmove(qtys + i, qtys + i + 1, (n - i - 1) * sizeof(int64_t))
                self.ovf_count = n - 1
                self.count -= 1
            else:
                qtys[i] = qty
        elif qty != 0:
            if n >= self.ovf_cap:
                self.lost += 1
                return
            memmove(keys + i + 1, keys + i, (n - i) * sizeof(int64_t))
            memmove(qtys + i + 1, qtys + i, (n - i) * sizeof(int64_t))
            keys[i] = key
            qtys[i] = qty
            self.ovf_count = n + 1
            self.count += 1

    # ------------------------------------------------------------------ recentring

    cdef void _rebase_empty(self, int64_t key) noexcept:
        # An empty side has an all-zero window, so moving it is free.
        self.win_base = _base_for(key, self.win_ticks)
        self.win_slot0 = <Py_ssize_t>(<uint64_t>self.win_base & self.win_mask)

    cdef void _recentre_down(self, int64_t key) noexcept:
        # `key` is a new best below the window. Window levels at or above the new window's
        # end move to the overflow: they are below every overflow key, and are visited
        # largest first, so appending keeps the overflow descending.
        cdef int64_t b1 = _base_for(key, self.win_ticks)
        cdef uint64_t shift = <uint64_t>self.win_base - <uint64_t>b1
        cdef Py_ssize_t w = self.win_ticks
        cdef Py_ssize_t lo = 0 if shift >= <uint64_t>w else w - <Py_ssize_t>shift
        cdef Py_ssize_t off = w - 1
        cdef Py_ssize_t slot
        cdef int64_t k
        while self.win_count:
            off = self._prev_off(off)
            if off < lo:
                break
            slot = (self.win_slot0 + off) & (w - 1)
            k = <int64_t>(<uint64_t>self.win_base + <uint64_t>off)
            if self.ovf_count < self.ovf_cap:
                self.ovf_keys[self.ovf_count] = k
                self.ovf_qtys[self.ovf_count] = self.win_qtys[slot]
                self.ovf_count += 1
            else:
                self.lost += 1
                self.count -= 1
            self.win_qtys[slot] = 0
            self.win_bits[slot >> 6] &= ~(<uint64_t>1 << (slot & 63))
            self.win_count -= 1
            off -= 1
        self.win_base = b1
        self.win_slot0 = <Py_ssize_t>(<uint64_t>b1 & self.win_mask)
        self.recentres += 1

    cdef void _recentre_up(self, int64_t best) noexcept:
        # `best` is the smallest key, so nothing in the window is below the new base and
        # the slots the window gains at its top are empty; fill them from the overflow.
        cdef int64_t b1 = _base_for(best, self.win_ticks)
        cdef uint64_t w = <uint64_t>self.win_ticks
        cdef Py_ssize_t n = self.ovf_count
        cdef Py_ssize_t slot
        cdef int64_t k
        self.win_base = b1
        self.win_slot0 = <Py_ssize_t>(<uint64_t>b1 & self.win_mask)
        while n and <uint64_t>self.ovf_keys[n - 1] - <uint64_t>b1 < w:
            n -= 1
            k = self.ovf_keys[n]
            slot = <Py_ssize_t>(<uint64_t>k & self.win_mask)
            self.win_qtys[slot] = self.ovf_qtys[n]
            self.win_bits[slot >> 6] |= <uint64_t>1 << (slot & 63)
            self.win_count += 1
        self.ovf_count = n
        self.recentres += 1

    cdef void _best_removed(self, Py_ssize_t off) noexcept:
        # The best (at window offset `off`) was just deleted: find the next level.
        cdef Py_ssize_t w = self.win_ticks
        cdef Py_ssize_t nxt = self._next_off(off + 1)
        cdef int64_t key
        if nxt < w:
            key = <int64_t>(<uint64_t>self.win_base + <uint64_t>nxt)
            if nxt > (w >> 1):
                # Keep the touch low in the window so depth above it stays out of the overflow.
                self._recentre_up(key)
        elif self.ovf_count:
            key = self.ovf_keys[self.ovf_count - 1]
            self._recentre_up(key)
        else:
            self.best_key = EMPTY_KEY
            self.best_qty = 0
            return
        self.best_key = key
        self.best_qty = self.win_qtys[<uint64_t>key & self.win_mask]

    cdef int _maybe_grow(self) except -1:
        # Double the window while the overflow holds enough levels the bigger window would
        # cover. All old window levels fit in the new window: they are >= best >= new base
        # and below the old end, which the new end is not below.
        cdef Py_ssize_t w = self.win_ticks
        cdef Py_ssize_t new_w = w
        cdef Py_ssize_t cand, lo, hi, mid, gained, i, slot, off
        cdef int64_t best = self.best_key
        cdef int64_t b1, k
        cdef uint64_t word, new_mask
        cdef int64_t* nq
        cdef uint64_t* nb
        if self.win_count == 0:
            return 0
        while new_w < self.max_win_ticks:
            cand = new_w * 2
            b1 = _base_for(best, cand)
            # Overflow keys (descending, all > best >= b1) inside [b1, b1 + cand).
            lo = 0
            hi = self.ovf_count
            while lo < hi:
                mid = (lo + hi) >> 1
                if <uint64_t>self.ovf_keys[mid] - <uint64_t>b1 >= <uint64_t>cand:
                    lo = mid + 1
                else:
                    hi = mid
            gained = self.ovf_count - lo
            if gained < GROW_MIN_LEVELS or gained * GROW_TICKS_PER_LEVEL < cand - w:
                break
            new_w = cand
        if new_w == w:
            return 0
        nq = <int64_t*>PyMem_Calloc(new_w, sizeof(int64_t))
        if nq is NULL:
            raise MemoryError()
        nb = <uint64_t*>PyMem_Calloc(new_w >> 6, sizeof(uint64_t))
        if nb is NULL:
            PyMem_Free(nq)
            raise MemoryError()
        new_mask = <uint64_t>(new_w - 1)
        for i in range(w >> 6):
            word = self.win_bits[i]
            while word:
                slot = (i << 6) + _ctz(word)
                word &= word - 1
                off = (slot - self.win_slot0) & (w - 1)
                k = <int64_t>(<uint64_t>self.win_base + <uint64_t>off)
                nq[<uint64_t>k & new_mask] = self.win_qtys[slot]
                nb[(<uint64_t>k & new_mask) >> 6] |= <uint64_t>1 << (<uint64_t>k & 63)
        PyMem_Free(self.win_qtys)
        PyMem_Free(self.win_bits)
        self.win_qtys = nq
        self.win_bits = nb
        self.win_ticks = new_w
        self.win_mask = new_mask
        self.grows += 1
        self._recentre_up(best)
        return 0

    # ------------------------------------------------------------------ Side contract

    cdef int reserve(self, Py_ssize_t extra) except -1:
        cdef Py_ssize_t need = self.count + extra
        cdef Py_ssize_t cap = self.ovf_cap
        cdef int64_t* k
        cdef int64_t* q
        if need > cap:
            # Every level may end up in the overflow (a recentre evicting the whole window),
            # so it is sized for all of them.
            if cap < 64:
                cap = 64
            while cap < need:
                cap *= 2
            k = <int64_t*>PyMem_Realloc(self.ovf_keys, cap * sizeof(int64_t))
            if k is NULL:
                raise MemoryError()
            self.ovf_keys = k
            q = <int64_t*>PyMem_Realloc(self.ovf_qtys, cap * sizeof(int64_t))
            if q is NULL:
                raise MemoryError()
            self.ovf_qtys = q
            self.ovf_cap = cap
        if self.ovf_count >= GROW_MIN_LEVELS and self.win_ticks < self.max_win_ticks:
            self._maybe_grow()
        return 0

    cdef void set(self, int64_t key, int64_t qty) noexcept:
        cdef uint64_t off, slot
        cdef int64_t old
        if self.count == 0:
            if qty == 0:
                return
            self._rebase_empty(key)
        off = <uint64_t>key - <uint64_t>self.win_base
        if off < <uint64_t>self.win_ticks:
            slot = <uint64_t>key & self.win_mask
            old = self.win_qtys[slot]
            if qty != 0:
                self.win_qtys[slot] = qty
                if old == 0:
                    self.win_bits[slot >> 6] |= <uint64_t>1 << (slot & 63)
                    self.win_count += 1
                    self.count += 1
                if key <= self.best_key:
                    self.best_key = key
                    self.best_qty = qty
            elif old != 0:
                self.win_qtys[slot] = 0
                self.win_bits[slot >> 6] &= ~(<uint64_t>1 << (slot & 63))
                self.win_count -= 1
                self.count -= 1
                if key == self.best_key:
                    self._best_removed(<Py_ssize_t>off)
        elif key < self.win_base:
            # Nothing is stored below the window, so a delete there is a no-op and an
            # insert is a new best.
            if qty == 0:
                return
            self._recentre_down(key)
            slot = <uint64_t>key & self.win_mask
            self.win_qtys[slot] = qty
            self.win_bits[slot >> 6] |= <uint64_t>1 << (slot & 63)
            self.win_count += 1
            self.count += 1
            self.best_key = key
            self.best_qty = qty
        else:
            self._ovf_set(key, qty)

    cdef void set_many(self, const int64_t* kv, Py_ssize_t n) noexcept:
        # set() for each pair, with the common case inline: a key inside the window, on a
        # non-empty side, that is not a delete of the best (or is one whose successor is in
        # the same bitmap word). That case runs on locals: stores through win_qtys may alias
        # the object's int64 fields, so the compiler would reload them after each store. Any
        # other pair writes the locals back, goes through set() and reloads them.
        cdef const int64_t* end = kv + 2 * n
        cdef int64_t key, qty, old
        cdef uint64_t off, slot, word, nslot, new
        cdef int64_t* qtys = self.win_qtys
        cdef uint64_t* bits = self.win_bits
        cdef uint64_t base = <uint64_t>self.win_base
        cdef uint64_t mask = self.win_mask
        # Keys at window offsets below `lim` take the inline path: none while the side is
        # empty (set() rebases the window on the first level). Only set() empties a side:
        # the inline path never deletes the last level (it is the best, without a successor).
        cdef uint64_t lim = mask + 1 if self.count else 0
        cdef int64_t best_key = self.best_key
        cdef int64_t best_qty = self.best_qty
        cdef Py_ssize_t added = 0               # levels the inline path added (or removed)
        while kv < end:
            key = kv[0]
            qty = kv[1]
            kv += 2
            off = <uint64_t>key - base
            if off < lim:
                slot = <uint64_t>key & mask
                old = qtys[slot]
                if qty:
                    # Branch-free insert-or-replace: which one it is depends on the data.
                    qtys[slot] = qty
                    new = old == 0
                    bits[slot >> 6] |= new << (slot & 63)
                    added += <Py_ssize_t>new
                    if key <= best_key:
                        best_key = key
                        best_qty = qty
                    continue
                if not old:
                    continue
                if key != best_key:
                    qtys[slot] = 0
                    bits[slot >> 6] &= ~(<uint64_t>1 << (slot & 63))
                    added -= 1
                    continue
                # The best goes. When the next level is in the same bitmap word it is the
                # next best (every window level is at or above the best, so no slot between
                # them wraps around the ring), unless it is so far up the window that
                # _best_removed() would recentre.
                word = bits[slot >> 6] & ((~(<uint64_t>0) << (slot & 63)) << 1)
                if word:
                    nslot = (slot & ~(<uint64_t>63)) + <uint64_t>_ctz(word)
                    if off + (nslot - slot) <= (mask >> 1) + 1:
                        qtys[slot] = 0
                        bits[slot >> 6] &= ~(<uint64_t>1 << (slot & 63))
                        added -= 1
                        best_key = key + <int64_t>(nslot - slot)
                        best_qty = qtys[nslot]
                        continue
            self.count += added
            self.win_count += added
            added = 0
            self.best_key = best_key
            self.best_qty = best_qty
            self.set(key, qty)
            qtys = self.win_qtys
            bits = self.win_bits
            base = <uint64_t>self.win_base
            mask = self.win_mask
            lim = mask + 1 if self.count else 0
            best_key = self.best_key
            best_qty = self.best_qty
        self.count += added
        self.win_count += added
        self.best_key = best_key
        self.best_qty = best_qty

    cdef int64_t get(self, int64_t key) noexcept:
        cdef Py_ssize_t i
        if <uint64_t>key - <uint64_t>self.win_base < <uint64_t>self.win_ticks:
            return self.win_qtys[<uint64_t>key & self.win_mask]
        if key < self.win_base:
            return 0
        i = find_desc(self.ovf_keys, self.ovf_count, key)
        if i < self.ovf_count and self.ovf_keys[i] == key:
            return self.ovf_qtys[i]
        return 0

    cdef void clear(self) noexcept:
        # Zero only the occupied slots: O(bitmap words + levels), not O(window).
        cdef Py_ssize_t i
        cdef uint64_t word
        for i in range(self.win_ticks >> 6):
            word = self.win_bits[i]
            if word:
                while word:
                    self.win_qtys[(i << 6) + _ctz(word)] = 0
                    word &= word - 1
                self.win_bits[i] = 0
        self.win_count = 0
        self.ovf_count = 0
        self.count = 0
        self.best_key = EMPTY_KEY
        self.best_qty = 0

    cdef Py_ssize_t fill(self, int64_t* keys, int64_t* qtys, Py_ssize_t n) noexcept:
        cdef Py_ssize_t m = 0
        cdef Py_ssize_t w = self.win_ticks
        cdef Py_ssize_t off, i
        cdef int64_t k
        if self.count == 0 or n <= 0:
            return 0
        off = <Py_ssize_t>(<uint64_t>self.best_key - <uint64_t>self.win_base)
        while m < n:
            off = self._next_off(off)
            if off >= w:
                break
            k = <int64_t>(<uint64_t>self.win_base + <uint64_t>off)
            keys[m] = k
            qtys[m] = self.win_qtys[<uint64_t>k & self.win_mask]
            m += 1
            off += 1
        i = self.ovf_count - 1
        while m < n and i >= 0:
            keys[m] = self.ovf_keys[i]
            qtys[m] = self.ovf_qtys[i]
            m += 1
            i -= 1
        return m

    cdef void trim(self, Py_ssize_t depth) noexcept:
        # The worst levels are the overflow's front, then the window's top.
        cdef Py_ssize_t drop
        cdef Py_ssize_t k, off, slot
        cdef Py_ssize_t w = self.win_ticks
        if depth < 0:
            depth = 0
        drop = self.count - depth
        if drop <= 0:
            return
        k = drop if drop < self.ovf_count else self.ovf_count
        if k:
            memmove(self.ovf_keys, self.ovf_keys + k, (self.ovf_count - k) * sizeof(int64_t))
            memmove(self.ovf_qtys, self.ovf_qtys + k, (self.ovf_count - k) * sizeof(int64_t))
            self.ovf_count -= k
            drop -= k
        off = w - 1
        while drop > 0:
            off = self._prev_off(off)
            slot = (self.win_slot0 + off) & (w - 1)
            self.win_qtys[slot] = 0
            self.win_bits[slot >> 6] &= ~(<uint64_t>1 << (slot & 63))
            self.win_count -= 1
            drop -= 1
            off -= 1
        self.count = depth
        if depth == 0:
            self.best_key = EMPTY_KEY
            self.best_qty = 0

    cdef int check(self) except -1:
        cdef Py_ssize_t w = self.win_ticks
        cdef Py_ssize_t i, slot, first_off
        cdef Py_ssize_t bits_set = 0
        cdef int64_t q, k
        cdef bint bit
        if self.lost:
            raise AssertionError(f"ladder: {self.lost} level(s) lost: set() inserted more "
                                 "levels than reserve() covered")
        if w < LADDER_MIN_WINDOW_TICKS or w & (w - 1) or self.win_mask != <uint64_t>(w - 1):
            raise AssertionError(f"ladder: window width {w} is not a power of two >= 64 "
                                 "matching its mask")
        if w > self.max_win_ticks:
            raise AssertionError(f"ladder: window width {w} exceeds max {self.max_win_ticks}")
        if self.win_base > INT64_MAX - (w - 1):
            raise AssertionError(f"ladder: window base {self.win_base} + width overflows int64")
        if self.win_slot0 != <Py_ssize_t>(<uint64_t>self.win_base & self.win_mask):
            raise AssertionError("ladder: win_slot0 is not the slot of win_base")
        for slot in range(w):
            q = self.win_qtys[slot]
            bit = (self.win_bits[slot >> 6] >> (slot & 63)) & 1
            if q < 0:
                raise AssertionError(f"ladder: window slot {slot} has qty {q} < 0")
            if bit != (q > 0):
                raise AssertionError(f"ladder: window slot {slot} bit {bit} disagrees with "
                                     f"qty {q}")
            bits_set += bit
        if bits_set != self.win_count:
            raise AssertionError(f"ladder: win_count {self.win_count} but {bits_set} slots "
                                 "are occupied")
        if self.ovf_count < 0 or self.ovf_count > self.ovf_cap:
            raise AssertionError(f"ladder: overflow count {self.ovf_count} outside "
                                 f"[0, {self.ovf_cap}]")
        for i in range(self.ovf_count):
            k = self.ovf_keys[i]
            if self.ovf_qtys[i] <= 0:
                raise AssertionError(f"ladder: overflow level {k} has qty {self.ovf_qtys[i]} <= 0")
            if i and self.ovf_keys[i - 1] <= k:
                raise AssertionError(f"ladder: overflow keys not descending at {i}")
            if k < self.win_base or <uint64_t>k - <uint64_t>self.win_base < <uint64_t>w:
                raise AssertionError(f"ladder: overflow key {k} is not above the window "
                                     f"[{self.win_base}, +{w})")
        if self.count != self.win_count + self.ovf_count:
            raise AssertionError(f"ladder: count {self.count} != window {self.win_count} + "
                                 f"overflow {self.ovf_count}")
        if self.count:
            if self.win_count == 0:
                raise AssertionError("ladder: non-empty side with an empty window (best must "
                                     "be in the window)")
            first_off = self._next_off(0)
            k = <int64_t>(<uint64_t>self.win_base + <uint64_t>first_off)
            if self.best_key != k or self.best_qty != self.win_qtys[<uint64_t>k & self.win_mask]:
                raise AssertionError(f"ladder: cached best ({self.best_key}, {self.best_qty}) "
                                     f"differs from the first window level {k}")
        elif self.best_key != EMPTY_KEY or self.best_qty != 0:
            raise AssertionError("ladder: empty side has a cached best")
        return 0

    # ------------------------------------------------------------------ introspection

    def stats(self):
        """Return the layout as a dict (for tests and benchmarks; not a stable API).

        Keys: ``window_ticks``, ``window_base``, ``window_levels``, ``overflow_levels``,
        ``overflow_capacity``, ``recentres``, ``grows``, ``lost``.
        """
        return {
            "window_ticks": self.win_ticks,
            "window_base": self.win_base,
            "window_levels": self.win_count,
            "overflow_levels": self.ovf_count,
            "overflow_capacity": self.ovf_cap,
            "recentres": self.recentres,
            "grows": self.grows,
            "lost": self.lost,
        }

    # Python access to the C-level contract, so tests can drive a side with a small window
    # directly. Keys follow the Side convention (best = smallest key).

    def _reserve(self, Py_ssize_t extra):
        self.reserve(extra)

    def _set(self, int64_t key, int64_t qty):
        if qty < 0:
            raise ValueError(f"qty must be >= 0, not {qty}")
        self.set(key, qty)

    def _set_many(self, pairs):
        # [(key, qty), ...] through set_many(), the path Book's frames take.
        cdef Py_ssize_t n = len(pairs)
        cdef Py_ssize_t i
        cdef int64_t* kv = <int64_t*>PyMem_Calloc(2 * n + 2, sizeof(int64_t))
        if kv is NULL:
            raise MemoryError()
        try:
            for i in range(n):
                kv[2 * i] = pairs[i][0]
                kv[2 * i + 1] = pairs[i][1]
                if kv[2 * i + 1] < 0:
                    raise ValueError(f"qty must be >= 0, not {kv[2 * i + 1]}")
            self.set_many(kv, n)
        finally:
            PyMem_Free(kv)

    def _get(self, int64_t key):
        return self.get(key)

    def _levels(self, Py_ssize_t n=-1):
        cdef Py_ssize_t m = self.count if n < 0 or n > self.count else n
        cdef int64_t* k = <int64_t*>PyMem_Calloc(m + 1, sizeof(int64_t))
        cdef int64_t* q = <int64_t*>PyMem_Calloc(m + 1, sizeof(int64_t))
        cdef Py_ssize_t got
        try:
            if k is NULL or q is NULL:
                raise MemoryError()
            got = self.fill(k, q, m)
            return [(k[i], q[i]) for i in range(got)]
        finally:
            PyMem_Free(k)
            PyMem_Free(q)

    def _trim(self, Py_ssize_t depth):
        self.trim(depth)

    def _clear(self):
        self.clear()

    def _check(self):
        self.check()

    def __len__(self):
        return self.count

    @property
    def _best(self):
        return (self.best_key, self.best_qty) if self.count else None
