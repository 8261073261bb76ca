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

# The fastest variant on the replay benchmark (docs/performance.md): fastest per raw frame
# at 50-1000 levels and flat up to 10,000, where the sorted array slows 4x.
DEFAULT_KIND = "ladder"
