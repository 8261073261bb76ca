"""Recordings of raw Bybit frames: one frame per line, plain text or gzip.

Format
------
- UTF-8 text, one raw WebSocket frame per line, exactly as received (Bybit's compact
  JSON never contains a raw newline), each line ended by ``"\\n"``.
- A path ending in ``.gz`` is gzip-compressed; anything else is plain text.
- Blank lines are skipped on reading, so concatenating recordings is safe.

This is what ``python -m benchmarks --recording`` replays. ``mmbot record`` writes the
richer ``mmbot-recording`` format (a header line and a receive time before each frame, see
``mmbot.recorder``), which :func:`read_frames` reads as well.

Examples
--------
>>> import os, tempfile
>>> from obcore.recording import read_frames, write_frames
>>> path = os.path.join(tempfile.mkdtemp(), "btc.jsonl.gz")
>>> write_frames(path, ['{"topic":"orderbook.50.BTCUSDT"}'])
1
>>> list(read_frames(path))
['{"topic":"orderbook.50.BTCUSDT"}']
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable, Iterator
from typing import TextIO, cast

__all__ = ["read_frames", "write_frames", "open_text"]


def open_text(path: str | os.PathLike[str], mode: str) -> TextIO:
    """Open ``path`` as UTF-8 text, through gzip when its name ends in ``.gz``.

    Parameters
    ----------
    path : str or PathLike
        The recording file.
    mode : {"r", "w", "a"}
        Read, write (truncate) or append.
    """
    if mode not in ("r", "w", "a"):
        raise ValueError(f"mode must be 'r', 'w' or 'a', got {mode!r}")
    # text modes only ("t" for gzip, the default for open): both give a TextIO, which the
    # type checker cannot see through a mode held in a variable
    if os.fspath(path).endswith(".gz"):
        return cast(TextIO, gzip.open(path, mode + "t", encoding="utf-8", newline="\n"))
    return cast(TextIO, open(path, mode, encoding="utf-8", newline="\n"))


def write_frames(path: str | os.PathLike[str], frames: Iterable[str | bytes]) -> int:
    """Write raw frames to ``path``, one per line; return how many were written.

    Parameters
    ----------
    path : str or PathLike
        Destination; gzip-compressed when the name ends in ``.gz``. Overwritten.
    frames : iterable of str or bytes
        Raw frames (bytes are decoded as UTF-8).

    Raises
    ------
    ValueError
        If a frame contains a newline (it would split into two records) or bytes are
        not valid UTF-8. Frames before the bad one are already written.
    TypeError
        If a frame is neither str nor bytes.
    """
    n = 0
    with open_text(path, "w") as f:
        for frame in frames:
            if isinstance(frame, (bytes, bytearray, memoryview)):
                try:
                    frame = bytes(frame).decode("utf-8")
                except UnicodeDecodeError as e:
                    raise ValueError(f"frame {n} is not valid UTF-8: {e}") from e
            elif not isinstance(frame, str):
                raise TypeError(f"frame {n} must be str or bytes, got {type(frame).__name__}")
            if "\n" in frame or "\r" in frame:
                raise ValueError(
                    f"frame {n} contains a newline; a recording holds one frame "
                    f"per line: {frame[:80]!r}"
                )
            f.write(frame)
            f.write("\n")
            n += 1
    return n


def read_frames(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield the raw frames recorded in ``path``, in order, without line endings.

    Parameters
    ----------
    path : str or PathLike
        A recording written by :func:`write_frames` or ``mmbot record``; read through
        gzip when the name ends in ``.gz``.

    Yields
    ------
    str
        One raw frame per non-blank line. mmbot's recordings (``mmbot-recording``) are
        read too: their ``#`` lines (header, order round trips) are skipped and the local
        receive time in front of each frame (``RECV_NS FRAME``) is dropped.
    """
    with open_text(path, "r") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith("#"):
                continue
            if line[0].isdigit():
                ns, sep, rest = line.partition(" ")
                if sep and ns.isdigit():
                    if rest.startswith("#"):
                        continue
                    line = rest
            yield line
