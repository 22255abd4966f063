"""Incremental indicators: O(1) work per update and bounded memory.

Each class has ``update(...)``, ``value`` and ``ready``; its batch twin in
``gnosis.data.indicators_batch`` computes the same numbers over a whole array, and the
parity tests hold the two (and the ``ta`` library) together.
"""

from __future__ import annotations

import math


class RingBuffer:
    """Fixed-capacity FIFO of floats; ``push`` returns the value it evicted (or None)."""

    __slots__ = ("_data", "_capacity", "_start", "_size")

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._data = [0.0] * capacity
        self._capacity = capacity
        self._start = 0
        self._size = 0

    def push(self, value: float) -> float | None:
        if self._size < self._capacity:
            self._data[(self._start + self._size) % self._capacity] = value
            self._size += 1
            return None
        evicted = self._data[self._start]
        self._data[self._start] = value
        self._start = (self._start + 1) % self._capacity
        return evicted

    def __len__(self) -> int:
        return self._size

    @property
    def full(self) -> bool:
        return self._size == self._capacity

    def __getitem__(self, index: int) -> float:
        """Index 0 is the oldest value, -1 the newest."""
        if index < 0:
            index += self._size
        if not 0 <= index < self._size:
            raise IndexError(index)
        return self._data[(self._start + index) % self._capacity]

    def to_list(self) -> list[float]:
        return [self[i] for i in range(self._size)]


class EMA:
    """Exponential moving average, ``alpha = 2 / (period + 1)``, seeded with the first value
    (pandas ``ewm(span=period, adjust=False)``); ready after ``period`` updates."""

    __slots__ = ("period", "alpha", "value", "count")

    def __init__(self, period: int) -> None:
        if period <= 0:
            raise ValueError("period must be positive")
        self.period = period
        self.alpha = 2.0 / (period + 1.0)
        self.value = math.nan
        self.count = 0

    def update(self, x: float) -> float:
        if self.count == 0:
            self.value = x
        else:
            self.value += self.alpha * (x - self.value)
        self.count += 1
        return self.value

    @property
    def ready(self) -> bool:
        return self.count >= self.period


class RollingMeanStd:
    """Rolling mean and population standard deviation over ``period`` values.

    Sums are kept relative to an anchor (the first value seen, re-anchored periodically) so
    that prices near 500 with tiny variance do not lose precision to cancellation.
    """

    __slots__ = ("period", "_buffer", "_anchor", "_sum", "_sumsq", "_since_anchor", "count")

    def __init__(self, period: int) -> None:
        if period <= 0:
            raise ValueError("period must be positive")
        self.period = period
        self._buffer = RingBuffer(period)
        self._anchor = math.nan
        self._sum = 0.0
        self._sumsq = 0.0
        self._since_anchor = 0
        self.count = 0

    def update(self, x: float) -> None:
        if self.count == 0:
            self._anchor = x
        evicted = self._buffer.push(x)
        d = x - self._anchor
        self._sum += d
        self._sumsq += d * d
        if evicted is not None:
            e = evicted - self._anchor
            self._sum -= e
            self._sumsq -= e * e
        self.count += 1
        self._since_anchor += 1
        if self._since_anchor >= 50 * self.period:
            self._reanchor()

    def _reanchor(self) -> None:
        values = self._buffer.to_list()
        self._anchor = sum(values) / len(values)
        self._sum = sum(v - self._anchor for v in values)
        self._sumsq = sum((v - self._anchor) * (v - self._anchor) for v in values)
        self._since_anchor = 0

    @property
    def ready(self) -> bool:
        return self.count >= self.period

    @property
    def size(self) -> int:
        return len(self._buffer)

    @property
    def mean(self) -> float:
        n = len(self._buffer)
        return self._anchor + self._sum / n if n else math.nan

    @property
    def variance(self) -> float:
        n = len(self._buffer)
        if not n:
            return math.nan
        m = self._sum / n
        return max(self._sumsq / n - m * m, 0.0)

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)

    @property
    def value(self) -> float:
        return self.mean


class ZScore:
    """``(x - rolling mean) / rolling std`` of the latest value over ``period`` values."""

    __slots__ = ("_stats", "value")

    def __init__(self, period: int) -> None:
        self._stats = RollingMeanStd(period)
        self.value = math.nan

    def update(self, x: float) -> float:
        self._stats.update(x)
        sd = self._stats.std
        self.value = (x - self._stats.mean) / sd if sd > 0 else 0.0
        return self.value

    @property
    def ready(self) -> bool:
        return self._stats.ready


class LogReturn:
    """Log return of consecutive closes."""

    __slots__ = ("_previous", "value")

    def __init__(self) -> None:
        self._previous = math.nan
        self.value = math.nan

    def update(self, close: float) -> float:
        previous = self._previous
        self.value = math.log(close / previous) if previous == previous else math.nan
        self._previous = close
        return self.value

    @property
    def ready(self) -> bool:
        return self.value == self.value


