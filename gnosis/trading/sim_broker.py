"""Simulated broker: next-bar fills, brackets, slippage, fees and partial fills.

Orders decided on a bar's close are working from the next bar on. Within one bar, in path order:
1. market orders (and stops triggered on an earlier bar) fill at the open ± slippage;
2. stop and limit orders fill where the bar's path first crosses them, assumed O→L→H→C for an
   up bar and O→H→L→C for a down bar; a gap through a level fills at the open.
Everything we trade on one bar of a symbol shares one participation budget, at most
``max_participation`` of the bar's volume, taken in path order (bracket legs before other
orders at the open); what does not fit keeps working: a market order or a triggered stop
fills the rest at later opens, a limit keeps resting at its level. Once a bracket leg trades
at the open, its entry's remainder does not add to the position on that bar (the engine then
cancels it: a trade that started closing does not grow).

An entry with a stop-loss and a take-profit is a bracket (as Alpaca's ``order_class=bracket``):
each partial fill of the entry grows a stop leg and a target leg by the filled quantity; the
legs are one-cancels-other, and a partial fill of one shrinks the other by as much.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from gnosis.core.config import ExecutionConfig
from gnosis.model.types import Bar, Fill, Order, OrderType, Side

# Positions on a bar's assumed path: the open, the first extreme, the second extreme.
_AT_OPEN, _FIRST, _SECOND, _NEVER = 0, 1, 2, 99
_EPSILON = 1e-9


@dataclass(slots=True)
class _Working:
    order: Order
    filled: float = 0.0
    active_from: int = 0  # bar ts_event from which the order may fill
    triggered: bool = False  # a stop whose level was crossed: the rest executes as market
    # a market order or a triggered stop: fills at the next open (kept, not derived: it is
    # asked of every working order on every bar)
    executes_at_open: bool = False
    symbol: str = ""
    # a stop or limit can trade on a bar only if the bar reaches its level: from above (a
    # sell stop, a buy limit: low <= level) or from below (a buy stop, a sell limit); asked
    # of every resting order on every bar, so kept (a replaced order keeps type, side, level)
    level: float = math.nan
    reached_from_above: bool = False

    def __post_init__(self) -> None:
        order = self.order
        self.symbol = order.symbol
        self.executes_at_open = self.triggered or order.order_type is OrderType.MARKET
        if order.order_type is OrderType.STOP:
            self.level = order.stop_price  # type: ignore[assignment]
            self.reached_from_above = order.side is Side.SELL
        elif order.order_type is OrderType.LIMIT:
            self.level = order.limit_price  # type: ignore[assignment]
            self.reached_from_above = order.side is Side.BUY

    def trigger(self) -> None:
        self.triggered = self.executes_at_open = True

    @property
    def remaining(self) -> float:
        return self.order.quantity - self.filled


def _protection_first(working: _Working) -> bool:
    return working.order.parent_id is None


class SimBroker:
    """In-process broker for simulation, replay and dry runs."""

    def __init__(self, config: ExecutionConfig | None = None) -> None:
        self.config = config or ExecutionConfig()
        self._working: dict[str, _Working] = {}
        self._seen: set[str] = set()
        self._budget = 0.0  # shares still tradable on the bar being filled

    # -- commands ---------------------------------------------------------------------------
    def submit(self, order: Order, active_from: int = 0) -> bool:
        """Accept an order; a client order id seen before is ignored (idempotent): False."""
        if order.client_order_id in self._seen:
            return False
        self._seen.add(order.client_order_id)
        self._working[order.client_order_id] = _Working(order, 0.0, active_from)
        return True

    def cancel(self, client_order_id: str) -> bool:
        """Cancel what is left of an order; False when it is not working (filled, unknown)."""
        return self._working.pop(client_order_id, None) is not None

    def cancel_children(self, parent_id: str) -> list[str]:
        """Cancel the bracket legs of an entry order; return their ids."""
        ids = [cid for cid, w in self._working.items() if w.order.parent_id == parent_id]
        for cid in ids:
            del self._working[cid]
        return ids

    # -- queries ----------------------------------------------------------------------------
    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [
            w.order for w in self._working.values() if symbol is None or w.order.symbol == symbol
        ]

    def working(self, symbol: str | None = None) -> list[tuple[Order, float]]:
        """(order, unfilled quantity) of every working order, optionally of one symbol."""
        return [(w.order, w.remaining) for w in self._working.values()
                if symbol is None or w.order.symbol == symbol]

    def has_order(self, client_order_id: str) -> bool:
        return client_order_id in self._working

    # -- market data ------------------------------------------------------------------------
    def on_bar(self, bar: Bar) -> list[Fill]:
        """Fill what this bar allows, in path order; return the fills."""
        if not self._working:
            return []
        symbol = bar.symbol
        ts = bar.ts_event
        low, high = bar.low, bar.high
        at_open: list[_Working] = []
        reached = False  # a resting order's level is inside this bar
        for w in self._working.values():
            if w.symbol != symbol or w.active_from > ts:
                continue
            if w.executes_at_open:
                at_open.append(w)
            elif (low <= w.level) if w.reached_from_above else (high >= w.level):
                reached = True
        if not at_open and not reached:  # most bars: brackets resting away from the price
            return []
        self._budget = math.floor(bar.volume * self.config.max_participation)
        fills: list[Fill] = []
        if at_open:
            # at the open, protection goes first: stops triggered on an earlier bar take the
            # shared volume before an entry's remainder can add to the position
            at_open.sort(key=_protection_first)
            closing: set[str] = set()  # entries whose bracket started to close them on this bar
            working_orders = self._working
            for working in at_open:
                order = working.order
                if order.client_order_id not in working_orders or order.client_order_id in closing:
                    continue
                fill = self._fill_at_open(working, bar)
                if fill is not None:
                    fills.append(fill)
                    if order.parent_id is not None:
                        closing.add(order.parent_id)
        fills.extend(self._fill_resting(bar))  # legs of an entry filled just now rest already
        return fills

    def _take(self, wanted: float) -> float:
        """Reserve up to ``wanted`` shares of this bar's participation budget."""
        quantity = min(wanted, self._budget)
        if quantity < 1.0 and quantity < wanted:  # no fractional shares from a capped bar
            return 0.0
        self._budget -= quantity
        return quantity

    def _fill_at_open(self, working: _Working, bar: Bar) -> Fill | None:
        quantity = self._take(working.remaining)
        if quantity <= 0:
            return None
        order = working.order
        slip = self._slippage_fraction(bar, quantity)
        # slippage moves the price against us, but a fill is always a price the bar traded at
        price = min(max(bar.open * (1.0 + order.side.sign * slip), bar.low), bar.high)
        expected = order.expected_price or bar.open
        return self._execute(working, quantity, price, bar, expected, bar.open,
                             self._partial_note(working, quantity))

    def _fill_resting(self, bar: Bar) -> list[Fill]:
        """Fill stop/limit orders where the path first crosses them."""
        up_bar = bar.close >= bar.open
        candidates: list[tuple[int, str]] = []
        symbol = bar.symbol
        ts = bar.ts_event
        for cid, working in self._working.items():
            if working.symbol != symbol or working.executes_at_open or working.active_from > ts:
                continue
            position = self._path_position(working, bar, up_bar)
            if position != _NEVER:
                candidates.append((position, cid))
        candidates.sort()
        fills: list[Fill] = []
        for position, cid in candidates:
            working = self._working.get(cid)  # type: ignore[assignment]
            if working is None:  # its OCO sibling filled completely first
                continue
            fill = self._fill_level(working, bar, position)
            if fill is not None:
                fills.append(fill)
        return fills

    def _fill_level(self, working: _Working, bar: Bar, position: int) -> Fill | None:
        order = working.order
        if order.order_type is OrderType.STOP:
            working.trigger()  # whatever does not fit now executes at later opens
        quantity = self._take(working.remaining)
        if quantity <= 0:
            return None
        level = working.level
        reference = bar.open if position == _AT_OPEN else level
        price = self._resting_price(order, bar, reference, quantity)
        note = "gap through the level: filled at the open" if position == _AT_OPEN else ""
        partial = self._partial_note(working, quantity)
        return self._execute(working, quantity, price, bar, level, reference,
                             "; ".join(n for n in (note, partial) if n))

    @staticmethod
    def _partial_note(working: _Working, quantity: float) -> str:
        if quantity >= working.remaining - _EPSILON:
            return ""
        return f"partial: {quantity:.0f} of {working.remaining:.0f} (participation cap)"

    @staticmethod
    def _path_position(working: _Working, bar: Bar, up_bar: bool) -> int:
        """Where on the bar's path a resting order's level trades: at the open (a gap through
        it), at the first or the second extreme, or never."""
        level = working.level
        if working.reached_from_above:  # a sell stop, a buy limit: the price comes down to it
            if bar.open <= level:
                return _AT_OPEN
            return (_FIRST if up_bar else _SECOND) if bar.low <= level else _NEVER
        if bar.open >= level:  # a buy stop, a sell limit: the price comes up to it
            return _AT_OPEN
        return (_SECOND if up_bar else _FIRST) if bar.high >= level else _NEVER

    def _resting_price(self, order: Order, bar: Bar, reference: float, quantity: float) -> float:
        if order.order_type is OrderType.LIMIT:
            return reference  # a limit fills at its level, or at the better open on a gap
        # a triggered stop becomes a market order: it pays slippage, never fills outside the bar
        slipped = reference * (1.0 + order.side.sign * self._slippage_fraction(bar, quantity))
        return min(max(slipped, bar.low), bar.high)

    def _slippage_fraction(self, bar: Bar, quantity: float) -> float:
        cfg = self.config
        participation = quantity / bar.volume if bar.volume > 0 else 1.0
        bar_range = (bar.high - bar.low) / bar.open
        return cfg.slippage_bps * 1e-4 + cfg.impact_coefficient * bar_range * math.sqrt(
            participation
        )

    def fee(self, side: Side, quantity: float, price: float) -> float:
        cfg = self.config
        fee = cfg.commission_per_share * quantity
        if side is Side.SELL:
            fee += cfg.sell_fee_bps * 1e-4 * price * quantity
        return fee

    def _execute(self, working: _Working, quantity: float, price: float, bar: Bar,
                 expected: float, reference: float, note: str) -> Fill:
        """Book a fill of ``working``: its own state, then OCO siblings, then bracket legs."""
        order = working.order
        working.filled += quantity
        remaining = max(working.remaining, 0.0)
        if remaining <= _EPSILON:
            remaining = 0.0
            del self._working[order.client_order_id]
        fill = Fill(
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            quantity=quantity,
            price=price,
            fee=self.fee(order.side, quantity, price),
            ts_event=bar.ts_event,
            expected_price=expected,
            liquidity_note=note,
            reason=order.reason,
            remaining=remaining,
            reference_price=reference,
        )
        if order.oco_group is not None:
            self._shrink_siblings(order, quantity)
        if order.stop_loss is not None or order.take_profit is not None:
            self._grow_bracket(order, quantity, bar)
        return fill

    def _shrink_siblings(self, order: Order, quantity: float) -> None:
        """One-cancels-other, share by share: the sibling protects only what is left."""
        for cid, sibling in list(self._working.items()):
            if sibling.order.oco_group != order.oco_group or cid == order.client_order_id:
                continue
            left = sibling.remaining - quantity
            if left <= _EPSILON:
                del self._working[cid]
            else:
                sibling.order = replace(sibling.order, quantity=sibling.filled + left)

    def _grow_bracket(self, parent: Order, quantity: float, bar: Bar) -> None:
        """Create or enlarge the bracket legs of an entry that just (partially) filled."""
        exit_side = Side.SELL if parent.side is Side.BUY else Side.BUY
        legs = (
            ("sl", OrderType.STOP, parent.stop_loss, "stop_loss"),
            ("tp", OrderType.LIMIT, parent.take_profit, "take_profit"),
        )
        for suffix, order_type, level, reason in legs:
            if level is None:
                continue
            cid = f"{parent.client_order_id}-{suffix}"
            existing = self._working.get(cid)
            if existing is not None:
                existing.order = replace(existing.order,
                                         quantity=existing.order.quantity + quantity)
                continue
            if cid in self._seen:  # the leg already filled or was canceled: do not resurrect it
                continue
            leg = Order(
                client_order_id=cid,
                symbol=parent.symbol,
                side=exit_side,
                quantity=quantity,
                order_type=order_type,
                ts_created=bar.ts_event,
                stop_price=level if order_type is OrderType.STOP else None,
                limit_price=level if order_type is OrderType.LIMIT else None,
                reason=reason,
                expected_price=level,
                parent_id=parent.client_order_id,
                oco_group=parent.client_order_id,
            )
            self._seen.add(cid)
            # legs become live once the entry fills: later in this same bar, not at its open
            self._working[cid] = _Working(leg, 0.0, bar.ts_event)

    # -- persistence ------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "working": [(w.order, w.filled, w.active_from, w.triggered)
                        for w in self._working.values()],
            "seen": sorted(self._seen),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self._working = {
            order.client_order_id: _Working(order, filled, active_from, triggered)
            for order, filled, active_from, triggered in state["working"]
        }
        self._seen = set(state["seen"])
