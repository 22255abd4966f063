"""The engine against a live venue's habits: fills between bars, fills reported twice, a fill
that races a cancel, orders the venue ends on its own, positions adopted on reconciliation.

``FakeVenue`` is the in-memory fake of the ``Broker`` port for a venue that reports fills
asynchronously (as Alpaca's trade updates do): it never fills on ``on_bar``; the test plays
the venue and pushes fills and order endings into the engine.
"""

from __future__ import annotations

from typing import Any

import pytest

from gnosis.core.config import load_config
from gnosis.model.events import Notice, OrderCanceled
from gnosis.model.types import Bar, Fill, Order, OrderType, Side
from gnosis.trading.engine import Engine
from tests.support.scenario import MINUTE, T0, ScriptedStrategy


class FakeVenue:
    """Keeps working orders like a venue's open-order list; fills only when told to."""

    def __init__(self) -> None:
        self.orders: dict[str, list[Any]] = {}  # cid -> [order, remaining]
        self.submitted: list[Order] = []
        self.canceled: list[str] = []

    def submit(self, order: Order, active_from: int = 0) -> bool:
        if order.client_order_id in self.orders:
            return False
        self.submitted.append(order)
        self.orders[order.client_order_id] = [order, order.quantity]
        return True

    def cancel(self, client_order_id: str) -> bool:
        self.canceled.append(client_order_id)
        return self.orders.pop(client_order_id, None) is not None

    def cancel_children(self, parent_id: str) -> list[str]:
        ids = [cid for cid, (o, _) in self.orders.items() if o.parent_id == parent_id]
        for cid in ids:
            del self.orders[cid]
        return ids

    def on_bar(self, bar: Bar) -> list[Fill]:
        return []

    def working(self, symbol: str | None = None) -> list[tuple[Order, float]]:
        return [(o, left) for o, left in self.orders.values()
                if symbol is None or o.symbol == symbol]

    def snapshot(self) -> Any:
        return None

    def restore(self, state: Any) -> None:
        pass

    # -- playing the venue ---------------------------------------------------------------------
    def fill(self, cid: str, quantity: float, price: float, execution: str,
             forget: bool = False) -> Fill:
        """A fill of ``cid``; with ``forget`` it arrives after the order left the book."""
        if forget:
            order, left = next(o for o in self.submitted if o.client_order_id == cid), quantity
        else:
            order, left = self.orders[cid]
        remaining = max(left - quantity, 0.0)
        if not forget:
            if remaining <= 0:
                del self.orders[cid]
            else:
                self.orders[cid][1] = remaining
            if order.stop_loss is not None:  # a bracket entry: the venue's legs grow
                self._grow_legs(order, quantity)
        return Fill(cid, order.symbol, order.side, quantity, price, 0.0, T0, price,
                    reason=order.reason, remaining=remaining, execution_id=execution)

    def _grow_legs(self, parent: Order, quantity: float) -> None:
        exit_side = Side.SELL if parent.side is Side.BUY else Side.BUY
        for suffix, kind, level in (("sl", OrderType.STOP, parent.stop_loss),
                                    ("tp", OrderType.LIMIT, parent.take_profit)):
            cid = f"{parent.client_order_id}-{suffix}"
            if cid in self.orders:
                self.orders[cid][1] += quantity
                continue
            leg = Order(cid, parent.symbol, exit_side, quantity, kind, T0,
                        stop_price=level if kind is OrderType.STOP else None,
                        limit_price=level if kind is OrderType.LIMIT else None,
                        reason="stop_loss" if kind is OrderType.STOP else "take_profit",
                        parent_id=parent.client_order_id, oco_group=parent.client_order_id)
            self.orders[cid] = [leg, quantity]


def engine_with_entry() -> tuple[Engine, FakeVenue, str]:
    config = load_config(risk={"fixed_quantity": 100})
    venue = FakeVenue()
    engine = Engine(config, ScriptedStrategy([1]), venue)
    engine.on_bar(Bar("SPY", T0, 100, 100, 100, 100, 1e6))
    (entry,) = venue.submitted
    return engine, venue, entry.client_order_id


