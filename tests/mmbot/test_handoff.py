"""Handoff: FIFO, nothing lost or doubled, under concurrent producers and a consumer that
blocks and wakes; the benchmark's eventfd queue is held to the same contract (the Gate's
tests are in test_gate.py).

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
