# cython: language_level=3
"""obcore.Book: an exact L2 orderbook that applies Bybit v5 snapshot/delta messages.

Invariants:
- prices are int64 ticks and sizes int64 lots; every stored level has lots > 0;
- a frame is parsed and validated completely into staging buffers (C, see _parse.h) before
  the book changes, so a rejected frame leaves levels, update id and timestamps untouched;
- there is one frame parser: a dict frame is written back as JSON and read by it; levels that
  are already Python objects (apply_levels) have one parser too, in _pylevels.h;
- ``synced`` is true from a snapshot until a delta skips an update id or leaves the book
  crossed; while false, deltas are refused (reads still work) until the next snapshot;
- best bid/ask are cached by each side on every write, so reading them is O(1).
"""
import enum
import json
from collections.abc import Mapping
from decimal import Decimal

import numpy as np

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.number cimport PyNumber_Index
from cpython.ref cimport PyObject, Py_XDECREF
from libc.stdint cimport INT64_MAX, INT64_MIN, int64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcmp, memset

from obcore.side cimport EMPTY_KEY, Side

from obcore._errors import (
    FrameError,
    MalformedNumberError,
    NegativeValueError,
    NumberOverflowError,
    OffStepError,
    OffTickError,
    OutOfSyncError,
    SequenceGapError,
    UninitializedBookError,
    UnknownTopicError,
)
from obcore._kinds import DEFAULT_KIND, KINDS
from obcore.sortedarray import SortedArraySide


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL
    bint PyUnicode_IS_COMPACT_ASCII(object s)
    void* PyUnicode_DATA(object s)
    Py_ssize_t PyUnicode_GET_LENGTH(object s)


cdef inline const char* _utf8(text, Py_ssize_t* n, str field, bint number) except NULL:
    # ``text`` is a str or a str subclass. Bybit's numbers are ASCII: read an exact str's own
    # buffer without a call. A lone surrogate has no UTF-8 form: that is bad input, not a
    # UnicodeEncodeError from deep inside the engine.
    if PyUnicode_IS_COMPACT_ASCII(text):
        n[0] = PyUnicode_GET_LENGTH(text)
        return <const char*>PyUnicode_DATA(text)
    try:
        return PyUnicode_AsUTF8AndSize(text, n)
    except UnicodeEncodeError:
        shown = _clip(repr(text))
        if number:
            raise MalformedNumberError(f"{field} {shown} is not a plain decimal number",
                                       field, shown) from None
        raise FrameError(f"{field}: {shown} is not valid Unicode text (lone surrogate)",
                         field, shown) from None


cdef extern from "_parse.h" nogil:
    ctypedef struct ob_scale:
        int64_t mant
        int dec
    ctypedef struct ob_levels:
        int64_t* v
        size_t len
        size_t cap
    ctypedef struct ob_frame:
        int type
        int64_t u, seq, ts, cts
        int has_u, has_seq, has_ts, has_cts, has_b, has_a, has_data
        const char* topic
        size_t topic_len
        const char* sym
        size_t sym_len
        int err
        const char* err_field
        long err_index
        size_t err_pos
        size_t err_len
        const char* err_what
    enum:
        OB_OK, OB_MALFORMED, OB_OFF_GRID, OB_NEGATIVE, OB_OVERFLOW, OB_NOMEM, OB_FRAME
        OB_SNAPSHOT, OB_DELTA
    int ob_parse_scaled(const char* s, size_t n, const ob_scale* sc, int64_t* out)
    int ob_parse_step(const char* s, size_t n, ob_scale* sc)
    int ob_format_scaled(int64_t q, const ob_scale* sc, char* buf)
    ctypedef struct ob_staged:
        ob_levels bids
        ob_levels asks
        ob_levels rpi_bids
        ob_levels rpi_asks
    int ob_frame_parse(const char* buf, size_t n, const ob_scale* px, const ob_scale* qty,
                       ob_frame* f, ob_staged* st)
    int ob_frame_topic(const char* buf, size_t n, ob_frame* f, const char** s, size_t* sn)
    void ob_levels_free(ob_levels* l)
    void ob_frame_free(ob_frame* f)


cdef extern from "_pylevels.h":
    ctypedef struct ob_pyerr:
        int code
        Py_ssize_t index
        int part
        const char* what
        PyObject* obj
    int ob_stage_pylevels(object levels, const ob_scale* px, const ob_scale* qty, int negate,
                          ob_levels* out, ob_levels* rpi, ob_pyerr* err) except -2


cdef struct Stage:
    ob_frame f
    ob_staged lv


class Applied(enum.IntEnum):
    """What :meth:`Book.apply` did with a frame."""
    STALE = 0      #: a delta older than the book (u <= update_id): ignored
    SNAPSHOT = 1   #: the book was replaced
    DELTA = 2      #: levels were updated


cdef tuple _APPLIED = (Applied.STALE, Applied.SNAPSHOT, Applied.DELTA)


def kinds():
    """Return the names of the compiled book variants, the default first."""
    return [DEFAULT_KIND] + [k for k in KINDS if k != DEFAULT_KIND]


cdef str _clip(text):
    return text if len(text) <= 60 else text[:57] + "..."


cdef object _number_error(int code, str where, str text, bint is_price, str step):
    cdef str t = _clip(text)
    if code == OB_MALFORMED:
        return MalformedNumberError(f"{where} {t!r} is not a plain decimal number", where, text)
    if code == OB_NEGATIVE:
        return NegativeValueError(f"{where} {t!r} is negative", where, text)
    if code == OB_OVERFLOW:
        unit = "ticks" if is_price else "lots"
        return NumberOverflowError(f"{where} {t!r} does not fit in int64 {unit}", where, text)
    if code == OB_OFF_GRID:
        if is_price:
            return OffTickError(f"{where} {t!r} is not a multiple of tick size {step}", where, text)
        return OffStepError(f"{where} {t!r} is not a multiple of lot size {step}", where, text)
    if code == OB_NOMEM:
        return MemoryError()
    return FrameError(f"{where} {t!r} is invalid", where, text)


cdef str _to_str(value, str what):
    # Grid steps must be exact: a float such as 0.1 has already lost the value it meant.
    if isinstance(value, str):
        return str(value) if type(value) is not str else value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"{what} must be a decimal string (or Decimal/int), not {type(value).__name__}")


cdef int _parse_step(str text, str what, ob_scale* sc) except -1:
    cdef Py_ssize_t n
    cdef const char* s = _utf8(text, &n, what, True)
    cdef int rc = ob_parse_step(s, n, sc)
    if rc == OB_OK:
        return 0
    if rc == OB_MALFORMED:
        raise MalformedNumberError(f"{what} {text!r} is not a positive decimal number", what, text)
    raise _number_error(rc, what, text, False, "")


