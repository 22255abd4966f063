"""Hedge agent: dealer gamma exposure (GEX) from the options chain.

Dealers hedging a long-gamma book sell rallies and buy dips, pinning price near the strike with
the largest gamma exposure (the gamma wall); short gamma makes them chase moves, so momentum
runs. Convention (the usual GEX one): dealers are long the calls and short the puts that
customers trade, so call gamma counts positive and put gamma negative:
``GEX = sum(gamma * open_interest * 100 * spot^2 * 1%)``. Greeks come from the chain when the
feed has them, else from the Black-Scholes formula (``contract_gamma``). The chain is the one
known at the bar's close (``chain(symbol, spot, bar.ts_close)``: a snapshot taken later is
never seen), read every
``refresh_bars`` bars (as a snapshot poll would be: an hour of trading time, see
``gnosis.agents.build_default_agents``), not every bar: the first symbol of a run on bars 1,
1 + refresh_bars, ..., the k-th k bars (mod ``refresh_bars``) later, so many symbols spread
their reads over the hour. Without a chain provider (replayed data
without ``--options``) the agent abstains with "no options data".
"""

from __future__ import annotations

import math

from gnosis.agents.base import Agent, AgentContext
from gnosis.data.indicators import ATR, RingBuffer
from gnosis.model.market import CALL, OptionsChain, OptionsChainProvider
from gnosis.model.types import Vote, format_ns

NANOS_PER_YEAR = 365.25 * 86_400 * 10**9
RISK_FREE = 0.04
MOMENTUM_BARS = 15


_SQRT_2PI = math.sqrt(2.0 * math.pi)


def contract_gamma(spot: float, strike: float, years: float, iv: float) -> float:
    """Black-Scholes gamma (the same for calls and puts, no dividend yield), per share per $1.

    Written in the operation order of the ``blackscholes`` library (``x ** 2`` included, which
    is the C library's ``pow``, not always ``x * x``), so the two agree bit for bit
    (tests/unit/test_agents.py), at a fraction of the cost of building its object.
    """
    if not (spot > 0 and strike > 0 and years > 0 and iv > 0):
        raise ValueError(f"gamma needs positive spot, strike, time and volatility, got "
                         f"{spot!r}, {strike!r}, {years!r}, {iv!r}")
    sqrt_t = math.sqrt(years)
    d1 = (1.0 / (iv * sqrt_t)) * (math.log(spot / strike) + (RISK_FREE + 0.5 * iv**2) * years)
    return math.exp(-(d1**2) / 2.0) / _SQRT_2PI / (spot * iv * sqrt_t)


def gamma_exposure(chain: OptionsChain) -> tuple[float, float, float]:
    """(net GEX, gross GEX, gamma-wall strike) of a chain, in dollars per 1% move."""
    spot = chain.spot
    per_strike: dict[float, float] = {}  # total (call + put) gamma exposure by strike
    net = 0.0
    cache: dict[tuple[float, int, float], float] = {}
    scale = 100.0 * spot * spot * 0.01
    for c in chain.contracts:
        years = (c.expiry_ts - chain.ts_event) / NANOS_PER_YEAR
        if years <= 0 or c.open_interest <= 0:
            continue
        gamma = c.gamma
        if gamma is None:
            key = (c.strike, c.expiry_ts, c.implied_vol)
            gamma = cache.get(key)
            if gamma is None:
                gamma = cache[key] = contract_gamma(spot, c.strike, years, c.implied_vol)
        exposure = gamma * c.open_interest * scale
        net += exposure if c.right == CALL else -exposure
        per_strike[c.strike] = per_strike.get(c.strike, 0.0) + exposure
    if not per_strike:
        return 0.0, 0.0, spot
    gross = 0.0
    for exposure in per_strike.values():  # left to right (sum() compensates from 3.12 on)
        gross += exposure
    # the wall is where hedging flows concentrate: the strike with the most total gamma, calls
    # and puts alike (the net per strike would put it on the OTM-call side whenever calls
    # dominate, and a "revert to the wall" vote would then lean long by construction)
    wall = max(per_strike, key=lambda k: (per_strike[k], -abs(k - spot)))
    return net, gross, wall


def missing_chain_reason(provider: object, symbol: str, ts_close: int) -> str:
    """Why a chain read found nothing: a live source says why, a file has no snapshot."""
    reason = getattr(provider, "missing_reason", None)
    return reason(symbol) if reason else (f"no options snapshot of {symbol} by "
                                          f"{format_ns(ts_close)}")


