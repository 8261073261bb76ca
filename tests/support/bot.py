"""The ``mmbot run`` subprocess tests' shared parts: its command line, and what they read
back from its SQLite records and the simulator while it runs."""

import sqlite3
import sys
from decimal import Decimal


def mmbot_run(sim_url: str | None, *args: str) -> list[str]:
    """Return the argv of ``mmbot run --sim-url SIM_URL ARGS...`` in this interpreter
    (``sim_url`` None: the run starts its own embedded simulator)."""
    url = [] if sim_url is None else ["--sim-url", sim_url]
    return [sys.executable, "-m", "mmbot", "run", *url, *args]


def reload_rows(db) -> list[tuple]:
    """Return ``(accepted, changed, message)`` of each recorded config reload, oldest first
    ([] while the bot has not created its records yet)."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(
                "SELECT accepted, changed, message FROM config_reloads ORDER BY id"
            ).fetchall()
        finally:
            con.close()
    except sqlite3.OperationalError:  # not created yet
        return []


def quoted_spread(sim, symbol: str) -> Decimal | None:
    """Return the best ask minus the best bid of our open orders at the simulator."""
    orders = sim.open_orders(symbol)
    bids = [Decimal(o["price"]) for o in orders if o["side"] == "Buy"]
    asks = [Decimal(o["price"]) for o in orders if o["side"] == "Sell"]
    return min(asks) - max(bids) if bids and asks else None
