"""Stub of the compiled twin of ``obcore.synthetic``'s generator (private)."""

import random
from collections.abc import Iterator

from obcore.synthetic import SyntheticStream

MAX_TICKS: int

def frames(
    stream: SyntheticStream,
    rng: random.Random,
    scales: tuple[int, int, int, int],
    truth: bool = ...,
) -> Iterator[str]: ...
