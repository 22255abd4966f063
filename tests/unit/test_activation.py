"""Agent activation, one row per rule of DESIGN §3 and its boundaries."""

from __future__ import annotations

import pytest

from gnosis.model.regime import RegimeState
from gnosis.regime.activation import agent_activation


def state(primary: str = "volatile", confidence: float = 0.5, trend: float = 0.0,
          vol: float = 0.15) -> RegimeState:
    return RegimeState(primary=primary, confidence=confidence, trend_strength=trend,
                       volatility=vol, bars_seen=100)


WYCKOFF = [
    # (case, state, active)
    ("trending up", state("trending_up"), True),
    ("trending down", state("trending_down"), True),
    ("accumulation", state("accumulation"), True),
    ("distribution", state("distribution"), True),
    ("ranging, flat", state("ranging", trend=0.1), False),
    ("|trend| exactly 0.4 is not above", state("ranging", trend=0.4), False),
    ("|trend| 0.41 up", state("ranging", trend=0.41), True),
    ("|trend| 0.41 down", state("calm", trend=-0.41), True),
    ("volatile, flat", state("volatile", trend=-0.2), False),
    ("warming up", state("warming_up", trend=0.9), False),
]

MARKOV = [
    ("confident trend", state("trending_up", confidence=0.8), True),
    ("confidence exactly 0.7 is not above", state("calm", confidence=0.7), False),
    ("confidence 0.71", state("calm", confidence=0.71, vol=0.05), True),
    ("strong trend, low confidence", state("trending_down", confidence=0.5, trend=-0.65), True),
    ("trend 0.6 is not strong", state("trending_up", confidence=0.5, trend=0.6), False),
    ("strong |trend| but not a trending primary", state("calm", confidence=0.5, trend=0.9),
     False),
    ("never in ranging, even confident", state("ranging", confidence=0.95, trend=0.9), False),
    ("volatility exactly 30% allowed", state("trending_up", confidence=0.9, vol=0.30), True),
    ("never above 30% volatility", state("trending_up", confidence=0.9, trend=0.9, vol=0.31),
     False),
    ("accumulation confident", state("accumulation", confidence=0.75), True),
    ("warming up", state("warming_up", confidence=0.9), False),
]


@pytest.mark.parametrize(("case", "regime", "active"), WYCKOFF, ids=[r[0] for r in WYCKOFF])
def test_wyckoff(case: str, regime: RegimeState, active: bool) -> None:
    on, why = agent_activation(regime)["wyckoff"]
    assert on is active, why
    assert why


@pytest.mark.parametrize(("case", "regime", "active"), MARKOV, ids=[r[0] for r in MARKOV])
def test_markov(case: str, regime: RegimeState, active: bool) -> None:
    on, why = agent_activation(regime)["markov"]
    assert on is active, why
    assert why


@pytest.mark.parametrize("primary", ["trending_up", "ranging", "volatile", "calm", "warming_up"])
def test_hedge_liquidity_sentiment_always_vote(primary: str) -> None:
    activation = agent_activation(state(primary, vol=0.9))
    assert set(activation) == {"hedge", "liquidity", "sentiment", "wyckoff", "markov"}
    for name in ("hedge", "liquidity", "sentiment"):
        assert activation[name][0] is True


def test_reasons_say_why_markov_is_off() -> None:
    assert agent_activation(state("ranging", confidence=0.9))["markov"][1] == "ranging regime"
    assert "31%" in agent_activation(state("trending_up", confidence=0.9, vol=0.31))["markov"][1]
