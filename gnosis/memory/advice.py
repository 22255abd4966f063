"""From recalled episodes to bounded advice: weighting, win rate, alignment, adjustment.

Each recalled episode weighs ``similarity x recency x outcome``:
- similarity: (s - min_similarity) / (1 - min_similarity), so an episode at the threshold
  weighs nothing and an identical situation weighs 1;
- recency: 0.5 ** (age / half_life), the age measured from the episode's exit to the
  situation's decision time (the data's time, never the wall clock);
- outcome: 0.25 + 0.75 x min(1, |return| / outcome_scale), so a decisive win or loss counts
  fully and a scratch trade (around zero after fees) counts a quarter.

From the weights: the win rate (weighted share of winners) and the alignment, the weighted
mean of ``signal_now x signal_then x sign(return_then)``: +1 when every similar episode says
the current direction paid (a winner in the same direction or a loser in the opposite one),
-1 when they all say it did not. The alignment is shrunk by the evidence, W / (W + prior_weight)
with W the total weight, so a few faint memories barely move anything, and then sets the
adjustment: confidence moves by at most ``strength x max_confidence_change`` and the size scale
stays inside ``size_scale_bounds`` (the risk gate applies every cap after it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gnosis.core.config import MemoryConfig
from gnosis.model.memory import MemoryAdvice, RecalledEpisode, Situation

NANOS_PER_DAY = 86_400 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class Candidate:
    """A closed episode as recall found it, with its cosine similarity to the situation."""

    episode_id: str
    symbol: str
    entry_ts: int
    exit_ts: int
    regime: str | None
    signal: int
    return_pct: float
    pnl: float
    exit_reason: str
    lesson: str
    similarity: float


def similarity_weight(similarity: float, min_similarity: float) -> float:
    return min(max((similarity - min_similarity) / (1.0 - min_similarity), 0.0), 1.0)


def recency_weight(age_ns: int, half_life_days: float) -> float:
    return float(0.5 ** (max(age_ns, 0) / (half_life_days * NANOS_PER_DAY)))


def outcome_weight(return_pct: float, outcome_scale: float) -> float:
    return 0.25 + 0.75 * min(abs(return_pct) / outcome_scale, 1.0)


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


def advice_from(situation: Situation, candidates: Sequence[Candidate],
                config: MemoryConfig) -> MemoryAdvice:
    """Weigh the recalled candidates and turn them into bounded advice (pure, deterministic).

    Candidates whose exit is not strictly before the decision bar are dropped here too, so a
    faulty caller can never leak the future into the advice.
    """
    original = situation.confidence
    now = situation.ts_decided
    episodes: list[RecalledEpisode] = []
    total = wins = aligned = 0.0
    for c in candidates:
        if c.exit_ts >= situation.ts_event or c.similarity <= config.min_similarity:
            continue
        weight = (similarity_weight(c.similarity, config.min_similarity)
                  * recency_weight(now - c.exit_ts, config.half_life_days)
                  * outcome_weight(c.return_pct, config.outcome_scale))
        episodes.append(RecalledEpisode(
            episode_id=c.episode_id, symbol=c.symbol, entry_ts=c.entry_ts, exit_ts=c.exit_ts,
            regime=c.regime, signal=c.signal, return_pct=c.return_pct,
            exit_reason=c.exit_reason, similarity=c.similarity, weight=weight,
            lesson=c.lesson))
        total += weight
        wins += weight if c.pnl > 0 else 0.0
        aligned += weight * situation.signal * c.signal * _sign(c.return_pct)
    if not episodes:
        return MemoryAdvice.neutral(original, "no comparable past episode")
    found = tuple(episodes)
    if total <= 0.0:
        return MemoryAdvice(original, 1.0, f"{len(found)} comparable episodes, all of "
                            "negligible weight: no adjustment", found)
    win_rate = wins / total
    alignment = aligned / total
    if len(found) < config.min_episodes:
        return MemoryAdvice(
            original, 1.0,
            f"only {len(found)} comparable episode{'s' if len(found) > 1 else ''} "
            f"(need {config.min_episodes}): no adjustment", found, win_rate, alignment)
    evidence = total / (total + config.prior_weight)
    edge = alignment * evidence * config.strength  # in [-1, 1]
    confidence = min(max(original + config.max_confidence_change * edge, 0.0), 1.0)
    low, high = config.size_scale_bounds
    scale = 1.0 + edge * ((high - 1.0) if edge > 0 else (1.0 - low))
    scale = min(max(scale, low), high)
    reason = (f"{len(found)} similar episodes (weight {total:.2f}): win rate {win_rate:.0%}, "
              f"alignment {alignment:+.2f} x evidence {evidence:.2f} -> confidence "
              f"{original:.2f}->{confidence:.2f}, size x{scale:.2f}")
    return MemoryAdvice(confidence, scale, reason, found, win_rate, alignment)
