"""The only module that reads wall time. Everything else receives a ``Clock``."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ns(self) -> int:
        """Current time in epoch nanoseconds, UTC."""
        ...


class LiveClock:
    """Wall-clock time."""

    def now_ns(self) -> int:
        return time.time_ns()

    @staticmethod
    def sleep(seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    @staticmethod
    def monotonic_ns() -> int:
        return time.perf_counter_ns()


class ReplayClock:
    """Time driven by the data: advanced by the engine to each bar's close, never backwards."""

    __slots__ = ("_now",)

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def advance_to(self, ts_ns: int) -> None:
        if ts_ns > self._now:
            self._now = ts_ns


def perf_counter_ns() -> int:
    """Monotonic high-resolution counter for measuring durations (benchmarks, latency)."""
    return time.perf_counter_ns()
