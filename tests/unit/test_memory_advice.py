"""Weighting and the bounds of memory's advice (property tests), on plain candidates."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnosis.core.config import ConfigError, MemoryConfig, load_config
from gnosis.memory.advice import (
    NANOS_PER_DAY,
    Candidate,
    advice_from,
    outcome_weight,
    recency_weight,
    similarity_weight,
)
from gnosis.model.memory import Situation

T0 = 1_704_205_800_000_000_000
MINUTE = 60 * 10**9


def situation(signal: int = 1, confidence: float = 0.6, ts: int = T0 + 100 * NANOS_PER_DAY
              ) -> Situation:
    return Situation("SPY", ts, ts + MINUTE, signal, confidence, None, None, None, (), 100.0)


def candidate(n: int, *, signal: int = 1, ret: float = 0.02, similarity: float = 0.95,
              exit_ts: int = T0 + 99 * NANOS_PER_DAY) -> Candidate:
    return Candidate(f"e{n:04d}", "SPY", exit_ts - MINUTE, exit_ts, None, signal, ret,
                     ret * 1000, "take_profit" if ret > 0 else "stop_loss", "", similarity)


def test_weights() -> None:
    assert similarity_weight(0.5, 0.5) == 0.0
    assert similarity_weight(1.0, 0.5) == 1.0
    assert similarity_weight(0.75, 0.5) == pytest.approx(0.5)
    assert recency_weight(0, 30) == 1.0
    assert recency_weight(30 * NANOS_PER_DAY, 30) == pytest.approx(0.5)
    assert recency_weight(90 * NANOS_PER_DAY, 30) == pytest.approx(0.125)
    assert outcome_weight(0.0, 0.01) == 0.25
    assert outcome_weight(-0.005, 0.01) == pytest.approx(0.625)
    assert outcome_weight(0.05, 0.01) == 1.0


def test_no_episode_is_neutral() -> None:
    advice = advice_from(situation(confidence=0.6), [], MemoryConfig())
    assert (advice.confidence, advice.size_scale, advice.episodes) == (0.6, 1.0, ())
    assert advice.win_rate is None and advice.alignment is None


def test_too_few_episodes_report_but_do_not_adjust() -> None:
    advice = advice_from(situation(), [candidate(1), candidate(2)], MemoryConfig())
    assert (advice.confidence, advice.size_scale) == (0.6, 1.0)
    assert len(advice.episodes) == 2 and advice.win_rate == 1.0
    assert "need 3" in advice.reason


def test_winners_in_the_same_direction_raise_and_losers_lower() -> None:
    config = MemoryConfig()
    up = advice_from(situation(), [candidate(i) for i in range(10)], config)
    down = advice_from(situation(), [candidate(i, ret=-0.02) for i in range(10)], config)
    assert up.confidence > 0.6 and up.size_scale > 1.0 and up.alignment == 1.0
    assert down.confidence < 0.6 and down.size_scale < 1.0 and down.alignment == -1.0
    assert up.win_rate == 1.0 and down.win_rate == 0.0


def test_losers_in_the_opposite_direction_support_this_direction() -> None:
    advice = advice_from(situation(signal=1),
                         [candidate(i, signal=-1, ret=-0.02) for i in range(10)], MemoryConfig())
    assert advice.alignment == 1.0 and advice.win_rate == 0.0 and advice.size_scale > 1.0


def test_the_adjustment_follows_the_documented_formula() -> None:
    config = MemoryConfig(prior_weight=3.0, max_confidence_change=0.1,
                          size_scale_bounds=(0.5, 1.5), strength=0.5)
    # 6 identical winners, 2 identical losers; each weighs exactly 1 (similarity 1, age 0,
    # |return| at the outcome scale)
    now = situation().ts_decided
    cands = [candidate(i, similarity=1.0, exit_ts=now, ret=0.01) for i in range(6)]
    cands += [candidate(10 + i, similarity=1.0, exit_ts=now, ret=-0.01) for i in range(2)]
    advice = advice_from(situation(ts=now + 1), cands, config)
    alignment = (6 - 2) / 8
    edge = alignment * 8 / (8 + 3) * 0.5
    assert advice.alignment == pytest.approx(alignment)
    assert advice.confidence == pytest.approx(0.6 + 0.1 * edge)
    assert advice.size_scale == pytest.approx(1.0 + 0.5 * edge)


def test_strength_zero_reports_but_never_adjusts() -> None:
    advice = advice_from(situation(), [candidate(i) for i in range(10)],
                         MemoryConfig(strength=0.0))
    assert (advice.confidence, advice.size_scale) == (0.6, 1.0)
    assert advice.win_rate == 1.0 and len(advice.episodes) == 10


def test_older_episodes_weigh_less() -> None:
    now = situation().ts_decided
    advice = advice_from(situation(), [candidate(1, exit_ts=now - 30 * NANOS_PER_DAY),
                                       candidate(2, exit_ts=now - 60 * NANOS_PER_DAY)],
                         MemoryConfig())
    first, second = advice.episodes
    assert second.weight == pytest.approx(first.weight / 2)


def test_the_same_inputs_give_the_same_advice() -> None:
    cands = [candidate(i, ret=(-1) ** i * 0.01 * i, similarity=0.6 + 0.03 * i)
             for i in range(12)]
    assert advice_from(situation(), cands, MemoryConfig()) == \
        advice_from(situation(), list(cands), MemoryConfig())


def test_memory_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="memory.k"):
        load_config(memory={"k": 0})
    with pytest.raises(ConfigError, match="size_scale_bounds"):
        load_config(memory={"size_scale_bounds": (1.2, 1.5)})
    with pytest.raises(ConfigError, match="unknown setting"):
        load_config(memory={"halflife": 3})
    assert load_config(memory={"strength": 0.5}).memory.strength == 0.5


candidates_strategy = st.lists(
    st.builds(
        candidate,
        st.integers(0, 10_000),
        signal=st.sampled_from([-1, 1]),
        ret=st.floats(-0.2, 0.2, allow_nan=False),
        similarity=st.floats(-1.0, 1.0, allow_nan=False),
        exit_ts=st.integers(T0, T0 + 200 * NANOS_PER_DAY),
    ),
    max_size=40,
)
configs = st.builds(
    MemoryConfig,
    min_similarity=st.floats(-0.9, 0.95),
    min_episodes=st.integers(1, 5),
    half_life_days=st.floats(0.01, 1000),
    prior_weight=st.floats(0, 100),
    strength=st.floats(0, 1),
    max_confidence_change=st.floats(0, 0.5),
    size_scale_bounds=st.tuples(st.floats(0.05, 1.0), st.floats(1.0, 4.0)),
)


@settings(max_examples=300, deadline=None)
@given(cands=candidates_strategy, config=configs, signal=st.sampled_from([-1, 1]),
       confidence=st.floats(0, 1), day=st.integers(0, 200))
def test_advice_always_stays_within_its_bounds(cands: list[Candidate], config: MemoryConfig,
                                               signal: int, confidence: float,
                                               day: int) -> None:
    now = situation(signal, confidence, T0 + day * NANOS_PER_DAY)
    advice = advice_from(now, cands, config)
    low, high = config.size_scale_bounds
    reach = config.strength * config.max_confidence_change
    assert low <= advice.size_scale <= high
    assert 0.0 <= advice.confidence <= 1.0
    assert abs(advice.confidence - confidence) <= reach + 1e-12
    for episode in advice.episodes:  # the causal cut holds whatever the caller passed
        assert episode.exit_ts < now.ts_event < now.ts_decided
        assert episode.similarity > config.min_similarity and episode.weight >= 0.0
    if not advice.episodes:
        assert (advice.confidence, advice.size_scale) == (confidence, 1.0)
    if advice.alignment is not None:
        assert -1.0 - 1e-12 <= advice.alignment <= 1.0 + 1e-12
