"""Any WebSocket client can feed obcore: aiohttp on asyncio, raw frames into ``obcore.Books``.

No pybit and no JSON library: the text of each frame goes to ``Books.apply``, which finds
the topic, parses the frame in C and updates that symbol's book. The example prints the
touch of each book whenever it changes, resubscribes a topic after a gap, and drops
frames obcore rejects. Run it against the local simulator or Bybit itself::

    python examples/asyncio_raw_feed.py ws://127.0.0.1:PORT BTCUSDT:0.1:0.001
    python examples/asyncio_raw_feed.py wss://stream.bybit.com BTCUSDT:0.1:0.001 ETHUSDT:0.01:0.01

Each symbol is ``SYMBOL:TICK:LOT`` (instruments-info's ``tickSize`` and ``qtyStep``).
Ctrl-C prints each book's state and exits. Needs ``aiohttp`` (``pip install aiohttp``).

Threading: everything runs on the event loop's one thread, which is the only writer of
the books (obcore's rule: one writer per book). Code on the same loop may read the books
between frames without a lock; another thread must get its numbers from this loop (a
queue, ``call_soon_threadsafe``) rather than read a book this loop is writing.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import sys

import aiohttp

import obcore

_req_ids = itertools.count(1)


async def send(ws, op: str, topic: str) -> None:
    await ws.send_json({"op": op, "req_id": f"{op}-{next(_req_ids)}", "args": [topic]})


def touch(book: obcore.Book) -> str:
    bid, ask = book.best_bid(), book.best_ask()
    fmt = book.price_str
    return f"{fmt(bid[0]) if bid else '-'} x {fmt(ask[0]) if ask else '-'}"


async def feed(url: str, books: obcore.Books) -> None:
    """Keep ``books`` current from the public stream at ``url`` until cancelled."""
    resyncing: set[str] = set()
    last: dict[str, str] = {}
    async with aiohttp.ClientSession() as session, session.ws_connect(url, heartbeat=20) as ws:
        for topic in books:
            await send(ws, "subscribe", topic)
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break  # closed or failed: a real bot reconnects here
            text = msg.data
            if '"topic":"orderbook.' not in text[:60]:
                continue  # acks and pongs
            try:
                book, applied = books.apply(text)
            except obcore.SequenceGapError as e:
                # Updates were lost: the book keeps its levels but is not synced. A fresh
                # subscription makes Bybit send a snapshot, which replaces the book.
                topic = obcore.frame_topic(text)
                print(
                    f"gap on {topic} (expected u={e.expected}, got {e.received}); resubscribing",
                    flush=True,
                )
                resyncing.add(topic)
                await send(ws, "unsubscribe", topic)
                await send(ws, "subscribe", topic)
                continue
            except obcore.OutOfSyncError:
                continue  # deltas until the resubscribe's snapshot
            except obcore.ParseError as e:
                # A malformed frame; the book is exactly as before it. If it was a delta,
                # the next one reports the gap and the branch above resubscribes.
                print(f"dropped a bad frame: {type(e).__name__}: {e}", flush=True)
                continue
            topic = book.topic
            if applied is obcore.Applied.SNAPSHOT:
                state = "resynced" if topic in resyncing else "synced"
                resyncing.discard(topic)
                print(f"{state} {topic} at u={book.update_id}", flush=True)
            now = touch(book)
            if now != last.get(topic):
                last[topic] = now
                print(f"{book.symbol} {now}", flush=True)


def parse_symbol(text: str) -> tuple[str, str, str]:
    parts = text.split(":")
    if len(parts) != 3 or not all(parts):
        raise argparse.ArgumentTypeError(f"expected SYMBOL:TICK:LOT, got {text!r}")
    return parts[0], parts[1], parts[2]


async def main_async(args) -> None:
    books = obcore.Books()
    for symbol, tick, lot in args.symbols:
        books.add(f"orderbook.{args.depth}.{symbol}", tick, lot)
    task = asyncio.ensure_future(
        feed(f"{args.ws_base.rstrip('/')}/v5/public/{args.category}", books)
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, task.cancel)
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    for topic, book in books.items():
        book.check_integrity()
        print(
            f"final {topic}: synced={book.synced} u={book.update_id} {touch(book)} "
            f"levels={len(book)}",
            flush=True,
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ws_base", help="ws://127.0.0.1:PORT (simulator) or wss://stream.bybit.com")
    ap.add_argument("symbols", nargs="+", type=parse_symbol, metavar="SYMBOL:TICK:LOT")
    ap.add_argument("--category", default="linear", choices=["linear", "spot"])
    ap.add_argument("--depth", type=int, default=50)
    args = ap.parse_args(argv)
    try:
        asyncio.run(main_async(args))
    except (aiohttp.ClientError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
