"""Keep a CPU out of its idle state between frames.

A bot that sees a frame every 20 ms leaves its CPU idle most of the time. In a virtual
machine an idle CPU halts: the hypervisor takes the core back, and the next frame finds
the caches and the kernel paths cold. On a 2-vCPU Firecracker VM a 300-byte loopback
``send`` after 20 ms idle takes ~75 µs at p50 against ~6 µs back to back; with a
:func:`spin_until_set` thread at idle priority on the same CPU it takes ~18 µs.

The spin is a ``pause`` loop that reads one byte and nothing else, so it does not evict
the bot's working set from the caches, as a Python busy loop does (measured: no gain).
"""

cdef extern from "_pause.h":
    void ob_pause_until_set(const unsigned char *flag) nogil


def spin_until_set(unsigned char[::1] flag not None):
    """Spin on the calling thread's CPU, with the GIL released, until ``flag[0]`` is
    non-zero; return at once if it already is.

    ``flag`` is a writable buffer of at least one byte (a ``bytearray(1)``); another
    thread sets ``flag[0] = 1`` to stop the spin. The caller chooses the CPU and the
    priority: pin the thread with ``os.sched_setaffinity(0, {cpu})`` and lower it with
    ``os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))`` first, so the spin
    takes only the time nothing else wants.
    """
    if flag.shape[0] < 1:
        raise ValueError("spin_until_set: flag must hold at least one byte")
    with nogil:
        ob_pause_until_set(&flag[0])
