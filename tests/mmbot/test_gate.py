"""mmbot.gate.Gate: every item runs once, in order, never two at a time; a submitter never
waits on the gate or on I/O; an exception reaches the owner thread and is never lost.

No timing is asserted: every wait is on a condition (an Event), with a timeout only as the
failure guard.
"""

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.gate import Gate


def assert_fifo_exactly_once(got: list, counts: list[int]):
    assert len(got) == sum(counts)
    for p, n in enumerate(counts):
        assert [i for q, i in got if q == p] == list(range(n)), f"producer {p} out of order"


def run_gate(counts: list[int], owner_calls: int):
    """Producers submit (producer, i) through a Gate while the owner thread runs queued
    items and holds the gate for ``owner_calls`` calls of its own. Return what ran, in
    order, whether two calls of ``process`` ever overlapped, and the gate."""
    ran: list = []
    inside = [0]
    overlap = [False]

    def process(item):
        inside[0] += 1
        overlap[0] |= inside[0] > 1
        ran.append(item)
        inside[0] -= 1

    gate = Gate(process)
    total = sum(counts)
    go = threading.Event()
    producing = [len(counts)]

    def produce(p, n):
        go.wait()
        for i in range(n):
            gate.submit((p, i))
        producing[0] -= 1  # the GIL makes this decrement whole enough for a flag

    def owner():
        calls = 0
        while len(ran) < total + owner_calls or calls < owner_calls:
            if calls < owner_calls:
                gate.call(ran.append, ("owner", calls))
                calls += 1
            gate.run_pending(0.001 if producing[0] else 0.05)

    threads = [threading.Thread(target=produce, args=(p, n)) for p, n in enumerate(counts)]
    owner_t = threading.Thread(target=owner, daemon=True)  # a lost item must not hang pytest
    for t in threads + [owner_t]:
        t.start()
    go.set()
    for t in threads:
        t.join()
    owner_t.join(60)
    assert not owner_t.is_alive(), "the owner never saw every item: one was lost"
    return [x for x in ran if x[0] != "owner"], overlap[0], gate


@pytest.mark.parametrize("owner_calls", [0, 500])
def test_gate_runs_every_item_once_in_order_never_two_at_a_time(owner_calls):
    counts = [5_000, 5_000, 3_000]
    ran, overlap, gate = run_gate(counts, owner_calls)
    assert not overlap
    assert_fifo_exactly_once(ran, counts)
    assert gate.inline + gate.queued == sum(counts)


@settings(max_examples=25, deadline=None)
@given(counts=st.lists(st.integers(0, 300), min_size=1, max_size=4), calls=st.integers(0, 50))
def test_gate_keeps_order_for_any_mix(counts, calls):
    ran, overlap, _ = run_gate(counts, calls)
    assert not overlap
    assert_fifo_exactly_once(ran, counts)


def hold_in_thread(gate: Gate, method=None):
    """Hold ``gate`` on another thread until the returned ``release`` is set."""
    held, release = threading.Event(), threading.Event()

    def hold():
        held.set()
        assert release.wait(10)

    t = threading.Thread(target=method or gate.call, args=(hold,))
    t.start()
    assert held.wait(10)
    return t, release


def test_gate_queues_while_held_and_the_next_holder_runs_the_queue_first():
    ran = []
    gate = Gate(ran.append)
    t, release = hold_in_thread(gate)
    assert gate.submit("a") is False and gate.submit("b") is False  # held: queued
    assert ran == [] and gate.pending() == 2
    release.set()
    t.join()
    assert gate.submit("c") is True  # free: "a" and "b" first, then "c", on this thread
    assert ran == ["a", "b", "c"]
    assert gate.run_pending(0.01) == 0  # their tokens remain; the items already ran


def test_a_submitter_never_waits_while_the_owner_holds_the_gate_on_io():
    # the owner holds the gate for as long as a REST call takes; a socket thread's submit
    # returns at once (queued), on its own thread, whatever the owner is doing
    ran = []
    gate = Gate(ran.append)
    t, release = hold_in_thread(gate)
    done = threading.Event()
    submitter = threading.Thread(target=lambda: (gate.submit("frame"), done.set()))
    submitter.start()
    assert done.wait(10), "submit waited for the owner"
    assert ran == []
    release.set()
    t.join()
    assert gate.run_pending(1) == 1 and ran == ["frame"]


