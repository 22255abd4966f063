"""Markov agent: the regime HMM's filtered state probabilities, read as a directional bet."""

from __future__ import annotations

from gnosis.agents.base import Agent, AgentContext
from gnosis.model.regime import HMM_LABELS
from gnosis.model.types import Vote

_UP, _DOWN, _RANGE, _ACC, _DIST = (HMM_LABELS.index(s) for s in (
    "trending_up", "trending_down", "ranging", "accumulation", "distribution"))


class MarkovAgent(Agent):
    """Long when P(trending_up) + 0.5 P(accumulation) dominates, short for the bearish mirror,
    flat when ranging dominates or nothing reaches ``min_prob``."""

    name = "markov"

    def __init__(self, min_prob: float = 0.55, accumulation_weight: float = 0.5) -> None:
        self.min_prob = min_prob
        self.accumulation_weight = accumulation_weight

    def vote(self, ctx: AgentContext) -> Vote:
        probs = ctx.regime.hmm_probabilities
        if probs is None:
            return Vote.abstain(self.name, "HMM not fitted yet")
        w = self.accumulation_weight
        bull = probs[_UP] + w * probs[_ACC]
        bear = probs[_DOWN] + w * probs[_DIST]
        ranging = probs[_RANGE]
        state = ctx.regime.hmm_state
        if ranging >= max(bull, bear):
            return Vote(self.name, 0, min(1.0, ranging), f"HMM ranging {ranging:.2f}")
        if bull >= self.min_prob and bull > bear:
            return Vote(self.name, 1, min(1.0, bull), f"HMM bullish {bull:.2f} ({state})")
        if bear >= self.min_prob and bear > bull:
            return Vote(self.name, -1, min(1.0, bear), f"HMM bearish {bear:.2f} ({state})")
        return Vote(self.name, 0, max(bull, bear),
                    f"HMM undecided: bull {bull:.2f}, bear {bear:.2f} < {self.min_prob}")
