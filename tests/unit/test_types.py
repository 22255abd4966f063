"""Domain types refuse bad values at construction."""

import math
import pickle
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnosis.model.types import (
    Bar,
    Decision,
    Fill,
    InvalidValue,
    Order,
    OrderType,
    Side,
    Vote,
    datetime_to_ns,
)

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


class _Explainer:
    calls = 0

    def explain(self, context: object) -> tuple:
        self.calls += 1
        vote = Vote("hedge", 1, 0.5, f"because {context}")
        return (vote,), (("markov", "off"),), "1/1 for +1", None


def test_a_decision_explained_on_demand_is_immutable_and_equals_the_eager_one() -> None:
    explainer = _Explainer()
    marks = (("hedge", "1"), ("markov", "off"))
    lazy = Decision.explained_by("SPY", 5, 1, 0.5, "ranging", 0.7, marks, explainer, "ctx")
    assert type(lazy) is Decision and explainer.calls == 0 and lazy.vote_marks == marks
    for name in ("signal", "symbol", "_votes", "_explainer"):
        with pytest.raises(AttributeError):
            setattr(lazy, name, 0)
        with pytest.raises(AttributeError):
            delattr(lazy, name)
    eager = Decision("SPY", 5, 1, 0.5, votes=(Vote("hedge", 1, 0.5, "because ctx"),),
                     regime="ranging", regime_confidence=0.7, reasoning="1/1 for +1",
                     inactive=(("markov", "off"),))
    assert lazy == eager and hash(lazy) == hash(eager) and explainer.calls == 1
    assert pickle.loads(pickle.dumps(lazy)) == eager
    assert lazy.reasoning == "1/1 for +1" and explainer.calls == 1  # formatted once


@pytest.mark.parametrize(("signal", "confidence"), [(2, 0.5), (-2, 0.5), (1, 1.5), (1, -0.1),
                                                     (1, math.nan)])
def test_a_decision_refuses_bad_numbers_either_way(signal: int, confidence: float) -> None:
    with pytest.raises(InvalidValue):
        Decision("SPY", 0, signal, confidence)
    with pytest.raises(InvalidValue):
        Decision.explained_by("SPY", 0, signal, confidence, None, None, (), _Explainer(), None)


_PRICES = st.sampled_from([None, 0.0, -1.0, math.nan, math.inf, 95.0, 100.0, 105.0])


@given(quantity=st.sampled_from([0.0, -1.0, math.nan, math.inf, 1.0, 31.0]),
       cid=st.sampled_from(["", "gn-1"]), side=st.sampled_from([Side.BUY, Side.SELL]),
       stop=_PRICES, target=_PRICES, limit=_PRICES, stop_price=_PRICES)
@settings(max_examples=600, deadline=None)
def test_an_order_is_accepted_exactly_when_every_rule_holds(
        quantity: float, cid: str, side: Side, stop: float | None, target: float | None,
        limit: float | None, stop_price: float | None) -> None:
    """The one chained test of a sound order and the rule-by-rule refusal agree."""
    def positive(x: float | None) -> bool:
        return x is None or 0.0 < x < math.inf

    sound = (0.0 < quantity < math.inf and bool(cid) and positive(stop) and positive(target)
             and positive(limit) and positive(stop_price)
             and (stop is None or target is None
                  or (target - stop) * (1 if side is Side.BUY else -1) > 0))
    make = lambda: Order(cid, "SPY", side, quantity, OrderType.LIMIT, 0,  # noqa: E731
                         limit_price=limit, stop_price=stop_price, stop_loss=stop,
                         take_profit=target)
    if sound:
        assert make().quantity == quantity
    else:
        with pytest.raises(InvalidValue):
            make()


@pytest.mark.parametrize("field", ["quantity", "stop_loss", "take_profit", "limit_price",
                                   "stop_price"])
@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_one_bad_price_or_quantity_refuses_an_otherwise_sound_order(field: str,
                                                                    bad: float) -> None:
    sound = dict(client_order_id="gn-1", symbol="SPY", side=Side.BUY, quantity=10.0,
                 order_type=OrderType.LIMIT, ts_created=0, limit_price=100.0,
                 stop_price=99.0, stop_loss=95.0, take_profit=105.0)
    assert Order(**sound).quantity == 10.0
    with pytest.raises(InvalidValue):
        Order(**{**sound, field: bad})
    with pytest.raises(InvalidValue):  # a bracket the wrong way round
        Order(**{**sound, "side": Side.SELL})
    with pytest.raises(InvalidValue):
        Order(**{**sound, "client_order_id": ""})
