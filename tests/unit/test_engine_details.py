"""Details of the engine and SimBroker a mutation run of this session's changes found
untested: quarantine labels and events, the first closes' volatility, the cancel journal row,
the PositionOpened levels, late fills of canceled entries, a stop leg racing a flatten, the
notes and equity on events, the first day's return, an inactive order ahead in the book."""

from __future__ import annotations

import math
from pathlib import Path

from gnosis.core.config import load_config
from gnosis.model.events import (
    BarProcessed,
    BarQuarantined,
    DecisionMade,
    OrderCanceled,
    PositionOpened,
)
from gnosis.model.types import Bar, Fill, Order, OrderType, Side
from gnosis.trading.engine import Engine
from gnosis.trading.sim_broker import SimBroker
from gnosis.trading.state import StateStore
from tests.support.scenario import MINUTE, T0, ScriptedStrategy, run_rows
from tests.unit.test_engine import engine_for, run
from tests.unit.test_engine_venue import FakeVenue, engine_with_entry
from tests.unit.test_sim_broker import FREE, M, bar, market

FIXED_STOP = {"stop_loss_pct": 0.02, "max_stop_loss_pct": 0.02}


# -- sim_broker: SimBroker.on_bar ----------------------------------------------------------------
def test_an_order_not_yet_active_does_not_hide_the_orders_after_it() -> None:
    """The pre-scan skips an order of another symbol or one not yet active, and goes on."""
    broker = SimBroker(FREE)
    broker.submit(market("later", Side.BUY), active_from=5 * M)  # first in the book
    broker.submit(Order("qqq", "QQQ", Side.BUY, 10, OrderType.MARKET, ts_created=M,
                        expected_price=100.0), active_from=1)
    broker.submit(market("now", Side.BUY), active_from=1)
    fills = broker.on_bar(bar(1, 102, 103, 101, 102.5))
    assert [(f.client_order_id, f.price) for f in fills] == [("now", 102.0)]


# -- engine: Engine._admit ----------------------------------------------------------------------
def test_quarantine_names_each_bad_bar_and_counts_every_one(walk: list[Bar]) -> None:
    engine = engine_for()
    seen: list[BarQuarantined] = []
    engine.bus.subscribe(BarQuarantined, seen.append)
    bars = walk[:60]
    stream = bars[:50] + [bars[49], bars[49], bars[10]] + bars[50:]
    run(engine, stream)
    assert engine.quarantined == {"duplicate": 2, "out_of_order": 1}
    assert [(e.ts_event, e.symbol, e.reason.split(" bar at ")[0]) for e in seen] == [
        (bars[49].ts_event, "SPY", "duplicate"), (bars[49].ts_event, "SPY", "duplicate"),
        (bars[10].ts_event, "SPY", "out_of_order")]
    assert all(isinstance(e.ts_init, int) and e.ts_init >= e.ts_event for e in seen)
    assert all(e.reason.startswith(("duplicate bar at ", "out_of_order bar at ")) for e in seen)


def test_volatility_from_the_first_few_closes() -> None:
    """Before the 61-close window is full, volatility uses exactly the closes seen so far."""
    config = load_config()
    engine = Engine(config, ScriptedStrategy([]), SimBroker(config.execution))
    closes = [100.0, 101.0, 99.5, 102.0, 101.2, 103.0]
    for i, close in enumerate(closes):
        engine.warm_up(Bar("X", T0 + i * MINUTE, close, close, close, close, 1e4))
        seen = closes[: i + 1]
        if len(seen) < 3:
            assert engine.volatility("X") == 0.0
            continue
        returns = [math.log(b / a) for a, b in zip(seen, seen[1:])]
        mean = sum(returns) / len(returns)
        var = sum((r - mean) ** 2 for r in returns) / len(returns)
        assert math.isclose(engine.volatility("X"), math.sqrt(var * 252 * 390), rel_tol=1e-9)


