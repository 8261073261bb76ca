"""Build the example in place: ``python setup.py build_ext --inplace``.

obcore must be installed in the same environment (its .pxd files are what ``cimport``
reads), with Cython and setuptools: ``pip install obcore Cython setuptools``.
"""

import os

from Cython.Build import cythonize
from setuptools import setup

import obcore

# The directory that holds the obcore package, so Cython finds obcore/book.pxd there.
OBCORE_PARENT = os.path.dirname(os.path.dirname(obcore.__file__))

setup(
    name="obcore-cython-strategy-example",
    ext_modules=cythonize(
        ["strategy.pyx"], include_path=[OBCORE_PARENT], compiler_directives={"language_level": "3"}
    ),
)
