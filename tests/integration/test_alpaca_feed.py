"""AlpacaFeed over real sockets against ``gnosis sim-exchange``: a dropped stream and a mute
stream are reconnected and backfilled with no bar missed or doubled, even when the first
backfill meets server errors; a 406 at connect is
survived; a rejected key stops with one line; the market clock says when trading starts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame

from gnosis.adapters.alpaca.errors import AlpacaAuthError
from gnosis.model.types import datetime_to_ns, ns_to_datetime
from gnosis.simexchange import SimExchangeServer
from tests.support.alpaca_bot import BotRun, config_for, point_at
from tests.support.sim_exchange import running_exchange

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimExchangeServer]:
    with running_exchange(symbols=("SPY", "QQQ"), speed=1200.0, days=2, history_days=1) as srv:
        point_at(srv, monkeypatch)
        yield srv


def history(server: SimExchangeServer, start: int, end: int) -> list[tuple[str, int]]:
    env = server.environment()
    client = StockHistoricalDataClient(env["ALPACA_API_KEY"], env["ALPACA_SECRET_KEY"],
                                       url_override=server.base_url)
    bars = client.get_stock_bars(StockBarsRequest(
        symbol_or_symbols=["SPY", "QQQ"], timeframe=TimeFrame.Minute,
        start=ns_to_datetime(start), end=ns_to_datetime(end)))
    return sorted((symbol, datetime_to_ns(b.timestamp)) for symbol, items in bars.data.items()
                  for b in items if start <= datetime_to_ns(b.timestamp) <= end)


def test_a_dropped_and_a_mute_stream_lose_no_bar_and_double_none(
        server: SimExchangeServer) -> None:
    run = BotRun(config_for(("SPY", "QQQ")), broker="sim").start()  # a dry run: every bar
    feed = run.parts.feed                                             # is traded on
    run.wait(lambda: run.live_bars() >= 40, "bars before the drop")
    # history answers 500 six times: the first backfill fails after its retries, the live
    # bars wait, and the next attempt a second later gets through
    server.inject({"fault": "http_error", "status": 500, "path_prefix": "/v2/stocks/bars",
                   "count": 6})
    assert server.inject({"fault": "drop_streams", "endpoint": "/v2/iex"})["dropped"] == 1
    run.wait(lambda: feed.stats["reconnects"] >= 1 and run.live_bars() >= 100,
             "bars after the reconnect")
    server.inject({"fault": "stall_stream", "endpoint": "/v2/iex", "seconds": 60})
    run.wait(lambda: feed.stats["watchdog_reconnects"] >= 1 and feed.stats["reconnects"] >= 2
             and run.live_bars() >= 200, "the watchdog to cure the mute stream", timeout=90)
    run.finish()
    delivered = [(symbol, ts) for symbol, ts, _traded in feed.delivered]
    assert len(delivered) == len(set(delivered)), "a bar was delivered twice"
    for symbol in ("SPY", "QQQ"):
        times = [ts for s, ts in delivered if s == symbol]
        assert times == sorted(times)
    # every minute the venue published between the first and the last live bar went in
    first, last = min(ts for _s, ts in delivered), max(ts for _s, ts in delivered)
    assert sorted(delivered) == history(server, first, last), "a bar was missed"
    assert feed.stats["backfilled"] > 0  # minutes missed while down came from history
    assert feed.stats["backfill_errors"] == 1 and run.notice("live bars wait")
    assert run.engine.quarantined == {}  # the engine saw no duplicate and no disorder
    # a dry run trades on each one, in the order delivered (the stop may cut the last few)
    processed = [(e.decision.symbol, e.ts_event) for e in run.decisions]
    assert processed == delivered[:len(processed)] and len(processed) >= 200
    assert run.notice("stream is mute; reconnecting")
    assert run.notice("market data stream reconnected; backfilled")
    print(f"reconnect + backfill took {', '.join(f'{t:.3f}' for t in feed.reconnect_times_s)} s;"
          f" {feed.stats['backfilled']} bars backfilled")


def test_a_406_at_connect_is_survived(server: SimExchangeServer) -> None:
    server.inject({"fault": "refuse_streams", "endpoint": "/v2/iex", "count": 1})
    run = BotRun(config_for(("SPY", "QQQ")), broker="sim").start()
    run.wait(lambda: run.live_bars() >= 10, "bars after the refusal")
    run.finish()
    assert run.parts.feed.stats["refused_406"] == 1
    assert server.status()["refused_connections"] == 1
    assert run.notice("connection limit exceeded (406)")


def test_a_rejected_key_stops_before_anything_starts(
        server: SimExchangeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.sim_exchange import running_exchange as exchange

    with exchange(symbols=("SPY",), key="right-key", secret="right-secret") as guarded:
        point_at(guarded, monkeypatch)
        monkeypatch.setenv("ALPACA_SECRET_KEY", "wrong-secret")
        with pytest.raises(AlpacaAuthError, match="rejected the API key") as refused:
            BotRun(config_for(("SPY",)), broker="sim").start()
        assert "wrong-secret" not in str(refused.value)


def test_outside_market_hours_the_bot_waits_and_says_when_it_starts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # one session of history and one live: once the live one ends the venue is closed
    with running_exchange(symbols=("SPY",), speed=600.0, days=1, history_days=1) as srv:
        point_at(srv, monkeypatch)
        run = BotRun(config_for(("SPY",)), broker="sim").start()
        run.wait(lambda: run.live_bars() >= 3, "live bars")
        srv.advance(400 * 60)  # past the close of the only live session
        run.wait(lambda: run.notice("market closed at the venue"), "the closed-market notice")
        run.finish()
    message = run.notice("market closed at the venue")
    assert message is not None and "trading starts at the open" in message
