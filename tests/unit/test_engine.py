"""The engine's per-bar order: next-bar fills, no look-ahead, stops, breakers, restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from gnosis.core.config import load_config
from gnosis.model.events import DecisionMade, OrderFilled, OrderSubmitted, PositionClosed
from gnosis.model.types import Bar, TradingState
from gnosis.strategies.sma_crossover import SmaCrossover
from gnosis.trading.engine import Engine
from gnosis.trading.sim_broker import SimBroker
from gnosis.trading.state import StateStore
from tests.conftest import MINUTE, T0, interleave, random_walk_bars


def engine_for(config=None, store: StateStore | None = None, strategy=None) -> Engine:
    config = config or load_config()
    return Engine(config, strategy or SmaCrossover(5, 20), SimBroker(config.execution),
                  store=store)


def run(engine: Engine, bars: list[Bar]) -> list:
    decisions = []
    engine.bus.subscribe(DecisionMade, decisions.append)
    for bar in bars:
        engine.on_bar(bar)
    return decisions


def test_orders_fill_only_on_a_later_bar(walk: list[Bar]) -> None:
    engine = engine_for()
    submitted: dict[str, int] = {}
    fills = []
    engine.bus.subscribe(OrderSubmitted, lambda e: submitted.__setitem__(
        e.order.client_order_id, e.ts_event))
    engine.bus.subscribe(OrderFilled, lambda e: fills.append(e.fill))
    run(engine, walk)
    market_fills = [f for f in fills if f.client_order_id in submitted]
    assert len(market_fills) > 20
    for fill in market_fills:
        assert fill.ts_event > submitted[fill.client_order_id]


@pytest.mark.parametrize("k", [100, 1_234, 3_000])
def test_truncating_the_future_never_changes_past_decisions(walk: list[Bar], k: int) -> None:
    full = run(engine_for(), walk)
    prefix = run(engine_for(), walk[:k])
    key = [(e.ts_event, e.decision.signal, e.quantity) for e in full[:k]]
    assert key == [(e.ts_event, e.decision.signal, e.quantity) for e in prefix]


def test_time_stop_exits_after_max_bars_held(walk: list[Bar]) -> None:
    config = load_config(positions={"max_bars_held": 5}, risk={"brackets": False})
    engine = engine_for(config)
    trades = []
    engine.bus.subscribe(PositionClosed, lambda e: trades.append(e.trade))
    run(engine, walk)
    reasons = {t.exit_reason for t in trades}
    assert "time_stop" in reasons
    assert all(t.bars_held <= 7 for t in trades if t.exit_reason == "time_stop")


@pytest.mark.parametrize("direction", [1, -1])
def test_brackets_produce_stop_and_target_exits(direction: int) -> None:
    bars = random_walk_bars(20_000, seed=3, sigma=0.002)
    config = load_config(positions={"max_bars_held": 100_000},
                         risk={"max_drawdown_pct": 0.9, "daily_loss_limit_pct": 0.9})
    engine = engine_for(config, strategy=AlwaysLong(direction))
    trades = []
    engine.bus.subscribe(PositionClosed, lambda e: trades.append(e.trade))
    run(engine, bars)
    reasons = {t.exit_reason for t in trades}
    assert {"stop_loss", "take_profit"} <= reasons
    assert {t.side for t in trades} == {"long" if direction > 0 else "short"}
    for trade in trades:  # a stop loses and a target wins, whichever the side
        gross = (trade.exit_price - trade.entry_price) * (1 if trade.side == "long" else -1)
        assert (gross < 0) if trade.exit_reason == "stop_loss" else (gross > 0)


def test_drawdown_breaker_flattens_and_halts() -> None:
    up = random_walk_bars(300, seed=5, sigma=0.0005, drift=0.0003)
    crash_start = up[-1].close
    crash = [
        Bar("SPY", T0 + (300 + i) * MINUTE, crash_start * 0.99**i, crash_start * 0.99**i,
            crash_start * 0.99 ** (i + 1), crash_start * 0.99 ** (i + 1), 1e5)
        for i in range(60)
    ]
    config = load_config(risk={"max_position_pct": 0.3, "max_total_exposure_pct": 0.3,
                               "brackets": False, "max_drawdown_pct": 0.05,
                               "daily_loss_limit_pct": 0.5})
    engine = engine_for(config, strategy=AlwaysLong())
    trades = []
    engine.bus.subscribe(PositionClosed, lambda e: trades.append(e.trade))
    run(engine, up + crash)
    assert engine.trading_state is TradingState.HALTED
    assert engine.positions.positions == {}
    assert trades and trades[-1].exit_reason == "circuit_breaker"


class AlwaysLong:
    """Wants a position in one direction on every bar."""

    name = "always"

    def __init__(self, direction: int = 1) -> None:
        self.direction = direction

    def on_bar(self, bar: Bar):
        from gnosis.model.types import Decision

        return Decision(bar.symbol, bar.ts_event, self.direction, 0.9)

    def snapshot(self):
        return None

    def restore(self, state) -> None:
        pass


def test_portfolio_limits_hold_across_many_symbols() -> None:
    series = [random_walk_bars(3_000, seed=20 + i, symbol=s) for i, s in
              enumerate(("SPY", "QQQ", "IWM", "DIA", "AAPL"))]
    engine = engine_for(load_config(strategy={"name": "sma"}), strategy=AlwaysLong())
    worst_count, worst_exposure = 0, 0.0
    for bar in interleave(*series):
        engine.on_bar(bar)
        worst_count = max(worst_count, len(engine.positions.positions))
        worst_exposure = max(worst_exposure,
                             engine.positions.gross_exposure / engine.positions.equity)
    assert worst_count == 3
    assert worst_exposure <= 0.30 * 1.02  # sized at the decision close, filled at the next open


def test_restart_from_the_store_resumes_exactly(tmp_path: Path, walk: list[Bar]) -> None:
    uninterrupted = engine_for()
    run(uninterrupted, walk)

    first = engine_for(store=StateStore(tmp_path))
    run(first, walk[:2_345])
    first.store.close()  # the process "dies" here: only committed state survives
    second = engine_for(store=StateStore(tmp_path))
    assert second.resume_from_store() and second.sequence == 2_345
    run(second, walk[second.sequence:])
    assert second.summary() == uninterrupted.summary()
    trades = second.store.rows("trades")
    assert len(trades) == uninterrupted.positions.trade_count
    ids = [row["client_order_id"] for row in second.store.rows("orders")]
    second.store.close()
    assert len(ids) == len(set(ids))


def test_duplicate_and_out_of_order_bars_are_quarantined_not_processed(walk: list[Bar]) -> None:
    engine = engine_for()
    bars = walk[:100]
    stream = bars[:50] + [bars[49], bars[10]] + bars[50:]
    decisions = run(engine, stream)
    assert len(decisions) == 100
    assert engine.quarantined == {"duplicate": 1, "out_of_order": 1}
    assert engine.summary()["quarantined_bars"] == {"duplicate": 1, "out_of_order": 1}


def test_stream_quarantine_counts_bad_records() -> None:
    from gnosis.data.quarantine import Quarantine

    quarantine = Quarantine()
    good = dict(symbol="SPY", ts_event=0, open=1.0, high=1.0, low=1.0, close=1.0, volume=1.0)
    assert quarantine.bar(**good) is not None
    assert quarantine.bar(**{**good, "close": float("nan")}) is None
    assert quarantine.bar(**{**good, "high": 0.5}) is None
    assert quarantine.bar(**{**good, "volume": "lots"}) is None
    assert quarantine.counts == {"invalid_values": 2, "malformed": 1}


class RegimeScript:
    """Decides nothing, but reports the regimes a table gives (and an agent error count)."""

    name = "regimes"

    def __init__(self, regimes: list[str | None]) -> None:
        from collections import Counter

        self.regimes = regimes
        self.i = -1
        self.agent_errors = Counter({"hedge": 2})

    def on_bar(self, bar: Bar):
        from gnosis.model.types import Decision

        self.i += 1
        return Decision(bar.symbol, bar.ts_event, 0, 0.0, regime=self.regimes[self.i],
                        regime_confidence=0.5 + self.i / 100)

    def snapshot(self):
        return self.i

    def restore(self, state) -> None:
        self.i = state


def test_regime_changes_are_published_once_per_change_per_symbol(walk: list[Bar]) -> None:
    from gnosis.model.events import RegimeChanged

    regimes = ["warming_up", "ranging", "ranging", None, "volatile", "volatile", "calm"]
    engine = engine_for(strategy=RegimeScript(regimes))
    changes: list[RegimeChanged] = []
    engine.bus.subscribe(RegimeChanged, changes.append)
    run(engine, walk[: len(regimes)])
    assert [(c.previous, c.current, c.confidence) for c in changes] == [
        ("warming_up", "ranging", 0.51), ("ranging", "volatile", 0.54),
        ("volatile", "calm", 0.56)]
    assert all(c.symbol == "SPY" and c.ts_event == walk[i].ts_event
               for c, i in zip(changes, (1, 4, 6)))
    assert engine.summary()["agent_errors"] == {"hedge": 2}


def test_notes_and_operator_commands_are_journaled(tmp_path: Path, walk: list[Bar]) -> None:
    store = StateStore(tmp_path)
    engine = engine_for(store=store)
    run(engine, walk[:3])
    engine.note("operator command: halt (lunch)", command="halt")
    engine.halt("lunch")
    engine.commit_now()
    rows = [(r["kind"], r["message"]) for r in store.rows("events")]
    store.close()
    assert rows == [("notice", "operator command: halt (lunch)"),
                    ("trading_state", "active -> halted: lunch")]


def test_the_summary_tallies_votes_abstentions_and_agents_switched_off(walk) -> None:
    from gnosis.model.types import Decision, Vote

    class Voting(RegimeScript):
        def on_bar(self, bar: Bar):
            self.i += 1
            votes = (Vote("hedge", (-1, 0, 1)[self.i % 3], 0.5, "x"),
                     Vote.abstain("sentiment", "no news"))
            return Decision(bar.symbol, bar.ts_event, 0, 0.0, votes=votes,
                            inactive=(("markov", "ranging"),))

    engine = engine_for(strategy=Voting([None] * 7))
    run(engine, walk[:7])
    assert engine.summary()["votes"] == {
        "hedge": {"-1": 3, "0": 2, "1": 2, "abstain": 0, "off": 0},
        "markov": {"-1": 0, "0": 0, "1": 0, "abstain": 0, "off": 7},
        "sentiment": {"-1": 0, "0": 0, "1": 0, "abstain": 7, "off": 0},
    }


def test_a_hold_sends_nothing_and_says_nothing(walk: list[Bar]) -> None:
    """Every DecisionMade of a hold carries quantity 0 and no note; an order's carries its
    signed size."""
    engine = engine_for()
    made: list[DecisionMade] = []
    engine.bus.subscribe(DecisionMade, made.append)
    run(engine, walk)
    holds = [e for e in made if e.decision.signal == 0]
    assert holds and all(e.quantity == 0.0 and e.note == "" for e in holds)
    sent = [e for e in made if e.quantity]
    assert sent and all((e.quantity > 0) == (e.decision.signal > 0) for e in sent)


def test_every_event_reaches_a_late_subscriber_and_a_run_without_a_store_keeps_no_rows() -> None:
    """Events are skipped while nobody listens (the bus is silent), published once anyone
    subscribes; without a store no journal row piles up (nothing would ever take them)."""
    from gnosis.model.events import OrderCanceled, PositionOpened

    bars = random_walk_bars(4_000, seed=3, sigma=0.002)
    engine = engine_for(load_config(positions={"max_bars_held": 30}),
                        strategy=AlwaysLong())
    assert engine.bus.silent
    run(engine, bars[:2_000])
    seen: list[type] = []
    for kind in (OrderFilled, PositionOpened, PositionClosed, OrderCanceled, DecisionMade):
        engine.bus.subscribe(kind, lambda e: seen.append(type(e)))
    assert not engine.bus.silent
    run(engine, bars[2_000:])
    assert {OrderFilled, PositionOpened, PositionClosed, OrderCanceled, DecisionMade} <= set(seen)
    assert seen.count(DecisionMade) == 2_000
    assert engine.positions.trade_count > 20
    assert not (engine._journal_events or engine._journal_fills or engine._journal_orders
                or engine._journal_trades or engine._staged)
