"""The trading core: one single-threaded consumer of bars, fills and commands.

Per bar of one symbol, in this order:
1. the broker fills what was decided on earlier bars (next-bar fills, brackets, stops);
2. positions are marked at the close and the risk manager folds in the new equity
   (daily loss limit, drawdown breaker, which may flatten);
3. time stops are sent;
4. the strategy decides on this bar (it sees bars <= t only) and the decision passes the risk
   gate; an approved entry goes to the broker as a bracket order that can fill on bar t+1.
Then the whole state is committed (when a store is attached) before the next bar.
Everything the engine does is also published as an event.

Order lifecycle, per symbol (checked after every bar by the tests' invariant checker):
- at most one working entry and one working exit; the engine keeps a record of an order only
  while the broker still works it (a filled or canceled order leaves no record behind);
- the first fill that reduces a position (a stop, a target, an exit) cancels what is left of
  its entry, and a position that closes leaves nothing working for its symbol;
- every open position is protected by its bracket legs or by a working exit for all of it;
- working entries count toward exposure and the position limit at their unfilled size;
- entering REDUCING or HALTED cancels every working entry at once.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
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
    RegimeChanged,
    TradeRefused,
    TradingStateChanged,
)
from gnosis.model.intervals import bars_per_year
from gnosis.model.memory import MemoryAdvice, MemoryEffects, Situation
from gnosis.model.ports import Broker, EpisodicMemory, Strategy
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
from gnosis.trading.position_manager import Position, PositionManager
from gnosis.trading.risk_manager import Approval, RiskManager, StateChange
from gnosis.trading.state import SNAPSHOT_SCHEMA, JournalRows, StateError, StateStore

_VOLATILITY_WINDOW = 60
_EPSILON = 1e-9
_REMEMBERED_EXECUTIONS = 10_000  # venue execution ids kept to drop a fill reported twice


@dataclass(slots=True)
class Ticket:
    """An order the broker still works, and how much of it is left."""

    order: Order
    remaining: float

    @property
    def client_order_id(self) -> str:
        return self.order.client_order_id


@dataclass(slots=True)
class RunStats:
    """Running statistics of a run, O(1) to update per bar."""

    bars: int = 0
    peak_equity: float = 0.0
    max_drawdown: float = 0.0
    day: int = -1
    day_close_equity: float = 0.0
    daily_returns: list[float] = field(default_factory=list)
    # the counts made on every bar are plain dicts: a Counter's item update costs 2.5 times
    # as much (it is a subclass, so the interpreter's dict fast path does not apply)
    regime_counts: dict[str, int] = field(default_factory=dict)
    votes: dict[str, Counter[str]] = field(default_factory=dict)  # (snapshots before marks)
    refusals: Counter[str] = field(default_factory=Counter)
    decisions: dict[int, int] = field(default_factory=dict)
    last_equity: float = 0.0
    memory: MemoryEffects = field(default_factory=MemoryEffects)
    # how often each combination of the agents' vote marks occurred: one count per bar, folded
    # into per-agent tallies by ``agent_votes`` (a handful of combinations recur)
    vote_marks: dict[tuple[tuple[str, str], ...], int] = field(default_factory=dict)

    def __getstate__(self) -> list[Any]:
        return [getattr(self, f.name) for f in fields(self)]

    def __setstate__(self, state: list[Any]) -> None:
        """Field values in order; a snapshot written before ``vote_marks`` lacks it, and one
        written before the per-bar counts were plain dicts holds Counters."""
        names = [f.name for f in fields(self)]
        for name, value in zip(names, state, strict=False):
            object.__setattr__(self, name, value)
        if len(state) < len(names):
            self.vote_marks = {}
        self.regime_counts = dict(self.regime_counts)
        self.decisions = dict(self.decisions)
        self.vote_marks = dict(self.vote_marks)

    def agent_votes(self) -> dict[str, Counter[str]]:
        """Per agent: how often it voted -1, 0, +1, abstained or was switched off."""
        tallies = {agent: Counter(tally) for agent, tally in self.votes.items()}
        for marks, count in self.vote_marks.items():
            for agent, mark in marks:
                tally = tallies.get(agent)
                if tally is None:
                    tally = tallies[agent] = Counter()
                tally[mark] += count
        return tallies


class Engine:
    """Wire strategy, risk, positions and broker; process one bar at a time."""

    def __init__(
        self,
        config: GnosisConfig,
        strategy: Strategy,
        broker: Broker,
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
        self.identity: dict[str, Any] = {}  # what run this state belongs to (market, symbols...)
        self.sequence = 0  # bars processed, across restarts: the feed resumes after it
        self._order_sequence = 0
        self._bar_index: dict[str, int] = {}
        self._last_ts: dict[str, int] = {}
        self._last_bar: dict[str, Bar] = {}
        self._regime: dict[str, str] = {}
        self.quarantined: Counter[str] = Counter()
        self._closes: dict[str, list] = {}  # symbol -> [ring of closes, next slot, count]
        self._entry: dict[str, Ticket] = {}  # symbol -> its working entry order
        self._exit: dict[str, Ticket] = {}  # symbol -> its working exit order
        self._situations: dict[str, Situation] = {}  # entry order id -> its situation (memory)
        self._executions: OrderedDict[str, None] = OrderedDict()  # venue fills already booked
        self._journal_fills: list[Fill] = []
        self._journal_trades: list[Trade] = []
        self._journal_orders: list[Order] = []
        self._journal_events: list[tuple[int, str, str]] = []
        # bars processed since the last commit (``on_bar(commit=False)``): each one's journal
        # rows under its own sequence, and the symbols whose strategy state changed
        self._staged: list[JournalRows] = []
        self._dirty: set[str] = set()
        self.uncommitted_bars = 0  # bars processed since the last commit
        self._split_strategy = hasattr(strategy, "symbol_state")
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
        sequence, snapshot = loaded
        stored = snapshot.get("identity") or {}
        if self.identity and stored != self.identity:
            raise StateError(
                f"{self.store.directory} holds another run ({describe_run(stored)}); this one "
                f"is {describe_run(self.identity)}. Use another --state-dir, or --fresh to "
                "discard the stored run"
            )
        self.sequence = sequence
        try:
            self.restore(snapshot)
        except Exception as exc:  # noqa: BLE001 - a part missing or unreadable: any failure
            raise StateError(f"{self.store.directory}: the saved state cannot be restored "
                             f"({type(exc).__name__}: {exc}); start over with --fresh") from None
        self._publish(Notice(self.clock.now_ns(), self.clock.now_ns(),
                             f"resumed after bar #{self.sequence} (run {self.run_id})"))
        return True

    def snapshot(self) -> dict[str, Any]:
        return {
            "schema": SNAPSHOT_SCHEMA,
            "identity": self.identity,
            "run_id": self.run_id,
            "order_sequence": self._order_sequence,
            "bar_index": dict(self._bar_index),
            "last_ts": dict(self._last_ts),
            "last_bar": dict(self._last_bar),
            "regime": dict(self._regime),
            "quarantined": self.quarantined,
            "closes": self._closes,
            "entry": dict(self._entry),
            "exit": dict(self._exit),
            "situations": dict(self._situations),
            "executions": list(self._executions),
            "stats": self.stats,
            "clock": self.clock.now_ns(),
            "positions": self.positions.snapshot(),
            "risk": self.risk.snapshot(),
            "broker": self.broker.snapshot(),
            # a strategy with per-symbol state (the agents: ~130 KB a symbol) keeps it apart,
            # so a bar's commit rewrites that symbol's part only (``strategy_parts``)
            "strategy": (self.strategy.shared_state() if self._split_strategy  # type: ignore[attr-defined]
                         else self.strategy.snapshot()),
            "strategy_split": self._split_strategy,
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.identity = snapshot["identity"]
        self.run_id = snapshot["run_id"]
        self._order_sequence = snapshot["order_sequence"]
        self._bar_index = snapshot["bar_index"]
        self._last_ts = snapshot["last_ts"]
        self._last_bar = snapshot["last_bar"]
        self._regime = snapshot["regime"]
        self.quarantined = snapshot["quarantined"]
        self._closes = snapshot["closes"]
        self._entry = snapshot["entry"]
        self._exit = snapshot["exit"]
        self._situations = snapshot["situations"]
        self._executions = OrderedDict.fromkeys(snapshot["executions"])
        self.stats = snapshot["stats"]
        self.clock.advance_to(snapshot["clock"])
        self.positions.restore(snapshot["positions"])
        self.risk.restore(snapshot["risk"])
        self.broker.restore(snapshot["broker"])
        if snapshot.get("strategy_split"):
            self.strategy.restore_split(  # type: ignore[attr-defined]
                snapshot["strategy"], snapshot.get("strategy_parts") or {})
        else:  # one blob (also what a state directory from before the split holds)
            self.strategy.restore(snapshot["strategy"])

    # -- the per-bar path -------------------------------------------------------------------------
    def on_bar(self, bar: Bar, commit: bool = True) -> Decision | None:
        """Process one bar; a duplicate or out-of-order bar is quarantined (None).

        With a store, the state after the bar is committed, or with ``commit=False`` staged
        for the next commit: a live bot receiving a burst of bars (many symbols' bars of one
        minute) commits once after the burst. A kill before that commit is a kill before
        those bars: the restart replays them, deciding and ordering exactly as before (client
        order ids are deterministic, and brokers refuse an id twice).
        """
        symbol = bar.symbol
        if not self._admit(bar):
            return None
        index = self._bar_index[symbol]
        fills = self.broker.on_bar(bar)
        if fills:
            for fill in fills:
                if self._first_report(fill):
                    self._on_fill(fill, index, bar)
            self._ensure_protected(symbol, bar)  # once the whole batch is booked

        positions = self.positions
        equity = positions.mark(bar)
        change = self.risk.on_equity(bar.ts_event, equity)
        if change is not None:
            self._on_state_change(change, bar)

        position = positions.positions.get(symbol)
        if (
            position is not None
            and index - position.opened_bar >= self._max_bars_held
            and symbol not in self._exit
        ):
            self._submit_exit(symbol, "time_stop", bar)

        decision = self.strategy.on_bar(bar)
        quantity, note = 0.0, ""
        if decision.signal:
            quantity, note = self._act(decision, bar)
        self._record(bar, decision, equity, quantity, note)
        if self.store is not None:
            self._stage(bar.symbol, (bar.ts_event, equity))
            self.uncommitted_bars += 1
            if commit:
                self._commit()
        return decision

    def _admit(self, bar: Bar) -> bool:
        """Take a bar into the engine's clock and counters, or quarantine it (False)."""
        symbol = bar.symbol
        last = self._last_ts.get(symbol)
        if last is not None and bar.ts_event <= last:
            reason = "duplicate" if bar.ts_event == last else "out_of_order"
            self.quarantined[reason] += 1
            self._publish(BarQuarantined(bar.ts_event, self.clock.now_ns(), symbol,
                                         f"{reason} bar at {format_ns(bar.ts_event)}"))
            return False
        self._last_ts[symbol] = bar.ts_event
        self._last_bar[symbol] = bar
        self.clock.advance_to(bar.ts_close)
        index = self._bar_index
        index[symbol] = index.get(symbol, -1) + 1
        self.sequence += 1
        # the symbol's last closes (O(1)); volatility is computed from them only when an
        # entry is sized, which is rare next to bars
        window = self._closes.get(symbol)
        if window is None:
            window = self._closes[symbol] = [[bar.close] * (_VOLATILITY_WINDOW + 1), 0, 0]
        ring, slot, count = window
        ring[slot] = bar.close
        window[1] = slot + 1 if slot < _VOLATILITY_WINDOW else 0
        window[2] = count + 1
        return True

    def warm_up(self, bar: Bar) -> None:
        """Fold a history bar into the strategy and volatility state without trading on it.

        A live start loads recent history first (as freqtrade's startup candles do), so the
        first live bar already has a formed regime and a fitted HMM. Warm-up bars count in
        ``sequence`` (a restart resumes after them) but not in the run's statistics.
        """
        if self._admit(bar):
            self.strategy.on_bar(bar)

    def last_bar_ts(self) -> dict[str, int]:
        """The start of the last bar taken of each symbol: a live feed resumes after it."""
        return dict(self._last_ts)

    def commit_warm_up(self) -> None:
        """Persist the state after the warm-up, so a restart does not redo it."""
        if self.store is not None and self.sequence:
            self._dirty.update(self._last_ts)  # the warm-up changed every symbol's state
            self._commit()

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
        return math.sqrt(variance * bars_per_year(interval_s))

    # -- decisions → orders -----------------------------------------------------------------------
    def _act(self, decision: Decision, bar: Bar) -> tuple[float, str]:
        symbol = bar.symbol
        position = self.positions.positions.get(symbol)
        if position is not None:
            if (position.quantity > 0) == (decision.signal > 0):
                return 0.0, "already positioned this way"
            if symbol in self._exit:
                return 0.0, "exit already working"
            exit_order = self._submit_exit(symbol, "signal_reversal", bar)
            return exit_order.quantity * exit_order.side.sign, "exit on reversal"
        if symbol in self._entry:
            return 0.0, "entry order still working"
        return self._enter(decision, bar)

    def _enter(self, decision: Decision, bar: Bar) -> tuple[float, str]:
        """Size a new entry through memory and the risk gate; send it as a bracket."""
        symbol = bar.symbol
        gate: dict[str, Any] = {
            "signal": decision.signal,
            "price": bar.close,
            "volatility": self.volatility(symbol, bar.interval_s),
            "equity": self.positions.equity,
            "gross_exposure": self.positions.gross_exposure + self.working_entry_exposure(),
            "open_positions": len(self.positions.positions) + sum(
                1 for s in self._entry if s not in self.positions.positions
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
        self._entry[symbol] = Ticket(order, order.quantity)
        if situation is not None:
            self._situations[order.client_order_id] = situation
        self._submit(order, bar)
        return order.quantity * decision.signal, answer.reasoning

    def entry_ticket(self, symbol: str) -> Ticket | None:
        """The symbol's working entry order, if any."""
        return self._entry.get(symbol)

    def exit_ticket(self, symbol: str) -> Ticket | None:
        """The symbol's working exit order, if any."""
        return self._exit.get(symbol)

    def working_entry_exposure(self) -> float:
        """Notional of the unfilled remainder of every working entry."""
        return sum(t.remaining * (t.order.expected_price or 0.0) for t in self._entry.values())

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
        """Exit the whole position at the next bar: its entry's remainder and its bracket go
        first, so nothing else can trade the symbol while the exit works."""
        position = self.positions.positions[symbol]
        self._cancel_entry(symbol, reason, bar.ts_event)
        self._cancel_bracket(position.entry_order_id, reason, bar.ts_event)
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
        self._exit[symbol] = Ticket(order, order.quantity)
        self._submit(order, bar)
        return order

    # -- cancels --------------------------------------------------------------------------------
    def _cancel(self, client_order_id: str, reason: str, ts: int) -> bool:
        if not self.broker.cancel(client_order_id):
            return False
        self._canceled(client_order_id, reason, ts)
        return True

    def _canceled(self, client_order_id: str, reason: str, ts: int) -> None:
        if self.store is not None:  # without a store nothing would ever take the rows
            self._journal_events.append((ts, "order_canceled", f"{client_order_id}: {reason}"))
        if self.bus.wants(OrderCanceled):
            self._publish(OrderCanceled(ts, self.clock.now_ns(), client_order_id, reason))

    def _cancel_entry(self, symbol: str, reason: str, ts: int) -> None:
        ticket = self._entry.pop(symbol, None)
        if ticket is not None:
            self._cancel(ticket.client_order_id, reason, ts)
            if symbol not in self.positions.positions:  # it never filled: no episode
                self._situations.pop(ticket.client_order_id, None)

    def _cancel_exit(self, symbol: str, reason: str, ts: int) -> None:
        ticket = self._exit.pop(symbol, None)
        if ticket is not None:
            self._cancel(ticket.client_order_id, reason, ts)

    def _cancel_bracket(self, entry_order_id: str, reason: str, ts: int) -> None:
        for cid in self.broker.cancel_children(entry_order_id):
            self._canceled(cid, reason, ts)

    def cancel_working_entries(self, reason: str, ts: int) -> None:
        for symbol in list(self._entry):
            self._cancel_entry(symbol, reason, ts)

    # -- a live venue: fills and order endings between bars ---------------------------------------
    def on_broker_fills(self, fills: Sequence[Fill]) -> None:
        """Book fills a venue reported between bars (Alpaca's trade updates), then commit.

        A fill whose execution id was booked before (a stream replayed after a reconnect, a
        reconciliation that found it again) is dropped. Protection is checked per symbol once
        the batch is booked.
        """
        touched: list[str] = []
        for fill in fills:
            if not self._first_report(fill):
                continue
            bar = self._last_bar.get(fill.symbol)
            if bar is None:
                self.note(f"fill for {fill.symbol} before any bar of it: booked, unchecked")
                self.positions.on_fill(fill, bar_index=0, reason=fill.reason)
                continue
            self._on_fill(fill, self._bar_index.get(fill.symbol, 0), bar)
            if fill.symbol not in touched:
                touched.append(fill.symbol)
        for symbol in touched:
            self._ensure_protected(symbol, self._last_bar[symbol])
        self.commit_now()

    def _first_report(self, fill: Fill) -> bool:
        execution = fill.execution_id
        if not execution:
            return True
        if execution in self._executions:
            return False
        self._executions[execution] = None
        if len(self._executions) > _REMEMBERED_EXECUTIONS:
            self._executions.popitem(last=False)
        return True

    def on_order_ended(self, client_order_id: str, status: str, reason: str) -> None:
        """The venue ended an order we did not cancel ourselves (expired, rejected, canceled
        by the venue): drop its record, and re-protect what it was protecting."""
        now = self.clock.now_ns()
        for book in (self._entry, self._exit):
            for symbol, ticket in list(book.items()):
                if ticket.client_order_id != client_order_id:
                    continue
                del book[symbol]
                if book is self._entry and symbol not in self.positions.positions:
                    self._situations.pop(client_order_id, None)
                self._canceled(client_order_id, f"{status} by the broker: {reason}", now)
        for symbol in list(self.positions.positions):
            bar = self._last_bar.get(symbol)
            if bar is not None:
                self._ensure_protected(symbol, bar)
        self.commit_now()

    def adopt_position(self, symbol: str, quantity: float, average_price: float,
                       reason: str) -> None:
        """Make the book hold what the venue says it holds (reconciliation after a restart
        or a reconnect). Cash moves by the difference at the average price, so equity does
        not jump; the difference is journaled and published, never ignored."""
        held = self.positions.positions.get(symbol)
        before = held.quantity if held is not None else 0.0
        if abs(before - quantity) <= _EPSILON:
            return
        self.positions.adopt(symbol, quantity, average_price,
                             opened_bar=self._bar_index.get(symbol, 0),
                             ts=self.clock.now_ns())
        self.note(f"reconciled {symbol}: the book held {before:g}, the broker holds "
                  f"{quantity:g} @ {average_price:.2f} ({reason})", symbol=symbol,
                  book=before, broker=quantity)
        bar = self._last_bar.get(symbol)
        if bar is not None:
            self._ensure_protected(symbol, bar)

    # -- fills ----------------------------------------------------------------------------------
    def _on_fill(self, fill: Fill, index: int, bar: Bar) -> None:
        """Book one fill: the position, the order records, then the lifecycle rules."""
        symbol = fill.symbol
        entry = self._entry.get(symbol)
        is_entry = entry is not None and entry.client_order_id == fill.client_order_id
        opened, trade = self.positions.on_fill(
            fill,
            bar_index=index,
            reason=fill.reason,
            stop_price=entry.order.stop_loss if is_entry and entry else None,
            target_price=entry.order.take_profit if is_entry and entry else None,
        )
        self._settle_ticket(symbol, fill)
        if self.store is not None:
            self._journal_fills.append(fill)
        now = self.clock.now_ns()
        bus = self.bus
        if bus.wants(OrderFilled):
            bus.publish(OrderFilled(fill.ts_event, now, fill))
        if opened is not None:
            self._remember_open(fill, entry.order if is_entry and entry else None)
            if bus.wants(PositionOpened):
                bus.publish(PositionOpened(fill.ts_event, now, symbol, opened.quantity,
                                           fill.price, opened.stop_price or 0.0,
                                           opened.target_price or 0.0))
        if not is_entry:  # the trade is closing: what is left of its entry must not fill now
            self._cancel_entry(symbol, f"{fill.reason} fill closes the trade", bar.ts_event)
        if trade is not None:
            self._close_out(symbol, trade, bar.ts_event)
            if self.store is not None:
                self._journal_trades.append(trade)
            self._remember_close(trade)
            if bus.wants(PositionClosed):
                bus.publish(PositionClosed(fill.ts_event, now, trade))

    def _settle_ticket(self, symbol: str, fill: Fill) -> None:
        """Keep a record only while its order works: drop it with the order's last share."""
        for book in (self._entry, self._exit):
            ticket = book.get(symbol)
            if ticket is not None and ticket.client_order_id == fill.client_order_id:
                ticket.remaining = fill.remaining
                if fill.remaining <= _EPSILON:
                    del book[symbol]

    def _close_out(self, symbol: str, trade: Trade, ts: int) -> None:
        """A closed position leaves nothing working for its symbol."""
        reason = f"trade closed ({trade.exit_reason})"
        self._cancel_entry(symbol, reason, ts)
        self._cancel_exit(symbol, reason, ts)
        self._cancel_bracket(trade.entry_order_id, reason, ts)

    def _ensure_protected(self, symbol: str, bar: Bar) -> None:
        """An open position is covered by a working exit for all of it, or by a stop leg for
        all of it; otherwise it is exited now (a broker that fills out of the usual order —
        a live venue racing a cancel — must not leave shares unprotected)."""
        position = self.positions.positions.get(symbol)
        if position is None or not self._brackets:
            return
        size = abs(position.quantity)
        ticket = self._exit.get(symbol)
        if ticket is not None:
            if ticket.remaining + _EPSILON >= size:
                return
            self._cancel_exit(symbol, "exit smaller than the position", bar.ts_event)
            self._submit_exit(symbol, ticket.order.reason, bar)
            return
        if self.stop_cover(symbol, position) + _EPSILON < size:
            self._submit_exit(symbol, "unprotected", bar)

    def stop_cover(self, symbol: str, position: Position) -> float:
        """Shares of the position that working stop orders would close."""
        closing = Side.SELL if position.quantity > 0 else Side.BUY
        return sum(remaining for order, remaining in self.broker.working(symbol)
                   if order.side is closing and order.order_type is OrderType.STOP)

    # -- risk state -----------------------------------------------------------------------------
    def _on_state_change(self, change: StateChange, bar: Bar) -> None:
        self._announce(change, bar.ts_event)
        if change.current is not TradingState.ACTIVE:
            self.cancel_working_entries(f"trading {change.current.value}", bar.ts_event)
        if change.flatten:
            self.flatten(bar, "circuit_breaker")

    def _announce(self, change: StateChange, ts: int) -> None:
        self._journal_events.append(
            (ts, "trading_state", f"{change.previous.value} -> {change.current.value}: "
                                  f"{change.reason}"))
        self._publish(TradingStateChanged(ts, self.clock.now_ns(), change.previous,
                                          change.current, change.reason))

    # -- operator commands ------------------------------------------------------------------------
    def flatten(self, bar: Bar | None, reason: str) -> None:
        """Cancel every working entry and exit every position at its symbol's next bar."""
        ts = self.clock.now_ns() if bar is None else bar.ts_event
        self.cancel_working_entries(reason, ts)
        for symbol in list(self.positions.positions):
            last = self._last_bar.get(symbol)
            if symbol not in self._exit and last is not None:
                self._submit_exit(symbol, reason, last)

    def halt(self, reason: str = "halted by operator", *, flatten: bool = False) -> None:
        change = self.risk.halt(reason)
        if change is not None:
            now = self.clock.now_ns()
            self._announce(change, now)
            self.cancel_working_entries(f"trading {change.current.value}", now)
        if flatten:
            self.flatten(None, "operator_halt")

    def resume(self, reason: str = "resumed by operator") -> None:
        change = self.risk.resume(reason)
        if change is not None:
            self._announce(change, self.clock.now_ns())

    def note(self, message: str, **details: Any) -> None:
        """Journal and publish something a person should see (operator commands, restarts)."""
        now = self.clock.now_ns()
        self._journal_events.append((now, "notice", message))
        self._publish(Notice(now, now, message, dict(details)))

    def commit_now(self) -> None:
        """Persist state between bars (after an operator command), with any staged bars."""
        if self.store is not None:
            self._commit()

    @property
    def trading_state(self) -> TradingState:
        return self.risk.state

    # -- episodic memory: consulted on candidate entries, told about opens and closes ---------
    def attach_memory(self, memory: EpisodicMemory | None) -> None:
        """Plug memory in once the state directory is ours (its file lives there)."""
        self.memory = memory
        self._memory_wired = memory is not None

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
        self.note(f"episodic memory failed to {what} ({type(exc).__name__}: {exc}); "
                  "trading on without it", component="memory")

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
        counts: dict[Any, int] = stats.decisions
        signal = decision.signal
        counts[signal] = counts.get(signal, 0) + 1
        regime = decision.regime
        if regime is not None:
            counts = stats.regime_counts
            counts[regime] = counts.get(regime, 0) + 1
            if regime != self._regime.get(bar.symbol):
                self._track_regime(bar, decision)
        marks = decision.vote_marks
        if marks:
            counts = stats.vote_marks
            counts[marks] = counts.get(marks, 0) + 1
        bus = self.bus
        if bus.silent:
            return
        if bus.wants(DecisionMade):
            bus.publish(DecisionMade(bar.ts_event, self.clock.now_ns(), decision, bar.close,
                                     quantity, note))
        if bus.wants(BarProcessed):
            bus.publish(BarProcessed(bar.ts_event, self.clock.now_ns(), bar, equity))

    def _track_regime(self, bar: Bar, decision: Decision) -> None:
        regime = decision.regime
        previous = self._regime.get(bar.symbol)
        if regime == previous or regime is None:
            return
        self._regime[bar.symbol] = regime
        if previous is not None and self.bus.wants(RegimeChanged):
            self._publish(RegimeChanged(bar.ts_event, self.clock.now_ns(), bar.symbol,
                                        previous, regime, decision.regime_confidence or 0.0))

    def _stage(self, symbol: str | None, equity: tuple[int, float] | None) -> None:
        """Set aside the journal rows gathered since the last stage under the current
        sequence (a bar's, or between bars an operator command's)."""
        self._staged.append(JournalRows(self.sequence, self._journal_fills, self._journal_trades,
                                        self._journal_orders, self._journal_events, equity))
        self._journal_fills, self._journal_trades = [], []
        self._journal_orders, self._journal_events = [], []
        if symbol is not None:
            self._dirty.add(symbol)

    def _commit(self) -> None:
        """Write the state after the last bar with the journal rows of every bar since the
        previous commit, and the strategy state of the symbols those bars changed."""
        assert self.store is not None
        self._stage(None, None)  # rows of work since the last bar (operator commands, fills)
        parts = None
        if self._split_strategy and self._dirty:
            strategy: Any = self.strategy
            parts = {symbol: strategy.symbol_state(symbol) for symbol in sorted(self._dirty)}
        self.store.commit(self.sequence, self.snapshot(), parts=parts, journal=self._staged)
        self._staged = []
        self._dirty.clear()
        self.uncommitted_bars = 0

    def _publish(self, event: Any) -> None:
        self.bus.publish(event)

    # -- results ---------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        pm = self.positions
        stats = self.stats
        initial = self.config.initial_cash
        # the running day counts as a day: its return so far completes the series
        daily = [*stats.daily_returns, stats.last_equity / stats.day_close_equity - 1.0]
        agent_errors = getattr(self.strategy, "agent_errors", None)
        result: dict[str, Any] = {
            "bars": stats.bars,
            "trades": pm.trade_count,
            "fills": pm.fill_count,
            "final_equity": round(pm.equity, 2),
            "total_return": round(pm.equity / initial - 1.0, 6),
            "max_drawdown": round(stats.max_drawdown, 6),
            "sharpe": sharpe(daily),
            "win_rate": round(pm.win_count / pm.trade_count, 4) if pm.trade_count else 0.0,
            "fees": round(pm.total_fees, 2),
            "slippage": round(pm.total_slippage, 2),
            "shortfall": round(pm.total_shortfall, 2),
            "realized_pnl": round(pm.realized_pnl, 2),
            "open_positions": len(pm.positions),
            "working_orders": len(self.broker.working()),
            "trading_state": self.risk.state.value,
            "quarantined_bars": dict(self.quarantined),
            "decisions": {str(k): v for k, v in sorted(stats.decisions.items())},
            "refusals": dict(sorted(stats.refusals.items())),
            "regime_counts": dict(sorted(stats.regime_counts.items())),
            "votes": {
                agent: {key: tally.get(key, 0) for key in ("-1", "0", "1", "abstain", "off")}
                for agent, tally in sorted(stats.agent_votes().items())
            },
            "agent_errors": dict(sorted(agent_errors.items())) if agent_errors else {},
        }
        if self._memory_wired:
            result["memory"] = {**stats.memory.as_dict(), "available": self.memory is not None}
        return result


def describe_run(identity: dict[str, Any]) -> str:
    if not identity:
        return "unknown"
    return ", ".join(f"{key} {value}" for key, value in sorted(identity.items()))


MIN_SHARPE_DAYS = 5
TRADING_DAYS_PER_YEAR = 252


def sharpe(daily_returns: list[float]) -> float | None:
    """Annualized Sharpe of daily returns (risk-free 0, sample standard deviation); None below
    ``MIN_SHARPE_DAYS`` days, where an annualized figure would be noise presented as a
    statistic."""
    count = len(daily_returns)
    if count < MIN_SHARPE_DAYS:
        return None
    mean = sum(daily_returns) / count
    variance = sum((r - mean) ** 2 for r in daily_returns) / (count - 1)
    if variance <= 0:
        return 0.0
    return round(mean / math.sqrt(variance) * math.sqrt(TRADING_DAYS_PER_YEAR), 4)
