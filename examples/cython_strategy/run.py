"""Feed a synthetic Bybit stream to the Cython quoter and check its quotes from Python.

Build first (``python setup.py build_ext --inplace``), then ``python run.py``.
"""

import math

from strategy import Quoter

import obcore
from obcore.synthetic import generate_frames


def quote_in_python(book: obcore.Book, half_spread: int, levels: int):
    """The same rule through obcore's Python API: what the C version must return."""
    bid, ask = book.best_bid()[0], book.best_ask()[0]
    b = int(book.bids(levels)[:, 1].sum())
    a = int(book.asks(levels)[:, 1].sum())
    fair = (bid + ask) / 2.0 + (b - a) / (b + a) * (ask - bid) / 2.0
    return min(math.floor(fair) - half_spread, ask - 1), max(math.ceil(fair) + half_spread, bid + 1)


def main():
    book = obcore.Book("0.1", "0.001")
    quoter = Quoter(half_spread=2, levels=5)
    frames = 0
    for frame in generate_frames(depth=50, messages=500, seed=7):
        my_bid, my_ask = quoter.on_frame(book, frame.encode())
        assert my_bid < book.best_ask()[0] and my_ask > book.best_bid()[0], "would cross"
        assert (my_bid, my_ask) == quote_in_python(book, 2, 5)
        frames += 1
    print(
        f"ok: {frames} frames; last quote {book.price_str(my_bid)} x {book.price_str(my_ask)}"
        f" around a touch of {book.price_str(book.best_bid()[0])} x "
        f"{book.price_str(book.best_ask()[0])}"
    )


if __name__ == "__main__":
    main()
