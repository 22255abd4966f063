"""Rule-based reflection on a closed episode: a critique of what happened and a lesson.

The rules form one ordered table; the first rule whose condition holds writes the reflection.
Each condition reads only the outcome (won or lost, return, excursions), the exit reason, the
hold time and how many of the voting agents agreed with the entry, so a reflection is a pure
function of the episode and a table-driven test pins every row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

FORCED_EXITS = frozenset({"circuit_breaker", "operator_halt", "operator_flatten"})


@dataclass(frozen=True, slots=True)
class Outcome:
    """What reflection looks at. Fractions are of the entry price; ``agreement`` is the share
    of voting agents that agreed with the entry (None when no agent voted)."""

    won: bool
    return_pct: float
    exit_reason: str
    bars_held: int
    max_favorable: float
    max_adverse: float
    stop_pct: float | None  # distance from entry to the stop; None without a stop
    target_pct: float | None
    agreement: float | None
    quick_bars: int = 5
    split_agreement: float = 0.6

    @property
    def quick(self) -> bool:
        return self.bars_held <= self.quick_bars

    @property
    def split(self) -> bool:
        return self.agreement is not None and self.agreement < self.split_agreement


@dataclass(frozen=True, slots=True)
class Reflection:
    rule: str
    critique: str
    lesson: str


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    applies: Callable[[Outcome], bool]
    critique: str  # str.format templates over the fields below
    lesson: str


def _gave_back(o: Outcome) -> bool:
    halfway = 0.5 * o.target_pct if o.target_pct else None
    return not o.won and halfway is not None and o.max_favorable >= halfway


def _clean(o: Outcome) -> bool:
    return o.stop_pct is not None and o.max_adverse <= 0.5 * o.stop_pct


RULES: tuple[Rule, ...] = (
    Rule("forced_exit", lambda o: o.exit_reason in FORCED_EXITS,
         "closed by {exit_reason} after {bars} bars at {ret}: not a verdict on the setup",
         "no lesson about the setup: the exit was forced"),
    Rule("stopped_at_once", lambda o: o.exit_reason == "stop_loss" and o.quick,
         "stopped out after {bars} bars, at most {mfe} in favour",
         "the entry fought the immediate move: wait for confirmation in this situation"),
    Rule("gave_back_gains", _gave_back,
         "was {mfe} ahead (half way to the target or more) and still closed at {ret}",
         "protect gains here: take profit earlier or trail the stop"),
    Rule("split_vote_loss", lambda o: not o.won and o.split,
         "lost {ret} on a split vote ({agreement} of the voting agents agreed)",
         "demand broader agreement before entering in this situation"),
    Rule("stopped", lambda o: o.exit_reason == "stop_loss",
         "the stop was hit after {bars} bars ({ret})",
         "this setup failed: trade it smaller or skip it"),
    Rule("quick_target", lambda o: o.exit_reason == "take_profit" and o.quick,
         "target reached in {bars} bars ({ret})",
         "momentum followed through at once: a strong setup"),
    Rule("clean_target", lambda o: o.exit_reason == "take_profit" and _clean(o),
         "target reached after {bars} bars, never more than {mae} against ({ret})",
         "the setup worked cleanly: trust it"),
    Rule("rough_target", lambda o: o.exit_reason == "take_profit",
         "target reached after {bars} bars despite {mae} against ({ret})",
         "the setup worked but the path was rough: keep the stop this wide"),
    Rule("slow_win", lambda o: o.exit_reason == "time_stop" and o.won,
         "time stop after {bars} bars with {ret}",
         "right direction, slower than the target assumes"),
    Rule("stale_loss", lambda o: o.exit_reason == "time_stop",
         "time stop after {bars} bars at {ret}: the move never came",
         "skip this setup when momentum is missing"),
    Rule("win", lambda o: o.won,
         "closed on {exit_reason} after {bars} bars with {ret}",
         "the agents turned in time: the setup paid"),
    Rule("loss", lambda o: True,
         "closed on {exit_reason} after {bars} bars at {ret}",
         "the view flipped against the position: the entry was early or wrong"),
)


def reflect(outcome: Outcome) -> Reflection:
    """The reflection of the first rule that applies (the last rule always applies)."""
    fields = {
        "exit_reason": outcome.exit_reason,
        "bars": outcome.bars_held,
        "ret": f"{outcome.return_pct:+.2%}",
        "mfe": f"{outcome.max_favorable:.2%}",
        "mae": f"{outcome.max_adverse:.2%}",
        "agreement": "n/a" if outcome.agreement is None else f"{outcome.agreement:.0%}",
    }
    for rule in RULES:
        if rule.applies(outcome):
            return Reflection(rule.name, rule.critique.format(**fields),
                              rule.lesson.format(**fields))
    raise AssertionError("the last reflection rule applies to every outcome")