def test_fills_between_bars_open_a_protected_position() -> None:
    engine, venue, entry = engine_with_entry()
    engine.on_broker_fills([venue.fill(entry, 40, 100.1, "x1")])
    engine.on_broker_fills([venue.fill(entry, 60, 100.2, "x2")])
    position = engine.positions.positions["SPY"]
    assert position.quantity == 100
    assert engine.entry_ticket("SPY") is None  # done: no record left
    assert engine.stop_cover("SPY", position) == 100


def test_a_fill_reported_twice_is_booked_once() -> None:
    engine, venue, entry = engine_with_entry()
    fill = venue.fill(entry, 40, 100.1, "x1")
    engine.on_broker_fills([fill])
    engine.on_broker_fills([fill])  # the stream replayed it after a reconnect
    assert engine.positions.positions["SPY"].quantity == 40


def test_an_entry_fill_that_races_an_exit_is_not_left_unprotected() -> None:
    """The time stop cancels the entry's remainder and sends an exit for 40; the venue had
    already filled 10 more of the entry. The book must not hold 10 unprotected shares."""
    engine, venue, entry = engine_with_entry()
    engine.on_broker_fills([venue.fill(entry, 40, 100.1, "x1")])
    engine.flatten(None, "operator_flatten")
    exit_order = venue.submitted[-1]
    assert (exit_order.reason, exit_order.quantity) == ("operator_flatten", 40)
    late = venue.fill(entry, 10, 100.2, "x2", forget=True)  # the cancel lost the race
    engine.on_broker_fills([late])
    assert engine.positions.positions["SPY"].quantity == 50
    ticket = engine.exit_ticket("SPY")
    assert ticket is not None and ticket.remaining == 50  # a new exit covers all of it
    assert exit_order.client_order_id in venue.canceled


def test_an_exit_the_venue_rejects_is_sent_again_to_protect_the_position() -> None:
    engine, venue, entry = engine_with_entry()
    engine.on_broker_fills([venue.fill(entry, 100, 100.0, "x1")])
    engine.flatten(None, "operator_flatten")
    first_exit = venue.submitted[-1].client_order_id
    venue.orders.pop(first_exit)
    canceled: list[OrderCanceled] = []
    engine.bus.subscribe(OrderCanceled, canceled.append)
    engine.on_order_ended(first_exit, "rejected", "insufficient qty")
    assert [c.client_order_id for c in canceled] == [first_exit]
    assert "rejected by the broker" in canceled[0].reason
    second = venue.submitted[-1]
    assert second.client_order_id != first_exit
    assert (second.reason, second.quantity) == ("unprotected", 100)


def test_reconciliation_adopts_the_venues_position_and_says_so() -> None:
    engine, venue, entry = engine_with_entry()
    notices: list[Notice] = []
    engine.bus.subscribe(Notice, notices.append)
    equity = engine.positions.equity
    engine.adopt_position("SPY", 70, 100.0, "fills missed while down")
    assert engine.positions.positions["SPY"].quantity == 70
    assert engine.positions.equity == equity  # cash paid for it: no jump
    assert any("the book held 0, the broker holds 70" in n.message for n in notices)
    assert venue.submitted[-1].reason == "unprotected"  # nothing protected it: exit it
    engine.on_bar(Bar("SPY", T0 + MINUTE, 100, 100, 100, 100, 1e6))


def test_a_fill_between_bars_starts_the_time_stop_clock_at_the_current_bar() -> None:
    config = load_config(risk={"fixed_quantity": 100}, positions={"max_bars_held": 3})
    venue = FakeVenue()
    engine = Engine(config, ScriptedStrategy([1]), venue)
    for i in range(5):  # bars 0-4; the entry (decided on bar 0) fills after bar 4
        engine.on_bar(Bar("SPY", T0 + i * MINUTE, 100, 100, 100, 100, 1e6))
    entry = venue.submitted[0].client_order_id
    engine.on_broker_fills([venue.fill(entry, 100, 100.0, "x1")])
    assert engine.positions.positions["SPY"].opened_bar == 4
    for i in range(5, 7):
        engine.on_bar(Bar("SPY", T0 + i * MINUTE, 100, 100, 100, 100, 1e6))
    assert engine.exit_ticket("SPY") is None  # held 2 bars: not yet
    engine.on_bar(Bar("SPY", T0 + 7 * MINUTE, 100, 100, 100, 100, 1e6))
    ticket = engine.exit_ticket("SPY")
    assert ticket is not None and ticket.order.reason == "time_stop"


