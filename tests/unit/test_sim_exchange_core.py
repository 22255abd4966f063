"""The exchange core stepped by hand (no server): publication in simulated time, no look-ahead,
session closes, and the stream hub's slow-client rule."""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack
import pytest

from gnosis.model.types import NANOS_PER_MINUTE, NANOS_PER_SECOND
from gnosis.simexchange.exchange import ExchangeSettings, SimExchange
from gnosis.simexchange.orders import parse_order_request
from gnosis.simexchange.streams import Connection, Credentials, StreamHub


class Counter:
    def __init__(self) -> None:
        self.ns = 0

    def __call__(self) -> int:
        return self.ns


def exchange(**fields: Any) -> tuple[SimExchange, Counter]:
    mono = Counter()
    settings = ExchangeSettings(**{"days": 2, "history_days": 1, "speed": 60.0,
                                   "test_stream": False, **fields})
    return SimExchange(settings, monotonic=mono), mono


def test_history_is_whole_sessions_before_the_first_live_open() -> None:
    ex, _ = exchange()
    open_ns = ex.calendar.sessions[1].open_ns
    assert ex.now_ns == open_ns
    assert ex.history.count("SPY") == 390
    assert ex.history.last("SPY").ts_close <= open_ns
    assert ex.newsdesk.published, "a session of simulated history carries some headlines"
    assert all(a.created_at <= open_ns for a in ex.newsdesk.published)


def test_a_bar_is_published_only_once_its_minute_has_closed() -> None:
    ex, mono = exchange()
    start = ex.now_ns
    for seconds in (0.5, 0.99, 1, 1.01, 2.5, 389.5, 390, 395.2, 10_000):
        mono.ns = int(seconds * NANOS_PER_SECOND)  # speed 60: one real second is a minute
        ex.step()
        now = ex.now_ns
        last = ex.history.last("SPY")
        assert last.ts_close <= now
        elapsed = ex.calendar.trading_time(now) - ex.calendar.trading_time(start)
        expected = 390 + min(elapsed // NANOS_PER_MINUTE, 2 * 390)
        assert ex.history.count("SPY") == expected


def test_session_close_expires_day_orders_and_the_clock_skips_the_night() -> None:
    ex, mono = exchange()
    mono.ns = 2 * NANOS_PER_SECOND
    ex.step()
    order = ex.submit_order(parse_order_request({
        "symbol": "SPY", "side": "buy", "type": "limit", "time_in_force": "day", "qty": 1,
        "limit_price": 1.0}))
    first_close = ex.calendar.sessions[1].close_ns
    assert order.expires_at == first_close
    mono.ns = 390 * NANOS_PER_SECOND + NANOS_PER_SECOND // 2  # just past the close
    ex.step()
    assert order.status == "expired"
    assert ex.now_ns > ex.calendar.sessions[2].open_ns  # straight into the next session
    assert ex.history.count("SPY") == 2 * 390


def test_market_orders_fill_from_the_bar_after_they_arrive() -> None:
    ex, mono = exchange()
    mono.ns = 90 * NANOS_PER_SECOND // 60  # 1.5 simulated minutes in
    ex.step()
    arrived = ex.now_ns
    order = ex.submit_order(parse_order_request({
        "symbol": "SPY", "side": "buy", "type": "market", "time_in_force": "day", "qty": 5}))
    mono.ns += 3 * NANOS_PER_SECOND
    ex.step()
    fill_bar = ex.history.at_or_before("SPY", arrived + NANOS_PER_MINUTE)
    assert fill_bar is not None and fill_bar.ts_event == ex.calendar.next_minute_start(arrived)
    assert order.status == "filled"
    assert fill_bar.low <= order.avg_price <= fill_bar.high
    assert order.avg_price >= fill_bar.open  # a buy pays slippage from the open


def test_bad_settings_are_refused() -> None:
    from gnosis.simexchange.exchange import ExchangeError

    with pytest.raises(ExchangeError):
        ExchangeSettings(speed=0)
    with pytest.raises(ExchangeError):
        ExchangeSettings(key="k")
    with pytest.raises(ExchangeError):
        SimExchange(ExchangeSettings(news_file=__file__))  # type: ignore[arg-type]


class StuckSocket:
    """A WebSocket whose send never completes (a client that stopped reading)."""

    def __init__(self) -> None:
        self.closed_with: int | None = None
        self.sent: list[bytes] = []
        self.release = asyncio.Event()

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)
        await self.release.wait()

    async def close(self, code: int = 1000) -> None:
        self.closed_with = code


def test_a_slow_client_is_cut_off_with_407_instead_of_stalling_the_hub() -> None:
    async def scenario() -> tuple[StuckSocket, StreamHub, Connection]:
        hub = StreamHub(Credentials(), outbox_limit=5)
        socket = StuckSocket()
        conn = Connection(socket, "/v2/iex", hub.outbox_limit)  # type: ignore[arg-type]
        conn.key = "k"
        conn.subscriptions["bars"] = {"SPY"}
        hub.connections.add(conn)
        writer = asyncio.get_running_loop().create_task(conn.writer())
        for i in range(20):  # the hub never waits on the client
            hub.publish(("/v2/iex",), "bars", "SPY", {"T": "b", "S": "SPY", "i": i})
            hub.flush()
            await asyncio.sleep(0)
        socket.release.set()
        await asyncio.wait_for(writer, 5)
        return socket, hub, conn

    socket, hub, conn = asyncio.run(scenario())
    assert conn.slow and conn not in hub.connections and hub.slow_disconnects == 1
    assert msgpack.unpackb(socket.sent[-1]) == [{"T": "error", "code": 407, "msg": "slow client"}]
    assert socket.closed_with == 1008


def test_credentials_accept_any_non_empty_pair_unless_keys_were_given() -> None:
    assert Credentials().accepts("a", "b")
    assert not Credentials().accepts("", "b") and not Credentials().accepts(None, "b")
    fixed = Credentials("k", "s")
    assert fixed.accepts("k", "s") and not fixed.accepts("k", "x")