# -- engine: Engine._canceled ---------------------------------------------------------------------
def test_a_cancel_is_journaled_as_order_canceled(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    config = load_config(risk={"fixed_quantity": 100})
    venue = FakeVenue()
    engine = Engine(config, ScriptedStrategy([1]), venue, store=store)
    engine.on_bar(Bar("SPY", T0, 100, 100, 100, 100, 1e6))
    (entry,) = venue.submitted
    engine.cancel_working_entries("operator says so", T0 + 1)
    engine.commit_now()
    rows = [(r["kind"], r["message"]) for r in store.rows("events")]
    store.close()
    assert ("order_canceled", f"{entry.client_order_id}: operator says so") in rows


# -- engine: Engine._on_fill ----------------------------------------------------------------------
def test_position_opened_carries_the_brackets_levels() -> None:
    rows = [(100, 100, 100, 100, 10_000, 1), (100, 101, 99, 100.5, 10_000, 0)]
    outcome = run_rows(rows, risk=FIXED_STOP)
    (opened,) = [e for e in outcome.events if isinstance(e, PositionOpened)]
    assert (opened.symbol, opened.quantity, opened.price, opened.stop_price,
            opened.target_price) == ("SPY", 100, 100.0, 98.0, 104.0)


def test_position_opened_without_brackets_says_zero_levels() -> None:
    rows = [(100, 100, 100, 100, 10_000, 1), (100, 101, 99, 100.5, 10_000, 0)]
    outcome = run_rows(rows, risk={"brackets": False})
    (opened,) = [e for e in outcome.events if isinstance(e, PositionOpened)]
    assert (opened.stop_price, opened.target_price) == (0.0, 0.0)


def test_a_late_fill_of_a_canceled_entry_opens_a_position_without_borrowing_brackets() -> None:
    """The venue fills an entry the engine had canceled (the cancel lost the race): booked,
    with no stop or target of its own, and not with those of a newer entry."""
    engine, venue, entry = engine_with_entry()
    engine.cancel_working_entries("operator", T0 + 1)
    engine.on_broker_fills([venue.fill(entry, 40, 100.1, "x1", forget=True)])
    position = engine.positions.positions["SPY"]
    assert (position.quantity, position.stop_price, position.target_price) == (40, None, None)


def test_a_late_fill_of_a_canceled_entry_does_not_take_the_working_entrys_levels() -> None:
    config = load_config(risk={"fixed_quantity": 100})
    venue = FakeVenue()
    engine = Engine(config, ScriptedStrategy([1, 1]), venue)
    engine.on_bar(Bar("SPY", T0, 100, 100, 100, 100, 1e6))
    old = venue.submitted[0].client_order_id
    engine.cancel_working_entries("operator", T0 + 1)
    engine.on_bar(Bar("SPY", T0 + MINUTE, 100, 100, 100, 100, 1e6))  # a new entry works
    assert len(venue.submitted) == 2 and venue.submitted[1].stop_loss is not None
    engine.on_broker_fills([venue.fill(old, 40, 100.1, "x1", forget=True)])
    position = engine.positions.positions["SPY"]
    assert (position.stop_price, position.target_price) == (None, None)


def test_a_stop_leg_fill_that_races_a_flatten_cancels_the_exit_at_the_bars_time() -> None:
    """Flattening cancels the bracket and sends an exit; the venue had already filled the stop
    leg. The trade is closed, so the exit must be canceled (else it would open a short)."""
    engine, venue, entry = engine_with_entry()
    canceled: list[OrderCanceled] = []
    engine.bus.subscribe(OrderCanceled, canceled.append)
    engine.on_broker_fills([venue.fill(entry, 100, 100.0, "x1")])
    leg = venue.orders[f"{entry}-sl"][0]
    engine.flatten(None, "operator_flatten")
    exit_order = venue.submitted[-1]
    assert exit_order.reason == "operator_flatten"
    late = Fill(leg.client_order_id, "SPY", leg.side, 100, 98.0, 0.0, T0, 98.0,
                reason="stop_loss", remaining=0.0, execution_id="x2")
    engine.on_broker_fills([late])
    assert engine.positions.positions == {}
    assert engine.exit_ticket("SPY") is None
    assert exit_order.client_order_id in venue.canceled
    (event,) = [c for c in canceled if c.client_order_id == exit_order.client_order_id]
    assert event.ts_event == T0  # the last bar's time
    assert event.reason == "trade closed (stop_loss)"


# -- engine: Engine._record -----------------------------------------------------------------------
def test_decisions_carry_their_note_and_bars_their_equity() -> None:
    rows = [(100, 100, 100, 100, 10_000, 1), (100, 101, 99, 100.5, 10_000, 1),
            (100.5, 101, 100, 101.0, 10_000, 0)]
    outcome = run_rows(rows, risk=FIXED_STOP)
    made = [e for e in outcome.events if isinstance(e, DecisionMade)]
    assert made[1].quantity == 0.0 and made[1].note == "already positioned this way"
    equity = [e.equity for e in outcome.events if isinstance(e, BarProcessed)]
    assert equity == [100_000.0, 100_050.0, 100_100.0]


def test_the_first_day_of_the_day_count_has_its_return() -> None:
    """Trading day 0 (1970-01-01 in New York) is a day like any other."""
    config = load_config(risk={"fixed_quantity": 100})
    engine = Engine(config, ScriptedStrategy([]), SimBroker(config.execution))
    day0 = (5 + 14) * 3_600 * 10**9  # 14:00 New York, 1970-01-01
    engine.on_bar(Bar("SPY", day0, 100, 100, 100, 100, 1e6))
    engine.on_bar(Bar("SPY", day0 + 24 * 3_600 * 10**9, 100, 100, 100, 100, 1e6))
    assert engine.stats.daily_returns == [0.0]
