/* The one parser for levels that are already Python objects: [[price, size(, rpiSize)], ...]
 * as given to Book.apply_levels. (Raw frame text has its own, in _parse.h; numbers have one
 * parser for both, ob_parse_scaled.)
 *
 * Exact lists of exact compact-ASCII str, the shape json/orjson produce, take a loop that
 * borrows references, reads the str buffers in place and runs no Python code. Anything else
 * (tuples, subclasses, a parse error) restarts on tuple copies of the outer sequence and of
 * each level: a subclass's __len__ or __iter__ may run Python code that changes the lists, and
 * the loop must only index what it holds. An error is described in *err (and -1 returned) so
 * the caller can raise a typed exception naming the level; -2 means a Python exception is set
 * (raised by the caller's own sequence code, or MemoryError).
 */
#ifndef OBCORE_PYLEVELS_H
#define OBCORE_PYLEVELS_H

#include <Python.h>

#include "_parse.h"

typedef struct {
    int code;          /* OB_FRAME or a number error (OB_MALFORMED, ...) */
    Py_ssize_t index;  /* level index, -1: the sequence itself */
    int part;          /* 0 price, 1 size, 2 rpi size, -1 the level */
    const char *what;  /* for OB_FRAME */
    PyObject *obj;     /* new reference to the offending object, or NULL */
} ob_pyerr;

static int ob_pyerr_set(ob_pyerr *e, int code, Py_ssize_t index, int part, const char *what,
                        PyObject *obj)
{
    e->code = code;
    e->index = index;
    e->part = part;
    e->what = what;
    Py_XINCREF(obj);
    e->obj = obj;
    return -1;
}

static inline int ob_pylevels_exact(PyObject *levels, const ob_scale *px, const ob_scale *qty,
                                    int negate, ob_levels *out, ob_levels *rpi)
{
    Py_ssize_t i, n = PyList_GET_SIZE(levels);
    int64_t *v;
    /* No Python code runs in this loop (borrowed items, exact types), so n stays the length,
     * and the pairs are stored without a capacity check each. */
    if (ob_levels_reserve(out, (size_t)n) != OB_OK)
        return -1;
    v = out->v + 2 * out->len;
    for (i = 0; i < n; i++) {
        PyObject *lvl = PyList_GET_ITEM(levels, i), *p, *q, *r = NULL;
        Py_ssize_t len;
        int64_t price, size, rpi_size = 0;
        if (!PyList_CheckExact(lvl))
            return -1;
        len = PyList_GET_SIZE(lvl);
        if (len != 2 && len != 3)
            return -1;
        p = PyList_GET_ITEM(lvl, 0);
        q = PyList_GET_ITEM(lvl, 1);
        if (len == 3)
            r = PyList_GET_ITEM(lvl, 2);
        if (!PyUnicode_CheckExact(p) || !PyUnicode_IS_COMPACT_ASCII(p) ||
            !PyUnicode_CheckExact(q) || !PyUnicode_IS_COMPACT_ASCII(q) ||
            (r && (!PyUnicode_CheckExact(r) || !PyUnicode_IS_COMPACT_ASCII(r))))
            return -1;
        if (ob_parse_scaled((const char *)PyUnicode_DATA(p), (size_t)PyUnicode_GET_LENGTH(p), px,
                            &price) != OB_OK ||
            ob_parse_scaled((const char *)PyUnicode_DATA(q), (size_t)PyUnicode_GET_LENGTH(q), qty,
                            &size) != OB_OK ||
            (r && ob_parse_scaled((const char *)PyUnicode_DATA(r), (size_t)PyUnicode_GET_LENGTH(r),
                                  qty, &rpi_size) != OB_OK))
            return -1;
        if (r && ob_levels_push(rpi, negate ? -price : price, rpi_size) != OB_OK)
            return -1;
        v[2 * i] = negate ? -price : price;
        v[2 * i + 1] = size;
    }
    out->len += (size_t)n;
    return 0;
}

/* One level from a tuple copy; -1 with *e set on bad input. */
static int ob_pylevel(PyObject *lv, Py_ssize_t i, const ob_scale *px, const ob_scale *qty,
                      int negate, ob_levels *out, ob_levels *rpi, ob_pyerr *e)
{
    Py_ssize_t len = PyTuple_GET_SIZE(lv), k;
    int64_t v[3];
    if (len != 2 && len != 3)
        return ob_pyerr_set(e, OB_FRAME, i, -1, "expected [price, size] or [price, size, rpiSize]",
                            lv);
    for (k = 0; k < len; k++) {
        PyObject *o = PyTuple_GET_ITEM(lv, k);
        const char *s;
        Py_ssize_t sn;
        int rc;
        if (!PyUnicode_Check(o))
            return ob_pyerr_set(e, OB_FRAME, i, (int)k, "expected a string", o);
        s = PyUnicode_AsUTF8AndSize(o, &sn);
        if (!s) {
            /* a lone surrogate has no UTF-8: not a number */
            if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError))
                return -2;
            PyErr_Clear();
            return ob_pyerr_set(e, OB_MALFORMED, i, (int)k, NULL, o);
        }
        rc = ob_parse_scaled(s, (size_t)sn, k ? qty : px, &v[k]);
        if (rc != OB_OK)
            return ob_pyerr_set(e, rc, i, (int)k, NULL, o);
    }
    if (ob_levels_push(out, negate ? -v[0] : v[0], v[1]) != OB_OK ||
        (len == 3 && ob_levels_push(rpi, negate ? -v[0] : v[0], v[2]) != OB_OK)) {
        PyErr_NoMemory();
        return -2;
    }
    return 0;
}

static int ob_stage_pylevels(PyObject *levels, const ob_scale *px, const ob_scale *qty,
                             int negate, ob_levels *out, ob_levels *rpi, ob_pyerr *e)
{
    size_t start = out->len, rpi_start = rpi->len;
    PyObject *seq;
    Py_ssize_t i, n;
    int rc = 0;
    e->obj = NULL;
    if (PyList_CheckExact(levels) &&
        ob_pylevels_exact(levels, px, qty, negate, out, rpi) == 0)
        return 0;
    out->len = start;
    rpi->len = rpi_start;
    if (!PyList_Check(levels) && !PyTuple_Check(levels))
        return ob_pyerr_set(e, OB_FRAME, -1, -1, "expected an array", levels);
    seq = PySequence_Tuple(levels);
    if (!seq)
        return -2;
    n = PyTuple_GET_SIZE(seq);
    for (i = 0; i < n && rc == 0; i++) {
        PyObject *item = PyTuple_GET_ITEM(seq, i), *lv;
        if (!PyList_Check(item) && !PyTuple_Check(item)) {
            rc = ob_pyerr_set(e, OB_FRAME, i, -1,
                              "expected [price, size] or [price, size, rpiSize]", item);
            break;
        }
        lv = PySequence_Tuple(item);
        if (!lv) {
            rc = -2;
            break;
        }
        rc = ob_pylevel(lv, i, px, qty, negate, out, rpi, e);
        Py_DECREF(lv);
    }
    Py_DECREF(seq);
    if (rc) {
        out->len = start;
        rpi->len = rpi_start;
    }
    return rc;
}

#endif
