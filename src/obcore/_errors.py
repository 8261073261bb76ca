"""Exceptions raised by obcore. Every one subclasses :class:`ObcoreError`."""


class ObcoreError(Exception):
    """Base of every error obcore raises."""


class ParseError(ObcoreError, ValueError):
    """Input text that obcore refuses. ``field`` names where it was, ``text`` is the
    offending text."""

    def __init__(self, message: str, field: str = "", text: str = ""):
        super().__init__(message)
        self.field = field
        self.text = text


class MalformedNumberError(ParseError):
    """Not a plain decimal number such as ``"65114.2"`` (no sign, exponent or spaces)."""


class NegativeValueError(ParseError):
    """A price, size or update id below zero."""


class NumberOverflowError(ParseError, OverflowError):
    """A value that does not fit in a signed 64-bit count of ticks or lots."""


class OffGridError(ParseError):
    """A value that is not a whole multiple of its grid step."""


class OffTickError(OffGridError):
    """A price that is not a multiple of the tick size."""


class OffStepError(OffGridError):
    """A size that is not a multiple of the lot size."""


class FrameError(ParseError):
    """A message that is not a well-formed Bybit v5 orderbook frame."""


class SequenceError(ObcoreError):
    """A delta that cannot be applied in sequence; the book is unchanged."""


class SequenceGapError(SequenceError):
    """A delta's update id skipped ahead: updates were missed. The book is now out of sync."""

    def __init__(self, message: str, expected: int, received: int):
        super().__init__(message)
        self.expected = expected
        self.received = received


class OutOfSyncError(SequenceError):
    """A delta arrived while the book waits for a snapshot (none yet, or after a gap)."""


class UninitializedBookError(ObcoreError, RuntimeError):
    """A write to a book whose ``__init__`` never ran (``Book.__new__``, or a subclass whose
    ``__init__`` does not call ``super().__init__``). Reads see an empty book."""


class UnknownTopicError(ObcoreError, KeyError):
    """A frame for a topic that no book in a :class:`Books` registry is registered for."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
