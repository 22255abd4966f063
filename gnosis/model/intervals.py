"""Bar intervals: how many bars make a year, how much trading time a bar spans, and their names.

The one rule every annualisation uses (DESIGN §3): a US equity year is 252 sessions of 6.5 hours
(23,400 s) of trading.
- A bar no longer than a session tiles trading time: 252 · 23,400 / interval a year
  (1Min → 252·390, 5Min → 252·78, 1H → 252·6.5; overnight and weekend gaps hold no bars).
- A bar longer than a session covers one session at most: 252 a year (4-hour bars that split a
  session still tile it; a daily bar is one session).
- Above a day bars are calendar periods (weeks, months): 365.25 days / interval, which meets
  252 at about 1.45 days, so the count never rises and never jumps as the interval grows.

``bars_in(seconds, interval)`` turns trading time into bars, for parameters that mean a span of
time rather than a number of bars (a news half-life of an hour is 60 one-minute bars and 0.15 of
a daily bar).
"""

from __future__ import annotations

import re

SESSIONS_PER_YEAR = 252
SESSION_SECONDS = 23_400  # 6.5 hours of regular trading
HOUR_SECONDS = 3_600
DAY_SECONDS = 86_400
WEEK_SECONDS = 7 * DAY_SECONDS
CALENDAR_YEAR_SECONDS = 365.25 * DAY_SECONDS

_UNITS = {"s": 1, "sec": 1, "min": 60, "t": 60, "h": HOUR_SECONDS, "hour": HOUR_SECONDS,
          "d": DAY_SECONDS, "day": DAY_SECONDS, "w": WEEK_SECONDS, "week": WEEK_SECONDS}
_TIMEFRAME = re.compile(r"(\d+)(s|sec|min|t|h|hour|d|day|w|week)", re.IGNORECASE)


def bars_per_year(interval_s: float) -> float:
    """Bars of ``interval_s`` seconds in a trading year (see the module's rule)."""
    if not interval_s > 0:
        raise ValueError(f"a bar interval must be positive, got {interval_s!r}")
    if interval_s <= SESSION_SECONDS:
        return SESSIONS_PER_YEAR * SESSION_SECONDS / interval_s
    return min(float(SESSIONS_PER_YEAR), CALENDAR_YEAR_SECONDS / interval_s)


def bars_per_session(interval_s: float) -> float:
    """Bars of ``interval_s`` in one session (390 one-minute bars; one daily bar)."""
    return bars_per_year(interval_s) / SESSIONS_PER_YEAR


def trading_seconds(interval_s: float) -> float:
    """The trading time one bar spans: its length up to a session, a session for a daily bar."""
    return SESSIONS_PER_YEAR * SESSION_SECONDS / bars_per_year(interval_s)


def bars_in(seconds: float, interval_s: float) -> float:
    """How many bars of ``interval_s`` span ``seconds`` of trading time (may be fractional)."""
    return seconds / trading_seconds(interval_s)


def is_intraday(interval_s: float) -> bool:
    """True for bars shorter than a session: consecutive bars may straddle an overnight gap."""
    return interval_s < SESSION_SECONDS


def parse_timeframe(text: str) -> int:
    """Seconds of a timeframe such as ``1Min``, ``5Min``, ``15Min``, ``1H``, ``1D``, ``1W``.

    Units (any case): ``S``/``Sec``, ``Min``/``T``, ``H``/``Hour``, ``D``/``Day``,
    ``W``/``Week``. Months are refused: they are not a fixed length.
    """
    match = _TIMEFRAME.fullmatch(text.strip())
    if match is None or int(match.group(1)) <= 0:
        raise ValueError(f"timeframe {text!r} is not a positive whole number and a unit, "
                         "e.g. 1Min, 5Min, 15Min, 1H, 1D")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def format_interval(interval_s: int) -> str:
    """The name of an interval as ``parse_timeframe`` reads it: 1Min, 5Min, 1H, 1D, 1W, 45s."""
    for size, unit in ((WEEK_SECONDS, "W"), (DAY_SECONDS, "D"), (HOUR_SECONDS, "H"), (60, "Min")):
        if interval_s % size == 0:
            return f"{interval_s // size}{unit}"
    return f"{interval_s}s"
