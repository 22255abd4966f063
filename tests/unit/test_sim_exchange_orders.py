"""The Alpaca order state machine over SimBroker: statuses, events, brackets, the account."""

from __future__ import annotations

from typing import Any

import pytest

from gnosis.core.config import ExecutionConfig
from gnosis.model.types import NANOS_PER_MINUTE, Bar
from gnosis.simexchange.orders import OrderBook, parse_order_request
from gnosis.simexchange.wire import WireError
from gnosis.trading.sim_broker import SimBroker
from tests.conftest import T0

M = NANOS_PER_MINUTE
NOW = T0 + 10 * 10**9  # ten seconds into the first minute
NEXT = T0 + M


def book(cash: float = 1_000_000.0) -> OrderBook:
    ids = iter(range(1, 10_000))
    return OrderBook(SimBroker(ExecutionConfig(slippage_bps=0.0, impact_coefficient=0.0)), cash,
                     new_id=lambda: f"00000000-0000-4000-8000-{next(ids):012d}")


def request(**fields: Any) -> Any:
    body = {"symbol": "SPY", "side": "buy", "type": "market", "time_in_force": "day", "qty": 10}
    body.update(fields)
    return parse_order_request(body)


def bar(minute: int, o: float, h: float, lo: float, c: float, v: float = 1_000_000.0) -> Bar:
    return Bar("SPY", T0 + minute * M, o, h, lo, c, v)


def events(b: OrderBook) -> list[tuple[str, str]]:
    taken = [(e["event"], e["order"]["client_order_id"]) for e in b.events]
    b.events.clear()
    return taken


def test_market_order_fills_at_the_next_bar_open() -> None:
    b = book()
    b.mark("SPY", 470.0)
    order = b.submit(request(client_order_id="a"), NOW, NEXT, None)
    assert order.status == "new" and events(b) == [("new", "a")]
    b.on_bar(bar(0, 470, 471, 469, 470.5), NOW)  # the minute it was sent in: not yet working
    assert order.filled_qty == 0
    b.on_bar(bar(1, 472, 473, 471, 472.5), NEXT + M)
    assert order.status == "filled" and order.filled_qty == 10 and order.avg_price == 472.0
    (fill,) = b.events
    assert fill["event"] == "fill" and fill["price"] == "472" and fill["qty"] == "10"
    assert fill["position_qty"] == "10" and fill["order"]["filled_avg_price"] == "472"
    position = b.position("SPY")
    assert position["qty"] == "10" and position["side"] == "long"
    assert position["avg_entry_price"] == "472" and position["cost_basis"] == "4720"
    assert b.cash == pytest.approx(1_000_000.0 - 4720.0)


def test_partial_fills_report_each_execution_and_a_cumulative_order() -> None:
    b = book(cash=10_000_000.0)
    b.mark("SPY", 100.0)
    order = b.submit(request(qty=2500, client_order_id="big"), NOW, NEXT, None)
    events(b)
    for minute in range(1, 5):  # 10% of 1000 shares a bar
        b.on_bar(bar(minute, 100, 101, 99, 100.5, v=10_000.0), NEXT + minute * M)
    fills = [e for e in b.events if e["event"] in ("partial_fill", "fill")]
    assert [e["event"] for e in fills] == ["partial_fill", "partial_fill", "fill"]
    assert [e["qty"] for e in fills] == ["1000", "1000", "500"]
    assert [e["order"]["filled_qty"] for e in fills] == ["1000", "2000", "2500"]
    assert sum(float(e["qty"]) for e in fills) == order.filled_qty == 2500
    assert [e["position_qty"] for e in fills] == ["1000", "2000", "2500"]


def test_injected_split_turns_one_fill_into_several_executions() -> None:
    b = book()
    b.mark("SPY", 100.0)
    b.split_parts.append(3)
    b.submit(request(qty=10), NOW, NEXT, None)
    events(b)
    b.on_bar(bar(1, 100, 101, 99, 100.5), NEXT + M)
    assert [(e["event"], e["qty"]) for e in b.events] == [
        ("partial_fill", "3"), ("partial_fill", "3"), ("fill", "4")]
    assert len({e["execution_id"] for e in b.events}) == 3


def test_bracket_legs_wait_held_then_one_exit_cancels_the_other() -> None:
    b = book()
    b.mark("SPY", 100.0)
    entry = b.submit(request(order_class="bracket", take_profit={"limit_price": 104},
                             stop_loss={"stop_price": 97}, time_in_force="gtc",
                             client_order_id="e"), NOW, NEXT, None)
    take, stop = (b.orders[i] for i in entry.legs)
    assert (take.status, stop.status) == ("held", "held")
    assert (take.type, take.limit_price, stop.type, stop.stop_price) == ("limit", 104, "stop", 97)
    assert b.to_json(entry)["legs"][0]["status"] == "held"
    events(b)
    b.on_bar(bar(1, 100, 100.5, 99.5, 100.2), NEXT + M)
    assert entry.status == "filled" and (take.status, stop.status) == ("new", "new")
    assert [e for e, _ in events(b)] == ["fill", "new", "new"]
    # the legs hold the shares: selling them again is refused as Alpaca refuses it
    with pytest.raises(WireError) as refused:
        b.submit(request(side="sell"), NEXT + M, NEXT + 2 * M, None)
    assert refused.value.status == 403 and "insufficient qty available" in refused.value.message
    b.on_bar(bar(2, 99, 99.2, 96.5, 97.5), NEXT + 2 * M)  # down through the stop
    assert stop.status == "filled" and take.status == "canceled"
    assert [e for e, _ in events(b)] == ["fill", "canceled"]
    assert b.all_positions() == []


