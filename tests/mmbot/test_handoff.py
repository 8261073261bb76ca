"""Handoff: FIFO, nothing lost or doubled, under concurrent producers and a consumer that
blocks and wakes; the benchmark's eventfd queue is held to the same contract.

No timing is asserted: every wait is on a condition, with a timeout only as the failure
guard.
"""

import queue
import threading

import pytest
from benchmarks.primitives import Handoff
from hypothesis import given, settings
from hypothesis import strategies as st
from support.waiting import wait_for


def queues():
    from benchmarks.handoff import EventfdQueue  # noqa: PLC0415

    return {
        "wake": Handoff,
        "plain": lambda: Handoff(yield_on_wake=False),
        "eventfd": EventfdQueue,
    }


def run_producers_and_consumer(q, counts: list[int], batch_every: int = 0):
    """Producers put (producer, i) for i < counts[producer], all at once; one consumer
    takes until it has every item. Return what the consumer got, in order."""
    total = sum(counts)
    got: list = []
    go = threading.Event()

    def produce(p: int, n: int):
        go.wait()
        for i in range(n):
            q.put((p, i))

    def consume():
        while len(got) < total:
            try:
                got.append(q.get(timeout=10))  # the failure guard: a lost item ends here
            except queue.Empty:
                return

    consumer = threading.Thread(target=consume)
    producers = [threading.Thread(target=produce, args=(p, n)) for p, n in enumerate(counts)]
    consumer.start()
    for t in producers:
        t.start()
    go.set()
    for t in producers:
        t.join()
    consumer.join()
    return got


def assert_fifo_exactly_once(got: list, counts: list[int]):
    assert len(got) == sum(counts)
    for p, n in enumerate(counts):
        assert [i for q, i in got if q == p] == list(range(n)), f"producer {p} out of order"


@pytest.mark.parametrize("kind", ["wake", "plain", "eventfd"])
def test_many_producers_one_consumer_stress(kind):
    q = queues()[kind]()
    counts = [20_000, 20_000, 5_000, 1]
    assert_fifo_exactly_once(run_producers_and_consumer(q, counts), counts)


@settings(max_examples=30, deadline=None)
@given(counts=st.lists(st.integers(0, 400), min_size=1, max_size=5))
def test_any_mix_of_producers_keeps_order_and_loses_nothing(counts):
    for make in queues().values():
        q = make()
        assert_fifo_exactly_once(run_producers_and_consumer(q, counts), counts)


def test_a_put_that_wakes_a_waiting_consumer_yields_to_it_once():
    h = Handoff()
    got = []
    t = threading.Thread(target=lambda: got.append(h.get(timeout=10)))
    t.start()
    assert wait_for(lambda: h._waiting)  # the consumer is blocked in get
    h.put("a")
    t.join()
    assert got == ["a"] and h.wakes == 1
    h.put("b")  # nobody waiting: no yield
    assert h.wakes == 1 and h.get_nowait() == "b"


def test_empty_raises_like_simplequeue():
    h = Handoff()
    with pytest.raises(queue.Empty):
        h.get_nowait()
    with pytest.raises(queue.Empty):
        h.get(timeout=0.001)
    with pytest.raises(queue.Empty):
        h.get(block=False)
    assert h.empty() and h.qsize() == 0 and not h._waiting


def run_gate(counts: list[int], owner_calls: int):
    """Producers submit (producer, i) through a Gate while the owner thread runs queued
    items and holds the gate for ``owner_calls`` calls of its own. Return what ran, in
    order, and whether two calls of ``process`` ever overlapped."""
    from benchmarks.primitives import Gate  # noqa: PLC0415

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


def test_gate_queues_while_held_and_the_next_holder_runs_the_queue_first():
    from benchmarks.primitives import Gate  # noqa: PLC0415

    ran = []
    gate = Gate(ran.append)
    held, release = threading.Event(), threading.Event()

    def hold():
        held.set()
        release.wait(10)

    t = threading.Thread(target=gate.call, args=(hold,))
    t.start()
    assert held.wait(10)
    assert gate.submit("a") is False and gate.submit("b") is False  # held: queued
    release.set()
    t.join()
    assert gate.submit("c") is True  # free: "a" and "b" first, then "c", on this thread
    assert ran == ["a", "b", "c"]
    assert gate.run_pending(0.01) == 0  # their tokens remain; the items already ran
