"""The five agents and the default set the ensemble votes with.

Parameters that mean a span of time rather than a number of bars are set here from the bar
interval (``gnosis.model.intervals``); the rest are counts of bars, as indicator periods are:
- Hedge re-reads the chain every hour of trading time (60 one-minute bars; every bar from 1H up);
- Sentiment's news half-life is an hour of trading time (60 one-minute bars; 0.15 of a daily bar,
  so a day's headlines are spent by the next session);
- Liquidity's volume-profile bins are 5 bps of price for 1-minute bars, widened with the square
  root of the bar's trading time (a typical bar's move), so a profile holds as many bins per
  move at any interval.
"""

from __future__ import annotations

import math
from typing import Any

from gnosis.agents.base import Agent
from gnosis.model.intervals import bars_in, trading_seconds

AGENT_NAMES: tuple[str, ...] = ("hedge", "liquidity", "sentiment", "wyckoff", "markov")
CHAIN_REFRESH_S = 3_600
NEWS_HALF_LIFE_S = 3_600


def build_default_agents(chain_provider: Any = None, news_provider: Any = None,
                         quote_provider: Any = None, interval_s: int = 60,
                         stagger: int = 0) -> list[Agent]:
    """Hedge, Liquidity, Sentiment, Wyckoff, Markov, in that order, for bars of
    ``interval_s`` seconds; ``stagger`` is the symbol's place in the run (it spreads the
    options chain reads of many symbols)."""
    from gnosis.agents.hedge import HedgeAgent
    from gnosis.agents.liquidity import BIN_FRACTION, LiquidityAgent
    from gnosis.agents.markov import MarkovAgent
    from gnosis.agents.sentiment import SentimentAgent
    from gnosis.agents.wyckoff import WyckoffAgent

    refresh_bars = max(1, round(bars_in(CHAIN_REFRESH_S, interval_s)))
    bin_fraction = BIN_FRACTION * math.sqrt(trading_seconds(interval_s) / 60.0)
    return [
        HedgeAgent(chain_provider, refresh_bars=refresh_bars, stagger=stagger),
        LiquidityAgent(quote_provider, bin_fraction=bin_fraction),
        SentimentAgent(news_provider, half_life_bars=bars_in(NEWS_HALF_LIFE_S, interval_s)),
        WyckoffAgent(),
        MarkovAgent(),
    ]