cdef bint _side_is_bid(side) except -1:
    if side == "b" or side == "bid" or side == "bids":
        return True
    if side == "a" or side == "ask" or side == "asks":
        return False
    raise ValueError(f"side must be 'b'/'bid' or 'a'/'ask', not {side!r}")


cdef inline Side _make_side(str kind):
    return KINDS[kind]()


cdef int64_t _int64(value, str what) except? -1:
    # Ticks and lots are integers: a float or Decimal here has been rounded by someone, so
    # refuse it rather than truncate it (anything with __index__, such as numpy ints, is fine).
    if type(value) is not int:
        try:
            value = PyNumber_Index(value)
        except TypeError:
            raise TypeError(f"{what} must be an int, not {type(value).__name__}") from None
    if value > INT64_MAX or value < INT64_MIN:
        raise NumberOverflowError(f"{what} {value} does not fit in int64", what, str(value))
    return value


# Why a book is out of sync, for the message of the OutOfSyncError that follows.
cdef enum:
    DESYNC_NONE, DESYNC_GAP, DESYNC_CROSSED, DESYNC_CLEARED

cdef object _json_default(o):
    if isinstance(o, Mapping):
        return dict(o)
    raise TypeError(f"{type(o).__name__} is not JSON")


# A dict frame is written back as JSON text and read by the C parser: one frame validator, so
# the dict and raw paths cannot disagree. orjson writes it ~10x faster than the stdlib when it
# is installed (it is not a dependency); whatever orjson refuses (ints beyond 64 bits, lone
# surrogates, non-str keys) goes through the stdlib encoder, whose ASCII output escapes lone
# surrogates for the parser to refuse where they matter.
cdef object _stdlib_json = json.JSONEncoder(separators=(",", ":"), default=_json_default).encode
try:
    import orjson as _orjson
    _orjson_dumps = _orjson.dumps
    _OrjsonError = _orjson.JSONEncodeError
except ImportError:  # pragma: no cover - depends on the environment
    _orjson_dumps = None
    _OrjsonError = None


cdef bytes _to_json(frame):
    if _orjson_dumps is not None:
        try:
            return _orjson_dumps(frame, default=_json_default)
        except _OrjsonError:
            pass
    return _stdlib_json(frame).encode()


cdef inline void _write_side(Side side, ob_levels* lv, Py_ssize_t max_depth) noexcept:
    if lv.len:
        side.set_many(lv.v, <Py_ssize_t>lv.len)
    if max_depth:
        side.trim(max_depth)


cdef object _str_arg(value, str what):
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a decimal string, not {type(value).__name__}")
    return value


cdef str _nonempty_str(value, str what):
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty str, not {value!r}")
    return str(value)


