"""Table-driven engine scenarios: OHLCV rows + signals → the fills and exits that must follow.

Every row is ``(open, high, low, close, volume, signal)``; the signal is decided on the row's
close, so an entry fills at the next row's open. Fees and slippage are zero, every entry is
100 shares, the stop is 2% and the target 4% from the decision's close (100 → 98 / 104 for a
long). The lifecycle invariants (tests/support/invariants.py) are checked after every row.
"""

from __future__ import annotations

import pytest

from gnosis.model.types import TradingState
from tests.support.scenario import run_rows

FIXED_STOP = {"stop_loss_pct": 0.02, "max_stop_loss_pct": 0.02}
FLAT = (100.0, 100.4, 99.6, 100.0, 10_000, 0)

SCENARIOS = [
    pytest.param(
        [(100, 100, 100, 100, 10_000, 1),
         (100, 101, 99, 100.5, 10_000, 0),
         (101, 105, 100.5, 104.5, 10_000, 0)],
        {}, {}, {},
        [(1, "entry", 100.0, 100), (2, "take_profit", 104.0, 100)],
        [("long", "take_profit", 400.0)],
        id="long reaches its target",
    ),
    pytest.param(
        [(100, 100, 100, 100, 10_000, 1),
         (100, 101, 99, 100.5, 10_000, 0),
         (99.5, 99.6, 97.5, 97.8, 10_000, 0)],
        {}, {}, {},
        [(1, "entry", 100.0, 100), (2, "stop_loss", 98.0, 100)],
        [("long", "stop_loss", -200.0)],
        id="long stopped inside the bar",
    ),
    pytest.param(
        [(100, 100, 100, 100, 10_000, 1),
         (100, 101, 99, 100.5, 10_000, 0),
         (96, 96.5, 95.5, 96.2, 10_000, 0)],
        {}, {}, {},
        [(1, "entry", 100.0, 100), (2, "stop_loss", 96.0, 100)],
        [("long", "stop_loss", -400.0)],
        id="long gaps through its stop: filled at the open",
    ),
    pytest.param(
        [(100, 100, 100, 100, 10_000, -1),
         (100, 101, 99, 99.5, 10_000, 0),
         (103, 103.5, 102.5, 103.2, 10_000, 0)],
        {}, {}, {},
        [(1, "entry", 100.0, 100), (2, "stop_loss", 103.0, 100)],
        [("short", "stop_loss", -300.0)],
        id="short gaps through its stop: filled at the open",
    ),
    pytest.param(
        [(100, 100, 100, 100, 10_000, -1),
         (100, 101, 99, 99.5, 10_000, 0),
         (97, 97.5, 95.5, 95.8, 10_000, 0)],
        {}, {}, {},
        [(1, "entry", 100.0, 100), (2, "take_profit", 96.0, 100)],
        [("short", "take_profit", 400.0)],
        id="short reaches its target",
    ),
    pytest.param(
        # 10% participation: 30 of 100 shares fill at bar 1's open; the same bar falls through
        # the stop, which has no volume left there and fills at bar 2's open; that first exit
        # fill cancels the 70 shares the entry never got
        [(100, 100, 100, 100, 10_000, 1),
         (100, 100.2, 97, 97.5, 300, 0),
         (97.2, 97.6, 96.8, 97.0, 300, 0),
         (97.0, 97.4, 96.6, 97.1, 300, 0)],
        {}, {"max_participation": 0.1}, {},
        [(1, "entry", 100.0, 30), (2, "stop_loss", 97.2, 30)],
        [("long", "stop_loss", -84.0)],
        id="partial entry closed early: its remainder is canceled",
    ),
    pytest.param(
        # the stop leg obeys the participation cap: 30 shares a bar, the rest at later opens
        [(100, 100, 100, 100, 10_000, 1),
         (100, 100.5, 99.5, 100.2, 10_000, 0),
         (99.5, 99.6, 97.5, 97.8, 300, 0),
         (97.5, 97.9, 97.1, 97.4, 300, 0),
         (97.3, 97.5, 96.9, 97.0, 300, 0),
         (97.1, 97.2, 96.5, 96.8, 300, 0)],
        {}, {"max_participation": 0.1}, {},
        [(1, "entry", 100.0, 100), (2, "stop_loss", 98.0, 30), (3, "stop_loss", 97.5, 30),
         (4, "stop_loss", 97.3, 30), (5, "stop_loss", 97.1, 10)],
        [("long", "stop_loss", -60.0 - 75.0 - 81.0 - 29.0)],
        id="a stop larger than the bar's volume fills over several bars",
    ),
    pytest.param(
        [(100, 100, 100, 100, 10_000, 1), FLAT, FLAT, FLAT, FLAT,
         (100.2, 100.4, 99.8, 100.1, 10_000, 0), FLAT],
        {}, {}, {"max_bars_held": 3},
        [(1, "entry", 100.0, 100), (5, "time_stop", 100.2, 100)],
        [("long", "time_stop", 20.0)],
        id="time stop after max bars held",
    ),
    pytest.param(
        [(100, 100, 100, 100, 10_000, 1), FLAT,
         (100, 100.4, 99.6, 100, 10_000, -1),
         (100.5, 100.6, 100.1, 100.3, 10_000, 0), FLAT],
        {}, {}, {},
        [(1, "entry", 100.0, 100), (3, "signal_reversal", 100.5, 100)],
        [("long", "signal_reversal", 50.0)],
        id="a reversal exits and does not enter on the same bar",
    ),
]


