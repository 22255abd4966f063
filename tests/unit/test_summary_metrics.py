"""The run summary's statistics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from gnosis.trading.engine import MIN_SHARPE_DAYS, sharpe

RETURNS = [0.01, -0.005, 0.002, 0.004, -0.001]
MEAN = sum(RETURNS) / 5
SAMPLE_SD = math.sqrt(sum((r - MEAN) ** 2 for r in RETURNS) / 4)  # ddof 1


@pytest.mark.parametrize(("returns", "expected"), [
    (RETURNS, round(MEAN / SAMPLE_SD * math.sqrt(252), 4)),  # 252 sessions, sample sd
    (RETURNS[:4], None),  # under five sessions: no annualised figure
    ([0.001] * 6, 0.0),  # no variance: 0, not a division by zero
    ([-x for x in RETURNS], -round(MEAN / SAMPLE_SD * math.sqrt(252), 4)),
])
def test_sharpe_is_annualised_with_252_sessions_and_a_sample_deviation(returns, expected):
    assert sharpe(returns) == expected


def test_the_hand_value() -> None:
    """Pinned by hand, so √250 or a population deviation cannot pass unnoticed."""
    assert sharpe(RETURNS) == 5.6569
    assert MIN_SHARPE_DAYS == 5
