"""The exchange core: a market, a clock, an order book and the streams, stepped in time order.

``SimExchange.step()`` processes everything due up to the clock's current trading time, in
order: trades and quotes inside each minute, the bar when its minute closes (published on the
stream, then given to the order book so working orders fill), updated bars ~30 s later, news at
its publication time, and at each session close the expiry of ``day`` orders and the daily bars.
The server calls ``step()`` from one task on its event loop; REST handlers and WebSocket
sessions run on the same loop, so nothing here needs a lock.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gnosis.core.config import ExecutionConfig
from gnosis.model.market import OptionContract
from gnosis.model.types import NANOS_PER_MINUTE, NANOS_PER_SECOND, Bar, InvalidValue
from gnosis.simexchange.clock import SessionCalendar, SimClock
from gnosis.simexchange.faults import Faults, FaultSpec
from gnosis.simexchange.market import (
    INDICATIVE_DELAY_NS,
    UPDATED_BAR_DELAY_NS,
    Article,
    BarHistory,
    NewsDesk,
    ticks_for_bar,
    updated_bar,
)
from gnosis.simexchange.orders import AlpacaOrder, OrderBook, OrderRequest
from gnosis.simexchange.streams import (
    NEWS_ENDPOINT,
    Credentials,
    StreamHub,
)
from gnosis.simexchange.wire import WireError, bar_message, forbidden, name_uuid
from gnosis.trading.sim_broker import SimBroker

log = logging.getLogger(__name__)

TEST_SYMBOL = "FAKEPACA"
LIVE_ENDPOINTS = ("/v2/iex", "/v2/sip")
TEST_ENDPOINTS = ("/v2/test",)

# event priorities at the same trading instant: the bar of the minute that just closed first,
# then the session close, then what happens inside the next minute
_BAR, _SESSION_CLOSE, _UPDATED, _NEWS, _TICK, _REJECT = range(6)


class ExchangeError(ValueError):
    """Settings or inputs the exchange cannot start with; the message says why."""


@dataclass(frozen=True, slots=True)
class ExchangeSettings:
    """What ``gnosis sim-exchange`` is started with (see its ``--help``)."""

    symbols: tuple[str, ...] = ("SPY",)
    seed: int = 7
    start: str = "2024-01-02"
    days: int = 5
    history_days: int = 3  # what a bot warming up --warmup-days 3 (its default) asks for
    speed: float = 60.0
    key: str | None = None
    secret: str | None = None
    data_file: Path | None = None
    data_symbol: str | None = None
    data_tz: str | None = None  # the zone of a file's naive timestamps (replay, news, options)
    news_file: Path | None = None
    options_file: Path | None = None
    initial_cash: float = 100_000.0
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    test_stream: bool = True  # FAKEPACA on /v2/test
    outbox_limit: int = 2000
    auth_timeout_s: float = 10.0
    start_paused: bool = False

    def __post_init__(self) -> None:
        if not self.speed > 0 or not math.isfinite(self.speed):
            raise ExchangeError(f"speed must be a finite number above 0, got {self.speed}")
        if self.days < 1:
            raise ExchangeError(f"days must be at least 1, got {self.days}")
        if self.history_days < 0:
            raise ExchangeError(f"history days must be 0 or more, got {self.history_days}")
        if (self.key is None) != (self.secret is None):
            raise ExchangeError("give both --key and --secret, or neither")
        if self.key is not None and (not self.key or not self.secret):
            raise ExchangeError("--key and --secret must not be empty")


@dataclass(frozen=True, slots=True)
class _Source:
    bars: Iterator[Bar]
    symbols: tuple[str, ...]
    calendar: SessionCalendar
    start_t: int
    synthetic: Any  # the SyntheticMarket, or None on a replay file
    dropped: int = 0


def _synthetic_source(settings: ExchangeSettings) -> _Source:
    import heapq as _heapq

    from gnosis.data.synthetic import SyntheticMarket

    days = settings.history_days + settings.days
    try:
        market = SyntheticMarket(symbols=settings.symbols, seed=settings.seed,
                                 start=settings.start, days=days)
        calendar = SessionCalendar.from_start(settings.start, days)
    except InvalidValue as exc:
        raise ExchangeError(str(exc)) from None
    streams: list[Iterator[Bar]] = [market.bars()]
    if settings.test_stream and TEST_SYMBOL not in settings.symbols:
        test = SyntheticMarket(symbols=(TEST_SYMBOL,), seed=settings.seed,
                               start=settings.start, days=days)
        streams.append(test.bars())
    bars = _heapq.merge(*streams, key=lambda b: (b.ts_event, b.symbol))
    start_t = calendar.sessions[settings.history_days].start_t
    return _Source(bars, market.symbols, calendar, start_t, market)


def _replay_source(settings: ExchangeSettings) -> _Source:
    from gnosis.data.replay import ReplayError, load_bars

    assert settings.data_file is not None
    try:
        result = load_bars(settings.data_file, settings.data_symbol, tz=settings.data_tz)
    except ReplayError as exc:
        raise ExchangeError(str(exc)) from None
    bars = result.bars
    if not bars:
        raise ExchangeError(f"{settings.data_file}: no bars")
    _check_minute_bars(bars, settings.data_file)
    calendar = SessionCalendar.from_range(bars[0].ts_event, bars[-1].ts_event)
    inside = [b for b in bars if calendar.is_open(b.ts_event)]
    dropped = len(bars) - len(inside)
    if not inside:
        raise ExchangeError(f"{settings.data_file}: no bar falls inside a regular XNYS session")
    if dropped:
        log.warning("%s: %d bar(s) outside regular sessions are not replayed",
                    settings.data_file, dropped)
    history = min(settings.history_days, len(calendar.sessions) - 1)
    start_t = calendar.sessions[history].start_t
    return _Source(iter(inside), result.symbols, calendar, start_t, None, dropped)


def _check_minute_bars(bars: list[Bar], path: Path) -> None:
    gaps: dict[int, int] = {}
    last: dict[str, int] = {}
    for bar in bars:
        if bar.ts_event % NANOS_PER_MINUTE:
            raise ExchangeError(f"{path}: bar at {bar.ts_event} does not start on a minute; "
                                "sim-exchange replays 1-minute bars")
        previous = last.get(bar.symbol)
        if previous is not None:
            gap = bar.ts_event - previous
            gaps[gap] = gaps.get(gap, 0) + 1
        last[bar.symbol] = bar.ts_event
    if gaps:
        common = max(gaps, key=lambda g: gaps[g])
        if common != NANOS_PER_MINUTE:
            raise ExchangeError(f"{path}: most bars are {common // NANOS_PER_SECOND} s apart; "
                                "sim-exchange replays 1-minute bars")


class SimExchange:
    """The simulated exchange; see the module docstring for what one ``step()`` does."""

    def __init__(self, settings: ExchangeSettings,
                 monotonic: Callable[[], int] | None = None) -> None:
        from gnosis.core.clock import LiveClock

        self.settings = settings
        source = _replay_source(settings) if settings.data_file else _synthetic_source(settings)
        self.symbols = source.symbols
        self.calendar = source.calendar
        self.synthetic = source.synthetic
        self.dropped_bars = source.dropped
        self.clock = SimClock(self.calendar, source.start_t, settings.speed,
                              monotonic or LiveClock.monotonic_ns)
        if settings.start_paused:
            self.clock.pause()
        self.history = BarHistory()
        self.book = OrderBook(SimBroker(settings.execution), settings.initial_cash)
        self.newsdesk = NewsDesk()
        self.faults = Faults()
        self.hub = StreamHub(Credentials(settings.key, settings.secret),
                             outbox_limit=settings.outbox_limit,
                             auth_timeout_s=settings.auth_timeout_s,
                             refuse=self.faults.take_refusal)
        self.account_id = name_uuid("account", settings.seed)
        self.created_at = self.calendar.sessions[0].open_ns
        self._bars = source.bars
        self._next_bar: Bar | None = next(self._bars, None)
        self._heap: list[tuple[int, int, int, str, Any]] = []
        self._seq = itertools.count()
        self._trade_ids = itertools.count(1)
        self._news_ids = itertools.count(1)
        self._now_t = source.start_t
        self.bars_published = 0
        self.trades_published = 0
        self._session_bars: dict[str, list[Bar]] = {}
        self._file_news: list[Article] = []
        self._news_provider: Any = None
        self._options_provider: Any = None
        self._setup_side_inputs()
        self._warm_up(source.start_t)
        for session in self.calendar.sessions:
            if session.end_t > source.start_t:
                self._schedule(session.end_t, _SESSION_CLOSE, "session_close", session.close_ns)

    # -- inputs ---------------------------------------------------------------------------------
    def _setup_side_inputs(self) -> None:
        settings = self.settings
        if self.synthetic is not None:
            from gnosis.agents.news_sim import SimulatedNewsProvider
            from gnosis.agents.options_sim import SimulatedOptionsChain

            self._news_provider = SimulatedNewsProvider(phase_of=self.synthetic.phase_at,
                                                        seed=settings.seed)
            self._options_provider = SimulatedOptionsChain(seed=settings.seed)
            if settings.news_file or settings.options_file:
                raise ExchangeError("--news and --options go with --data: the synthetic market "
                                    "serves its own simulated news and options")
            return
        from gnosis.data.files import InputError
        from gnosis.data.news import load_news
        from gnosis.data.options import load_options

        # the same loaders (formats, validation, causal lookup) as `gnosis backtest`
        try:
            if settings.news_file:
                news = load_news(settings.news_file, tz=settings.data_tz)
                self._file_news = [
                    Article(i + 1, h.ts_event, h.symbols, h.headline, h.summary,
                            h.source or "file") for i, h in enumerate(news.all())]
            if settings.options_file:
                self._options_provider = load_options(settings.options_file,
                                                      tz=settings.data_tz)
        except InputError as exc:
            raise ExchangeError(str(exc)) from None
        for article in self._file_news:
            self._schedule(self.calendar.trading_time(article.created_at), _NEWS, "news",
                           article)

    def _warm_up(self, start_t: int) -> None:
        """History sessions: bars (and their news) that closed before the stream starts."""
        while self._next_bar is not None and \
                self.calendar.trading_time(self._next_bar.ts_close) <= start_t:
            bar = self._next_bar
            self._next_bar = next(self._bars, None)
            self.history.append(bar)
            self.book.mark(bar.symbol, bar.close)
            for article in self._simulated_news(bar):
                self.newsdesk.publish(article)
        self._drain_due(start_t)

    def _simulated_news(self, bar: Bar) -> list[Article]:
        if self._news_provider is None or bar.symbol not in self.symbols:
            return []
        from gnosis.core.hashing import unit_draw

        articles = []
        for headline in self._news_provider.headlines(bar.symbol, bar.ts_event, bar.ts_close):
            offset = int(unit_draw(self.settings.seed, bar.symbol, bar.ts_event, "news at")
                         * 55 * NANOS_PER_SECOND) + NANOS_PER_SECOND
            articles.append(Article(next(self._news_ids), bar.ts_event + offset,
                                    headline.symbols, headline.headline, headline.summary,
                                    "gnosis simulated news", "gnosis-sim"))
        return articles

    # -- the clock ------------------------------------------------------------------------------
    @property
    def now_ns(self) -> int:
        """The exchange's current time (what it has processed up to)."""
        return self.calendar.time_at(self._now_t)

    def is_open(self) -> bool:
        return self.calendar.is_open(self.now_ns)

    def seconds_to_next_event(self) -> float:
        """Real seconds until something is due (for the server's pump)."""
        due = []
        if self._heap:
            due.append(self._heap[0][0])
        if self._next_bar is not None:
            due.append(self.calendar.trading_time(self._next_bar.ts_event))
        if not due:
            return math.inf
        return self.clock.real_seconds_until(min(due))

    # -- stepping -------------------------------------------------------------------------------
    def step(self) -> None:
        """Process everything due up to the clock's trading time, then send it."""
        target = max(self.clock.now_t(), self._now_t)
        self._drain_due(target)
        self.hub.flush()

    def _drain_due(self, target: int) -> None:
        while True:
            bar_t = (self.calendar.trading_time(self._next_bar.ts_event)
                     if self._next_bar is not None else math.inf)
            heap_t = self._heap[0][0] if self._heap else math.inf
            if min(bar_t, heap_t) > target:
                break
            if bar_t <= heap_t:
                bar = self._next_bar
                assert bar is not None
                self._next_bar = next(self._bars, None)
                self._open_minute(bar)
                continue
            t, _priority, _seq, kind, payload = heapq.heappop(self._heap)
            self._now_t = max(self._now_t, t)
            self._handle(kind, payload)
            self._send_trade_updates()
        self._now_t = max(self._now_t, target)

    def _schedule(self, t: int, priority: int, kind: str, payload: Any) -> None:
        heapq.heappush(self._heap, (t, priority, next(self._seq), kind, payload))

    def _open_minute(self, bar: Bar) -> None:
        """A new minute begins: schedule its trades and quotes, its bar, news and updates."""
        trading_time = self.calendar.trading_time
        for tick in ticks_for_bar(bar, next(self._trade_ids) * 10):
            self._schedule(trading_time(tick.ts), _TICK, "tick", tick)
        close_t = trading_time(bar.ts_event) + bar.interval_s * NANOS_PER_SECOND
        self._schedule(close_t, _BAR, "bar", bar)
        if self.synthetic is not None and bar.symbol in self.symbols:
            revised = updated_bar(bar, self.settings.seed)
            if revised is not None:
                self._schedule(close_t + UPDATED_BAR_DELAY_NS, _UPDATED, "updated", revised)
        for article in self._simulated_news(bar):
            self._schedule(trading_time(article.created_at), _NEWS, "news", article)

    def _handle(self, kind: str, payload: Any) -> None:
        now = self.now_ns
        if kind == "tick":
            endpoints = self._endpoints(payload.symbol)
            self.hub.publish(endpoints, payload.channel, payload.symbol, payload.message)
            if payload.channel == "trades":
                self.trades_published += 1
                self.book.mark(payload.symbol, payload.message["p"])
        elif kind == "bar":
            bar: Bar = payload
            self.history.append(bar)
            self.bars_published += 1
            self._session_bars.setdefault(bar.symbol, []).append(bar)
            self.hub.publish(self._endpoints(bar.symbol), "bars", bar.symbol, bar_message(bar))
            self.book.mark(bar.symbol, bar.close)
            if bar.symbol in self.symbols:
                self.book.on_bar(bar, now)
        elif kind == "updated":
            self.publish_updated_bar(payload)
        elif kind == "news":
            article: Article = payload
            self.newsdesk.publish(article)
            # one message per article; a subscription to any of its symbols gets it
            self.hub.publish((NEWS_ENDPOINT,), "news", article.symbols, article.stream())
        elif kind == "session_close":
            self.book.expire_day_orders(now)
            self.book.on_session_close()
            self._publish_daily_bars(payload)
        elif kind == "reject":
            self.book.reject(payload, now)

    def publish_updated_bar(self, bar: Bar) -> bool:
        """Revise a published bar (late trades) and send it as an updated bar."""
        if not self.history.replace(bar):
            return False
        self.hub.publish(self._endpoints(bar.symbol), "updatedBars", bar.symbol,
                         bar_message(bar, "u"))
        return True

    def _publish_daily_bars(self, close_ns: int) -> None:
        from gnosis.simexchange.bars import aggregate

        for symbol, bars in self._session_bars.items():
            if bars:
                daily = aggregate(bars, "day", 1)
                if daily:
                    self.hub.publish(self._endpoints(symbol), "dailyBars", symbol,
                                     bar_message(daily[-1], "d"))
        self._session_bars = {}

    def _endpoints(self, symbol: str) -> tuple[str, ...]:
        return TEST_ENDPOINTS if symbol == TEST_SYMBOL and symbol not in self.symbols \
            else LIVE_ENDPOINTS

    def _send_trade_updates(self) -> None:
        events, self.book.events = self.book.events, []
        for event in events:
            self.hub.trade_update(event)

    # -- trading --------------------------------------------------------------------------------
    def submit_order(self, request: OrderRequest) -> AlpacaOrder:
        """Accept an order from ``POST /v2/orders``; faults may reject or delay it."""
        if request.symbol not in self.symbols:
            raise WireError(422, 40010001, f"asset {request.symbol!r} not found or not "
                                           "tradable on this exchange")
        self.step()
        rejection = self.faults.take_rejection()
        if rejection == "api":
            raise forbidden("order rejected by gnosis sim-exchange (injected fault)")
        now = self.now_ns
        active_from = self.calendar.next_minute_start(now)
        delay = self.faults.take_delay()
        if delay:
            active_from = self.calendar.add_minutes(active_from, delay)
        expires_at = self.calendar.next_close(now) if self.calendar.is_open(now) else \
            self.calendar.next_close(self.calendar.next_open(now) or now)
        order = self.book.submit(request, now, active_from, expires_at,
                                 venue_reject=rejection == "venue")
        if rejection == "venue":
            self._schedule(self._now_t, _REJECT, "reject", order.id)
        self._send_trade_updates()
        self.hub.flush()
        return order

    def after_order_command(self) -> None:
        """Send the trade updates a cancel or replace produced."""
        self._send_trade_updates()
        self.hub.flush()

    def active_from_now(self) -> int:
        self.step()
        return self.calendar.next_minute_start(self.now_ns)

    # -- options --------------------------------------------------------------------------------
    def option_contracts(self, underlying: str, as_of: int) -> tuple[list[OptionContract], float]:
        """The chain of ``underlying`` as known at ``as_of`` and the spot it is priced at."""
        bar = self.history.at_or_before(underlying, as_of - NANOS_PER_MINUTE)
        if bar is None:
            return [], 0.0
        spot = bar.close
        if self._options_provider is None or underlying not in self.symbols:
            return [], spot
        chain = self._options_provider.chain(underlying, spot, as_of)
        return (list(chain.contracts) if chain else []), spot

    def snapshot_time(self, feed: str) -> int:
        """The indicative feed is ~15 minutes late; OPRA is live."""
        return self.now_ns - (INDICATIVE_DELAY_NS if feed == "indicative" else 0)

    # -- faults ---------------------------------------------------------------------------------
    def inject(self, spec: FaultSpec) -> dict[str, Any]:
        """Apply a validated fault (runs on the server's loop); return what it touched."""
        if spec.fault == "drop_streams":
            return {"dropped": self.hub.drop(spec.endpoint)}
        if spec.fault == "stall_stream":
            assert spec.endpoint is not None
            return {"stalled": self.hub.stall(spec.endpoint, spec.seconds)}
        if spec.fault == "refuse_streams":
            assert spec.endpoint is not None
            self.faults.refuse[spec.endpoint] = self.faults.refuse.get(spec.endpoint, 0) \
                + spec.count
            return {"refusing": self.faults.refuse[spec.endpoint]}
        if spec.fault == "http_error":
            from gnosis.simexchange.faults import HttpFault

            self.faults.http.append(HttpFault(spec.status, spec.path_prefix, spec.count))
            return {"pending": spec.count}
        if spec.fault == "reject_orders":
            self.faults.reject_orders.extend([spec.mode] * spec.count)
            return {"pending": len(self.faults.reject_orders)}
        if spec.fault == "delay_fills":
            self.faults.delay_fills.extend([spec.bars] * spec.count)
            return {"pending": len(self.faults.delay_fills)}
        if spec.fault == "split_fills":
            self.book.split_parts.extend([spec.parts] * spec.count)
            return {"pending": len(self.book.split_parts)}
        raise InvalidValue(f"unknown fault {spec.fault}")

    def clear_faults(self) -> None:
        self.faults.clear()
        self.book.split_parts.clear()

    def status(self) -> dict[str, Any]:
        from gnosis.simexchange.wire import rfc3339

        now = self.now_ns
        return {
            "time": rfc3339(now), "is_open": self.calendar.is_open(now),
            "speed": self.clock.speed, "paused": self.clock.paused,
            "symbols": list(self.symbols), "market": "synthetic" if self.synthetic is not None
            else str(self.settings.data_file),
            "bars_published": self.bars_published, "trades_published": self.trades_published,
            "bars_remaining": self._next_bar is not None,
            "data_end": rfc3339(self.calendar.end_ns),
            "connections": self.hub.counts(), "trade_listeners": self.hub.listeners(),
            "slow_disconnects": self.hub.slow_disconnects,
            "refused_connections": self.hub.refused,
            "orders": len(self.book.orders), "open_orders": len(self.book.open_orders()),
            "equity": self.book.equity(), "faults": {
                **self.faults.pending(), "split_fills": list(self.book.split_parts)},
        }
