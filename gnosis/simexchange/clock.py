"""Sessions and the exchange's simulated time.

The exchange measures time in *trading time*: nanoseconds of regular sessions laid end to end,
so closed hours take no time (as in ``gnosis run``). ``SessionCalendar`` maps a wall timestamp to
its trading time and back; ``SimClock`` advances trading time at ``speed`` simulated seconds per
real second and can be paused or stepped by tests. A timestamp between two sessions maps to the
next open; the close of one session and the open of the next are the same trading instant, and
what belongs to the close (the last bar, day orders expiring) is processed first.
"""

from __future__ import annotations

import bisect
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gnosis.model.types import NANOS_PER_MINUTE, NANOS_PER_SECOND, InvalidValue

NANOS_PER_DAY = 86_400 * NANOS_PER_SECOND


def _calendar(first_day: str, last_day: str):  # noqa: ANN202 - an exchange_calendars calendar
    import exchange_calendars as xcals

    with warnings.catch_warnings():  # exchange_calendars trips pandas deprecations
        warnings.simplefilter("ignore")
        return xcals.get_calendar("XNYS", start=first_day, end=last_day)


@dataclass(frozen=True, slots=True)
class Session:
    open_ns: int
    close_ns: int
    start_t: int  # trading time of the open

    @property
    def length(self) -> int:
        return self.close_ns - self.open_ns

    @property
    def end_t(self) -> int:
        return self.start_t + self.length


