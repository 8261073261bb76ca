"""Replay benchmarks: a whole stream through each book, checked against the exact reference.

Groups (one per operation and workload; each round replays every delta once after an
untimed reset + snapshot):

- ``levels/<workload>``: apply messages already decoded by orjson (level updates from
  ``[price, size]`` string pairs); divide by ``extra_info.level_updates``;
- ``frames/<workload>``: apply raw frame text, JSON decoding included; divide by
  ``extra_info.messages``;
- ``frames+best``, ``frames+top10``, ``frames+vwap``: the same with that read after every
  message (reads after writes are what a quoting loop does, and where lazily sorted books
  pay);
- ``scale-levels/synthetic-<depth>``: ``levels`` at 50 to 10,000 levels a side.
"""

import pytest

from benchmarks.conftest import (
    PEERS,
    REPLAY_WORKLOADS,
    SCALE_DEPTHS,
    oracle,
    skip_slow,
    workload,
)
from obcore.bench.peers import check_peer, make_peer

ROUNDS = 5


def _replay(benchmark, peer, wl, mode, read=None):
    snap = wl.msgs[0] if mode == "levels" else wl.frames[0]
    items = wl.msgs[1:] if mode == "levels" else wl.frames[1:]

    def setup():
        peer.reset()
        getattr(peer, "apply_" + mode)(snap)

    if read is None:

        def run():
            apply = getattr(peer, "apply_" + mode)
            for x in items:
                apply(x)
    else:

        def run():
            apply = getattr(peer, "apply_" + mode)
            r = read()
            for x in items:
                apply(x)
                r()

    benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    benchmark.extra_info.update(
        messages=len(items), level_updates=wl.level_updates(), depth=wl.depth
    )


def _check(peer, name):
    check_peer(peer, oracle(name), 10, workload(name).vwap_lots)


@pytest.mark.parametrize("wl_name", REPLAY_WORKLOADS)
@pytest.mark.parametrize("mode", ["levels", "frames"])
@pytest.mark.parametrize("peer_name", PEERS)
def test_replay(benchmark, peer_name, mode, wl_name):
    wl = workload(wl_name)
    skip_slow(peer_name, wl)
    benchmark.group = f"{mode}/{wl.name}"
    peer = make_peer(peer_name, wl.tick_size, wl.lot_size, wl.topic)
    _replay(benchmark, peer, wl, "levels" if mode == "levels" else "frame")
    _check(peer, wl_name)


def _vwap_reader(peer, qty):
    return lambda: peer.vwap("a", qty)


READS = {
    "best": lambda p, wl: p.best,
    "top10": lambda p, wl: lambda: p.top(10),
    "vwap": lambda p, wl: _vwap_reader(p, p.native_qty(wl.vwap_lots)),
}


@pytest.mark.parametrize("wl_name", REPLAY_WORKLOADS)
@pytest.mark.parametrize("op", sorted(READS))
@pytest.mark.parametrize("peer_name", PEERS)
def test_read_after_write(benchmark, peer_name, op, wl_name):
    wl = workload(wl_name)
    skip_slow(peer_name, wl)
    benchmark.group = f"frames+{op}/{wl.name}"
    peer = make_peer(peer_name, wl.tick_size, wl.lot_size, wl.topic)
    _replay(benchmark, peer, wl, "frame", read=lambda: READS[op](peer, wl))
    _check(peer, wl_name)


@pytest.mark.parametrize("depth", SCALE_DEPTHS)
@pytest.mark.parametrize("peer_name", PEERS)
def test_scale_levels(benchmark, peer_name, depth):
    name = f"synthetic-{depth}"
    wl = workload(name)
    skip_slow(peer_name, wl)
    benchmark.group = f"scale-levels/{name}"
    peer = make_peer(peer_name, wl.tick_size, wl.lot_size, wl.topic)
    _replay(benchmark, peer, wl, "levels")
    _check(peer, name)
