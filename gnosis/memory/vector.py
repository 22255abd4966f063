"""The situation vector: one fixed-length numeric description of a candidate entry.

Recall compares situations by the cosine of their vectors, so every component is scaled to
about [-1, 1] with 0 meaning "neutral / unknown": a missing input (no HMM yet, an agent that
abstained or is switched off) then adds nothing to the similarity instead of pulling every
vector toward one corner. The signal component is always ±1, so no vector is ever zero.

| index | component | scaling |
|---|---|---|
| 0 | decision signal | +1 long, -1 short |
| 1 | decision confidence c | 2c - 1 (0.5 -> 0) |
| 2-8 | primary regime, one-hot over ``REGIMES`` | 1 for the primary, 0 otherwise |
| 9 | regime confidence r | 2r - 1 (0 when unknown) |
| 10 | trend strength | as the detector reports it, in [-1, 1] |
| 11 | volatility v (annualized) | tanh(ln(v / 0.15)): 15% -> 0, 41% -> +0.76, 5% -> -0.8 |
| 12 | Bollinger range position p | clip(2p - 1, -1, 1): lower band -1, upper band +1 |
| 13-17 | HMM filtered probabilities, ordered as ``HMM_LABELS`` | as is, in [0, 1] (0 unfitted) |
| 18-22 | each agent's signal x confidence, ``AGENTS`` order | in [-1, 1]; 0 abstained/off |
| 23 | net vote | mean signal of the agents that voted, in [-1, 1] |

Changing a component changes what stored vectors mean: bump ``VECTOR_VERSION`` and the store
refuses files written with another version instead of comparing unlike things.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gnosis.model.memory import Situation
from gnosis.model.regime import HMM_LABELS, REGIMES
from gnosis.model.types import Vote

VECTOR_VERSION = 1
AGENTS: tuple[str, ...] = ("hedge", "liquidity", "sentiment", "wyckoff", "markov")
VOLATILITY_REFERENCE = 0.15  # a typical annualized equity volatility (the risk target's default)

COMPONENTS: tuple[str, ...] = (
    "signal",
    "confidence",
    *(f"regime_{name}" for name in REGIMES),
    "regime_confidence",
    "trend_strength",
    "volatility",
    "range_position",
    *(f"hmm_{label}" for label in HMM_LABELS),
    *(f"agent_{agent}" for agent in AGENTS),
    "net_vote",
)
DIMENSION = len(COMPONENTS)


def _clip(value: float) -> float:
    if not math.isfinite(value):
        return 0.0
    return -1.0 if value < -1.0 else 1.0 if value > 1.0 else value


def volatility_component(volatility: float) -> float:
    """Log-ratio to the reference, squashed: symmetric for halving and doubling."""
    if not (volatility > 0 and math.isfinite(volatility)):
        return 0.0
    return math.tanh(math.log(volatility / VOLATILITY_REFERENCE))


def net_vote(votes: Sequence[Vote]) -> float:
    """Mean signal of the agents that voted (abstentions excluded); 0 without votes."""
    voting = [v.signal for v in votes if not v.abstained]
    return sum(voting) / len(voting) if voting else 0.0


def agreement(votes: Sequence[Vote], signal: int) -> float | None:
    """Share of the voting agents whose signal equals the decision's; None without votes."""
    voting = [v for v in votes if not v.abstained]
    if not voting:
        return None
    return sum(1 for v in voting if v.signal == signal) / len(voting)


def situation_vector(situation: Situation) -> tuple[float, ...]:
    """The situation's components in ``COMPONENTS`` order (see the module's table)."""
    vector = [0.0] * DIMENSION
    vector[0] = float(situation.signal)
    vector[1] = _clip(2.0 * situation.confidence - 1.0)
    if situation.regime in REGIMES:
        vector[2 + REGIMES.index(situation.regime)] = 1.0
    base = 2 + len(REGIMES)
    if situation.regime_confidence is not None:
        vector[base] = _clip(2.0 * situation.regime_confidence - 1.0)
    state = situation.regime_state
    if state is not None:
        vector[base + 1] = _clip(state.trend_strength)
        vector[base + 2] = volatility_component(state.volatility)
        vector[base + 3] = _clip(2.0 * state.range_position - 1.0)
        probabilities = state.hmm_probabilities
        if probabilities is not None and len(probabilities) == len(HMM_LABELS):
            for offset, probability in enumerate(probabilities):
                vector[base + 4 + offset] = min(max(float(probability), 0.0), 1.0) \
                    if math.isfinite(probability) else 0.0
    agents_at = base + 4 + len(HMM_LABELS)
    for vote in situation.votes:
        if vote.agent in AGENTS and not vote.abstained:
            vector[agents_at + AGENTS.index(vote.agent)] = vote.signal * vote.confidence
    vector[-1] = net_vote(situation.votes)
    return tuple(vector)