def chain_source(chain: OptionsChain, ts_close: int) -> str:
    """A live chain's source and age, said in every vote that uses it ("" for others)."""
    if not chain.source:
        return ""
    age_min = (ts_close - chain.ts_event) / 60e9
    return (f"{chain.source}, as of {format_ns(chain.ts_event)}, {age_min:.0f} min before "
            "this bar's close")


def with_source(vote: Vote, source: str) -> Vote:
    if source and not vote.abstained:
        return Vote(vote.agent, vote.signal, vote.confidence, f"{vote.reasoning} [{source}]")
    return vote


class HedgeAgent(Agent):
    name = "hedge"

    def __init__(self, chain_provider: OptionsChainProvider | None = None,
                 refresh_bars: int = 60, min_tilt: float = 0.1, stagger: int = 0) -> None:
        self.chain_provider = chain_provider
        self.refresh_bars = refresh_bars
        self.min_tilt = min_tilt
        # the k-th symbol of a run reads its chain k bars (mod refresh_bars) later: 500 symbols
        # that start together do not all read in the same minute
        self.stagger = stagger % refresh_bars
        self._atr = ATR(14)
        self._closes = RingBuffer(MOMENTUM_BARS + 1)
        self._var = 0.0
        self._prev = 0.0
        self._since_refresh = refresh_bars - 1 - self.stagger  # first read: bar 1 + stagger
        self._net = 0.0
        self._gross = 0.0
        self._wall = 0.0
        self._have_chain = False
        self._missing = "no options data" if chain_provider is None else \
            "options chain not read yet"
        self._source = ""  # a live chain's source and age, said in every vote

    def update(self, ctx: AgentContext) -> None:
        bar = ctx.bar
        close = bar.close
        self._atr.update(bar.high, bar.low, close)
        if self._prev > 0:
            r = math.log(close / self._prev)
            self._var += 0.05 * (r * r - self._var) if self._var else r * r
        self._prev = close
        self._closes.push(close)
        self._since_refresh += 1
        if self._since_refresh >= self.refresh_bars and self.chain_provider is not None:
            self._since_refresh = 0
            chain = self.chain_provider.chain(bar.symbol, close, bar.ts_close)
            if chain is None or not chain.contracts:
                self._have_chain = False
                self._missing = missing_chain_reason(self.chain_provider, bar.symbol,
                                                     bar.ts_close)
                self._source = ""
            else:
                self._net, self._gross, self._wall = gamma_exposure(chain)
                self._have_chain = self._gross > 0
                self._source = chain_source(chain, bar.ts_close)
                self._missing = "options chain without open interest"

    def vote(self, ctx: AgentContext) -> Vote:
        return with_source(self._gamma_vote(ctx), self._source)

    def _gamma_vote(self, ctx: AgentContext) -> Vote:
        if not self._have_chain:
            return Vote.abstain(self.name, self._missing)
        tilt = self._net / self._gross  # -1 all short gamma .. +1 all long gamma
        close = ctx.bar.close
        atr = self._atr.value if self._atr.ready else 0.0
        if abs(tilt) < self.min_tilt:
            return Vote(self.name, 0, 0.3, f"dealer gamma balanced (tilt {tilt:+.2f})")
        if tilt > 0:
            if atr <= 0:
                return Vote(self.name, 0, 0.2, "long gamma, ATR not ready")
            distance = (close - self._wall) / atr
            if abs(distance) < 0.75:
                return Vote(self.name, 0, 0.4,
                            f"long gamma {tilt:+.2f}: pinned near wall {self._wall:g}")
            signal = -1 if distance > 0 else 1
            confidence = min(1.0, (0.3 + 0.1 * abs(distance)) * (0.5 + tilt))
            return Vote(self.name, signal, confidence,
                        f"long gamma {tilt:+.2f}: revert to wall {self._wall:g} "
                        f"({distance:+.1f} ATR away)")
        if not self._closes.full or self._var <= 0:
            return Vote(self.name, 0, 0.2, f"short gamma {tilt:+.2f}, momentum not ready")
        move = math.log(close / self._closes[0]) / (math.sqrt(self._var * MOMENTUM_BARS))
        if abs(move) < 0.75:
            return Vote(self.name, 0, 0.3, f"short gamma {tilt:+.2f}, no momentum ({move:+.1f}σ)")
        confidence = min(1.0, (0.25 + 0.15 * abs(move)) * (0.5 - tilt))
        return Vote(self.name, 1 if move > 0 else -1, confidence,
                    f"short gamma {tilt:+.2f}: dealers chase the {move:+.1f}σ move")
