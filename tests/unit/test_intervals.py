"""The one interval rule: bars per year, trading time per bar, and the names of intervals."""

from __future__ import annotations

import math

import pytest

from gnosis.model.intervals import (
    bars_in,
    bars_per_session,
    bars_per_year,
    format_interval,
    is_intraday,
    parse_timeframe,
)

MINUTE, HOUR, DAY, WEEK = 60, 3_600, 86_400, 7 * 86_400


@pytest.mark.parametrize(("interval_s", "per_year"), [
    (1, 252 * 23_400),  # 1-second bars tile trading time
    (MINUTE, 252 * 390),
    (5 * MINUTE, 252 * 78),
    (15 * MINUTE, 252 * 26),
    (30 * MINUTE, 252 * 13),
    (HOUR, 252 * 6.5),
    (4 * HOUR, 252 * 1.625),
    (23_400, 252),  # a bar of one whole session
    (12 * HOUR, 252),  # longer than a session, shorter than a day: still one a session
    (DAY, 252),
    (WEEK, 365.25 / 7),  # calendar periods above a day
    (30 * DAY, 365.25 / 30),
])
def test_bars_per_year(interval_s: int, per_year: float) -> None:
    assert bars_per_year(interval_s) == pytest.approx(per_year, rel=1e-12)


def test_one_minute_annualisation_is_bit_for_bit_the_old_constant() -> None:
    # the synthetic market and every 1-minute figure depend on these exact floats
    assert math.sqrt(bars_per_year(60)) == math.sqrt(252 * 390 * 60.0 / 60)
    assert bars_per_session(60) == 390


def test_bars_per_year_never_rises_and_never_jumps_as_the_interval_grows() -> None:
    grid = sorted({*range(1, 120), *range(120, 200_000, 97), 23_399, 23_400, 23_401, DAY - 1,
                   DAY, DAY + 1, 125_000, 126_230, 126_240, WEEK, 40 * DAY})
    values = [bars_per_year(s) for s in grid]
    assert all(a >= b for a, b in zip(values, values[1:]))
    for s in (23_400, DAY, 1.44 * DAY, 1.45 * DAY):  # the seams of the piecewise rule
        assert bars_per_year(s - 1e-6) == pytest.approx(bars_per_year(s + 1e-6), rel=1e-6)


@pytest.mark.parametrize(("seconds", "interval_s", "bars"), [
    (3_600, MINUTE, 60.0),  # an hour of trading is 60 one-minute bars ...
    (3_600, 5 * MINUTE, 12.0),
    (3_600, HOUR, 1.0),
    (3_600, DAY, 3_600 / 23_400),  # ... and a fraction of a daily bar
    (20 * 23_400, MINUTE, 7_800.0),  # twenty sessions
    (20 * 23_400, DAY, 20.0),
])
def test_bars_in_trading_time(seconds: float, interval_s: int, bars: float) -> None:
    assert bars_in(seconds, interval_s) == pytest.approx(bars)


@pytest.mark.parametrize(("interval_s", "intraday"), [
    (MINUTE, True), (HOUR, True), (4 * HOUR, True), (23_400, False), (DAY, False),
])
def test_intraday_means_shorter_than_a_session(interval_s: int, intraday: bool) -> None:
    assert is_intraday(interval_s) is intraday


@pytest.mark.parametrize(("text", "seconds"), [
    ("1Min", MINUTE), ("5Min", 300), ("15min", 900), ("30T", 1_800), ("1H", HOUR),
    ("1Hour", HOUR), ("4h", 4 * HOUR), ("1D", DAY), ("1Day", DAY), ("1W", WEEK),
    ("1Week", WEEK), ("30S", 30), ("30Sec", 30), (" 5Min ", 300),
])
def test_parse_timeframe(text: str, seconds: int) -> None:
    assert parse_timeframe(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "Min", "0Min", "-5Min", "5 Minutes", "1M", "1Mo",
                                  "1.5H", "5Min5", "x1D"])
def test_parse_timeframe_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match="timeframe"):
        parse_timeframe(text)


@pytest.mark.parametrize(("seconds", "name"), [
    (MINUTE, "1Min"), (300, "5Min"), (900, "15Min"), (5_400, "90Min"), (HOUR, "1H"),
    (2 * HOUR, "2H"), (DAY, "1D"), (2 * DAY, "2D"), (WEEK, "1W"), (45, "45s"),
])
def test_format_interval_round_trips(seconds: int, name: str) -> None:
    assert format_interval(seconds) == name
    assert parse_timeframe(name) == seconds


@pytest.mark.parametrize(("interval_s", "per_year"), [(60, 252 * 390), (300, 252 * 78),
                                                       (DAY, 252)])
def test_the_engine_sizes_on_volatility_annualised_by_the_same_rule(interval_s: int,
                                                                    per_year: float) -> None:
    import numpy as np

    from gnosis.core.config import load_config
    from gnosis.model.types import Bar
    from gnosis.strategies.sma_crossover import SmaCrossover
    from gnosis.trading.engine import Engine
    from gnosis.trading.sim_broker import SimBroker

    config = load_config()
    engine = Engine(config, SmaCrossover(5, 20), SimBroker(config.execution))
    rng = np.random.default_rng(5)
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, 200)))
    for i, close in enumerate(closes.tolist()):
        engine.warm_up(Bar("X", i * interval_s * 10**9, close, close, close, close, 1e4,
                           interval_s=interval_s))
    returns = np.diff(np.log(closes[-61:]))
    expected = math.sqrt(returns.var() * per_year)
    assert engine.volatility("X", interval_s) == pytest.approx(expected, rel=1e-9)
