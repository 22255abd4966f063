"""AlpacaBroker's bookkeeping against an in-memory fake of the trading API (the real SDK
against the simulator is in tests/integration): fills by their own quantity through a
watermark, legs covering the filled part of an entry, which endings the engine hears about,
idempotent submission with a durable journal, and the answers a POST can get."""

from __future__ import annotations

from typing import Any

import pytest
from alpaca.common.exceptions import APIError
from pydantic import SecretStr

from gnosis.adapters.alpaca.broker import AlpacaBroker
from gnosis.adapters.alpaca.journal import OrderJournal
from gnosis.adapters.alpaca.settings import AlpacaSettings
from gnosis.core.config import ExecutionConfig
from gnosis.model.types import Fill, Order, OrderType, Side

T0 = 1_704_205_800_000_000_000


class HttpFailure(Exception):
    """What ``requests`` raises inside the SDK: an object with ``.response.status_code``."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.response = type("R", (), {"status_code": status})()


def api_error(status: int, message: str) -> APIError:
    return APIError(f'{{"code": {status}0000, "message": "{message}"}}', HttpFailure(status))


def order_record(cid: str, *, qty: float = 100, filled: float = 0, avg: float | None = None,
                 status: str = "new", venue_id: str | None = None, legs: list | None = None,
                 side: str = "buy", kind: str = "market", stop: float | None = None,
                 limit: float | None = None) -> dict[str, Any]:
    return {"id": venue_id or f"id-{cid}", "client_order_id": cid, "symbol": "SPY",
            "side": side, "type": kind, "qty": str(qty), "filled_qty": str(filled),
            "filled_avg_price": None if avg is None else str(avg), "status": status,
            "order_class": "bracket" if legs else "simple", "stop_price": stop,
            "limit_price": limit, "time_in_force": "gtc",
            "updated_at": "2024-01-02T14:31:00Z", "legs": legs}


def update(event: str, record: dict[str, Any], *, qty: float | None = None,
           price: float | None = None, execution: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"event": event, "timestamp": "2024-01-02T14:31:00Z",
                            "order": record}
    if qty is not None:
        data.update(qty=str(qty), price=str(price), execution_id=execution)
    return {"stream": "trade_updates", "data": data}


class FakeTradingClient:
    """The raw-data TradingClient calls the broker makes, scripted per test."""

    def __init__(self) -> None:
        self.posted: list[Any] = []
        self.orders: dict[str, dict[str, Any]] = {}
        self.submit_errors: list[APIError] = []
        self.canceled: list[str] = []

    def submit_order(self, request: Any) -> dict[str, Any]:
        self.posted.append(request)
        if self.submit_errors:
            error = self.submit_errors.pop(0)
            if getattr(error, "placed", False):
                self.orders[request.client_order_id] = order_record(request.client_order_id)
            raise error
        if request.client_order_id in self.orders:
            raise api_error(422, "client_order_id must be unique")
        legs = None
        if request.take_profit is not None:
            legs = [order_record("leg-tp", kind="limit", side="sell", status="held",
                                 venue_id=f"tp-{request.client_order_id}",
                                 limit=request.take_profit.limit_price),
                    order_record("leg-sl", kind="stop", side="sell", status="held",
                                 venue_id=f"sl-{request.client_order_id}",
                                 stop=request.stop_loss.stop_price)]
        record = order_record(request.client_order_id, qty=request.qty, legs=legs)
        self.orders[request.client_order_id] = record
        return record

    def get_order_by_client_id(self, cid: str) -> dict[str, Any]:
        if cid not in self.orders:
            raise api_error(404, "order not found")
        return self.orders[cid]

    def cancel_order_by_id(self, venue_id: str) -> None:
        self.canceled.append(venue_id)


class FakeBot:
    def __init__(self) -> None:
        self.fills: list[Fill] = []
        self.ended: list[tuple[str, str]] = []
        self.notes: list[str] = []
        self.booked_before: list[bool] = []

    def on_broker_fills(self, fills: Any, before: Any = None) -> None:
        if before is not None:
            before()
        self.fills += list(fills)

    def on_order_ended(self, cid: str, status: str, reason: str) -> None:
        self.ended.append((cid, status))

    def notify(self, message: str) -> None:
        self.notes.append(message)

    def fail(self, message: str) -> None:
        self.notes.append(f"FAIL {message}")


@pytest.fixture
def broker(tmp_path: Any) -> AlpacaBroker:
    settings = AlpacaSettings(api_key=SecretStr("k"), secret_key=SecretStr("s"))
    client = FakeTradingClient()
    venue = AlpacaBroker(settings, ("SPY",), journal=OrderJournal(tmp_path),
                         execution=ExecutionConfig(sell_fee_bps=0.0), client=client)
    venue._bot = FakeBot()  # type: ignore[assignment]
    venue.wall.sleep = lambda seconds: None  # type: ignore[method-assign]
    return venue


def entry(cid: str = "gn-run-0000001-SPY", quantity: float = 100,
          bracket: bool = True) -> Order:
    return Order(cid, "SPY", Side.BUY, quantity, OrderType.MARKET, T0, reason="entry",
                 expected_price=100.0, stop_loss=98.0 if bracket else None,
                 take_profit=104.0 if bracket else None)


def place(broker: AlpacaBroker, order: Order) -> None:
    assert broker.submit(order)
    while True:  # earlier commands (cancels) are not what this test looks at
        command, key = broker._commands.get_nowait()
        if (command, key) == ("submit", order.client_order_id):
            break
    broker._place(key)


def bot(broker: AlpacaBroker) -> FakeBot:
    return broker._bot  # type: ignore[return-value]


def client(broker: AlpacaBroker) -> FakeTradingClient:
    return broker.client  # type: ignore[no-any-return]


def test_partial_fills_count_each_fill_by_its_own_quantity(broker: AlpacaBroker) -> None:
    order = entry(bracket=False)
    place(broker, order)
    cid = order.client_order_id
    for cumulative, qty, price, execution in ((30, 30, 100.0, "x1"), (70, 40, 101.0, "x2"),
                                               (70, 40, 101.0, "x2"), (100, 30, 102.0, "x3")):
        status = "filled" if cumulative == 100 else "partially_filled"
        broker.on_trade_update(update("fill" if cumulative == 100 else "partial_fill",
                                      order_record(cid, filled=cumulative, status=status),
                                      qty=qty, price=price, execution=execution))
    fills = bot(broker).fills
    assert [(f.quantity, f.price, f.remaining) for f in fills] == [
        (30, 100.0, 70), (40, 101.0, 30), (30, 102.0, 0)]  # the replayed x2 counted once
    assert sum(f.quantity for f in fills) == 100  # not 30 + 70 + 70 + 100
    assert [f.execution_id for f in fills] == ["x1", "x2", "x3"]
    assert all(f.reason == "entry" and f.expected_price == 100.0 for f in fills)
    assert broker.snapshot()["booked"][cid] == (100, pytest.approx(10100.0))
    assert broker.working() == []


def test_a_poll_and_the_stream_reporting_the_same_executions_book_them_once(
        broker: AlpacaBroker) -> None:
    order = entry(bracket=False)
    place(broker, order)
    cid = order.client_order_id
    venue = broker._lookup(cid)
    assert venue is not None
    venue.filled_qty, venue.filled_avg_price, venue.status = 50, 100.0, "partially_filled"
    (polled,) = broker.fills_from_venue(venue, cid, T0)
    broker._hand([polled])
    assert (polled.quantity, polled.price) == (50, 100.0)
    # the stream catches up: the first execution is already booked, the second only in part
    broker.on_trade_update(update("partial_fill", order_record(cid, filled=30,
                                                               status="partially_filled"),
                                  qty=30, price=100.0, execution="x1"))
    broker.on_trade_update(update("partial_fill", order_record(cid, filled=70,
                                                               status="partially_filled"),
                                  qty=40, price=101.0, execution="x2"))
    assert [(f.quantity, f.price) for f in bot(broker).fills] == [(50, 100.0), (20, 101.0)]
    # a later poll prices what it adds at the average of the difference
    venue.filled_qty, venue.filled_avg_price = 100, 100.8
    (rest,) = broker.fills_from_venue(venue, cid, T0)
    assert rest.quantity == 30
    assert rest.price == pytest.approx((100 * 100.8 - (50 * 100.0 + 20 * 101.0)) / 30)
    assert broker.stats["fills_already_booked"] == 1


def test_bracket_legs_cover_the_filled_part_and_shrink_as_either_fills(
        broker: AlpacaBroker) -> None:
    order = entry()
    place(broker, order)
    cid = order.client_order_id
    legs = client(broker).orders[cid]["legs"]
    assert [(leg_key, left) for leg_key, left in
            [(o.client_order_id, left) for o, left in broker.working()]] == [(cid, 100)]
    broker.on_trade_update(update("partial_fill", order_record(cid, filled=60,
                                                               status="partially_filled",
                                                               legs=legs),
                                  qty=60, price=100.0, execution="x1"))
    working = {o.client_order_id: left for o, left in broker.working()}
    assert working == {cid: 40, f"{cid}-sl": 60, f"{cid}-tp": 60}
    stop = next(o for o, _ in broker.working() if o.client_order_id == f"{cid}-sl")
    assert (stop.order_type, stop.stop_price, stop.side, stop.reason) == (
        OrderType.STOP, 98.0, Side.SELL, "stop_loss")
    stop_leg = order_record("leg-sl", kind="stop", side="sell", status="partially_filled",
                            venue_id=f"sl-{cid}", qty=60, filled=20, stop=98.0)
    broker.on_trade_update(update("partial_fill", stop_leg, qty=20, price=97.9,
                                  execution="x2"))
    leg_fill = bot(broker).fills[-1]
    assert (leg_fill.client_order_id, leg_fill.reason, leg_fill.quantity) == (
        f"{cid}-sl", "stop_loss", 20)
    assert leg_fill.expected_price == leg_fill.reference == 98.0  # slippage vs the level
    working = {o.client_order_id: left for o, left in broker.working()}
    assert working == {cid: 40, f"{cid}-sl": 40, f"{cid}-tp": 40}


def test_which_endings_the_engine_hears_about(broker: AlpacaBroker) -> None:
    expiring, canceled = entry("gn-run-1-SPY", bracket=False), entry("gn-run-2-SPY")
    place(broker, expiring)
    place(broker, canceled)
    broker.on_trade_update(update("expired", order_record("gn-run-1-SPY", status="expired")))
    assert bot(broker).ended == [("gn-run-1-SPY", "expired")]  # the venue ended it
    assert broker.cancel("gn-run-2-SPY")
    assert not broker.cancel("gn-run-2-SPY")  # nothing left working of it
    broker.on_trade_update(update("canceled", order_record("gn-run-2-SPY",
                                                           status="canceled")))
    assert bot(broker).ended == [("gn-run-1-SPY", "expired")]  # we asked for that one
    # one-cancels-other: a leg canceled because its sibling filled is no news
    place(broker, entry("gn-run-3-SPY"))
    legs = client(broker).orders["gn-run-3-SPY"]["legs"]
    broker.on_trade_update(update("fill", order_record("gn-run-3-SPY", filled=100,
                                                       status="filled", legs=legs),
                                  qty=100, price=100.0, execution="y1"))
    broker.on_trade_update(update("fill", order_record(
        "leg-tp", kind="limit", side="sell", status="filled", venue_id="tp-gn-run-3-SPY",
        filled=100, limit=104.0), qty=100, price=104.0, execution="y2"))
    broker.on_trade_update(update("canceled", order_record(
        "leg-sl", kind="stop", side="sell", status="canceled", venue_id="sl-gn-run-3-SPY",
        stop=98.0)))
    assert bot(broker).ended == [("gn-run-1-SPY", "expired")]
    # but a stop leg that expires leaves shares unprotected: the engine must hear it
    place(broker, entry("gn-run-4-SPY"))
    legs = client(broker).orders["gn-run-4-SPY"]["legs"]
    broker.on_trade_update(update("fill", order_record("gn-run-4-SPY", filled=100,
                                                       status="filled", legs=legs),
                                  qty=100, price=100.0, execution="z1"))
    broker.on_trade_update(update("expired", order_record(
        "leg-sl", kind="stop", side="sell", status="expired", venue_id="sl-gn-run-4-SPY",
        stop=98.0)))
    assert bot(broker).ended[-1] == ("gn-run-4-SPY-sl", "expired")


def test_cancel_children_cancels_the_working_legs_and_says_which(broker: AlpacaBroker) -> None:
    order = entry()
    place(broker, order)
    cid = order.client_order_id
    assert broker.cancel_children(cid) == []  # held legs are not working yet
    legs = client(broker).orders[cid]["legs"]
    broker.on_trade_update(update("fill", order_record(cid, filled=100, status="filled",
                                                       legs=legs),
                                  qty=100, price=100.0, execution="x1"))
    assert sorted(broker.cancel_children(cid)) == [f"{cid}-sl", f"{cid}-tp"]
    assert broker.working() == []
    commands = [broker._commands.get_nowait() for _ in range(2)]
    assert sorted(commands) == [("cancel", f"{cid}-sl"), ("cancel", f"{cid}-tp")]


def test_an_intent_is_journaled_before_it_leaves_and_never_sent_twice(
        broker: AlpacaBroker, tmp_path: Any) -> None:
    order = entry()
    assert broker.submit(order)
    intent = OrderJournal(tmp_path).get(order.client_order_id)  # another connection: durable
    assert intent is not None and intent.status == "pending" and client(broker).posted == []
    broker._place(broker._commands.get_nowait()[1])
    assert OrderJournal(tmp_path).get(order.client_order_id).status == "placed"  # type: ignore
    assert not broker.submit(order)  # a replayed decision: refused, nothing posted
    assert len(client(broker).posted) == 1


def test_a_restarted_broker_places_an_intent_that_never_left_once(tmp_path: Any) -> None:
    journal = OrderJournal(tmp_path)
    order = entry()
    journal.record(order)  # killed after the journal write, before the POST
    journal.close()
    settings = AlpacaSettings(api_key=SecretStr("k"), secret_key=SecretStr("s"))
    venue = AlpacaBroker(settings, ("SPY",), journal=OrderJournal(tmp_path),
                         client=FakeTradingClient())
    venue._bot = FakeBot()  # type: ignore[assignment]
    place(venue, order)  # the replayed bar decides the same order: placed now, once
    assert len(venue.client.posted) == 1


@pytest.mark.parametrize("errors, posts, outcome", [
    ([api_error(422, "client_order_id must be unique")], 1, "placed"),  # already placed
    ([api_error(500, "internal server error")], 2, "placed"),  # not placed: sent again
    ([api_error(503, "service unavailable")] * 4, 4, "unplaced"),  # never: said, not guessed
    ([api_error(403, "insufficient buying power")], 1, "refused"),
])
def test_what_a_post_can_answer(broker: AlpacaBroker, errors: list[APIError], posts: int,
                                outcome: str) -> None:
    order = entry()
    if errors[0].status_code == 422:  # the venue had it from an earlier attempt
        client(broker).orders[order.client_order_id] = order_record(order.client_order_id)
    client(broker).submit_errors = list(errors)
    place(broker, order)
    assert len(client(broker).posted) == posts
    assert broker.journal.get(order.client_order_id).status == outcome  # type: ignore
    ended = bot(broker).ended
    assert ended == ([] if outcome == "placed" else [(order.client_order_id, "rejected")])


def test_a_post_that_failed_but_went_through_is_not_sent_again(broker: AlpacaBroker) -> None:
    error = api_error(500, "internal server error")
    error.placed = True  # type: ignore[attr-defined]  # the venue took it, then failed
    client(broker).submit_errors = [error]
    order = entry()
    place(broker, order)
    assert len(client(broker).posted) == 1
    assert broker.journal.get(order.client_order_id).status == "placed"  # type: ignore


def test_the_booked_watermark_survives_a_restart_through_the_engine_snapshot(
        broker: AlpacaBroker) -> None:
    order = entry(bracket=False)
    place(broker, order)
    broker.on_trade_update(update("partial_fill", order_record(
        order.client_order_id, filled=40, status="partially_filled"), qty=40, price=100.0,
        execution="x1"))
    state = broker.snapshot()
    fresh = AlpacaBroker(broker.settings, ("SPY",), journal=broker.journal,
                         client=broker.client)
    fresh.restore(state)
    fresh._bot = FakeBot()  # type: ignore[assignment]
    fresh.submit(order)  # not re-sent: the journal says placed
    venue = fresh._lookup(order.client_order_id)
    assert venue is not None
    venue.filled_qty, venue.filled_avg_price = 100, 100.6
    fresh._tracked[order.client_order_id] = broker._tracked[order.client_order_id]
    (missed,) = fresh.fills_from_venue(venue, order.client_order_id, T0)
    assert missed.quantity == 60  # only what the engine had not booked before the restart
    assert missed.price == pytest.approx((100 * 100.6 - 40 * 100.0) / 60)
