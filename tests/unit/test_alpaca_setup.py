"""Alpaca settings (keys stay secret, the live-money endpoint is refused), the seed API's
refusals, the order journal, headlines by time and the retry wrapper."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from gnosis.adapters.alpaca import rest
from gnosis.adapters.alpaca.errors import AlpacaAuthError, AlpacaSetupError, AlpacaUnavailable
from gnosis.adapters.alpaca.journal import OrderJournal
from gnosis.adapters.alpaca.news import HeadlineBook
from gnosis.adapters.alpaca.settings import AlpacaSettings
from gnosis.core.config import load_config
from gnosis.model.types import Order, OrderType, Side
from gnosis.trading.live_bot import LiveTradingBot, TradingRefused
from tests.unit.test_alpaca_broker import api_error

SECRET = "s3cr3t-do-not-print"


def test_missing_keys_say_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(AlpacaSetupError, match="ALPACA_API_KEY and ALPACA_SECRET_KEY"):
        AlpacaSettings.from_config(load_config())


def test_keys_never_show_in_the_settings_repr_or_the_config_dump(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPACA_API_KEY", "key-id")
    monkeypatch.setenv("ALPACA_SECRET_KEY", SECRET)
    monkeypatch.setenv("ALPACA_STREAM_URL", "ws://127.0.0.1:9/")
    config = load_config()
    settings = AlpacaSettings.from_config(config)
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    assert SECRET not in repr(config) and SECRET not in config.model_dump_json()
    assert settings.stock_stream_url() == "ws://127.0.0.1:9/v2/iex"
    assert settings.trading_stream_url() == "ws://127.0.0.1:9/stream"
    assert settings.news_stream_url() == "ws://127.0.0.1:9/v1beta1/news"


@pytest.mark.parametrize("url", ["https://api.alpaca.markets", "https://api.alpaca.markets/"])
def test_the_live_money_endpoint_is_refused(url: str) -> None:
    with pytest.raises(AlpacaSetupError, match="live-money"):
        AlpacaSettings(SecretStr("k"), SecretStr("s"), base_url=url.rstrip("/"))
    AlpacaSettings(SecretStr("k"), SecretStr("s"), base_url="https://paper-api.alpaca.markets")


@pytest.mark.parametrize("kwargs, words", [
    ({"paper_mode": False}, "real money"),
    ({"bar_interval": "5Min"}, "1Min"),
    ({"feed": "ib"}, "one of"),
    ({"enable_trading": True}, "feed='alpaca'"),
])
def test_the_seed_api_refuses_what_it_will_not_run(kwargs: dict, words: str) -> None:
    with pytest.raises(TradingRefused, match=words):
        LiveTradingBot(**kwargs)


@pytest.mark.parametrize("enable_memory", [True, False])
def test_the_seed_api_runs_the_simulated_market_with_or_without_memory(
        tmp_path: Path, enable_memory: bool) -> None:
    bot = LiveTradingBot(symbol="spy", enable_memory=enable_memory, speed=1e9, max_bars=30,
                         warmup_days=0, state_dir=tmp_path, console=False)
    summary = bot.run()
    assert summary["bars"] == 30 and bot.symbols == ("SPY",)
    assert (tmp_path / "memory.duckdb").exists() == enable_memory
    if enable_memory:
        assert summary["memory"]["available"] is True and "memory_note" not in summary
    else:
        assert summary["memory_note"] == "episodic memory off (enable_memory=False)"


def order(cid: str) -> Order:
    return Order(cid, "SPY", Side.BUY, 10, OrderType.MARKET, 1, reason="entry",
                 expected_price=100.0, stop_loss=98.0, take_profit=104.0)


def test_the_journal_is_durable_and_idempotent(tmp_path: Path) -> None:
    journal = OrderJournal(tmp_path)
    journal.record(order("a"))
    journal.record(order("a"))  # a replay keeps the first intent
    journal.record(order("b"))
    journal.mark("b", "placed", venue_id="v-b")
    journal.close()
    again = OrderJournal(tmp_path)
    assert [(i.client_order_id, i.status) for i in again.all()] == [("a", "pending"),
                                                                    ("b", "placed")]
    intent = again.get("b")
    assert intent is not None and intent.venue_id == "v-b" and intent.order.stop_loss == 98.0
    again.finish("b")
    assert [i.client_order_id for i in again.open_intents()] == ["a"]
    with pytest.raises(ValueError, match="unknown intent state"):
        again.mark("a", "teleported")
    assert OrderJournal(tmp_path, fresh=True).all() == []


def test_headlines_are_read_by_publication_time_once_and_never_rewritten() -> None:
    book = HeadlineBook()
    minute = 60 * 10**9
    assert book.add(1, 10 * minute + 5, 10 * minute + 5, ["spy"], "Stocks rally")
    assert not book.add(1, 10 * minute + 5, 10 * minute + 5, ["SPY"], "Stocks rally")
    assert book.add(2, 11 * minute, 11 * minute, ["SPY", "QQQ"], "Chips slump")
    assert not book.add(3, 11 * minute, 11 * minute, ["SPY"], "   ")  # quarantined
    assert [h.headline for h in book.between("SPY", 10 * minute, 11 * minute)] == [
        "Stocks rally", "Chips slump"]  # (after, until]
    assert book.between("SPY", 11 * minute, 12 * minute) == []
    assert not book.add(2, 11 * minute, 12 * minute, ["SPY"], "Chips slump, revised")
    assert book.stats["updated_after_read"] == 1  # the bar saw the first version
    book.add(4, 9 * minute, 9 * minute, ["SPY"], "Old news arriving late")
    assert book.stats["late"] == 1
    assert book.stats["duplicates"] == 1 and book.stats["quarantined"] == 1


def test_rest_retries_transient_failures_and_names_the_rest() -> None:
    calls: list[int] = []
    waits: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise api_error(500, "internal server error")
        return "ok"

    assert rest.call("read something", flaky, sleep=waits.append) == "ok"
    assert len(calls) == 3 and waits == [0.25, 0.5]
    with pytest.raises(AlpacaUnavailable, match="read something after 2 attempts"):
        rest.call("read something", lambda: (_ for _ in ()).throw(
            api_error(503, "service unavailable")), attempts=2, sleep=waits.append)
    with pytest.raises(AlpacaAuthError, match="rejected the API key"):
        rest.call("read the account", lambda: (_ for _ in ()).throw(
            api_error(401, "request is not authorized")), sleep=waits.append)
    with pytest.raises(Exception, match="order not found"):  # not transient: at once
        rest.call("read an order", lambda: (_ for _ in ()).throw(
            api_error(404, "order not found")), sleep=waits.append)
