"""Bybit's rate windows and the request path, without sockets."""

from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.sim.account import SimAccount, SimSymbol
from mmbot.sim.dispatch import Dispatcher, RateLimiter, op_class

SYM = SimSymbol("BTCUSDT", "linear", "0.1", "0.001", "0.001", "100.000", "0")


@settings(max_examples=150, deadline=None)
@given(
    gaps=st.lists(st.integers(0, 400), min_size=1, max_size=80),
    weights=st.lists(st.integers(1, 4), min_size=80, max_size=80),
    limit=st.integers(1, 12),
)
def test_rolling_window_never_exceeds_the_limit_and_refuses_only_when_full(gaps, weights, limit):
    lim = RateLimiter({"create": limit})
    t, admitted = 0, []
    for gap, w in zip(gaps, weights, strict=False):
        t += gap
        # independent reference: what the last second already holds
        used = sum(n for at, n in admitted if at > t - 1000)
        ok, hdr = lim.admit("create", t, w)
        assert ok == (used + w <= limit)
        if ok:
            admitted.append((t, w))
            used += w
        assert hdr["X-Bapi-Limit"] == str(limit)
        assert hdr["X-Bapi-Limit-Status"] == str(limit - used)
        oldest = min((at for at, _ in admitted if at > t - 1000), default=t)
        assert hdr["X-Bapi-Limit-Reset-Timestamp"] == str(oldest + 1000)
    # every 1-second window of admitted requests holds at most `limit`
    for start, _ in admitted:
        assert sum(n for at, n in admitted if start <= at < start + 1000) <= limit


def test_a_burst_at_a_second_boundary_is_still_one_window():
    # The old simulator counted calendar seconds: 10 at t=999 ms and 10 more at t=1000 ms
    # all passed (20 in 2 ms).
    lim = RateLimiter({"create": 10})
    assert all(lim.admit("create", 999)[0] for _ in range(10))
    assert not lim.admit("create", 1000)[0]
    assert not lim.admit("create", 1998)[0]
    assert lim.admit("create", 1999)[0]


def test_classes_and_batches():
    assert [
        op_class(o)
        for o in (
            "order.create",
            "order.amend",
            "order.cancel",
            "order.cancel-all",
            "order.create-batch",
            "order.amend-batch",
            "order.cancel-batch",
        )
    ] == ["create", "amend", "cancel", "cancel", "create", "amend", "cancel"]
    acct = SimAccount({"BTCUSDT": SYM})
    d = Dispatcher(acct, {"create": 3, "cancel": 3, "amend": 3})
    batch = {
        "category": "linear",
        "request": [
            {
                "symbol": "BTCUSDT",
                "side": "Buy",
                "orderType": "Limit",
                "qty": "0.001",
                "price": f"{100 + i}.0",
                "orderLinkId": f"o{i}",
            }
            for i in range(3)
        ],
    }
    assert d.run("order.create-batch", batch, 0).code == 0
    res = d.run("order.create", dict(batch["request"][0], category="linear", orderLinkId="x"), 1)
    assert (res.code, res.msg, res.headers["X-Bapi-Limit-Status"]) == (
        10006,
        "Too many visits!",
        "0",
    )
    # cancels have their own window
    assert (
        d.run(
            "order.cancel", {"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "o0"}, 2
        ).code
        == 0
    )
    # a batch over the remaining room is refused whole
    big = dict(batch, request=batch["request"][1:] * 2)
    assert d.run("order.cancel-batch", big, 3).code == 10006
