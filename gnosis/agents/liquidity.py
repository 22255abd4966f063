"""Liquidity agent: where volume has traded, what it costs to move price, and the spread.

- Amihud illiquidity: |return| per dollar traded, averaged over a window and compared with its
  own longer history; a spike means thin liquidity (lower confidence).
- Volume profile: volume by price bin over a rolling window (bounded: bins older than the window
  are subtracted again); the heaviest bin below price is support, above it resistance.
- Kyle's lambda: the slope of returns on signed volume over a rolling window, using only bars
  <= t (the same bar's return against its own signed volume, never the next bar's).
- Spread from quotes when a quote provider has them.

Votes: long when price holds at support (a bar closing up at or just above a heavy node), short
when it is rejected at resistance; flat between zones.
"""

from __future__ import annotations

import math
from collections import deque

from gnosis.agents.base import Agent, AgentContext
from gnosis.data.indicators import ATR, RollingSum
from gnosis.model.market import QuoteProvider
from gnosis.model.types import Vote

PROFILE_BARS = 390
BIN_FRACTION = 0.0005  # price bin width for 1-minute bars: 5 bps of price
SCAN_BINS = 30  # look this many bins each side for support / resistance


class LiquidityAgent(Agent):
    name = "liquidity"

    def __init__(self, quote_provider: QuoteProvider | None = None, window: int = 60,
                 zone_atr: float = 1.0, bin_fraction: float = BIN_FRACTION) -> None:
        self.quote_provider = quote_provider
        self.bin_fraction = bin_fraction
        self.window = window
        self.zone_atr = zone_atr
        self._atr = ATR(14)
        self._amihud = RollingSum(window)
        self._amihud_mean = 0.0
        self._amihud_var = 0.0
        # Kyle's lambda: rolling sums for the regression of r on signed volume
        self._sx = RollingSum(window)
        self._sy = RollingSum(window)
        self._sxx = RollingSum(window)
        self._sxy = RollingSum(window)
        self._lambda_mean = 0.0
        self._lambda = 0.0
        self._avg_volume = 0.0
        self._bin_width = 0.0
        self._profile: dict[int, float] = {}
        self._history: deque[tuple[int, float]] = deque()
        self._profile_total = 0.0
        self._prev = 0.0
        self._bars = 0
        self._stress = 0.0
        self._rel_volume = 1.0

    def update(self, ctx: AgentContext) -> None:
        bar = ctx.bar
        close, volume = bar.close, bar.volume
        self._bars += 1
        self._atr.update(bar.high, bar.low, close)
        r = math.log(close / self._prev) if self._prev > 0 else 0.0
        self._prev = close
        self._avg_volume = volume if self._bars == 1 else \
            self._avg_volume + 0.02 * (volume - self._avg_volume)
        self._rel_volume = volume / self._avg_volume if self._avg_volume > 0 else 1.0
        dollar = close * volume
        amihud = self._amihud.update(abs(r) / dollar * 1e9 if dollar > 0 else 0.0) / self.window
        # stress: how far Amihud sits above its slow mean, in its own standard deviations
        delta = amihud - self._amihud_mean
        self._amihud_mean += 0.01 * delta
        self._amihud_var += 0.01 * (delta * delta - self._amihud_var)
        sd = math.sqrt(self._amihud_var)
        self._stress = max(0.0, delta / sd) if sd > 0 and self._bars > self.window else 0.0
        # Kyle's lambda on signed volume in units of average volume (causal, same bar)
        direction = (close > bar.open) - (close < bar.open)
        x = direction * self._rel_volume
        sx, sy = self._sx.update(x), self._sy.update(r)
        sxx, sxy = self._sxx.update(x * x), self._sxy.update(x * r)
        n = min(self._bars, self.window)
        mean_x = sx / n
        var_x = sxx / n - mean_x * mean_x  # a product, not ** 2: the same bits in compiled code
        if var_x > 1e-12:
            self._lambda = (sxy / n - sx / n * sy / n) / var_x
            self._lambda_mean += 0.01 * (self._lambda - self._lambda_mean)
        # volume profile by price bin (bin width fixed at the first bar: bins stay comparable)
        if self._bin_width == 0.0:
            self._bin_width = close * self.bin_fraction
        key = int(bar.vwap / self._bin_width) if bar.vwap else int(close / self._bin_width)
        profile = self._profile
        profile[key] = profile.get(key, 0.0) + volume
        self._profile_total += volume
        self._history.append((key, volume))
        if len(self._history) > PROFILE_BARS:
            old_key, old_volume = self._history.popleft()
            self._profile_total -= old_volume
            left = profile[old_key] - old_volume
            if left <= 1e-9:
                del profile[old_key]
            else:
                profile[old_key] = left

    def _zones(self, close: float) -> tuple[float | None, float, float | None, float]:
        """(support price, its volume share, resistance price, its volume share)."""
        width = self._bin_width
        here = int(close / width)
        profile = self._profile
        best_below = best_above = 0.0
        below = above = None
        for offset in range(1, SCAN_BINS + 1):
            v = profile.get(here - offset)
            if v is not None and v > best_below:
                best_below, below = v, here - offset
            v = profile.get(here + offset)
            if v is not None and v > best_above:
                best_above, above = v, here + offset
        total = self._profile_total if self._profile_total > 0 else 1.0
        return ((below + 0.5) * width if below is not None else None, best_below / total,
                (above + 0.5) * width if above is not None else None, best_above / total)

    def vote(self, ctx: AgentContext) -> Vote:
        bar = ctx.bar
        if self._bars < 30 or not self._atr.ready:
            return Vote.abstain(self.name, f"building the volume profile ({self._bars}/30 bars)")
        spread_note = "no quotes"
        spread_penalty = 1.0
        if self.quote_provider is not None:
            quote = self.quote_provider.quote(bar.symbol, bar.ts_event)
            if quote is not None:
                spread_note = f"spread {quote.spread_bps:.1f} bps"
                spread_penalty = 0.5 if quote.spread_bps > 10 else 1.0
        close, atr = bar.close, self._atr.value
        support, s_share, resistance, r_share = self._zones(close)
        impact = self._lambda / self._lambda_mean if self._lambda_mean > 0 else 1.0
        stress_penalty = 1.0 / (1.0 + 0.5 * self._stress + 0.2 * max(0.0, impact - 2.0))
        context = (f"Amihud stress {self._stress:.1f}σ, λ x{impact:.1f}, {spread_note}")
        closed_up, closed_down = close > bar.open, close < bar.open
        zone = self.zone_atr * atr
        if support is not None and closed_up and close - support <= zone:
            confidence = min(1.0, (0.35 + 2.0 * s_share + 0.1 * min(self._rel_volume, 2.0))
                             * stress_penalty * spread_penalty)
            return Vote(self.name, 1, confidence,
                        f"held support {support:.2f} ({s_share:.0%} of volume); {context}")
        if resistance is not None and closed_down and resistance - close <= zone:
            confidence = min(1.0, (0.35 + 2.0 * r_share + 0.1 * min(self._rel_volume, 2.0))
                             * stress_penalty * spread_penalty)
            return Vote(self.name, -1, confidence,
                        f"rejected at resistance {resistance:.2f} ({r_share:.0%} of volume); "
                        f"{context}")
        return Vote(self.name, 0, 0.3 * stress_penalty, f"between volume zones; {context}")
