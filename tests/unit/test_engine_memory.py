"""The engine with a scripted memory: what it tallies, and that a failing memory never stops
trading."""

from __future__ import annotations

from gnosis.core.config import load_config
from gnosis.model.events import MemoryRecalled, Notice, PositionClosed
from gnosis.model.memory import MemoryAdvice, MemoryEffects, Situation
from gnosis.model.types import Bar, Decision, Trade
from gnosis.trading.engine import Engine
from gnosis.trading.sim_broker import SimBroker
from tests.conftest import random_walk_bars


class Flip:
    """Long on even hours of bars, short on odd: many entries and exits."""

    name = "flip"

    def __init__(self) -> None:
        self.n = 0

    def on_bar(self, bar: Bar) -> Decision:
        self.n += 1
        return Decision(bar.symbol, bar.ts_event, 1 if (self.n // 30) % 2 == 0 else -1, 0.7)

    def snapshot(self) -> int:
        return self.n

    def restore(self, state: int) -> None:
        self.n = state


class Scripted:
    """Advises a fixed confidence and size scale; records what the engine told it."""

    def __init__(self, confidence: float, scale: float, fail_on: str = "") -> None:
        self.confidence, self.scale, self.fail_on = confidence, scale, fail_on
        self.situations: list[Situation] = []
        self.opened: list[str] = []
        self.closed: list[Trade] = []

    def advise(self, situation: Situation) -> MemoryAdvice:
        if self.fail_on == "advise":
            raise OSError("disk on fire")
        self.situations.append(situation)
        return MemoryAdvice(self.confidence, self.scale, "scripted")

    def open_episode(self, episode_id: str, situation: Situation, **_: object) -> None:
        self.opened.append(episode_id)

    def close_episode(self, episode_id: str, trade: Trade) -> None:
        if self.fail_on == "close":
            raise OSError("disk full")
        self.closed.append(trade)


def run(memory: Scripted | None, bars: int = 3_000) -> tuple[Engine, list]:
    config = load_config(risk={"brackets": False})
    engine = Engine(config, Flip(), SimBroker(config.execution), memory=memory)
    events: list = []
    for kind in (MemoryRecalled, Notice, PositionClosed):
        engine.bus.subscribe(kind, events.append)
    for bar in random_walk_bars(bars, seed=4):
        engine.on_bar(bar)
    return engine, events


def test_neutral_advice_changes_nothing() -> None:
    without, _ = run(None)
    with_memory, events = run(Scripted(0.7, 1.0))
    effects = with_memory.summary()["memory"]
    assert effects["recalls"] > 20 and effects["adjusted"] == 0
    summary = with_memory.summary()
    summary.pop("memory")
    assert summary == without.summary()
    assert "memory" not in without.summary()
    assert sum(isinstance(e, MemoryRecalled) for e in events) == effects["recalls"]


def test_scaling_down_is_tallied_and_shrinks_orders() -> None:
    memory = Scripted(0.7, 0.5)
    engine, events = run(memory)
    effects = engine.summary()["memory"]
    assert effects["scaled_down"] > 10 and effects["scaled_up"] == 0
    assert effects["mean_size_scale"] == 0.5
    trades = [e.trade for e in events if isinstance(e, PositionClosed)]
    assert {t.entry_order_id for t in trades} <= set(memory.opened)
    assert [t.entry_order_id for t in memory.closed] == [t.entry_order_id for t in trades]
    baseline, _ = run(None)
    assert engine.positions.total_fees < baseline.positions.total_fees  # smaller orders


def test_a_confidence_cut_below_the_kelly_edge_is_a_refusal_by_memory() -> None:
    engine, _ = run(Scripted(0.3, 1.0))  # 0.3 at 2:1 has no Kelly edge; 0.7 has
    effects = engine.summary()["memory"]
    assert effects["refused_by_memory"] == effects["recalls"] > 10
    assert effects["refused_rules"] == {"no_kelly_edge": effects["recalls"]}
    assert engine.summary()["trades"] == 0


def test_effects_tally_every_case() -> None:
    effects = MemoryEffects()
    advice = MemoryAdvice(0.6, 1.2, "x")
    effects.count(0.5, advice, 12.0, 10.0, None)
    effects.count(0.5, advice, 8.0, 10.0, None)
    effects.count(0.5, advice, 10.0, 10.0, None)
    effects.count(0.5, advice, None, 10.0, "zero_size")
    effects.count(0.5, advice, 10.0, None, None)
    effects.count(0.5, MemoryAdvice(0.5, 1.0, "neutral"), 10.0, 10.0, None)
    assert effects.as_dict() == {
        "recalls": 6, "adjusted": 5, "scaled_up": 1, "scaled_down": 1, "same_size": 1,
        "refused_by_memory": 1, "refused_rules": {"zero_size": 1}, "admitted_by_memory": 1,
        "mean_confidence_change": round(0.5 / 6, 6), "mean_size_scale": round(7.0 / 6, 6),
    }


def test_a_failing_memory_is_dropped_with_a_notice_and_trading_goes_on() -> None:
    baseline, _ = run(None)
    for failure in ("advise", "close"):
        engine, events = run(Scripted(0.7, 1.0, fail_on=failure))
        notices = [e for e in events if isinstance(e, Notice)]
        assert len(notices) == 1 and notices[0].details == {"component": "memory"}
        assert "trading on without it" in notices[0].message
        assert engine.memory is None and engine.summary()["memory"]["available"] is False
        assert engine.summary()["trades"] == baseline.summary()["trades"]
