"""Historical data, news and options through the unmodified alpaca-py SDK: pagination, no
unclosed minute, simulated news and chain on the synthetic market, and only the files' inputs
(or nothing) on a replay."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from alpaca.data.historical import OptionHistoricalDataClient, StockHistoricalDataClient
from alpaca.data.historical.news import NewsClient
from alpaca.data.requests import NewsRequest, OptionChainRequest, StockBarsRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import GetOptionContractsRequest

from gnosis.data.replay import write_bars_csv
from gnosis.data.synthetic import SyntheticMarket
from gnosis.simexchange import SimExchangeServer
from tests.support.sim_exchange import running_exchange

pytestmark = pytest.mark.timeout(120)
SYMBOLS = ("SPY", "QQQ", "IWM", "DIA", "AAPL")
EARLY = datetime(2023, 12, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def server() -> Iterator[SimExchangeServer]:
    # 5 symbols x 6 history sessions = 11,700 minute bars: more than one SDK page (10,000)
    with running_exchange(symbols=SYMBOLS, history_days=6, days=2, speed=600.0) as srv:
        yield srv


def _headers() -> dict[str, str]:
    return {"APCA-API-KEY-ID": "k", "APCA-API-SECRET-KEY": "s"}


def test_sdk_follows_pagination_and_never_sees_an_unclosed_minute(
        server: SimExchangeServer) -> None:
    server.pause()
    try:
        now = datetime.fromisoformat(server.status()["time"].replace("Z", "+00:00"))
        data = StockHistoricalDataClient("k", "s", url_override=server.base_url)
        bars = data.get_stock_bars(StockBarsRequest(symbol_or_symbols=list(SYMBOLS),
                                                    timeframe=TimeFrame.Minute, start=EARLY,
                                                    end=datetime(2030, 1, 1)))
        total = sum(len(bars[s]) for s in SYMBOLS)
        assert total > 10_000  # the SDK had to follow next_page_token
        for symbol in SYMBOLS:
            times = [b.timestamp for b in bars[symbol]]
            assert times == sorted(times) and len(set(times)) == len(times)
            assert max(times).timestamp() + 60 <= now.timestamp()  # every minute has closed
        # raw pages of 1,000 concatenate to the same bars
        collected: list[tuple[str, str]] = []
        token = None
        while True:
            params = {"symbols": ",".join(SYMBOLS), "timeframe": "1Min",
                      "start": EARLY.isoformat(), "limit": "1000"}
            if token:
                params["page_token"] = token
            page = requests.get(f"{server.base_url}/v2/stocks/bars", params=params,
                                headers=_headers(), timeout=30).json()
            collected += [(s, b["t"]) for s, items in page["bars"].items() for b in items]
            token = page["next_page_token"]
            if token is None:
                break
        assert len(collected) == len(set(collected)) == total
    finally:
        server.resume()


def test_bars_aggregate_and_refuse_bad_parameters(server: SimExchangeServer) -> None:
    data = StockHistoricalDataClient("k", "s", url_override=server.base_url)
    minutes = data.get_stock_bars(StockBarsRequest(
        symbol_or_symbols="SPY", timeframe=TimeFrame.Minute, start=EARLY,
        end=datetime(2024, 1, 3, 15, 0, tzinfo=UTC)))["SPY"]
    fives = data.get_stock_bars(StockBarsRequest(
        symbol_or_symbols="SPY", timeframe=TimeFrame(5, TimeFrameUnit.Minute), start=EARLY,
        end=datetime(2024, 1, 3, 15, 0, tzinfo=UTC)))["SPY"]
    assert len(fives) * 5 == pytest.approx(len(minutes), abs=5)
    assert sum(b.volume for b in fives) == pytest.approx(sum(b.volume for b in minutes))
    days = data.get_stock_bars(StockBarsRequest(symbol_or_symbols="SPY",
                                                timeframe=TimeFrame.Day, start=EARLY))["SPY"]
    assert len(days) >= 6
    for params in ({"symbols": "SPY", "timeframe": "7Fortnight"},
                   {"symbols": "SPY", "timeframe": "1Min", "limit": "0"},
                   {"symbols": "SPY", "timeframe": "1Min", "start": "soon"},
                   {"symbols": "SPY", "timeframe": "1Min", "page_token": "!!"},
                   {"timeframe": "1Min"}):
        response = requests.get(f"{server.base_url}/v2/stocks/bars", params=params,
                                headers=_headers(), timeout=30)
        assert response.status_code == 400 and "message" in response.json()


def test_news_client_reads_simulated_headlines(server: SimExchangeServer) -> None:
    news = NewsClient("k", "s", url_override=server.base_url)
    articles = news.get_news(NewsRequest(symbols="SPY,QQQ", start=EARLY))["news"]
    assert len(articles) > 50  # more than one page of 50
    assert all(set(a.symbols) & {"SPY", "QQQ"} for a in articles)
    now = datetime.fromisoformat(server.status()["time"].replace("Z", "+00:00"))
    assert all(a.created_at <= now for a in articles)  # nothing from the simulated future
    assert len({a.id for a in articles}) == len(articles)


def test_option_chain_and_contracts_on_the_synthetic_market(server: SimExchangeServer) -> None:
    options = OptionHistoricalDataClient("k", "s", url_override=server.base_url)
    chain = options.get_option_chain(OptionChainRequest(underlying_symbol="SPY"))
    assert len(chain) >= 40
    symbol, snapshot = next(iter(chain.items()))
    assert symbol.startswith("SPY") and len(symbol) == 18  # OCC: SPY240105C00470000
    assert snapshot.implied_volatility and snapshot.implied_volatility > 0
    assert snapshot.greeks is not None and snapshot.greeks.gamma > 0
    calls = [s for k, s in chain.items() if k[9] == "C"]
    assert all(0 <= s.greeks.delta <= 1 for s in calls if s.greeks)
    trading = TradingClient("k", "s", paper=True, url_override=server.base_url)
    contracts = trading.get_option_contracts(GetOptionContractsRequest(
        underlying_symbols=["SPY"], limit=500)).option_contracts
    assert contracts and {c.underlying_symbol for c in contracts} == {"SPY"}
    assert all(c.open_interest is not None and int(c.open_interest) >= 0 for c in contracts)
    assert sum(int(c.open_interest) for c in contracts) > 0
    assert {c.symbol for c in contracts} >= set(list(chain)[:5])


@pytest.fixture(scope="module")
def replay_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("replay")
    market = SyntheticMarket(symbols=("SPY",), seed=3, start="2024-03-04", days=3)
    bars_file = folder / "spy.csv"
    write_bars_csv(market.bars(), bars_file)
    news_file = folder / "news.csv"
    news_file.write_text("created_at,symbols,headline,summary,source\n"
                         "2024-03-04T15:00:00Z,SPY,Stocks edge up,Quiet day,wire\n"
                         '2024-03-05T15:00:00Z,"SPY,QQQ",Tech leads,,wire\n')
    options_file = folder / "options.csv"
    options_file.write_text(  # the format of `gnosis backtest --options`: dated snapshots
        "timestamp,underlying,symbol,expiration_date,type,strike_price,open_interest,"
        "implied_volatility\n"
        "2024-03-05T20:00:00Z,SPY,SPY240315C00470000,2024-03-15,call,470,1200,0.15\n"
        "2024-03-05T20:00:00Z,SPY,SPY240315P00460000,2024-03-15,put,460,900,0.18\n")
    return {"bars": bars_file, "news": news_file, "options": options_file}


def test_replay_without_side_files_serves_no_news_and_no_options(
        replay_files: dict[str, Path]) -> None:
    with running_exchange(data_file=replay_files["bars"], history_days=1) as srv:
        bars = StockHistoricalDataClient("k", "s", url_override=srv.base_url).get_stock_bars(
            StockBarsRequest(symbol_or_symbols="SPY", timeframe=TimeFrame.Minute,
                             start=EARLY))["SPY"]
        assert len(bars) >= 390  # the first session is history
        chain = OptionHistoricalDataClient("k", "s", url_override=srv.base_url)\
            .get_option_chain(OptionChainRequest(underlying_symbol="SPY"))
        assert chain == {}
        contracts = TradingClient("k", "s", paper=True, url_override=srv.base_url)\
            .get_option_contracts(GetOptionContractsRequest(underlying_symbols=["SPY"]))
        assert contracts.option_contracts == []
        news = NewsClient("k", "s", url_override=srv.base_url).get_news(
            NewsRequest(start=EARLY))
        assert news["news"] == []


def test_replay_serves_the_news_and_options_files(replay_files: dict[str, Path]) -> None:
    with running_exchange(data_file=replay_files["bars"], history_days=2,
                          news_file=replay_files["news"],
                          options_file=replay_files["options"]) as srv:
        news = NewsClient("k", "s", url_override=srv.base_url).get_news(
            NewsRequest(start=EARLY, symbols="SPY"))["news"]
        assert [a.headline for a in news] == ["Tech leads", "Stocks edge up"]  # newest first
        contracts = TradingClient("k", "s", paper=True, url_override=srv.base_url)\
            .get_option_contracts(GetOptionContractsRequest(underlying_symbols=["SPY"]))\
            .option_contracts
        assert {(c.symbol, c.open_interest) for c in contracts} == {
            ("SPY240315C00470000", "1200"), ("SPY240315P00460000", "900")}
        chain = OptionHistoricalDataClient("k", "s", url_override=srv.base_url)\
            .get_option_chain(OptionChainRequest(underlying_symbol="SPY", feed="opra"))
        assert chain["SPY240315C00470000"].implied_volatility == pytest.approx(0.15)
