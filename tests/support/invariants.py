"""The order-lifecycle invariants of DESIGN §5, checked against a live engine after every bar.

1. Records: the engine's entry/exit records point only at orders the broker still works, with
   the same unfilled quantity (a filled or canceled order leaves no record).
2. Reasons: every working order is the symbol's entry, a bracket leg of its open position, or
   its exit; nothing works for a flat symbol except an entry.
3. Protection: every open position is covered by a working exit for all of it, or by its
   bracket (a stop and a target, each for all of it).
4. Books agree: the position book's quantity of each symbol equals the sum of its fills.
5. States: nothing opens while REDUCING or HALTED: no working entries.
6. Exposure: each approval saw the open exposure plus working entries at their unfilled size,
   and the limit held for what it approved.
7. By design, not by rescue: with the simulated broker the engine never needs its safety net
   (an emergency exit of an unprotected position).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from gnosis.model.events import OrderFilled, OrderSubmitted
from gnosis.model.types import OrderType, Side, TradingState
from gnosis.trading.engine import Engine
from gnosis.trading.risk_manager import Approval

EPS = 1e-6


class InvariantViolation(AssertionError):
    pass


class LifecycleChecker:
    """Attach to an engine before its first bar; call ``check()`` after every bar."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.filled: dict[str, float] = defaultdict(float)
        # (exposure the gate saw, the true exposure, exposure after an approval or None)
        self.approvals: list[tuple[float, float, float | None]] = []
        self.checks = 0
        self.rescues: list[str] = []
        engine.bus.subscribe(OrderFilled, self._on_fill)
        engine.bus.subscribe(OrderSubmitted, self._on_submit)
        self._wrap_risk_gate()

    def _on_fill(self, event: OrderFilled) -> None:
        fill = event.fill
        self.filled[fill.symbol] += fill.quantity * fill.side.sign

    def _on_submit(self, event: OrderSubmitted) -> None:
        if event.order.reason == "unprotected":
            self.rescues.append(event.order.client_order_id)

    def _wrap_risk_gate(self) -> None:
        engine = self.engine
        gate = engine.risk.approve_entry

        def checked(**kwargs: Any) -> Any:
            answer = gate(**kwargs)
            true = engine.positions.gross_exposure + sum(
                ticket.remaining * (ticket.order.expected_price or 0.0)
                for symbol in self._symbols()
                if (ticket := engine.entry_ticket(symbol)) is not None)
            after = None  # exposure the approval leads to, at decision prices
            if isinstance(answer, Approval):
                after = (true + answer.quantity * kwargs["price"]) / kwargs["equity"]
            self.approvals.append((kwargs["gross_exposure"], true, after))
            return answer

        engine.risk.approve_entry = checked  # type: ignore[method-assign]

    def _symbols(self) -> set[str]:
        engine = self.engine
        symbols = set(engine.positions.positions) | set(self.filled)
        symbols |= {order.symbol for order, _ in engine.broker.working()}
        symbols |= set(getattr(engine, "_bar_index", {}))
        return symbols

    def check(self) -> None:
        self.checks += 1
        engine = self.engine
        _require(not self.rescues, f"unprotected positions had to be rescued: {self.rescues}")
        working = {order.client_order_id: (order, left) for order, left in engine.broker.working()}
        for symbol in self._symbols():
            self._check_symbol(symbol, working)
        if engine.trading_state is not TradingState.ACTIVE:
            entries = [s for s in self._symbols() if engine.entry_ticket(s) is not None]
            _require(not entries, f"working entries {entries} while {engine.trading_state}")
        limit = engine.config.risk.max_total_exposure_pct
        for seen, true, after in self.approvals:
            _require(abs(seen - true) <= EPS * max(1.0, true),
                     f"the risk gate saw exposure {seen:.2f}, the truth was {true:.2f}")
            if after is not None:
                _require(after <= limit + 1e-9, f"an approval took exposure to {after:.2%}")
        self.approvals.clear()

    def _check_symbol(self, symbol: str, working: dict[str, tuple[Any, float]]) -> None:
        engine = self.engine
        position = engine.positions.positions.get(symbol)
        size = abs(position.quantity) if position is not None else 0.0
        held = position.quantity if position is not None else 0.0
        _require(abs(self.filled[symbol] - held) <= EPS,
                 f"{symbol}: fills sum to {self.filled[symbol]}, the book holds {held}")
        entry, exit_ = engine.entry_ticket(symbol), engine.exit_ticket(symbol)
        for name, ticket in (("entry", entry), ("exit", exit_)):
            if ticket is None:
                continue
            live = working.get(ticket.client_order_id)
            _require(live is not None,
                     f"{symbol}: the {name} record points at {ticket.client_order_id}, "
                     "which the broker no longer works")
            _require(abs(live[1] - ticket.remaining) <= EPS,
                     f"{symbol}: {name} record says {ticket.remaining} left, broker {live[1]}")
        legs = {"stop": 0.0, "target": 0.0}
        for cid, (order, left) in working.items():
            if order.symbol != symbol:
                continue
            if entry is not None and cid == entry.client_order_id:
                _require(position is None or position.entry_order_id == cid,
                         f"{symbol}: entry {cid} works beside a position it did not open")
            elif exit_ is not None and cid == exit_.client_order_id:
                _require(position is not None, f"{symbol}: exit {cid} works while flat")
            elif order.parent_id is not None:
                _require(position is not None and order.parent_id == position.entry_order_id,
                         f"{symbol}: bracket leg {cid} works without its position")
                closing = Side.SELL if held > 0 else Side.BUY
                _require(order.side is closing, f"{symbol}: leg {cid} on the wrong side")
                legs["stop" if order.order_type is OrderType.STOP else "target"] += left
            else:
                raise InvariantViolation(f"{symbol}: order {cid} ({order.reason}) works for no "
                                         "reason the engine knows")
        if position is None or not engine.config.risk.brackets:
            return
        if exit_ is not None:
            _require(exit_.remaining + EPS >= size,
                     f"{symbol}: exit for {exit_.remaining} of a {size} position")
            return
        _require(abs(legs["stop"] - size) <= EPS and abs(legs["target"] - size) <= EPS,
                 f"{symbol}: position {size} protected by stop {legs['stop']} and target "
                 f"{legs['target']}")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InvariantViolation(message)
