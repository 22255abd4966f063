"""The agent interface and the consensus rule (DESIGN §4)."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from gnosis.model.regime import RegimeState
from gnosis.model.types import Bar, Vote

log = logging.getLogger(__name__)


@dataclass(slots=True)
class AgentContext:
    """What an agent may look at on bar t: that bar and the regime after it. Side inputs
    (options chains, news, quotes) come from the providers each agent was built with."""

    bar: Bar
    regime: RegimeState

    @property
    def symbol(self) -> str:
        return self.bar.symbol


class Agent(ABC):
    """One voter. ``update`` runs on every bar so state stays warm while the agent is inactive;
    ``vote`` runs only when the agent is active."""

    name: str = "agent"

    def update(self, ctx: AgentContext) -> None:  # noqa: B027 - optional hook
        """Fold bar t into the agent's state (O(1))."""

    @abstractmethod
    def vote(self, ctx: AgentContext) -> Vote:
        """Return a vote for bar t, or ``Vote.abstain`` with a reason when input is missing."""


def safe_vote(agent: Agent, ctx: AgentContext, errors: Counter[str] | None = None) -> Vote:
    """Ask an agent for its vote; an agent that raises abstains instead of crashing the bot."""
    try:
        return agent.vote(ctx)
    except Exception as exc:  # noqa: BLE001 - isolation is the point
        if errors is not None:
            errors[agent.name] += 1
        log.warning("agent %s raised %s: %s; counted as abstention",
                    agent.name, type(exc).__name__, exc)
        return Vote.abstain(agent.name, f"error: {type(exc).__name__}: {exc}")


def min_votes(n_active: int) -> int:
    """Votes the winning signal needs: ``max(2, n_active // 2)``."""
    return max(2, n_active // 2)


def consensus(votes: Sequence[Vote], n_active: int) -> tuple[int, float, str]:
    """Return (signal, confidence, why) under DESIGN §4's rule.

    The signal with the most (non-abstaining) votes wins if it has at least ``min_votes`` and
    no other signal ties it; otherwise the decision is 0. Confidence is the mean confidence of
    the agreeing agents.
    """
    cast = [v for v in votes if not v.abstained]
    needed = min_votes(n_active)
    if not cast:
        return 0, 0.0, f"no votes cast (need {needed})"
    tally = Counter(v.signal for v in cast)
    ranked = tally.most_common()
    top_signal, top_count = ranked[0]
    if len(ranked) > 1 and ranked[1][1] == top_count:
        return 0, 0.0, f"tie {dict(tally)} (need {needed})"
    if top_count < needed:
        return 0, 0.0, f"{top_count} vote(s) for {top_signal:+d} < {needed} needed"
    agreeing = [v.confidence for v in cast if v.signal == top_signal]
    confidence = sum(agreeing) / len(agreeing)
    return top_signal, confidence, f"{top_count}/{len(cast)} for {top_signal:+d} (need {needed})"