cdef class Book:
    """An exact L2 orderbook for one instrument.

    Parameters
    ----------
    tick_size, lot_size : str
        The instrument's price tick and size step as decimal strings (``"0.1"``, ``"0.001"``),
        from Bybit's instruments-info. Prices become int64 ticks and sizes int64 lots.
    kind : str, optional
        The data structure, one of :func:`obcore.kinds`; the default is the fastest on the
        replay benchmark.
    max_depth : int
        When > 0, keep at most this many levels a side (the worst are dropped after each frame).
    symbol : str, optional
        When given, frames for another symbol are rejected; otherwise the first snapshot's
        symbol is adopted.
    """

    def __cinit__(self, *args, **kwargs):
        # Even a book whose __init__ never runs (Book.__new__, a subclass that skips super)
        # must be safe: empty sides to read, a scale that divides, and _ready False so every
        # write refuses with UninitializedBookError.
        self._stage = calloc(1, sizeof(Stage))
        if self._stage is NULL:
            raise MemoryError()
        self._px.mant = 1
        self._qty.mant = 1
        self._bids = SortedArraySide()
        self._asks = SortedArraySide()
        self._seq = -1

    def __init__(self, tick_size, lot_size, kind=None, Py_ssize_t max_depth=0, symbol=None,
                 topic=None):
        cdef GridScale px, qty
        # Everything is checked and built before the first attribute changes: a re-init
        # that raises leaves the book as it was.
        if kind is None:
            kind = DEFAULT_KIND
        if kind not in KINDS:
            raise ValueError(f"unknown book kind {kind!r}; choose one of {kinds()}")
        if max_depth < 0:
            raise ValueError(f"max_depth must be >= 0, not {max_depth}")
        tick_str = _to_str(tick_size, "tick_size")
        lot_str = _to_str(lot_size, "lot_size")
        _parse_step(tick_str, "tick_size", <ob_scale*>&px)
        _parse_step(lot_str, "lot_size", <ob_scale*>&qty)
        symbol_b = topic_b = None
        if symbol is not None:
            symbol = _nonempty_str(symbol, "symbol")
            symbol_b = symbol.encode()
        if topic is not None:
            topic = _nonempty_str(topic, "topic")
            topic_b = topic.encode()
        bids = _make_side(kind)
        asks = _make_side(kind)
        self._tick_size = tick_str
        self._lot_size = lot_str
        self._px = px
        self._qty = qty
        self.kind = kind
        self.max_depth = max_depth
        self._bids = bids
        self._asks = asks
        self._u = 0
        self._seq = -1
        self._ts = 0
        self._cts = 0
        self._synced = False
        self._has_snapshot = False
        self._desync = DESYNC_NONE
        self._symbol = symbol
        self._symbol_b = symbol_b
        self._topic = topic
        self._topic_b = topic_b
        self._ready = True

    @cython.final
    cdef int _check_ready(self) except -1:
        if not self._ready:
            raise UninitializedBookError(
                f"this {type(self).__name__} is not initialised: Book.__init__ never ran "
                "(a subclass's __init__ must call super().__init__)")
        return 0

    def __dealloc__(self):
        cdef Stage* st = <Stage*>self._stage
        if st is not NULL:
            ob_levels_free(&st.lv.bids)
            ob_levels_free(&st.lv.asks)
            ob_levels_free(&st.lv.rpi_bids)
            ob_levels_free(&st.lv.rpi_asks)
            ob_frame_free(&st.f)
            free(st)
            self._stage = NULL
        PyMem_Free(self._sk)
        PyMem_Free(self._sq)
        self._sk = NULL
        self._sq = NULL

    # ---------------------------------------------------------------- applying messages

    def apply(self, frame):
        """Apply one Bybit v5 orderbook message and return what was done (:class:`Applied`).

        ``frame`` is the raw text (``str`` or UTF-8 ``bytes``), parsed in C, or the parsed
        ``dict``. A snapshot replaces the book (``u == 1`` marks an exchange restart); a delta
        needs ``u == update_id + 1``. An older delta is ignored (``Applied.STALE``).

        Raises
        ------
        SequenceGapError
            The delta skipped update ids; the book keeps its levels but ``synced`` becomes
            False until the next snapshot.
        OutOfSyncError
            A delta while waiting for a snapshot.
        ParseError
            Malformed frame or number (:class:`FrameError`, :class:`OffTickError`, ...);
            the message names the field and the offending text.

        A frame that raises leaves the book exactly as it was.
        """
        cdef Py_ssize_t n
        cdef const char* buf
        if isinstance(frame, str):
            buf = _utf8(frame, &n, "frame", False)
            return _APPLIED[self.apply_raw(buf, n)]
        if isinstance(frame, bytes):
            return _APPLIED[self.apply_raw(PyBytes_AS_STRING(frame), PyBytes_GET_SIZE(frame))]
        if isinstance(frame, Mapping):
            try:
                data = _to_json(frame)
            except (TypeError, ValueError, RecursionError) as exc:
                raise FrameError(f"frame: not a JSON object ({exc})", "frame", "") from None
            return _APPLIED[self.apply_raw(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))]
        if isinstance(frame, (bytearray, memoryview)):
            data = bytes(frame)
            return _APPLIED[self.apply_raw(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))]
        raise TypeError(f"frame must be str, bytes or a Mapping, not {type(frame).__name__}")

    def apply_rest(self, result):
        """Apply a REST ``GET /v5/market/orderbook`` answer as a snapshot; return :class:`Applied`.

        ``result`` is the response's ``result`` object (``s``, ``b``, ``a``, ``u``, ``seq``,
        ``ts``, ``cts``) or the whole response (``retCode`` must be 0). It replaces the book
        like a WebSocket snapshot, with the same checks. Its ``u`` is the update id of the
        matching WebSocket depth, so that stream's deltas continue from it: ``u <= update_id``
        is ignored (STALE), ``update_id + 1`` applies, anything later is a gap. Deltas that
        arrive before the REST answer raise :class:`OutOfSyncError`; keep them and apply them
        after this call.
        """
        if isinstance(result, Mapping) and "retCode" in result:
            if result.get("retCode") != 0:
                raise FrameError(f"retCode: REST error {result.get('retCode')!r}: "
                                 f"{_clip(str(result.get('retMsg')))}", "retCode",
                                 repr(result.get("retCode")))
            result = result.get("result")
        if not isinstance(result, Mapping):
            raise FrameError(f"result: expected an object, not {type(result).__name__}", "result",
                             _clip(repr(result)))
        frame = {"type": "snapshot",
                 "data": {k: result[k] for k in ("s", "b", "a", "u", "seq") if k in result}}
        for k in ("ts", "cts"):
            if k in result:
                frame[k] = result[k]
        return self.apply(frame)

    cdef int apply_raw(self, const char* buf, Py_ssize_t n) except -1:
        cdef Stage* st = <Stage*>self._stage
        self._check_ready()
        cdef int rc = ob_frame_parse(buf, n, <ob_scale*>&self._px, <ob_scale*>&self._qty,
                                     &st.f, &st.lv)
        if rc != OB_OK:
            raise self._frame_error(buf, n)
        return self._commit(st)

    cdef object _frame_error(self, const char* buf, Py_ssize_t n):
        cdef ob_frame* f = &(<Stage*>self._stage).f
        cdef str field = f.err_field.decode() if f.err_field is not NULL else "frame"
        cdef str what = f.err_what.decode() if f.err_what is not NULL else "invalid"
        cdef size_t pos = f.err_pos if f.err_pos <= <size_t>n else <size_t>n
        cdef size_t ln = f.err_len if pos + f.err_len <= <size_t>n else <size_t>n - pos
        cdef str text = buf[pos:pos + ln].decode("utf-8", "replace")
        cdef bint is_price
        if f.err_index >= 0 and what in ("price", "size", "rpi size"):
            is_price = what == "price"
            where = f"{field}[{f.err_index}] {what}"
            return _number_error(f.err, where, text, is_price,
                                 self._tick_size if is_price else self._lot_size)
        if f.err_index >= 0:
            field = f"{field}[{f.err_index}]"
        if f.err == OB_NEGATIVE:
            return NegativeValueError(f"{field} {_clip(text)!r} must not be negative", field, text)
        if f.err == OB_OVERFLOW:
            return NumberOverflowError(f"{field} {_clip(text)!r} does not fit in int64", field,
                                       text)
        if f.err == OB_NOMEM:
            return MemoryError()
        if ln:
            return FrameError(f"{field}: {what} at byte {pos}: {_clip(text)!r}", field, text)
        return FrameError(f"{field}: {what}", field, text)

    cdef int _stage_error(self, void* err, str field) except -1:
        # Raise the error ob_stage_pylevels described, naming the field, the level and the
        # offending text. Out of line: apply_levels calls the stager directly, per side.
        cdef ob_pyerr e = (<ob_pyerr*>err)[0]
        cdef bint is_price
        obj = <object>e.obj if e.obj is not NULL else None
        Py_XDECREF(e.obj)
        where = field if e.index < 0 else f"{field}[{e.index}]"
        shown = _clip(repr(obj))
        if e.part >= 0:
            where = f"{where} {('price', 'size', 'rpi size')[e.part]}"
        if e.code == OB_FRAME:
            if e.part >= 0:
                raise FrameError(f"{where}: {e.what.decode()}, not {type(obj).__name__}", where,
                                 shown)
            raise FrameError(f"{where}: {e.what.decode()}, not {shown}", where, shown)
        is_price = e.part == 0
        text = obj if isinstance(obj, str) else shown
        raise _number_error(e.code, where, text, is_price,
                            self._tick_size if is_price else self._lot_size)

    cdef int64_t _parse_c(self, text, bint is_price, str field, Py_ssize_t index,
                          str part=None) except? -1:
        # ``text`` is a str (or subclass): callers check. The error location is formatted only
        # on failure: this runs once per level.
        cdef Py_ssize_t n
        cdef const char* s
        cdef int64_t out
        cdef int rc
        self._check_ready()
        if index >= 0:
            where = f"{field}[{index}] {part or ('price' if is_price else 'size')}"
        else:
            where = field
        s = _utf8(text, &n, where, True)
        rc = ob_parse_scaled(s, n, <ob_scale*>&self._px if is_price else <ob_scale*>&self._qty,
                             &out)
        if rc != OB_OK:
            raise _number_error(rc, where, text, is_price,
                                self._tick_size if is_price else self._lot_size)
        return out

    cdef int _commit(self, void* stage) except -1:
        cdef Stage* st = <Stage*>stage
        # Everything below either raises before the first write or cannot fail.
        cdef ob_frame* f = &st.f
        if f.sym is not NULL and (f.sym_len == 0 or self._symbol_b is not None and (
                <size_t>len(self._symbol_b) != f.sym_len
                or memcmp(<const char*>self._symbol_b, f.sym, f.sym_len) != 0)):
            got = f.sym[:f.sym_len].decode("utf-8", "replace")
            if not got:
                raise FrameError("data.s: empty symbol", "data.s", got)
            raise FrameError(f"data.s: frame is for {got!r}, this book is {self._symbol!r}",
                             "data.s", got)
        # A book reads one stream: another topic's update ids mean nothing here (a depth-1
        # snapshot would replace a depth-50 book and strand its deltas as STALE forever).
        if f.topic is not NULL and (f.topic_len == 0 or self._topic_b is not None and (
                <size_t>len(self._topic_b) != f.topic_len
                or memcmp(<const char*>self._topic_b, f.topic, f.topic_len) != 0)):
            got = f.topic[:f.topic_len].decode("utf-8", "replace")
            if not got:
                raise FrameError("topic: empty topic", "topic", got)
            raise FrameError(f"topic: frame is for {got!r}, this book reads {self._topic!r}",
                             "topic", got)
        if f.type == OB_SNAPSHOT:
            self._reserve_staged(st)
            self._bids.clear()
            self._asks.clear()
            if self._rpi_bids is not None:
                self._rpi_bids.clear()
                self._rpi_asks.clear()
        else:
            if not self._synced:
                if self._has_snapshot:
                    why = ("it crossed" if self._desync == DESYNC_CROSSED else
                           "clear()" if self._desync == DESYNC_CLEARED else "a gap")
                    raise OutOfSyncError(
                        f"delta u={f.u} refused: book out of sync since u={self._u} ({why}); "
                        "waiting for a snapshot")
                raise OutOfSyncError(f"delta u={f.u} refused: no snapshot received yet")
            if f.u <= self._u:
                return 0
            if f.u != self._u + 1:
                self._synced = False
                self._desync = DESYNC_GAP
                raise SequenceGapError(
                    f"update id gap: expected u={self._u + 1}, got u={f.u}; book out of sync "
                    "until the next snapshot", self._u + 1, f.u)
            self._reserve_staged(st)
        self._write_staged(st)
        self._u = f.u
        if f.has_seq:
            self._seq = f.seq
        if f.has_ts:
            self._ts = f.ts
        if f.has_cts:
            self._cts = f.cts
        if f.type == OB_SNAPSHOT:
            self._synced = True
            self._desync = DESYNC_NONE
            self._has_snapshot = True
            if f.sym is not NULL and self._symbol_b is None:
                self._symbol_b = f.sym[:f.sym_len]
                self._symbol = self._symbol_b.decode("utf-8", "replace")
        # The first applied frame with a topic pins it (a snapshot, or the first delta after a
        # REST snapshot).
        if f.topic is not NULL and self._topic_b is None:
            self._topic_b = f.topic[:f.topic_len]
            self._topic = self._topic_b.decode("utf-8", "replace")
        # A correct Bybit stream never crosses: a crossed book has missed updates. The frame
        # is applied (it was in sequence), but the book stops trusting itself until the
        # next snapshot, so callers that watch ``synced`` resync.
        if (self._bids.count and self._asks.count
                and -self._bids.best_key >= self._asks.best_key):
            self._synced = False
            self._desync = DESYNC_CROSSED
        return 1 if f.type == OB_SNAPSHOT else 2

    @cython.final
    cdef int _reserve_staged(self, void* stage) except -1:
        # The last step that may fail (MemoryError) before a commit writes: every check that
        # can refuse the frame has passed.
        cdef Stage* st = <Stage*>stage
        if (st.lv.rpi_bids.len or st.lv.rpi_asks.len) and self._rpi_bids is None:
            self._rpi_bids = _make_side(self.kind)
            self._rpi_asks = _make_side(self.kind)
        self._bids.reserve(<Py_ssize_t>st.lv.bids.len)
        self._asks.reserve(<Py_ssize_t>st.lv.asks.len)
        if self._rpi_bids is not None:
            self._rpi_bids.reserve(<Py_ssize_t>st.lv.rpi_bids.len)
            self._rpi_asks.reserve(<Py_ssize_t>st.lv.rpi_asks.len)
        return 0

    @cython.final
    cdef void _write_staged(self, void* stage) noexcept:
        # Cannot fail: the caller reserved room for every staged level first (_reserve_staged),
        # and created the RPI sides when RPI sizes are staged.
        cdef Stage* st = <Stage*>stage
        _write_side(self._bids, &st.lv.bids, self.max_depth)
        _write_side(self._asks, &st.lv.asks, self.max_depth)
        if self._rpi_bids is not None:
            _write_side(self._rpi_bids, &st.lv.rpi_bids, self.max_depth)
            _write_side(self._rpi_asks, &st.lv.rpi_asks, self.max_depth)

    # ---------------------------------------------------------------- direct edits

    cdef int set_level_c(self, bint is_bid, int64_t ticks, int64_t lots) except -1:
        self._check_ready()
        if ticks < 0 or lots < 0:
            raise NegativeValueError(f"ticks ({ticks}) and lots ({lots}) must be >= 0", "level", "")
        if is_bid:
            self._bids.reserve(1)
            self._bids.set(-ticks, lots)
            if self.max_depth:
                self._bids.trim(self.max_depth)
        else:
            self._asks.reserve(1)
            self._asks.set(ticks, lots)
            if self.max_depth:
                self._asks.trim(self.max_depth)
        return 0

    def set_level(self, side, ticks, lots):
        """Set the size of one level directly (``lots == 0`` deletes it).

        ``ticks`` and ``lots`` are ints (a float or Decimal raises TypeError). This edits the
        book outside Bybit's sequencing; ``update_id`` and ``synced`` do not change, and a
        level that crosses the other side is stored (see :attr:`crossed`).
        """
        self.set_level_c(_side_is_bid(side), _int64(ticks, "ticks"), _int64(lots, "lots"))

    def update(self, side, price, size):
        """Set one level from Bybit's ``[price, size]`` strings (size ``"0"`` deletes)."""
        cdef bint is_bid = _side_is_bid(side)
        self.set_level_c(is_bid, self._parse_c(_str_arg(price, "price"), True, "price", -1),
                         self._parse_c(_str_arg(size, "size"), False, "size", -1))

    def apply_levels(self, bids=(), asks=()):
        """Apply lists of ``[price, size]`` strings to each side in one call, outside sequencing.

        All pairs are parsed and validated before any level changes, so an error leaves the
        book as it was. ``update_id`` does not change. This is the cheap path for feeds that
        deliver already-parsed levels (one Python/C crossing per message, not per level).
        """
        cdef Stage* st = <Stage*>self._stage
        cdef ob_pyerr e
        self._check_ready()
        st.lv.bids.len = st.lv.asks.len = st.lv.rpi_bids.len = st.lv.rpi_asks.len = 0
        if ob_stage_pylevels(bids, <ob_scale*>&self._px, <ob_scale*>&self._qty, True,
                             &st.lv.bids, &st.lv.rpi_bids, &e):
            self._stage_error(&e, "bids")
        if ob_stage_pylevels(asks, <ob_scale*>&self._px, <ob_scale*>&self._qty, False,
                             &st.lv.asks, &st.lv.rpi_asks, &e):
            self._stage_error(&e, "asks")
        self._reserve_staged(st)
        self._write_staged(st)

    def clear(self):
        """Empty both sides and mark the book out of sync (a snapshot is needed)."""
        self._bids.clear()
        self._asks.clear()
        if self._rpi_bids is not None:
            self._rpi_bids.clear()
            self._rpi_asks.clear()
        self._synced = False
        self._desync = DESYNC_CLEARED

    # ---------------------------------------------------------------- exact numbers

    @property
    def tick_size(self):
        """The price tick as given (str)."""
        return self._tick_size

    @property
    def lot_size(self):
        """The size step as given (str)."""
        return self._lot_size

    def parse_price(self, text):
        """Return ``text`` as int64 ticks, exactly; raise a :class:`ParseError` subclass."""
        return self._parse_c(_str_arg(text, "price"), True, "price", -1)

    def parse_size(self, text):
        """Return ``text`` as int64 lots, exactly; raise a :class:`ParseError` subclass."""
        return self._parse_c(_str_arg(text, "size"), False, "size", -1)

    cdef str _format(self, value, bint is_price):
        cdef char buf[48]
        cdef str what = "ticks" if is_price else "lots"
        cdef int64_t v = _int64(value, what)
        cdef int n
        self._check_ready()
        n = ob_format_scaled(v, <ob_scale*>&self._px if is_price else <ob_scale*>&self._qty, buf)
        if n < 0:
            raise NumberOverflowError(f"{v} {what} overflow int64 when scaled", what, str(v))
        return buf[:n].decode("ascii")

    def price_str(self, ticks):
        """Format int ticks as the exact decimal price, with the tick size's decimals."""
        return self._format(ticks, True)

    def size_str(self, lots):
        """Format int lots as the exact decimal size, with the lot size's decimals."""
        return self._format(lots, False)

    # ---------------------------------------------------------------- state

    @property
    def update_id(self):
        """The ``u`` of the last applied message (0 before the first snapshot)."""
        return self._u

    @property
    def seq(self):
        """The ``seq`` (cross sequence) of the last applied message, -1 if none carried it."""
        return self._seq

    @property
    def ts(self):
        """The ``ts`` (ms) of the last applied message, 0 if none."""
        return self._ts

    @property
    def cts(self):
        """The ``cts`` (matching-engine ms) of the last applied message, 0 if none."""
        return self._cts

    @property
    def synced(self):
        """True from a snapshot until a sequence gap."""
        return self._synced

    @property
    def symbol(self):
        return self._symbol

    @property
    def topic(self):
        """The topic of the last snapshot that carried one."""
        return self._topic

    @property
    def bid_count(self):
        return self._bids.count

    @property
    def ask_count(self):
        return self._asks.count

    def __len__(self):
        return self._bids.count + self._asks.count

    def __repr__(self):
        return (f"<obcore.Book {self._symbol or '?'} kind={self.kind} "
                f"bid={self.best_bid()} ask={self.best_ask()} u={self._u} "
                f"synced={bool(self._synced)} levels={self._bids.count}/{self._asks.count}>")

    # ---------------------------------------------------------------- reads

    cdef bint c_has_bid(self) noexcept:
        return self._bids.count != 0

    cdef bint c_has_ask(self) noexcept:
        return self._asks.count != 0

    cdef int64_t c_best_bid(self) noexcept:
        return -self._bids.best_key

    cdef int64_t c_best_ask(self) noexcept:
        return self._asks.best_key

    cdef int64_t c_best_bid_qty(self) noexcept:
        return self._bids.best_qty

    cdef int64_t c_best_ask_qty(self) noexcept:
        return self._asks.best_qty

    cdef Py_ssize_t c_bid_count(self) noexcept:
        return self._bids.count

    cdef Py_ssize_t c_ask_count(self) noexcept:
        return self._asks.count

    cdef Py_ssize_t c_depth(self, bint is_bid, int64_t* ticks, int64_t* lots,
                            Py_ssize_t n) noexcept:
        cdef Py_ssize_t k, i
        if is_bid:
            k = self._bids.fill(ticks, lots, n)
            for i in range(k):
                ticks[i] = -ticks[i]
            return k
        return self._asks.fill(ticks, lots, n)

    def best_bid(self):
        """Return ``(ticks, lots)`` of the best bid, or None. O(1)."""
        if self._bids.count == 0:
            return None
        return (-self._bids.best_key, self._bids.best_qty)

    def best_ask(self):
        """Return ``(ticks, lots)`` of the best ask, or None. O(1)."""
        if self._asks.count == 0:
            return None
        return (self._asks.best_key, self._asks.best_qty)

    def mid(self):
        """Return the mid price in ticks (float), or None when a side is empty."""
        if self._bids.count == 0 or self._asks.count == 0:
            return None
        return (<double>(-self._bids.best_key) + <double>self._asks.best_key) / 2.0

    def spread(self):
        """Return best ask minus best bid in ticks, or None when a side is empty."""
        if self._bids.count == 0 or self._asks.count == 0:
            return None
        return self._asks.best_key + self._bids.best_key

    def microprice(self):
        """Return the size-weighted mid in ticks: (bid*ask_size + ask*bid_size)/(sizes), or None."""
        if self._bids.count == 0 or self._asks.count == 0:
            return None
        cdef double bq = <double>self._bids.best_qty
        cdef double aq = <double>self._asks.best_qty
        return (<double>(-self._bids.best_key) * aq + <double>self._asks.best_key * bq) / (bq + aq)

    @property
    def crossed(self):
        """True when both sides have levels and the best bid is at or above the best ask.

        A frame that leaves the book crossed is applied, and ``synced`` becomes False until the
        next snapshot (a correct stream never crosses). A direct edit may cross the book too;
        that only shows here.
        """
        return bool(self._bids.count and self._asks.count
                    and -self._bids.best_key >= self._asks.best_key)

    cdef int _rows(self, bint is_bid, Py_ssize_t n, Rows* r) except -1:
        return self._side_rows(self._bids if is_bid else self._asks, is_bid, n, r)

    cdef int _side_rows(self, Side s, bint is_bid, Py_ssize_t n, Rows* r) except -1:
        # Copy the best n levels (all when n < 0) into r, best first. Reads share one scratch
        # buffer, but a read can run inside another (a gc callback or finalizer, another
        # thread between bytecodes): the inner one gets its own buffer, so the outer one's rows
        # are never overwritten. Pair every call with _release.
        cdef int64_t* k
        cdef int64_t* q
        cdef Py_ssize_t cap, i
        if n < 0 or n > s.count:
            n = s.count
        r.owned = self._reading
        if not self._reading:
            if n > self._scap:
                cap = n if n > 256 else 256
                k = <int64_t*>PyMem_Realloc(self._sk, cap * sizeof(int64_t))
                if k is NULL:
                    raise MemoryError()
                self._sk = k
                q = <int64_t*>PyMem_Realloc(self._sq, cap * sizeof(int64_t))
                if q is NULL:
                    raise MemoryError()
                self._sq = q
                self._scap = cap
            r.k = self._sk
            r.q = self._sq
            self._reading = True
        else:
            r.k = <int64_t*>PyMem_Malloc((n + 1) * sizeof(int64_t))
            r.q = <int64_t*>PyMem_Malloc((n + 1) * sizeof(int64_t))
            if r.k is NULL or r.q is NULL:
                PyMem_Free(r.k)
                PyMem_Free(r.q)
                raise MemoryError()
        r.n = s.fill(r.k, r.q, n)
        if is_bid:
            for i in range(r.n):
                r.k[i] = -r.k[i]
        return 0

    cdef void _release(self, Rows* r) noexcept:
        if r.owned:
            PyMem_Free(r.k)
            PyMem_Free(r.q)
        else:
            self._reading = False
        r.k = r.q = NULL
        r.n = 0

    cdef object _levels_array(self, bint is_bid, n, bint rpi=False):
        cdef Py_ssize_t want = -1 if n is None else n
        cdef Py_ssize_t i
        cdef Rows r
        cdef int64_t[:, ::1] mv
        cdef Side s
        if n is not None and n < 0:
            raise ValueError(f"n must be >= 0, not {n}")
        if rpi:
            s = self._rpi_bids if is_bid else self._rpi_asks
            if s is None:
                return np.empty((0, 2), dtype=np.int64)
        else:
            s = self._bids if is_bid else self._asks
        self._side_rows(s, is_bid, want, &r)
        try:
            out = np.empty((r.n, 2), dtype=np.int64)
            mv = out
            for i in range(r.n):
                mv[i, 0] = r.k[i]
                mv[i, 1] = r.q[i]
        finally:
            self._release(&r)
        return out

    def bids(self, n=None):
        """Return the best ``n`` bids (all when None) as an int64 array of (ticks, lots),
        best first."""
        return self._levels_array(True, n)

    def asks(self, n=None):
        """Return the best ``n`` asks (all when None) as an int64 array of (ticks, lots),
        best first."""
        return self._levels_array(False, n)

    def rpi_bids(self, n=None):
        """Return the RPI sizes of the best ``n`` bid prices that have one (``orderbook.rpi``
        levels ``[price, size, rpiSize]``) as an int64 array of (ticks, rpi lots), best first.

        The RPI sizes are kept apart from the regular ones: :meth:`bids`, :meth:`best_bid` and
        every other read see only the non-RPI ``size``, which is what ``orderbook.{depth}``
        shows. Empty for books that never saw a three-element level.
        """
        return self._levels_array(True, n, True)

    def rpi_asks(self, n=None):
        """Return the RPI sizes of the best ``n`` ask prices that have one; see :meth:`rpi_bids`."""
        return self._levels_array(False, n, True)

    def rpi_size_at(self, side, ticks):
        """Return the RPI lots at int ``ticks`` on ``side`` (0 when none)."""
        cdef int64_t t = _int64(ticks, "ticks")
        cdef bint is_bid = _side_is_bid(side)
        if self._rpi_bids is None:
            return 0
        if is_bid:
            return self._rpi_bids.get(-t)
        return self._rpi_asks.get(t)

    def depth_into(self, side, int64_t[:, ::1] out):
        """Fill a caller's ``(m, 2)`` int64 array with the best ``m`` levels; return the row count.

        Nothing is allocated: use this in loops that read depth after every message.
        """
        cdef bint is_bid = _side_is_bid(side)
        cdef Py_ssize_t m = out.shape[0]
        cdef Py_ssize_t i, k
        cdef Rows r
        if out.shape[1] != 2:
            raise ValueError(f"out must have shape (m, 2), not ({out.shape[0]}, {out.shape[1]})")
        self._rows(is_bid, m, &r)
        for i in range(r.n):
            out[i, 0] = r.k[i]
            out[i, 1] = r.q[i]
        k = r.n
        self._release(&r)
        return k

    def levels(self, side):
        """Iterate over ``(ticks, lots)`` of one side, best first (a copy: safe to mutate after)."""
        cdef bint is_bid = _side_is_bid(side)
        cdef Rows r
        self._rows(is_bid, -1, &r)
        try:
            rows = [(r.k[i], r.q[i]) for i in range(r.n)]
        finally:
            self._release(&r)
        return iter(rows)

    def size_at(self, side, ticks):
        """Return the lots resting at int ``ticks`` on ``side`` (0 when there is no level)."""
        cdef int64_t t = _int64(ticks, "ticks")
        if _side_is_bid(side):
            return self._bids.get(-t)
        return self._asks.get(t)

    def cum_size(self, side, ticks):
        """Return the lots on ``side`` at prices as good as int ``ticks`` or better (bids >=,
        asks <=)."""
        cdef int64_t t = _int64(ticks, "ticks")
        cdef bint is_bid = _side_is_bid(side)
        cdef Py_ssize_t i
        cdef int64_t total = 0
        cdef Rows r
        self._rows(is_bid, -1, &r)
        for i in range(r.n):
            if (is_bid and r.k[i] < t) or (not is_bid and r.k[i] > t):
                break
            total += r.q[i]
        self._release(&r)
        return total

    def vwap(self, side, lots):
        """Return the average price in ticks of taking int ``lots`` from ``side``, best first.

        ``vwap("a", q)`` is what buying ``q`` lots would pay. None when ``side`` holds less
        than ``lots``.
        """
        cdef int64_t want = _int64(lots, "lots")
        cdef bint is_bid = _side_is_bid(side)
        cdef Side s = self._bids if is_bid else self._asks
        cdef Py_ssize_t n = 32
        cdef Py_ssize_t i, k
        cdef int64_t left, take
        cdef double notional
        cdef Rows r
        if want <= 0:
            raise ValueError(f"lots must be > 0, not {want}")
        while True:
            self._rows(is_bid, n, &r)
            left = want
            notional = 0.0
            for i in range(r.n):
                take = r.q[i] if r.q[i] < left else left
                notional += <double>r.k[i] * <double>take
                left -= take
                if left == 0:
                    break
            k = r.n
            self._release(&r)
            if left == 0:
                return notional / <double>want
            if k == s.count:
                return None
            n *= 4

    def imbalance(self, Py_ssize_t n=1):
        """Return (bid lots - ask lots) / (bid lots + ask lots) over the best ``n`` levels a side.

        In [-1, 1]; None when both sides are empty.
        """
        cdef Py_ssize_t i
        cdef double b = 0.0, a = 0.0
        cdef Rows r
        if n <= 0:
            raise ValueError(f"n must be > 0, not {n}")
        self._rows(True, n, &r)
        for i in range(r.n):
            b += <double>r.q[i]
        self._release(&r)
        self._rows(False, n, &r)
        for i in range(r.n):
            a += <double>r.q[i]
        self._release(&r)
        if a + b == 0.0:
            return None
        return (b - a) / (b + a)

    # ---------------------------------------------------------------- integrity, export

    def check_integrity(self):
        """Verify every structural invariant; raise AssertionError naming the first broken one."""
        self._bids.check()
        self._asks.check()
        if self._bids.count and self._bids.best_key > 0:
            raise AssertionError(f"bid side holds a negative price ({-self._bids.best_key})")
        if self._bids.count == 0 and self._bids.best_key != EMPTY_KEY:
            raise AssertionError("empty bid side has a cached best")
        if self.max_depth and (self._bids.count > self.max_depth
                               or self._asks.count > self.max_depth):
            raise AssertionError(f"more than max_depth={self.max_depth} levels on a side")
        if self._rpi_bids is not None:
            self._rpi_bids.check()
            self._rpi_asks.check()
            if self._rpi_bids.count and self._rpi_bids.best_key > 0:
                raise AssertionError(
                    f"RPI bid side holds a negative price ({-self._rpi_bids.best_key})")
            if self.max_depth and (self._rpi_bids.count > self.max_depth
                                   or self._rpi_asks.count > self.max_depth):
                raise AssertionError(f"more than max_depth={self.max_depth} RPI levels on a side")

    cdef list _export(self, bint is_bid, n):
        # Snapshot rows; with RPI sizes, the union of both sides' prices as
        # [price, size, rpiSize], as orderbook.rpi sends them.
        main = self._levels_array(is_bid, None).tolist()
        if self._rpi_bids is None:
            rows = [[self.price_str(t), self.size_str(q)] for t, q in main]
        else:
            sizes = {t: q for t, q in main}
            rpi = {t: q for t, q in self._levels_array(is_bid, None, True).tolist()}
            rows = [[self.price_str(t), self.size_str(sizes.get(t, 0)),
                     self.size_str(rpi.get(t, 0))]
                    for t in sorted(sizes.keys() | rpi.keys(), reverse=is_bid)]
        return rows if n is None else rows[:n]

    def snapshot(self, n=None):
        """Return the book as a Bybit v5 snapshot message (a dict :meth:`apply` accepts).

        Prices and sizes are formatted exactly from ticks and lots. A book that holds RPI sizes
        exports ``[price, size, rpiSize]`` levels.
        """
        data = {"b": self._export(True, n), "a": self._export(False, n), "u": self._u}
        if self._symbol is not None:
            data = {"s": self._symbol, **data}
        if self._seq >= 0:
            data["seq"] = self._seq
        msg = {"type": "snapshot", "ts": self._ts, "data": data}
        if self._topic is not None:
            msg = {"topic": self._topic, **msg}
        if self._cts:
            msg["cts"] = self._cts
        return msg

    def __reduce__(self):
        rpi = None
        if self._rpi_bids is not None:
            rpi = (self.rpi_bids().tolist(), self.rpi_asks().tolist())
        state = (list(self.levels("b")), list(self.levels("a")), self._u, self._seq,
                 self._ts, self._cts, self._synced, self._has_snapshot, self._topic, rpi)
        return (_restore, (self._tick_size, self._lot_size, self.kind, self.max_depth,
                           self._symbol, state))

    def __copy__(self):
        return _restore(*self.__reduce__()[1])

    def __deepcopy__(self, memo):
        return self.__copy__()


