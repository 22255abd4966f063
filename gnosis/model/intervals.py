"""Bar intervals: how many bars make a year, so annualisation means the same at every interval.

A US equity session is 390 minutes and a year has 252 sessions. Intraday bars count trading
time only (a 1-minute bar is 1/390 of a session); bars of a day or longer count sessions
(a daily bar is one session, a weekly bar five).
"""

from __future__ import annotations

SESSIONS_PER_YEAR = 252
SESSION_SECONDS = 390 * 60
DAY_SECONDS = 86_400


def bars_per_year(interval_s: int) -> float:
    """Bars of ``interval_s`` seconds in a trading year: 98,280 for 1-minute bars, 252 daily."""
    if interval_s <= 0:
        raise ValueError(f"a bar interval must be positive, got {interval_s} s")
    if interval_s < DAY_SECONDS:
        return SESSIONS_PER_YEAR * SESSION_SECONDS / interval_s
    sessions = interval_s / DAY_SECONDS * (5 / 7 if interval_s >= 7 * DAY_SECONDS else 1)
    return SESSIONS_PER_YEAR / sessions