@pytest.mark.parametrize(("rows", "risk", "execution", "positions", "fills", "trades"),
                         SCENARIOS)
def test_scenario(rows, risk, execution, positions, fills, trades) -> None:
    outcome = run_rows(rows, risk={**FIXED_STOP, **risk}, execution=execution,
                       positions=positions)
    assert outcome.fills == fills
    assert [(t.side, t.exit_reason, round(t.pnl, 6)) for t in outcome.trades] == trades
    engine = outcome.engine
    assert engine.positions.positions == {}
    assert engine.broker.working() == []


def test_reducing_cancels_a_working_entry_at_once() -> None:
    """Daily loss limit $30: 30 of 100 shares fill at 100 and close at 98.5 (-$45); the 70
    unfilled shares are canceled on that bar, the filled 30 stay protected by their bracket."""
    rows = [(100, 100, 100, 100, 10_000, 1),
            (100, 100.1, 98.4, 98.5, 300, 0),
            (98.5, 98.9, 98.3, 98.6, 300, 0),
            (98.6, 98.9, 98.3, 98.7, 300, 0)]
    outcome = run_rows(rows, risk={**FIXED_STOP, "daily_loss_limit_pct": 0.0003},
                       execution={"max_participation": 0.1})
    engine = outcome.engine
    assert engine.trading_state is TradingState.REDUCING
    assert outcome.canceled == [(1, "0000001-SPY", "trading reducing")]
    assert outcome.fills == [(1, "entry", 100.0, 30)]
    assert engine.positions.positions["SPY"].quantity == 30
    assert engine.entry_ticket("SPY") is None
    assert sorted((o.reason, left) for o, left in engine.broker.working()) == [
        ("stop_loss", 30), ("take_profit", 30)]


def test_halted_cancels_entries_and_flattens() -> None:
    """Drawdown breaker at -0.05% ($50): -$54 on 30 filled shares halts on bar 1; the entry's
    remainder and the bracket are canceled, the 30 shares exit at bar 2's open."""
    rows = [(100, 100, 100, 100, 10_000, 1),
            (100, 100.1, 98.1, 98.2, 300, 0),
            (98.3, 98.9, 98.1, 98.6, 300, 1),
            (98.6, 98.9, 98.3, 98.7, 300, 0)]
    outcome = run_rows(rows, risk={**FIXED_STOP, "max_drawdown_pct": 0.0005},
                       execution={"max_participation": 0.1})
    engine = outcome.engine
    assert engine.trading_state is TradingState.HALTED
    assert outcome.fills == [(1, "entry", 100.0, 30), (2, "circuit_breaker", 98.3, 30)]
    assert outcome.canceled == [(1, "0000001-SPY", "trading halted"),
                                (1, "0000001-SPY-sl", "circuit_breaker"),
                                (1, "0000001-SPY-tp", "circuit_breaker")]
    assert engine.positions.positions == {}
    assert engine.broker.working() == []
    assert engine.stats.refusals == {"halted": 1}


