"""The market-data and news streams over real sockets: the unmodified alpaca-py SDK, and a raw
WebSocket client where the exact frames matter (402, 406, 410, acks, a mute stream)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC
from typing import Any

import msgpack
import pytest
from alpaca.data.live import NewsDataStream, StockDataStream
from alpaca.data.models import Bar, News, Quote, Trade
from websockets.asyncio.client import connect

from gnosis.simexchange import SimExchangeServer
from tests.support.sim_exchange import (
    SIM_KEY,
    SIM_SECRET,
    async_wait_for,
    run_stream,
    running_exchange,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server() -> Iterator[SimExchangeServer]:
    with running_exchange(key=SIM_KEY, secret=SIM_SECRET, symbols=("SPY", "QQQ")) as srv:
        yield srv


async def _recv(ws: Any, limit_s: float = 10.0) -> list[dict[str, Any]]:
    frame = await asyncio.wait_for(ws.recv(), limit_s)
    messages = msgpack.unpackb(frame)
    assert isinstance(messages, list) and all(isinstance(m, dict) for m in messages)
    return messages


async def _authenticated(url: str, key: str = SIM_KEY, secret: str = SIM_SECRET) -> Any:
    ws = await connect(url, additional_headers={"Content-Type": "application/msgpack"})
    assert await _recv(ws) == [{"T": "success", "msg": "connected"}]
    await ws.send(msgpack.packb({"action": "auth", "key": key, "secret": secret}))
    return ws


def test_sdk_receives_bars_trades_quotes_and_updated_bars(server: SimExchangeServer) -> None:
    bars: list[Bar] = []
    trades: list[Trade] = []
    quotes: list[Quote] = []
    updated: list[Bar] = []

    async def scenario() -> None:
        stream = StockDataStream(SIM_KEY, SIM_SECRET, url_override=f"{server.stream_url}/v2/iex")

        async def on_bar(bar: Bar) -> None:
            bars.append(bar)

        async def on_trade(trade: Trade) -> None:
            trades.append(trade)

        async def on_quote(quote: Quote) -> None:
            quotes.append(quote)

        async def on_updated(bar: Bar) -> None:
            updated.append(bar)

        stream.subscribe_bars(on_bar, "SPY", "QQQ")
        stream.subscribe_trades(on_trade, "SPY")
        stream.subscribe_quotes(on_quote, "SPY")
        stream.subscribe_updated_bars(on_updated, "SPY", "QQQ")
        await run_stream(stream, lambda: len(bars) >= 6 and updated, limit_s=60,
                         what="bars and an updated bar")

    asyncio.run(scenario())
    assert {b.symbol for b in bars} == {"SPY", "QQQ"}
    for bar in bars:
        assert bar.timestamp.tzinfo is not None and bar.timestamp.utcoffset().total_seconds() == 0
        assert bar.timestamp.second == 0 and bar.timestamp.microsecond == 0  # minute start
        assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
        assert bar.vwap is not None and bar.trade_count is not None
    assert trades and quotes and all(t.symbol == "SPY" for t in trades)
    assert all(q.bid_price <= q.ask_price for q in quotes)
    # an updated bar revises a minute that was already published
    published = {(b.symbol, b.timestamp): b for b in bars}
    revision = updated[0]
    assert revision.timestamp.second == 0
    if (revision.symbol, revision.timestamp) in published:
        original = published[(revision.symbol, revision.timestamp)]
        assert revision.volume > original.volume and revision.open == original.open
    # the bars of one symbol arrive in time order, one per minute
    spy = [b.timestamp for b in bars if b.symbol == "SPY"]
    assert spy == sorted(spy) and len(set(spy)) == len(spy)


def test_handshake_acks_errors_and_a_fragmented_subscribe(server: SimExchangeServer) -> None:
    async def scenario() -> None:
        url = f"{server.stream_url}/v2/sip"
        ws = await connect(url)
        await _recv(ws)
        await ws.send(msgpack.packb({"action": "subscribe", "bars": ["SPY"]}))
        assert await _recv(ws) == [{"T": "error", "code": 401, "msg": "not authenticated"}]
        await ws.send(msgpack.packb({"action": "auth", "key": SIM_KEY, "secret": SIM_SECRET}))
        assert await _recv(ws) == [{"T": "success", "msg": "authenticated"}]
        await ws.send(b"\xc1 not msgpack")
        assert await _recv(ws) == [{"T": "error", "code": 400, "msg": "invalid syntax"}]
        await ws.send(msgpack.packb({"action": "teleport"}))
        assert await _recv(ws) == [{"T": "error", "code": 410,
                                    "msg": "invalid subscribe action"}]
        # the subscribe message in three fragments, as the SDK sends large ones
        payload = msgpack.packb({"action": "subscribe", "bars": ["SPY", "QQQ"],
                                 "trades": ["QQQ"]})
        await ws.send(iter([payload[:5], payload[5:11], payload[11:]]))
        ack = await _first(ws, "subscription")
        assert ack == {"T": "subscription", "trades": ["QQQ"], "quotes": [], "bars":
                       ["QQQ", "SPY"], "updatedBars": [], "dailyBars": [], "statuses": [],
                       "lulds": [], "corrections": ["QQQ"], "cancelErrors": ["QQQ"]}
        await ws.send(msgpack.packb({"action": "unsubscribe", "bars": ["QQQ"]}))
        ack = await _first(ws, "subscription")
        assert ack["bars"] == ["SPY"] and ack["trades"] == ["QQQ"]  # the full current set
        await ws.close()

    asyncio.run(scenario())


async def _first(ws: Any, kind: str) -> dict[str, Any]:
    """The next message of type ``kind`` (market data may come first)."""
    for _ in range(200):
        for message in await _recv(ws):
            if message["T"] == kind:
                return message
    raise AssertionError(f"no {kind} message")


def test_bad_keys_get_402_and_a_second_connection_406(server: SimExchangeServer) -> None:
    async def scenario() -> None:
        url = f"{server.stream_url}/v2/iex"
        bad = await _authenticated(url, secret="wrong")
        assert await _recv(bad) == [{"T": "error", "code": 402, "msg": "auth failed"}]
        await asyncio.wait_for(bad.wait_closed(), 10)
        first = await _authenticated(url)
        assert await _recv(first) == [{"T": "success", "msg": "authenticated"}]
        second = await _authenticated(url)
        assert await _recv(second) == [{"T": "error", "code": 406,
                                        "msg": "connection limit exceeded"}]
        await asyncio.wait_for(second.wait_closed(), 10)
        # one connection per key *per endpoint*: the news stream is another endpoint
        news = await _authenticated(f"{server.stream_url}/v1beta1/news")
        assert await _recv(news) == [{"T": "success", "msg": "authenticated"}]
        await news.close()
        await first.close()
        # and once the first is gone its key can connect again
        await async_wait_for(lambda: server.status()["connections"].get("/v2/iex", 0) == 0,
                             what="the server to forget the closed connection")
        again = await _authenticated(url)
        assert await _recv(again) == [{"T": "success", "msg": "authenticated"}]
        await again.close()

    asyncio.run(scenario())


def test_injected_406_refuses_the_next_auth(server: SimExchangeServer) -> None:
    async def scenario() -> None:
        server.inject({"fault": "refuse_streams", "endpoint": "/v2/test", "count": 1})
        url = f"{server.stream_url}/v2/test"
        refused = await _authenticated(url)
        assert (await _recv(refused))[0]["code"] == 406
        accepted = await _authenticated(url)
        assert await _recv(accepted) == [{"T": "success", "msg": "authenticated"}]
        await accepted.send(msgpack.packb({"action": "subscribe", "bars": ["FAKEPACA"]}))
        bar = await _first(accepted, "b")
        assert bar["S"] == "FAKEPACA" and isinstance(bar["t"], msgpack.Timestamp)
        await accepted.close()

    asyncio.run(scenario())


def test_sdk_reconnects_and_resubscribes_after_a_drop(server: SimExchangeServer) -> None:
    bars: list[Bar] = []
    state: dict[str, Any] = {}

    async def scenario() -> None:
        stream = StockDataStream(SIM_KEY, SIM_SECRET, url_override=f"{server.stream_url}/v2/sip")

        async def on_bar(bar: Bar) -> None:
            bars.append(bar)
            if len(bars) == 2:
                state["dropped"] = server.inject({"fault": "drop_streams", "endpoint":
                                                  "/v2/sip"})
                state["at"] = len(bars)

        stream.subscribe_bars(on_bar, "SPY")
        await run_stream(stream, lambda: "at" in state and len(bars) >= state["at"] + 3,
                         limit_s=60, what="bars after the reconnect")

    asyncio.run(scenario())
    assert state["dropped"] == {"dropped": 1}
    # after the reconnect the SDK subscribed again: bars keep coming, in order, no duplicates
    times = [b.timestamp for b in bars]
    assert times == sorted(times)


def test_a_stalled_stream_stays_open_and_mute(server: SimExchangeServer) -> None:
    async def scenario() -> None:
        await async_wait_for(lambda: server.status()["connections"].get("/v2/iex", 0) == 0,
                             what="earlier connections to close")
        ws = await _authenticated(f"{server.stream_url}/v2/iex")
        assert await _recv(ws) == [{"T": "success", "msg": "authenticated"}]
        await ws.send(msgpack.packb({"action": "subscribe", "bars": ["SPY"]}))
        await _first(ws, "subscription")
        await _first(ws, "b")
        server.inject({"fault": "stall_stream", "endpoint": "/v2/iex", "seconds": 30})
        published = server.status()["bars_published"]
        # while bars keep being published, nothing reaches the muted client...
        await async_wait_for(lambda: server.status()["bars_published"] >= published + 6,
                             what="bars published during the stall")
        received: list[Any] = []
        while True:
            try:
                received.append(await asyncio.wait_for(ws.recv(), 0.05))
            except TimeoutError:
                break
        # at most a frame already queued before the stall drains; the bars published meanwhile
        # (six or more) never arrive
        assert len(received) <= 1
        # ...and the socket is alive: it answers a ping
        pong = await ws.ping()
        await asyncio.wait_for(pong, 10)
        assert server.status()["connections"].get("/v2/iex") == 1
        await ws.close()

    asyncio.run(scenario())


def test_news_stream_delivers_simulated_headlines(server: SimExchangeServer) -> None:
    articles: list[News] = []

    async def scenario() -> None:
        stream = NewsDataStream(SIM_KEY, SIM_SECRET,
                                url_override=f"{server.stream_url}/v1beta1/news")

        async def on_news(news: News) -> None:
            articles.append(news)

        stream.subscribe_news(on_news, "*")
        await run_stream(stream, lambda: articles, limit_s=90, what="a headline")

    asyncio.run(scenario())
    news = articles[0]
    assert news.headline and set(news.symbols) <= {"SPY", "QQQ"}
    assert news.created_at.tzinfo is not None and news.created_at.tzinfo.utcoffset(None) is not \
        None or news.created_at.tzinfo == UTC
