"""The live loop: warm-up history, live-bar budgets and restarts after the warm-up."""

from __future__ import annotations

import time
from pathlib import Path

from gnosis.core.config import load_config
from gnosis.data.synthetic import SyntheticMarket
from gnosis.model.events import DecisionMade, Notice, OrderSubmitted
from gnosis.strategies.sma_crossover import SmaCrossover
from gnosis.trading.engine import Engine
from gnosis.trading.live_bot import LiveBot
from gnosis.trading.sim_broker import SimBroker
from gnosis.trading.state import StateStore

FAST = 1e9  # no pacing


def make_engine(store: StateStore | None = None) -> Engine:
    config = load_config()
    return Engine(config, SmaCrossover(3, 8), SimBroker(config.execution), store=store)


def market() -> SyntheticMarket:
    return SyntheticMarket(("SPY",), seed=5, start="2024-03-04", days=2)


def test_warm_up_feeds_the_strategy_but_never_trades() -> None:
    feed = market()
    warmup = feed.bars_in_sessions(1)
    engine = make_engine()
    submitted, decided, notices = [], [], []
    engine.bus.subscribe(OrderSubmitted, submitted.append)
    engine.bus.subscribe(DecisionMade, decided.append)
    engine.bus.subscribe(Notice, notices.append)
    summary = LiveBot(engine, feed, speed=FAST, max_bars=60, warmup_bars=warmup).run()

    first_live = list(feed.bars())[warmup].ts_event
    assert summary["bars"] == 60  # the budget counts live bars only
    assert engine.sequence == warmup + 60
    assert decided[0].ts_event == first_live
    assert submitted and all(e.ts_event >= first_live for e in submitted)
    assert any("warmed up on 390 history bars" in n.message for n in notices)


def test_decisions_after_warm_up_match_a_run_that_saw_every_bar() -> None:
    feed = market()
    warmup = feed.bars_in_sessions(1)
    warmed = make_engine()
    live = []
    warmed.bus.subscribe(DecisionMade, live.append)
    LiveBot(warmed, feed, speed=FAST, max_bars=200, warmup_bars=warmup).run()

    plain = make_engine()
    every = []
    plain.bus.subscribe(DecisionMade, every.append)
    for bar in list(feed.bars())[: warmup + 200]:
        plain.on_bar(bar)
    assert [e.decision.signal for e in live] == [e.decision.signal for e in every[warmup:]]
    assert sum(1 for e in live if e.decision.signal) > 5  # the comparison is not all zeros


def test_a_restart_after_the_warm_up_does_not_redo_it(tmp_path: Path) -> None:
    feed = market()
    warmup = feed.bars_in_sessions(1)
    first = make_engine(StateStore(tmp_path))
    LiveBot(first, feed, speed=FAST, max_bars=30, warmup_bars=warmup).run()
    first.store.close()

    again = make_engine(StateStore(tmp_path))
    notices = []
    again.bus.subscribe(Notice, notices.append)
    LiveBot(again, feed, speed=FAST, max_bars=80, warmup_bars=warmup).run()
    assert again.sequence == warmup + 80
    assert not any("warmed up" in n.message for n in notices)
    assert any("resumed after bar #420" in n.message for n in notices)
    again.store.close()


def test_a_stop_takes_effect_at_the_next_bar_however_many_are_queued() -> None:
    """Ctrl-C at any speed: the core checks for a stop before every bar, so bars already
    queued (up to 10,000 at full speed) are not drained first."""
    feed = SyntheticMarket(("SPY",), seed=5, start="2024-03-04", days=30)
    engine = make_engine()
    bot = LiveBot(engine, feed, speed=FAST, warmup_bars=0)
    seen: list[DecisionMade] = []

    def stop_at_500(event: DecisionMade) -> None:
        seen.append(event)
        if len(seen) == 500:
            while bot.queue.qsize() < 1_000:  # let the feed run far ahead of the core
                time.sleep(0.01)
            bot.stop()

    engine.bus.subscribe(DecisionMade, stop_at_500)
    bot.run()
    assert len(seen) == 500
    assert bot.queue.qsize() >= 1_000  # they were waiting, and were not processed


def test_commands_jump_the_bar_queue() -> None:
    feed = SyntheticMarket(("SPY",), seed=5, start="2024-03-04", days=30)
    engine = make_engine()
    bot = LiveBot(engine, feed, speed=FAST, warmup_bars=0)
    states: list[tuple[int, str]] = []

    def at_bar(event: DecisionMade) -> None:
        count = engine.stats.bars
        if count == 100:
            while bot.queue.qsize() < 1_000:
                time.sleep(0.01)
            bot.command("halt", "test")
        states.append((count, engine.trading_state.value))
        if count == 102:
            bot.stop()

    engine.bus.subscribe(DecisionMade, at_bar)
    bot.run()
    assert states[-3:] == [(100, "active"), (101, "halted"), (102, "halted")]


def test_the_default_warm_up_leaves_every_symbols_hmm_in_effect() -> None:
    """`gnosis run`'s default history covers the HMM's first fit, its symbol stagger and the
    session a fit takes to take effect: the first live bar has HMM probabilities."""
    from gnosis.bootstrap import build_strategy

    config = load_config(market={"symbols": ("SPY", "QQQ", "IWM")})
    days = config.market.warmup_days
    feed = SyntheticMarket(config.market.symbols, seed=5, start="2024-03-04", days=days + 1)
    strategy = build_strategy(config, feed)
    engine = Engine(config, strategy, SimBroker(config.execution))
    decided: list[DecisionMade] = []
    engine.bus.subscribe(DecisionMade, decided.append)
    LiveBot(engine, feed, speed=FAST, max_bars=3,
            warmup_bars=feed.bars_in_sessions(days)).run()
    assert len(decided) == 3
    assert all(d.decision.regime_state.hmm_probabilities is not None for d in decided)


def test_bars_that_arrive_together_commit_together_at_most_a_cap_at_a_time(
        tmp_path: Path, monkeypatch) -> None:
    """With the feed far ahead of the core, bars commit in groups (when the queue empties,
    or at the cap); every bar still gets its journal rows under its own sequence."""
    from gnosis.trading import live_bot

    monkeypatch.setattr(live_bot, "_MAX_UNCOMMITTED_BARS", 25)
    store = StateStore(tmp_path)
    commits: list[int] = []
    commit = store.commit

    def counting(sequence, snapshot, **kwargs):  # noqa: ANN001, ANN202 - a spy on the store
        commits.append(sum(1 for rows in kwargs.get("journal", ()) if rows.equity is not None))
        return commit(sequence, snapshot, **kwargs)

    monkeypatch.setattr(store, "commit", counting)
    feed = market()
    engine = make_engine(store)
    LiveBot(engine, feed, speed=FAST, max_bars=400, warmup_bars=0).run()
    assert sum(commits) == 400 and max(commits) <= 25
    assert len(commits) < 400  # grouped: the feed ran ahead of the core
    sequences = [row["sequence"] for row in store.rows("equity")]
    assert sequences == list(range(1, 401))
    store.close()
