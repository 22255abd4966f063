"""The default strategy end to end on the synthetic market: causal, restorable, and alive."""

from __future__ import annotations

import pickle
from collections import Counter

import pytest

from gnosis.agents import AGENT_NAMES
from gnosis.data.synthetic import SyntheticMarket
from gnosis.model.regime import REGIMES, WARMING_UP
from gnosis.model.types import Bar, Decision
from gnosis.regime.detector import RegimeDetector
from gnosis.strategies.ensemble import AgentEnsemble

BARS = 8_000
REFIT_EVERY = 2_000  # HMM fits at bars 600, 2600, 4600, 6600: several inside the run


def ensemble(market: SyntheticMarket) -> AgentEnsemble:
    return AgentEnsemble(seed=7, phase_of=market.phase_at, detector_factory=lambda: (
        RegimeDetector(seed=7, hmm_refit_every=REFIT_EVERY)))


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return SyntheticMarket(symbols=("SPY",), seed=7, days=21)


@pytest.fixture(scope="module")
def bars(market: SyntheticMarket) -> list[Bar]:
    return list(market.bars())[:BARS]


@pytest.fixture(scope="module")
def decisions(market: SyntheticMarket, bars: list[Bar]) -> list[Decision]:
    strategy = ensemble(market)
    return [strategy.on_bar(bar) for bar in bars]


def run(market: SyntheticMarket, bars: list[Bar]) -> list[Decision]:
    strategy = ensemble(market)
    return [strategy.on_bar(bar) for bar in bars]


@pytest.mark.slow
@pytest.mark.parametrize("k", [60, 599, 601, 2_601, 4_700, 6_599, 6_601])
def test_truncating_the_future_changes_no_past_decision(
    market: SyntheticMarket, bars: list[Bar], decisions: list[Decision], k: int
) -> None:
    # k sits just before and after HMM refits: a decision at bar t depends only on bars <= t.
    assert run(market, bars[:k]) == decisions[:k]


@pytest.mark.slow
@pytest.mark.parametrize("cut", [3_333, 4_600])
def test_snapshot_and_restore_mid_run_continues_identically(
    market: SyntheticMarket, bars: list[Bar], decisions: list[Decision], cut: int
) -> None:
    first = ensemble(market)
    for bar in bars[:cut]:
        first.on_bar(bar)
    state = pickle.loads(pickle.dumps(first.snapshot()))  # as the state store would keep it
    second = ensemble(market)
    second.restore(state)
    assert [second.on_bar(bar) for bar in bars[cut:]] == decisions[cut:]


def test_every_agent_votes_both_ways_and_the_gated_ones_switch(
    decisions: list[Decision],
) -> None:
    signals: dict[str, Counter[int]] = {name: Counter() for name in AGENT_NAMES}
    inactive: Counter[str] = Counter()
    for decision in decisions:
        for vote in decision.votes:
            if not vote.abstained:
                signals[vote.agent][vote.signal] += 1
            assert vote.reasoning
        for name, why in decision.inactive:
            assert why
            inactive[name] += 1
    for name in AGENT_NAMES:
        assert signals[name][1] > 0 and signals[name][-1] > 0, (name, signals[name])
    for gated in ("wyckoff", "markov"):
        assert 0 < inactive[gated] < len(decisions), (gated, inactive[gated])
    for always in ("hedge", "liquidity", "sentiment"):
        assert inactive[always] == 0
    taken = Counter(d.signal for d in decisions)
    assert taken[1] > 0 and taken[-1] > 0, taken


def test_regimes_are_varied(decisions: list[Decision]) -> None:
    counts = Counter(d.regime for d in decisions if d.regime != WARMING_UP)
    assert set(counts) <= set(REGIMES)
    assert len(counts) >= 5, counts
    assert max(counts.values()) <= 0.6 * sum(counts.values()), counts
