"""obcore-bench: which book variant is fastest on your data, measured on your machine.

``obcore-bench`` (or ``python -m obcore.bench``) replays a synthetic Bybit v5 orderbook
stream, or your recording (``--recording FILE``), through every compiled variant and, when
``obcore[bench]`` is installed, through order-book, SortedDict and pybit. It prints medians
of repetitions and ratios against a baseline measured in the same run, and checks every
book against an exact reference so a fast wrong answer cannot win.

Modules: :mod:`~obcore.bench.workloads` (streams), :mod:`~obcore.bench.peers` (the books
behind one interface), :mod:`~obcore.bench.runner` (the method and the command line),
:mod:`~obcore.bench.memory` (resident memory per book), :mod:`~obcore.bench.plot` (chart).
"""

from obcore.bench.runner import main

__all__ = ["main"]
