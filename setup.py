"""Build the obcore Cython extensions.

OBCORE_DEBUG=1 builds with -O0 -g and bounds/wraparound checks on; OBCORE_ANNOTATE=1 writes
Cython's HTML annotation next to each .pyx. OBCORE_FUZZ=1 adds AddressSanitizer and libFuzzer
coverage for the atheris fuzzer (needs clang: see docs/fuzzing.md).
"""

import os
from glob import glob

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("OBCORE_DEBUG") == "1"
ANNOTATE = os.environ.get("OBCORE_ANNOTATE") == "1"

DIRECTIVES = {
    "language_level": "3",
    "embedsignature": True,
    # Checks are for debugging only: hot loops index C arrays whose bounds the code tracks.
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    # C division truncates toward zero, unlike Python's floor: fine where both operands are
    # >= 0 (validated prices and sizes); bid keys are stored negated, so tick math that may
    # see a negative key must not rely on // or % rounding (keep it in the one helper).
    "cdivision": True,
}
FUZZ = os.environ.get("OBCORE_FUZZ") == "1"
CFLAGS = ["-O0", "-g"] if DEBUG else ["-O3"]
LDFLAGS = []
if FUZZ:
    SANITIZE = ["-fsanitize=address,fuzzer-no-link", "-fno-omit-frame-pointer"]
    CFLAGS = ["-O1", "-g", *SANITIZE]
    LDFLAGS = SANITIZE


def extensions():
    import numpy  # noqa: PLC0415 - a build requirement, needed only when building extensions

    exts = []
    # obcore/bench/_floor.pyx is the benchmark's speed floor (a few KB, private), not a book.
    for pyx in sorted(glob("src/obcore/*.pyx")) + sorted(glob("src/obcore/bench/*.pyx")):
        name = os.path.splitext(os.path.relpath(pyx, "src"))[0].replace(os.sep, ".")
        exts.append(
            Extension(
                name,
                [pyx],
                include_dirs=["src/obcore", numpy.get_include()],
                # the C headers every extension may include: an edit rebuilds them all
                depends=sorted(glob("src/obcore/*.h")),
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                extra_compile_args=CFLAGS,
                extra_link_args=LDFLAGS,
            )
        )
    return cythonize(exts, compiler_directives=DIRECTIVES, annotate=ANNOTATE, nthreads=2)


setup(ext_modules=extensions())