def test_slippage_and_shortfall_are_reported_apart() -> None:
    """Decided at 100, next open 101, 10 bps slippage: slippage is the 0.101 paid over the
    open, the shortfall the 1.00 the market moved before the order could execute."""
    rows = [(100, 100, 100, 100, 1_000_000, 1), (101, 101.5, 100.5, 101.2, 1_000_000, 0)]
    outcome = run_rows(rows, risk={**FIXED_STOP, "fixed_quantity": 10},
                       execution={"slippage_bps": 10.0})
    (fill,) = outcome.raw_fills
    assert fill.price == pytest.approx(101.101)
    assert fill.slippage_cost == pytest.approx(1.01)
    assert fill.shortfall_cost == pytest.approx(10.0)
    summary = outcome.engine.summary()
    assert (summary["slippage"], summary["shortfall"]) == (1.01, 10.0)


def test_cancels_are_published_with_their_reasons() -> None:
    """The partial entry closed early: its remainder is canceled by the stop's first fill (the
    target leg, its one-cancels-other sibling, is the broker's to cancel: no engine event)."""
    rows = [(100, 100, 100, 100, 10_000, 1),
            (100, 100.2, 97, 97.5, 300, 0),
            (97.2, 97.6, 96.8, 97.0, 300, 0)]
    outcome = run_rows(rows, risk=FIXED_STOP, execution={"max_participation": 0.1})
    assert outcome.canceled == [(2, "0000001-SPY", "stop_loss fill closes the trade")]
    assert outcome.engine.broker.working() == []


def test_every_event_carries_its_source_and_receive_times() -> None:
    rows = [(100, 100, 100, 100, 10_000, 1), (100, 100.1, 98.1, 98.2, 300, 0),
            (98.3, 98.9, 98.1, 98.6, 300, 1), (98.6, 98.9, 98.3, 98.7, 300, 0)]
    outcome = run_rows(rows, risk={**FIXED_STOP, "max_drawdown_pct": 0.0005},
                       execution={"max_participation": 0.1})
    outcome.engine.note("operator says hello")
    kinds = {event.kind for event in outcome.events}
    assert {"OrderSubmitted", "OrderFilled", "OrderCanceled", "TradingStateChanged",
            "DecisionMade", "BarProcessed", "Notice", "PositionOpened"} <= kinds
    for event in outcome.events:
        assert isinstance(event.ts_event, int) and event.ts_event > 0, event
        assert isinstance(event.ts_init, int) and event.ts_init >= event.ts_event, event


def test_run_stats_from_a_snapshot_before_vote_marks_still_tally() -> None:
    """A state directory written before the engine counted vote-mark combinations restores
    (one field fewer) and its per-agent tallies carry on."""
    import pickle
    from collections import Counter

    from gnosis.trading.engine import RunStats

    old = RunStats(bars=5, votes={"hedge": Counter({"1": 4, "abstain": 1})},
                   decisions=Counter({0: 4, 1: 1}),  # Counters, as pickled then
                   regime_counts=Counter({"ranging": 5}))
    state = old.__getstate__()[:-1]  # as pickled before vote_marks existed
    restored = RunStats.__new__(RunStats)
    restored.__setstate__(state)
    assert type(restored.decisions) is dict and type(restored.regime_counts) is dict
    assert restored.decisions == {0: 4, 1: 1} and restored.regime_counts == {"ranging": 5}
    restored.vote_marks[(("hedge", "1"), ("markov", "off"))] = 2
    again = pickle.loads(pickle.dumps(restored))
    assert again.bars == 5
    assert again.agent_votes() == {"hedge": Counter({"1": 6, "abstain": 1}),
                                   "markov": Counter({"off": 2})}
