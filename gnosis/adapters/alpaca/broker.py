"""``AlpacaBroker``: the ``Broker`` port on an Alpaca paper account.

What the engine sees is a local mirror of the venue's working orders (bracket legs included,
with what is left of them), kept current by the ``trade_updates`` stream, with REST polling as
the fallback and a full reconciliation at start and after every reconnect
(``gnosis.adapters.alpaca.reconcile``). The engine calls ``submit``/``cancel`` on its core thread
and never waits for the network: an intent is written to the journal (SQLite, one transaction)
and handed to one worker thread, which talks to the venue in order (a cancel never overtakes
its submit). Fills and orders the venue ended on its own reach the engine only through the live
bot (``on_broker_fills``, ``on_order_ended``), never from a foreign thread.

Orders: client order ids are the engine's (deterministic); an entry with a stop and a target
goes as ``order_class=bracket`` (market entry, GTC, so the legs live on at the broker while
the bot is down); exits are GTC market orders. A duplicate client order id answer means "already
placed": the order is fetched by its client order id instead. A POST that failed on a 5xx or a
dropped connection may have been placed: the order is looked up by client order id before it is
sent again. An exit refused for "insufficient qty" (Alpaca still holds the shares for bracket
legs whose cancel is pending) is retried once the legs' cancels have settled.

Fills: each fill is accounted by its own quantity. What has been handed to the engine per order
is a watermark of (cumulative quantity, value); a trade update books ``filled_qty`` minus the
watermark (normally the event's ``qty``), a poll books what the watermark lacks at the average
price of the difference, and a report already covered is dropped, so a fill is never booked twice
and cumulative quantities are never summed. The watermark of what the engine has *booked* is part
of the engine's committed snapshot, so a restart knows exactly which fills are missing.

Legs: the mirror names them ``<entry id>-sl`` and ``<entry id>-tp`` (as SimBroker does); from the
entry's first fill they cover the entry's filled quantity, less what either leg has filled
(one-cancels-other). Fills carry the engine's reason (legs: stop_loss / take_profit), the
decision price as ``expected_price`` and, for slippage, the decision price as the reference of a
market order and the level of a stop or limit leg. Fees are estimated with the configured fee
model (Alpaca reports regulatory fees later, as account activities).
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests
from alpaca.common.exceptions import APIError

from gnosis.adapters.alpaca import rest
from gnosis.adapters.alpaca.convert import TERMINAL, VenueOrder, optional_ns
from gnosis.adapters.alpaca.errors import AlpacaAuthError, AlpacaError
from gnosis.adapters.alpaca.journal import OrderJournal
from gnosis.adapters.alpaca.settings import AlpacaSettings
from gnosis.adapters.alpaca.streams import (
    HookedTradingStream,
    StreamThread,
    failure_reason,
    is_fatal,
)
from gnosis.core.clock import LiveClock
from gnosis.core.config import ExecutionConfig
from gnosis.model.types import Bar, Fill, InvalidValue, Order, OrderType, Side

if TYPE_CHECKING:
    from gnosis.trading.live_bot import LiveBot

log = logging.getLogger(__name__)
EPSILON = 1e-9
LEG_SUFFIX = {"stop": "sl", "stop_limit": "sl", "limit": "tp"}
LEG_REASON = {"sl": "stop_loss", "tp": "take_profit"}
_BOOKED_KEPT = 2_000  # watermarks kept in the snapshot (old, finished orders fall off)
_SETTLE_TRIES = 30
_SETTLE_WAIT_S = 0.1


@dataclass(slots=True)
class Tracked:
    """One order in the mirror."""

    key: str  # the engine's client order id; '<entry>-sl' / '<entry>-tp' for legs
    order: Order
    status: str  # 'submitting' until the venue answers, then the venue's status
    venue_id: str | None = None
    filled: float = 0.0  # the venue's cumulative filled quantity
    parent: str | None = None  # the entry's key, for a leg
    legs: list[str] = field(default_factory=list)
    ours: bool = True  # an intent of this bot (else an order someone else placed)
    cancel_requested: bool = False
    bracket: bool = False

    @property
    def open(self) -> bool:
        return self.status not in TERMINAL


def round_price(price: float) -> float:
    """Alpaca's tick: cents at $1 and above, 1/100 cent below."""
    return round(price, 2 if price >= 1.0 else 4)


