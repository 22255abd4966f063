"""SMA crossover: the example strategy plugin, used for benchmarks and peer comparison."""

from __future__ import annotations

import math
from typing import Any

from gnosis.data.indicators import SMA
from gnosis.model.types import Bar, Decision


class SmaCrossover:
    """+1 when the fast SMA crosses above the slow one, −1 when it crosses below.

    The engine turns −1 into an exit of a long (and a short entry only when shorts are
    allowed). The decision on bar t uses closes up to t only; it fills on bar t+1.
    """

    name = "sma"

    def __init__(self, fast: int = 10, slow: int = 30) -> None:
        if not 0 < fast < slow:
            raise ValueError(f"need 0 < fast < slow, got fast={fast}, slow={slow}")
        self.fast_period = fast
        self.slow_period = slow
        self._state: dict[str, tuple[SMA, SMA, list[float]]] = {}

    def on_bar(self, bar: Bar) -> Decision:
        state = self._state.get(bar.symbol)
        if state is None:
            state = self._state[bar.symbol] = (
                SMA(self.fast_period), SMA(self.slow_period), [math.nan]
            )
        fast, slow, last_diff = state
        fast_value = fast.update(bar.close)
        slow_value = slow.update(bar.close)
        signal = 0
        if slow.ready:
            diff = fast_value - slow_value
            previous = last_diff[0]
            if previous == previous:  # not NaN: a crossover needs two ready bars
                if previous <= 0 < diff:
                    signal = 1
                elif previous >= 0 > diff:
                    signal = -1
            last_diff[0] = diff
        return Decision(bar.symbol, bar.ts_event, signal, 1.0 if signal else 0.0)

    def snapshot(self) -> Any:
        return self._state

    def restore(self, state: Any) -> None:
        self._state = state
