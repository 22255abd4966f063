"""Reconciliation: the venue's positions, orders and fills against ours.

Runs at start (before any new order, on the core thread) and after every reconnect of either
stream (collected on the poller thread, applied on the core thread), and every few polls.
``collect`` reads the venue (REST): positions, the open orders, and every intent of the journal
that is not settled, by client order id (its bracket legs nested). Positions are read before
and after the orders; when they differ a fill landed meanwhile and the reading is repeated, so
orders and positions describe the same moment. ``apply`` then, in this order:

1. books the fills the venue holds beyond what the engine booked (missed while down or while a
   stream was away) through ``Engine.on_broker_fills`` (execution ids and the broker's
   watermark make a fill reported twice count once);
2. tells the engine about orders the venue ended on its own (``on_order_ended``), and about
   intents the venue never received (a kill between the journal write and the POST): those
   are never sent late, the engine re-protects what needs protection;
3. unknown open orders: carrying this run's client-id prefix (an intent whose decision was
   never committed before a kill), they are canceled; bracket legs of our entries are adopted
   as protection; orders someone else placed are left alone, mirrored (their stops protect
   shares too) and reported;
4. positions that still differ are adopted (``Engine.adopt_position``: journaled and
   published), unless fills of that symbol are still on their way to the engine, in which case
   the symbol is checked again on the next round.
Every difference is a journaled notice; nothing is ignored silently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gnosis.adapters.alpaca import rest
from gnosis.adapters.alpaca.broker import EPSILON, Tracked
from gnosis.adapters.alpaca.convert import VenueOrder, number
from gnosis.model.types import InvalidValue

if TYPE_CHECKING:
    from gnosis.adapters.alpaca.broker import AlpacaBroker
    from gnosis.trading.engine import Engine
    from gnosis.trading.live_bot import LiveBot

log = logging.getLogger(__name__)
_FULL_EVERY = 6  # every n-th poll is a full reconciliation (positions included)
_ATTEMPTS = 3


@dataclass(slots=True)
class VenueState:
    """What the venue said, read in one consistent pass."""

    positions: dict[str, tuple[float, float]]  # symbol -> (signed quantity, average price)
    open_orders: list[VenueOrder]
    intents: dict[str, VenueOrder]  # our client order id -> the venue's order (legs nested)
    missing: set[str]  # intents the venue does not know
    generation: dict[str, int]  # fills handed to the engine per symbol when reading began
    malformed: int = 0
    notes: list[str] = field(default_factory=list)


class Reconciler:
    def __init__(self, broker: AlpacaBroker) -> None:
        self.broker = broker
        self.rounds = 0
        self._polls = 0
        self._reported: set[str] = set()

    # -- reading the venue (any thread but the core's, except at start) -------------------------
    def _positions(self) -> dict[str, tuple[float, float]]:
        raw = rest.call("read positions", self.broker.client.get_all_positions) or []
        positions: dict[str, tuple[float, float]] = {}
        for record in raw:
            try:
                qty = number(record.get("qty")) or 0.0
                if str(record.get("side", "long")) == "short" and qty > 0:
                    qty = -qty
                positions[str(record["symbol"]).upper()] = (
                    qty, number(record.get("avg_entry_price")) or 0.0)
            except (KeyError, TypeError, ValueError, InvalidValue):
                log.warning("alpaca reconcile: malformed position record %r", record)
        return positions

    def _open_orders(self) -> tuple[list[VenueOrder], int]:
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        raw = rest.call("list open orders", self.broker.client.get_orders,
                        GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=500)) or []
        orders, malformed = [], 0
        for record in raw:
            try:
                orders.append(VenueOrder.parse(record))
            except InvalidValue:
                malformed += 1
        return orders, malformed

    def collect(self) -> VenueState:
        broker = self.broker
        with broker._lock:
            generation = dict(broker.generation)
        state: VenueState | None = None
        for _attempt in range(_ATTEMPTS):
            before = self._positions()
            open_orders, malformed = self._open_orders()
            intents: dict[str, VenueOrder] = {}
            missing: set[str] = set()
            for intent in broker.journal.open_intents():
                tracked = broker.tracked(intent.client_order_id)
                if tracked is not None and tracked.status == "submitting":
                    continue  # the worker is sending it right now: its answer will tell
                venue = broker._lookup(intent.client_order_id)
                if venue is None:
                    missing.add(intent.client_order_id)
                else:
                    intents[intent.client_order_id] = venue
            after = self._positions()
            state = VenueState(after, open_orders, intents, missing, generation, malformed)
            if before == after:
                break
            broker.stats["reconcile_rereads"] += 1
        assert state is not None
        return state

    # -- entry points -----------------------------------------------------------------------------
    def run_now(self, engine: Engine, reason: str) -> None:
        """Read and apply at once (the core thread, before trading starts)."""
        self.apply(engine, self.collect(), reason)

    def run_later(self, bot: LiveBot | None) -> None:
        """Read here (the poller thread); apply on the core thread."""
        if bot is None:
            return
        state = self.collect()
        bot.call_soon(lambda engine: self.apply(engine, state, "reconnect"),
                      "reconciliation with Alpaca")

    def poll(self, bot: LiveBot | None) -> None:
        """Between reconciliations: look for fills and endings the stream did not bring."""
        if bot is None:
            return
        self._polls += 1
        if self._polls % _FULL_EVERY == 0:
            self.run_later(bot)
            return
        broker = self.broker
        with broker._lock:
            candidates = [t for t in broker._tracked.values()
                          if t.ours and t.parent is None and t.venue_id is not None
                          and (t.open or any(broker._tracked[k].open for k in t.legs
                                             if k in broker._tracked))]
        if not candidates:
            return
        open_orders, _malformed = self._open_orders()
        by_id = {o.id: o for o in open_orders}
        changed = [t for t in candidates if self._moved(t, by_id)]
        unknown = [o for o in open_orders if o.symbol in broker.symbols
                   and o.client_order_id.startswith(broker.prefix or "\0")
                   and broker.key_of(o) is None]
        if unknown:
            broker.request_reconcile()
        fills, endings = [], []
        for tracked in changed:
            venue = broker._lookup(tracked.key)
            if venue is None:
                continue
            with broker._lock:
                broker.track_venue_order(venue, tracked.key)
            fills += broker.fills_from_venue(venue, tracked.key, venue.updated_ns or 0)
            endings += self._endings(tracked.key, venue)
        if fills:
            broker.stats["fills_from_polls"] += len(fills)
        broker._hand(fills)
        for ending in endings:
            broker._tell_ended(*ending)

    def _moved(self, tracked: Tracked, by_id: dict[str, VenueOrder]) -> bool:
        """Whether the venue's open-order list disagrees with the mirror about ``tracked``."""
        broker = self.broker
        with broker._lock:
            members = [tracked] + [broker._tracked[k] for k in tracked.legs
                                   if k in broker._tracked]
            for member in members:
                venue = by_id.get(member.venue_id or "")
                handed = broker._handed.get(member.key, (0.0, 0.0))[0]
                if venue is None and member.open:
                    return True  # closed at the venue: filled or ended
                if venue is not None and venue.filled_qty > handed + EPSILON:
                    return True
        return False

    def _endings(self, key: str, venue: VenueOrder) -> list[tuple[str, str, str]]:
        broker = self.broker
        out = []
        if not venue.is_open and venue.status != "filled":
            told = broker.ended(key, venue.status, f"{venue.status} at the venue")
            if told is not None:
                out.append(told)
        for leg in venue.legs:
            leg_key = broker.key_of(leg)
            if leg_key is not None and not leg.is_open and leg.status != "filled":
                told = broker.ended(leg_key, leg.status, f"{leg.status} at the venue")
                if told is not None:
                    out.append(told)
        return out

    # -- applying it (the core thread) ----------------------------------------------------------
    def apply(self, engine: Engine, state: VenueState, reason: str) -> None:
        broker = self.broker
        if broker.stopped:
            return  # read before the bot stopped: the next start reconciles again
        self.rounds += 1
        differences = self._book_missed_fills(engine, state)
        tickets = self._tickets(engine)
        differences += self._ended_at_the_venue(engine, state, tickets)
        differences += self._never_received(engine, state, tickets, reason)
        differences += self._uncommitted(state, tickets)
        differences += self._unknown_orders(state, tickets)
        differences += self._positions_against(engine, state, reason)
        for cid, venue in state.intents.items():  # settled: not asked about again
            if self._settled(cid, venue):
                broker.journal.finish(cid)
                broker.forget(cid)
        if state.malformed:
            differences.append(f"{state.malformed} malformed order record(s) from the venue "
                               "were skipped")
        for text in differences:
            engine.note(f"reconciliation ({reason}): {text}", component="alpaca")
        if reason == "start" or differences:
            engine.note(f"reconciled with Alpaca ({reason}): {len(differences)} difference(s); "
                        f"{len(state.positions)} position(s), {len(state.open_orders)} open "
                        f"order(s) at the venue", component="alpaca")
        engine.commit_now()

    def _book_missed_fills(self, engine: Engine, state: VenueState) -> list[str]:
        """Mirror the intents the venue knows; book what they filled beyond our books."""
        broker = self.broker
        journal = broker.journal
        now = engine.clock.now_ns()
        fills = []
        for cid, venue in state.intents.items():
            intent = journal.get(cid)
            if intent is None:
                continue
            with broker._lock:
                if cid not in broker._tracked:
                    broker._tracked[cid] = Tracked(cid, intent.order, venue.status, venue.id,
                                                   bracket=intent.order.stop_loss is not None)
                broker.track_venue_order(venue, cid)
            if intent.status == "pending":
                journal.mark(cid, "placed", venue_id=venue.id)
            fills += broker.fills_from_venue(venue, cid, now)
        if not fills:
            return []
        broker.stats["fills_reconciled"] += len(fills)
        broker.hand_now(engine, fills)
        return [f"booked {len(fills)} fill(s) the venue made while we were not listening: "
                + ", ".join(f"{f.side.value} {f.quantity:g} {f.symbol} @ {f.price:.2f} "
                            f"({f.client_order_id})" for f in fills)]

    def _ended_at_the_venue(self, engine: Engine, state: VenueState,
                            tickets: set[str]) -> list[str]:
        """Orders the venue ended on its own that the engine counts on (or that protected a
        position): the engine hears of them."""
        notes = []
        for cid, venue in state.intents.items():
            for key, status, why in self._endings(cid, venue):
                if key in tickets or venue.symbol in engine.positions.positions:
                    notes.append(f"{key} was {status} at the venue while we were away")
                    engine.on_order_ended(key, status, why)
        return notes

    def _never_received(self, engine: Engine, state: VenueState, tickets: set[str],
                        reason: str) -> list[str]:
        """Intents the venue does not know (a kill between the journal and the POST)."""
        broker = self.broker
        journal = broker.journal
        notes = []
        for cid in sorted(state.missing):
            tracked = broker.tracked(cid)
            intent = journal.get(cid)
            if (tracked is not None and tracked.status == "submitting") or \
                    intent is None or intent.status != "pending":
                continue  # sent (or being sent) since the venue was read: not missing
            broker.forget(cid)
            if cid in tickets:  # the engine counts on it: tell it, and never send it late
                journal.mark(cid, "dropped", detail=f"not at the venue ({reason})")
                notes.append(f"{cid} never reached Alpaca before the restart: dropped, not "
                             "sent late")
                engine.on_order_ended(cid, "canceled", "never reached the venue before a "
                                      "restart")
            else:  # its decision was not committed: a replay of that bar may place it once
                journal.mark(cid, "unplaced", detail=f"not at the venue ({reason})")
        for cid in sorted(tickets):
            if journal.get(cid) is None and broker.tracked(cid) is None:
                notes.append(f"{cid} is unknown to the order journal: dropped")
                engine.on_order_ended(cid, "canceled", "unknown to the broker's journal")
        return notes

    @staticmethod
    def _tickets(engine: Engine) -> set[str]:
        tickets = set()
        symbols = set(engine.positions.positions) | set(engine.last_bar_ts())
        for symbol in symbols:
            for ticket in (engine.entry_ticket(symbol), engine.exit_ticket(symbol)):
                if ticket is not None:
                    tickets.add(ticket.client_order_id)
        return tickets

    def _uncommitted(self, state: VenueState, tickets: set[str]) -> list[str]:
        """Our intents still open at the venue that the engine has no record of: placed for a
        decision that was never committed (a kill before the commit, a restart that replayed
        past it), or canceled by the engine just before a kill. Canceled now."""
        broker = self.broker
        notes = []
        for cid, venue in state.intents.items():
            if not venue.is_open or cid in tickets:
                continue
            with broker._lock:
                tracked = broker._tracked.get(cid)
                if tracked is None or tracked.cancel_requested or not tracked.open \
                        or tracked.filled >= tracked.order.quantity:
                    continue  # being canceled, or done since the venue was read
                tracked.cancel_requested = True
            broker._commands.put(("cancel", cid))
            notes.append(f"{cid} ({venue.side} {venue.remaining:g} {venue.symbol} left) is open "
                         "at the venue but the engine has no record of it (its decision was "
                         "never committed, or its cancel was lost in a restart): canceled")
        return notes

    def _unknown_orders(self, state: VenueState, tickets: set[str]) -> list[str]:
        broker = self.broker
        notes = []
        for venue in state.open_orders:
            if broker.key_of(venue) is not None:
                continue
            if venue.symbol not in broker.symbols:
                note = f"an order in {venue.symbol}, a symbol this bot does not trade, is " \
                       f"open at the venue ({venue.side} {venue.qty:g} {venue.type}): left alone"
                if venue.id not in self._reported:
                    self._reported.add(venue.id)
                    notes.append(note)
                continue
            if venue.client_order_id.startswith(broker.prefix or "\0"):
                key = venue.client_order_id
                intent = broker.journal.get(key)
                if intent is None:  # our prefix, but no journaled intent: leave it alone
                    broker.track_foreign(venue)
                    notes.append(f"{key} carries this run's prefix but no journaled intent: "
                                 "left alone, counted as working")
                    continue
                order = intent.order
                with broker._lock:
                    broker._tracked[key] = Tracked(key, order, venue.status, venue.id,
                                                   venue.filled_qty, cancel_requested=True)
                    broker._by_venue[venue.id] = key
                broker._commands.put(("cancel", key))
                notes.append(f"{key} ({venue.side} {venue.qty:g} {venue.symbol}) is open at the "
                             "venue but its decision was never committed (a restart replayed "
                             "past it): canceled")
                continue
            broker.track_foreign(venue)
            if venue.id not in self._reported:
                self._reported.add(venue.id)
                notes.append(f"an order this bot did not place is open at the venue: "
                             f"{venue.side} {venue.qty:g} {venue.symbol} {venue.type} "
                             f"({venue.client_order_id}): left alone, counted as working")
        return notes

    def _positions_against(self, engine: Engine, state: VenueState, reason: str) -> list[str]:
        broker = self.broker
        notes = []
        for symbol in broker.symbols:
            venue_qty, average = state.positions.get(symbol, (0.0, 0.0))
            held = engine.positions.positions.get(symbol)
            book_qty = held.quantity if held is not None else 0.0
            if abs(venue_qty - book_qty) <= EPSILON:
                continue
            with broker._lock:
                moved = broker.generation[symbol] != state.generation.get(symbol, 0)
            if moved or broker.in_flight(symbol):
                broker.stats["adoption_deferred"] += 1
                broker.request_reconcile()  # fills are on their way: look again
                continue
            if average <= 0 and held is not None:
                average = held.average_price
            if average <= 0:
                notes.append(f"{symbol}: the venue holds {venue_qty:g}, the book {book_qty:g}, "
                             "and no price is known yet: adopted on the next round")
                broker.request_reconcile()
                continue
            broker.stats["positions_adopted"] += 1
            engine.adopt_position(symbol, venue_qty, average, f"reconciliation: {reason}")
        for symbol, (qty, _avg) in sorted(state.positions.items()):
            if symbol not in broker.symbols and f"position:{symbol}" not in self._reported:
                self._reported.add(f"position:{symbol}")
                notes.append(f"the account holds {qty:g} {symbol}, a symbol this bot does not "
                             "trade: left alone")
        return notes

    def _settled(self, cid: str, venue: VenueOrder) -> bool:
        broker = self.broker
        if venue.is_open or any(leg.is_open for leg in venue.legs):
            return False
        with broker._lock:
            members = [(cid, venue.filled_qty)] + [
                (broker._by_venue.get(leg.id, ""), leg.filled_qty) for leg in venue.legs]
            return all(broker._handed.get(key, (0.0, 0.0))[0] + EPSILON >= filled
                       for key, filled in members if filled > EPSILON)
