"""Trading requests: rate windows, injected rejects and races, batches, one dispatch.

REST (``POST /v5/order/*``) and the trade WebSocket (``/v5/trade``) both land in
:meth:`Dispatcher.run`, so both count against the same per-UID windows and see the same
faults, as on Bybit.

Rate limits are Bybit's: a rolling 1-second window per UID, counted separately for
create, amend and cancel; a batch counts each order in it, and a request that would
push its class over the limit is refused whole with retCode 10006 "Too many visits!".
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from mmbot.sim import protocol as P
from mmbot.sim.account import SimAccount
from mmbot.sim.engine import OrderRejected
from mmbot.sim.protocol import RET_MSG, RetCode

__all__ = ["Dispatcher", "RateLimiter", "TRADE_OPS", "op_class"]

TRADE_OPS = (
    "order.create",
    "order.amend",
    "order.cancel",
    "order.cancel-all",
    "order.create-batch",
    "order.amend-batch",
    "order.cancel-batch",
)
RATE_CLASSES = ("create", "amend", "cancel")
WINDOW_MS = 1000
#: the most orders one batch may carry, per category (Bybit: linear 20, spot 10)
BATCH_CAP = {"linear": 20, "spot": 10}


def op_class(op: str) -> str:
    """Return the rate class of a trading op: ``create``, ``amend`` or ``cancel``."""
    name = op.removeprefix("order.").removesuffix("-batch")
    if name == "cancel-all":
        return "cancel"
    if name not in RATE_CLASSES:
        raise ValueError(f"not a trading op: {op!r}")
    return name


@dataclass
class RateLimiter:
    """Rolling-window request counter, one window per class.

    ``limits`` maps class to requests per rolling second; a class not in it is unlimited.
    A request of weight ``n`` at ``now_ms`` is admitted when, counting it, no more than
    ``limit`` requests fall in ``(now_ms - 1000, now_ms]``; a refused request is not counted.
    """

    limits: dict[str, int]
    _hits: dict[str, deque] = field(default_factory=dict)

    def __post_init__(self):
        for name, limit in self.limits.items():
            if name not in RATE_CLASSES:
                raise ValueError(f"rate class must be one of {RATE_CLASSES}, got {name!r}")
            if not isinstance(limit, int) or limit < 1:
                raise ValueError(f"rate limit for {name} must be an int >= 1, got {limit!r}")

    def admit(self, cls: str, now_ms: int, weight: int = 1) -> tuple[bool, dict]:
        """Count a request; return ``(admitted, X-Bapi-Limit headers)``."""
        limit = self.limits.get(cls)
        if limit is None:
            return True, {}
        hits = self._hits.setdefault(cls, deque())
        while hits and hits[0] <= now_ms - WINDOW_MS:
            hits.popleft()
        ok = len(hits) + weight <= limit
        if ok:
            hits.extend([now_ms] * weight)
        # The window frees its oldest slot when that request turns one second old.
        reset = (hits[0] if hits else now_ms) + WINDOW_MS
        return ok, P.limit_header(limit, limit - len(hits), reset)


@dataclass
class Result:
    """The outcome of one trading request (``pushes`` are ``(topic, item)``)."""

    code: int
    msg: str
    data: dict
    ext: dict
    pushes: list
    headers: dict


class Dispatcher:
    """Runs trading requests against a :class:`SimAccount`; all state of the request path.

    Parameters
    ----------
    account : SimAccount
    rate_limits : dict of str to int, optional
        Requests per rolling second for ``create``, ``amend``, ``cancel``; None disables.
    """

    def __init__(self, account: SimAccount, rate_limits: dict[str, int] | None = None):
        self.account = account
        self.limiter = RateLimiter(dict(rate_limits or {}))
        #: queued ``(retCode, retMsg)`` answers for the next requests (a fault)
        self.reject_queue: list[tuple[int, str]] = []
        #: amends and cancels still to race: their order fills just before they arrive
        self.race_next = 0

    def run(self, op: str, args, now_ms: int) -> Result:
        """Run one trading op; never raises for a bad request (it becomes a retCode)."""
        if op not in TRADE_OPS:
            return Result(RetCode.BAD_OP, f"Invalid op: {op}", {}, {}, [], {})
        if not isinstance(args, dict):
            return Result(
                RetCode.PARAMS_ERROR, "params error: args must be a JSON object", {}, {}, [], {}
            )
        weight = 1
        if op.endswith("-batch"):
            requests = args.get("request")
            if not isinstance(requests, list) or not requests:
                return Result(
                    RetCode.PARAMS_ERROR,
                    "params error: request must be a non-empty list",
                    {},
                    {},
                    [],
                    {},
                )
            weight = len(requests)
        ok, headers = self.limiter.admit(op_class(op), now_ms, weight)
        if not ok:
            return Result(RetCode.RATE_LIMIT, RET_MSG[RetCode.RATE_LIMIT], {}, {}, [], headers)
        if self.reject_queue:
            code, msg = self.reject_queue.pop(0)
            return Result(code, msg, {}, {}, [], headers)
        if op.endswith("-batch"):
            return self._batch(op, args, now_ms, headers)
        try:
            data, pushes = self._single(op, args, now_ms)
        except OrderRejected as exc:
            return Result(exc.code, exc.message, {}, {}, [], headers)
        return Result(RetCode.OK, "OK", data, {}, pushes, headers)

    def _single(self, op: str, args: dict, now_ms: int) -> tuple[dict, list]:
        acct = self.account
        pushes: list = []
        if op in ("order.amend", "order.cancel") and self.race_next > 0:
            pushes = self._race(args, now_ms)
        if op == "order.create":
            data, more = acct.create(args, now_ms)
        elif op == "order.amend":
            data, more = acct.amend(args, now_ms)
        elif op == "order.cancel":
            data, more = acct.cancel(args, now_ms)
        else:
            data, more = acct.cancel_all(args, now_ms)
        return data, pushes + more

    def _race(self, args: dict, now_ms: int) -> list:
        # The market fills the order first, so the request finds it closed: 110001.
        try:
            eng = self.account.engine_for(args)
            order = eng.get_order(
                order_link_id=str(args.get("orderLinkId") or ""),
                order_id=str(args.get("orderId") or ""),
            )
        except OrderRejected:
            return []
        if order.status.is_done:
            return []
        self.race_next -= 1
        return self.account.fill_order(eng.symbol, order.order_id, now_ms)

    def _batch(self, op: str, args: dict, now_ms: int, headers: dict) -> Result:
        category = args.get("category")
        if category not in BATCH_CAP:
            return Result(
                RetCode.PARAMS_ERROR,
                f"params error: category {category!r} invalid",
                {},
                {},
                [],
                headers,
            )
        requests = args["request"]
        if len(requests) > BATCH_CAP[category]:
            return Result(
                RetCode.PARAMS_ERROR,
                f"params error: at most {BATCH_CAP[category]} orders in one batch",
                {},
                {},
                [],
                headers,
            )
        single = op.removesuffix("-batch")
        results, infos, pushes = [], [], []
        for item in requests:
            if not isinstance(item, dict):
                item = {}
            item = dict(item, category=category)
            try:
                data, more = self._single(single, item, now_ms)
                code, msg = RetCode.OK, "OK"
            except OrderRejected as exc:
                data, more, code, msg = {}, [], exc.code, exc.message
            pushes += more
            results.append(
                {
                    "category": category,
                    "symbol": item.get("symbol", ""),
                    "orderId": data.get("orderId", ""),
                    "orderLinkId": data.get("orderLinkId", str(item.get("orderLinkId") or "")),
                    "createAt": str(now_ms),
                }
            )
            infos.append({"code": code, "msg": msg})
        return Result(RetCode.OK, "OK", {"list": results}, {"list": infos}, pushes, headers)
