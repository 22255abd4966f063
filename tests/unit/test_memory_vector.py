"""The situation vector: each component's position and scaling, and what it does for cosine."""

from __future__ import annotations

import math

import pytest

from gnosis.memory.vector import (
    AGENTS,
    COMPONENTS,
    DIMENSION,
    agreement,
    net_vote,
    situation_vector,
    volatility_component,
)
from gnosis.model.memory import Situation
from gnosis.model.regime import HMM_LABELS, REGIMES, RegimeState
from gnosis.model.types import Vote

T0 = 1_704_205_800_000_000_000
MINUTE = 60 * 10**9


def situation(signal: int = 1, confidence: float = 0.75, regime: str | None = "trending_up",
              regime_confidence: float | None = 0.9, state: RegimeState | None = None,
              votes: tuple[Vote, ...] = ()) -> Situation:
    return Situation("SPY", T0, T0 + MINUTE, signal, confidence, regime, regime_confidence,
                     state, votes, 450.0)


def at(vector: tuple[float, ...], name: str) -> float:
    return vector[COMPONENTS.index(name)]


def test_components_are_named_once_and_sized() -> None:
    assert len(COMPONENTS) == DIMENSION == len(set(COMPONENTS)) == 24
    assert COMPONENTS[:2] == ("signal", "confidence")
    assert COMPONENTS[-1] == "net_vote"


def test_each_component_is_scaled_as_documented() -> None:
    state = RegimeState("trending_up", 0.9, trend_strength=-0.4, volatility=0.30,
                        range_position=0.25, hmm_state="ranging",
                        hmm_probabilities=(0.1, 0.0, 0.7, 0.2, 0.0))
    votes = (Vote("hedge", 1, 0.8, "gamma"), Vote("liquidity", -1, 0.5, "zone"),
             Vote("sentiment", 1, 0.4, "news"), Vote.abstain("markov", "no HMM"))
    v = situation(signal=-1, confidence=0.75, regime_confidence=0.9, state=state, votes=votes)
    vector = situation_vector(v)
    assert at(vector, "signal") == -1.0
    assert at(vector, "confidence") == pytest.approx(0.5)  # 2c - 1
    assert [at(vector, f"regime_{r}") for r in REGIMES] == [
        1.0 if r == "trending_up" else 0.0 for r in REGIMES]
    assert at(vector, "regime_confidence") == pytest.approx(0.8)
    assert at(vector, "trend_strength") == pytest.approx(-0.4)
    assert at(vector, "volatility") == pytest.approx(math.tanh(math.log(2.0)))
    assert at(vector, "range_position") == pytest.approx(-0.5)
    assert [at(vector, f"hmm_{label}") for label in HMM_LABELS] == [0.1, 0.0, 0.7, 0.2, 0.0]
    assert at(vector, "agent_hedge") == pytest.approx(0.8)
    assert at(vector, "agent_liquidity") == pytest.approx(-0.5)
    assert at(vector, "agent_sentiment") == pytest.approx(0.4)
    assert at(vector, "agent_wyckoff") == 0.0  # switched off: no vote at all
    assert at(vector, "agent_markov") == 0.0  # abstained
    assert at(vector, "net_vote") == pytest.approx(1 / 3)  # (+1 - 1 + 1) / 3 voting


def test_missing_inputs_are_neutral_zeros_and_the_vector_is_never_zero() -> None:
    vector = situation_vector(situation(confidence=0.5, regime=None, regime_confidence=None))
    assert vector[0] == 1.0
    assert all(value == 0.0 for value in vector[1:])


def test_values_outside_the_range_are_clipped() -> None:
    state = RegimeState("volatile", 1.0, trend_strength=3.0, volatility=50.0,
                        range_position=4.0, hmm_probabilities=(2.0, -1.0, 0.0, 0.0, 0.0))
    vector = situation_vector(situation(state=state))
    assert all(-1.0 <= value <= 1.0 for value in vector)
    assert at(vector, "range_position") == 1.0
    assert at(vector, "hmm_trending_up") == 1.0 and at(vector, "hmm_trending_down") == 0.0


@pytest.mark.parametrize(("volatility", "expected"), [
    (0.15, 0.0), (0.0, 0.0), (math.nan, 0.0), (0.075, math.tanh(math.log(0.5))),
])
def test_volatility_is_a_squashed_log_ratio(volatility: float, expected: float) -> None:
    assert volatility_component(volatility) == pytest.approx(expected)


def test_halving_and_doubling_volatility_are_symmetric() -> None:
    assert volatility_component(0.30) == pytest.approx(-volatility_component(0.075))


def test_unknown_agents_are_ignored_and_known_ones_keep_their_slot() -> None:
    votes = (Vote("oracle", 1, 1.0, "?"), Vote("markov", -1, 0.6, "hmm"))
    vector = situation_vector(situation(votes=votes))
    assert [at(vector, f"agent_{a}") for a in AGENTS] == [0.0, 0.0, 0.0, 0.0, -0.6]
    assert at(vector, "net_vote") == 0.0  # the unknown agent still voted: (+1 - 1) / 2


def test_agreement_counts_only_voting_agents() -> None:
    votes = (Vote("hedge", 1, 0.5, ""), Vote("liquidity", 1, 0.5, ""),
             Vote("sentiment", -1, 0.5, ""), Vote.abstain("markov", ""))
    assert agreement(votes, 1) == pytest.approx(2 / 3)
    assert agreement(votes, -1) == pytest.approx(1 / 3)
    assert agreement((Vote.abstain("markov", ""),), 1) is None
    assert net_vote(()) == 0.0


def cosine(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_similar_situations_are_closer_than_different_ones() -> None:
    base = RegimeState("trending_up", 0.8, trend_strength=0.6, volatility=0.2,
                       range_position=0.8)
    votes = (Vote("hedge", 1, 0.7, ""), Vote("wyckoff", 1, 0.6, ""))
    a = situation_vector(situation(state=base, votes=votes))
    b = situation_vector(situation(confidence=0.7, state=base, votes=votes))
    opposite = situation_vector(situation(
        signal=-1, regime="trending_down",
        state=RegimeState("trending_down", 0.8, trend_strength=-0.6, volatility=0.2,
                          range_position=0.2),
        votes=(Vote("hedge", -1, 0.7, ""), Vote("wyckoff", -1, 0.6, ""))))
    assert cosine(a, b) > 0.99
    assert cosine(a, opposite) < 0.0
