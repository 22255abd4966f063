"""Episodic memory's vocabulary: the situation of an entry, what recall found, and its advice."""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass(slots=True)
class MemoryEffects:
    """What memory changed over a run. Every recall's entry is compared with the risk gate's
    answer to the same entry without memory's advice (the gate is a pure function)."""

    recalls: int = 0
    adjusted: int = 0  # the advice differed from neutral
    scaled_up: int = 0  # entries sent larger than the gate would have sized them without memory
    scaled_down: int = 0
    same_size: int = 0  # adjusted, but rounding or a cap left the order size unchanged
    refused: int = 0  # entries the gate would have taken that memory's advice turned away
    admitted: int = 0  # entries the gate would have refused that memory's advice let through
    refused_rules: dict[str, int] = field(default_factory=dict)
    confidence_change_sum: float = 0.0
    size_scale_sum: float = 0.0

    def count(self, original: float, advice: MemoryAdvice, quantity: float | None,
              baseline: float | None, rule: str | None) -> None:
        """Tally one recall: ``quantity`` and ``baseline`` are the approved order sizes with and
        without the advice (None: refused); ``rule`` names the refusal with the advice."""
        self.recalls += 1
        self.confidence_change_sum += advice.confidence - original
        self.size_scale_sum += advice.size_scale
        if advice.confidence == original and advice.size_scale == 1.0:
            return
        self.adjusted += 1
        if quantity is None and baseline is not None:
            self.refused += 1
            key = rule or "other"
            self.refused_rules[key] = self.refused_rules.get(key, 0) + 1
        elif quantity is not None and baseline is None:
            self.admitted += 1
        elif quantity is not None and baseline is not None:
            if quantity > baseline:
                self.scaled_up += 1
            elif quantity < baseline:
                self.scaled_down += 1
            else:
                self.same_size += 1

    def as_dict(self) -> dict[str, object]:
        recalls = self.recalls or 1
        return {
            "recalls": self.recalls,
            "adjusted": self.adjusted,
            "scaled_up": self.scaled_up,
            "scaled_down": self.scaled_down,
            "same_size": self.same_size,
            "refused_by_memory": self.refused,
            "refused_rules": dict(sorted(self.refused_rules.items())),
            "admitted_by_memory": self.admitted,
            "mean_confidence_change": round(self.confidence_change_sum / recalls, 6),
            "mean_size_scale": round(self.size_scale_sum / recalls, 6) if self.recalls else 1.0,
        }
