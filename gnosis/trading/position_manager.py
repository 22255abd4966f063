"""Positions, cash and the trade journal, side-aware for longs and shorts.

The position manager mirrors fills (from the simulated broker or from Alpaca trade updates);
it does not decide anything. Equity = cash + Σ quantity × last price, where a short has a
negative quantity (its sale proceeds sit in cash).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python gnosis/trading/position_manager.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gnosis.model.types import Bar, Fill, Trade


@dataclass(slots=True)
class Position:
    symbol: str
    quantity: float  # signed: > 0 long, < 0 short
    average_price: float
    opened_ts: int
    opened_bar: int
    stop_price: float | None = None
    target_price: float | None = None
    entry_order_id: str = ""
    confidence: float = 0.0
    last_price: float = 0.0
    realized_pnl: float = 0.0
    fees: float = 0.0
    high_price: float = 0.0  # the highest and lowest prices seen while open (excursions)
    low_price: float = 0.0
    entered: float = 0.0  # shares entered in all (the trade's size, even after partial exits)

    @property
    def side(self) -> str:
        return "long" if self.quantity > 0 else "short"

    @property
    def unrealized_pnl(self) -> float:
        return (self.last_price - self.average_price) * self.quantity

    @property
    def market_value(self) -> float:
        return self.quantity * self.last_price

    def excursions(self, long: bool) -> tuple[float, float]:
        """(max favourable, max adverse) move from the entry, as fractions of it (>= 0).
        The side is explicit: a position being closed has no quantity left to tell it."""
        entry = self.average_price
        up = max(self.high_price / entry - 1.0, 0.0)
        down = max(1.0 - self.low_price / entry, 0.0)
        return (up, down) if long else (down, up)


class PositionManager:
    """Applies fills to positions and cash; closes round trips into ``Trade`` records."""

    def __init__(self, initial_cash: float) -> None:
        self.cash = initial_cash
        self.positions: dict[str, Position] = {}
        self._market_value = 0.0  # Σ quantity × last price, kept incrementally (O(1) per bar)
        self.total_fees = 0.0
        self.total_slippage = 0.0
        self.total_shortfall = 0.0
        self.realized_pnl = 0.0
        self.trade_count = 0
        self.win_count = 0
        self.fill_count = 0

    # -- queries -------------------------------------------------------------------------------
    @property
    def equity(self) -> float:
        return self.cash + self._market_value

    @property
    def gross_exposure(self) -> float:
        return sum(abs(p.market_value) for p in self.positions.values())

    def get(self, symbol: str) -> Position | None:
        return self.positions.get(symbol)

    # -- updates -------------------------------------------------------------------------------
    def mark(self, bar: Bar) -> float:
        """Revalue the symbol's position at the bar's close and extend its excursions; return
        the equity."""
        position = self.positions.get(bar.symbol)
        if position is not None:
            self._market_value += position.quantity * (bar.close - position.last_price)
            position.last_price = bar.close
            if bar.high > position.high_price:
                position.high_price = bar.high
            if bar.low < position.low_price:
                position.low_price = bar.low
        return self.cash + self._market_value

    def on_fill(
        self,
        fill: Fill,
        *,
        bar_index: int,
        reason: str,
        stop_price: float | None = None,
        target_price: float | None = None,
        confidence: float = 0.0,
    ) -> tuple[Position | None, Trade | None]:
        """Apply one fill. Return (position opened by it, trade closed by it).

        A fill opens a position, adds to it (same direction), reduces it, or closes it; a
        fill larger than the position closes it and opens the rest the other way (a flip).
        """
        signed = fill.quantity * fill.side.sign
        self.fill_count += 1
        self.cash -= signed * fill.price + fill.fee
        self.total_fees += fill.fee
        self.total_slippage += fill.slippage_cost
        self.total_shortfall += fill.shortfall_cost
        position = self.positions.get(fill.symbol)
        if position is None:
            opened = self._open(fill, signed, bar_index, stop_price, target_price, confidence)
            return opened, None
        # revalue at the fill price first so market value stays Σ quantity × last price
        self._market_value += position.quantity * (fill.price - position.last_price)
        position.last_price = fill.price
        if (signed > 0) == (position.quantity > 0):
            self._add(position, fill, signed)
            return None, None
        closing = min(abs(signed), abs(position.quantity))
        self._reduce(position, fill, math.copysign(closing, signed))
        if abs(position.quantity) > 1e-9:
            return None, None
        trade = self._close(position, fill, bar_index, reason)
        leftover = signed + math.copysign(closing, -signed)
        if abs(leftover) > 1e-9:  # the flip: the rest of the fill opens the other way
            return self._open(fill, leftover, bar_index, None, None, 0.0, fee=0.0), trade
        return None, trade

    def _open(self, fill: Fill, signed: float, bar_index: int, stop_price: float | None,
              target_price: float | None, confidence: float, *,
              fee: float | None = None) -> Position:
        position = Position(
            symbol=fill.symbol,
            quantity=signed,
            average_price=fill.price,
            opened_ts=fill.ts_event,
            opened_bar=bar_index,
            stop_price=stop_price,
            target_price=target_price,
            entry_order_id=fill.client_order_id,
            confidence=confidence,
            last_price=fill.price,
            fees=fill.fee if fee is None else fee,
            high_price=fill.price,
            low_price=fill.price,
            entered=abs(signed),
        )
        self.positions[fill.symbol] = position
        self._market_value += signed * fill.price
        return position

    def _add(self, position: Position, fill: Fill, signed: float) -> None:
        total = position.quantity + signed
        position.average_price = (
            position.average_price * position.quantity + fill.price * signed
        ) / total
        position.quantity = total
        position.entered += abs(signed)
        position.fees += fill.fee
        self._market_value += signed * fill.price

    def _reduce(self, position: Position, fill: Fill, closing_signed: float) -> None:
        direction = 1.0 if position.quantity > 0 else -1.0
        gain = (fill.price - position.average_price) * abs(closing_signed) * direction
        position.realized_pnl += gain
        position.fees += fill.fee
        self.realized_pnl += gain
        position.quantity += closing_signed
        self._market_value += closing_signed * fill.price

    def _close(self, position: Position, fill: Fill, bar_index: int, reason: str) -> Trade:
        del self.positions[fill.symbol]
        position.high_price = max(position.high_price, fill.price)
        position.low_price = min(position.low_price, fill.price)
        long = fill.side.sign < 0  # a sale closes a long
        favorable, adverse = position.excursions(long)
        entry_notional = position.average_price * position.entered
        pnl = position.realized_pnl - position.fees
        trade = Trade(
            symbol=fill.symbol,
            side="long" if long else "short",
            quantity=position.entered,
            entry_price=position.average_price,
            exit_price=fill.price,
            entry_ts=position.opened_ts,
            exit_ts=fill.ts_event,
            bars_held=bar_index - position.opened_bar,
            pnl=pnl,
            return_pct=pnl / entry_notional if entry_notional else 0.0,
            fees=position.fees,
            exit_reason=reason,
            entry_order_id=position.entry_order_id,
            max_favorable=favorable,
            max_adverse=adverse,
        )
        self.trade_count += 1
        self.win_count += trade.won
        return trade

    def adopt(self, symbol: str, quantity: float, average_price: float, *, opened_bar: int,
              ts: int) -> None:
        """Set a position to what a venue reports (reconciliation). Cash pays for the
        difference at ``average_price`` so equity stays continuous."""
        position = self.positions.get(symbol)
        before = position.quantity if position is not None else 0.0
        delta = quantity - before
        self.cash -= delta * average_price
        if position is not None:
            self._market_value -= position.quantity * position.last_price
        if abs(quantity) <= 1e-9:
            self.positions.pop(symbol, None)
            return
        if position is None:
            position = Position(symbol=symbol, quantity=quantity, average_price=average_price,
                                opened_ts=ts, opened_bar=opened_bar, last_price=average_price,
                                high_price=average_price, low_price=average_price,
                                entered=abs(quantity))
            self.positions[symbol] = position
        else:
            position.quantity = quantity
            position.average_price = average_price
            position.entered = max(position.entered, abs(quantity))
        self._market_value += quantity * position.last_price

    # -- persistence ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "cash": self.cash,
            "positions": dict(self.positions),
            "fees": self.total_fees,
            "slippage": self.total_slippage,
            "shortfall": self.total_shortfall,
            "realized": self.realized_pnl,
            "trades": self.trade_count,
            "wins": self.win_count,
            "fills": self.fill_count,
            "market_value": self._market_value,  # the running sum itself: recomputing it would
        }                                        # round differently and drift from a clean run

    def restore(self, state: dict[str, Any]) -> None:
        self.cash = state["cash"]
        self.positions = dict(state["positions"])
        self.total_fees = state["fees"]
        self.total_slippage = state["slippage"]
        self.total_shortfall = state["shortfall"]
        self.realized_pnl = state["realized"]
        self.trade_count = state["trades"]
        self.win_count = state["wins"]
        self.fill_count = state["fills"]
        self._market_value = state.get("market_value",
                                       sum(p.market_value for p in self.positions.values()))


def _demo() -> None:
    """Walk a long and a short through entry, mark-to-market and exit."""
    from gnosis.model.types import Side

    pm = PositionManager(100_000.0)
    minute = 60_000_000_000
    t0 = 1_704_205_800_000_000_000  # 2024-01-02 14:30 UTC

    def fill(cid: str, side: Side, qty: float, price: float, t: int) -> Fill:
        return Fill(cid, "SPY", side, qty, price, 0.0, t, price)

    print("PositionManager demo (starting cash $100,000)")
    opened, _ = pm.on_fill(fill("a", Side.BUY, 30, 450.0, t0), bar_index=0, reason="entry",
                           stop_price=441.0, target_price=468.0)
    assert opened is not None
    print(f"  open long 30 SPY @ 450.00, stop 441.00, target 468.00 -> equity {pm.equity:,.2f}")
    pm.mark(Bar("SPY", t0 + minute, 450.0, 456.0, 449.0, 455.0, 1e5))
    print(f"  mark @ 455.00: unrealized {pm.positions['SPY'].unrealized_pnl:+,.2f}, "
          f"equity {pm.equity:,.2f}")
    _, trade = pm.on_fill(fill("a-tp", Side.SELL, 30, 468.0, t0 + 9 * minute), bar_index=9,
                          reason="take_profit")
    assert trade is not None
    print(f"  take profit @ 468.00: pnl {trade.pnl:+,.2f} ({trade.return_pct:+.2%}) "
          f"after {trade.bars_held} bars")
    pm.on_fill(fill("b", Side.SELL, 20, 470.0, t0 + 10 * minute), bar_index=10, reason="entry",
               stop_price=479.4, target_price=451.2)
    print(f"  open short 20 SPY @ 470.00 -> cash {pm.cash:,.2f}, equity {pm.equity:,.2f}")
    _, trade = pm.on_fill(fill("b-sl", Side.BUY, 20, 479.4, t0 + 15 * minute), bar_index=15,
                          reason="stop_loss")
    assert trade is not None
    print(f"  stop loss @ 479.40: pnl {trade.pnl:+,.2f} ({trade.return_pct:+.2%}), "
          f"side {trade.side}")
    print(f"  final equity {pm.equity:,.2f}; trades {pm.trade_count}, wins {pm.win_count}")


if __name__ == "__main__":
    _demo()
