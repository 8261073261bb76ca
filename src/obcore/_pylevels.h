/* Staging of already-parsed levels ([[price, size], ...] lists of str) in one C loop.
 *
 * This is the fast path of Book.apply(dict) and Book.apply_levels: it borrows references,
 * reads compact-ASCII str buffers in place and never raises. Anything unusual (a tuple, a
 * non-str, a parse error) returns -1, and the caller reruns its checked Cython path, which
 * raises the precise, typed error.
 */
#ifndef OBCORE_PYLEVELS_H
#define OBCORE_PYLEVELS_H

#include <Python.h>

#include "_parse.h"

static int ob_stage_pylist(PyObject *levels, const ob_scale *px, const ob_scale *qty,
                           int negate, ob_levels *out)
{
    Py_ssize_t i, n;
    if (!PyList_CheckExact(levels))
        return -1;
    n = PyList_GET_SIZE(levels);
    for (i = 0; i < n; i++) {
        PyObject *lvl = PyList_GET_ITEM(levels, i), *p, *q;
        int64_t price, size;
        if (!PyList_CheckExact(lvl) || PyList_GET_SIZE(lvl) != 2)
            return -1;
        p = PyList_GET_ITEM(lvl, 0);
        q = PyList_GET_ITEM(lvl, 1);
        if (!PyUnicode_CheckExact(p) || !PyUnicode_IS_COMPACT_ASCII(p) ||
            !PyUnicode_CheckExact(q) || !PyUnicode_IS_COMPACT_ASCII(q))
            return -1;
        if (ob_parse_scaled((const char *)PyUnicode_DATA(p), (size_t)PyUnicode_GET_LENGTH(p), px,
                            &price) != OB_OK ||
            ob_parse_scaled((const char *)PyUnicode_DATA(q), (size_t)PyUnicode_GET_LENGTH(q), qty,
                            &size) != OB_OK)
            return -1;
        if (ob_levels_push(out, negate ? -price : price, size) != OB_OK)
            return -1;
    }
    return 0;
}

#endif
