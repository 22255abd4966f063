"""Regime vocabulary shared by the detector, the agents and the dashboard."""

from __future__ import annotations

from dataclasses import dataclass

TRENDING_UP = "trending_up"
TRENDING_DOWN = "trending_down"
RANGING = "ranging"
VOLATILE = "volatile"
CALM = "calm"
ACCUMULATION = "accumulation"
DISTRIBUTION = "distribution"
WARMING_UP = "warming_up"

REGIMES: tuple[str, ...] = (
    TRENDING_UP,
    TRENDING_DOWN,
    RANGING,
    VOLATILE,
    CALM,
    ACCUMULATION,
    DISTRIBUTION,
)
HMM_LABELS: tuple[str, ...] = (TRENDING_UP, TRENDING_DOWN, RANGING, ACCUMULATION, DISTRIBUTION)


@dataclass(frozen=True, slots=True)
class RegimeState:
    """The detector's view of one symbol after one bar."""

    primary: str
    confidence: float
    trend_strength: float = 0.0  # in [-1, 1]
    volatility: float = 0.0  # annualized for the bar interval
    volatility_class: str = "normal"  # calm | normal | volatile
    range_position: float = 0.5  # position inside the Bollinger band, 0 = lower, 1 = upper
    hmm_state: str | None = None
    hmm_probabilities: tuple[float, ...] | None = None  # ordered as HMM_LABELS
    reason: str = ""  # why the primary won, e.g. "|trend| 0.71 > 0.5"
    bars_seen: int = 0

    @property
    def ready(self) -> bool:
        return self.primary != WARMING_UP

    @property
    def explanation(self) -> str:
        """One readable line; formatted on demand, so the per-bar path pays nothing for it."""
        if not self.ready:
            return self.reason
        text = (f"{self.reason}; trend {self.trend_strength:+.2f}, vol {self.volatility:.0%} "
                f"{self.volatility_class}, BB pos {self.range_position:.2f}")
        if self.hmm_state is not None and self.hmm_probabilities is not None:
            text += f", HMM {self.hmm_state} {max(self.hmm_probabilities):.2f}"
        return text
