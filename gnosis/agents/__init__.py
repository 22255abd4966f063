"""The five agents and the default set the ensemble votes with."""

from __future__ import annotations

from typing import Any

from gnosis.agents.base import Agent

AGENT_NAMES: tuple[str, ...] = ("hedge", "liquidity", "sentiment", "wyckoff", "markov")


def build_default_agents(chain_provider: Any = None, news_provider: Any = None,
                         quote_provider: Any = None) -> list[Agent]:
    """Hedge, Liquidity, Sentiment, Wyckoff, Markov, in that order."""
    from gnosis.agents.hedge import HedgeAgent
    from gnosis.agents.liquidity import LiquidityAgent
    from gnosis.agents.markov import MarkovAgent
    from gnosis.agents.sentiment import SentimentAgent
    from gnosis.agents.wyckoff import WyckoffAgent

    return [
        HedgeAgent(chain_provider),
        LiquidityAgent(quote_provider),
        SentimentAgent(news_provider),
        WyckoffAgent(),
        MarkovAgent(),
    ]
