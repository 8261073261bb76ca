"""Cython code can cimport obcore and call its C-level API (the installed .pxd files)."""

import os
import subprocess
import sys
import textwrap

import pytest

import obcore

pytestmark = pytest.mark.slow

# Compiling a user's .pyx needs Cython and setuptools, which an installed wheel's runtime (as
# .ci/wheels tests it) deliberately lacks.
pytest.importorskip("Cython")
pytest.importorskip("setuptools")

USER_PYX = textwrap.dedent('''
    # cython: language_level=3
    from libc.stdint cimport int64_t
    from obcore.book cimport Book
    from obcore.side cimport Side
    from obcore.sortedarray cimport SortedArraySide

    def top(Book book):
        """Best bid/ask through the C API, no Python calls."""
        if not book.c_has_bid() or not book.c_has_ask():
            return None
        return (book.c_best_bid(), book.c_best_bid_qty(), book.c_best_ask(), book.c_best_ask_qty())

    def feed(Book book, bytes frame):
        return book.apply_raw(frame, len(frame))

    def sortedarray_without_reserve(int n):
        # reserve() is a promise that set() cannot fail, not a precondition for memory safety
        cdef SortedArraySide s = SortedArraySide()
        cdef int i
        for i in range(n):
            s.set((i * 7919) % 100003, i + 1)
        s.check()
        return s.count

    def base_side_is_abstract():
        try:
            Side()
        except TypeError:
            return True
        return False

    def depth_sum(Book book, int n):
        cdef int64_t ticks[64]
        cdef int64_t lots[64]
        cdef Py_ssize_t k = book.c_depth(True, ticks, lots, n)
        cdef int64_t total = 0
        for i in range(k):
            total += lots[i]
        return total
''')

SETUP = textwrap.dedent("""
    from Cython.Build import cythonize
    from setuptools import setup
    setup(ext_modules=cythonize(["user_ext.pyx"], include_path=[{path!r}], quiet=True),
          script_args=["build_ext", "--inplace", "-q"])
""")

RUN = textwrap.dedent("""
    import obcore, user_ext
    b = obcore.Book("0.1", "0.001")
    frame = (b'{"type":"snapshot","data":{"s":"X","b":[["10.0","1.5"],["9.9","2"]],'
             b'"a":[["10.1","0.25"]],"u":1}}')
    assert user_ext.feed(b, frame) == 1
    assert user_ext.top(b) == (100, 1500, 101, 250), user_ext.top(b)
    assert user_ext.depth_sum(b, 10) == 3500
    assert user_ext.sortedarray_without_reserve(5000) == 5000
    assert user_ext.base_side_is_abstract()
    print("ok")
""")


def test_cimport_obcore(tmp_path):
    pkg_parent = os.path.dirname(os.path.dirname(obcore.__file__))
    (tmp_path / "user_ext.pyx").write_text(USER_PYX)
    (tmp_path / "setup.py").write_text(SETUP.format(path=pkg_parent))
    build = subprocess.run(
        [sys.executable, "setup.py"], cwd=tmp_path, capture_output=True, text=True
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    run = subprocess.run([sys.executable, "-c", RUN], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == "ok"