def _restore(tick_size, lot_size, kind, max_depth, symbol, state):
    cdef Book book = Book(tick_size, lot_size, kind=kind, max_depth=max_depth, symbol=symbol)
    bids, asks, u, seq, ts, cts, synced, has_snapshot, topic, rpi = state
    for t, q in bids:
        book.set_level_c(True, t, q)
    for t, q in asks:
        book.set_level_c(False, t, q)
    if rpi is not None:
        book._rpi_bids = _make_side(kind)
        book._rpi_asks = _make_side(kind)
        for t, q in rpi[0]:
            book._rpi_bids.reserve(1)
            book._rpi_bids.set(-t, q)
        for t, q in rpi[1]:
            book._rpi_asks.reserve(1)
            book._rpi_asks.set(t, q)
    book._u = u
    book._seq = seq
    book._ts = ts
    book._cts = cts
    book._synced = synced
    book._has_snapshot = has_snapshot
    book._topic = topic
    book._topic_b = topic.encode() if topic is not None else None
    return book


def frame_topic(frame):
    """Return the ``"topic"`` of a frame (any form :meth:`Book.apply` takes), or None when it
    has none or it cannot be read."""
    cdef Py_ssize_t n
    cdef const char* buf
    cdef const char* s
    cdef size_t sn
    cdef ob_frame f
    # text first: a feed calls this per frame, and the Mapping check is a slow ABC lookup
    if isinstance(frame, str):
        try:
            buf = PyUnicode_AsUTF8AndSize(frame, &n)
        except UnicodeEncodeError:
            return None
    elif isinstance(frame, bytes):
        buf = PyBytes_AS_STRING(frame)
        n = PyBytes_GET_SIZE(frame)
    elif isinstance(frame, (bytearray, memoryview)):
        frame = bytes(frame)
        buf = PyBytes_AS_STRING(frame)
        n = PyBytes_GET_SIZE(frame)
    elif isinstance(frame, Mapping):
        topic = frame.get("topic")
        return topic if isinstance(topic, str) else None
    else:
        raise TypeError(f"frame must be str, bytes or a Mapping, not {type(frame).__name__}")
    memset(&f, 0, sizeof(f))
    try:
        if ob_frame_topic(buf, n, &f, &s, &sn) != 0:
            return None
        return s[:sn].decode("utf-8", "replace")
    finally:
        ob_frame_free(&f)


