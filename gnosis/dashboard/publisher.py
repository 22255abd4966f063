"""Turn engine events into dashboard messages without slowing the core.

The publisher subscribes to the engine's bus. Its handlers run on the core thread and only
capture: the immutable event, or the few public engine numbers it needs (positions with stops
and targets, cash, equity, risk state) as a tuple, read right there on the core thread. The
JSON-able messages are made later by ``pump``, on the web server's loop or the state-file
writer's thread. Nothing on the core thread awaits, sleeps, locks against the web layer or
makes a system call.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections import deque
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
    TRADES_KEPT,
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
PENDING_LIMIT = 100_000  # captures waiting for a pump; past this nobody is pumping


_iso_second: tuple[int, str] = (-1, "")  # the last second formatted: a bar's messages repeat


def iso(ts_ns: int | None) -> str | None:
    """ISO-8601 UTC with milliseconds, e.g. ``2024-01-02T14:30:00.000Z``."""
    if ts_ns is None:
        return None
    global _iso_second
    seconds, rest = divmod(ts_ns, 1_000_000_000)
    cached_seconds, text = _iso_second  # one tuple: threads never see half an update
    if cached_seconds != seconds:
        text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _iso_second = (seconds, text)
    return f"{text}.{rest // 1_000_000:03d}Z"


def num(value: Any) -> float | None:
    """A JSON-safe number: NaN and infinities (which browsers cannot parse) become null.
    (x - x is 0 for every finite x and NaN otherwise: one operation on the per-bar path.)"""
    if value is None:
        return None
    return value if value - value == 0 else None


class DashboardPublisher:
    """Subscribe to an engine's bus and publish the dashboard's state and messages.

    Two halves. On the core thread the handlers only capture: the (immutable) event, or a
    tuple of the few engine numbers that changed, appended to a deque with the wall time.
    ``pump`` (the web loop's drain timer, the state-file writer, a REST read) turns the
    captures into JSON-able messages, folds them into ``state`` and hands them to the sinks,
    off the core thread. Building the dicts on the core cost about as much as a whole bar of
    the agent pipeline; capturing costs a few microseconds.
    """

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
        self.lost = 0  # captures dropped because nobody pumped (bounded backlog)
        self._initial = config.initial_cash
        self._sinks: list[Sink] = []
        self._captured: deque[tuple[Callable[[Any], list[tuple[str, dict[str, Any]]]], Any,
                                    int]] = deque()
        self._pumping = threading.Lock()  # one pumping thread at a time: sequence in order
        self._last_positions: tuple[tuple[Any, ...], ...] = ()
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
        self._capture(self._trading_state_message,
                      (None, engine.trading_state.value, self._state_reason("start"), None))
        self.refresh()

    def seed_from_journal(self, store: Any) -> int:
        """A restarted bot's dashboard starts with what its journal holds: the latest trades
        and the equity curve (before any client connects). Returns the trades seeded."""
        if store is None:
            return 0
        trades = store.recent_trades(TRADES_KEPT)
        with self._pumping:
            for trade in trades:
                for kind, data in self._trade_message(trade):
                    self.state.fold(kind, data)
            self.state.seed_journal(store.trade_count(), store.equity_points())
        return len(trades)

    def add_sink(self, sink: Sink) -> None:
        self._sinks.append(sink)

    def remove_sink(self, sink: Sink) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)

    # -- capturing (core thread): append and return ----------------------------------------------
    def _capture(self, convert: Callable[[Any], list[tuple[str, dict[str, Any]]]],
                 payload: Any) -> None:
        if len(self._captured) >= PENDING_LIMIT:
            self.lost += 1
            return
        self._captured.append((convert, payload, self.wall.now_ns()))

    def on_bar_processed(self, event: BarProcessed) -> None:
        self._capture(self._bar_message, event.bar)
        self.refresh(event.bar.ts_event)

    def refresh(self, ts_ns: int | None = None) -> None:
        """Capture positions and portfolio numbers when they changed (read on this thread)."""
        engine = self.engine
        pm = engine.positions
        if pm.positions or self._last_positions:
            positions = tuple(
                (p.symbol, p.quantity, p.average_price, p.last_price, p.stop_price,
                 p.target_price, p.opened_ts) for p in pm.positions.values())
            if positions != self._last_positions:
                self._last_positions = positions
                self._capture(self._positions_message, positions)
        risk = engine.risk
        key = (pm.equity, pm.cash, pm.trade_count, len(pm.positions), risk.day_start_equity,
               risk.high_water_mark, engine.trading_state)
        if key != self._last_portfolio:
            self._last_portfolio = key
            stats = getattr(engine, "stats", None)
            self._capture(self._portfolio_message, (
                ts_ns, key, pm.realized_pnl, pm.total_fees, pm.win_count, risk.daily_pnl,
                risk.drawdown, getattr(stats, "max_drawdown", None), pm.gross_exposure,
                sum(p.unrealized_pnl for p in pm.positions.values())))

    def on_decision_made(self, event: DecisionMade) -> None:
        self._capture(self._decision_messages, event)

    def on_position_opened(self, event: PositionOpened) -> None:
        self.refresh()

    def on_position_closed(self, event: PositionClosed) -> None:
        self._capture(self._trade_message, event.trade)
        self.refresh()

    def on_order_filled(self, event: OrderFilled) -> None:
        self._capture(self._fill_message, event)

    def on_trading_state_changed(self, event: TradingStateChanged) -> None:
        self._capture(self._trading_state_message,
                      (event.previous.value, event.current.value,
                       self._state_reason(event.reason), event.ts_event))
        self.refresh()

    def on_trade_refused(self, event: TradeRefused) -> None:
        self._capture(self._refusal_message, event)

    def on_notice(self, event: Notice) -> None:
        self._capture(self._notice_message, event)
        self.refresh()  # a restart restores positions and equity before any bar

    def on_memory_recalled(self, event: MemoryRecalled) -> None:
        self._capture(self._recall_message, event)

    def operator(self, message: str) -> None:
        """Record an operator action (from the web layer) in the activity log."""
        self._capture(lambda text: [_notice("operator", text, None, None)], message)

    def _state_reason(self, fallback: str) -> str:
        return getattr(self.engine.risk, "state_reason", "") or fallback

    # -- pumping (any thread but the core) ---------------------------------------------------------
    def pump(self) -> int:
        """Turn the captures into messages: fold them into the state, hand them to the sinks.
        Return how many messages were made."""
        made = 0
        with self._pumping:
            captured = self._captured
            state, sinks = self.state, self._sinks
            while captured:
                convert, payload, wall_ns = captured.popleft()
                stamp = iso(wall_ns)
                for kind, data in convert(payload):
                    seq = state.fold(kind, data)
                    message = {"type": kind, "data": data, "timestamp": stamp, "seq": seq}
                    for sink in sinks:
                        sink(message)
                    made += 1
        return made

    @staticmethod
    def _bar_message(bar: Any) -> list[tuple[str, dict[str, Any]]]:
        return [(BAR, {
            "symbol": bar.symbol, "time": bar.ts_event // 1_000_000_000, "open": bar.open,
            "high": bar.high, "low": bar.low, "close": bar.close, "volume": bar.volume,
        })]

    @staticmethod
    def _positions_message(positions: tuple[tuple[Any, ...], ...]
                           ) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for symbol, quantity, entry, last, stop, target, opened in positions:
            unrealized = (last - entry) * quantity
            out.append({
                "symbol": symbol, "side": "long" if quantity > 0 else "short",
                "quantity": num(abs(quantity)), "entry_price": num(entry),
                "last_price": num(last), "unrealized_pnl": num(unrealized),
                "unrealized_pct": num(unrealized / (entry * abs(quantity)))
                if entry and quantity else None,
                "market_value": num(quantity * last),
                "stop_price": num(stop), "target_price": num(target),
                "opened_time": opened // 1_000_000_000, "opened_ts": iso(opened),
            })
        return [(POSITIONS, {"positions": out})]

    def _portfolio_message(self, captured: tuple[Any, ...]) -> list[tuple[str, dict[str, Any]]]:
        (ts_ns, key, realized, fees, wins, daily_pnl, drawdown, max_drawdown, exposure,
         unrealized) = captured
        equity, cash, trades, open_positions, day_start, high_water_mark, state = key
        initial = self._initial
        return [(PORTFOLIO_STATS, {
            "time": None if ts_ns is None else ts_ns // 1_000_000_000,
            "ts": iso(ts_ns),
            "initial_capital": num(initial), "cash": num(cash), "equity": num(equity),
            "pnl": num(equity - initial), "pnl_pct": num(equity / initial - 1.0),
            "realized_pnl": num(realized - fees), "unrealized_pnl": num(unrealized),
            "daily_pnl": num(daily_pnl),
            "daily_pnl_pct": num(daily_pnl / day_start) if day_start else None,
            "fees": num(fees), "trades": trades, "wins": wins,
            "win_rate": num(wins / trades) if trades else None,
            "drawdown": num(drawdown), "max_drawdown": num(max_drawdown),
            "high_water_mark": num(high_water_mark),
            "exposure": num(exposure / equity) if equity > 0 else None,
            "open_positions": open_positions, "trading_state": state.value,
        })]

    @staticmethod
    def _decision_messages(event: DecisionMade) -> list[tuple[str, dict[str, Any]]]:
        decision = event.decision
        symbol = decision.symbol
        ts = iso(event.ts_event)
        votes = [
            {"agent": v.agent, "signal": v.signal, "confidence": num(v.confidence),
             "reasoning": v.reasoning, "abstained": v.abstained, "active": True}
            for v in decision.votes
        ]
        votes += [{"agent": agent, "signal": 0, "confidence": None, "reasoning": why,
                   "abstained": False, "active": False} for agent, why in decision.inactive]
        out: list[tuple[str, dict[str, Any]]] = [(AGENT_VOTES, {
            "symbol": symbol, "ts": ts, "close": num(event.close),
            "decision": {"signal": decision.signal, "confidence": num(decision.confidence),
                         "reasoning": decision.reasoning, "quantity": num(event.quantity),
                         "note": event.note},
            "votes": votes,
        })]
        if decision.regime is not None or decision.regime_state is not None:
            out.append((REGIME, _regime(symbol, ts, decision)))
        return out

    @staticmethod
    def _trade_message(trade: Any) -> list[tuple[str, dict[str, Any]]]:
        return [(TRADE, {
            "symbol": trade.symbol, "side": trade.side, "quantity": num(trade.quantity),
            "entry_price": num(trade.entry_price), "exit_price": num(trade.exit_price),
            "entry_time": trade.entry_ts // 1_000_000_000,
            "exit_time": trade.exit_ts // 1_000_000_000,
            "entry_ts": iso(trade.entry_ts), "exit_ts": iso(trade.exit_ts),
            "bars_held": trade.bars_held, "pnl": num(trade.pnl),
            "return_pct": num(trade.return_pct), "fees": num(trade.fees),
            "exit_reason": trade.exit_reason,
        })]

    @staticmethod
    def _fill_message(event: OrderFilled) -> list[tuple[str, dict[str, Any]]]:
        fill = event.fill
        return [_notice("fill", f"{fill.side.value} {fill.quantity:g} {fill.symbol} @ "
                                f"{fill.price:.2f} ({fill.reason or 'order'})", event.ts_event,
                        fill.symbol)]

    @staticmethod
    def _trading_state_message(captured: tuple[Any, ...]) -> list[tuple[str, dict[str, Any]]]:
        previous, current, reason, ts_ns = captured
        out = [(TRADING_STATE, {"state": current, "previous": previous, "reason": reason,
                                "ts": iso(ts_ns)})]
        if previous is not None:
            out.append(_notice("state", f"trading {previous} -> {current}: {reason}", ts_ns,
                               None))
        return out

    @staticmethod
    def _refusal_message(event: TradeRefused) -> list[tuple[str, dict[str, Any]]]:
        side = "long" if event.signal > 0 else "short"
        return [_notice("refused", f"{side} entry refused: {event.reason}", event.ts_event,
                        event.symbol)]

    def _notice_message(self, event: Notice) -> list[tuple[str, dict[str, Any]]]:
        if (event.details or {}).get("component") == "memory":
            self.state.set_memory_status(False, event.message)
        return [_notice("notice", event.message, event.ts_event or None, None)]

    @staticmethod
    def _recall_message(event: MemoryRecalled) -> list[tuple[str, dict[str, Any]]]:
        situation, advice = event.situation, event.advice
        return [(MEMORY_RECALL, {
            "symbol": situation.symbol, "ts": iso(situation.ts_event),
            "signal": situation.signal, "regime": situation.regime,
            "confidence_before": num(situation.confidence),
            "confidence_after": num(advice.confidence),
            "size_scale": num(advice.size_scale), "reason": advice.reason,
            "win_rate": num(advice.win_rate), "alignment": num(advice.alignment),
            "episodes": [
                {"episode_id": e.episode_id, "symbol": e.symbol, "entry_ts": iso(e.entry_ts),
                 "exit_ts": iso(e.exit_ts), "regime": e.regime, "signal": e.signal,
                 "return_pct": num(e.return_pct), "exit_reason": e.exit_reason,
                 "similarity": num(e.similarity), "weight": num(e.weight),
                 "lesson": e.lesson}
                for e in advice.episodes
            ],
        })]


def _notice(kind: str, message: str, ts_ns: int | None, symbol: str | None
            ) -> tuple[str, dict[str, Any]]:
    return (NOTICE, {"kind": kind, "message": message, "symbol": symbol, "ts": iso(ts_ns)})


def _regime(symbol: str, ts: str | None, decision: Any) -> dict[str, Any]:
    state = decision.regime_state
    data: dict[str, Any] = {
        "symbol": symbol, "ts": ts, "primary": decision.regime,
        "confidence": num(decision.regime_confidence), "ready": decision.regime is not None,
    }
    if state is None:
        return data
    probabilities = state.hmm_probabilities
    data.update({
        "primary": state.primary, "confidence": num(state.confidence), "ready": state.ready,
        "trend_strength": num(state.trend_strength), "volatility": num(state.volatility),
        "volatility_class": state.volatility_class,
        "range_position": num(state.range_position),
        "hmm_state": state.hmm_state,
        "hmm_probabilities": None if probabilities is None else {
            label: num(p) for label, p in zip(HMM_LABELS, probabilities)},
        "reason": state.reason, "bars_seen": state.bars_seen,
    })
    return data


class StateFileWriter:
    """Write the published state to ``<state_dir>/dashboard.json`` at most once a second, off
    the core thread, atomically (temporary file + ``os.replace``), so a standalone dashboard
    can serve a running bot read-only. The state holds no secrets: it is built from events."""

    def __init__(self, state: DashboardState, state_dir: Path, *, interval: float = 1.0,
                 wall: Clock | None = None, pump: Callable[[], Any] | None = None) -> None:
        self.state = state
        self.pump = pump  # brings the state up to date first (the publisher's pump)
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
        if self.pump is not None:
            self.pump()
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
