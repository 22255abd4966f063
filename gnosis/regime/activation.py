"""Which agents vote on a bar, from the regime (DESIGN §3, from the seed; authoritative).

- Hedge, Liquidity, Sentiment: always.
- Wyckoff: primary trending_up/down, or |trend_strength| > 0.4, or accumulation/distribution.
- Markov: regime confidence > 0.7, or a clear trend with strong momentum; never when the
  primary is ranging, never when annualized volatility is above 30%.
"""

from __future__ import annotations

from gnosis.model.regime import (
    ACCUMULATION,
    DISTRIBUTION,
    RANGING,
    TRENDING_DOWN,
    TRENDING_UP,
    RegimeState,
)

ALWAYS_ACTIVE = ("hedge", "liquidity", "sentiment")
WYCKOFF_TREND_STRENGTH = 0.4  # |trend_strength| strictly above this switches Wyckoff on
MARKOV_MIN_CONFIDENCE = 0.7  # regime confidence strictly above this switches Markov on
MARKOV_STRONG_TREND = 0.6  # ... or a trending primary with |trend_strength| strictly above this
MARKOV_MAX_VOLATILITY = 0.30  # annualized; strictly above it Markov is off whatever else holds

_TRENDS = (TRENDING_UP, TRENDING_DOWN)
_WYCKOFF_PHASES = (ACCUMULATION, DISTRIBUTION)


def wyckoff_active(state: RegimeState) -> tuple[bool, str]:
    if not state.ready:
        return False, "warming up"
    if state.primary in _TRENDS:
        return True, f"{state.primary} regime"
    if state.primary in _WYCKOFF_PHASES:
        return True, f"{state.primary} regime"
    if abs(state.trend_strength) > WYCKOFF_TREND_STRENGTH:
        return True, f"|trend| {abs(state.trend_strength):.2f} > {WYCKOFF_TREND_STRENGTH}"
    return False, (f"{state.primary} regime with |trend| {abs(state.trend_strength):.2f} "
                   f"<= {WYCKOFF_TREND_STRENGTH}")


def markov_active(state: RegimeState) -> tuple[bool, str]:
    if not state.ready:
        return False, "warming up"
    if state.primary == RANGING:
        return False, "ranging regime"
    if state.volatility > MARKOV_MAX_VOLATILITY:
        return False, f"volatility {state.volatility:.0%} > {MARKOV_MAX_VOLATILITY:.0%}"
    if state.confidence > MARKOV_MIN_CONFIDENCE:
        return True, f"confidence {state.confidence:.2f} > {MARKOV_MIN_CONFIDENCE}"
    if state.primary in _TRENDS and abs(state.trend_strength) > MARKOV_STRONG_TREND:
        return True, f"strong trend {state.trend_strength:+.2f}"
    return False, (f"confidence {state.confidence:.2f} <= {MARKOV_MIN_CONFIDENCE} "
                   "and no strong trend")


def agent_activation(state: RegimeState) -> dict[str, tuple[bool, str]]:
    """``{agent: (active, reason)}`` for the five agents."""
    active: dict[str, tuple[bool, str]] = {name: (True, "always active") for name in ALWAYS_ACTIVE}
    active["wyckoff"] = wyckoff_active(state)
    active["markov"] = markov_active(state)
    return active
