"""Fold bars into coarser bars per symbol (1Min → 5Min, 1H, 1D ...), tolerant of real feeds'
disorder.

A bucket is ``origin + floor((ts - origin) / target) * target``. Intraday targets sit on the UTC
grid (origin 0: hours start on the hour, as Alpaca's do). Daily and longer targets are New York
days: they start at 05:00 UTC (midnight EST, 01:00 EDT), an hour no US session, extended hours
included, ever straddles, and weeks start on a Monday.

The open bucket of each symbol is emitted when a bar of a later bucket arrives (or on
``flush``), as one bar with the first open, the highest high, the lowest low, the last close,
summed volume and trade count and a volume-weighted VWAP; open and close follow time order
even when bars arrive out of order inside the bucket.
- gaps: a bucket simply has fewer source bars; an empty bucket emits nothing;
- duplicates (same symbol and timestamp again): ignored and counted;
- late bars for a bucket already emitted: dropped and counted (``late_dropped``);
- ``allowed_lateness_s`` keeps the newest closed bucket open that long past its end, so a
  straggler can still be folded in; it is emitted as soon as a bar beyond the lateness window
  arrives.
Memory is bounded: only open buckets are kept.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from gnosis.model.intervals import DAY_SECONDS, WEEK_SECONDS
from gnosis.model.types import NANOS_PER_SECOND, Bar

NEW_YORK_DAY_START_S = 5 * 3_600  # 05:00 UTC
FIRST_MONDAY_S = 4 * DAY_SECONDS  # 1970-01-05, the first Monday of the epoch


def bucket_origin(target_s: int) -> int:
    """Where buckets of ``target_s`` seconds start (seconds after the epoch; see the module)."""
    if target_s % WEEK_SECONDS == 0:
        return FIRST_MONDAY_S + NEW_YORK_DAY_START_S
    if target_s % DAY_SECONDS == 0:
        return NEW_YORK_DAY_START_S
    return 0


@dataclass(slots=True)
class _Bucket:
    start: int
    first_ts: int
    last_ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int
    has_trades: bool
    notional: float  # sum(vwap * volume) for the VWAP
    seen: set[int]

    def bar(self, symbol: str, target_s: int) -> Bar:
        vwap = self.notional / self.volume if self.volume > 0 else None
        if vwap is not None and not (self.low <= vwap <= self.high):
            vwap = min(max(vwap, self.low), self.high)
        return Bar(symbol, self.start, self.open, self.high, self.low, self.close, self.volume,
                   self.trades if self.has_trades else None, vwap, 0, target_s)


class BarAggregator:
    """``add(bar) -> list[Bar]`` of completed N-minute bars; ``flush()`` emits the rest."""

    def __init__(self, target_s: int, source_s: int = 60, allowed_lateness_s: int = 0,
                 origin_s: int | None = None) -> None:
        if target_s <= 0 or source_s <= 0:
            raise ValueError("intervals must be positive")
        if target_s % source_s:
            raise ValueError(f"a {source_s}s bar does not divide a {target_s}s bar")
        if allowed_lateness_s < 0:
            raise ValueError("allowed_lateness_s cannot be negative")
        self.target_s = target_s
        self.source_s = source_s
        self.origin_s = bucket_origin(target_s) if origin_s is None else origin_s
        self._origin_ns = self.origin_s * NANOS_PER_SECOND
        self._target_ns = target_s * NANOS_PER_SECOND
        self._lateness_ns = allowed_lateness_s * NANOS_PER_SECOND
        self._open: dict[str, dict[int, _Bucket]] = {}
        self._emitted_until: dict[str, int] = {}  # buckets starting before this are closed
        self.stats: Counter[str] = Counter()

    def add(self, bar: Bar) -> list[Bar]:
        if bar.interval_s != self.source_s:
            self.stats["wrong_interval"] += 1
            return []
        symbol = bar.symbol
        start = bar.ts_event - (bar.ts_event - self._origin_ns) % self._target_ns
        if start < self._emitted_until.get(symbol, -1):
            self.stats["late_dropped"] += 1
            return []
        buckets = self._open.setdefault(symbol, {})
        bucket = buckets.get(start)
        self.stats["bars_in"] += 1
        if bucket is None:
            buckets[start] = _Bucket(start, bar.ts_event, bar.ts_event, bar.open, bar.high,
                                     bar.low, bar.close, bar.volume, bar.trade_count or 0,
                                     bar.trade_count is not None,
                                     (bar.vwap or bar.close) * bar.volume, {bar.ts_event})
        elif bar.ts_event in bucket.seen:
            self.stats["duplicates"] += 1
            self.stats["bars_in"] -= 1
            return []
        else:
            bucket.seen.add(bar.ts_event)
            if bar.ts_event < bucket.last_ts:
                self.stats["out_of_order"] += 1
            if bar.ts_event < bucket.first_ts:
                bucket.first_ts, bucket.open = bar.ts_event, bar.open
            if bar.ts_event > bucket.last_ts:
                bucket.last_ts, bucket.close = bar.ts_event, bar.close
            bucket.high = max(bucket.high, bar.high)
            bucket.low = min(bucket.low, bar.low)
            bucket.volume += bar.volume
            if bar.trade_count is not None:
                bucket.trades += bar.trade_count
                bucket.has_trades = True
            bucket.notional += (bar.vwap or bar.close) * bar.volume
        # emit every bucket whose end (plus lateness) this bar has passed
        horizon = bar.ts_event - self._lateness_ns
        ready = [s for s in buckets if s + self._target_ns <= horizon]
        return self._emit(symbol, sorted(ready))

    def _emit(self, symbol: str, starts: list[int]) -> list[Bar]:
        buckets = self._open[symbol]
        out = []
        for start in starts:
            out.append(buckets.pop(start).bar(symbol, self.target_s))
            self._emitted_until[symbol] = max(self._emitted_until.get(symbol, -1),
                                              start + self._target_ns)
            self.stats["bars_out"] += 1
        return out

    def flush(self) -> list[Bar]:
        """Emit every open bucket (end of data), oldest first."""
        out: list[Bar] = []
        for symbol in sorted(self._open):
            out.extend(self._emit(symbol, sorted(self._open[symbol])))
        out.sort(key=lambda b: (b.ts_event, b.symbol))
        return out
