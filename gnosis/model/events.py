"""Events: facts in the past tense. Each carries the source time and our receive time (ns, UTC)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gnosis.model.memory import MemoryAdvice, Situation
from gnosis.model.types import Bar, Decision, Fill, Order, Trade, TradingState


@dataclass(frozen=True, slots=True)
class Event:
    ts_event: int
    ts_init: int

    @property
    def kind(self) -> str:
        return type(self).__name__


@dataclass(frozen=True, slots=True)
class BarProcessed(Event):
    bar: Bar
    equity: float


@dataclass(frozen=True, slots=True)
class BarQuarantined(Event):
    symbol: str
    reason: str


@dataclass(frozen=True, slots=True)
class DecisionMade(Event):
    decision: Decision
    close: float
    quantity: float  # signed quantity of the order this decision sent (0: none)
    note: str = ""  # why nothing was sent, when it was not


@dataclass(frozen=True, slots=True)
class OrderSubmitted(Event):
    order: Order


@dataclass(frozen=True, slots=True)
class OrderCanceled(Event):
    client_order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class OrderFilled(Event):
    fill: Fill


@dataclass(frozen=True, slots=True)
class TradeRefused(Event):
    symbol: str
    signal: int
    reason: str


@dataclass(frozen=True, slots=True)
class PositionOpened(Event):
    symbol: str
    quantity: float
    price: float
    stop_price: float
    target_price: float


@dataclass(frozen=True, slots=True)
class PositionClosed(Event):
    trade: Trade


@dataclass(frozen=True, slots=True)
class TradingStateChanged(Event):
    previous: TradingState
    current: TradingState
    reason: str


@dataclass(frozen=True, slots=True)
class RegimeChanged(Event):
    symbol: str
    previous: str
    current: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Notice(Event):
    """Anything else worth a line in the console and journal (warnings, restarts)."""

    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MemoryRecalled(Event):
    """Episodic memory advised on a candidate entry (its evidence travels with it)."""

    situation: Situation
    advice: MemoryAdvice
