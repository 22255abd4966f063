"""Alpaca news for the Sentiment agent: a REST backfill at start, then the news stream.

``HeadlineBook`` keeps headlines by symbol and publication time (deduplicated by article id; an
article updated before anyone read it is replaced, one updated after is counted and kept as
first read: what a bar saw is never rewritten). ``AlpacaNews`` is the agents' ``NewsProvider``
over it: a bar asks for the headlines published in its span and gets only those that had
arrived by then (no look-ahead: a headline that arrives after its bar was processed is counted
as late). Reads are a bisect, never a network call; the REST backfill and the stream run on
their own threads. When the stream is down, ``outage()`` says so and the Sentiment agent says
it runs on price and volume only.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gnosis.adapters.alpaca import rest
from gnosis.adapters.alpaca.calendar import MarketCalendar, VenueClock, new_york
from gnosis.adapters.alpaca.convert import timestamp_ns
from gnosis.adapters.alpaca.settings import AlpacaSettings
from gnosis.adapters.alpaca.streams import (
    HookedNewsStream,
    StreamThread,
    failure_reason,
)
from gnosis.model.market import Headline
from gnosis.model.types import NANOS_PER_SECOND, InvalidValue, ns_to_datetime

if TYPE_CHECKING:
    from gnosis.trading.live_bot import LiveBot

log = logging.getLogger(__name__)
KEEP_NS = 10 * 86_400 * NANOS_PER_SECOND  # headlines older than this (vs the newest) go


class HeadlineBook:
    """Headlines per symbol in publication order; thread-safe, bounded in time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._times: dict[str, list[tuple[int, int]]] = {}  # symbol -> [(created, id)]
        self._articles: dict[int, tuple[Headline, int]] = {}  # id -> (headline, updated)
        self._read_until: dict[str, int] = {}  # what bars have already read, per symbol
        self.stats: Counter[str] = Counter()
        self._newest = 0

    def add(self, article_id: int, created_ns: int, updated_ns: int, symbols: Sequence[str],
            headline: str, summary: str = "", source: str = "") -> bool:
        """Add (or update) an article; False when it is a duplicate or cannot be used."""
        try:
            item = Headline(created_ns, tuple(s.upper() for s in symbols), headline.strip(),
                            summary, source)
        except InvalidValue:
            self.stats["quarantined"] += 1
            return False
        with self._lock:
            known = self._articles.get(article_id)
            if known is not None:
                if updated_ns <= known[1]:
                    self.stats["duplicates"] += 1
                    return False
                if any(self._read_until.get(s, -1) >= known[0].ts_event for s in known[0].symbols):
                    self.stats["updated_after_read"] += 1  # a bar used the first version
                    return False
                self._remove(article_id, known[0])
                self.stats["updated"] += 1
            if any(self._read_until.get(s, -1) >= created_ns for s in item.symbols):
                self.stats["late"] += 1  # its bar was processed before it arrived
            self._articles[article_id] = (item, updated_ns)
            for symbol in item.symbols:
                bisect.insort(self._times.setdefault(symbol, []), (created_ns, article_id))
            self.stats["headlines"] += 1
            self._newest = max(self._newest, created_ns)
            self._prune()
        return True

    def _remove(self, article_id: int, item: Headline) -> None:
        for symbol in item.symbols:
            times = self._times.get(symbol, [])
            entry = (item.ts_event, article_id)
            i = bisect.bisect_left(times, entry)
            if i < len(times) and times[i] == entry:
                del times[i]
        self._articles.pop(article_id, None)

    def _prune(self) -> None:
        cutoff = self._newest - KEEP_NS
        for times in self._times.values():
            cut = bisect.bisect_left(times, (cutoff, -1))
            if cut:
                for _created, article_id in times[:cut]:
                    self._articles.pop(article_id, None)
                del times[:cut]

    def between(self, symbol: str, after_ns: int, until_ns: int) -> list[Headline]:
        """Headlines about ``symbol`` published in (after, until], oldest first."""
        with self._lock:
            times = self._times.get(symbol, [])
            lo = bisect.bisect_right(times, (after_ns, 1 << 62))
            hi = bisect.bisect_right(times, (until_ns, 1 << 62))
            out = [self._articles[a][0] for _t, a in times[lo:hi] if a in self._articles]
            if until_ns > self._read_until.get(symbol, -1):
                self._read_until[symbol] = until_ns
            return out

    def count(self) -> int:
        with self._lock:
            return len(self._articles)