cdef class Books:
    """Books keyed by topic, so one feed can route frames for many symbols.

    >>> books = Books()
    >>> btc = books.add("orderbook.50.BTCUSDT", "0.1", "0.001")
    """
    cdef dict _books

    def __init__(self):
        self._books = {}

    def add(self, str topic, tick_size, lot_size, kind=None, Py_ssize_t max_depth=0, symbol=None):
        """Create, register and return the book for ``topic``."""
        if topic in self._books:
            raise ValueError(f"a book for topic {topic!r} is already registered")
        if symbol is None and topic.startswith("orderbook."):
            symbol = topic.rpartition(".")[2]
        book = Book(tick_size, lot_size, kind=kind, max_depth=max_depth, symbol=symbol, topic=topic)
        self._books[topic] = book
        return book

    def remove(self, str topic):
        """Unregister and return the book for ``topic``."""
        try:
            return self._books.pop(topic)
        except KeyError:
            raise UnknownTopicError(f"no book registered for topic {topic!r}") from None

    def apply(self, frame):
        """Route one frame to its topic's book; return ``(book, Applied)``.

        Raises :class:`UnknownTopicError` for a topic with no book, and whatever
        :meth:`Book.apply` raises.
        """
        topic = frame_topic(frame)
        if topic is None:
            raise FrameError("topic: missing or unreadable; cannot route the frame", "topic", "")
        book = self._books.get(topic)
        if book is None:
            raise UnknownTopicError(f"no book registered for topic {topic!r}")
        return book, book.apply(frame)

    def __getitem__(self, str topic):
        book = self._books.get(topic)
        if book is None:
            raise UnknownTopicError(f"no book registered for topic {topic!r}")
        return book

    def get(self, str topic, default=None):
        return self._books.get(topic, default)

    def __contains__(self, topic):
        return topic in self._books

    def __iter__(self):
        return iter(self._books)

    def __len__(self):
        return len(self._books)

    def items(self):
        return self._books.items()


