"""Simulated broker: next-bar fills, brackets, slippage, fees and partial fills.

Orders decided on a bar's close are working from the next bar on: market orders fill at that
bar's open (± slippage), capped at a share of the bar's volume (the rest stays working);
stop and limit orders fill where the bar's path first crosses them. The path inside a bar is
assumed O→L→H→C for an up bar and O→H→L→C for a down bar, so when a stop and a target are both
inside one bar, the one the path meets first wins; a gap through a stop fills at the open.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from gnosis.core.config import ExecutionConfig
from gnosis.model.types import Bar, Fill, Order, OrderType, Side

# Positions on a bar's assumed path: the open, the first extreme, the second extreme.
_AT_OPEN, _FIRST, _SECOND, _NEVER = 0, 1, 2, 99


@dataclass(slots=True)
class _Working:
    order: Order
    filled: float = 0.0
    active_from: int = 0  # bar ts_event from which the order may fill

    @property
    def remaining(self) -> float:
        return self.order.quantity - self.filled


class SimBroker:
    """In-process broker for simulation, replay and dry runs."""

    def __init__(self, config: ExecutionConfig | None = None) -> None:
        self.config = config or ExecutionConfig()
        self._working: dict[str, _Working] = {}
        self._seen: set[str] = set()

    # -- commands ---------------------------------------------------------------------------
    def submit(self, order: Order, active_from: int = 0) -> bool:
        """Accept an order; a client order id seen before is ignored (idempotent): False."""
        if order.client_order_id in self._seen:
            return False
        self._seen.add(order.client_order_id)
        self._working[order.client_order_id] = _Working(order, 0.0, active_from)
        return True

    def cancel(self, client_order_id: str) -> bool:
        return self._working.pop(client_order_id, None) is not None

    def cancel_children(self, parent_id: str) -> list[str]:
        """Cancel the bracket legs of an entry order; return their ids."""
        ids = [cid for cid, w in self._working.items() if w.order.parent_id == parent_id]
        for cid in ids:
            del self._working[cid]
        return ids

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [
            w.order for w in self._working.values() if symbol is None or w.order.symbol == symbol
        ]

    def has_order(self, client_order_id: str) -> bool:
        return client_order_id in self._working

    # -- market data ------------------------------------------------------------------------
    def on_bar(self, bar: Bar) -> list[Fill]:
        """Fill what this bar allows, in path order; return the fills."""
        if not self._working:
            return []
        symbol = bar.symbol
        due = [
            w
            for w in self._working.values()
            if w.order.symbol == symbol and w.active_from <= bar.ts_event
        ]
        if not due:
            return []
        fills: list[Fill] = []
        for working in due:
            if working.order.order_type is OrderType.MARKET:
                fill = self._fill_market(working, bar)
                if fill is not None:
                    fills.append(fill)
                    self._after_fill(working, fill, bar)
        fills.extend(self._fill_resting(bar))
        return fills

    def _fill_market(self, working: _Working, bar: Bar) -> Fill | None:
        cfg = self.config
        if bar.volume <= 0:
            return None
        quantity = working.remaining
        capacity = math.floor(bar.volume * cfg.max_participation)
        note = ""
        if quantity > capacity:
            if capacity < 1:
                return None
            quantity = float(capacity)
            note = f"partial: {capacity:.0f} of {working.remaining:.0f} (participation cap)"
        order = working.order
        slip = self._slippage_fraction(bar, quantity)
        # slippage moves the price against us, but a fill is always a price the bar traded at
        price = min(max(bar.open * (1.0 + order.side.sign * slip), bar.low), bar.high)
        expected = order.expected_price or bar.open
        return self._make_fill(order, quantity, price, bar.ts_event, expected, note)

    def _fill_resting(self, bar: Bar) -> list[Fill]:
        """Fill stop/limit orders where the path first crosses them; OCO siblings cancel."""
        up_bar = bar.close >= bar.open
        candidates: list[tuple[int, str]] = []
        for cid, working in self._working.items():
            order = working.order
            if order.symbol != bar.symbol or order.order_type is OrderType.MARKET:
                continue
            if working.active_from > bar.ts_event:
                continue
            position = self._path_position(order, bar, up_bar)
            if position != _NEVER:
                candidates.append((position, cid))
        if not candidates:
            return []
        candidates.sort()
        fills: list[Fill] = []
        for position, cid in candidates:
            live = self._working.get(cid)
            if live is None:  # an OCO sibling filled first
                continue
            working = live
            order = working.order
            fill_price = self._resting_price(order, bar, position)
            fill = self._make_fill(
                order, working.remaining, fill_price, bar.ts_event,
                order.stop_price or order.limit_price or fill_price,
                "gap through the level: filled at the open" if position == _AT_OPEN else "",
            )
            fills.append(fill)
            self._after_fill(working, fill, bar)
        return fills

    @staticmethod
    def _path_position(order: Order, bar: Bar, up_bar: bool) -> int:
        low_at = _FIRST if up_bar else _SECOND
        high_at = _SECOND if up_bar else _FIRST
        side = order.side
        if order.order_type is OrderType.STOP:
            level = order.stop_price
            assert level is not None
            if side is Side.SELL:
                return _AT_OPEN if bar.open <= level else (low_at if bar.low <= level else _NEVER)
            return _AT_OPEN if bar.open >= level else (high_at if bar.high >= level else _NEVER)
        level = order.limit_price
        assert level is not None
        if side is Side.SELL:
            return _AT_OPEN if bar.open >= level else (high_at if bar.high >= level else _NEVER)
        return _AT_OPEN if bar.open <= level else (low_at if bar.low <= level else _NEVER)

    def _resting_price(self, order: Order, bar: Bar, position: int) -> float:
        if order.order_type is OrderType.LIMIT:
            level = order.limit_price
            assert level is not None
            return bar.open if position == _AT_OPEN else level
        level = order.stop_price
        assert level is not None
        trigger = bar.open if position == _AT_OPEN else level
        # a triggered stop becomes a market order: it pays slippage, never fills outside the bar
        slipped = trigger * (1.0 + order.side.sign * self._slippage_fraction(bar, order.quantity))
        return min(max(slipped, bar.low), bar.high)

    def _slippage_fraction(self, bar: Bar, quantity: float) -> float:
        cfg = self.config
        participation = quantity / bar.volume if bar.volume > 0 else 1.0
        bar_range = (bar.high - bar.low) / bar.open
        return cfg.slippage_bps * 1e-4 + cfg.impact_coefficient * bar_range * math.sqrt(
            participation
        )

    def _make_fill(
        self, order: Order, quantity: float, price: float, ts: int, expected: float, note: str
    ) -> Fill:
        cfg = self.config
        fee = cfg.commission_per_share * quantity
        if order.side is Side.SELL:
            fee += cfg.sell_fee_bps * 1e-4 * price * quantity
        return Fill(
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            quantity=quantity,
            price=price,
            fee=fee,
            ts_event=ts,
            expected_price=expected,
            liquidity_note=note,
            reason=order.reason,
        )

    def _after_fill(self, working: _Working, fill: Fill, bar: Bar) -> None:
        order = working.order
        working.filled += fill.quantity
        if working.remaining <= 1e-9:
            del self._working[order.client_order_id]
        if order.oco_group is not None:
            for cid in [
                c
                for c, w in self._working.items()
                if w.order.oco_group == order.oco_group and c != order.client_order_id
            ]:
                del self._working[cid]
        if order.stop_loss is not None or order.take_profit is not None:
            self._grow_bracket(order, fill.quantity, bar)

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
                parent_id=parent.client_order_id,
                oco_group=parent.client_order_id,
            )
            self._seen.add(cid)
            # legs become live once the entry fills: later in this same bar, not at its open
            self._working[cid] = _Working(leg, 0.0, bar.ts_event)

    # -- persistence ------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "working": [(w.order, w.filled, w.active_from) for w in self._working.values()],
            "seen": sorted(self._seen),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self._working = {
            order.client_order_id: _Working(order, filled, active_from)
            for order, filled, active_from in state["working"]
        }
        self._seen = set(state["seen"])

