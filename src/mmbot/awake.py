"""Keep the bot's CPUs out of their idle state: ``[run] keep_cpus_awake``.

A live bot sees a frame every 20 ms and spends most of that time idle. In a virtual
machine an idle CPU halts, and the next frame finds it cold: on the 2-vCPU VM these
numbers come from, ``mmbot run`` took ~430 µs at p50 from a frame's receive to its order
on the socket, the same code in a tight loop ~47 µs. :class:`AwakeCpus` runs one thread per
CPU the process may use, at ``SCHED_IDLE`` priority, each spinning in
:func:`obcore.cpu.spin_until_set` (a ``pause`` loop that touches no memory, with the GIL
released): the CPU never halts, and any other thread that wakes on it takes it at once.

The cost is those CPUs in full, as the host sees it: pin the bot first (``taskset -c 1
mmbot run ...``) so only its own CPUs spin. Under a CPU quota (a container's
``--cpus``, a cgroup ``cpu.max``) the spinners would use the quota up and the kernel would
throttle the bot with them: :func:`cpu_quota` finds one, and :class:`AwakeCpus` refuses to
start under it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from mmbot.config import ConfigError
from obcore.cpu import spin_until_set

__all__ = ["AwakeCpus", "KeepAwakeError", "cpu_quota"]

log = logging.getLogger(__name__)

# a spinner that is slow to see the flag is on a CPU busy with real work; it is a daemon
# thread, so one that never returns does not hold the process
_STOP_WAIT_S = 5.0


class KeepAwakeError(ConfigError):
    """``run.keep_cpus_awake`` cannot hold here (no Linux scheduler calls, a CPU quota, a
    CPU the process may not use); raised with no spinner left running."""


def cpu_quota(root: str | os.PathLike = "/") -> str | None:
    """Return the CPU quota this process runs under, as the kernel writes it (e.g.
    ``"cpu.max 50000 100000"``), or None when there is none or no cgroup file says.

    The process's own cgroup and each one above it are read: a quota on a parent (a
    systemd slice, a pod) throttles every cgroup under it. ``root``: the filesystem root
    holding ``proc/self/cgroup`` and ``sys/fs/cgroup``.
    """
    base = Path(root)
    try:
        lines = (base / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2: "0::/path"
            mount, name = base / "sys/fs/cgroup", "cpu.max"
        elif "cpu" in controllers.split(","):  # cgroup v1: "4:cpu,cpuacct:/path"
            mount, name = base / "sys/fs/cgroup" / controllers, "cpu.cfs_quota_us"
            if not mount.exists():
                mount = base / "sys/fs/cgroup/cpu"
        else:
            continue
        parts = [p for p in path.split("/") if p]
        for depth in range(len(parts), -1, -1):  # the process's cgroup, then its parents
            try:
                text = mount.joinpath(*parts[:depth], name).read_text().strip()
            except OSError:
                continue
            if text and text.split()[0] not in ("max", "-1"):
                return f"{name} {text}"
    return None


class AwakeCpus:
    """One idle-priority spinning thread per CPU in ``cpus`` (default: every CPU this
    process may run on), from :meth:`start` to :meth:`stop`; a context manager too.

    Raises :class:`KeepAwakeError` from :meth:`start`, with no spinner left running,
    when the platform has no ``SCHED_IDLE``, the process runs under a CPU quota (read
    under ``fs_root``, as :func:`cpu_quota`), or a CPU cannot be used.
    """

    def __init__(self, cpus: Iterable[int] | None = None, *, fs_root: str = "/") -> None:
        self._wanted = None if cpus is None else set(cpus)
        #: the CPUs kept awake (set by :meth:`start`)
        self.cpus: list[int] = []
        self._fs_root = fs_root
        self._flag = bytearray(1)
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the spinners; return once each is pinned and at idle priority."""
        if self._threads:
            raise RuntimeError("AwakeCpus already started")
        if not hasattr(os, "SCHED_IDLE") or not hasattr(os, "sched_setaffinity"):
            raise KeepAwakeError("run.keep_cpus_awake: needs Linux (SCHED_IDLE, sched_setaffinity)")
        self.cpus = sorted(os.sched_getaffinity(0) if self._wanted is None else self._wanted)
        if not self.cpus:
            raise KeepAwakeError("run.keep_cpus_awake: no CPU to keep awake")
        quota = cpu_quota(self._fs_root)
        if quota is not None:
            raise KeepAwakeError(
                f"run.keep_cpus_awake: this process runs under a CPU quota ({quota}); the "
                "spinners would use it up and the bot would be throttled with them"
            )
        self._flag[0] = 0
        for cpu in self.cpus:
            ready = threading.Event()
            failed: list[OSError] = []
            thread = threading.Thread(
                target=self._spin, args=(cpu, ready, failed), name=f"mmbot-awake-{cpu}", daemon=True
            )
            thread.start()
            ready.wait()
            if failed:
                thread.join()
                self.stop()
                raise KeepAwakeError(f"run.keep_cpus_awake: CPU {cpu}: {failed[0]}") from failed[0]
            self._threads.append(thread)
        log.info("keeping CPUs %s awake (one SCHED_IDLE spinner each)", self.cpus)

    def _spin(self, cpu: int, ready: threading.Event, failed: list[OSError]) -> None:
        try:
            # pid 0 is the calling thread: only the spinner moves and drops its priority
            os.sched_setaffinity(0, {cpu})
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except OSError as exc:
            failed.append(exc)
            return
        finally:
            ready.set()
        spin_until_set(self._flag)

    @property
    def running(self) -> int:
        """How many spinners are running."""
        return sum(t.is_alive() for t in self._threads)

    def stop(self) -> None:
        """Stop every spinner and wait for each (a few seconds at most)."""
        self._flag[0] = 1
        for thread in self._threads:
            thread.join(_STOP_WAIT_S)
            if thread.is_alive():
                log.warning("%s did not stop within %.0f s", thread.name, _STOP_WAIT_S)
        self._threads = []

    def __enter__(self) -> AwakeCpus:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
