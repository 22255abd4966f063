"""Domain types refuse bad values at construction."""

import math
from datetime import UTC, datetime

import pytest

from gnosis.model.types import Bar, Fill, InvalidValue, Order, OrderType, Side, datetime_to_ns

GOOD = dict(symbol="SPY", ts_event=0, open=100.0, high=101.0, low=99.0, close=100.5, volume=10.0)


@pytest.mark.parametrize(
    "change",
    [
        {"open": math.nan},
        {"close": math.inf},
        {"high": math.inf},
        {"low": 0.0},
        {"low": -1.0, "open": -0.5, "close": -0.5, "high": 0.0},
        {"high": 98.0},  # high < low
        {"open": 102.0},  # open above high
        {"close": 98.0},  # close below low
        {"volume": -1.0},
        {"volume": math.nan},
        {"symbol": ""},
    ],
)
def test_bad_bars_are_refused(change: dict) -> None:
    with pytest.raises(InvalidValue):
        Bar(**{**GOOD, **change})


def test_a_good_bar_is_immutable_and_knows_its_close_time() -> None:
    bar = Bar(**GOOD)
    assert bar.ts_close == 60 * 10**9
    with pytest.raises(AttributeError):
        bar.close = 1.0  # type: ignore[misc]


def test_a_broken_vwap_is_dropped_not_fatal() -> None:
    assert Bar(**GOOD, vwap=math.nan).vwap is None


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(InvalidValue):
        datetime_to_ns(datetime(2024, 1, 2, 14, 30))  # noqa: DTZ001
    assert datetime_to_ns(datetime(1970, 1, 1, 0, 1, tzinfo=UTC)) == 60 * 10**9


@pytest.mark.parametrize("quantity", [0.0, -5.0, math.nan, math.inf])
def test_orders_need_a_positive_quantity(quantity: float) -> None:
    with pytest.raises(InvalidValue):
        Order("id", "SPY", Side.BUY, quantity, OrderType.MARKET, 0)


@pytest.mark.parametrize(("price", "fee"), [(0.0, 0.0), (math.nan, 0.0), (10.0, -1.0)])
def test_fills_need_a_price_and_a_non_negative_fee(price: float, fee: float) -> None:
    with pytest.raises(InvalidValue):
        Fill("id", "SPY", Side.BUY, 1.0, price, fee, 0, 10.0)