def test_an_entry_the_venue_rejects_leaves_no_record_and_no_episode() -> None:
    engine, venue, entry = engine_with_entry()
    engine._situations[entry] = object()  # type: ignore[assignment]  # as memory would
    venue.orders.pop(entry)
    engine.on_order_ended(entry, "rejected", "insufficient buying power")
    assert engine.entry_ticket("SPY") is None
    assert entry not in engine._situations


def test_a_partly_filled_entry_the_venue_expires_keeps_its_episode() -> None:
    engine, venue, entry = engine_with_entry()
    engine._situations[entry] = object()  # type: ignore[assignment]
    engine.on_broker_fills([venue.fill(entry, 40, 100.0, "x1")])
    venue.orders.pop(entry)
    engine.on_order_ended(entry, "expired", "day order at the close")
    assert engine.entry_ticket("SPY") is None
    assert entry in engine._situations  # its 40 shares are a trade memory will close
    assert engine.positions.positions["SPY"].quantity == 40


def test_adopting_a_flat_book_closes_the_position_without_a_trade() -> None:
    engine, venue, entry = engine_with_entry()
    engine.on_broker_fills([venue.fill(entry, 100, 100.0, "x1")])
    engine.on_bar(Bar("SPY", T0 + MINUTE, 101, 101, 101, 101, 1e6))
    equity = engine.positions.equity
    engine.adopt_position("SPY", 0, 101.0, "closed at the broker while we were down")
    assert "SPY" not in engine.positions.positions
    assert engine.positions.equity == pytest.approx(equity)
    assert engine.positions.trade_count == 0
    engine.adopt_position("SPY", 0, 101.0, "again")  # already agrees: nothing happens
    assert engine.positions.equity == pytest.approx(equity)


def test_an_operator_halt_cancels_entries_and_exits_everything() -> None:
    engine, venue, entry = engine_with_entry()
    engine.on_broker_fills([venue.fill(entry, 40, 100.0, "x1")])
    canceled: list[OrderCanceled] = []
    engine.bus.subscribe(OrderCanceled, canceled.append)
    engine.halt("lunch", flatten=True)
    assert [(c.client_order_id[-8:], c.reason) for c in canceled] == [
        ("0001-SPY", "trading halted"), ("1-SPY-sl", "operator_halt"),
        ("1-SPY-tp", "operator_halt")]
    exit_order = venue.submitted[-1]
    assert (exit_order.reason, exit_order.quantity) == ("operator_halt", 40)


def test_adoption_details_travel_with_the_notice() -> None:
    engine, venue, entry = engine_with_entry()
    notices: list[Notice] = []
    engine.bus.subscribe(Notice, notices.append)
    engine.adopt_position("SPY", 70, 100.0, "missed fills")
    (notice,) = [n for n in notices if "reconciled" in n.message]
    assert notice.details == {"symbol": "SPY", "book": 0.0, "broker": 70}
    assert engine.positions.positions["SPY"].opened_bar == 0


def test_a_racing_fill_reported_on_a_bar_is_protected_once_the_batch_is_booked() -> None:
    """The same race, reported by the broker's ``on_bar`` (a venue that batches its reports
    per bar): after the bar's fills are booked, the exit is resized to the whole position."""
    engine, venue, entry = engine_with_entry()
    engine.on_broker_fills([venue.fill(entry, 40, 100.1, "x1")])
    engine.flatten(None, "operator_flatten")
    exit_order = venue.submitted[-1]
    late = venue.fill(entry, 10, 100.2, "x2", forget=True)
    venue.on_bar = lambda bar: [late]  # type: ignore[method-assign]
    engine.on_bar(Bar("SPY", T0 + MINUTE, 100, 100, 100, 100, 1e6))
    assert engine.positions.positions["SPY"].quantity == 50
    ticket = engine.exit_ticket("SPY")
    assert ticket is not None and ticket.remaining == 50
    assert exit_order.client_order_id in venue.canceled
