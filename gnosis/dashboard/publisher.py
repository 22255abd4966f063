"""Turn engine events into dashboard messages, on the core thread, cheaply.

The publisher subscribes to the engine's bus. Its handlers run on the core thread, so they do
only small work: build a small JSON-able dict per event, read the public engine state they
need (positions with stops and targets, cash, equity, risk state), fold the message into the
``DashboardState`` and hand it to the sinks (the web server's broadcaster, which never
blocks). Nothing here awaits, sleeps or touches the network.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gnosis.core.bus import EventBus
from gnosis.core.clock import Clock, LiveClock
from gnosis.dashboard.state import (
    AGENT_VOTES,
    BAR,
    MEMORY_RECALL,
    NOTICE,
    PORTFOLIO_STATS,
    POSITIONS,
    REGIME,
    TRADE,
    TRADING_STATE,
    DashboardState,
)
from gnosis.model.events import (
    BarProcessed,
    DecisionMade,
    MemoryRecalled,
    Notice,
    OrderFilled,
    PositionClosed,
    PositionOpened,
    TradeRefused,
    TradingStateChanged,
)
from gnosis.model.regime import HMM_LABELS

log = logging.getLogger(__name__)

Message = dict[str, Any]
Sink = Callable[[Message], None]
STATE_FILE = "dashboard.json"


def iso(ts_ns: int | None) -> str | None:
    """ISO-8601 UTC with milliseconds, e.g. ``2024-01-02T14:30:00.000Z``."""
    if ts_ns is None:
        return None
    moment = datetime.fromtimestamp(ts_ns / 1e9, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def num(value: Any, digits: int = 6) -> float | None:
    """A JSON-safe number: NaN and infinities (which browsers cannot parse) become null."""
    if value is None:
        return None
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


class DashboardPublisher:
    """Subscribe to an engine's bus and publish the dashboard's state and messages."""

    def __init__(self, engine: Any, *, bus: EventBus | None = None, wall: Clock | None = None,
                 info: dict[str, Any] | None = None) -> None:
        self.engine = engine
        self.wall = wall or LiveClock()
        config = engine.config
        self.state = DashboardState({
            "instance": uuid.uuid4().hex[:12],
            "strategy": getattr(engine.strategy, "name", type(engine.strategy).__name__),
            "symbols": list(config.market.symbols),
            "initial_cash": config.initial_cash,
            "started": iso(self.wall.now_ns()),
            **(info or {}),
        })
        self._sinks: list[Sink] = []
        # fold and hand-out happen under one lock, so sinks see sequence numbers in order even
        # when the web thread records an operator action; the core thread never waits long
        self._lock = threading.Lock()
        self._last_positions: list[dict[str, Any]] | None = None
        self._last_portfolio: tuple[Any, ...] | None = None
        if getattr(engine, "memory", None) is not None:
            self.state.set_memory_status(True, "waiting for the first candidate entry")
        bus = bus or engine.bus
        bus.subscribe(BarProcessed, self.on_bar_processed)
        bus.subscribe(DecisionMade, self.on_decision_made)
        bus.subscribe(PositionOpened, self.on_position_opened)
        bus.subscribe(PositionClosed, self.on_position_closed)
        bus.subscribe(OrderFilled, self.on_order_filled)
        bus.subscribe(TradingStateChanged, self.on_trading_state_changed)
        bus.subscribe(TradeRefused, self.on_trade_refused)
        bus.subscribe(Notice, self.on_notice)
        bus.subscribe(MemoryRecalled, self.on_memory_recalled)
        self._publish_trading_state(None, "start")

    def add_sink(self, sink: Sink) -> None:
        self._sinks.append(sink)

    def remove_sink(self, sink: Sink) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)

    # -- one place that stamps, folds and hands out ---------------------------------------------
    def publish(self, kind: str, data: dict[str, Any]) -> None:
        with self._lock:
            seq = self.state.fold(kind, data)
            message = {"type": kind, "data": data, "timestamp": iso(self.wall.now_ns()),
                       "seq": seq}
            for sink in self._sinks:
                sink(message)

    # -- handlers (core thread) -----------------------------------------------------------------
    def on_bar_processed(self, event: BarProcessed) -> None:
        bar = event.bar
        self.publish(BAR, {
            "symbol": bar.symbol, "time": bar.ts_event // 1_000_000_000, "open": bar.open,
            "high": bar.high, "low": bar.low, "close": bar.close, "volume": bar.volume,
        })
        self.refresh(bar.ts_event)

    def refresh(self, ts_ns: int | None = None) -> None:
        """Publish positions and portfolio statistics when they changed (read on this thread)."""
        positions = self._positions()
        if positions != self._last_positions:
            self._last_positions = positions
            self.publish(POSITIONS, {"positions": positions})
        portfolio = self._portfolio(ts_ns)
        key = tuple(v for k, v in portfolio.items() if k not in ("time", "ts"))
        if key != self._last_portfolio:
            self._last_portfolio = key
            self.publish(PORTFOLIO_STATS, portfolio)

    def on_decision_made(self, event: DecisionMade) -> None:
        decision = event.decision
        symbol = decision.symbol
        ts = iso(event.ts_event)
        votes = [
            {"agent": v.agent, "signal": v.signal, "confidence": num(v.confidence, 4),
             "reasoning": v.reasoning, "abstained": v.abstained, "active": True}
            for v in decision.votes
        ]
        votes += [{"agent": agent, "signal": 0, "confidence": None, "reasoning": why,
                   "abstained": False, "active": False} for agent, why in decision.inactive]
        self.publish(AGENT_VOTES, {
            "symbol": symbol, "ts": ts, "close": num(event.close),
            "decision": {"signal": decision.signal, "confidence": num(decision.confidence, 4),
                         "reasoning": decision.reasoning, "quantity": num(event.quantity),
                         "note": event.note},
            "votes": votes,
        })
        if decision.regime is not None or decision.regime_state is not None:
            self.publish(REGIME, _regime(symbol, ts, decision))

    def on_position_opened(self, event: PositionOpened) -> None:
        self.refresh()

    def on_position_closed(self, event: PositionClosed) -> None:
        trade = event.trade
        self.publish(TRADE, {
            "symbol": trade.symbol, "side": trade.side, "quantity": num(trade.quantity),
            "entry_price": num(trade.entry_price), "exit_price": num(trade.exit_price),
            "entry_time": trade.entry_ts // 1_000_000_000,
            "exit_time": trade.exit_ts // 1_000_000_000,
            "entry_ts": iso(trade.entry_ts), "exit_ts": iso(trade.exit_ts),
            "bars_held": trade.bars_held, "pnl": num(trade.pnl, 2),
            "return_pct": num(trade.return_pct, 6), "fees": num(trade.fees, 2),
            "exit_reason": trade.exit_reason,
        })
        self.refresh()

    def on_order_filled(self, event: OrderFilled) -> None:
        fill = event.fill
        self._notice("fill", f"{fill.side.value} {fill.quantity:g} {fill.symbol} @ "
                             f"{fill.price:.2f} ({fill.reason or 'order'})", event.ts_event,
                     symbol=fill.symbol)

    def on_trading_state_changed(self, event: TradingStateChanged) -> None:
        self._publish_trading_state(event.previous.value, event.reason, event.ts_event)
        self._notice("state", f"trading {event.previous.value} -> {event.current.value}: "
                              f"{event.reason}", event.ts_event)
        self.refresh()

    def on_trade_refused(self, event: TradeRefused) -> None:
        side = "long" if event.signal > 0 else "short"
        self._notice("refused", f"{side} entry refused: {event.reason}", event.ts_event,
                     symbol=event.symbol)

    def on_notice(self, event: Notice) -> None:
        if (event.details or {}).get("component") == "memory":
            self.state.set_memory_status(False, event.message)
        self._notice("notice", event.message, event.ts_event or None)
        self.refresh()  # a restart restores positions and equity before any bar

    def on_memory_recalled(self, event: MemoryRecalled) -> None:
        situation, advice = event.situation, event.advice
        self.publish(MEMORY_RECALL, {
            "symbol": situation.symbol, "ts": iso(situation.ts_event),
            "signal": situation.signal, "regime": situation.regime,
            "confidence_before": num(situation.confidence, 4),
            "confidence_after": num(advice.confidence, 4),
            "size_scale": num(advice.size_scale, 4), "reason": advice.reason,
            "win_rate": num(advice.win_rate, 4), "alignment": num(advice.alignment, 4),
            "episodes": [
                {"episode_id": e.episode_id, "symbol": e.symbol, "entry_ts": iso(e.entry_ts),
                 "exit_ts": iso(e.exit_ts), "regime": e.regime, "signal": e.signal,
                 "return_pct": num(e.return_pct, 6), "exit_reason": e.exit_reason,
                 "similarity": num(e.similarity, 4), "weight": num(e.weight, 4),
                 "lesson": e.lesson}
                for e in advice.episodes
            ],
        })

    def operator(self, message: str) -> None:
        """Record an operator action (from the web layer) in the activity log."""
        self._notice("operator", message, None)

    # -- reading the engine (core thread only) ----------------------------------------------------
    def _positions(self) -> list[dict[str, Any]]:
        out = []
        for position in self.engine.positions.positions.values():
            quantity = position.quantity
            entry = position.average_price
            unrealized = position.unrealized_pnl
            out.append({
                "symbol": position.symbol, "side": "long" if quantity > 0 else "short",
                "quantity": num(abs(quantity)), "entry_price": num(entry),
                "last_price": num(position.last_price),
                "unrealized_pnl": num(unrealized, 2),
                "unrealized_pct": num(unrealized / (entry * abs(quantity)), 6)
                if entry and quantity else None,
                "market_value": num(position.market_value, 2),
                "stop_price": num(position.stop_price), "target_price": num(position.target_price),
                "opened_time": position.opened_ts // 1_000_000_000,
                "opened_ts": iso(position.opened_ts),
            })
        return out

    def _portfolio(self, ts_ns: int | None) -> dict[str, Any]:
        engine = self.engine
        pm, risk = engine.positions, engine.risk
        initial = engine.config.initial_cash
        equity = pm.equity
        day_start = getattr(risk, "day_start_equity", 0.0) or equity
        trades = pm.trade_count
        stats = getattr(engine, "stats", None)
        state = engine.trading_state
        return {
            "time": None if ts_ns is None else ts_ns // 1_000_000_000,
            "ts": iso(ts_ns),
            "initial_capital": num(initial, 2),
            "cash": num(pm.cash, 2),
            "equity": num(equity, 2),
            "pnl": num(equity - initial, 2),
            "pnl_pct": num(equity / initial - 1.0, 6),
            "realized_pnl": num(pm.realized_pnl - pm.total_fees, 2),
            "unrealized_pnl": num(sum(p.unrealized_pnl for p in pm.positions.values()), 2),
            "daily_pnl": num(risk.daily_pnl, 2),
            "daily_pnl_pct": num(risk.daily_pnl / day_start, 6) if day_start else None,
            "fees": num(pm.total_fees, 2),
            "trades": trades,
            "wins": pm.win_count,
            "win_rate": num(pm.win_count / trades, 4) if trades else None,
            "drawdown": num(risk.drawdown, 6),
            "max_drawdown": num(getattr(stats, "max_drawdown", None), 6),
            "high_water_mark": num(risk.high_water_mark, 2),
            "exposure": num(pm.gross_exposure / equity, 6) if equity > 0 else None,
            "open_positions": len(pm.positions),
            "trading_state": state.value,
        }

    def _publish_trading_state(self, previous: str | None, reason: str,
                               ts_ns: int | None = None) -> None:
        self.publish(TRADING_STATE, {
            "state": self.engine.trading_state.value, "previous": previous,
            "reason": getattr(self.engine.risk, "state_reason", reason) or reason,
            "ts": iso(ts_ns),
        })

    def _notice(self, kind: str, message: str, ts_ns: int | None, symbol: str | None = None
                ) -> None:
        self.publish(NOTICE, {"kind": kind, "message": message, "symbol": symbol,
                              "ts": iso(ts_ns), "at": iso(self.wall.now_ns())})


def _regime(symbol: str, ts: str | None, decision: Any) -> dict[str, Any]:
    state = decision.regime_state
    data: dict[str, Any] = {
        "symbol": symbol, "ts": ts, "primary": decision.regime,
        "confidence": num(decision.regime_confidence, 4), "ready": decision.regime is not None,
    }
    if state is None:
        return data
    probabilities = state.hmm_probabilities
    data.update({
        "primary": state.primary, "confidence": num(state.confidence, 4), "ready": state.ready,
        "trend_strength": num(state.trend_strength, 4), "volatility": num(state.volatility, 4),
        "volatility_class": state.volatility_class,
        "range_position": num(state.range_position, 4),
        "hmm_state": state.hmm_state,
        "hmm_probabilities": None if probabilities is None else {
            label: num(p, 4) for label, p in zip(HMM_LABELS, probabilities)},
        "reason": state.reason, "bars_seen": state.bars_seen,
    })
    return data


class StateFileWriter:
    """Write the published state to ``<state_dir>/dashboard.json`` at most once a second, off
    the core thread, atomically (temporary file + ``os.replace``), so a standalone dashboard
    can serve a running bot read-only. The state holds no secrets: it is built from events."""

    def __init__(self, state: DashboardState, state_dir: Path, *, interval: float = 1.0,
                 wall: Clock | None = None) -> None:
        self.state = state
        self.path = Path(state_dir) / STATE_FILE
        self.interval = interval
        self.wall = wall or LiveClock()
        self.written_seq = -1
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> StateFileWriter:
        self._thread = threading.Thread(target=self._loop, name="gnosis-dashboard-file",
                                        daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.write()
        self.write()  # the final state, on a clean stop

    def write(self) -> bool:
        """Write when the state changed since the last write; return True when written."""
        if self.state.seq == self.written_seq:
            return False
        snapshot = self.state.full_snapshot()
        snapshot["published_at"] = iso(self.wall.now_ns())
        snapshot["pid"] = os.getpid()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            temporary.write_text(json.dumps(snapshot, separators=(",", ":"), allow_nan=False))
            os.replace(temporary, self.path)
        except (OSError, ValueError) as exc:
            self.failures += 1
            if self.failures == 1:
                log.warning("cannot write the dashboard state file %s: %s", self.path, exc)
            return False
        self.written_seq = snapshot["seq"]
        return True

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
