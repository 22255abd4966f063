"""DESIGN §4's consensus rule, one row per case."""

from collections import Counter

import pytest

from gnosis.agents.base import Agent, AgentContext, consensus, min_votes, safe_vote
from gnosis.model.regime import RegimeState
from gnosis.model.types import Bar, InvalidValue, Vote


def v(agent: str, signal: int, confidence: float = 0.6) -> Vote:
    return Vote(agent, signal, confidence, "test")


def a(agent: str) -> Vote:
    return Vote.abstain(agent, "no input")


@pytest.mark.parametrize(
    ("n_active", "needed"),
    [(1, 2), (2, 2), (3, 2), (4, 2), (5, 2), (6, 3), (7, 3), (8, 4), (10, 5)],
)
def test_min_votes_is_max_of_two_and_half_the_active(n_active: int, needed: int) -> None:
    assert min_votes(n_active) == needed


@pytest.mark.parametrize(
    ("votes", "n_active", "signal", "confidence"),
    [
        # three always-on agents, two agree
        ([v("h", 1, 0.8), v("l", 1, 0.6), v("s", -1, 0.9)], 3, 1, 0.7),
        # all five agree short
        ([v(x, -1, 0.5) for x in "hlswm"], 5, -1, 0.5),
        # a lone vote is never enough, even with one active agent
        ([v("h", 1, 0.9)], 1, 0, 0.0),
        # tie between +1 and -1 -> 0
        ([v("h", 1), v("l", 1), v("s", -1), v("w", -1)], 4, 0, 0.0),
        # zero wins the plurality -> decision 0 with the zero-voters' confidence
        ([v("h", 0, 0.4), v("l", 0, 0.2), v("s", 1, 0.9)], 3, 0, 0.3),
        # abstentions do not count as votes
        ([a("h"), a("l"), v("s", 1, 0.9)], 3, 0, 0.0),
        ([a("h"), v("l", -1, 0.7), v("s", -1, 0.5)], 3, -1, 0.6),
        # plurality below the threshold with many active agents (8 -> need 4)
        ([v("a", 1), v("b", 1), v("c", 1), v("d", -1), v("e", 0)], 8, 0, 0.0),
        ([v("a", 1), v("b", 1), v("c", 1), v("d", 1), v("e", 0)], 8, 1, 0.6),
        # 2-2 tie with a third signal present
        ([v("a", 1), v("b", 1), v("c", 0), v("d", 0), v("e", -1)], 5, 0, 0.0),
        # nobody voted
        ([], 5, 0, 0.0),
    ],
)
def test_consensus_table(votes: list[Vote], n_active: int, signal: int, confidence: float) -> None:
    got_signal, got_confidence, why = consensus(votes, n_active)
    assert got_signal == signal, why
    assert got_confidence == pytest.approx(confidence), why
    assert why


@pytest.mark.parametrize(
    ("signal", "confidence"), [(2, 0.5), (-2, 0.5), (1, 1.5), (1, -0.1), (1, float("nan"))]
)
def test_votes_reject_bad_values(signal: int, confidence: float) -> None:
    with pytest.raises(InvalidValue):
        Vote("x", signal, confidence, "bad")


def test_an_abstention_cannot_carry_a_signal() -> None:
    with pytest.raises(InvalidValue):
        Vote("x", 1, 0.0, "no", abstained=True)


class Broken(Agent):
    name = "broken"

    def vote(self, ctx: AgentContext) -> Vote:
        raise ZeroDivisionError("boom")


def test_an_agent_that_raises_abstains_and_is_counted() -> None:
    ctx = AgentContext(Bar("SPY", 0, 1.0, 1.0, 1.0, 1.0, 0.0), RegimeState("calm", 0.5))
    errors: Counter[str] = Counter()
    vote = safe_vote(Broken(), ctx, errors)
    assert vote.abstained and "ZeroDivisionError" in vote.reasoning
    assert errors == {"broken": 1}
