"""Reconciliation rules, one by one, with a real Engine and the AlpacaBroker over an in-memory
fake of the trading API (the SIGKILL test runs them against the simulator): fills made while
down are booked, an intent the venue never received is dropped or left placeable, unknown
orders of this run are canceled, others left alone, and positions that still differ adopted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from gnosis.adapters.alpaca.broker import AlpacaBroker
from gnosis.adapters.alpaca.journal import OrderJournal
from gnosis.adapters.alpaca.reconcile import Reconciler
from gnosis.adapters.alpaca.settings import AlpacaSettings
from gnosis.core.config import load_config
from gnosis.model.types import Bar
from gnosis.trading.engine import Engine
from tests.support.scenario import MINUTE, T0, ScriptedStrategy
from tests.unit.test_alpaca_broker import FakeBot, FakeTradingClient, order_record


class VenueFake(FakeTradingClient):
    def __init__(self) -> None:
        super().__init__()
        self.positions: dict[str, tuple[float, float]] = {}
        self.open_extra: list[dict[str, Any]] = []

    def get_all_positions(self) -> list[dict[str, Any]]:
        return [{"symbol": s, "qty": str(q), "side": "long" if q > 0 else "short",
                 "avg_entry_price": str(p)} for s, (q, p) in self.positions.items()]

    def get_orders(self, request: Any = None) -> list[dict[str, Any]]:
        flat = []
        for record in self.orders.values():
            for item in [record, *(record.get("legs") or [])]:
                if item["status"] not in ("filled", "canceled", "expired", "rejected"):
                    flat.append({**item, "legs": None})
        return flat + self.open_extra


def setup(tmp_path: Path, signals: list[int]) -> tuple[Engine, AlpacaBroker, VenueFake]:
    """An engine that decided an entry on its first bar, with a broker that journaled it."""
    config = load_config(risk={"fixed_quantity": 100})
    venue = VenueFake()
    settings = AlpacaSettings(api_key=SecretStr("k"), secret_key=SecretStr("s"))
    broker = AlpacaBroker(settings, ("SPY",), journal=OrderJournal(tmp_path), client=venue)
    engine = Engine(config, ScriptedStrategy(signals), broker)
    broker.prefix = f"gn-{engine.run_id}-"
    broker._bot = FakeBot()  # type: ignore[assignment]
    engine.on_bar(Bar("SPY", T0, 100, 100, 100, 100, 1e6))
    return engine, broker, venue


def restarted(engine: Engine, broker: AlpacaBroker, venue: VenueFake) -> AlpacaBroker:
    """The broker after a kill: the same journal and venue, an empty mirror."""
    fresh = AlpacaBroker(broker.settings, ("SPY",), journal=broker.journal, client=venue)
    fresh.prefix = broker.prefix
    fresh.restore(broker.snapshot())
    fresh._bot = FakeBot()  # type: ignore[assignment]
    engine.broker = fresh
    return fresh


def notes(engine: Engine) -> list[str]:
    return [message for _ts, _kind, message in engine._journal_events]


def test_fills_made_while_down_are_booked_and_the_legs_protect_them(tmp_path: Path) -> None:
    engine, broker, venue = setup(tmp_path, [1])
    (cid,) = [o.client_order_id for o, _ in broker.working()]
    legs = [order_record("l1", kind="stop", side="sell", status="new", venue_id="sl",
                         qty=100, stop=98.0),
            order_record("l2", kind="limit", side="sell", status="new", venue_id="tp",
                         qty=100, limit=104.0)]
    # the POST went out, then the bot died; the entry filled while it was down
    venue.orders[cid] = order_record(cid, filled=100, avg=100.25, status="filled", legs=legs)
    venue.positions["SPY"] = (100, 100.25)
    fresh = restarted(engine, broker, venue)
    Reconciler(fresh).run_now(engine, "start")
    position = engine.positions.positions["SPY"]
    assert (position.quantity, position.average_price) == (100, 100.25)
    assert engine.stop_cover("SPY", position) == 100  # the legs at the venue protect it
    assert fresh.journal.get(cid).status == "placed"  # type: ignore[union-attr]
    assert any("booked 1 fill(s) the venue made while we were not listening" in n
               for n in notes(engine))
    assert not any("the book held" in n for n in notes(engine))  # nothing left to adopt
    Reconciler(fresh).run_now(engine, "again")  # a second pass books nothing twice
    assert engine.positions.positions["SPY"].quantity == 100


def test_an_intent_the_venue_never_got_is_ended_if_the_engine_counts_on_it(
        tmp_path: Path) -> None:
    engine, broker, venue = setup(tmp_path, [1])
    cid = engine.entry_ticket("SPY").client_order_id  # type: ignore[union-attr]
    fresh = restarted(engine, broker, venue)  # killed between the journal write and the POST
    Reconciler(fresh).run_now(engine, "start")
    assert engine.entry_ticket("SPY") is None  # the engine no longer waits for it
    assert fresh.journal.get(cid).status == "dropped"  # type: ignore[union-attr]
    assert not fresh.submit(engine._journal_orders[0] if engine._journal_orders else
                            fresh.journal.get(cid).order)  # type: ignore[union-attr]
    assert venue.posted == []  # never sent late


def test_an_intent_whose_decision_was_never_committed_stays_placeable_once(
        tmp_path: Path) -> None:
    engine, broker, venue = setup(tmp_path, [1])
    cid = engine.entry_ticket("SPY").client_order_id  # type: ignore[union-attr]
    order = broker.journal.get(cid).order  # type: ignore[union-attr]
    engine._entry.clear()  # the engine restarted from the bar before: no ticket
    fresh = restarted(engine, broker, venue)
    Reconciler(fresh).run_now(engine, "start")
    assert fresh.journal.get(cid).status == "unplaced"  # type: ignore[union-attr]
    assert fresh.submit(order)  # the replayed bar decides it again: placed, once
    fresh._place(fresh._commands.get_nowait()[1])
    assert not fresh.submit(order) and len(venue.posted) == 1


def test_unknown_open_orders_this_run_placed_are_canceled_others_left_alone(
        tmp_path: Path) -> None:
    engine, broker, venue = setup(tmp_path, [1])
    cid = engine.entry_ticket("SPY").client_order_id  # type: ignore[union-attr]
    venue.orders[cid] = order_record(cid, status="new")  # placed, but never committed:
    engine._entry.clear()  # the restarted engine does not know it
    venue.open_extra = [order_record("manual-1", kind="stop", side="sell", stop=90.0,
                                     qty=5, venue_id="m1")]
    fresh = restarted(engine, broker, venue)
    Reconciler(fresh).run_now(engine, "start")
    assert ("cancel", cid) in [fresh._commands.get_nowait()
                               for _ in range(fresh._commands.qsize())]
    text = "\n".join(notes(engine))
    assert "its decision was never committed" in text and ": canceled" in text
    assert "an order this bot did not place is open at the venue" in text
    assert [o.client_order_id for o, _ in fresh.working()] == ["ext-manual-1"]


def test_a_position_that_still_differs_is_adopted_and_said(tmp_path: Path) -> None:
    engine, broker, venue = setup(tmp_path, [0])
    engine.on_bar(Bar("SPY", T0 + MINUTE, 100, 100, 100, 100, 1e6))
    venue.positions["SPY"] = (-40, 101.5)  # someone traded the account by hand
    Reconciler(broker).run_now(engine, "start")
    assert engine.positions.positions["SPY"].quantity == -40
    assert any("the book held 0, the broker holds -40" in n for n in notes(engine))
    assert broker.stats["positions_adopted"] == 1


@pytest.mark.parametrize("moved", [True, False])
def test_adoption_waits_while_fills_of_the_symbol_are_on_their_way(tmp_path: Path,
                                                                   moved: bool) -> None:
    engine, broker, venue = setup(tmp_path, [0])
    venue.positions["SPY"] = (30, 100.0)
    reconciler = Reconciler(broker)
    state = reconciler.collect()
    if moved:
        broker.generation["SPY"] += 1  # a fill was handed over after the venue was read
    reconciler.apply(engine, state, "reconnect")
    held = engine.positions.positions.get("SPY")
    assert (held is None) == moved
    assert broker._reconcile_wanted.is_set() == moved  # and it looks again
