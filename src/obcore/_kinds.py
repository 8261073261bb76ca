"""Registry of compiled book variants: name -> Side subclass (see side.pxd for the contract)."""
from obcore.heap import HeapSide
from obcore.ladder import LadderSide
from obcore.skiplist import SkipListSide
from obcore.sortedarray import SortedArraySide

KINDS = {
    "sortedarray": SortedArraySide,
    "skiplist": SkipListSide,
    "heap": HeapSide,
    "ladder": LadderSide,
}

# The fastest variant on the replay benchmark (benchmarks/, docs/performance.md).
DEFAULT_KIND = "sortedarray"