class AlpacaBroker:
    """The ``Broker`` port on an Alpaca paper account (see the module docstring)."""

    is_venue = True

    def __init__(self, settings: AlpacaSettings, symbols: tuple[str, ...], *,
                 journal: OrderJournal | None = None, fresh_journal: bool = False,
                 execution: ExecutionConfig | None = None, client: Any = None,
                 wall: LiveClock | None = None) -> None:
        self.settings = settings
        self.symbols = tuple(symbols)
        # without a journal given, it opens in start(), in the state directory, once the
        # engine's store holds the directory's lock (a second process is refused first)
        self._journal = journal
        self._fresh_journal = fresh_journal
        self.execution = execution or ExecutionConfig()
        self.client = client or settings.trading_client(raw=True)
        self.wall = wall or LiveClock()
        self.poll_s = settings.tuning.order_poll_s
        self.stats: Counter[str] = Counter()
        self._lock = threading.RLock()
        self._tracked: dict[str, Tracked] = {}
        self._by_venue: dict[str, str] = {}  # venue order id -> key
        self._handed: dict[str, tuple[float, float]] = {}  # key -> (qty, value) handed over
        self._booked: OrderedDict[str, tuple[float, float]] = OrderedDict()  # core thread only
        self.generation: Counter[str] = Counter()  # fills handed over, per symbol
        self._commands: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self._reconcile_wanted = threading.Event()
        self._stop = threading.Event()
        self._bot: LiveBot | None = None
        self.prefix = ""  # client order ids of this run start with it
        self._threads: list[threading.Thread] = []
        self._loop: StreamThread | None = None
        self._stream: Any = None
        self._stream_connections = 0
        self._announced: set[str] = set()

    @property
    def journal(self) -> OrderJournal:
        if self._journal is None:
            raise AlpacaError("the order journal opens when the broker starts")
        return self._journal

    # -- the Broker port (core thread) -----------------------------------------------------------
    def submit(self, order: Order, active_from: int = 0) -> bool:
        cid = order.client_order_id
        intent = self.journal.get(cid)
        with self._lock:
            known = self._tracked.get(cid)
        if intent is not None and (known is not None or intent.status not in (
                "pending", "unplaced")):
            # placed once already (the engine replayed a bar after a restart): never twice
            self.stats["resubmit_refused"] += 1
            if known is None or not known.open or known.cancel_requested:
                self._tell_ended(cid, "canceled", "already placed before a restart and no "
                                 "longer working at the venue")
            return False
        if intent is None:
            self.journal.record(order)  # durable before it leaves
        with self._lock:
            self._tracked[cid] = Tracked(cid, order, "submitting",
                                         bracket=order.stop_loss is not None)
        self._commands.put(("submit", cid))
        return True

    def cancel(self, client_order_id: str) -> bool:
        with self._lock:
            tracked = self._tracked.get(client_order_id)
            if tracked is None or not self._working(tracked):
                return False
            tracked.cancel_requested = True
        self._commands.put(("cancel", client_order_id))
        return True

    def cancel_children(self, parent_id: str) -> list[str]:
        with self._lock:
            legs = [key for key, t in self._tracked.items()
                    if t.parent == parent_id and self._working(t)]
            for key in legs:
                self._tracked[key].cancel_requested = True
        for key in legs:
            self._commands.put(("cancel", key))
        return legs

    def on_bar(self, bar: Bar) -> list[Fill]:
        return []  # a venue's fills arrive between bars, through the live bot

    def working(self, symbol: str | None = None) -> list[tuple[Order, float]]:
        with self._lock:
            out = []
            for tracked in self._tracked.values():
                if symbol is not None and tracked.order.symbol != symbol:
                    continue
                if not self._working(tracked):
                    continue
                left = self._remaining(tracked)
                if left > EPSILON:
                    out.append((tracked.order, left))
            return out

    def snapshot(self) -> dict[str, Any]:
        return {"booked": dict(self._booked)}

    def restore(self, state: Any) -> None:
        booked = (state or {}).get("booked", {}) if isinstance(state, dict) else {}
        self._booked = OrderedDict(booked)
        with self._lock:
            self._handed = dict(booked)

    # -- mirror helpers (call with the lock held) ------------------------------------------------
    def _working(self, tracked: Tracked) -> bool:
        return (tracked.open and tracked.status != "held" and not tracked.cancel_requested
                and tracked.order.symbol in self.symbols)

    def _remaining(self, tracked: Tracked) -> float:
        if tracked.parent is None:
            return max(0.0, tracked.order.quantity - tracked.filled)
        parent = self._tracked.get(tracked.parent)
        if parent is None:
            return max(0.0, tracked.order.quantity - tracked.filled)
        legs_filled = sum(self._tracked[k].filled for k in parent.legs if k in self._tracked)
        return max(0.0, parent.filled - legs_filled)

    def tracked(self, key: str) -> Tracked | None:
        with self._lock:
            return self._tracked.get(key)

    def key_of(self, venue: VenueOrder) -> str | None:
        with self._lock:
            if venue.client_order_id in self._tracked:
                return venue.client_order_id
            return self._by_venue.get(venue.id)

    def track_venue_order(self, venue: VenueOrder, key: str | None = None) -> str | None:
        """Bring the mirror up to date with a venue order (and its nested legs)."""
        with self._lock:
            key = key or self.key_of(venue)
            if key is None:
                return None
            tracked = self._tracked.get(key)
            if tracked is None:
                return None
            tracked.venue_id = venue.id
            tracked.status = venue.status
            tracked.filled = max(tracked.filled, venue.filled_qty)
            self._by_venue[venue.id] = key
            if venue.legs:
                tracked.bracket = True
            for leg in venue.legs:
                self._track_leg(tracked, leg)
            return key

    def _track_leg(self, parent: Tracked, leg: VenueOrder) -> None:
        suffix = LEG_SUFFIX.get(leg.type)
        if suffix is None:
            return
        key = f"{parent.key}-{suffix}"
        tracked = self._tracked.get(key)
        if tracked is None:
            side = Side.SELL if parent.order.side is Side.BUY else Side.BUY
            level = leg.stop_price if suffix == "sl" else leg.limit_price
            level = level or (parent.order.stop_loss if suffix == "sl"
                              else parent.order.take_profit)
            try:
                order = Order(client_order_id=key, symbol=parent.order.symbol, side=side,
                              quantity=max(leg.qty, parent.order.quantity, 1.0),
                              order_type=OrderType.STOP if suffix == "sl" else OrderType.LIMIT,
                              ts_created=parent.order.ts_created,
                              stop_price=level if suffix == "sl" else None,
                              limit_price=level if suffix == "tp" else None,
                              reason=LEG_REASON[suffix], expected_price=level,
                              parent_id=parent.key, oco_group=parent.key)
            except InvalidValue:
                return
            tracked = self._tracked[key] = Tracked(key, order, leg.status, leg.id,
                                                   leg.filled_qty, parent=parent.key,
                                                   ours=parent.ours)
            if key not in parent.legs:
                parent.legs.append(key)
        tracked.venue_id = leg.id
        if not (tracked.status == "new" and leg.status == "held"):
            tracked.status = leg.status  # a leg we activated on the entry's fill stays active
        tracked.filled = max(tracked.filled, leg.filled_qty)
        self._by_venue[leg.id] = key

    def _activate_legs(self, parent: Tracked) -> None:
        for key in parent.legs:
            leg = self._tracked.get(key)
            if leg is not None and leg.status == "held":
                leg.status = "new"

    def track_foreign(self, venue: VenueOrder) -> str:
        """Mirror an open order this bot did not place (its stops protect shares too)."""
        key = f"ext-{venue.client_order_id or venue.id}"
        with self._lock:
            tracked = self._tracked.get(key)
            if tracked is None:
                side = Side(venue.side)
                kind = {"stop": OrderType.STOP, "limit": OrderType.LIMIT}.get(
                    venue.type, OrderType.MARKET)
                order = Order(client_order_id=key, symbol=venue.symbol, side=side,
                              quantity=max(venue.qty, EPSILON), order_type=kind,
                              ts_created=venue.updated_ns or 0, stop_price=venue.stop_price,
                              limit_price=venue.limit_price, reason="external",
                              expected_price=venue.stop_price or venue.limit_price)
                tracked = self._tracked[key] = Tracked(key, order, venue.status, venue.id,
                                                       venue.filled_qty, ours=False)
            tracked.status = venue.status
            tracked.filled = venue.filled_qty
            self._by_venue[venue.id] = key
        return key

    # -- fills: the watermark ------------------------------------------------------------------
    def _fill(self, key: str, cumulative: float, price: float, ts: int, execution: str,
              *, event_qty: float | None = None, cumulative_value: float | None = None
              ) -> Fill | None:
        """What of ``key`` is filled beyond what was handed over, as one ``Fill`` (or None).
        Call with the lock held."""
        tracked = self._tracked.get(key)
        if tracked is None:
            return None
        handed_qty, handed_value = self._handed.get(key, (0.0, 0.0))
        quantity = cumulative - handed_qty
        if quantity <= EPSILON:
            self.stats["fills_already_booked"] += 1
            return None
        if cumulative_value is not None:
            fill_price = (cumulative_value - handed_value) / quantity
            if not (fill_price > 0 and math.isfinite(fill_price)):
                fill_price = price
        else:
            fill_price = price
            if event_qty is not None and abs(event_qty - quantity) > EPSILON:
                self.stats["fills_partly_polled"] += 1
        self._handed[key] = (cumulative, handed_value + quantity * fill_price)
        order = tracked.order
        if tracked.parent is None:
            remaining = max(0.0, order.quantity - cumulative)
            expected = order.expected_price or fill_price
            reference = expected if order.order_type is OrderType.MARKET else (
                order.limit_price or order.stop_price or expected)
        else:
            remaining = self._remaining(tracked)
            expected = reference = order.expected_price or fill_price
        self.generation[order.symbol] += 1
        return Fill(client_order_id=key, symbol=order.symbol, side=order.side,
                    quantity=quantity, price=fill_price, fee=self._fee(order.side, quantity,
                                                                        fill_price),
                    ts_event=ts, expected_price=expected, reason=order.reason,
                    remaining=remaining, reference_price=reference, execution_id=execution,
                    liquidity_note="alpaca")

    def _fee(self, side: Side, quantity: float, price: float) -> float:
        fee = self.execution.commission_per_share * quantity
        if side is Side.SELL:
            fee += self.execution.sell_fee_bps * 1e-4 * price * quantity
        return fee

    def mark_booked(self, key: str, qty: float, value: float) -> None:
        """Core thread: the engine is about to book this much of ``key`` (in its snapshot)."""
        booked = self._booked.get(key, (0.0, 0.0))
        if qty > booked[0]:
            self._booked[key] = (qty, value)
            self._booked.move_to_end(key)
            while len(self._booked) > _BOOKED_KEPT:
                self._booked.popitem(last=False)

    def in_flight(self, symbol: str) -> bool:
        """Fills of ``symbol`` handed over and not yet booked by the engine."""
        with self._lock:
            for key, (qty, _value) in self._handed.items():
                tracked = self._tracked.get(key)
                if tracked is not None and tracked.order.symbol == symbol and \
                        qty > self._booked.get(key, (0.0, 0.0))[0] + EPSILON:
                    return True
        return False

    def _hand(self, fills: list[Fill]) -> None:
        """Give fills to the engine through the live bot (from a non-core thread)."""
        if not fills or self._bot is None:
            return
        marks = [(f.client_order_id, *self._handed[f.client_order_id]) for f in fills]

        def before() -> None:
            for key, qty, value in marks:
                self.mark_booked(key, qty, value)

        self.stats["fills"] += len(fills)
        self._bot.on_broker_fills(fills, before)

    def hand_now(self, engine: Any, fills: list[Fill]) -> None:
        """Core thread: book fills at once (reconciliation)."""
        if not fills:
            return
        for fill in fills:
            qty, value = self._handed[fill.client_order_id]
            self.mark_booked(fill.client_order_id, qty, value)
        self.stats["fills"] += len(fills)
        engine.on_broker_fills(fills)

    def fills_from_venue(self, venue: VenueOrder, key: str, ts: int) -> list[Fill]:
        """Fills a venue order (and its legs) holds beyond the watermark (REST view)."""
        out = []
        with self._lock:
            fill = self._fill(key, venue.filled_qty, venue.filled_avg_price or 0.0,
                              venue.filled_ns or venue.updated_ns or ts,
                              f"rest:{venue.id}:{venue.filled_qty:g}",
                              cumulative_value=venue.filled_value)
            if fill is not None:
                out.append(fill)
            parent = self._tracked.get(key)
            for leg in venue.legs:
                leg_key = self._by_venue.get(leg.id)
                if leg_key is None or leg.filled_qty <= EPSILON:
                    continue
                if parent is not None:
                    self._activate_legs(parent)
                fill = self._fill(leg_key, leg.filled_qty, leg.filled_avg_price or 0.0,
                                  leg.filled_ns or leg.updated_ns or ts,
                                  f"rest:{leg.id}:{leg.filled_qty:g}",
                                  cumulative_value=leg.filled_value)
                if fill is not None:
                    out.append(fill)
        return out

    # -- orders the venue ended -----------------------------------------------------------------
    def _tell_ended(self, key: str, status: str, reason: str) -> None:
        if self._bot is not None:
            self._bot.on_order_ended(key, status, reason)

    def ended(self, key: str, status: str, reason: str) -> tuple[str, str, str] | None:
        """An order left the venue's book without filling (all of it): forget it, and return
        what the engine must be told, if anything (None: we asked for it, or one-cancels-other
        took a leg whose sibling filled)."""
        with self._lock:
            tracked = self._tracked.get(key)
            if tracked is None or not tracked.ours:
                if tracked is not None:
                    tracked.status = status
                return None
            tracked.status = status
            if tracked.cancel_requested:
                return None
            if tracked.parent is not None:
                parent = self._tracked.get(tracked.parent)
                siblings = [self._tracked[k] for k in (parent.legs if parent else [])
                            if k in self._tracked and k != key]
                if status == "canceled" and (any(s.filled > EPSILON for s in siblings)
                                             or any(s.cancel_requested for s in siblings)):
                    return None
                if status == "canceled" and parent is not None and parent.cancel_requested \
                        and parent.filled <= EPSILON:
                    return None
        self.stats[f"ended_{status}"] += 1
        return key, status, reason

    # -- trade updates (the stream's loop thread: bookkeeping only, no I/O) ----------------------
    async def _on_trade_update(self, message: Any) -> None:
        try:
            self.on_trade_update(message)
        except Exception as exc:  # noqa: BLE001 - one odd update must not stop the stream
            self.stats["bad_updates"] += 1
            log.warning("alpaca broker: trade update not understood (%s: %s)",
                        type(exc).__name__, exc)
            self.request_reconcile()

    def on_trade_update(self, message: Any) -> None:
        data = message.get("data", message) if isinstance(message, dict) else None
        if not isinstance(data, dict) or "order" not in data:
            return
        event = str(data.get("event") or "")
        venue = VenueOrder.parse(data["order"])
        ts = optional_ns(data.get("timestamp")) or venue.updated_ns or 0
        self.stats[f"event_{event}"] += 1
        with self._lock:
            key = self.track_venue_order(venue)
            if key is None:
                if venue.symbol in self.symbols and venue.client_order_id.startswith(
                        self.prefix or "\0"):
                    self.request_reconcile()  # ours but not mirrored yet: ask the venue
                elif event in ("fill", "partial_fill") and venue.symbol in self.symbols:
                    self.request_reconcile()  # someone else's order moved our position
                return
            tracked = self._tracked[key]
            fills: list[Fill] = []
            if event in ("fill", "partial_fill"):
                if tracked.bracket:
                    self._activate_legs(tracked)
                price = float(data.get("price") or venue.filled_avg_price or 0.0)
                qty = data.get("qty")
                execution = str(data.get("execution_id") or f"{venue.id}:{venue.filled_qty:g}")
                fill = self._fill(key, venue.filled_qty, price, ts, execution,
                                  event_qty=None if qty is None else float(qty))
                if fill is not None:
                    fills.append(fill)
            ended = None
            if event in ("canceled", "expired", "rejected", "done_for_day", "stopped",
                         "suspended") or (venue.status in TERMINAL and venue.status != "filled"
                                          and event not in ("fill", "partial_fill")):
                ended = self.ended(key, venue.status or event, f"{event} at the venue")
        self._hand(fills)
        if ended is not None:
            self._tell_ended(*ended)

    # -- the service: start, worker, stream, poller ---------------------------------------------
    def start(self, bot: LiveBot) -> None:
        """Check the account, reconcile with the venue (on the core thread, before any order),
        then start the worker, the trade-updates stream and the poller."""
        from gnosis.adapters.alpaca.reconcile import Reconciler

        self._bot = bot
        engine = bot.engine
        if self._journal is None:
            store = engine.store
            self._journal = OrderJournal(None if store is None else store.directory,
                                         fresh=self._fresh_journal)
        self.prefix = f"gn-{engine.run_id}-"
        account = rest.call("read the paper account", self.client.get_account)
        status = str(account.get("status", "")) if isinstance(account, dict) else ""
        engine.note(f"trading at Alpaca ({self.settings.venue}): account "
                    f"{account.get('account_number', '?')} {status}, equity "
                    f"{account.get('equity', '?')}; orders go as brackets (GTC)")
        self.reconciler = Reconciler(self)
        self.reconciler.run_now(engine, "start")
        worker = threading.Thread(target=self._work, name="gnosis-alpaca-orders", daemon=True)
        poller = threading.Thread(target=self._poll, name="gnosis-alpaca-poll", daemon=True)
        self._threads = [worker, poller]
        for thread in self._threads:
            thread.start()
        key, secret = self.settings.stream_keys()
        self._stream = HookedTradingStream(
            key, secret, paper=True, raw_data=True,
            url_override=self.settings.trading_stream_url(),
            on_connect=self._stream_connected, on_failure=self._stream_failed)
        self._stream.subscribe_trade_updates(self._on_trade_update)
        self._loop = StreamThread("gnosis-alpaca-trades").start()
        self._loop.run_stream(self._stream)

    def stop(self) -> None:
        self._stop.set()
        self._reconcile_wanted.set()  # wakes the poller at once
        self._commands.put(("stop", ""))
        if self._loop is not None:
            self._loop.stop()
        for thread in self._threads:
            thread.join(15)
        self.journal.close()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def request_reconcile(self) -> None:
        self._reconcile_wanted.set()

    def _stream_connected(self) -> None:
        self._stream_connections += 1
        if self._stream_connections > 1:
            self.stats["stream_reconnects"] += 1
            if self._bot is not None:
                self._bot.notify("trade updates stream reconnected: reconciling with Alpaca")
        self.request_reconcile()  # updates sent while we were not listening are lost

    def _stream_failed(self, exc: Exception) -> None:
        self.stats["stream_failures"] += 1
        if self._bot is None:
            return
        if is_fatal(exc):
            self._bot.fail(f"trade updates stream: {failure_reason(exc)}; check "
                           "ALPACA_API_KEY / ALPACA_SECRET_KEY")
        else:
            self._bot.notify(f"trade updates stream: {failure_reason(exc)}")

    def _poll(self) -> None:
        """Reconcile when asked (a reconnect); otherwise look at open orders every
        ``poll_s`` seconds, so a missed trade update is found without the stream."""
        while not self._stop.is_set():
            asked = self._reconcile_wanted.wait(self.poll_s)
            if self._stop.is_set():
                return
            try:
                if asked:
                    self._reconcile_wanted.clear()
                    self.reconciler.run_later(self._bot)
                else:
                    self.reconciler.poll(self._bot)
            except AlpacaAuthError as exc:
                if self._bot is not None:
                    self._bot.fail(str(exc))
                return
            except Exception as exc:  # noqa: BLE001 - polling is retried on the next round
                self.stats["poll_errors"] += 1
                log.warning("alpaca broker: poll failed: %s", rest.message_of(exc))

    # -- the worker: every REST command, in order -------------------------------------------------
    def _work(self) -> None:
        while True:
            command, key = self._commands.get()
            if command == "stop":
                return
            try:
                if command == "submit":
                    self._place(key)
                elif command == "cancel":
                    self._cancel_at_venue(key)
            except AlpacaAuthError as exc:
                if self._bot is not None:
                    self._bot.fail(str(exc))
            except Exception as exc:  # noqa: BLE001 - one failed command must not stop the rest
                self.stats["worker_errors"] += 1
                log.warning("alpaca broker: %s %s failed: %s", command, key, exc)
                if self._bot is not None:
                    self._bot.notify(f"order {key}: {command} failed: "
                                     f"{type(exc).__name__}: {rest.message_of(exc)}")

    def _request(self, order: Order) -> Any:
        from alpaca.trading.enums import OrderClass, OrderSide, TimeInForce
        from alpaca.trading.requests import (
            MarketOrderRequest,
            StopLossRequest,
            TakeProfitRequest,
        )

        bracket: dict[str, Any] = {}
        if order.stop_loss is not None and order.take_profit is not None:
            bracket = {"order_class": OrderClass.BRACKET,
                       "take_profit": TakeProfitRequest(
                           limit_price=round_price(order.take_profit)),
                       "stop_loss": StopLossRequest(stop_price=round_price(order.stop_loss))}
        return MarketOrderRequest(symbol=order.symbol, qty=order.quantity,
                                  side=OrderSide(order.side.value),
                                  time_in_force=TimeInForce.GTC,
                                  client_order_id=order.client_order_id, **bracket)

    def _lookup(self, client_order_id: str) -> VenueOrder | None:
        """The venue's order with this client order id, or None when it has none."""
        try:
            raw = rest.call("look an order up", self.client.get_order_by_client_id,
                            client_order_id)
        except APIError as exc:
            if rest.status_of(exc) == 404:
                return None
            raise
        return VenueOrder.parse(raw)

    def _place(self, key: str) -> None:
        with self._lock:
            tracked = self._tracked.get(key)
        if tracked is None:
            return
        order = tracked.order
        if tracked.cancel_requested:  # canceled before it ever left: do not send it
            self.journal.mark(key, "unplaced", detail="canceled before it was sent")
            with self._lock:
                tracked.status = "canceled"
            return
        try:
            venue = self._send(key, order)
        except AlpacaAuthError:
            raise
        except AlpacaError as exc:  # the venue stayed unreachable: say so, never guess
            self._refused(key, None, str(exc))
            return
        if venue is None:
            return
        self.journal.mark(key, "placed", venue_id=venue.id)
        self.stats["placed"] += 1
        with self._lock:
            self.track_venue_order(venue, key)

    def _send(self, key: str, order: Order) -> VenueOrder | None:
        """POST the order until the venue has it (the order) or refuses it (None)."""
        request = self._request(order)
        venue: VenueOrder | None = None
        delay = rest.BASE_DELAY_S
        for attempt in range(1, 5):
            try:
                venue = VenueOrder.parse(self.client.submit_order(request))
                break
            except (APIError, requests.RequestException) as exc:
                status, message = rest.status_of(exc), rest.message_of(exc)
            if status == 401:
                raise AlpacaAuthError(f"Alpaca rejected the API key while placing {key} "
                                      f"(HTTP 401: {message})")
            if status == 422 and "client_order_id" in message.lower():
                self.stats["duplicate_answers"] += 1
                venue = self._lookup(key)  # "already placed": fetch it by its client id
                if venue is not None:
                    break
            elif (status == 403 and "insufficient qty" in message.lower() and attempt < 4
                  and self._settle_leg_cancels(order.symbol)):
                continue
            elif status is None or status in rest.TRANSIENT:
                venue = self._lookup(key)  # it may have gone through before the error
                if venue is not None:
                    break
                if attempt < 4:
                    self.stats["submit_retries"] += 1
                    self.wall.sleep(delay)
                    delay *= 2
                    continue
                where = f"HTTP {status}" if status else "no connection"
                self._refused(key, None, f"the venue did not answer after {attempt} attempts "
                              f"({where}: {message})")
                return None
            self._refused(key, status, message)
            return None
        if venue is None:
            self._refused(key, None, "the venue did not answer")
        return venue

    def _refused(self, key: str, status: int | None, message: str) -> None:
        self.stats["refused"] += 1
        self.journal.mark(key, "refused" if status else "unplaced",
                          detail=f"HTTP {status}: {message}" if status else message)
        with self._lock:
            tracked = self._tracked.get(key)
            if tracked is not None:
                tracked.status = "rejected"
                asked = tracked.cancel_requested
            else:
                asked = True
        if not asked:
            self._tell_ended(key, "rejected", f"refused by Alpaca ({message})")

    def _settle_leg_cancels(self, symbol: str) -> bool:
        """Wait until the legs we asked to cancel on ``symbol`` are closed at the venue."""
        with self._lock:
            pending = [t.venue_id for t in self._tracked.values()
                       if t.order.symbol == symbol and t.parent is not None
                       and t.cancel_requested and t.venue_id]
        if not pending:
            return False
        for _ in range(_SETTLE_TRIES):
            still = []
            for venue_id in pending:
                with contextlib.suppress(APIError, AlpacaError):
                    order = VenueOrder.parse(rest.call("read an order",
                                                       self.client.get_order_by_id, venue_id))
                    if order.is_open:
                        still.append(venue_id)
            if not still:
                return True
            pending = still
            self.wall.sleep(_SETTLE_WAIT_S)
        return True

    def _cancel_at_venue(self, key: str) -> None:
        with self._lock:
            tracked = self._tracked.get(key)
            venue_id = None if tracked is None else tracked.venue_id
        if venue_id is None:
            return  # never placed (its submit failed or has not run: it will not be sent)
        try:
            rest.call("cancel an order", self.client.cancel_order_by_id, venue_id)
            self.stats["cancels"] += 1
        except APIError as exc:
            if rest.status_of(exc) in (404, 422):  # already filled, canceled or gone
                self.stats["cancel_too_late"] += 1
                return
            raise

    # -- what tests and the console look at -------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"stats": dict(self.stats), "working": len(self.working()),
                    "tracked": len(self._tracked)}

    def forget(self, key: str) -> None:
        """Drop a finished order (and its legs) from the mirror."""
        with self._lock:
            tracked = self._tracked.pop(key, None)
            if tracked is None:
                return
            if tracked.venue_id:
                self._by_venue.pop(tracked.venue_id, None)
            for leg_key in tracked.legs:
                leg = self._tracked.pop(leg_key, None)
                if leg is not None and leg.venue_id:
                    self._by_venue.pop(leg.venue_id, None)