class ATR:
    """Average true range with Wilder smoothing: the first value is the mean of the first
    ``period`` true ranges, then ``(atr * (period - 1) + tr) / period``."""

    __slots__ = ("period", "_previous_close", "_seed_sum", "count", "value")

    def __init__(self, period: int = 14) -> None:
        if period <= 0:
            raise ValueError("period must be positive")
        self.period = period
        self._previous_close = math.nan
        self._seed_sum = 0.0
        self.count = 0
        self.value = math.nan

    def update(self, high: float, low: float, close: float) -> float:
        pc = self._previous_close
        if pc == pc:
            tr = max(high - low, abs(high - pc), abs(low - pc))
        else:
            tr = high - low
        self._previous_close = close
        self.count += 1
        if self.count < self.period:
            self._seed_sum += tr
        elif self.count == self.period:
            self.value = (self._seed_sum + tr) / self.period
        else:
            self.value = (self.value * (self.period - 1) + tr) / self.period
        return self.value

    @property
    def ready(self) -> bool:
        return self.count >= self.period


class Bollinger:
    """Bollinger bands: SMA ± k population standard deviations, with width and %b."""

    __slots__ = ("_stats", "k", "middle", "upper", "lower", "width", "percent_b")

    def __init__(self, period: int = 20, k: float = 2.0) -> None:
        self._stats = RollingMeanStd(period)
        self.k = k
        self.middle = self.upper = self.lower = self.width = self.percent_b = math.nan

    def update(self, close: float) -> None:
        s = self._stats
        s.update(close)
        mid = s.mean
        band = self.k * s.std
        self.middle = mid
        self.upper = mid + band
        self.lower = mid - band
        self.width = (self.upper - self.lower) / mid if mid else math.nan
        span = self.upper - self.lower
        self.percent_b = (close - self.lower) / span if span > 0 else 0.5

    @property
    def ready(self) -> bool:
        return self._stats.ready

    @property
    def value(self) -> float:
        return self.middle


class RollingSlope:
    """Least-squares slope of the last ``period`` values against their index, O(1) per update."""

    __slots__ = ("period", "_buffer", "_sum_y", "_sum_xy", "_anchor", "count", "value")

    def __init__(self, period: int) -> None:
        if period < 2:
            raise ValueError("period must be at least 2")
        self.period = period
        self._buffer = RingBuffer(period)
        self._sum_y = 0.0
        self._sum_xy = 0.0
        self._anchor = math.nan
        self.count = 0
        self.value = math.nan

    def update(self, y: float) -> float:
        if self.count == 0:
            self._anchor = y
        y -= self._anchor  # the slope is shift-invariant; anchoring keeps sums small
        n = len(self._buffer)
        evicted = self._buffer.push(y)
        if evicted is None:
            self._sum_xy += n * y
            self._sum_y += y
        else:
            # drop the oldest (index 0), shift every index down by one, append at n - 1
            self._sum_xy += -(self._sum_y - evicted) + (self.period - 1) * y
            self._sum_y += y - evicted
        self.count += 1
        m = len(self._buffer)
        if m >= 2:
            sum_x = m * (m - 1) / 2.0
            sum_xx = (m - 1) * m * (2 * m - 1) / 6.0
            denominator = m * sum_xx - sum_x * sum_x
            self.value = (m * self._sum_xy - sum_x * self._sum_y) / denominator
        return self.value

    @property
    def ready(self) -> bool:
        return self.count >= self.period


class RollingSum:
    """Sum of the last ``period`` values."""

    __slots__ = ("_buffer", "value", "count", "period")

    def __init__(self, period: int) -> None:
        self.period = period
        self._buffer = RingBuffer(period)
        self.value = 0.0
        self.count = 0

    def update(self, x: float) -> float:
        evicted = self._buffer.push(x)
        self.value += x - (evicted if evicted is not None else 0.0)
        self.count += 1
        return self.value

    @property
    def ready(self) -> bool:
        return self.count >= self.period


class VolumeStats:
    """Rolling mean/std of volume and the latest bar's relative volume (volume / mean)."""

    __slots__ = ("_stats", "relative", "zscore")

    def __init__(self, period: int = 20) -> None:
        self._stats = RollingMeanStd(period)
        self.relative = math.nan
        self.zscore = math.nan

    def update(self, volume: float) -> None:
        s = self._stats
        s.update(volume)
        mean = s.mean
        sd = s.std
        self.relative = volume / mean if mean > 0 else 1.0
        self.zscore = (volume - mean) / sd if sd > 0 else 0.0

    @property
    def mean(self) -> float:
        return self._stats.mean

    @property
    def ready(self) -> bool:
        return self._stats.ready


class SMA:
    """Simple moving average over ``period`` values: a running sum over a ring of values,
    re-summed exactly every ``50 * period`` updates so rounding error cannot accumulate."""

    __slots__ = ("period", "_values", "_next", "_sum", "count", "value", "_until_resum")

    def __init__(self, period: int) -> None:
        if period <= 0:
            raise ValueError("period must be positive")
        self.period = period
        self._values = [0.0] * period
        self._next = 0
        self._sum = 0.0
        self.count = 0
        self.value = math.nan
        self._until_resum = 50 * period

    def update(self, x: float) -> float:
        slot = self._next
        self._sum += x - self._values[slot]
        self._values[slot] = x
        self._next = slot + 1 if slot + 1 < self.period else 0
        self.count += 1
        self._until_resum -= 1
        if self._until_resum == 0:
            self._sum = sum(self._values)
            self._until_resum = 50 * self.period
        if self.count >= self.period:
            self.value = self._sum / self.period
        else:
            self.value = self._sum / self.count
        return self.value

    @property
    def ready(self) -> bool:
        return self.count >= self.period

    @property
    def mean(self) -> float:
        return self.value
