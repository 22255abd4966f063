"""Reflection rules, one row each: an outcome and the critique and lesson it must produce."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gnosis.memory.reflection import RULES, Outcome, reflect

# a losing long stopped out at the stop after 20 bars, 4 of 5 agents agreeing
BASE = Outcome(won=False, return_pct=-0.02, exit_reason="stop_loss", bars_held=20,
               max_favorable=0.004, max_adverse=0.02, stop_pct=0.02, target_pct=0.04,
               agreement=0.8)

ROWS = [
    # (what changes from BASE, rule, critique, lesson)
    (dict(exit_reason="circuit_breaker", won=True, return_pct=0.01), "forced_exit",
     "closed by circuit_breaker after 20 bars at +1.00%: not a verdict on the setup",
     "no lesson about the setup: the exit was forced"),
    (dict(exit_reason="operator_flatten"), "forced_exit",
     "closed by operator_flatten after 20 bars at -2.00%: not a verdict on the setup",
     "no lesson about the setup: the exit was forced"),
    (dict(bars_held=3), "stopped_at_once",
     "stopped out after 3 bars, at most 0.40% in favour",
     "the entry fought the immediate move: wait for confirmation in this situation"),
    (dict(max_favorable=0.025), "gave_back_gains",
     "was 2.50% ahead (half way to the target or more) and still closed at -2.00%",
     "protect gains here: take profit earlier or trail the stop"),
    (dict(exit_reason="time_stop", max_favorable=0.03, return_pct=-0.001), "gave_back_gains",
     "was 3.00% ahead (half way to the target or more) and still closed at -0.10%",
     "protect gains here: take profit earlier or trail the stop"),
    (dict(agreement=0.5), "split_vote_loss",
     "lost -2.00% on a split vote (50% of the voting agents agreed)",
     "demand broader agreement before entering in this situation"),
    ({}, "stopped", "the stop was hit after 20 bars (-2.00%)",
     "this setup failed: trade it smaller or skip it"),
    (dict(agreement=None), "stopped", "the stop was hit after 20 bars (-2.00%)",
     "this setup failed: trade it smaller or skip it"),
    (dict(won=True, exit_reason="take_profit", return_pct=0.04, bars_held=4,
          max_favorable=0.04), "quick_target", "target reached in 4 bars (+4.00%)",
     "momentum followed through at once: a strong setup"),
    (dict(won=True, exit_reason="take_profit", return_pct=0.04, max_favorable=0.04,
          max_adverse=0.006), "clean_target",
     "target reached after 20 bars, never more than 0.60% against (+4.00%)",
     "the setup worked cleanly: trust it"),
    (dict(won=True, exit_reason="take_profit", return_pct=0.04, max_favorable=0.04,
          max_adverse=0.015, agreement=0.4), "rough_target",
     "target reached after 20 bars despite 1.50% against (+4.00%)",
     "the setup worked but the path was rough: keep the stop this wide"),
    (dict(won=True, exit_reason="time_stop", return_pct=0.006, max_favorable=0.01,
          bars_held=120), "slow_win", "time stop after 120 bars with +0.60%",
     "right direction, slower than the target assumes"),
    (dict(exit_reason="time_stop", return_pct=-0.003, max_favorable=0.01, bars_held=120),
     "stale_loss", "time stop after 120 bars at -0.30%: the move never came",
     "skip this setup when momentum is missing"),
    (dict(won=True, exit_reason="signal_reversal", return_pct=0.012, max_favorable=0.015),
     "win", "closed on signal_reversal after 20 bars with +1.20%",
     "the agents turned in time: the setup paid"),
    (dict(exit_reason="signal_reversal", return_pct=-0.008, max_favorable=0.01), "loss",
     "closed on signal_reversal after 20 bars at -0.80%",
     "the view flipped against the position: the entry was early or wrong"),
]


@pytest.mark.parametrize(("changes", "rule", "critique", "lesson"), ROWS,
                         ids=[f"{i}-{row[1]}" for i, row in enumerate(ROWS)])
def test_rule_table(changes: dict, rule: str, critique: str, lesson: str) -> None:
    reflection = reflect(replace(BASE, **changes))
    assert (reflection.rule, reflection.critique, reflection.lesson) == (rule, critique, lesson)


def test_every_rule_has_a_row() -> None:
    assert {row[1] for row in ROWS} == {rule.name for rule in RULES}


def test_quick_and_split_thresholds_come_from_the_outcome() -> None:
    assert reflect(replace(BASE, bars_held=8, quick_bars=10)).rule == "stopped_at_once"
    assert reflect(replace(BASE, agreement=0.8, split_agreement=0.9)).rule == "split_vote_loss"
