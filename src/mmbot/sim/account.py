"""The simulated account: Bybit request dicts in, matching-engine calls, Bybit shapes out.

One :class:`~mmbot.sim.engine.MatchingEngine` per symbol does the matching and keeps the
money (a :class:`mmbot.pnl.PnLTracker`); this module adds what only the exchange sees:
request validation with Bybit's retCodes, cancel and create types, order history, the
execution log that ``/v5/execution/list`` serves, the wallet (USDT plus spot base coins),
and the worst-case exposure monitor that end-to-end tests read.

Nothing here does I/O or reads a clock: every method takes ``now_ms``, so the exchange
logic is tested without sockets (tests/mmbot/sim/test_account.py).

Every mutating method returns a list of private pushes ``(topic, item)`` in the order
Bybit sends them, and raises :class:`~mmbot.sim.engine.OrderRejected` (with Bybit's
retCode) for a request Bybit refuses as a whole; nothing changes then.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from mmbot.instrument import Instrument
from mmbot.pnl import PnLTracker
from mmbot.sim import protocol as P
from mmbot.sim.engine import MatchingEngine, OrderRejected
from mmbot.sim.protocol import RetCode, Scale
from mmbot.types import ExecutionEvent, OrderEvent, OrderStatus, PositionEvent

__all__ = ["SimAccount", "SimSymbol", "split_symbol"]

CATEGORIES = ("linear", "spot")
TIME_IN_FORCE = ("GTC", "PostOnly", "IOC", "FOK")
#: Bybit's createType of the orders the exchange places itself
CREATE_TYPE = {
    "Trade": "CreateByUser",
    "AdlTrade": "CreateByAdl_PassThrough",
    "BustTrade": "CreateByLiq",
    "Funding": "",
}


@dataclass(frozen=True)
class SimSymbol:
    """One tradable instrument of the simulator (Bybit ``instruments-info`` fields)."""

    symbol: str = "BTCUSDT"
    category: str = "linear"
    tick_size: str = "0.1"
    lot_size: str = "0.001"
    min_qty: str = "0.001"
    max_qty: str = "1190.000"
    min_notional: str = "5"

    def __post_init__(self):
        if self.category not in CATEGORIES:
            raise ValueError(f"category must be 'linear' or 'spot', got {self.category!r}")
        if not self.symbol.isalnum() or not self.symbol.isupper():
            raise ValueError(f"symbol must be upper-case letters and digits, got {self.symbol!r}")
        split_symbol(self.symbol)
        Scale(self.tick_size)  # each raises naming the bad value
        lots = Scale(self.lot_size)
        if lots.to_units(self.min_qty, "min_qty") < 1:
            raise ValueError(
                f"min_qty must be at least one lot {self.lot_size}, got {self.min_qty!r}"
            )
        _non_negative(self.max_qty, "max_qty")
        if self.max_lots < lots.to_units(self.min_qty):
            raise ValueError(f"max_qty {self.max_qty} is below min_qty {self.min_qty}")
        _non_negative(self.min_notional, "min_notional")

    @property
    def max_lots(self) -> int:
        """The largest order in whole lots. Bybit's maximum can sit off the lot grid (spot
        BTCUSDT: 71.73956243 on a 0.000001 step), and an order is whole lots."""
        return int(Decimal(self.max_qty) // Decimal(self.lot_size))

    @property
    def coins(self) -> tuple[str, str]:
        """Return ``(base coin, quote coin)``."""
        return split_symbol(self.symbol)


def _non_negative(text: str, what: str) -> None:
    try:
        value = Decimal(text)
    except ArithmeticError as exc:
        raise ValueError(f"{what} is not a decimal string: {text!r}") from exc
    if not value.is_finite() or value < 0:
        raise ValueError(f"{what} must be a non-negative decimal, got {text!r}")


def split_symbol(symbol: str) -> tuple[str, str]:
    """Return ``(base, quote)`` of a Bybit symbol quoted in USDT, USDC or BTC."""
    for quote in ("USDT", "USDC", "BTC"):
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    raise ValueError(f"symbol {symbol!r} is not quoted in USDT, USDC or BTC")


def _str_arg(args: dict, key: str, *, required: bool = False) -> str:
    value = args.get(key)
    if value is None or value == "":
        if required:
            raise OrderRejected(RetCode.PARAMS_ERROR, f"params error: {key} is required")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise OrderRejected(
            RetCode.PARAMS_ERROR, f"params error: {key} must be a string, got {value!r}"
        )
    return str(value)


class SimAccount:
    """Orders, positions and the wallet of the one simulated account (UID).

    Parameters
    ----------
    symbols : dict of str to SimSymbol
    maker_fee, taker_fee : str
        Fee rates as decimal strings (``/v5/account/fee-rate`` serves them).
    balance : str
        Starting USDT wallet balance.
    base_balances : dict of str to str, optional
        Starting balances of spot base coins (default 0).
    """

    def __init__(
        self,
        symbols: dict[str, SimSymbol],
        maker_fee: str = "0.0002",
        taker_fee: str = "0.00055",
        balance: str = "100000",
        base_balances: dict[str, str] | None = None,
        queue_model: str = "prob_power",
        queue_power: float = 3.0,
    ):
        self.symbols = symbols
        self.maker_fee = Decimal(maker_fee)
        self.taker_fee = Decimal(taker_fee)
        self.start_balance = Decimal(balance)
        self.start_base = {c: Decimal(v) for c, v in (base_balances or {}).items()}
        self.price = {s: Scale(v.tick_size, strip=v.category == "spot") for s, v in symbols.items()}
        self.qty = {s: Scale(v.lot_size) for s, v in symbols.items()}
        prefix = uuid.uuid4().hex[:8]
        self.engines: dict[str, MatchingEngine] = {}
        self._shadow: dict[str, PnLTracker] = {}
        for s, v in symbols.items():
            qs = self.qty[s]
            eng = MatchingEngine(
                symbol=s,
                tick_size=v.tick_size,
                lot_size=v.lot_size,
                category=v.category,
                maker_fee_rate=maker_fee,
                taker_fee_rate=taker_fee,
                min_qty_lots=max(qs.to_units(v.min_qty), 1),
                max_qty_lots=v.max_lots,
                min_notional=v.min_notional,
                order_id_prefix=f"{prefix}-{s}",
                queue_model=queue_model,
                queue_power=queue_power,
                log_mids=False,  # nothing here reads it, and a simulator runs for hours
            )
            self.engines[s] = eng
            # Replays the same fills to learn each execution's own realized PnL (execPnl).
            self._shadow[s] = PnLTracker(eng.account.instrument, maker_fee, taker_fee)
        #: every execution item, oldest first (``/v5/execution/list``)
        self.executions: list[dict] = []
        self._cancel_type: dict[str, str] = {}
        self._closed_pnl: dict[str, Decimal] = {}
        self._cur_base = {s: Decimal(0) for s in symbols}
        self._opened_ms = {s: 0 for s in symbols}
        self._exposure = {s: [0, 0] for s in symbols}
        self.leverage = {s: "10" for s in symbols}

    # ------------------------------------------------------------------ lookups
    def engine_for(self, args: dict, *, category_required: bool = True) -> MatchingEngine:
        """Return the engine of ``args["symbol"]``; check ``category`` like Bybit."""
        category = args.get("category")
        if category in (None, ""):
            if category_required:
                raise OrderRejected(RetCode.PARAMS_ERROR, "params error: category is required")
        elif category not in CATEGORIES:
            raise OrderRejected(
                RetCode.PARAMS_ERROR,
                f"params error: category {category!r} is not traded here (linear, spot)",
            )
        symbol = args.get("symbol")
        sym = self.symbols.get(symbol) if isinstance(symbol, str) else None
        if sym is None:
            raise OrderRejected(RetCode.PARAMS_ERROR, f"params error: symbol {symbol!r} invalid")
        if category and sym.category != category:
            raise OrderRejected(
                RetCode.PARAMS_ERROR, f"params error: {symbol} is not in category {category}"
            )
        return self.engines[sym.symbol]

    def _ids(self, args: dict) -> tuple[str, str]:
        oid, link = _str_arg(args, "orderId"), _str_arg(args, "orderLinkId")
        if not oid and not link:
            raise OrderRejected(
                RetCode.PARAMS_ERROR, "params error: orderId or orderLinkId is required"
            )
        return oid, link

    # ------------------------------------------------------------------ requests
    def create(self, args: dict, now_ms: int) -> tuple[dict, list]:
        """``order.create``: return ``({orderId, orderLinkId}, pushes)``."""
        eng = self.engine_for(args)
        s = eng.symbol
        side = _str_arg(args, "side", required=True)
        otype = _str_arg(args, "orderType", required=True)
        if otype not in ("Limit", "Market"):
            raise OrderRejected(
                RetCode.PARAMS_ERROR,
                f"params error: orderType must be Limit or Market, got {otype!r}",
            )
        tif = _str_arg(args, "timeInForce") or "GTC"
        if tif not in TIME_IN_FORCE:
            raise OrderRejected(RetCode.PARAMS_ERROR, f"params error: timeInForce {tif!r} invalid")
        unit = _str_arg(args, "marketUnit")
        if unit not in ("", "baseCoin", "quoteCoin"):
            raise OrderRejected(
                RetCode.PARAMS_ERROR,
                f"params error: marketUnit {unit!r} invalid (baseCoin, quoteCoin)",
            )
        # Bybit: a spot market Buy's qty is quote coin unless marketUnit says baseCoin.
        in_quote = (
            self.symbols[s].category == "spot"
            and otype == "Market"
            and (unit == "quoteCoin" or (unit == "" and side == "Buy"))
        )
        try:
            if in_quote:
                qty = self._lots_for_quote(eng, side, _str_arg(args, "qty", required=True))
            else:
                qty = self.qty[s].to_units(_str_arg(args, "qty", required=True), "qty")
            price = (
                self.price[s].to_units(_str_arg(args, "price", required=True), "price")
                if otype == "Limit"
                else 0
            )
        except ValueError as exc:
            raise OrderRejected(RetCode.PARAMS_ERROR, f"params error: {exc}") from exc
        reduce_only = args.get("reduceOnly", False)
        if not isinstance(reduce_only, bool):
            raise OrderRejected(
                RetCode.PARAMS_ERROR,
                f"params error: reduceOnly must be a boolean, got {reduce_only!r}",
            )
        link = _str_arg(args, "orderLinkId")
        if self.symbols[s].category == "spot" and side == "Sell":
            self._check_spot_sell(eng, qty)
        events = eng.place(
            order_link_id=link,
            side=side,
            price_ticks=price,
            qty_lots=qty,
            now_ms=now_ms,
            reduce_only=reduce_only,
            order_type=otype,
            time_in_force=tif if otype == "Limit" else None,
            post_only=False,
        )
        first = next(ev for ev in events if isinstance(ev, OrderEvent))
        return (
            {"orderId": first.order.order_id, "orderLinkId": link},
            self._convert(eng, events, now_ms),
        )

    def _lots_for_quote(self, eng: MatchingEngine, side: str, text: str) -> int:
        """Return the lots a market order spending ``text`` quote coin takes from the book
        (whole lots only; the market book is not changed by taker fills)."""
        try:
            amount = Decimal(text)
        except ArithmeticError as exc:
            raise ValueError(f"qty is not a decimal string: {text!r}") from exc
        if not amount.is_finite() or amount <= 0:
            raise ValueError(f"qty must be a positive quote amount, got {text!r}")
        ps, qs = self.price[eng.symbol], self.qty[eng.symbol]
        levels = eng.book.asks(eng.take_depth) if side == "Buy" else eng.book.bids(eng.take_depth)
        lots = 0
        for ticks, size in levels.tolist():
            lot_cost = ps.to_decimal(ticks) * qs.to_decimal(1)
            take = min(size, int(amount // lot_cost))
            lots += take
            amount -= lot_cost * take
            if take < size:
                break
        if lots == 0:
            raise OrderRejected(170140, "Order value exceeded lower limit.")
        return lots

    def _check_spot_sell(self, eng: MatchingEngine, qty: int) -> None:
        base = self.symbols[eng.symbol].coins[0]
        have = self.start_base.get(base, Decimal(0)) + self.qty[eng.symbol].to_decimal(
            eng.position_lots
        )
        selling = sum(o.leaves_lots for o in eng.open_orders() if o.side == "Sell")
        if self.qty[eng.symbol].to_decimal(selling + qty) > have:
            raise OrderRejected(170131, "Insufficient balance.")

    def amend(self, args: dict, now_ms: int) -> tuple[dict, list]:
        """``order.amend``: return ``({orderId, orderLinkId}, pushes)``."""
        eng = self.engine_for(args)
        s = eng.symbol
        oid, link = self._ids(args)
        try:
            price = _str_arg(args, "price")
            qty = _str_arg(args, "qty")
            price_t = self.price[s].to_units(price, "price") if price else None
            qty_l = self.qty[s].to_units(qty, "qty") if qty else None
        except ValueError as exc:
            raise OrderRejected(RetCode.PARAMS_ERROR, f"params error: {exc}") from exc
        events = eng.amend(
            now_ms=now_ms, order_link_id=link, order_id=oid, price_ticks=price_t, qty_lots=qty_l
        )
        order = eng.get_order(order_link_id=link, order_id=oid)
        return (
            {"orderId": order.order_id, "orderLinkId": order.order_link_id},
            self._convert(eng, events, now_ms),
        )

    def cancel(self, args: dict, now_ms: int) -> tuple[dict, list]:
        """``order.cancel``: return ``({orderId, orderLinkId}, pushes)``."""
        eng = self.engine_for(args)
        oid, link = self._ids(args)
        order = eng.get_order(order_link_id=link, order_id=oid) if (link or oid) else None
        events = eng.cancel(now_ms=now_ms, order_link_id=link, order_id=oid)
        assert order is not None, "cancel() rejects a request that names no order"
        self._cancel_type[order.order_id] = "CancelByUser"
        return (
            {"orderId": order.order_id, "orderLinkId": order.order_link_id},
            self._convert(eng, events, now_ms),
        )

    def cancel_all(
        self, args: dict, now_ms: int, cancel_type: str = "CancelByUser"
    ) -> tuple[dict, list]:
        """``order.cancel-all`` (``symbol`` optional): return ``({list, success}, pushes)``."""
        category = args.get("category")
        if category not in CATEGORIES:
            raise OrderRejected(
                RetCode.PARAMS_ERROR, f"params error: category {category!r} invalid (linear, spot)"
            )
        symbol = args.get("symbol") or None
        if symbol is not None:
            self.engine_for(args)
        out, pushes = [], []
        for s, eng in self.engines.items():
            if symbol not in (None, s) or self.symbols[s].category != category:
                continue
            for order in eng.open_orders():
                self._cancel_type[order.order_id] = cancel_type
            events = eng.cancel_all(now_ms=now_ms)
            out += [
                {"orderId": e.order.order_id, "orderLinkId": e.order.order_link_id}
                for e in events
                if isinstance(e, OrderEvent)
            ]
            pushes += self._convert(eng, events, now_ms)
        return {"list": out, "success": "1"}, pushes

    def set_leverage(self, args: dict) -> None:
        """``/v5/position/set-leverage``: remember it (the simulator has no margin)."""
        eng = self.engine_for(args)
        buy, sell = (
            _str_arg(args, "buyLeverage", required=True),
            _str_arg(args, "sellLeverage", required=True),
        )
        if buy != sell:
            raise OrderRejected(
                RetCode.PARAMS_ERROR, "params error: buyLeverage must equal sellLeverage (one-way)"
            )
        try:
            value = Decimal(buy)
        except ArithmeticError as exc:
            raise OrderRejected(RetCode.PARAMS_ERROR, f"params error: leverage {buy!r}") from exc
        if not value.is_finite() or not Decimal(1) <= value <= Decimal(100):
            raise OrderRejected(RetCode.PARAMS_ERROR, f"params error: leverage {buy} not 1..100")
        if self.leverage[eng.symbol] == buy:
            raise OrderRejected(110043, "Set leverage not modified")
        self.leverage[eng.symbol] = buy

    # ------------------------------------------------------------------ market and injections
    def on_frame(self, symbol: str, frame: str, now_ms: int) -> list:
        """Feed one public frame to the symbol's engine; return the pushes of its fills."""
        eng = self.engines[symbol]
        events = eng.on_frame(frame, now_ms)
        # Market data changes orders and the position only through fills, which are
        # events: without any there is nothing to push (and nothing new to track), and
        # this runs on every frame of every symbol.
        return self._convert(eng, events, now_ms) if events else []

    def on_trade(
        self, symbol: str, taker_side: str, price_ticks: int, qty_lots: int, now_ms: int
    ) -> list:
        """Feed one public trade to the symbol's engine; return the pushes of its fills."""
        eng = self.engines[symbol]
        events = eng.on_trade(taker_side, price_ticks, qty_lots, now_ms)
        return self._convert(eng, events, now_ms) if events else []  # as on_frame

    def taker_hit(self, symbol: str, side: str, lots: int | None, now_ms: int) -> list:
        """Trade through the own best ``side`` order by one tick: it fills completely."""
        eng = self.engines[symbol]
        own = [o for o in eng.open_orders() if o.side == side]
        if not own:
            return []
        if side == "Buy":
            price, taker = max(o.price_ticks for o in own) - 1, "Sell"
        else:
            price, taker = min(o.price_ticks for o in own) + 1, "Buy"
        return self.on_trade(symbol, taker, price, lots or 1, now_ms)

    def fill_order(self, symbol: str, order_id: str, now_ms: int) -> list:
        """Fill one open order completely, as a trade through its price (a race maker)."""
        eng = self.engines[symbol]
        order = eng.get_order(order_id=order_id)
        step = -1 if order.side == "Buy" else 1
        taker = "Sell" if order.side == "Buy" else "Buy"
        return self.on_trade(symbol, taker, order.price_ticks + step, 1, now_ms)

    def force_close(
        self, symbol: str, qty_lots: int, price_ticks: int, exec_type: str, now_ms: int
    ) -> list:
        """Close part of the position with the exchange's own order (ADL or liquidation)."""
        eng = self.engines[symbol]
        return self._convert(
            eng,
            eng.force_close(
                qty_lots=qty_lots, price_ticks=price_ticks, exec_type=exec_type, now_ms=now_ms
            ),
            now_ms,
        )

    def funding(self, symbol: str, rate: Decimal | str, now_ms: int) -> list:
        """Settle one funding interval on the symbol's position (a linear symbol only)."""
        if self.symbols[symbol].category != "linear":
            raise ValueError(f"funding applies to linear symbols, {symbol} is spot")
        eng = self.engines[symbol]
        return self._convert(eng, eng.apply_funding(rate=rate, now_ms=now_ms), now_ms)

    # ------------------------------------------------------------------ conversion
    def _convert(self, eng: MatchingEngine, events: list, now_ms: int) -> list:
        s = eng.symbol
        execs = [e for e in events if isinstance(e, ExecutionEvent)]
        pos_seq = eng.position().seq
        first_seq = pos_seq - len(execs) + 1
        # The engine reports each order's money as of now; a push must show it as of its
        # own moment, so take back this batch's later fills from the earlier pushes.
        running: dict[str, list] = {}
        for ev in execs:
            x = ev.execution
            if x.order_id not in running and x.exec_type == "Trade":
                _, value, fee = eng.order_extras(x.order_id)
                running[x.order_id] = [value, fee]
        for ev in execs:
            x = ev.execution
            if x.order_id in running:
                running[x.order_id][0] -= x.price_ticks * x.qty_lots
                running[x.order_id][1] -= x.fee
        out: list = []
        n = 0
        for ev in events:
            if isinstance(ev, OrderEvent):
                money = running.get(ev.order.order_id)
                out.append(("order", self.order_item(eng, ev.order, *(money or ()))))
            elif isinstance(ev, ExecutionEvent):
                x = ev.execution
                if x.order_id in running:
                    running[x.order_id][0] += x.price_ticks * x.qty_lots
                    running[x.order_id][1] += x.fee
                out.append(("execution", self._execution(eng, x, first_seq + n)))
                n += 1
            elif isinstance(ev, PositionEvent):
                if self.symbols[s].category == "linear":
                    out.append(("position", self.position_item(s, stream=True)))
        if execs:
            out.append(("wallet", self.wallet_item()))
        self._track(s)
        return out

    def _execution(self, eng: MatchingEngine, x, seq: int) -> dict:
        s = eng.symbol
        shadow = self._shadow[s]
        if x.exec_type == "Funding":
            pnl, closed = -x.fee, 0
            order_type, order_price, order_qty = "UNKNOWN", 0, 0
        else:
            before, pos_before = shadow.realized, shadow.position_lots
            if pos_before == 0:
                self._cur_base[s] = self._realized_net(s)
                self._opened_ms[s] = x.exec_ms
            shadow.on_fill(x.side, x.price_ticks, x.qty_lots, fee=x.fee, fill_id=x.exec_id)
            pnl = shadow.realized - before - x.fee
            closed = (
                min(abs(pos_before), x.qty_lots)
                if (pos_before > 0) != (x.side == "Buy") and pos_before
                else 0
            )
            if x.order_link_id or x.exec_type == "Trade":
                o = eng.get_order(order_id=x.order_id)
                order_type, order_price, order_qty = o.order_type, o.price_ticks, o.qty_lots
            else:
                order_type, order_price, order_qty = "Market", 0, x.qty_lots
        self._closed_pnl[x.order_id] = self._closed_pnl.get(x.order_id, Decimal(0)) + pnl
        mark = eng.mark_ticks()
        item = P.execution_item(
            category=self.symbols[s].category,
            symbol=s,
            exec_id=x.exec_id,
            order_id=x.order_id,
            link_id=x.order_link_id,
            side=x.side,
            order_type=order_type,
            order_price_ticks=order_price,
            order_qty_lots=order_qty,
            leaves_lots=x.leaves_lots or 0,
            exec_type=x.exec_type,
            price_ticks=x.price_ticks,
            qty_lots=x.qty_lots,
            fee=x.fee,
            fee_rate=x.fee_rate,
            is_maker=x.is_maker,
            exec_ms=x.exec_ms,
            exec_pnl=pnl,
            closed_lots=closed,
            mark="" if mark is None else self.price[s].to_str(mark),
            seq=seq,
            price=self.price[s],
            qty=self.qty[s],
            fee_coin=self.symbols[s].coins[1],
            create_type=CREATE_TYPE[x.exec_type],
        )
        self.executions.append(item)
        return item

    def _realized_net(self, symbol: str) -> Decimal:
        eng = self.engines[symbol]
        return eng.realized_pnl - eng.fees_paid - eng.funding_paid

    # ------------------------------------------------------------------ shapes
    def order_item(
        self, eng: MatchingEngine, order, value_units: int | None = None, fee: Decimal | None = None
    ) -> dict:
        """Return ``order`` (a :class:`mmbot.types.Order`) in Bybit's shape; its filled
        value (ticks x lots) and fees are the engine's current ones unless given (both)."""
        s = eng.symbol
        tif, now_value, now_fee = eng.order_extras(order.order_id)
        if value_units is None or fee is None:
            value_units, fee = now_value, now_fee
        status = order.status.value
        if status == "Cancelled" and order.filled_lots and self.symbols[s].category == "spot":
            status = "PartiallyFilledCanceled"  # Bybit's spot name for this end
        cancel_type = "UNKNOWN"
        if order.status is OrderStatus.CANCELLED:
            cancel_type = self._cancel_type.get(order.order_id, "UNKNOWN")
        return P.order_item(
            category=self.symbols[s].category,
            symbol=s,
            order_id=order.order_id,
            link_id=order.order_link_id,
            side=order.side,
            order_type=order.order_type,
            price_ticks=order.price_ticks,
            qty_lots=order.qty_lots,
            filled_lots=order.filled_lots,
            leaves_lots=0 if order.status.is_done else order.leaves_lots,
            status=status,
            tif=tif,
            reject_reason=order.reject_reason,
            cancel_type=cancel_type,
            create_type="CreateByUser",
            cum_value=Decimal(value_units) * eng._unit_value,
            cum_fee=fee,
            closed_pnl=self._closed_pnl.get(order.order_id, Decimal(0)),
            reduce_only=order.reduce_only,
            created_ms=order.created_ms,
            updated_ms=order.updated_ms,
            price=self.price[s],
            qty=self.qty[s],
            fee_coin=self.symbols[s].coins[1],
            market_unit="baseCoin"
            if self.symbols[s].category == "spot" and order.order_type == "Market"
            else "",
        )

    def position_item(self, symbol: str, *, stream: bool = False) -> dict:
        """Return the symbol's position in Bybit's REST (or stream) shape."""
        eng = self.engines[symbol]
        acct = eng.account
        pos = eng.position()
        mark = eng.mark_ticks()
        ps = self.price[symbol]
        unrealised = acct.unrealized(mark) if mark is not None else Decimal(0)
        value = (
            ps.to_decimal(mark) * self.qty[symbol].to_decimal(abs(pos.size_lots))
            if mark is not None
            else abs(acct.cost_basis)
        )
        cum = self._realized_net(symbol)
        return P.position_item(
            category="linear",
            symbol=symbol,
            size_lots=pos.size_lots,
            avg_entry=acct.avg_entry_price(),
            position_value=value,
            mark="" if mark is None else ps.to_str(mark),
            unrealised=unrealised,
            cur_realised=cum - self._cur_base[symbol] if pos.size_lots else Decimal(0),
            cum_realised=cum,
            leverage=self.leverage[symbol],
            created_ms=self._opened_ms[symbol],
            updated_ms=pos.updated_ms,
            seq=pos.seq,
            price=ps,
            qty=self.qty[symbol],
            stream=stream,
        )

    def coin_balances(self) -> dict[str, Decimal]:
        """Return every coin's wallet balance (USDT and spot base coins), exact."""
        usdt = self.start_balance
        out = dict(self.start_base)
        for s, eng in self.engines.items():
            if self.symbols[s].category == "spot":
                base, _ = self.symbols[s].coins
                usdt += eng.account.cash
                out[base] = out.get(base, Decimal(0)) + self.qty[s].to_decimal(eng.position_lots)
            else:
                usdt += self._realized_net(s)
        out["USDT"] = usdt
        return out

    def wallet_item(self) -> dict:
        """Return the UNIFIED wallet in Bybit's shape."""
        unrealised = Decimal(0)
        cum = Decimal(0)
        for s, eng in self.engines.items():
            if self.symbols[s].category == "linear":
                mark = eng.mark_ticks()
                unrealised += eng.account.unrealized(mark) if mark is not None else Decimal(0)
                cum += self._realized_net(s)
        balances = self.coin_balances()
        coins = [P.coin_item("USDT", balances["USDT"], unrealised, cum)]
        coins += [
            P.coin_item(c, v, Decimal(0), Decimal(0))
            for c, v in sorted(balances.items())
            if c != "USDT"
        ]
        return P.wallet_item(coins, balances["USDT"], unrealised)

    def open_order_items(
        self, symbol: str | None = None, category: str | None = None
    ) -> list[dict]:
        """Return the open orders in Bybit's shape, newest first (as Bybit lists them)."""
        out = []
        for s, eng in self.engines.items():
            if symbol in (None, s) and category in (None, self.symbols[s].category):
                out += [self.order_item(eng, o) for o in eng.open_orders()]
        out.sort(key=lambda d: int(d["createdTime"]), reverse=True)
        return out

    def closed_order_items(
        self, symbol: str | None = None, category: str | None = None
    ) -> list[dict]:
        """Return every closed order's final state, newest first (``/v5/order/history``)."""
        out = []
        for s, eng in self.engines.items():
            if symbol in (None, s) and category in (None, self.symbols[s].category):
                out += [self.order_item(eng, o) for o in eng.all_orders() if o.status.is_done]
        out.sort(key=lambda d: (int(d["updatedTime"]), int(d["createdTime"])), reverse=True)
        return out

    # ------------------------------------------------------------------ monitor
    def _track(self, symbol: str) -> None:
        eng = self.engines[symbol]
        pos = eng.position_lots
        buys = sells = 0
        for o in eng.open_orders():
            if o.side == "Buy":
                buys += o.leaves_lots
            else:
                sells += o.leaves_lots
        worst = self._exposure[symbol]
        worst[0] = max(worst[0], pos + buys)
        worst[1] = max(worst[1], sells - pos)

    def max_exposure(self, symbol: str) -> tuple[int, int]:
        """Return ``(max long lots, max short lots)``: the largest ``position + open buy
        leaves`` and ``open sell leaves - position`` after any account change so far."""
        long_lots, short_lots = self._exposure[symbol]
        return long_lots, short_lots

    def summary(self, symbol: str) -> dict:
        """Return the exact final numbers of one symbol (see :meth:`SimulatorHandle.summary`)."""
        eng = self.engines[symbol]
        long_, short = self._exposure[symbol]
        return {
            "position_lots": eng.position_lots,
            "realized": eng.realized_pnl,
            "fees": eng.fees_paid,
            "funding": eng.funding_paid,
            "max_long_lots": long_,
            "max_short_lots": short,
            "mark_ticks": eng.mark_ticks(),
        }

    def instrument(self, symbol: str) -> Instrument:
        """Return the symbol's instrument (exact tick and lot conversions)."""
        return self.engines[symbol].account.instrument
