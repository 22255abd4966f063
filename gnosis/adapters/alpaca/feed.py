"""``AlpacaFeed``: live minute bars from alpaca-py's ``StockDataStream``, made whole.

Threads: the SDK's stream runs in its own event loop (``StreamThread``); its handlers only put
raw messages on a queue. One sequencer thread takes them from there and does everything else:
validation (bad records quarantined and counted), ordering, backfill from historical bars
(``StockHistoricalDataClient``, REST, never on the core thread), the watchdog and the market
clock. What comes out goes to the live bot's queue in order, each bar exactly once.

Rules, by the data's habits:
- Bars are keyed by (symbol, minute start). A bar at or before the last one delivered for its
  symbol is a duplicate (or stale) and is dropped and counted; nothing is ever delivered twice.
- IEX has no bar for a minute without trades: a gap is normal, not an error.
- The bars of one minute are released together, in symbol order (as a backtest replays them),
  once every symbol's bar has arrived, a later minute begins, or ``minute_grace_s`` passes.
- After every (re)connection, including the first, the minutes missed since the last
  delivered bar are fetched from history and delivered before any newer live bar. Backfilled
  bars whose close is more than ``stale_after_s`` (venue time) old are marked as history when
  orders go to Alpaca: the engine folds them in without trading (an order decided on a bar
  minutes old would trade on a price that is gone). A dry run (SimBroker) trades on them, so a
  dry run with reconnects decides exactly as an uninterrupted one.
- Watchdog: no bar for ``watchdog_s`` seconds while the venue says the market is open means a
  mute stream; its socket is closed and the SDK reconnects (then the backfill runs).
- Late ``updatedBars`` (late trades revise a minute ~30 s later): a revision of a minute not yet
  released replaces it; a revision of a minute already delivered is counted and journaled as a
  notice and never replayed: decisions are not rewritten after the fact.
- Bars outside regular sessions (by the exchange calendar) are dropped and counted.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gnosis.adapters.alpaca import rest
from gnosis.adapters.alpaca.calendar import MarketCalendar, VenueClock, new_york
from gnosis.adapters.alpaca.convert import bar_from_raw
from gnosis.adapters.alpaca.settings import AlpacaSettings
from gnosis.adapters.alpaca.streams import (
    HookedStockStream,
    StreamThread,
    failure_reason,
    is_fatal,
)
from gnosis.core.clock import LiveClock
from gnosis.data.quarantine import Quarantine
from gnosis.model.types import NANOS_PER_SECOND, Bar, format_ns, ns_to_datetime
from gnosis.trading.live_bot import HistoryBar

log = logging.getLogger(__name__)
_TICK_S = 0.05
_NOTICE_EVERY = 50  # late corrections: a notice for the first and then every n-th


@dataclass(slots=True)
class BarSequencer:
    """Per-symbol order and de-duplication, minute barriers and backfill merging (no I/O)."""

    symbols: tuple[str, ...]
    interval_s: int = 60
    grace_ns: int = 3 * NANOS_PER_SECOND
    last_ts: dict[str, int] = field(default_factory=dict)
    stats: Counter[str] = field(default_factory=Counter)
    _pending: dict[str, Bar] = field(default_factory=dict)
    _pending_ts: int | None = None
    _pending_since: int = 0
    suspect: set[str] = field(default_factory=set)

    @property
    def interval_ns(self) -> int:
        return self.interval_s * NANOS_PER_SECOND

    def _fresh(self, bar: Bar) -> bool:
        last = self.last_ts.get(bar.symbol)
        if last is not None and bar.ts_event <= last:
            self.stats["duplicate" if bar.ts_event == last else "stale"] += 1
            return False
        return True

    def needs_gap_fill(self, bar: Bar) -> bool:
        """A live bar after a reconnect that leaves minutes open behind it: ask history once."""
        if bar.symbol not in self.suspect:
            return False
        last = self.last_ts.get(bar.symbol)
        if last is None or bar.ts_event <= last + self.interval_ns:
            self.suspect.discard(bar.symbol)
            return False
        return True

    def live(self, bar: Bar, now_mono: int) -> list[Bar]:
        """Take a live bar; return the bars that can go out now, in order."""
        if not self._fresh(bar):
            return []
        self.suspect.discard(bar.symbol)
        out: list[Bar] = []
        if self._pending_ts is not None and bar.ts_event > self._pending_ts:
            out += self._release()
        if self._pending_ts is not None and bar.ts_event < self._pending_ts:
            out.append(self._deliver(bar))  # a laggard of an earlier minute: still in order
            return out
        if self._pending_ts is None:
            self._pending_ts, self._pending_since = bar.ts_event, now_mono
        if bar.symbol in self._pending:
            self.stats["duplicate"] += 1
            return out
        self._pending[bar.symbol] = bar
        if len(self._pending) == len(self.symbols):
            out += self._release()
        return out

    def due(self, now_mono: int) -> list[Bar]:
        """Release a minute some symbol has no bar for (an IEX gap) once the grace is over."""
        if self._pending_ts is not None and now_mono - self._pending_since >= self.grace_ns:
            return self._release()
        return []

    def revise(self, bar: Bar) -> str:
        """An updated bar: ``"pending"`` (replaced before use), ``"used"`` (already delivered:
        not replayed) or ``"new"`` (a minute never seen: treat it as a live bar)."""
        if self._pending_ts == bar.ts_event and bar.symbol in self._pending:
            self._pending[bar.symbol] = bar
            return "pending"
        last = self.last_ts.get(bar.symbol)
        if last is not None and bar.ts_event <= last:
            return "used"
        return "new"

    def history(self, bars: Iterable[Bar], fold_before: int | None) -> list[tuple[Bar, bool]]:
        """Merge backfilled bars with the pending minute; return (bar, trade on it) in
        (time, symbol) order. A live bar wins over the history bar of the same minute."""
        merged: dict[tuple[str, int], Bar] = {}
        for bar in bars:
            if self._fresh(bar):
                merged[(bar.symbol, bar.ts_event)] = bar
        backfilled = set(merged)
        for bar in self._pending.values():
            merged[(bar.symbol, bar.ts_event)] = bar
        self._pending, self._pending_ts = {}, None
        out: list[tuple[Bar, bool]] = []
        for key in sorted(merged, key=lambda k: (k[1], k[0])):
            bar = merged[key]
            if bar.ts_event <= self.last_ts.get(bar.symbol, -1):
                continue
            was_backfilled = key in backfilled
            stale = was_backfilled and fold_before is not None and bar.ts_close < fold_before
            self.stats["backfilled" if was_backfilled else "live"] += 1
            out.append((self._deliver(bar, count=False), not stale))
        return out

    def _release(self) -> list[Bar]:
        ready = [self._pending[s] for s in sorted(self._pending)]
        self._pending, self._pending_ts = {}, None
        return [self._deliver(bar) for bar in ready]

    def _deliver(self, bar: Bar, count: bool = True) -> Bar:
        self.last_ts[bar.symbol] = bar.ts_event
        if count:
            self.stats["live"] += 1
        return bar


Sink = Callable[[Bar | HistoryBar], None]


class AlpacaFeed:
    """Live bars of ``symbols`` from Alpaca (see the module docstring for the rules)."""

    is_live = True

    def __init__(self, settings: AlpacaSettings, symbols: tuple[str, ...], *,
                 clock: VenueClock, warmup_days: int = 3, fold_stale: bool = False,
                 interval_s: int = 60, calendar: MarketCalendar | None = None,
                 data_client: Any = None, wall: LiveClock | None = None,
                 record: int = 0) -> None:
        tuning = settings.tuning
        self.settings = settings
        self.symbols = tuple(symbols)
        self.clock = clock
        self.warmup_days = warmup_days
        self.fold_stale = fold_stale
        self.interval_s = interval_s
        self.calendar = calendar or MarketCalendar()
        self.data = data_client or settings.stock_data_client(raw=True)
        self.wall = wall or LiveClock()
        self.watchdog_s = tuning.watchdog_s
        self.clock_poll_s = tuning.clock_poll_s
        self.stale_after_ns = int(tuning.stale_after_s * NANOS_PER_SECOND)
        self.sequencer = BarSequencer(self.symbols, interval_s,
                                      int(tuning.minute_grace_s * NANOS_PER_SECOND))
        self.quarantine = Quarantine()
        self.stats: Counter[str] = self.sequencer.stats
        self.delivered: deque[tuple[str, int, bool]] = deque(maxlen=record or 1)
        self._record = record > 0
        self.reconnect_times_s: list[float] = []
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._sink: Sink | None = None
        self._notify: Callable[[str], None] = lambda message: None
        self._fail: Callable[[str], None] = lambda message: None
        self._on_reconnect: list[Callable[[], None]] = []
        self._loop: StreamThread | None = None
        self._stream: Any = None
        self._thread: threading.Thread | None = None
        self._last_bar_mono = 0
        self._last_clock_mono = 0
        self._market_open: bool | None = None
        self._connections = 0
        self._corrections = 0
        self._disconnected_mono: int | None = None
        self._catch_up_owed = False  # a (re)connection whose backfill has not run yet
        self._catch_up_tried = 0
        self._held: list[tuple[str, Any]] = []

    # -- the bot's side ----------------------------------------------------------------------
    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the feed's thread) after every reconnection but the first."""
        self._on_reconnect.append(callback)

    def history(self) -> Iterator[Bar]:
        """Warm-up bars: the last ``warmup_days`` sessions before the venue's current one and
        the current one so far, in (time, symbol) order (REST; called once at start)."""
        if self.warmup_days <= 0:
            return iter(())
        now = self.clock.read().now_ns
        start = self.calendar.sessions_back(now, self.warmup_days)
        return iter(self.fetch(start, now))

    def start(self, sink: Sink, resume_after: dict[str, int], *,
              notify: Callable[[str], None] | None = None,
              fail: Callable[[str], None] | None = None) -> None:
        """Start streaming; bars after ``resume_after[symbol]`` go to ``sink`` in order."""
        self._sink = sink
        self._notify = notify or self._notify
        self._fail = fail or self._fail
        for symbol, ts in resume_after.items():
            if symbol in self.symbols:
                self.sequencer.last_ts[symbol] = max(ts, self.sequencer.last_ts.get(symbol, ts))
        key, secret = self.settings.stream_keys()
        self._stream = HookedStockStream(
            key, secret, raw_data=True, url_override=self.settings.stock_stream_url(),
            feed=_data_feed(self.settings.tuning.data_feed),
            on_connect=lambda: self._inbox.put(("connected", None)),
            on_failure=lambda exc: self._inbox.put(("failure", exc)))
        self._stream.subscribe_bars(self._on_bar, *self.symbols)
        self._stream.subscribe_updated_bars(self._on_updated_bar, *self.symbols)
        self._last_bar_mono = self.wall.monotonic_ns()
        self._thread = threading.Thread(target=self._sequence, name="gnosis-alpaca-feed",
                                        daemon=True)
        self._thread.start()
        self._loop = StreamThread("gnosis-alpaca-bars").start()
        self._loop.run_stream(self._stream)

    def stop(self) -> None:
        self._stop.set()
        if self._loop is not None:
            self._loop.stop()
        if self._thread is not None:
            self._thread.join(10)

    # -- SDK handlers: short, they only hand the message over ------------------------------
    async def _on_bar(self, message: Any) -> None:
        self._inbox.put(("bar", (message, self.wall.now_ns())))

    async def _on_updated_bar(self, message: Any) -> None:
        self._inbox.put(("updated", (message, self.wall.now_ns())))

    # -- the sequencer thread ---------------------------------------------------------------
    def _sequence(self) -> None:
        while not self._stop.is_set():
            try:
                kind, payload = self._inbox.get(timeout=_TICK_S)
            except queue.Empty:
                kind, payload = "tick", None
            try:
                self._handle(kind, payload)
                self._emit(self.sequencer.due(self.wall.monotonic_ns()))
                self._watch()
            except Exception as exc:  # noqa: BLE001 - the feed must outlive any one mishap
                self.stats["errors"] += 1
                log.warning("alpaca feed: %s: %s", type(exc).__name__, exc)
                self._notify(f"market data: {type(exc).__name__}: {rest.message_of(exc)}")

    def _handle(self, kind: str, payload: Any) -> None:
        if kind in ("bar", "updated") and self._catch_up_owed:
            self._held.append((kind, payload))  # newer than the gap: after the backfill
            if kind == "bar":
                self._last_bar_mono = self.wall.monotonic_ns()
            return
        if kind == "bar":
            self._last_bar_mono = self.wall.monotonic_ns()
            bar = self._bar(payload)
            if bar is not None:
                if self.sequencer.needs_gap_fill(bar):
                    self._fill_gap(bar)
                self._emit(self.sequencer.live(bar, self.wall.monotonic_ns()))
        elif kind == "updated":
            self._revise(payload)
        elif kind == "connected":
            self._connections += 1
            self._catch_up_owed, self._catch_up_tried = True, 0
        elif kind == "failure":
            self._failed(payload)
        if self._catch_up_owed:
            self._try_catch_up()

    def _bar(self, payload: tuple[Any, int]) -> Bar | None:
        message, received = payload
        symbol = message.get("S") if hasattr(message, "get") else None
        if symbol not in self.symbols:
            self.quarantine.counts["unknown_symbol"] += 1
            return None
        bar = bar_from_raw(symbol, message, self.quarantine, self.interval_s, received)
        if bar is not None and not self.calendar.in_session(bar.ts_event, self.interval_s):
            self.stats["outside_session"] += 1
            return None
        return bar

    def _emit(self, bars: Iterable[Bar]) -> None:
        for bar in bars:
            self._put(bar, traded=True)

    def _put(self, bar: Bar, traded: bool) -> None:
        if self._record:
            self.delivered.append((bar.symbol, bar.ts_event, traded))
        if self._sink is not None:
            self._sink(bar if traded else HistoryBar(bar))

    def _revise(self, message: Any) -> None:
        bar = self._bar(message)
        if bar is None:
            return
        outcome = self.sequencer.revise(bar)
        self.stats[f"updated_{outcome}"] += 1
        if outcome == "new":
            self._emit(self.sequencer.live(bar, self.wall.monotonic_ns()))
        elif outcome == "used":
            self._corrections += 1
            if self._corrections == 1 or self._corrections % _NOTICE_EVERY == 0:
                self._notify(
                    f"late correction of {bar.symbol} {format_ns(bar.ts_event)} (updated bar: "
                    f"close {bar.close:g}, volume {bar.volume:g}) after the engine had it: not "
                    f"replayed, decisions are never rewritten ({self._corrections} so far)")

    def _try_catch_up(self) -> None:
        """Backfill after a (re)connection; if history cannot be read now, hold the live bars
        and try again a second later (delivering them first would lose the gap for good)."""
        now = self.wall.monotonic_ns()
        if now - self._catch_up_tried < NANOS_PER_SECOND:
            return
        self._catch_up_tried = now
        try:
            self._connected()
        except Exception as exc:  # noqa: BLE001 - retried; the live bars wait meanwhile
            self.stats["backfill_errors"] += 1
            if self.stats["backfill_errors"] == 1 or self.stats["backfill_errors"] % 30 == 0:
                self._notify(f"market data: backfill failed ({rest.message_of(exc)}); live "
                             "bars wait until it succeeds")
            return
        self._catch_up_owed = False
        held, self._held = self._held, []
        for kind, payload in held:
            self._handle(kind, payload)

    def _connected(self) -> None:
        began = self.wall.monotonic_ns()
        first = self._connections == 1
        delivered = self._catch_up()
        took = (self.wall.monotonic_ns() - began) / 1e9
        if not first:
            self.stats["reconnects"] += 1
            down = ((began - self._disconnected_mono) / 1e9
                    if self._disconnected_mono is not None else None)
            self.reconnect_times_s.append(took)
            self._notify(
                f"market data stream reconnected; backfilled {delivered} missed bar(s) in "
                f"{took:.2f} s" + (f" after {down:.1f} s without data" if down else ""))
            for callback in self._on_reconnect:
                callback()
        self._disconnected_mono = None

    def _failed(self, exc: Exception) -> None:
        reason = failure_reason(exc)
        self.stats["connect_failures"] += 1
        if "406" in reason:
            self.stats["refused_406"] += 1
        if self._disconnected_mono is None:
            self._disconnected_mono = self.wall.monotonic_ns()
        if is_fatal(exc):
            self._fail(f"market data stream: {reason}; check ALPACA_API_KEY / "
                       f"ALPACA_SECRET_KEY and GNOSIS_ALPACA__DATA_FEED")
            self._stop.set()
        else:
            self._notify(f"market data stream: {reason}")

    def _catch_up(self) -> int:
        """Deliver what history holds after the last bar of each symbol, up to the venue's
        now; returns how many bars went out."""
        now = self.clock.read().now_ns
        floor = self.calendar.sessions_back(now, max(self.warmup_days, 0))
        known = [self.sequencer.last_ts[s] for s in self.symbols if s in self.sequencer.last_ts]
        start = floor
        if len(known) == len(self.symbols):
            start = max(floor, min(known) + self.sequencer.interval_ns)
        bars = self.fetch(start, now) if start < now else []
        fold_before = now - self.stale_after_ns if self.fold_stale else None
        out = self.sequencer.history(bars, fold_before)
        for bar, traded in out:
            self._put(bar, traded)
        self.sequencer.suspect.update(self.symbols)
        return len(out)

    def _fill_gap(self, bar: Bar) -> None:
        last = self.sequencer.last_ts[bar.symbol]
        self.stats["gap_queries"] += 1
        bars = [b for b in self.fetch(last + self.sequencer.interval_ns, bar.ts_event)
                if b.symbol == bar.symbol and b.ts_event < bar.ts_event]
        self.sequencer.suspect.discard(bar.symbol)
        for history_bar, traded in self.sequencer.history(bars, None):
            self._put(history_bar, traded)

    def fetch(self, start_ns: int, end_ns: int) -> list[Bar]:
        """Closed regular-session minute bars of every symbol with ``start <= t`` and a close at
        or before ``end``, in (time, symbol) order."""
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame

        request = StockBarsRequest(
            symbol_or_symbols=list(self.symbols), timeframe=TimeFrame.Minute,
            start=_utc(start_ns), end=_utc(end_ns),
            feed=_data_feed(self.settings.tuning.data_feed))
        raw = rest.call("download minute bars", self.data.get_stock_bars, request)
        received = self.wall.now_ns()
        bars: list[Bar] = []
        for symbol, records in (raw or {}).items():
            if symbol not in self.symbols or not isinstance(records, list):
                continue
            for record in records:
                bar = bar_from_raw(symbol, record, self.quarantine, self.interval_s, received)
                if bar is None or bar.ts_event < start_ns or bar.ts_close > end_ns:
                    continue
                if not self.calendar.in_session(bar.ts_event, self.interval_s):
                    self.stats["outside_session"] += 1
                    continue
                bars.append(bar)
        bars.sort(key=lambda b: (b.ts_event, b.symbol))
        return bars

    # -- watchdog and clock -------------------------------------------------------------------
    def _watch(self) -> None:
        now = self.wall.monotonic_ns()
        if (now - self._last_clock_mono) / 1e9 >= self.clock_poll_s:
            self._last_clock_mono = now
            self._poll_clock()
        if not self._market_open or self._stream is None:
            return
        silent_s = (now - self._last_bar_mono) / 1e9
        if silent_s < self.watchdog_s:
            return
        self._last_bar_mono = now
        if not self._poll_clock():
            return
        self.stats["watchdog_reconnects"] += 1
        if self._disconnected_mono is None:
            self._disconnected_mono = now - int(silent_s * 1e9)
        self._notify(f"no bar for {silent_s:.0f} s while the market is open: the market data "
                     "stream is mute; reconnecting")
        if self._loop is not None:
            self._loop.reconnect(self._stream)

    def _poll_clock(self) -> bool:
        """Read the venue's clock; say when the market closes and when it will open."""
        try:
            reading = self.clock.read()
        except Exception as exc:  # noqa: BLE001 - an unanswered clock read is retried later
            self.stats["clock_errors"] += 1
            log.warning("alpaca feed: clock unavailable: %s", exc)
            return bool(self._market_open)
        if reading.is_open != self._market_open:
            if not reading.is_open:
                self._notify(reading.waiting_message())
            elif self._market_open is not None:
                self._notify(f"market open at the venue ({new_york(reading.now_ns)})")
            self._market_open = reading.is_open
        return reading.is_open

    def status(self) -> dict[str, Any]:
        return {"stats": dict(self.stats), "quarantined": dict(self.quarantine.counts),
                "last": {s: format_ns(t) for s, t in self.sequencer.last_ts.items()},
                "market_open": self._market_open}


def _utc(ts: int) -> datetime:
    return ns_to_datetime(ts)


def _data_feed(name: str) -> Any:
    from alpaca.data.enums import DataFeed

    return DataFeed(name)
