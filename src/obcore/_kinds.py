"""Registry of compiled book variants: name -> Side subclass (see side.pxd for the contract)."""
from obcore.sortedarray import SortedArraySide

KINDS = {
    "sortedarray": SortedArraySide,
}

# The fastest variant on the replay benchmark (benchmarks/, docs/performance.md).
DEFAULT_KIND = "sortedarray"
