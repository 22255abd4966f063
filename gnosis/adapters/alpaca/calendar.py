"""Market hours: the exchange calendar (``exchange_calendars``, XNYS) and the venue's clock.

``MarketCalendar`` answers from the calendar library, never from hand-coded hours: is a bar's
minute inside a regular session (extended-hours bars are dropped, not traded), where do the
last N sessions start (warm-up), when is the next open. ``VenueClock`` asks Alpaca's
``/v2/clock``: the venue's own time and whether it is open. Against ``gnosis sim-exchange`` the
venue's clock is the simulator's (it runs in simulated time, possibly years from the wall
clock), so everything that compares times in the Alpaca mode compares them with the venue's
clock, never with the wall clock.
"""

from __future__ import annotations

import bisect
import threading
import warnings
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from gnosis.adapters.alpaca import rest
from gnosis.core.clock import LiveClock
from gnosis.model.types import NANOS_PER_SECOND, datetime_to_ns, ns_to_datetime

NEW_YORK = ZoneInfo("America/New_York")
FIRST_DAY = "2010-01-04"


@lru_cache(maxsize=1)
def _sessions() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(opens, closes) of every XNYS session the library knows, as epoch ns."""
    import exchange_calendars as xcals

    with warnings.catch_warnings():  # the library trips pandas deprecations
        warnings.simplefilter("ignore")
        calendar = xcals.get_calendar("XNYS", start=FIRST_DAY)
        opens = tuple(int(t.value) for t in calendar.opens)
        closes = tuple(int(t.value) for t in calendar.closes)
    return opens, closes


class MarketCalendar:
    """Regular XNYS sessions; lookups are a bisect over the session table (O(log n))."""

    def __init__(self) -> None:
        self._opens, self._closes = _sessions()

    def sessions(self) -> list[tuple[int, int]]:
        """(open, close) of every session the calendar knows, in order."""
        return list(zip(self._opens, self._closes))

    def _index(self, ts: int) -> int:
        """Index of the last session that opened at or before ``ts`` (-1 before the first)."""
        return bisect.bisect_right(self._opens, ts) - 1

    def is_open(self, ts: int) -> bool:
        k = self._index(ts)
        return k >= 0 and ts < self._closes[k]

    def in_session(self, ts_start: int, interval_s: int = 60) -> bool:
        """Whether a bar starting at ``ts_start`` lies inside a regular session."""
        k = self._index(ts_start)
        return k >= 0 and ts_start + interval_s * NANOS_PER_SECOND <= self._closes[k]

    def sessions_back(self, ts: int, sessions: int) -> int:
        """The open of the session ``sessions`` sessions before the one at (or next after)
        ``ts``; ``sessions`` = 0 is that session's own open."""
        k = self._index(ts)
        if k < 0 or ts >= self._closes[k]:
            k += 1  # between sessions: the next one is "today"
        return self._opens[max(0, k - sessions)]

    def next_open(self, ts: int) -> int | None:
        k = bisect.bisect_right(self._opens, ts)
        return self._opens[k] if k < len(self._opens) else None

    def session_close(self, ts: int) -> int | None:
        """The close of the session open at ``ts`` (None when closed)."""
        k = self._index(ts)
        return self._closes[k] if k >= 0 and ts < self._closes[k] else None


def new_york(ts: int) -> str:
    return ns_to_datetime(ts).astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M ET")


def duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest_s = divmod(seconds, 3600)
    minutes = rest_s // 60
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


@dataclass(frozen=True, slots=True)
class ClockReading:
    """One answer of ``/v2/clock`` and when (monotonic) we got it."""

    now_ns: int
    is_open: bool
    next_open_ns: int | None
    next_close_ns: int | None
    read_mono_ns: int

    def waiting_message(self) -> str:
        if self.is_open:
            return "market open"
        if self.next_open_ns is None:
            return "market closed; the venue announces no next session"
        wait = (self.next_open_ns - self.now_ns) / NANOS_PER_SECOND
        return (f"market closed at the venue ({new_york(self.now_ns)}); trading starts at the "
                f"open, {new_york(self.next_open_ns)} (in {duration(wait)})")


def _ns(moment: datetime | None) -> int | None:
    return None if moment is None else datetime_to_ns(moment)


class VenueClock:
    """The venue's ``/v2/clock``, read on demand and cached (thread-safe)."""

    def __init__(self, trading_client: Any, wall: LiveClock | None = None) -> None:
        self._client = trading_client
        self._wall = wall or LiveClock()
        self._lock = threading.Lock()
        self._last: ClockReading | None = None

    def read(self) -> ClockReading:
        """Ask the venue now (a REST call: never on the core thread per bar)."""
        answer = rest.call("read the market clock", self._client.get_clock)
        reading = ClockReading(
            now_ns=datetime_to_ns(answer.timestamp), is_open=bool(answer.is_open),
            next_open_ns=_ns(answer.next_open), next_close_ns=_ns(answer.next_close),
            read_mono_ns=self._wall.monotonic_ns())
        with self._lock:
            self._last = reading
        return reading

    @property
    def last(self) -> ClockReading | None:
        with self._lock:
            return self._last

    def age_s(self) -> float:
        last = self.last
        if last is None:
            return float("inf")
        return (self._wall.monotonic_ns() - last.read_mono_ns) / NANOS_PER_SECOND