cdef class Scale:
    """Exact conversion between decimal strings and whole units of one grid step.

    The same C parser and formatter every :class:`Book` uses, for code that speaks the
    exchange's decimals outside a book (order prices, quantities, fills): ``"65114.20"``
    on a ``"0.10"`` tick is 651142 units, and 651142 units format back as ``"65114.20"``
    with the step's written decimals (Bybit's ``priceScale``).

    Parameters
    ----------
    step : str or Decimal or int
        The tick size or lot step, e.g. ``"0.10"``. A float is refused: it has already
        lost the value it meant.
    price : bool
        Whether this is a price grid: an off-grid value then raises :class:`OffTickError`
        and not :class:`OffStepError`, and errors count ticks rather than lots.

    Raises
    ------
    ParseError
        If ``step`` is not a positive decimal with at most 18 decimals.

    Examples
    --------
    >>> tick = Scale("0.10", price=True)
    >>> tick.parse("65114.2"), tick.format(651142), tick.decimals
    (651142, '65114.20', 2)
    """

    cdef ob_scale _sc
    cdef readonly str step
    cdef readonly bint price

    def __init__(self, step, *, bint price=False):
        cdef ob_scale sc
        cdef str text = _to_str(step, "tick_size" if price else "lot_size")
        _parse_step(text, "tick_size" if price else "lot_size", &sc)
        self._sc = sc
        self.step = text
        self.price = price

    @property
    def decimals(self):
        """Decimals written in the step (``"0.10"`` has 2); every formatted value has them."""
        return self._sc.dec

    def parse(self, text, str what=None):
        """Return ``text`` as whole units of the step, exactly.

        ``what`` names the value in the error message (default ``"price"``/``"size"``).

        Raises
        ------
        ParseError
            The subclass says why: :class:`MalformedNumberError`, :class:`NegativeValueError`,
            :class:`NumberOverflowError`, or :class:`OffTickError`/:class:`OffStepError`.
        TypeError
            If ``text`` is not a str.
        """
        cdef Py_ssize_t n
        cdef const char* s
        cdef int64_t out
        cdef int rc
        if what is None:
            what = "price" if self.price else "size"
        text = _str_arg(text, what)
        s = _utf8(text, &n, what, True)
        rc = ob_parse_scaled(s, n, &self._sc, &out)
        if rc != OB_OK:
            raise _number_error(rc, what, text, self.price, self.step)
        return out

    def format(self, units):
        """Return ``units`` (an int) as the exact decimal string with the step's decimals.

        Raises
        ------
        TypeError
            If ``units`` is not an int (a float or Decimal has been rounded by someone).
        NumberOverflowError
            If the value does not fit the grid's int64 arithmetic.
        """
        cdef char buf[48]
        cdef str what = "ticks" if self.price else "lots"
        cdef int64_t v = _int64(units, what)
        cdef int n = ob_format_scaled(v, &self._sc, buf)
        if n < 0:
            raise NumberOverflowError(f"{v} {what} overflow int64 when scaled", what, str(v))
        return buf[:n].decode("ascii")

    def __repr__(self):
        return f"Scale({self.step!r}, price={bool(self.price)})"

    def __eq__(self, other):
        cdef Scale o
        if not isinstance(other, Scale):
            return NotImplemented
        o = <Scale>other
        return (self._sc.mant == o._sc.mant and self._sc.dec == o._sc.dec
                and self.price == o.price)

    def __hash__(self):
        return hash((self._sc.mant, self._sc.dec, bool(self.price)))

    def __reduce__(self):
        return (_scale, (self.step, bool(self.price)))


def _scale(step, price):
    return Scale(step, price=price)
