"""Episodic memory's vocabulary: the situation of an entry, what recall found, and its advice."""

from __future__ import annotations

from dataclasses import dataclass

from gnosis.model.regime import RegimeState
from gnosis.model.types import InvalidValue, Vote


@dataclass(frozen=True, slots=True)
class Situation:
    """What a candidate entry looked like when it was decided (bar ``ts_event``'s close)."""

    symbol: str
    ts_event: int  # the decision bar's start; the decision is known at its close
    ts_decided: int  # the decision bar's close: recall may use only exits before this
    signal: int
    confidence: float
    regime: str | None
    regime_confidence: float | None
    regime_state: RegimeState | None
    votes: tuple[Vote, ...]
    price: float

    def __post_init__(self) -> None:
        if self.signal not in (-1, 1):
            raise InvalidValue(f"a situation needs an entry signal, got {self.signal!r}")


@dataclass(frozen=True, slots=True)
class RecalledEpisode:
    """One past episode recall used, with how much it weighed."""

    episode_id: str
    symbol: str
    entry_ts: int
    exit_ts: int
    regime: str | None
    signal: int
    return_pct: float
    exit_reason: str
    similarity: float  # cosine similarity of the situation vectors, in [-1, 1]
    weight: float  # similarity × recency × outcome weighting, >= 0
    lesson: str = ""


@dataclass(frozen=True, slots=True)
class MemoryAdvice:
    """What memory makes of a candidate entry: bounded nudges, with the evidence.

    ``confidence`` replaces the decision's confidence for the risk gate; ``size_scale``
    multiplies the size the risk gate computes (the gate's caps still apply afterwards).
    """

    confidence: float
    size_scale: float
    reason: str
    episodes: tuple[RecalledEpisode, ...] = ()
    win_rate: float | None = None  # weighted win rate of the recalled episodes
    alignment: float | None = None  # weighted agreement of their outcome with this signal

    def __post_init__(self) -> None:
        if not (0.0 <= self.confidence <= 1.0):
            raise InvalidValue(f"advised confidence {self.confidence!r} outside [0, 1]")
        if not (0.0 <= self.size_scale < float("inf")):
            raise InvalidValue(f"advised size scale {self.size_scale!r}")

    @classmethod
    def neutral(cls, confidence: float, reason: str) -> MemoryAdvice:
        """No change: nothing comparable recalled, or memory unavailable."""
        return cls(confidence=confidence, size_scale=1.0, reason=reason)
