"""Sentiment agent: what price, volume and the news say about the crowd's mood.

Components, each in [-1, 1]:
- momentum: the last ``momentum_bars`` bars' return in units of their expected move (z-score);
- volume balance: volume on up bars minus volume on down bars, over total, over a window;
- news: headlines scored with the VADER lexicon, summed with a half-life decay (an hour of
  trading time, see ``gnosis.agents.build_default_agents``); a bar reads the headlines
  published since the previous bar's close up to its own close, never later ones;
- volatility shock: fast volatility far above slow volatility damps conviction (fear).
Without a news provider (replayed data without ``--news``) the reasoning says the vote rests
on price and volume alone.
"""

from __future__ import annotations

import math

from gnosis.agents.base import Agent, AgentContext
from gnosis.agents.sentiment_lexicon import score_text
from gnosis.data.indicators import RingBuffer, RollingSum
from gnosis.model.market import NewsProvider
from gnosis.model.types import Vote


def news_outage(provider: object) -> str | None:
    """Why a live news source is down right now (None when it is up, or says nothing)."""
    outage = getattr(provider, "outage", None)
    return outage() if outage is not None else None


def describe_news(provider: object, news: float, last_headline: str,
                  down: str | None) -> str:
    """What the vote's news part rests on: the score and latest headline, or why there is
    none (no source, or a live source that is ``down``, as ``news_outage`` said at the bar)."""
    if provider is None:
        return "price/volume only, no news source"
    if down:  # a live source that is down: the vote rests on price and volume
        return f"price/volume only: {down}"
    return f"news {news:+.2f}" + (f" ('{last_headline[:48]}')" if last_headline else "")


class SentimentAgent(Agent):
    name = "sentiment"

    def __init__(self, news_provider: NewsProvider | None = None, half_life_bars: float = 60,
                 momentum_bars: int = 10, balance_bars: int = 20,
                 threshold: float = 0.3) -> None:
        self.news_provider = news_provider
        self.decay = 0.5 ** (1.0 / half_life_bars)
        self.momentum_bars = momentum_bars
        self.threshold = threshold
        self._closes = RingBuffer(momentum_bars + 1)
        self._up = RollingSum(balance_bars)
        self._down = RollingSum(balance_bars)
        self._var_fast = 0.0
        self._var_slow = 0.0
        self._prev = 0.0
        self._news = 0.0
        self._last_headline = ""
        self._bars = 0
        self._news_until = -1  # the close of the previous bar: news after it is new

    def update(self, ctx: AgentContext) -> None:
        bar = ctx.bar
        close = bar.close
        self._bars += 1
        if self._prev > 0:
            r = math.log(close / self._prev)
            r2 = r * r
            if self._var_slow == 0.0:
                self._var_fast = self._var_slow = r2
            else:
                self._var_fast += 0.2 * (r2 - self._var_fast)
                self._var_slow += 0.01 * (r2 - self._var_slow)
        self._prev = close
        self._closes.push(close)
        up = bar.volume if close > bar.open else 0.0
        down = bar.volume if close < bar.open else 0.0
        self._up.update(up)
        self._down.update(down)
        self._news *= self.decay
        if self.news_provider is not None:
            after = self._news_until if self._news_until >= 0 else bar.ts_event
            self._news_until = bar.ts_close
            for headline in self.news_provider.headlines(bar.symbol, after, bar.ts_close):
                self._news = max(-2.0, min(2.0, self._news + score_text(headline.headline)))
                self._last_headline = headline.headline

    def vote(self, ctx: AgentContext) -> Vote:
        if not self._closes.full:
            return Vote.abstain(self.name, f"warming up ({self._bars}/{self.momentum_bars + 1})")
        sigma = math.sqrt(self._var_slow * self.momentum_bars)
        move = math.log(self._closes[-1] / self._closes[0])
        momentum = math.tanh(move / sigma / 1.5) if sigma > 0 else 0.0
        total = self._up.value + self._down.value
        balance = (self._up.value - self._down.value) / total if total > 0 else 0.0
        news = math.tanh(self._news)
        shock = math.sqrt(self._var_fast / self._var_slow) if self._var_slow > 0 else 1.0
        damp = 1.0 if shock < 1.8 else 1.8 / shock
        score = (0.45 * momentum + 0.35 * balance + 0.4 * news) * damp
        news_note = describe_news(self.news_provider, news, self._last_headline,
                                   news_outage(self.news_provider))
        why = (f"momentum {momentum:+.2f}, volume balance {balance:+.2f}, {news_note}, "
               f"vol shock x{shock:.1f}")
        if abs(score) < self.threshold:
            return Vote(self.name, 0, min(1.0, 1.0 - abs(score)) * 0.5, f"neutral: {why}")
        return Vote(self.name, 1 if score > 0 else -1, min(1.0, abs(score)),
                    f"{'bullish' if score > 0 else 'bearish'} {score:+.2f}: {why}")