class SessionCalendar:
    """XNYS regular sessions in order, with the trading-time mapping."""

    def __init__(self, opens: Sequence[int], closes: Sequence[int],
                 later: Sequence[tuple[int, int]] = ()) -> None:
        """``opens``/``closes`` are the simulated sessions; ``later`` are the exchange's next
        sessions after the data ends (only ``next_open``/``next_close`` look at them)."""
        if not opens or len(opens) != len(closes):
            raise InvalidValue("a session calendar needs matching, non-empty opens and closes")
        sessions: list[Session] = []
        at = 0
        for open_ns, close_ns in zip(opens, closes):
            if close_ns <= open_ns or (sessions and open_ns < sessions[-1].close_ns):
                raise InvalidValue("sessions must be ordered and non-overlapping")
            sessions.append(Session(open_ns, close_ns, at))
            at += close_ns - open_ns
        self.sessions: tuple[Session, ...] = tuple(sessions)
        self._opens = [s.open_ns for s in sessions]
        self._starts = [s.start_t for s in sessions]
        self._later = tuple((o, c) for o, c in later if o >= sessions[-1].close_ns)

    @classmethod
    def from_range(cls, first_ns: int, last_ns: int) -> SessionCalendar:
        """The sessions from the New York day of ``first_ns`` to that of ``last_ns``."""
        import pandas as pd

        first = pd.Timestamp(first_ns, tz="UTC").tz_convert("America/New_York")
        last = pd.Timestamp(last_ns, tz="UTC").tz_convert("America/New_York")
        first_day = first.tz_localize(None).normalize()
        last_day = last.tz_localize(None).normalize()
        return cls._build(first_day, last_day, None)

    @classmethod
    def from_start(cls, start: str, days: int) -> SessionCalendar:
        """``days`` sessions from the first session on or after ``start``."""
        import pandas as pd

        if days < 1:
            raise InvalidValue(f"days must be >= 1, got {days}")
        try:
            first = pd.Timestamp(start).normalize()
        except ValueError as exc:
            raise InvalidValue(f"cannot start on {start!r}: {exc}") from exc
        return cls._build(first, first + pd.Timedelta(days=int(days * 1.5) + 30), days)

    @classmethod
    def _build(cls, first, last, days: int | None) -> SessionCalendar:  # noqa: ANN001
        import pandas as pd

        end = last + pd.Timedelta(days=20)  # room for the sessions after the data
        try:
            calendar = _calendar((first - pd.Timedelta(days=7)).strftime("%Y-%m-%d"),
                                 end.strftime("%Y-%m-%d"))
            sessions = calendar.sessions[calendar.sessions >= first]
        except Exception as exc:  # a date the calendar library does not cover
            raise InvalidValue(f"no XNYS calendar for {first:%Y-%m-%d}..{end:%Y-%m-%d}: "
                               f"{exc}") from exc
        opens = [int(t.value) for t in calendar.opens.loc[sessions]]
        closes = [int(t.value) for t in calendar.closes.loc[sessions]]
        if days is None:
            last_close = int((last + pd.Timedelta(days=1)).tz_localize("America/New_York").value)
            count = sum(1 for o in opens if o < last_close)
        else:
            count = days
        if count < 1 or count > len(opens):
            raise InvalidValue(f"the XNYS calendar has {len(opens)} sessions there, "
                               f"not {count}")
        return cls(opens[:count], closes[:count], list(zip(opens[count:], closes[count:])))

    # -- mapping ----------------------------------------------------------------------------
    def index_at(self, ts: int) -> int:
        """Index of the last session that opened at or before ``ts`` (-1 before the first)."""
        return bisect.bisect_right(self._opens, ts) - 1

    def trading_time(self, ts: int) -> int:
        """Trading time of a wall timestamp; closed hours collapse onto the next open."""
        k = self.index_at(ts)
        if k < 0:
            return self.sessions[0].start_t - (self.sessions[0].open_ns - ts)
        session = self.sessions[k]
        if ts < session.close_ns:
            return session.start_t + (ts - session.open_ns)
        if k + 1 < len(self.sessions):
            return self.sessions[k + 1].start_t
        return session.end_t + (ts - session.close_ns)

    def time_at(self, t: int) -> int:
        """Wall timestamp of a trading time (the inverse of ``trading_time`` inside sessions)."""
        k = bisect.bisect_right(self._starts, t) - 1
        if k < 0:
            first = self.sessions[0]
            return first.open_ns - (first.start_t - t)
        session = self.sessions[k]
        if t < session.end_t or k + 1 < len(self.sessions):
            return session.open_ns + (t - session.start_t)
        return session.close_ns + (t - session.end_t)

    def session_of_t(self, t: int) -> int:
        """Index of the session that contains trading time ``t`` (the last one past the end)."""
        return max(0, bisect.bisect_right(self._starts, t) - 1)

    def add_minutes(self, ts: int, minutes: int) -> int:
        """The wall time ``minutes`` trading minutes after ``ts``."""
        return self.time_at(self.trading_time(ts) + minutes * NANOS_PER_MINUTE)

    def next_minute_start(self, ts: int) -> int:
        """Start of the first whole trading minute strictly after the one containing ``ts``."""
        t = self.trading_time(ts)
        return self.time_at((t // NANOS_PER_MINUTE + 1) * NANOS_PER_MINUTE)

    # -- the market's state -----------------------------------------------------------------
    def is_open(self, ts: int) -> bool:
        """Whether a simulated session is open at ``ts`` (never after the data ends)."""
        k = self.index_at(ts)
        return k >= 0 and ts < self.sessions[k].close_ns

    def _all(self) -> list[tuple[int, int]]:
        return [(s.open_ns, s.close_ns) for s in self.sessions] + list(self._later)

    def next_open(self, ts: int) -> int | None:
        return next((o for o, _ in self._all() if o > ts), None)

    def next_close(self, ts: int) -> int | None:
        return next((c for _, c in self._all() if c > ts), None)

    @property
    def end_ns(self) -> int:
        return self.sessions[-1].close_ns

    @property
    def end_t(self) -> int:
        return self.sessions[-1].end_t


class SimClock:
    """Trading time that runs at ``speed`` simulated seconds per real second.

    ``monotonic`` is a nanosecond monotonic counter (``LiveClock.monotonic_ns`` in the server;
    a counter a test sets by hand in unit tests), so nothing here reads wall time itself.
    """

    def __init__(self, calendar: SessionCalendar, start_t: int, speed: float,
                 monotonic: Callable[[], int]) -> None:
        if not speed > 0:
            raise InvalidValue(f"speed must be positive, got {speed!r}")
        self.calendar = calendar
        self.speed = float(speed)
        self._monotonic = monotonic
        self._base_t = start_t
        self._base_mono = monotonic()
        self.paused = False

    def now_t(self) -> int:
        if self.paused:
            return self._base_t
        return self._base_t + int((self._monotonic() - self._base_mono) * self.speed)

    def now_ns(self) -> int:
        return self.calendar.time_at(self.now_t())

    def _rebase(self) -> None:
        self._base_t = self.now_t()
        self._base_mono = self._monotonic()

    def pause(self) -> None:
        self._rebase()
        self.paused = True

    def resume(self) -> None:
        self._base_mono = self._monotonic()
        self.paused = False

    def advance(self, seconds: float) -> None:
        """Jump ``seconds`` of trading time forward (tests and the control endpoint)."""
        if seconds < 0:
            raise InvalidValue("the clock never goes backwards")
        self._rebase()
        self._base_t += int(seconds * NANOS_PER_SECOND)

    def set_speed(self, speed: float) -> None:
        if not speed > 0:
            raise InvalidValue(f"speed must be positive, got {speed!r}")
        self._rebase()
        self.speed = float(speed)

    def real_seconds_until(self, t: int) -> float:
        """Real seconds until trading time ``t`` (infinite while paused)."""
        if self.paused:
            return float("inf")
        return max(0.0, (t - self.now_t()) / NANOS_PER_SECOND / self.speed)
