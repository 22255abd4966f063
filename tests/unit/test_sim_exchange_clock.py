"""Sessions, trading time and the simulated clock of ``gnosis sim-exchange``."""

from __future__ import annotations

import pytest

from gnosis.model.types import NANOS_PER_MINUTE, NANOS_PER_SECOND, InvalidValue
from gnosis.simexchange.clock import SessionCalendar, SimClock

# 2024-01-02..04: three regular sessions 14:30-21:00 UTC
OPEN_0 = 1_704_205_800 * NANOS_PER_SECOND
DAY = 86_400 * NANOS_PER_SECOND
SESSION = 390 * NANOS_PER_MINUTE


@pytest.fixture(scope="module")
def calendar() -> SessionCalendar:
    return SessionCalendar.from_start("2024-01-02", 3)


def test_sessions_come_from_the_xnys_calendar(calendar: SessionCalendar) -> None:
    assert [s.open_ns for s in calendar.sessions] == [OPEN_0, OPEN_0 + DAY, OPEN_0 + 2 * DAY]
    assert all(s.length == SESSION for s in calendar.sessions)
    # the sessions after the data: Friday 5th, then Monday 8th
    assert calendar.next_open(calendar.end_ns) == OPEN_0 + 3 * DAY
    assert calendar.next_close(calendar.end_ns) == OPEN_0 + 3 * DAY + SESSION


def test_trading_time_collapses_closed_hours(calendar: SessionCalendar) -> None:
    inside = OPEN_0 + 17 * NANOS_PER_MINUTE + 5
    assert calendar.time_at(calendar.trading_time(inside)) == inside
    # the close of day 1, the night and the open of day 2 are one trading instant
    close_0 = OPEN_0 + SESSION
    night = close_0 + 3 * 3600 * NANOS_PER_SECOND
    assert calendar.trading_time(close_0) == calendar.trading_time(night) == SESSION
    assert calendar.time_at(SESSION) == OPEN_0 + DAY
    # after the last session time runs on with the market closed
    end = calendar.end_ns
    assert calendar.time_at(calendar.end_t + 5) == end + 5
    assert not calendar.is_open(end + 5)
    assert calendar.is_open(OPEN_0) and not calendar.is_open(OPEN_0 - 1)


def test_next_minute_start_crosses_the_night(calendar: SessionCalendar) -> None:
    last_minute = OPEN_0 + SESSION - NANOS_PER_MINUTE + 30 * NANOS_PER_SECOND
    assert calendar.next_minute_start(last_minute) == OPEN_0 + DAY
    assert calendar.next_minute_start(OPEN_0 + 1) == OPEN_0 + NANOS_PER_MINUTE
    assert calendar.add_minutes(OPEN_0 + SESSION - NANOS_PER_MINUTE, 2) == \
        OPEN_0 + DAY + NANOS_PER_MINUTE


def test_calendar_covering_a_range_keeps_only_its_sessions() -> None:
    calendar = SessionCalendar.from_range(OPEN_0 + 5, OPEN_0 + DAY + 5)
    assert [s.open_ns for s in calendar.sessions] == [OPEN_0, OPEN_0 + DAY]


def test_bad_sessions_are_refused() -> None:
    with pytest.raises(InvalidValue):
        SessionCalendar([2, 1], [3, 4])
    with pytest.raises(InvalidValue):
        SessionCalendar([], [])


class Counter:
    def __init__(self) -> None:
        self.ns = 0

    def __call__(self) -> int:
        return self.ns


def test_clock_runs_at_speed_pauses_and_advances(calendar: SessionCalendar) -> None:
    mono = Counter()
    clock = SimClock(calendar, 0, speed=60.0, monotonic=mono)
    assert clock.now_ns() == OPEN_0
    mono.ns = 2 * NANOS_PER_SECOND  # two real seconds: two simulated minutes
    assert clock.now_ns() == OPEN_0 + 2 * NANOS_PER_MINUTE
    clock.pause()
    mono.ns += 10 * NANOS_PER_SECOND
    assert clock.now_ns() == OPEN_0 + 2 * NANOS_PER_MINUTE
    assert clock.real_seconds_until(SESSION) == float("inf")
    clock.advance(60)
    assert clock.now_ns() == OPEN_0 + 3 * NANOS_PER_MINUTE
    clock.resume()
    mono.ns += NANOS_PER_SECOND
    assert clock.now_ns() == OPEN_0 + 4 * NANOS_PER_MINUTE
    assert clock.real_seconds_until(5 * NANOS_PER_MINUTE) == pytest.approx(1.0)
    with pytest.raises(InvalidValue):
        clock.advance(-1)
    with pytest.raises(InvalidValue):
        SimClock(calendar, 0, speed=0.0, monotonic=mono)
