"""SimBroker fills: next bar, path order inside a bar, gaps, partial fills, brackets."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnosis.core.config import ExecutionConfig
from gnosis.model.types import Bar, InvalidValue, Order, OrderType, Side
from gnosis.trading.sim_broker import _AT_OPEN, _FIRST, _NEVER, _SECOND, SimBroker, _Working

M = 60 * 10**9
FREE = ExecutionConfig(slippage_bps=0.0, impact_coefficient=0.0, sell_fee_bps=0.0,
                       max_participation=1.0)


def bar(i: int, o: float, h: float, l: float, c: float, v: float = 1e6) -> Bar:  # noqa: E741
    return Bar("SPY", i * M, o, h, l, c, v)


def market(cid: str, side: Side, qty: float = 10, **kw) -> Order:
    return Order(cid, "SPY", side, qty, OrderType.MARKET, ts_created=M, expected_price=100.0, **kw)


def test_market_order_fills_at_the_next_bars_open_not_the_decision_bar() -> None:
    broker = SimBroker(FREE)
    broker.submit(market("a", Side.BUY), active_from=0 * M + 1)  # decided on bar 0
    assert broker.on_bar(bar(0, 100, 101, 99, 100.5)) == []  # same bar: nothing
    fills = broker.on_bar(bar(1, 102, 103, 101, 102.5))
    assert [(f.price, f.quantity) for f in fills] == [(102.0, 10)]


def test_duplicate_client_order_id_is_ignored() -> None:
    broker = SimBroker(FREE)
    assert broker.submit(market("a", Side.BUY))
    assert not broker.submit(market("a", Side.BUY))
    assert len(broker.open_orders()) == 1


@pytest.mark.parametrize(
    ("side", "o", "h", "l", "c", "reason", "price"),
    [
        # long: stop 95, target 110
        (Side.BUY, 100, 101, 94, 96, "stop_loss", 95.0),  # low crosses the stop
        (Side.BUY, 100, 111, 99, 109, "take_profit", 110.0),  # high crosses the target
        (Side.BUY, 100, 111, 94, 105, "stop_loss", 95.0),  # up bar: O-L-H-C, the low comes first
        (Side.BUY, 100, 111, 94, 96, "take_profit", 110.0),  # down bar: O-H-L-C, the high first
        (Side.BUY, 100, 111, 94, 100, "stop_loss", 95.0),  # unchanged close: as an up bar
        (Side.BUY, 100, 101, 99, 100, None, None),  # nothing touched
        # short: stop 105, target 90
        (Side.SELL, 100, 106, 99, 104, "stop_loss", 105.0),
        (Side.SELL, 100, 101, 89, 91, "take_profit", 90.0),
    ],
)
def test_bracket_legs_fill_in_path_order(side: Side, o, h, l, c, reason, price) -> None:  # noqa: E741
    stop, target = (95.0, 110.0) if side is Side.BUY else (105.0, 90.0)
    broker = SimBroker(FREE)
    broker.submit(market("e", side, stop_loss=stop, take_profit=target), active_from=1)
    entry = broker.on_bar(bar(1, 100, 100, 100, 100))
    assert entry[0].price == 100.0
    assert {o.client_order_id for o in broker.open_orders()} == {"e-sl", "e-tp"}
    fills = broker.on_bar(bar(2, o, h, l, c))
    if reason is None:
        assert fills == []
        return
    assert [(f.reason, f.price) for f in fills] == [(reason, price)]
    assert broker.open_orders() == []  # the OCO sibling is gone


@pytest.mark.parametrize(
    ("side", "o", "expected"),
    [(Side.BUY, 90.0, 90.0), (Side.SELL, 112.0, 112.0)],
)
def test_a_gap_through_the_stop_fills_at_the_open(side: Side, o: float, expected: float) -> None:
    stop, target = (95.0, 110.0) if side is Side.BUY else (105.0, 80.0)
    broker = SimBroker(FREE)
    broker.submit(market("e", side, stop_loss=stop, take_profit=target), active_from=1)
    broker.on_bar(bar(1, 100, 100, 100, 100))
    fills = broker.on_bar(bar(2, o, o + 1, o - 1, o))
    assert [(f.reason, f.price) for f in fills] == [("stop_loss", expected)]
    assert "gap" in fills[0].liquidity_note


def test_a_gap_through_the_target_fills_at_the_better_open() -> None:
    broker = SimBroker(FREE)
    broker.submit(market("e", Side.BUY, stop_loss=95.0, take_profit=110.0), active_from=1)
    broker.on_bar(bar(1, 100, 100, 100, 100))
    fills = broker.on_bar(bar(2, 115, 116, 114, 115))
    assert [(f.reason, f.price) for f in fills] == [("take_profit", 115.0)]


def test_large_orders_fill_partially_against_bar_volume_and_legs_follow() -> None:
    broker = SimBroker(ExecutionConfig(slippage_bps=0.0, impact_coefficient=0.0,
                                       max_participation=0.1))
    broker.submit(market("e", Side.BUY, qty=250, stop_loss=95.0, take_profit=110.0),
                  active_from=1)
    first = broker.on_bar(bar(1, 100, 100, 100, 100, v=1_000))
    assert [f.quantity for f in first] == [100]
    legs = {o.client_order_id: o.quantity for o in broker.open_orders() if o.parent_id}
    assert legs == {"e-sl": 100, "e-tp": 100}
    second = broker.on_bar(bar(2, 100, 100, 100, 100, v=10_000))
    assert [f.quantity for f in second] == [150]
    legs = {o.client_order_id: o.quantity for o in broker.open_orders() if o.parent_id}
    assert legs == {"e-sl": 250, "e-tp": 250}


def test_slippage_and_fees_are_charged_against_us_and_tracked() -> None:
    broker = SimBroker(ExecutionConfig(slippage_bps=10.0, impact_coefficient=0.0,
                                       sell_fee_bps=1.0, commission_per_share=0.01))
    broker.submit(market("b", Side.BUY), active_from=1)
    broker.submit(market("s", Side.SELL), active_from=1)
    fills = {f.client_order_id: f for f in broker.on_bar(bar(1, 100, 101, 99, 100))}
    assert fills["b"].price == pytest.approx(100.1)
    assert fills["s"].price == pytest.approx(99.9)
    assert fills["b"].fee == pytest.approx(0.1)
    assert fills["s"].fee == pytest.approx(0.1 + 1e-4 * 99.9 * 10)
    assert fills["b"].slippage_cost == pytest.approx(1.0)  # expected 100, paid 100.1 × 10


def test_zero_volume_bar_fills_nothing() -> None:
    broker = SimBroker(FREE)
    broker.submit(market("a", Side.BUY), active_from=1)
    assert broker.on_bar(bar(1, 100, 100, 100, 100, v=0)) == []
    assert len(broker.open_orders()) == 1


def test_snapshot_round_trip_keeps_orders_and_ids() -> None:
    broker = SimBroker(FREE)
    broker.submit(market("a", Side.BUY), active_from=1)
    clone = SimBroker(FREE)
    clone.restore(broker.snapshot())
    assert clone.open_orders() == broker.open_orders()
    assert not clone.submit(market("a", Side.BUY))


@pytest.mark.parametrize(
    ("stop", "target", "side"), [(110.0, 95.0, Side.BUY), (95.0, 110.0, Side.SELL)]
)
def test_a_bracket_on_the_wrong_sides_is_refused(stop: float, target: float, side: Side) -> None:
    with pytest.raises(InvalidValue):
        market("x", side, stop_loss=stop, take_profit=target)


@pytest.mark.parametrize(("quantity", "impact_bps"), [(1_000, 1.0), (4_000, 2.0),
                                                      (9_000, 3.0)])
def test_market_impact_grows_with_the_square_root_of_participation(quantity: float,
                                                                   impact_bps: float) -> None:
    """Impact = coefficient × bar range × sqrt(participation): a bar ranging 1% of its open,
    coefficient 0.1, 1%/4%/9% of its volume → 1/2/3 bps (linear would give 1/4/9)."""
    broker = SimBroker(ExecutionConfig(slippage_bps=0.0, impact_coefficient=0.1,
                                       sell_fee_bps=0.0, max_participation=1.0))
    broker.submit(market("a", Side.BUY, quantity), active_from=1)
    (fill,) = broker.on_bar(bar(1, 100, 101, 100, 100.5, 100_000))
    assert fill.price == pytest.approx(100 * (1 + impact_bps * 1e-4))


@pytest.mark.parametrize(("side", "o", "h", "l", "c", "level", "expected"), [
    # a long's sell stop at 95 touched inside a down bar: it sells below the level
    (Side.BUY, 99.0, 99.5, 94.0, 94.5, 95.0, 95.0 * (1 - 0.001)),
    # a short's buy stop at 105 touched inside an up bar: it buys above the level
    (Side.SELL, 101.0, 106.0, 100.5, 105.5, 105.0, 105.0 * (1 + 0.001)),
])
def test_a_triggered_stop_pays_slippage_against_us(side, o, h, l, c, level,  # noqa: E741
                                                   expected) -> None:
    broker = SimBroker(ExecutionConfig(slippage_bps=10.0, impact_coefficient=0.0,
                                       sell_fee_bps=0.0, max_participation=1.0))
    stop, target = (level, 120.0) if side is Side.BUY else (level, 80.0)
    broker.submit(market("e", side, stop_loss=stop, take_profit=target), active_from=1)
    broker.on_bar(bar(1, 100, 100, 100, 100))
    (fill,) = broker.on_bar(bar(2, o, h, l, c))
    assert fill.reason == "stop_loss"
    assert fill.price == pytest.approx(expected)
    assert fill.reference_price == level
    assert fill.slippage_cost == pytest.approx(abs(expected - level) * 10)


def test_once_a_leg_trades_at_the_open_its_entry_does_not_grow_on_that_bar() -> None:
    """Bar 1 fills 100 of a 250-share entry and crosses its stop with no volume left (the stop
    is triggered, unfilled). Bar 2's open: the stop goes first and starts closing the trade, so
    the entry's remainder does not fill there; another order behind it still does."""
    broker = SimBroker(ExecutionConfig(slippage_bps=0.0, impact_coefficient=0.0,
                                       max_participation=0.1))
    broker.submit(market("e", Side.BUY, qty=250, stop_loss=95.0, take_profit=110.0),
                  active_from=1)
    first = broker.on_bar(bar(1, 100, 100, 94, 96, v=1_000))
    assert [(f.client_order_id, f.quantity) for f in first] == [("e", 100)]
    broker.submit(market("x", Side.SELL, qty=10), active_from=2 * M)
    second = broker.on_bar(bar(2, 94.5, 95, 94, 94.8, v=3_000))
    assert [(f.client_order_id, f.quantity, f.price) for f in second] == [
        ("e-sl", 100, 94.5), ("x", 10, 94.5)]
    assert [(o.client_order_id, left) for o, left in broker.working()] == [("e", 150)]


