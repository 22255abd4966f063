"""The trading core: one single-threaded consumer of bars and commands.

Per bar of one symbol, in this order:
1. the broker fills what was decided on earlier bars (next-bar fills, brackets, stops);
2. positions are marked at the close and the risk manager folds in the new equity
   (daily loss limit, drawdown breaker, which may flatten);
3. time stops are sent;
4. the strategy decides on this bar (it sees bars <= t only) and the decision passes the risk
   gate; an approved entry goes to the broker as a bracket order that can fill on bar t+1.
Then the whole state is committed (when a store is attached) before the next bar.
Everything the engine does is also published as an event.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from gnosis.core.bus import EventBus
from gnosis.core.clock import ReplayClock
from gnosis.core.config import GnosisConfig
from gnosis.model.events import (
    BarProcessed,
    BarQuarantined,
    DecisionMade,
    MemoryRecalled,
    Notice,
    OrderCanceled,
    OrderFilled,
    OrderSubmitted,
    PositionClosed,
    PositionOpened,
    TradeRefused,
    TradingStateChanged,
)
from gnosis.model.memory import MemoryAdvice, MemoryEffects, Situation
from gnosis.model.ports import EpisodicMemory, Strategy
from gnosis.model.types import (
    Bar,
    Decision,
    Fill,
    Order,
    OrderType,
    Side,
    Trade,
    TradingState,
    format_ns,
)
from gnosis.trading.position_manager import PositionManager
from gnosis.trading.risk_manager import Approval, RiskManager, StateChange
from gnosis.trading.sim_broker import SimBroker
from gnosis.trading.state import StateStore

_MINUTES_PER_YEAR = 252 * 390
_VOLATILITY_WINDOW = 60


@dataclass(slots=True)
class RunStats:
    """Running statistics of a run, O(1) to update per bar."""

    bars: int = 0
    peak_equity: float = 0.0
    max_drawdown: float = 0.0
    day: int = -1
    day_close_equity: float = 0.0
    daily_returns: list[float] = field(default_factory=list)
    regime_counts: Counter[str] = field(default_factory=Counter)
    votes: dict[str, Counter[str]] = field(default_factory=dict)
    refusals: Counter[str] = field(default_factory=Counter)
    decisions: Counter[int] = field(default_factory=Counter)
    agent_errors: Counter[str] = field(default_factory=Counter)
    last_equity: float = 0.0
    memory: MemoryEffects = field(default_factory=MemoryEffects)


class Engine:
    """Wire strategy, risk, positions and broker; process one bar at a time."""

    def __init__(
        self,
        config: GnosisConfig,
        strategy: Strategy,
        broker: SimBroker,
        *,
        clock: ReplayClock | None = None,
        bus: EventBus | None = None,
        store: StateStore | None = None,
        memory: EpisodicMemory | None = None,
    ) -> None:
        self.config = config
        self.memory = memory
        self._memory_wired = memory is not None
        self.strategy = strategy
        self.broker = broker
        self.clock = clock or ReplayClock()
        self.bus = bus or EventBus()
        self.store = store
        self.risk = RiskManager(config.risk)
        self.positions = PositionManager(config.initial_cash)
        self.stats = RunStats(
            peak_equity=config.initial_cash,
            day_close_equity=config.initial_cash,
            last_equity=config.initial_cash,
        )
        self.run_id = uuid.uuid4().hex[:8]
        self.sequence = 0  # bars processed, across restarts: the feed resumes after it
        self._order_sequence = 0
        self._bar_index: dict[str, int] = {}
        self._last_ts: dict[str, int] = {}
        self.quarantined: Counter[str] = Counter()
        self._closes: dict[str, list] = {}  # symbol -> [ring of closes, next slot, count]
        self._entries: dict[str, Order] = {}  # symbol -> entry order of the open/pending position
        self._exits: dict[str, str] = {}  # symbol -> working exit order id
        self._situations: dict[str, Situation] = {}  # entry order id -> its situation (memory)
        self._journal_fills: list[Fill] = []
        self._journal_trades: list[Trade] = []
        self._journal_orders: list[Order] = []
        self._max_bars_held = config.positions.max_bars_held
        self._brackets = config.risk.brackets

    # -- restart -----------------------------------------------------------------------------
    def resume_from_store(self) -> bool:
        """Load the last committed state; return True when there was one."""
        if self.store is None:
            return False
        loaded = self.store.load()
        if loaded is None:
            return False
        self.sequence, snapshot = loaded
        self.restore(snapshot)
        self._publish(Notice(self.clock.now_ns(), self.clock.now_ns(),
                             f"resumed after bar #{self.sequence} (run {self.run_id})"))
        return True

    def snapshot(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "order_sequence": self._order_sequence,
            "bar_index": dict(self._bar_index),
            "last_ts": dict(self._last_ts),
            "quarantined": self.quarantined,
            "closes": self._closes,
            "entries": dict(self._entries),
            "exits": dict(self._exits),
            "situations": dict(self._situations),
            "stats": self.stats,
            "clock": self.clock.now_ns(),
            "positions": self.positions.snapshot(),
            "risk": self.risk.snapshot(),
            "broker": self.broker.snapshot(),
            "strategy": self.strategy.snapshot(),
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.run_id = snapshot["run_id"]
        self._order_sequence = snapshot["order_sequence"]
        self._bar_index = snapshot["bar_index"]
        self._last_ts = snapshot["last_ts"]
        self.quarantined = snapshot["quarantined"]
        self._closes = snapshot["closes"]
        self._entries = snapshot["entries"]
        self._exits = snapshot["exits"]
        self._situations = snapshot["situations"]
        self.stats = snapshot["stats"]
        self.clock.advance_to(snapshot["clock"])
        self.positions.restore(snapshot["positions"])
        self.risk.restore(snapshot["risk"])
        self.broker.restore(snapshot["broker"])
        self.strategy.restore(snapshot["strategy"])

    # -- the per-bar path -------------------------------------------------------------------------
    def on_bar(self, bar: Bar) -> Decision | None:
        """Process one bar; a duplicate or out-of-order bar is quarantined (None)."""
        symbol = bar.symbol
        last = self._last_ts.get(symbol)
        if last is not None and bar.ts_event <= last:
            reason = "duplicate" if bar.ts_event == last else "out_of_order"
            self.quarantined[reason] += 1
            self._publish(BarQuarantined(bar.ts_event, self.clock.now_ns(), symbol,
                                         f"{reason} bar at {format_ns(bar.ts_event)}"))
            return None
        self._last_ts[symbol] = bar.ts_event
        self.clock.advance_to(bar.ts_close)
        index = self._bar_index.get(symbol, -1) + 1
        self._bar_index[symbol] = index
        self.sequence += 1
        self._update_volatility(symbol, bar.close)

        fills = self.broker.on_bar(bar)
        for fill in fills:
            self._apply_fill(fill, index)

        positions = self.positions
        positions.mark(bar)
        equity = positions.equity
        change = self.risk.on_equity(bar.ts_event, equity)
        if change is not None:
            self._on_state_change(change, bar)

        position = positions.positions.get(symbol)
        if (
            position is not None
            and index - position.opened_bar >= self._max_bars_held
            and symbol not in self._exits
        ):
            self._submit_exit(symbol, "time_stop", bar)

        decision = self.strategy.on_bar(bar)
        quantity, note = 0.0, ""
        if decision.signal:
            quantity, note = self._act(decision, bar)
        self._record(bar, decision, equity, quantity, note)
        if self.store is not None:
            self._commit(bar, equity)
        return decision

    def warm_up(self, bar: Bar) -> None:
        """Fold a history bar into the strategy and volatility state without trading on it.

        A live start loads recent history first (as freqtrade's startup candles do), so the
        first live bar already has a formed regime and a fitted HMM. Warm-up bars count in
        ``sequence`` (a restart resumes after them) but not in the run's statistics.
        """
        symbol = bar.symbol
        last = self._last_ts.get(symbol)
        if last is not None and bar.ts_event <= last:
            self.quarantined["duplicate" if bar.ts_event == last else "out_of_order"] += 1
            return
        self._last_ts[symbol] = bar.ts_event
        self.clock.advance_to(bar.ts_close)
        self._bar_index[symbol] = self._bar_index.get(symbol, -1) + 1
        self.sequence += 1
        self._update_volatility(symbol, bar.close)
        self.strategy.on_bar(bar)

    def commit_warm_up(self) -> None:
        """Persist the state after the warm-up, so a restart does not redo it."""
        if self.store is not None and self.sequence:
            self.store.commit(self.sequence, self.snapshot())

    def _update_volatility(self, symbol: str, close: float) -> None:
        """Keep the last closes of the symbol (O(1)); volatility is computed only when an
        entry is sized, which is rare next to bars."""
        window = self._closes.get(symbol)
        if window is None:
            window = self._closes[symbol] = [[close] * (_VOLATILITY_WINDOW + 1), 0, 0]
        ring, slot, count = window
        ring[slot] = close
        window[1] = slot + 1 if slot < _VOLATILITY_WINDOW else 0
        window[2] = count + 1

    def volatility(self, symbol: str, interval_s: int = 60) -> float:
        """Annualized realized volatility of the symbol's recent closes for the bar interval."""
        window = self._closes.get(symbol)
        if window is None or window[2] < 3:
            return 0.0
        ring, slot, count = window
        size = min(count, _VOLATILITY_WINDOW + 1)
        ordered = ring[slot:] + ring[:slot] if count > _VOLATILITY_WINDOW else ring[:size]
        returns = [math.log(b / a) for a, b in zip(ordered, ordered[1:])]
        mean = sum(returns) / len(returns)
        variance = sum((r - mean) ** 2 for r in returns) / len(returns)
        return math.sqrt(variance * _MINUTES_PER_YEAR * 60 / interval_s)

    def _act(self, decision: Decision, bar: Bar) -> tuple[float, str]:
        symbol = bar.symbol
        position = self.positions.positions.get(symbol)
        if position is not None:
            if (position.quantity > 0) == (decision.signal > 0):
                return 0.0, "already positioned this way"
            if symbol in self._exits:
                return 0.0, "exit already working"
            exit_order = self._submit_exit(symbol, "signal_reversal", bar)
            return exit_order.quantity * exit_order.side.sign, "exit on reversal"
        if symbol in self._entries:
            return 0.0, "entry order still working"
        pending_notional = sum(
            o.quantity * (o.expected_price or 0.0)
            for s, o in self._entries.items()
            if s not in self.positions.positions
        )
        gate: dict[str, Any] = {
            "signal": decision.signal,
            "price": bar.close,
            "volatility": self.volatility(symbol, bar.interval_s),
            "equity": self.positions.equity,
            "gross_exposure": self.positions.gross_exposure + pending_notional,
            "open_positions": len(self.positions.positions) + sum(
                1 for s in self._entries if s not in self.positions.positions
            ),
        }
        confidence, size_scale, situation, advice = decision.confidence, 1.0, None, None
        if self.memory is not None and self.risk.state is TradingState.ACTIVE:
            situation = self._situation(decision, bar)
            advice = self._advise(situation)
            confidence, size_scale = advice.confidence, advice.size_scale
        answer = self.risk.approve_entry(confidence=confidence, size_scale=size_scale, **gate)
        if advice is not None and self.memory is not None:
            self._tally_memory(decision.confidence, advice, answer, gate)
        if not isinstance(answer, Approval):
            self.stats.refusals[answer.rule] += 1
            if self.bus.wants(TradeRefused):
                self._publish(TradeRefused(bar.ts_event, self.clock.now_ns(), symbol,
                                           decision.signal, answer.reason))
            return 0.0, answer.reason
        order = Order(
            client_order_id=self._next_order_id(symbol),
            symbol=symbol,
            side=Side.of_sign(decision.signal),
            quantity=answer.quantity,
            order_type=OrderType.MARKET,
            ts_created=bar.ts_close,
            reason="entry",
            expected_price=bar.close,
            stop_loss=answer.stop_price if self._brackets else None,
            take_profit=answer.target_price if self._brackets else None,
        )
        self._entries[symbol] = order
        if situation is not None:
            self._situations[order.client_order_id] = situation
        self._submit(order, bar)
        return order.quantity * decision.signal, answer.reasoning

    # -- episodic memory: consulted on candidate entries, told about opens and closes ---------
    def _situation(self, decision: Decision, bar: Bar) -> Situation:
        return Situation(
            symbol=bar.symbol, ts_event=bar.ts_event, ts_decided=bar.ts_close,
            signal=decision.signal, confidence=decision.confidence, regime=decision.regime,
            regime_confidence=decision.regime_confidence, regime_state=decision.regime_state,
            votes=decision.votes, price=bar.close,
        )

    def _advise(self, situation: Situation) -> MemoryAdvice:
        try:
            advice = self.memory.advise(situation)  # type: ignore[union-attr]
        except Exception as exc:  # noqa: BLE001 - memory is advisory: never stop trading
            self._memory_failed("recall", exc)
            return MemoryAdvice.neutral(situation.confidence, "memory unavailable")
        if self.bus.wants(MemoryRecalled):
            self._publish(MemoryRecalled(situation.ts_event, self.clock.now_ns(), situation,
                                         advice))
        return advice

    def _tally_memory(self, original: float, advice: MemoryAdvice, answer: Any,
                      gate: dict[str, Any]) -> None:
        """Count what the advice changed against the gate's answer without it."""
        baseline = answer
        if advice.confidence != original or advice.size_scale != 1.0:
            baseline = self.risk.approve_entry(confidence=original, size_scale=1.0, **gate)
        self.stats.memory.count(
            original, advice,
            answer.quantity if isinstance(answer, Approval) else None,
            baseline.quantity if isinstance(baseline, Approval) else None,
            None if isinstance(answer, Approval) else answer.rule)

    def _remember_open(self, fill: Fill, entry: Order | None) -> None:
        situation = self._situations.get(fill.client_order_id)
        if self.memory is None or situation is None or entry is None:
            return
        try:
            self.memory.open_episode(
                fill.client_order_id, situation, entry_price=fill.price,
                quantity=entry.quantity, stop_price=entry.stop_loss,
                target_price=entry.take_profit)
        except Exception as exc:  # noqa: BLE001
            self._memory_failed("write an episode", exc)

    def _remember_close(self, trade: Trade) -> None:
        if self._situations.pop(trade.entry_order_id, None) is None or self.memory is None:
            return
        try:
            self.memory.close_episode(trade.entry_order_id, trade)
        except Exception as exc:  # noqa: BLE001
            self._memory_failed("close an episode", exc)

    def _memory_failed(self, what: str, exc: Exception) -> None:
        """Trade on without memory; say so once."""
        self.memory = None
        now = self.clock.now_ns()
        self._publish(Notice(now, now, f"episodic memory failed to {what} "
                                       f"({type(exc).__name__}: {exc}); trading on without it",
                             {"component": "memory"}))

    def _next_order_id(self, symbol: str) -> str:
        self._order_sequence += 1
        return f"gn-{self.run_id}-{self._order_sequence:07d}-{symbol}"

    def _submit(self, order: Order, bar: Bar) -> None:
        # orders decided on this bar may fill from the next bar of the symbol on
        self.broker.submit(order, active_from=bar.ts_event + 1)
        if self.store is not None:
            self._journal_orders.append(order)
        if self.bus.wants(OrderSubmitted):
            self._publish(OrderSubmitted(bar.ts_event, self.clock.now_ns(), order))

    def _submit_exit(self, symbol: str, reason: str, bar: Bar) -> Order:
        position = self.positions.positions[symbol]
        entry = self._entries.get(symbol)
        if entry is not None:
            for cid in self.broker.cancel_children(entry.client_order_id):
                self._publish(OrderCanceled(bar.ts_event, self.clock.now_ns(), cid, reason))
            if self.broker.cancel(entry.client_order_id):  # an entry still partly working
                self._publish(OrderCanceled(bar.ts_event, self.clock.now_ns(),
                                            entry.client_order_id, reason))
        order = Order(
            client_order_id=self._next_order_id(symbol),
            symbol=symbol,
            side=Side.SELL if position.quantity > 0 else Side.BUY,
            quantity=abs(position.quantity),
            order_type=OrderType.MARKET,
            ts_created=bar.ts_close,
            reason=reason,
            expected_price=bar.close,
        )
        self._exits[symbol] = order.client_order_id
        self._submit(order, bar)
        return order

    def _apply_fill(self, fill: Fill, index: int) -> None:
        symbol = fill.symbol
        entry = self._entries.get(symbol)
        opened, trade = self.positions.on_fill(
            fill,
            bar_index=index,
            reason=fill.reason,
            stop_price=entry.stop_loss if entry else None,
            target_price=entry.take_profit if entry else None,
        )
        if self.store is not None:
            self._journal_fills.append(fill)
        now = self.clock.now_ns()
        self._publish(OrderFilled(fill.ts_event, now, fill))
        if opened is not None:
            self._remember_open(fill, entry)
            self._publish(PositionOpened(fill.ts_event, now, symbol, opened.quantity, fill.price,
                                         opened.stop_price or 0.0, opened.target_price or 0.0))
        if trade is not None:
            self._entries.pop(symbol, None)
            exit_id = self._exits.pop(symbol, None)
            if exit_id is not None:
                self.broker.cancel(exit_id)
            if entry is not None:
                self.broker.cancel_children(entry.client_order_id)
            if self.store is not None:
                self._journal_trades.append(trade)
            self._remember_close(trade)
            self._publish(PositionClosed(fill.ts_event, now, trade))

    def _on_state_change(self, change: StateChange, bar: Bar) -> None:
        self._publish(TradingStateChanged(bar.ts_event, self.clock.now_ns(), change.previous,
                                          change.current, change.reason))
        if change.flatten:
            self.flatten(bar, "circuit_breaker")

    # -- operator commands ------------------------------------------------------------------------
    def flatten(self, bar: Bar, reason: str) -> None:
        """Cancel every working entry and exit every position at the next bar."""
        for symbol, entry in list(self._entries.items()):
            if symbol not in self.positions.positions:
                self.broker.cancel(entry.client_order_id)
                del self._entries[symbol]
        for symbol in list(self.positions.positions):
            if symbol not in self._exits:
                self._submit_exit(symbol, reason, bar)

    def halt(self, reason: str = "halted by operator") -> None:
        change = self.risk.halt(reason)
        if change is not None:
            now = self.clock.now_ns()
            self._publish(TradingStateChanged(now, now, change.previous, change.current, reason))

    def resume(self, reason: str = "resumed by operator") -> None:
        change = self.risk.resume(reason)
        if change is not None:
            now = self.clock.now_ns()
            self._publish(TradingStateChanged(now, now, change.previous, change.current, reason))

    @property
    def trading_state(self) -> TradingState:
        return self.risk.state

    # -- bookkeeping -----------------------------------------------------------------------------
    def _record(self, bar: Bar, decision: Decision, equity: float, quantity: float,
                note: str) -> None:
        stats = self.stats
        stats.bars += 1
        if equity > stats.peak_equity:
            stats.peak_equity = equity
        drawdown = equity / stats.peak_equity - 1.0
        if drawdown < stats.max_drawdown:
            stats.max_drawdown = drawdown
        day = self.risk.day  # the risk manager already rolled the day on this bar
        if day != stats.day:
            if stats.day >= 0 and stats.day_close_equity > 0:
                stats.daily_returns.append(stats.last_equity / stats.day_close_equity - 1.0)
                stats.day_close_equity = stats.last_equity
            stats.day = day
        stats.last_equity = equity
        stats.decisions[decision.signal] += 1
        if decision.regime is not None:
            stats.regime_counts[decision.regime] += 1
        if decision.votes:
            votes = stats.votes
            for vote in decision.votes:
                tally = votes.get(vote.agent)
                if tally is None:
                    tally = votes[vote.agent] = Counter()
                tally["abstain" if vote.abstained else str(vote.signal)] += 1
        bus = self.bus
        if bus.wants(DecisionMade):
            bus.publish(DecisionMade(bar.ts_event, self.clock.now_ns(), decision, bar.close,
                                     quantity, note))
        if bus.wants(BarProcessed):
            bus.publish(BarProcessed(bar.ts_event, self.clock.now_ns(), bar, equity))

    def _commit(self, bar: Bar, equity: float) -> None:
        assert self.store is not None
        self.store.commit(
            self.sequence,
            self.snapshot(),
            fills=self._journal_fills,
            trades=self._journal_trades,
            orders=self._journal_orders,
            equity=(bar.ts_event, equity),
        )
        self._journal_fills.clear()
        self._journal_trades.clear()
        self._journal_orders.clear()

    def _publish(self, event: Any) -> None:
        self.bus.publish(event)

    # -- results ---------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        pm = self.positions
        stats = self.stats
        initial = self.config.initial_cash
        # the running day counts as a day: its return so far completes the series
        daily = [*stats.daily_returns, stats.last_equity / stats.day_close_equity - 1.0]
        result: dict[str, Any] = {
            "bars": stats.bars,
            "trades": pm.trade_count,
            "final_equity": round(pm.equity, 2),
            "total_return": round(pm.equity / initial - 1.0, 6),
            "max_drawdown": round(stats.max_drawdown, 6),
            "sharpe": _sharpe(daily),
            "win_rate": round(pm.win_count / pm.trade_count, 4) if pm.trade_count else 0.0,
            "fees": round(pm.total_fees, 2),
            "slippage": round(pm.total_slippage, 2),
            "realized_pnl": round(pm.realized_pnl, 2),
            "open_positions": len(pm.positions),
            "trading_state": self.risk.state.value,
            "quarantined_bars": dict(self.quarantined),
            "decisions": {str(k): v for k, v in sorted(stats.decisions.items())},
            "refusals": dict(stats.refusals.most_common()),
            "regime_counts": dict(sorted(stats.regime_counts.items())),
            "votes": {
                agent: {key: tally.get(key, 0) for key in ("-1", "0", "1", "abstain")}
                for agent, tally in sorted(stats.votes.items())
            },
        }
        if self._memory_wired:
            result["memory"] = {**stats.memory.as_dict(), "available": self.memory is not None}
        return result


MIN_SHARPE_DAYS = 5


def _sharpe(daily_returns: list[float]) -> float | None:
    """Annualized Sharpe of daily returns (risk-free 0); None below ``MIN_SHARPE_DAYS`` days,
    where an annualized figure would be noise presented as a statistic."""
    if len(daily_returns) < MIN_SHARPE_DAYS:
        return None
    mean = sum(daily_returns) / len(daily_returns)
    variance = sum((r - mean) ** 2 for r in daily_returns) / (len(daily_returns) - 1)
    return round(mean / math.sqrt(variance) * math.sqrt(252), 4) if variance > 0 else 0.0