class AlpacaNews:
    """The Sentiment agent's ``NewsProvider`` on Alpaca news (REST backfill + stream).

    Slotted on purpose: the ensemble's snapshot would otherwise pickle its ``__dict__``
    (threads, clients) into every commit."""

    __slots__ = ("settings", "symbols", "book", "interval_s", "client", "_stream", "_loop",
                 "_down_since", "_down_reason", "_connections", "_bot", "clock", "calendar")

    def __init__(self, settings: AlpacaSettings, symbols: tuple[str, ...], *, clock: VenueClock,
                 interval_s: int = 60, client: Any = None,
                 calendar: MarketCalendar | None = None) -> None:
        self.settings = settings
        self.symbols = tuple(symbols)
        self.book = HeadlineBook()
        self.interval_s = interval_s
        self.client = client or settings.news_client(raw=True)
        self.clock = clock
        self.calendar = calendar or MarketCalendar()
        self._stream: Any = None
        self._loop: StreamThread | None = None
        self._down_since: int | None = None
        self._down_reason = "not started"
        self._connections = 0
        self._bot: LiveBot | None = None

    # -- NewsProvider --------------------------------------------------------------------------
    def headlines(self, symbol: str, after_ns: int, until_ns: int | None = None
                  ) -> Sequence[Headline]:
        """Headlines of ``symbol`` published in (after, until]; with one time (the older
        signature: a bar's start), those published during that bar."""
        if until_ns is None:
            start = after_ns
            after_ns, until_ns = start - 1, start + self.interval_s * NANOS_PER_SECOND - 1
        return self.book.between(symbol, after_ns, until_ns)

    def outage(self) -> str | None:
        """Why news is missing right now, or None while the source works."""
        if self._down_since is None:
            return None
        return (f"Alpaca news unavailable since {new_york(self._down_since)} "
                f"({self._down_reason})")

    # -- filling the book ----------------------------------------------------------------------
    def add_raw(self, record: Any) -> bool:
        try:
            created = timestamp_ns(record["created_at"])
            updated = timestamp_ns(record.get("updated_at") or record["created_at"])
            return self.book.add(int(record["id"]), created, updated,
                                 [str(s) for s in (record.get("symbols") or [])],
                                 str(record.get("headline") or ""),
                                 str(record.get("summary") or ""),
                                 str(record.get("source") or ""))
        except (KeyError, TypeError, ValueError, InvalidValue):
            self.book.stats["quarantined"] += 1
            return False

    def backfill(self, start_ns: int, end_ns: int) -> int:
        """Headlines published in [start, end] from the REST API; returns how many were new."""
        from alpaca.data.requests import NewsRequest

        request = NewsRequest(symbols=",".join(self.symbols), start=ns_to_datetime(start_ns),
                              end=ns_to_datetime(end_ns), sort="asc")
        raw = rest.call("download news", self.client.get_news, request) or {}
        records = raw.get("news", []) if isinstance(raw, dict) else []
        return sum(1 for record in records if self.add_raw(record))

    def prepare(self, warmup_days: int) -> int:
        """Backfill the warm-up window (REST, at start, before the bot runs)."""
        now = self.clock.read().now_ns
        start = self.calendar.sessions_back(now, max(warmup_days, 0))
        try:
            added = self.backfill(start, now)
        except Exception as exc:  # noqa: BLE001 - news is advisory: say so and go on
            self._down_since, self._down_reason = now, f"backfill failed: {rest.message_of(exc)}"
            return 0
        self._down_since = None
        return added

    # -- the stream (a Service) --------------------------------------------------------------
    def start(self, bot: LiveBot) -> None:
        self._bot = bot
        key, secret = self.settings.stream_keys()
        self._stream = HookedNewsStream(key, secret, raw_data=True,
                                        url_override=self.settings.news_stream_url(),
                                        on_connect=self._connected, on_failure=self._failed)
        self._stream.subscribe_news(self._on_news, *self.symbols)
        self._loop = StreamThread("gnosis-alpaca-news").start()
        self._loop.run_stream(self._stream)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.stop()

    async def _on_news(self, message: Any) -> None:
        self.add_raw(message)

    def _connected(self) -> None:
        self._connections += 1
        self._down_since = None
        if self._connections > 1 and self._bot is not None:
            self._bot.notify("news stream reconnected")

    def _failed(self, exc: Exception) -> None:
        reason = failure_reason(exc)
        if self._down_since is None:
            last = self.clock.last
            self._down_since = last.now_ns if last is not None else 0
        self._down_reason = reason
        if self._bot is not None:
            self._bot.notify(f"news stream: {reason}; Sentiment runs on price/volume meanwhile")

    def status(self) -> dict[str, Any]:
        return {"headlines": self.book.count(), "stats": dict(self.book.stats),
                "outage": self.outage()}