def test_limit_order_rests_then_cancel_and_cancel_is_final() -> None:
    b = book()
    b.mark("SPY", 100.0)
    order = b.submit(request(type="limit", limit_price=95, client_order_id="lim"), NOW, NEXT,
                     None)
    b.on_bar(bar(1, 100, 101, 99, 100.5), NEXT + M)
    assert order.status == "new"
    b.cancel(order.id, NEXT + M)
    assert order.status == "canceled" and not b.broker.has_order(order.internal_id)
    with pytest.raises(WireError) as refused:
        b.cancel(order.id, NEXT + M)
    assert refused.value.status == 422
    with pytest.raises(WireError) as missing:
        b.cancel("no-such-order", NEXT + M)
    assert missing.value.status == 404


def test_replace_creates_a_new_order_and_retires_the_old_one() -> None:
    b = book()
    b.mark("SPY", 100.0)
    old = b.submit(request(type="limit", limit_price=95, client_order_id="v1"), NOW, NEXT, None)
    events(b)
    new = b.replace(old.id, {"limit_price": 99.5, "client_order_id": "v2"}, NOW, NEXT)
    assert old.status == "replaced" and old.replaced_by == new.id and new.replaces == old.id
    assert new.limit_price == 99.5 and new.qty == 10
    assert events(b) == [("replaced", "v1"), ("new", "v2")]
    b.on_bar(bar(1, 100, 101, 99, 100.5), NEXT + M)
    assert new.status == "filled" and new.avg_price == 99.5


def test_day_orders_expire_at_the_close_gtc_orders_stay() -> None:
    b = book()
    b.mark("SPY", 100.0)
    day = b.submit(request(type="limit", limit_price=90), NOW, NEXT, None)
    gtc = b.submit(request(type="limit", limit_price=90, time_in_force="gtc"), NOW, NEXT, None)
    events(b)
    b.expire_day_orders(NOW + 390 * M)
    assert day.status == "expired" and gtc.status == "new"
    assert [e for e, _ in events(b)] == ["expired"]


def test_ioc_cancels_what_its_first_bar_did_not_fill() -> None:
    b = book(cash=10_000_000.0)
    b.mark("SPY", 100.0)
    order = b.submit(request(qty=1500, time_in_force="ioc"), NOW, NEXT, None)
    b.on_bar(bar(1, 100, 101, 99, 100.5, v=10_000.0), NEXT + M)
    assert order.filled_qty == 1000 and order.status == "canceled"


def test_venue_rejection_is_a_pending_order_then_a_rejected_event() -> None:
    b = book()
    b.mark("SPY", 100.0)
    order = b.submit(request(client_order_id="r"), NOW, NEXT, None, venue_reject=True)
    assert order.status == "pending_new" and not b.broker.has_order(order.internal_id)
    b.reject(order.id, NOW)
    assert order.status == "rejected" and events(b) == [("pending_new", "r"), ("rejected", "r")]


def test_account_checks_buying_power_and_unique_client_ids() -> None:
    b = book(cash=10_000.0)
    b.mark("SPY", 100.0)
    b.submit(request(qty=100, client_order_id="same"), NOW, NEXT, None)
    with pytest.raises(WireError) as duplicate:
        b.submit(request(qty=1, client_order_id="same"), NOW, NEXT, None)
    assert duplicate.value.status == 422
    with pytest.raises(WireError) as poor:
        b.submit(request(qty=150), NOW, NEXT, None)  # 2x margin less the 100 pending
    assert poor.value.status == 403 and poor.value.message == "insufficient buying power"
    account = b.account("acct", T0)
    assert account["cash"] == "10000" and account["buying_power"] == "10000"


def test_short_position_accounting() -> None:
    b = book()
    b.mark("SPY", 100.0)
    b.submit(request(side="sell", qty=10), NOW, NEXT, None)
    b.on_bar(bar(1, 100, 101, 99, 100.5), NEXT + M)
    b.mark("SPY", 98.0)
    position = b.position("SPY")
    assert position["side"] == "short" and position["qty"] == "-10"
    assert position["unrealized_pl"] == "20" and position["market_value"] == "-980"
    account = b.account("acct", T0)
    assert account["short_market_value"] == "-980"
    assert float(account["equity"]) == pytest.approx(1_000_000.0 + 20.0)


@pytest.mark.parametrize(("fields", "message"), [
    ({"symbol": ""}, "symbol is required"),
    ({"side": "hold"}, "invalid side"),
    ({"type": "stop_limit"}, "not supported"),
    ({"type": "teleport"}, "invalid order type"),
    ({"time_in_force": "fok"}, "not supported"),
    ({"qty": -1}, "qty must be > 0"),
    ({"qty": "ten"}, "invalid qty"),
    ({"notional": 500}, "exactly one of qty or notional"),
    ({"type": "limit"}, "limit_price is required"),
    ({"type": "stop"}, "stop_price is required"),
    ({"limit_price": 10}, "limit_price is not allowed"),
    ({"order_class": "bracket", "take_profit": {"limit_price": 110}}, "stop_loss.stop_price"),
    ({"order_class": "oco"}, "not supported"),
    ({"qty": 1.5, "type": "stop", "stop_price": 90}, "fractional"),
    ({"extended_hours": True}, "extended hours"),
])
def test_bad_orders_are_refused_with_a_reason(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(WireError) as refused:
        request(**fields)
    assert refused.value.status == 422 and message in refused.value.message


def test_bracket_levels_must_sit_around_the_price() -> None:
    b = book()
    b.mark("SPY", 100.0)
    with pytest.raises(WireError) as refused:
        b.submit(request(order_class="bracket", take_profit={"limit_price": 99},
                         stop_loss={"stop_price": 97}), NOW, NEXT, None)
    assert refused.value.code == 42210000 and "take_profit.limit_price" in refused.value.message
