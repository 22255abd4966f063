"""The Hedge and Sentiment agents in the Alpaca mode read Alpaca's option chain and news (from
``gnosis sim-exchange`` through the real SDK), say how old the chain is, and abstain or fall back
to price/volume with the reason when a source is down."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.alpaca_bot import BotRun, config_for, point_at, rest_get
from tests.support.sim_exchange import running_exchange

pytestmark = pytest.mark.timeout(180)


def votes_of(run: BotRun, agent: str) -> list:
    return [v for e in run.decisions for v in e.decision.votes if v.agent == agent]


def test_option_chain_and_news_reach_the_two_agents(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    secret = "inputs-secret-91c"  # noqa: S105 - looked for in the state files below
    with running_exchange(symbols=("SPY",), speed=1200.0, days=2, history_days=1,
                          key="inputs-key", secret=secret) as server:
        point_at(server, monkeypatch)
        run = BotRun(config_for(("SPY",), strategy="agents"), broker="alpaca",
                     state_dir=tmp_path).start()
        run.wait(lambda: any("Alpaca indicative option snapshots" in v.reasoning
                             for v in votes_of(run, "hedge"))
                 and any("news" in v.reasoning and "('" in v.reasoning
                         for v in votes_of(run, "sentiment")),
                 "hedge and sentiment votes on Alpaca inputs", timeout=120)
        run.finish()
        headlines = {a["headline"] for a in rest_get(server, "/v1beta1/news", symbols="SPY",
                                                     start="2023-12-01", limit=50)["news"]}
    options, news = run.parts.options, run.parts.news
    assert options is not None and news is not None
    hedge = next(v for v in votes_of(run, "hedge") if "Alpaca indicative" in v.reasoning)
    assert "~15 min delayed" in hedge.reasoning and "min before this bar's close" in \
        hedge.reasoning
    assert options.stats["refreshes"] >= 1 and options.stats["served"] >= 1
    reasons = [v.reasoning for v in votes_of(run, "sentiment")]
    assert any(f"('{h[:48]}')" in r for h in headlines for r in reasons)  # Alpaca's own
    assert news.book.count() > 0 and news.outage() is None
    # the chain is never shown to a bar older than the snapshot (warm-up bars): no look-ahead
    assert options.stats["missing"] >= 1
    # the providers hold the keys; the strategy's committed state must not
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_sources_down_make_hedge_abstain_and_sentiment_say_price_volume_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with running_exchange(symbols=("SPY",), speed=1200.0, days=2, history_days=1) as server:
        point_at(server, monkeypatch)
        server.inject({"fault": "http_error", "status": 500,
                       "path_prefix": "/v1beta1/options", "count": 50})
        server.inject({"fault": "refuse_streams", "endpoint": "/v1beta1/news", "count": 50})
        run = BotRun(config_for(("SPY",), strategy="agents"), broker="sim").start()
        run.wait(lambda: len(run.decisions) >= 5 and any(
            "price/volume only" in v.reasoning for v in votes_of(run, "sentiment")),
            "votes without the sources", timeout=120)
        run.finish()
    hedge = votes_of(run, "hedge")[-1]
    assert hedge.abstained and hedge.reasoning.startswith("no options data: Alpaca option "
                                                          "chain of SPY unavailable")
    sentiment = next(v for v in votes_of(run, "sentiment") if "price/volume only" in
                     v.reasoning)
    assert "Alpaca news unavailable since" in sentiment.reasoning
    assert "406" in sentiment.reasoning
