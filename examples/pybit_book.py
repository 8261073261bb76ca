"""Give a pybit bot an always-correct obcore book per symbol, with a callback after each update.

``mmbot.bybit.BookFeed`` is a pybit ``WebSocket``: swap it in for the one your bot builds,
call ``add_book`` instead of ``orderbook_stream``, and keep every other pybit subscription
as it is. Orderbook frames skip pybit's JSON decoding, its unsorted list book and its
deepcopy, and go as raw text into an ``obcore.Book``. A gap or a rejected frame marks the
book invalid, resubscribes that one topic and rebuilds the book from the fresh snapshot;
``on_status`` hears both edges. ::

    python examples/pybit_book.py                                   # Bybit mainnet
    python examples/pybit_book.py --ws-base ws://127.0.0.1:PORT     # the local simulator
    python examples/pybit_book.py --symbol ETHUSDT:0.01:0.01 --symbol BTCUSDT:0.1:0.001

Ctrl-C stops it. Needs ``pip install "obcore[mmbot]"``.

Threading: pybit calls ``on_update`` and ``on_status`` on its websocket thread, the one
thread that writes the books. In the callback you may read the book (nothing changes it
while you do) and hand numbers to another thread through a queue. Do not block or sleep
there (frames queue up behind you and pybit's pings time out), do not write to the book,
and do not call ``feed.exit()``. Other threads should use the numbers the callback sent:
each obcore call is atomic, but two calls in a row (best bid, then best ask) can straddle
an update.
"""

from __future__ import annotations

import argparse
import queue
import sys

from mmbot.bybit import BookFeed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ws-base", help="ws://127.0.0.1:PORT for the simulator (default: Bybit)")
    ap.add_argument("--testnet", action="store_true")
    ap.add_argument(
        "--symbol",
        action="append",
        metavar="SYMBOL:TICK:LOT",
        help="instrument and its tickSize and qtyStep (default BTCUSDT:0.1:0.001)",
    )
    args = ap.parse_args(argv)
    symbols = [s.split(":") for s in args.symbol or ["BTCUSDT:0.1:0.001"]]
    if any(len(s) != 3 for s in symbols):
        ap.error("--symbol takes SYMBOL:TICK:LOT")

    events: queue.Queue = queue.Queue()  # socket thread -> this thread
    trades = [0]

    def on_update(fb, recv_ns):
        # On pybit's thread, right after fb.book took the frame: read, copy, hand over.
        bid, ask = fb.book.best_bid(), fb.book.best_ask()
        if bid and ask:
            events.put(("touch", fb.symbol, fb.book.price_str(bid[0]), fb.book.price_str(ask[0])))

    def on_status(symbol, synced, reason):
        events.put(("status", symbol, synced, reason))

    def on_trade(message):  # an ordinary pybit callback, untouched by BookFeed
        trades[0] += len(message["data"])
        events.put(("trades", message["data"][0]["s"], len(message["data"])))

    feed = BookFeed(
        "linear",
        testnet=args.testnet,
        ws_base=args.ws_base,
        on_update=on_update,
        on_status=on_status,
    )
    for symbol, tick, lot in symbols:
        feed.add_book(symbol, tick_size=tick, lot_size=lot, depth=50)
    feed.trade_stream(symbols[0][0], on_trade)

    last = {}
    try:
        while True:
            kind, symbol, *rest = events.get()
            if kind == "status":
                synced, reason = rest
                print(f"{symbol} {'synced' if synced else 'OUT OF SYNC'} ({reason})", flush=True)
            elif kind == "trades":
                print(f"{symbol} trades +{rest[0]}", flush=True)
            elif last.get(symbol) != rest:  # print the touch only when it moves
                last[symbol] = rest
                print(f"{symbol} {rest[0]} x {rest[1]}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        feed.exit()
    for symbol, *_ in symbols:
        fb = feed.by_symbol[symbol]
        fb.book.check_integrity()
        print(
            f"final {symbol}: frames={fb.frames} resyncs={fb.resyncs} "
            f"levels={len(fb.book)} trades_seen={trades[0]}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
