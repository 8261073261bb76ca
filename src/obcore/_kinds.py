"""Registry of compiled book variants: name -> Side subclass (see side.pxd for the contract)."""
from obcore.sortedarray import SortedArraySide

KINDS = {
    "sortedarray": SortedArraySide,
}
