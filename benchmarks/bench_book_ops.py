"""Single-operation benchmarks on a settled book of 50 to 10,000 levels a side.

Groups ``<op>/synthetic-<depth>`` for ``best`` (best bid and ask), ``top10`` (ten levels a
side) and ``vwap`` (average price to take the first snapshot's five best levels' size
from the asks). The book is the full workload replayed, and is checked against the exact
reference before it is timed. These are reads on a quiet book: a lazily sorted book
(order-book) looks cheap here and pays after writes instead, see ``frames+<op>`` in
bench_replay.py.
"""

import pytest

from benchmarks.conftest import PEERS, SCALE_DEPTHS, oracle, skip_slow, workload
from obcore.bench.peers import check_peer, make_peer


@pytest.mark.parametrize("op", ["best", "top10", "vwap"])
@pytest.mark.parametrize("depth", SCALE_DEPTHS)
@pytest.mark.parametrize("peer_name", PEERS)
def test_read(benchmark, peer_name, depth, op):
    name = f"synthetic-{depth}"
    wl = workload(name)
    skip_slow(peer_name, wl)
    peer = make_peer(peer_name, wl.tick_size, wl.lot_size, wl.topic)
    for f in wl.frames:
        peer.apply_frame(f)
    check_peer(peer, oracle(name), 10, wl.vwap_lots)
    benchmark.group = f"{op}/{name}"
    if op == "best":
        got = benchmark(peer.best)
    elif op == "top10":
        got = benchmark(peer.top, 10)
    else:
        got = benchmark(peer.vwap, "a", peer.native_qty(wl.vwap_lots))
    assert got is not None
