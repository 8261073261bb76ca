"""Single-key commands while the live dashboard runs: ``r`` re-reads the config (like
SIGHUP), ``q`` stops (like Ctrl-C).

Keys are read only when stdin is a terminal. For the run the terminal is put in cbreak
mode (a key arrives without Enter and is not echoed over the dashboard; Ctrl-C still
raises SIGINT) and its settings are restored on exit, also after an exception. A key's
action runs on the reader thread, so actions must only set flags for the session thread
(as :meth:`mmbot.live.LiveSession.request_reload` and ``request_stop`` do).
"""

from __future__ import annotations

import logging
import os
import select
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any, TextIO

__all__ = ["KeyCommands"]

log = logging.getLogger(__name__)

# how often the reader looks at its stop flag while no key comes
_POLL_S = 0.1


class KeyCommands:
    """Run ``bindings[key]()`` for each key typed on ``stream`` (a context manager).

    Parameters
    ----------
    bindings : mapping of str to callable
        One character to the action it triggers; other keys are ignored.
    stream : text file, optional
        The terminal to read (default ``sys.stdin``). Not a terminal: nothing is read.
    """

    def __init__(self, bindings: Mapping[str, Callable[[], None]], stream: TextIO | None = None):
        self.bindings = dict(bindings)
        self._stream = sys.stdin if stream is None else stream
        self._fd: int | None = None
        self._saved: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        """Whether keys are being read (stdin is a terminal)."""
        return self._thread is not None

    def __enter__(self) -> KeyCommands:
        try:
            fd = self._stream.fileno()
        except (AttributeError, OSError, ValueError):  # pytest's captured stdin, a closed one
            return self
        if not os.isatty(fd):
            return self
        import termios  # noqa: PLC0415 - POSIX only; a non-terminal never gets here
        import tty  # noqa: PLC0415

        self._fd, self._saved = fd, termios.tcgetattr(fd)
        tty.setcbreak(fd)
        self._thread = threading.Thread(target=self._read, name="mmbot-keys", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._fd is not None:
            import termios  # noqa: PLC0415

            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            self._fd = None

    def _read(self) -> None:
        fd = self._fd
        assert fd is not None
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], _POLL_S)
            if not ready:
                continue
            data = os.read(fd, 32)
            if not data:  # the terminal went away: nothing more will come
                return
            for key in data.decode("utf-8", "replace"):
                action = self.bindings.get(key)
                if action is not None:
                    log.info("key %r pressed", key)
                    action()
