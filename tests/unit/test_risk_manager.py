"""DESIGN §5's risk table: one test row per limit, plus a property test over random paths."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnosis.core.config import RiskConfig
from gnosis.model.types import TradingState
from gnosis.trading.risk_manager import Approval, Refusal, RiskManager, kelly_fraction

T0 = 1_704_205_800_000_000_000  # 2024-01-02 14:30 UTC
DAY = 86_400 * 10**9


def approve(risk: RiskManager, **overrides: float) -> Approval | Refusal:
    args = dict(signal=1, confidence=0.8, price=100.0, volatility=0.15, equity=100_000.0,
                gross_exposure=0.0, open_positions=0)
    args.update(overrides)
    return risk.approve_entry(**args)  # type: ignore[arg-type]


def fresh() -> RiskManager:
    risk = RiskManager()
    risk.on_equity(T0, 100_000.0)
    return risk


@pytest.mark.parametrize(
    ("overrides", "refusal_contains", "rule"),
    [
        ({"open_positions": 3}, "max open positions reached (3/3)", "max_positions"),
        ({"gross_exposure": 29_950.0}, "total exposure limit: 29.9% of 30% used",
         "total_exposure"),
        ({"confidence": 0.3}, "no Kelly edge at confidence 0.30 and 2:1 reward:risk",
         "no_kelly_edge"),
        ({"price": 0.0}, "no usable price", "bad_price"),
        ({"price": math.nan}, "no usable price", "bad_price"),
        ({"equity": 0.0}, "no equity", "no_equity"),
        ({"signal": 0}, "no direction", "no_direction"),
        ({"price": 200_000.0}, "size rounds to zero", "zero_size"),
    ],
)
def test_each_limit_refuses_with_a_reason(overrides: dict, refusal_contains: str,
                                          rule: str) -> None:
    answer = approve(fresh(), **overrides)
    assert isinstance(answer, Refusal)
    assert refusal_contains in answer.reason
    assert answer.rule == rule  # the stable key the summary's refusal tallies count by


def test_a_kelly_edge_of_exactly_zero_is_no_edge() -> None:
    risk = RiskManager(RiskConfig(reward_risk=1.0))  # 1:1 makes confidence 0.5 exactly 0 edge
    risk.on_equity(T0, 100_000.0)
    assert kelly_fraction(0.5, 1.0) == 0.0
    answer = approve(risk, confidence=0.5)
    assert isinstance(answer, Refusal) and answer.rule == "no_kelly_edge"


def test_memorys_size_scale_multiplies_the_sizing_before_the_caps() -> None:
    base = approve(fresh(), confidence=0.45, volatility=0.3)
    assert isinstance(base, Approval) and base.weight < 0.05  # far below every cap
    for scale in (0.5, 1.5):
        scaled = fresh().approve_entry(signal=1, confidence=0.45, price=100.0, volatility=0.3,
                                       equity=100_000.0, gross_exposure=0.0, open_positions=0,
                                       size_scale=scale)
        assert isinstance(scaled, Approval)
        assert scaled.quantity == pytest.approx(base.quantity * scale, abs=1)
        assert f"× memory {scale:.2f}" in scaled.reasoning
    assert "memory" not in base.reasoning


def test_per_position_cap_is_15_percent() -> None:
    answer = approve(fresh(), confidence=1.0, volatility=0.01)
    assert isinstance(answer, Approval)
    assert answer.quantity * 100.0 <= 0.15 * 100_000.0
    assert answer.weight == pytest.approx(0.15, abs=0.001)


def test_total_exposure_caps_the_size() -> None:
    answer = approve(fresh(), confidence=1.0, gross_exposure=25_000.0)
    assert isinstance(answer, Approval)
    assert answer.quantity * 100.0 + 25_000.0 <= 30_000.0


@pytest.mark.parametrize(
    ("signal", "stop_below_price"), [(1, True), (-1, False)]
)
def test_stops_and_targets_are_side_aware_at_two_to_one(signal: int,
                                                        stop_below_price: bool) -> None:
    answer = approve(fresh(), signal=signal)
    assert isinstance(answer, Approval)
    assert (answer.stop_price < 100.0) is stop_below_price
    assert abs(answer.target_price - 100.0) == pytest.approx(2 * abs(100.0 - answer.stop_price))


@pytest.mark.parametrize(
    ("confidence", "volatility", "expected_stop"),
    [
        (1.0, 0.10, 0.02),  # base stop at full confidence, calm market
        (0.5, 0.10, 0.025),  # widened 25% for confidence 0.5
        (1.0, 0.30, 0.04),  # widened ×2 for volatility at twice the target
        (0.4, 0.60, 0.05),  # capped at max_stop_loss_pct
    ],
)
def test_stop_distance_widens_and_is_capped(confidence: float, volatility: float,
                                            expected_stop: float) -> None:
    assert RiskManager().stop_distance(confidence, volatility) == pytest.approx(expected_stop)


def test_inverse_volatility_sizing() -> None:
    calm = approve(fresh(), confidence=0.5, volatility=0.10)
    wild = approve(fresh(), confidence=0.5, volatility=0.40)
    assert isinstance(calm, Approval) and isinstance(wild, Approval)
    assert wild.quantity < calm.quantity


@pytest.mark.parametrize(("confidence", "edge"), [(1 / 3, 0.0), (0.5, 0.25), (1.0, 1.0)])
def test_kelly_at_two_to_one(confidence: float, edge: float) -> None:
    assert kelly_fraction(confidence, 2.0) == pytest.approx(edge)


def test_daily_loss_limit_reduces_then_resets_next_day() -> None:
    risk = fresh()
    change = risk.on_equity(T0 + 60 * 10**9, 94_999.0)
    assert change is not None and change.current is TradingState.REDUCING
    refusal = approve(risk)
    assert isinstance(refusal, Refusal) and "reducing" in refusal.reason
    change = risk.on_equity(T0 + DAY, 95_000.0)
    assert change is not None and change.current is TradingState.ACTIVE
    assert isinstance(approve(risk, equity=95_000.0), Approval)


def test_drawdown_breaker_halts_and_flattens_until_resumed() -> None:
    risk = fresh()
    risk.on_equity(T0 + DAY, 110_000.0)
    change = risk.on_equity(T0 + DAY + 60 * 10**9, 98_999.0)
    assert change is not None and change.current is TradingState.HALTED and change.flatten
    risk.on_equity(T0 + 2 * DAY, 99_000.0)  # a new day does not lift a halt
    assert risk.state is TradingState.HALTED
    assert isinstance(approve(risk), Refusal)
    assert risk.resume() is not None and risk.state is TradingState.ACTIVE


def test_config_rejects_inconsistent_limits() -> None:
    with pytest.raises(ValueError, match="max_position_pct"):
        RiskConfig(max_position_pct=0.5, max_total_exposure_pct=0.3)


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([-1, 0, 1]),
            st.floats(0.0, 1.0),
            st.floats(1.0, 2_000.0),
            st.floats(0.0, 2.0),
            st.floats(-0.08, 0.08),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_no_sequence_of_signals_and_prices_breaches_a_limit(steps: list) -> None:
    """Approved entries never exceed the position count, per-position or total exposure
    limits, and nothing is approved while reducing or halted."""
    cfg = RiskConfig()
    risk = RiskManager(cfg)
    equity = 100_000.0
    exposure = 0.0
    positions = 0
    ts = T0
    for signal, confidence, price, volatility, equity_move in steps:
        ts += 60 * 10**9
        equity = max(equity * (1 + equity_move), 1.0)
        risk.on_equity(ts, equity)
        state_before = risk.state
        answer = risk.approve_entry(signal=signal, confidence=confidence, price=price,
                                    volatility=volatility, equity=equity,
                                    gross_exposure=exposure, open_positions=positions)
        if isinstance(answer, Approval):
            notional = answer.quantity * price
            assert state_before is TradingState.ACTIVE
            assert positions < cfg.max_positions
            assert notional <= cfg.max_position_pct * equity + 1e-6
            assert exposure + notional <= cfg.max_total_exposure_pct * equity + 1e-6
            assert answer.quantity >= 1 and float(answer.quantity).is_integer()
            positions += 1
            exposure += notional
        if positions and signal == 0:  # sometimes a position closes
            positions -= 1
            exposure = exposure * positions / (positions + 1)


# the daily loss is measured from the previous session's last equity: (yesterday's last
# equity, today's first equity) -> the state after today's first bar
OVERNIGHT = [
    (100_000.0, 94_000.0, TradingState.REDUCING),  # a -6% gap trips the -5% limit
    (100_000.0, 95_100.0, TradingState.ACTIVE),  # -4.9%: inside the limit
    (90_000.0, 85_400.0, TradingState.REDUCING),  # measured from 90k, not the 100k start
]


@pytest.mark.parametrize(("yesterday", "today", "state"), OVERNIGHT)
def test_an_overnight_gap_counts_against_the_new_day(yesterday: float, today: float,
                                                     state: TradingState) -> None:
    risk = RiskManager(RiskConfig(max_drawdown_pct=0.5))
    risk.on_equity(T0, 100_000.0)
    risk.on_equity(T0 + 60 * 10**9, yesterday)
    risk.on_equity(T0 + DAY, today)
    assert risk.state is state
    assert risk.day_start_equity == yesterday


def test_a_same_bar_reset_and_trip_reports_one_change_from_the_old_state() -> None:
    """REDUCING yesterday, and today opens 6% lower again: the day resets and trips at once;
    the change reported starts from REDUCING (the state before the bar)."""
    risk = RiskManager(RiskConfig(max_drawdown_pct=0.5))
    risk.on_equity(T0, 100_000.0)
    risk.on_equity(T0 + 60 * 10**9, 94_000.0)
    assert risk.state is TradingState.REDUCING
    change = risk.on_equity(T0 + DAY, 88_000.0)
    assert change is not None
    assert (change.previous, change.current) == (TradingState.REDUCING, TradingState.REDUCING)
    assert "previous close 94,000.00" in change.reason


def test_resume_restarts_the_breaker_from_the_current_equity() -> None:
    """After a halt at 89,000, resuming makes 89,000 the new high-water mark: the breaker
    trips again only 10% below it, and the daily limit sleeps until the next day."""
    risk = RiskManager(RiskConfig())
    risk.on_equity(T0, 100_000.0)
    assert risk.on_equity(T0 + DAY, 89_000.0) is not None  # a new day; -11%: halt
    assert risk.state is TradingState.HALTED
    change = risk.resume("lunch is over")
    assert change is not None and change.reason == "lunch is over"
    assert (change.previous, change.current) == (TradingState.HALTED, TradingState.ACTIVE)
    assert risk.high_water_mark == 89_000.0
    assert risk.on_equity(T0 + DAY + 60 * 10**9, 80_200.0) is None  # -9.9% from 89k
    assert risk.state is TradingState.ACTIVE  # and the daily limit (-5%) is off today
    change = risk.on_equity(T0 + DAY + 120 * 10**9, 80_099.0)  # -10.0% from 89k
    assert change is not None and change.current is TradingState.HALTED
    assert risk.resume() is not None
    assert risk.resume() is None  # already active


def test_halt_by_an_operator_does_not_flatten_by_itself() -> None:
    risk = fresh()
    change = risk.halt("operator")
    assert change is not None and not change.flatten and change.reason == "operator"
    assert risk.halt("again") is None
