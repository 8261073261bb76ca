#!/usr/bin/env python3
"""Coverage-guided fuzzer (atheris/libFuzzer) for obcore's raw frame parser and dict path.

Every input is a candidate frame, applied to books that start from one snapshot (see
tests/obcore/fuzz_oracle.py): the raw C parser, the dict path on stdlib json's reading of
the same text, and the reference model must agree, and a rejected frame must leave each book
as it was. A disagreement raises; a memory error stops the run under AddressSanitizer.
The first byte of an input picks the book kind, so every variant is covered.

Build and run: docs/fuzzing.md (``tests/obcore/fuzz/run`` does both).
"""

import os
import sys

import atheris

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

with atheris.instrument_imports(include=["fuzz_oracle", "obcore"]):
    from fuzz_oracle import BASE, check, fresh

    import obcore

KINDS = obcore.kinds()


def one_input(data: bytes) -> None:
    if not data:
        return
    kind = KINDS[data[0] % len(KINDS)]
    check(data[1:], fresh(kind))


def main() -> None:
    # The instrumented build must be the one imported, not the source tree's.
    if os.environ.get("OBCORE_FUZZ_LIB"):
        assert obcore.__file__.startswith(os.environ["OBCORE_FUZZ_LIB"]), obcore.__file__
    assert obcore.Book("0.10", "0.001").apply(BASE) is obcore.Applied.SNAPSHOT
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