def test_a_leg_gone_with_its_sibling_does_not_stop_later_orders_on_the_path() -> None:
    """Stop and target both crossed on an up bar: the stop fills (low first) and takes its
    target with it; a separate limit crossed later on the path still fills."""
    broker = SimBroker(FREE)
    broker.submit(market("e", Side.BUY, stop_loss=95.0, take_profit=110.0), active_from=1)
    broker.on_bar(bar(1, 100, 100, 100, 100))
    broker.submit(Order("l", "SPY", Side.SELL, 5, OrderType.LIMIT, ts_created=M,
                        limit_price=108.0), active_from=2 * M)
    fills = broker.on_bar(bar(2, 100, 111, 94, 105))
    assert [(f.client_order_id, f.price) for f in fills] == [("e-sl", 95.0), ("l", 108.0)]


@given(side=st.sampled_from([Side.BUY, Side.SELL]),
       order_type=st.sampled_from([OrderType.STOP, OrderType.LIMIT]),
       level=st.floats(90, 110), o=st.floats(90, 110), c=st.floats(90, 110),
       up=st.floats(0, 5), down=st.floats(0, 5))
@settings(max_examples=500, deadline=None)
def test_a_resting_order_is_skipped_only_on_bars_that_cannot_fill_it(
        side: Side, order_type: OrderType, level: float, o: float, c: float, up: float,
        down: float) -> None:
    """The per-bar shortcut (a level the bar does not reach) and the broker's path position
    agree with the path model written from the order's type and side."""
    kind = {"stop_price": level} if order_type is OrderType.STOP else {"limit_price": level}
    order = Order("r", "SPY", side, 10, order_type, ts_created=M, **kind)
    b = bar(1, o, max(o, c) + up, min(o, c) - down, c)
    working = _Working(order)
    reached = (b.low <= working.level) if working.reached_from_above else (b.high >= working.level)
    up_bar = b.close >= b.open
    position = _path_model(order, b, up_bar)
    assert SimBroker._path_position(working, b, up_bar) == position
    assert reached == (position != _NEVER)
    broker = SimBroker(FREE)
    broker.submit(order)
    assert bool(broker.on_bar(b)) == reached


def _path_model(order: Order, b: Bar, up_bar: bool) -> int:
    """The path O->L->H->C (up bar) or O->H->L->C: where a stop or limit level trades."""
    low_at, high_at = (_FIRST, _SECOND) if up_bar else (_SECOND, _FIRST)
    level = order.stop_price if order.order_type is OrderType.STOP else order.limit_price
    assert level is not None
    # a sell stop and a buy limit trade when the price comes down to them, the others up
    down = (order.side is Side.SELL) == (order.order_type is OrderType.STOP)
    if down:
        return _AT_OPEN if b.open <= level else (low_at if b.low <= level else _NEVER)
    return _AT_OPEN if b.open >= level else (high_at if b.high >= level else _NEVER)