def test_items_submitted_while_processing_run_after_it_on_the_same_thread():
    # an order's send can raise an event (a refusal) while the frame is processed: it is
    # applied right after the frame, not left for the owner's next wake-up
    ran = []

    def process(item):
        ran.append(item)
        if item == "frame":
            assert gate.submit("refusal") is False  # the gate is held by this very call

    gate = Gate(process)
    assert gate.submit("frame") is True
    assert ran == ["frame", "refusal"]


def test_a_submitters_exception_reaches_the_owner_and_submitters_then_only_queue():
    ran = []

    def process(item):
        if item == "bad":
            raise ValueError("bad item")
        ran.append((item, threading.get_ident()))

    gate = Gate(process)
    errors = []

    def socket_thread():
        errors.append(gate.submit("bad"))  # pybit would only log it: it must not see it

    t = threading.Thread(target=socket_thread)
    t.start()
    t.join()
    assert errors == [True] and gate.failed
    assert gate.submit("after") is False  # owner-only from now on
    with pytest.raises(ValueError, match="bad item"):
        gate.run_pending(1)
    # raised once; the owner then runs what was queued behind it
    assert gate.run_pending(0) == 1
    assert ran == [("after", threading.get_ident())]
    with pytest.raises(ValueError, match="second"):
        gate.call(lambda: (_ for _ in ()).throw(ValueError("second")))


def test_an_exception_on_the_owner_propagates_at_once():
    def process(item):
        raise RuntimeError(item)

    gate = Gate(process)
    t, release = hold_in_thread(gate)
    assert gate.submit("queued") is False
    release.set()
    t.join()
    with pytest.raises(RuntimeError, match="queued"):
        gate.run_pending(1)
    assert not gate.failed  # the owner saw it: submitters may still run items


def test_a_submitters_failure_is_raised_by_call_too():
    gate = Gate(lambda item: 1 / 0)
    assert gate.submit("x") is True
    with pytest.raises(ZeroDivisionError):
        gate.call(lambda: None)
    assert gate.call(lambda: "ok") == "ok"  # once


def test_hold_runs_nothing_queued_and_raises_no_failure():
    ran = []
    gate = Gate(lambda item: 1 / 0 if item == "bad" else ran.append(item))
    gate.submit("bad")  # a submitter's failure, pending for the owner
    gate.submit("queued")
    assert gate.hold(len, ran) == 0  # a shutdown's cancel-all is not held up by either
    with pytest.raises(ZeroDivisionError):
        gate.run_pending(0)


def test_not_allowed_inline_every_submit_queues_for_the_owner():
    ran = []
    gate = Gate(ran.append, allow_inline=False)
    assert gate.submit(1) is False and ran == []
    gate.allow_inline = True
    assert gate.submit(2) is True and ran == [1, 2]


def test_wake_returns_run_pending_with_nothing_to_run():
    gate = Gate(lambda item: None)
    woke = threading.Event()

    def owner():
        gate.run_pending(30)  # the failure guard; wake() ends it long before
        woke.set()

    t = threading.Thread(target=owner)
    t.start()
    gate.wake()
    assert woke.wait(10)
    t.join()


def test_a_submitters_item_is_not_lost_when_a_queued_item_before_it_raises():
    # the submitter runs the queue first; when one of those raises, its own item has not
    # run yet: it must stay queued (after the rest) for the owner, not vanish
    ran = []

    def process(item):
        if item == "bad":
            raise ValueError("bad item")
        ran.append(item)

    gate = Gate(process)
    t, release = hold_in_thread(gate)
    gate.submit("bad")  # queued behind the holder
    gate.submit("queued")
    release.set()
    t.join()
    submitter = threading.Thread(target=gate.submit, args=("mine",))
    submitter.start()
    submitter.join()
    assert gate.failed
    with pytest.raises(ValueError, match="bad item"):
        gate.run_pending(1)
    gate.run_pending(0)
    assert ran == ["queued", "mine"]  # each once, in order
