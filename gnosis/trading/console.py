"""Console output in the spirit of the seed: one line per bar, plus fills, exits and alerts."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from gnosis.core.bus import EventBus
from gnosis.model.events import (
    DecisionMade,
    MemoryRecalled,
    Notice,
    OrderFilled,
    PositionClosed,
    PositionOpened,
    TradingStateChanged,
)

_NEW_YORK = ZoneInfo("America/New_York")
_SHORT = {"hedge": "H", "liquidity": "L", "sentiment": "S", "wyckoff": "W", "markov": "M"}
_ARROW = {1: "+", 0: "0", -1: "-"}


def _clock(ts_ns: int) -> str:
    moment = datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).astimezone(_NEW_YORK)
    return moment.strftime("%Y-%m-%d %H:%M ET")


_GATED = ("wyckoff", "markov")


class ConsoleReporter:
    """Print engine events; ``every`` > 1 prints only every n-th quiet bar."""

    def __init__(self, bus: EventBus, out: TextIO | None = None, every: int = 1,
                 equity: Callable[[], float] | None = None,
                 regime_of: Callable[[str], Any] | None = None) -> None:
        self.out = out or sys.stdout
        self.every = max(1, every)
        self._equity = equity
        self._regime_of = regime_of  # symbol -> latest RegimeState (trend, volatility)
        self._count = 0
        self._gated: dict[tuple[str, str], bool] = {}  # (symbol, agent) -> was active
        bus.subscribe(DecisionMade, self.on_decision_made)
        bus.subscribe(OrderFilled, self.on_order_filled)
        bus.subscribe(PositionOpened, self.on_position_opened)
        bus.subscribe(PositionClosed, self.on_position_closed)
        bus.subscribe(TradingStateChanged, self.on_trading_state_changed)
        bus.subscribe(Notice, self.on_notice)
        bus.subscribe(MemoryRecalled, self.on_memory_recalled)

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def on_decision_made(self, event: DecisionMade) -> None:
        self._count += 1
        decision = event.decision
        self._report_activation(decision)
        if decision.signal == 0 and self._count % self.every:
            return
        parts = [f"{_clock(event.ts_event)} {decision.symbol:<5} {event.close:>9.2f}"]
        if decision.regime is not None:
            confidence = decision.regime_confidence or 0.0
            text = f"{decision.regime:<13} {confidence:4.0%}"
            state = self._regime_of(decision.symbol) if self._regime_of else None
            if state is not None:
                text += f" trend {state.trend_strength:+.2f} vol {state.volatility:4.0%}"
            parts.append(text)
        if decision.votes:
            cast = " ".join(
                f"{_SHORT.get(v.agent, v.agent[:1].upper())}"
                f"{'·' if v.abstained else _ARROW[v.signal]}"
                for v in decision.votes
            )
            off = "".join(_SHORT.get(agent, agent[:1]) for agent, _ in decision.inactive)
            parts.append(f"votes {cast}" + (f" (off: {off})" if off else ""))
        verdict = {1: "BUY ", -1: "SELL", 0: "hold"}[decision.signal]
        line = f"{verdict} {decision.confidence:4.2f}"
        if event.quantity:
            line += f" size {abs(event.quantity):g}"
        elif decision.signal and event.note:
            line += f" ({event.note})"
        parts.append(line)
        if self._equity is not None:
            parts.append(f"equity {self._equity():,.2f}")
        self._print(" | ".join(parts))

    def _report_activation(self, decision: Any) -> None:
        """Print when a regime-gated agent (Wyckoff, Markov) switches on or off, and why."""
        if not decision.votes and not decision.inactive:
            return
        off = dict(decision.inactive)
        phases = {v.agent: v.reasoning for v in decision.votes}
        for agent in _GATED:
            active = agent not in off
            key = (decision.symbol, agent)
            if self._gated.get(key, False) != active and (key in self._gated or active):
                why = phases.get(agent, "") if active else off[agent]
                self._print(f"  {decision.symbol} {agent} {'ON ' if active else 'OFF'}: {why}")
            self._gated[key] = active

    def on_order_filled(self, event: OrderFilled) -> None:
        fill = event.fill
        note = f" [{fill.liquidity_note}]" if fill.liquidity_note else ""
        self._print(
            f"  fill {fill.side.value:<4} {fill.quantity:g} {fill.symbol} @ {fill.price:.2f} "
            f"({fill.reason}; expected {fill.expected_price:.2f}, fee {fill.fee:.2f}){note}"
        )

    def on_position_opened(self, event: PositionOpened) -> None:
        side = "long" if event.quantity > 0 else "short"
        self._print(
            f"  opened {side} {abs(event.quantity):g} {event.symbol} @ {event.price:.2f}, "
            f"stop {event.stop_price:.2f}, target {event.target_price:.2f}"
        )

    def on_position_closed(self, event: PositionClosed) -> None:
        trade: Any = event.trade
        self._print(
            f"  closed {trade.side} {trade.quantity:g} {trade.symbol}: {trade.exit_reason}, "
            f"pnl {trade.pnl:+,.2f} ({trade.return_pct:+.2%}) after {trade.bars_held} bars"
        )

    def on_memory_recalled(self, event: MemoryRecalled) -> None:
        """A line only when memory changed something: its evidence and its nudge."""
        advice, situation = event.advice, event.situation
        if advice.size_scale == 1.0 and advice.confidence == situation.confidence:
            return
        self._print(f"  memory {situation.symbol}: {advice.reason}")

    def on_trading_state_changed(self, event: TradingStateChanged) -> None:
        self._print(f"!! trading {event.previous.value} -> {event.current.value}: {event.reason}")

    def on_notice(self, event: Notice) -> None:
        self._print(f"-- {event.message}")
