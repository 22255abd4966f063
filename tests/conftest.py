"""Shared test helpers: seeded bar series (the seed is part of every test id)."""

from __future__ import annotations

import numpy as np
import pytest

from gnosis.model.types import Bar

T0 = 1_704_205_800_000_000_000  # 2024-01-02 14:30 UTC, the first minute of a session
MINUTE = 60 * 10**9


def random_walk_bars(n: int, seed: int = 1, symbol: str = "SPY", start: float = 450.0,
                     sigma: float = 0.0008, drift: float = 0.0, t0: int = T0) -> list[Bar]:
    """A seeded geometric random walk of valid 1-minute bars."""
    rng = np.random.default_rng(seed)
    close = start * np.exp(np.cumsum(rng.normal(drift, sigma, n)))
    open_ = np.r_[start, close[:-1]]
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, sigma / 2, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, sigma / 2, n)))
    volume = rng.integers(20_000, 200_000, n).astype(float)
    return [
        Bar(symbol, t0 + i * MINUTE, o, h, lo, c, v)
        for i, (o, h, lo, c, v) in enumerate(
            zip(open_.tolist(), high.tolist(), low.tolist(), close.tolist(), volume.tolist())
        )
    ]


def interleave(*series: list[Bar]) -> list[Bar]:
    """Merge per-symbol series into one time-ordered stream (time, then symbol order)."""
    merged = [bar for bars in series for bar in bars]
    merged.sort(key=lambda b: (b.ts_event, b.symbol))
    return merged


@pytest.fixture
def walk() -> list[Bar]:
    return random_walk_bars(5_000, seed=11)
