from libc.stdint cimport int64_t, uint64_t

from obcore.side cimport Side

cdef enum:
    # Window a new side starts with, and the most it may grow to (ticks, powers of two).
    LADDER_WINDOW_TICKS = 4096
    LADDER_MAX_WINDOW_TICKS = 1 << 20
    # Smallest window accepted: one bitmap word, so every scan works on whole words.
    LADDER_MIN_WINDOW_TICKS = 64


cdef class LadderSide(Side):
    # The window is a ring of win_ticks slots covering keys [win_base, win_base + win_ticks);
    # a key lives in slot key & win_mask, so moving the window leaves every level that stays
    # inside it where it is and only levels crossing the window edge are copied.
    cdef int64_t* win_qtys          # 0 marks an empty slot
    cdef uint64_t* win_bits         # bit per slot, set iff win_qtys[slot] != 0
    cdef Py_ssize_t win_ticks
    cdef uint64_t win_mask
    cdef int64_t win_base
    cdef Py_ssize_t win_slot0       # slot of win_base
    cdef Py_ssize_t win_count       # levels in the window
    cdef Py_ssize_t max_win_ticks
    # Levels above the window (worse than every window level), keys descending so the
    # levels nearest the window, which see most updates, sit at the cheap end.
    cdef int64_t* ovf_keys
    cdef int64_t* ovf_qtys
    cdef Py_ssize_t ovf_count
    cdef Py_ssize_t ovf_cap
    # Levels set() could not store because the caller skipped reserve(); check() fails on it.
    cdef Py_ssize_t lost
    cdef Py_ssize_t recentres
    cdef Py_ssize_t grows

    cdef Py_ssize_t _next_off(self, Py_ssize_t off) noexcept nogil
    cdef Py_ssize_t _prev_off(self, Py_ssize_t off) noexcept nogil
    cdef void _ovf_set(self, int64_t key, int64_t qty) noexcept
    cdef void _rebase_empty(self, int64_t key) noexcept
    cdef void _recentre_down(self, int64_t key) noexcept
    cdef void _recentre_up(self, int64_t best) noexcept
    cdef void _best_removed(self, Py_ssize_t off) noexcept
    cdef int _maybe_grow(self) except -1
