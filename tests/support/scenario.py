"""Hand-written engine scenarios: OHLCV rows with the signal decided on each row's close.

In the style of freqtrade's backtest-detail tests: a few rows make the market, a column says
what the strategy decides, and the test states the fills and exits that must follow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gnosis.core.config import load_config
from gnosis.model.events import Event, OrderCanceled, OrderFilled, PositionClosed
from gnosis.model.types import Bar, Decision, Fill, Trade
from gnosis.trading.engine import Engine
from gnosis.trading.sim_broker import SimBroker
from tests.support.invariants import LifecycleChecker

T0 = 1_704_205_800_000_000_000  # 2024-01-02 14:30 UTC
MINUTE = 60 * 10**9
# no fees, no slippage: prices in the expectations are the model's levels, exactly
FREE = {"slippage_bps": 0.0, "impact_coefficient": 0.0, "sell_fee_bps": 0.0,
        "commission_per_share": 0.0}


class ScriptedStrategy:
    """Decides what a table says: ``signals[i]`` on bar i (of each symbol), confidence 1."""

    name = "scripted"

    def __init__(self, signals: Sequence[int], confidence: float = 1.0) -> None:
        self.signals = list(signals)
        self.confidence = confidence
        self.index: dict[str, int] = {}

    def on_bar(self, bar: Bar) -> Decision:
        i = self.index.get(bar.symbol, -1) + 1
        self.index[bar.symbol] = i
        signal = self.signals[i] if i < len(self.signals) else 0
        return Decision(bar.symbol, bar.ts_event, signal, self.confidence if signal else 0.0)

    def snapshot(self) -> Any:
        return dict(self.index)

    def restore(self, state: Any) -> None:
        self.index = dict(state)


@dataclass
class Outcome:
    engine: Engine
    fills: list[tuple[int, str, float, float]]  # (bar, reason, price, quantity)
    trades: list[Trade]
    raw_fills: list[Fill]
    canceled: list[tuple[int, str, str]]  # (bar, order id suffix, reason)
    events: list[Event]


def run_rows(rows: Sequence[tuple], *, risk: dict | None = None,
             execution: dict | None = None, positions: dict | None = None,
             initial_cash: float = 100_000.0, symbol: str = "SPY") -> Outcome:
    """Run rows ``(open, high, low, close, volume, signal)``, one minute apart; the lifecycle
    invariants are checked after every bar."""
    config = load_config(
        initial_cash=initial_cash,
        risk={"fixed_quantity": 100, **(risk or {})},
        execution={**FREE, "max_participation": 1.0, **(execution or {})},
        positions=positions or {},
    )
    strategy = ScriptedStrategy([row[5] for row in rows])
    engine = Engine(config, strategy, SimBroker(config.execution))
    checker = LifecycleChecker(engine)
    fills: list[Fill] = []
    trades: list[Trade] = []
    canceled: list[OrderCanceled] = []
    events: list[Event] = []
    engine.bus.subscribe(OrderFilled, lambda e: fills.append(e.fill))
    engine.bus.subscribe(PositionClosed, lambda e: trades.append(e.trade))
    engine.bus.subscribe(OrderCanceled, canceled.append)
    engine.bus.subscribe(None, events.append)
    for i, (o, h, low, c, v, _signal) in enumerate(rows):
        engine.on_bar(Bar(symbol, T0 + i * MINUTE, o, h, low, c, v))
        checker.check()
    table = [((f.ts_event - T0) // MINUTE, f.reason, round(f.price, 6), f.quantity)
             for f in fills]
    cancels = [((c.ts_event - T0) // MINUTE, c.client_order_id.split("-", 2)[-1], c.reason)
               for c in canceled]
    return Outcome(engine, table, trades, fills, cancels, events)
