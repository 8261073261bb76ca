"""Raw frame recording: one frame per line, the format ``obcore.recording.read_frames``
reads back for benchmarks and backtests."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

__all__ = ["FrameRecorder"]


@dataclass
class FrameRecorder:
    """Append raw frames, one per line, to a file (gzip when the name ends in ``.gz``).

    Written from the feed's socket thread; the format is what ``obcore.recording.
    read_frames`` reads back for benchmarks and backtests. Only orderbook frames are
    kept unless ``all_messages``.
    """

    path: str
    all_messages: bool = False
    frames: int = 0
    _fh: object = field(default=None, repr=False)

    def __post_init__(self):
        from obcore.recording import open_text  # noqa: PLC0415  (only needed to record)

        self._fh = open_text(self.path, "w")
        self._lock = threading.Lock()

    def write(self, message: str):
        if not self.all_messages and '"topic":"orderbook.' not in message[:80]:
            return
        if "\n" in message:
            raise ValueError("a raw frame cannot contain a newline")
        with self._lock:
            if self._fh is None:
                return
            self._fh.write(message)
            self._fh.write("\n")
            self.frames += 1

    def close(self):
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
