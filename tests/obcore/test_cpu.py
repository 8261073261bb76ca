"""obcore.cpu.spin_until_set: spins with the GIL released until its flag is set."""

import threading
import time

import pytest

from obcore.cpu import spin_until_set


def test_spins_until_another_thread_sets_the_flag_and_lets_python_run_meanwhile():
    flag = bytearray(1)
    spinner = threading.Thread(target=spin_until_set, args=(flag,), daemon=True)
    spinner.start()
    # this thread gets the GIL and does work while the spinner spins
    counted = 0
    end = time.monotonic() + 0.2
    while time.monotonic() < end:
        counted += 1
    assert spinner.is_alive()
    assert counted > 1000
    flag[0] = 1
    spinner.join(10)
    assert not spinner.is_alive()


def test_returns_at_once_when_the_flag_is_already_set():
    spin_until_set(bytearray(b"\x01"))
    spin_until_set(memoryview(bytearray(b"\x00\x07"))[1:])


@pytest.mark.parametrize(
    "flag, error",
    [(bytearray(), ValueError), (b"\x00", BufferError), (None, TypeError)],
    ids=["empty", "read-only", "none"],
)
def test_a_flag_it_cannot_watch_is_an_error_not_a_spin(flag, error):
    with pytest.raises(error):
        spin_until_set(flag)
