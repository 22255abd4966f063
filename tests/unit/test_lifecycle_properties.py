"""Property test: the order-lifecycle invariants hold after every bar, whatever the market.

Hypothesis draws the participation cap, stop width, time stop, loss limits, overnight gaps,
thin bars, the number of symbols and the strategy (SMA crossover, a random signal stream, an
always-in strategy), then a whole run is checked bar by bar (tests/support/invariants.py).
"""

from __future__ import annotations

import os
import random

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gnosis.core.config import load_config
from gnosis.model.types import Bar, Decision
from gnosis.strategies.sma_crossover import SmaCrossover
from gnosis.trading.engine import Engine
from gnosis.trading.sim_broker import SimBroker
from tests.support.invariants import LifecycleChecker

T0 = 1_704_205_800_000_000_000
# `make mutation` runs this for every mutant: fewer examples keep that affordable
EXAMPLES = int(os.environ.get("LIFECYCLE_EXAMPLES", "150"))
MINUTE = 60 * 10**9


class RandomSignals:
    """A seeded stream of signals and confidences (a stand-in for a noisy strategy)."""

    name = "random"

    def __init__(self, seed: int, activity: float) -> None:
        self.rng = random.Random(seed)
        self.activity = activity

    def on_bar(self, bar: Bar) -> Decision:
        if self.rng.random() >= self.activity:
            return Decision(bar.symbol, bar.ts_event, 0, 0.0)
        signal = self.rng.choice((-1, 1))
        return Decision(bar.symbol, bar.ts_event, signal, self.rng.uniform(0.45, 1.0))

    def snapshot(self) -> object:
        return self.rng.getstate()

    def restore(self, state: object) -> None:
        self.rng.setstate(state)  # type: ignore[arg-type]


class AlwaysIn:
    """Long on even symbols, short on odd ones, every bar: keeps every limit busy."""

    name = "always"

    def on_bar(self, bar: Bar) -> Decision:
        signal = 1 if hash(bar.symbol) % 2 == 0 else -1
        return Decision(bar.symbol, bar.ts_event, signal, 0.9)

    def snapshot(self) -> object:
        return None

    def restore(self, state: object) -> None:
        pass


def market(seed: int, symbols: int, bars: int, gap_every: int, gap_size: float,
           thin_share: float) -> list[Bar]:
    """Random walks with overnight gaps every ``gap_every`` bars and some very thin bars."""
    rng = np.random.default_rng(seed)
    out: list[Bar] = []
    for s in range(symbols):
        price = 50.0 + 100.0 * rng.random()
        for i in range(bars):
            open_ = price
            if gap_every and i and i % gap_every == 0:
                open_ = price * (1.0 + rng.choice((-1.0, 1.0)) * gap_size)
            close = open_ * float(np.exp(rng.normal(0.0, 0.004)))
            high = max(open_, close) * (1.0 + abs(rng.normal(0.0, 0.002)))
            low = min(open_, close) * (1.0 - abs(rng.normal(0.0, 0.002)))
            volume = float(rng.integers(50, 400) if rng.random() < thin_share
                           else rng.integers(5_000, 80_000))
            # minutes are spread over days so the risk manager sees day boundaries
            ts = T0 + (i // 390) * 86_400 * 10**9 + (i % 390) * MINUTE
            out.append(Bar(f"S{s}", ts, open_, high, low, close, volume))
            price = close
    out.sort(key=lambda b: (b.ts_event, b.symbol))
    return out


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    symbols=st.integers(1, 4),
    participation=st.sampled_from([0.001, 0.003, 0.01, 0.05, 0.2, 1.0]),
    stop=st.floats(0.0005, 0.04),
    max_bars_held=st.integers(2, 60),
    daily_loss=st.sampled_from([0.002, 0.01, 0.05]),
    drawdown=st.sampled_from([0.004, 0.02, 0.1]),
    gap_every=st.sampled_from([0, 97, 390]),
    gap_size=st.floats(0.0, 0.08),
    thin_share=st.floats(0.0, 0.5),
    which=st.sampled_from(["sma", "random", "always"]),
    brackets=st.booleans(),
)
def test_invariants_hold_after_every_bar(seed, symbols, participation, stop, max_bars_held,
                                         daily_loss, drawdown, gap_every, gap_size,
                                         thin_share, which, brackets) -> None:
    config = load_config(
        initial_cash=1_000_000.0,
        risk={"stop_loss_pct": stop, "max_stop_loss_pct": min(stop * 2.5, 0.49),
              "daily_loss_limit_pct": daily_loss, "max_drawdown_pct": drawdown,
              "brackets": brackets},
        execution={"max_participation": participation},
        positions={"max_bars_held": max_bars_held},
    )
    strategy = {"sma": lambda: SmaCrossover(3, 9),
                "random": lambda: RandomSignals(seed, 0.2),
                "always": AlwaysIn}[which]()
    engine = Engine(config, strategy, SimBroker(config.execution))
    checker = LifecycleChecker(engine)
    for bar in market(seed, symbols, 700, gap_every, gap_size, thin_share):
        engine.on_bar(bar)
        checker.check()
    assert checker.checks == 700 * symbols
