"""Wyckoff agent: trading ranges, who is absorbing inside them, and the tests at their edges.

From price and volume alone (the regime detector is context, not input):
- the trading range is the high/low of the previous ``window`` bars (kept with monotonic
  deques: O(1) amortized per bar);
- a **spring** is a bar that trades below the range low on heavy volume and closes back inside
  (bullish); an **upthrust** is the mirror above the high (bearish);
- a **sign of strength** is a close above the range high on heavy volume (markup begins); a
  **sign of weakness** a close below the low (markdown);
- inside the range, **accumulation** shows as volume concentrated on up bars with closes in the
  upper part of bars, **distribution** as the mirror;
- **markup** / **markdown**: price holding above / below the range midpoint with a rising /
  falling slope after such evidence.
An event is remembered for ``memory_bars`` bars, so the phase persists while it plays out.
"""

from __future__ import annotations

from collections import deque

from gnosis.agents.base import Agent, AgentContext
from gnosis.data.indicators import RollingSlope, RollingSum
from gnosis.model.types import Vote


class WyckoffAgent(Agent):
    name = "wyckoff"

    def __init__(self, window: int = 60, memory_bars: int = 15,
                 heavy_volume: float = 1.3) -> None:
        self.window = window
        self.memory_bars = memory_bars
        self.heavy_volume = heavy_volume
        self._highs: deque[tuple[int, float]] = deque()  # decreasing highs (index, high)
        self._lows: deque[tuple[int, float]] = deque()  # increasing lows
        self._index = -1
        self._avg_volume = 0.0
        self._up = RollingSum(window)
        self._volume = RollingSum(window)
        self._clv = RollingSum(window)
        self._slope = RollingSlope(20)
        self._event = ""
        self._event_signal = 0
        self._event_age = 10**9
        self._range = (0.0, 0.0)
        self._phase = "no range yet"
        self._signal = 0
        self._strength = 0.0

    def _push_extremes(self, index: int, high: float, low: float) -> None:
        highs, lows = self._highs, self._lows
        while highs and highs[-1][1] <= high:
            highs.pop()
        highs.append((index, high))
        while lows and lows[-1][1] >= low:
            lows.pop()
        lows.append((index, low))
        oldest = index - self.window + 1
        if highs[0][0] < oldest:
            highs.popleft()
        if lows[0][0] < oldest:
            lows.popleft()

    def update(self, ctx: AgentContext) -> None:
        """Test the bar against the range of the bars before it, fold it in, then read the
        phase from the event memory and the volume structure."""
        bar = ctx.bar
        self._index += 1
        index = self._index
        ready = index >= self.window
        range_high = self._highs[0][1] if self._highs else bar.high
        range_low = self._lows[0][1] if self._lows else bar.low
        span = bar.high - bar.low
        clv = ((bar.close - bar.low) - (bar.high - bar.close)) / span if span > 0 else 0.0
        self._event_age += 1
        if ready:
            self._detect_event(bar.low, bar.high, bar.close, bar.volume, range_low, range_high)
        balance, clv_mean, rising = self._fold(index, bar.open, bar.high, bar.low, bar.close,
                                               bar.volume, clv)
        self._range = (range_low, range_high)
        if not ready:
            self._phase, self._signal, self._strength = "no range yet", 0, 0.0
            return
        self._classify(bar.close, range_low, range_high, balance, clv_mean, rising)

    def _detect_event(self, low: float, high: float, close: float, volume: float,
                      range_low: float, range_high: float) -> None:
        """Springs, upthrusts and breakouts: heavy volume through the range's edge."""
        rel_volume = volume / self._avg_volume if self._avg_volume > 0 else 1.0
        if rel_volume < self.heavy_volume:
            return
        if low < range_low and close > range_low:
            self._set_event("spring", 1)
        elif high > range_high and close < range_high:
            self._set_event("upthrust", -1)
        elif close > range_high:
            self._set_event("sign of strength", 1)
        elif close < range_low:
            self._set_event("sign of weakness", -1)

    def _fold(self, index: int, open_: float, high: float, low: float, close: float,
              volume: float, clv: float) -> tuple[float, float, bool]:
        """Fold the bar into the range and the rolling sums; return (up-volume balance,
        mean close location, rising slope)."""
        self._push_extremes(index, high, low)
        self._avg_volume = volume if index == 0 else \
            self._avg_volume + 0.03 * (volume - self._avg_volume)
        up_volume = self._up.update(volume if close > open_ else 0.0)
        total = self._volume.update(volume)
        clv_mean = self._clv.update(clv) / min(index + 1, self.window)
        slope = self._slope.update(close)
        balance = up_volume / total - 0.5 if total > 0 else 0.0
        return balance, clv_mean, slope > 0 and self._slope.ready

    def _classify(self, close: float, range_low: float, range_high: float, balance: float,
                  clv_mean: float, rising: bool) -> None:
        width = range_high - range_low
        position = (close - range_low) / width if width > 0 else 0.5
        if self._event_age <= self.memory_bars:
            signal = self._event_signal
            if signal > 0:
                phase = "markup" if close > range_high else "accumulation"
            else:
                phase = "markdown" if close < range_low else "distribution"
            self._phase, self._signal = f"{phase} after {self._event}", signal
            self._strength = 0.55 + 0.3 * (1.0 - self._event_age / self.memory_bars)
        elif balance > 0.1 and clv_mean > 0.08:
            self._phase, self._signal = "accumulation: volume on up bars, closes high", 1
            self._strength = min(1.0, 0.35 + balance + clv_mean)
        elif balance < -0.1 and clv_mean < -0.08:
            self._phase, self._signal = "distribution: volume on down bars, closes low", -1
            self._strength = min(1.0, 0.35 - balance - clv_mean)
        elif position > 0.6 and rising and balance > 0.02:
            self._phase, self._signal, self._strength = "markup inside the range", 1, 0.4
        elif position < 0.4 and not rising and balance < -0.02:
            self._phase, self._signal, self._strength = "markdown inside the range", -1, 0.4
        else:
            self._phase, self._signal, self._strength = "trading range, no edge", 0, 0.3

    def _set_event(self, name: str, signal: int) -> None:
        self._event, self._event_signal, self._event_age = name, signal, 0

    def vote(self, ctx: AgentContext) -> Vote:
        if self._index < self.window:
            return Vote.abstain(self.name, f"no trading range yet ({self._index + 1}/"
                                           f"{self.window} bars)")
        low, high = self._range
        return Vote(self.name, self._signal, self._strength,
                    f"{self._phase} (range {low:.2f}-{high:.2f})")
