"""Trading through the unmodified alpaca-py SDK against gnosis sim-exchange: TradingClient for
the REST API and TradingStream for ``trade_updates``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.models import Order, TradeUpdate
from alpaca.trading.requests import (
    ClosePositionRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
)
from alpaca.trading.stream import TradingStream

from gnosis.simexchange import SimExchangeServer
from tests.support.sim_exchange import (
    SIM_KEY,
    SIM_SECRET,
    async_wait_for,
    running_exchange,
    wait_for,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server() -> Iterator[SimExchangeServer]:
    with running_exchange(key=SIM_KEY, secret=SIM_SECRET, symbols=("SPY", "QQQ"),
                          initial_cash=200_000_000.0, days=3) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: SimExchangeServer) -> TradingClient:
    return TradingClient(SIM_KEY, SIM_SECRET, paper=True, url_override=server.base_url)


def _done(client: TradingClient, order_id: Any) -> Order:
    return wait_for(lambda: (o := client.get_order_by_id(order_id)).status in (
        OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED) and o,
        what="the order to finish")


def test_account_clock_and_assets(client: TradingClient) -> None:
    account = client.get_account()
    assert account.status.value == "ACTIVE" and float(account.cash) > 0
    assert isinstance(account.equity, str) and float(account.equity) == float(account.cash)
    clock = client.get_clock()
    assert clock.is_open and clock.next_close > clock.timestamp
    assert clock.timestamp.utcoffset().total_seconds() in (-5 * 3600, -4 * 3600)  # New York
    asset = client.get_asset("SPY")
    assert asset.symbol == "SPY" and asset.tradable and asset.shortable
    with pytest.raises(APIError) as missing:
        client.get_asset("NOPE")
    assert missing.value.status_code == 404


def test_bad_keys_are_refused(server: SimExchangeServer) -> None:
    stranger = TradingClient("someone", "else", paper=True, url_override=server.base_url)
    with pytest.raises(APIError) as refused:
        stranger.get_account()
    assert refused.value.status_code == 401 and refused.value.code == 40110000


def test_market_order_fills_and_shows_as_a_position(client: TradingClient) -> None:
    order = client.submit_order(MarketOrderRequest(
        symbol="QQQ", qty=7, side=OrderSide.BUY, time_in_force=TimeInForce.DAY,
        client_order_id="mkt-qqq-1"))
    assert order.status == OrderStatus.NEW and order.client_order_id == "mkt-qqq-1"
    filled = _done(client, order.id)
    assert filled.status == OrderStatus.FILLED and float(filled.filled_qty) == 7
    assert filled.filled_at is not None and float(filled.filled_avg_price) > 0
    assert client.get_order_by_client_id("mkt-qqq-1").id == order.id
    position = client.get_open_position("QQQ")
    assert float(position.qty) == 7 and position.side.value == "long"
    assert float(position.avg_entry_price) == pytest.approx(float(filled.filled_avg_price))
    with pytest.raises(APIError) as duplicate:
        client.submit_order(MarketOrderRequest(symbol="QQQ", qty=1, side=OrderSide.BUY,
                                               time_in_force=TimeInForce.DAY,
                                               client_order_id="mkt-qqq-1"))
    assert duplicate.value.status_code == 422
    assert "client_order_id" in duplicate.value.message
    closing = client.close_position("QQQ", ClosePositionRequest(qty="3"))
    assert closing.side == OrderSide.SELL and float(closing.qty) == 3
    _done(client, closing.id)
    assert float(client.get_open_position("QQQ").qty) == 4
    _done(client, client.close_position("QQQ").id)
    assert all(p.symbol != "QQQ" for p in client.get_all_positions())


def test_limit_replace_cancel_and_cancel_all(client: TradingClient) -> None:
    price = _last_price(client)
    order = client.submit_order(LimitOrderRequest(
        symbol="SPY", qty=2, side=OrderSide.BUY, time_in_force=TimeInForce.GTC,
        limit_price=round(price * 0.5, 2)))
    replaced = client.replace_order_by_id(order.id, ReplaceOrderRequest(
        limit_price=round(price * 0.6, 2)))
    assert replaced.replaces == order.id and float(replaced.limit_price) == round(price * 0.6, 2)
    old = client.get_order_by_id(order.id)
    assert old.status == OrderStatus.REPLACED and old.replaced_by == replaced.id
    client.cancel_order_by_id(replaced.id)
    assert client.get_order_by_id(replaced.id).status == OrderStatus.CANCELED
    with pytest.raises(APIError) as twice:
        client.cancel_order_by_id(replaced.id)
    assert twice.value.status_code == 422
    for factor in (0.5, 0.55):
        client.submit_order(LimitOrderRequest(symbol="SPY", qty=1, side=OrderSide.BUY,
                                              time_in_force=TimeInForce.GTC,
                                              limit_price=round(price * factor, 2)))
    results = client.cancel_orders()
    assert len(results) >= 2 and all(r.status == 200 for r in results)
    assert client.get_orders() == []  # nothing open


def _last_price(client: TradingClient) -> float:
    """The last closed minute's close of SPY, from the historical data API of the same
    server."""
    from alpaca.data.historical import StockHistoricalDataClient
    from alpaca.data.requests import StockBarsRequest
    from alpaca.data.timeframe import TimeFrame

    base_url = str(client._base_url)  # the TradingClient was built with this url_override
    data = StockHistoricalDataClient(SIM_KEY, SIM_SECRET, url_override=base_url)
    bars = data.get_stock_bars(StockBarsRequest(symbol_or_symbols="SPY",
                                                timeframe=TimeFrame.Minute,
                                                start=datetime(2024, 1, 1)))
    return float(bars["SPY"][-1].close)


def test_stop_order_triggers_and_bracket_legs_protect_the_entry(client: TradingClient) -> None:
    price = _last_price(client)
    stop = client.submit_order(StopOrderRequest(
        symbol="SPY", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.GTC,
        stop_price=round(price * 0.9, 2)))  # already above the trigger: fills at once
    assert _done(client, stop.id).status == OrderStatus.FILLED
    entry = client.submit_order(MarketOrderRequest(
        symbol="SPY", qty=5, side=OrderSide.BUY, time_in_force=TimeInForce.GTC,
        order_class="bracket", take_profit=TakeProfitRequest(limit_price=round(price * 1.5, 2)),
        stop_loss=StopLossRequest(stop_price=round(price * 0.5, 2))))
    assert entry.order_class.value == "bracket" and len(entry.legs) == 2
    assert {leg.status for leg in entry.legs} == {OrderStatus.HELD}
    assert _done(client, entry.id).status == OrderStatus.FILLED
    legs = client.get_order_by_id(entry.id).legs
    assert {leg.status for leg in legs} == {OrderStatus.NEW}
    assert {leg.type.value for leg in legs} == {"limit", "stop"}
    # the legs hold the entry's shares, so selling them separately is refused (403)
    with pytest.raises(APIError) as held:
        client.submit_order(MarketOrderRequest(symbol="SPY", qty=6, side=OrderSide.SELL,
                                               time_in_force=TimeInForce.DAY))
    assert held.value.status_code == 403 and "insufficient qty" in held.value.message
    stop_leg = next(leg for leg in legs if leg.type.value == "stop")
    moved = client.replace_order_by_id(stop_leg.id, ReplaceOrderRequest(
        stop_price=round(price * 0.6, 2)))
    assert float(moved.stop_price) == round(price * 0.6, 2)
    client.cancel_order_by_id(moved.id)  # one leg takes its OCO sibling with it
    statuses = {o.status for o in client.get_order_by_id(entry.id).legs}
    assert statuses == {OrderStatus.CANCELED}
    _done(client, client.close_position("SPY").id)


def test_rest_faults_429_is_retried_500_surfaces(server: SimExchangeServer,
                                                 client: TradingClient) -> None:
    server.inject({"fault": "http_error", "status": 429, "path_prefix": "/v2/clock"})
    assert client.get_clock().is_open in (True, False)  # the SDK retried and got through
    assert server.status()["faults"]["http"] == []
    server.inject({"fault": "http_error", "status": 500, "path_prefix": "/v2/account"})
    with pytest.raises(APIError) as failed:
        client.get_account()
    assert failed.value.status_code == 500 and failed.value.code == 50010000
    assert client.get_account().status.value == "ACTIVE"  # only the next request failed


def test_trade_updates_cover_every_event(server: SimExchangeServer,
                                         client: TradingClient) -> None:
    updates: list[TradeUpdate] = []

    async def scenario() -> dict[str, str]:
        stream = TradingStream(SIM_KEY, SIM_SECRET, paper=True,
                               url_override=f"{server.stream_url}/stream")

        async def on_update(update: TradeUpdate) -> None:
            updates.append(update)

        stream.subscribe_trade_updates(on_update)
        task = asyncio.get_running_loop().create_task(stream._run_forever())
        try:
            await async_wait_for(lambda: server.status()["trade_listeners"] == 1,
                                 what="the trade stream to listen")
            ids = await asyncio.to_thread(_order_story, server, client)
            await async_wait_for(lambda: any(str(u.order.id) == ids["expired"]
                                             and u.event == "expired" for u in updates),
                                 what="the last trade update")
            return ids
        finally:
            await stream.stop_ws()
            await asyncio.wait_for(task, 15)

    ids = asyncio.run(scenario())
    by_order: dict[str, list[TradeUpdate]] = {}
    for update in updates:
        by_order.setdefault(str(update.order.id), []).append(update)
    # a big order fills in pieces: each event carries its own qty, the order a running total
    big = by_order[ids["big"]]
    fills = [u for u in big if u.event in ("partial_fill", "fill")]
    assert [u.event for u in big][0] == "new" and fills[-1].event == "fill"
    assert len(fills) >= 3
    assert sum(u.qty for u in fills) == pytest.approx(float(fills[-1].order.filled_qty))
    assert float(fills[-1].order.filled_qty) == 150_000
    cumulative = [float(u.order.filled_qty) for u in fills]
    assert cumulative == sorted(cumulative) and len(set(cumulative)) == len(cumulative)
    assert all(u.execution_id is not None and u.price and u.position_qty is not None
               for u in fills)
    assert [u.event for u in by_order[ids["replaced"]]] == ["new", "replaced"]
    assert [u.event for u in by_order[ids["replacement"]]] == ["new", "canceled"]
    assert [u.event for u in by_order[ids["rejected"]]] == ["pending_new", "rejected"]
    assert [u.event for u in by_order[ids["expired"]]] == ["new", "expired"]


def _order_story(server: SimExchangeServer, client: TradingClient) -> dict[str, str]:
    """Orders whose trade updates the stream test checks (runs in a worker thread)."""
    big = client.submit_order(MarketOrderRequest(symbol="SPY", qty=150_000, side=OrderSide.BUY,
                                                 time_in_force=TimeInForce.GTC))
    _done(client, big.id)
    price = _last_price(client)
    resting = client.submit_order(LimitOrderRequest(
        symbol="SPY", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.GTC,
        limit_price=round(price * 0.5, 2)))
    replacement = client.replace_order_by_id(resting.id, ReplaceOrderRequest(
        limit_price=round(price * 0.55, 2)))
    client.cancel_order_by_id(replacement.id)
    server.inject({"fault": "reject_orders", "mode": "venue"})
    rejected = client.submit_order(MarketOrderRequest(symbol="SPY", qty=1, side=OrderSide.BUY,
                                                      time_in_force=TimeInForce.DAY))
    assert rejected.status == OrderStatus.PENDING_NEW
    wait_for(lambda: client.get_order_by_id(rejected.id).status == OrderStatus.REJECTED,
             what="the venue to reject")
    expiring = client.submit_order(LimitOrderRequest(
        symbol="SPY", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY,
        limit_price=round(price * 0.5, 2)))
    clock = client.get_clock()
    server.advance((clock.next_close - clock.timestamp).total_seconds() + 1)
    wait_for(lambda: client.get_order_by_id(expiring.id).status == OrderStatus.EXPIRED,
             what="the day order to expire")
    _done(client, client.close_position("SPY").id)
    return {"big": str(big.id), "replaced": str(resting.id),
            "replacement": str(replacement.id), "rejected": str(rejected.id),
            "expired": str(expiring.id)}
