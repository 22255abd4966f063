"""Memory adds no look-ahead: with memory on, a backtest's decisions on the first k bars are
the full run's, and memory did change some of them (so the comparison proves something)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gnosis.bootstrap import build_system, synthetic_market
from gnosis.core.config import load_config
from gnosis.memory import open_memory
from gnosis.model.events import DecisionMade, MemoryRecalled

pytestmark = pytest.mark.slow

FULL = 6_000
PREFIXES = (2_000, 4_000)


def replay(bars: list, memory_on: bool) -> tuple[list[tuple], list, dict]:
    config = load_config(market={"seed": 7})
    memory = open_memory(None, enabled=memory_on, config=config.memory, backtest=True)
    system = build_system(config, MARKET, market=MARKET, memory=memory)
    decisions: list[tuple] = []
    recalls: list = []
    system.bus.subscribe(DecisionMade, lambda e: decisions.append(
        (e.ts_event, e.decision.symbol, e.decision.signal, e.decision.confidence, e.quantity)))
    system.bus.subscribe(MemoryRecalled, recalls.append)
    for bar in bars:
        system.engine.on_bar(bar)
    if memory is not None:
        memory.close()
    return decisions, recalls, system.engine.summary()


def evidence(recall: MemoryRecalled) -> tuple:
    """The recall without the per-run part of episode ids (each engine draws its run id)."""
    advice = recall.advice
    episodes = tuple(replace(e, episode_id=e.episode_id.split("-", 2)[2])
                     for e in advice.episodes)
    return recall.situation.ts_event, replace(advice, episodes=episodes)


MARKET = synthetic_market(load_config(market={"seed": 7}), FULL)


def test_truncating_the_future_never_changes_past_decisions_with_memory_on() -> None:
    bars = list(MARKET.bars())[:FULL]
    full, recalls, summary = replay(bars, memory_on=True)
    effects = summary["memory"]
    assert effects["adjusted"] > 20 and effects["scaled_up"] + effects["scaled_down"] > 10
    for k in PREFIXES:
        prefix, prefix_recalls, _ = replay(bars[:k], memory_on=True)
        assert prefix == full[:k]
        cut = bars[k].ts_event
        assert [evidence(r) for r in prefix_recalls] == \
            [evidence(r) for r in recalls if r.situation.ts_event < cut]
    without, _, _ = replay(bars[:PREFIXES[-1]], memory_on=False)
    changed = sum(a != b for a, b in zip(without, full[:PREFIXES[-1]]))
    assert changed > 10, "memory changed no decision: the truncation check proves nothing"
    for recall in recalls:  # every recalled episode had exited before the decision bar
        assert all(e.exit_ts < recall.situation.ts_event for e in recall.advice.episodes)
