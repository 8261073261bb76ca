"""obcore: an exact, fast L2 orderbook engine for Bybit v5 market data.

Prices are int64 ticks and sizes int64 lots, parsed from the exchange's decimal strings in C
without ever going through float. The compiled extension is the product: there is no silent
pure-Python fallback (``obcore._reference.PyBook`` is a slow reference model for tests).
"""

try:
    from obcore.book import Applied, Book, Books, Scale, frame_topic, kinds
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        "obcore's compiled extension is missing; install the package with "
        "`pip install .` (or `python setup.py build_ext --inplace` in a checkout)"
    ) from exc

from obcore._errors import (
    FrameError,
    MalformedNumberError,
    NegativeValueError,
    NumberOverflowError,
    ObcoreError,
    OffGridError,
    OffStepError,
    OffTickError,
    OutOfSyncError,
    ParseError,
    SequenceError,
    SequenceGapError,
    UninitializedBookError,
    UnknownTopicError,
)

__version__ = "0.1.0"
__impl__ = "cython"

__all__ = [
    "Applied",
    "Book",
    "Books",
    "FrameError",
    "MalformedNumberError",
    "NegativeValueError",
    "NumberOverflowError",
    "ObcoreError",
    "OffGridError",
    "OffStepError",
    "OffTickError",
    "OutOfSyncError",
    "ParseError",
    "Scale",
    "SequenceError",
    "SequenceGapError",
    "UninitializedBookError",
    "UnknownTopicError",
    "frame_topic",
    "kinds",
]
