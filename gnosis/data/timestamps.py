"""Timestamps of input files to int64 nanoseconds UTC, refusing what would have to be guessed.

- ISO-8601 with an offset or ``Z`` (``2024-01-02T14:30:00Z``, ``...09:30:00-05:00``): exact.
- ISO-8601 without an offset (``2024-01-02 09:30:00``) is a wall-clock time somewhere: it needs
  a zone (``tz``, the CLI's ``--tz``), else the file is refused. A local time that does not
  exist or happens twice (DST changes) is quarantined.
- A date alone (``2024-01-02``) names a session: it is stamped at midnight in ``tz``, by
  default New York (where Alpaca stamps its daily bars).
- Epoch numbers: the unit (s, ms, us or ns) is the one that puts every value between 1980 and
  2100. If none does, or several do, the file is refused and the unit must be given
  (``epoch_unit``, the CLI's ``--epoch-unit``); with a unit given, a value outside that range
  is quarantined.
- Parquet datetime columns: zone-aware ones exactly, naive ones as naive times (``tz``).

Unusable values come back as -1 (the caller quarantines them); refusals raise
``TimestampError`` with a message that says what to do.
"""

from __future__ import annotations

from typing import Any

import numpy as np

EPOCH_UNITS: dict[str, int] = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
PLAUSIBLE_NS = (315_532_800 * 10**9, 4_102_444_800 * 10**9)  # 1980-01-01 .. 2100-01-01 UTC
DATE_ZONE = "America/New_York"

_DATE = r"\d{4}-\d{2}-\d{2}"
_HAS_TIME = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{1,2}:\d{2}"
_HAS_OFFSET = r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
_NUMBER = r"[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?"


class TimestampError(ValueError):
    """Timestamps that cannot be read without a guess; the message says what to give."""


def check_zone(name: str) -> str:
    """``name`` if it is an IANA time zone, else a ``TimestampError``."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimestampError(f"unknown time zone {name!r}; use an IANA name such as "
                             "America/New_York or UTC") from None
    return name


def to_ns(column: Any, *, tz: str | None = None, epoch_unit: str | None = None,
          name: str = "timestamp") -> np.ndarray:
    """int64 ns UTC of a pandas Series, -1 where a value cannot be a time."""
    import pandas as pd

    if epoch_unit is not None and epoch_unit not in EPOCH_UNITS:
        raise TimestampError(f"epoch unit {epoch_unit!r} is not one of s, ms, us, ns")
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return _datetimes_ns(column.dt.tz_convert("UTC"))
    if pd.api.types.is_datetime64_dtype(column):
        zone = _need_zone(tz, column, name, "timestamp(s) have no time zone")
        return _datetimes_ns(_localize(column, zone))
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return _epoch_ns(column, epoch_unit, name)
    return _strings_ns(column.astype("string").str.strip(), tz, epoch_unit, name)


def _strings_ns(text: Any, tz: str | None, epoch_unit: str | None, name: str) -> np.ndarray:
    import pandas as pd

    out = np.full(len(text), -1, dtype=np.int64)
    present = text.notna().to_numpy()
    filled = text.fillna("")
    has_time = filled.str.contains(_HAS_TIME, regex=True).to_numpy() & present
    has_offset = filled.str.contains(_HAS_OFFSET, regex=True).to_numpy()
    date_only = filled.str.fullmatch(_DATE).to_numpy() & present
    number = filled.str.fullmatch(_NUMBER).to_numpy() & present
    aware = has_time & has_offset
    naive = has_time & ~has_offset
    if aware.any():
        parsed = pd.to_datetime(text[aware], utc=True, errors="coerce", format="ISO8601")
        out[aware] = _datetimes_ns(parsed)
    if naive.any():
        zone = _need_zone(tz, text[naive], name, "timestamp(s) have no UTC offset")
        parsed = pd.to_datetime(text[naive], errors="coerce", format="ISO8601")
        out[naive] = _datetimes_ns(_localize(parsed, zone))
    if date_only.any():
        parsed = pd.to_datetime(text[date_only], errors="coerce", format="%Y-%m-%d")
        out[date_only] = _datetimes_ns(_localize(parsed, tz or DATE_ZONE))
    if number.any():
        out[number] = _epoch_ns(pd.to_numeric(text[number], errors="coerce"), epoch_unit, name)
    return out


def _need_zone(tz: str | None, values: Any, name: str, what: str) -> str:
    if tz is not None:
        return tz
    first = values.index[0] if hasattr(values, "index") else 0
    raise TimestampError(
        f"{len(values)} {what} (first: row {int(first) + 2} '{values.iloc[0]}'); say which "
        f"zone the {name}s are in with --tz, e.g. --tz America/New_York"
    )


def _localize(parsed: Any, zone: str) -> Any:
    """Wall-clock times in ``zone`` to UTC; times that DST skips or repeats become NaT."""
    return parsed.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")


def _datetimes_ns(parsed: Any) -> np.ndarray:
    ok = parsed.notna().to_numpy()
    out = np.full(len(parsed), -1, dtype=np.int64)
    out[ok] = parsed[ok].dt.as_unit("ns").astype("int64").to_numpy()
    return out


def _epoch_ns(column: Any, unit: str | None, name: str) -> np.ndarray:
    """Epoch numbers to ns in the one unit that makes them all plausible (or the unit given)."""
    import pandas as pd

    exact = pd.api.types.is_integer_dtype(column)
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64")
    usable = np.isfinite(values) & (values > 0)
    low, high = PLAUSIBLE_NS
    if unit is None:
        if not usable.any():
            return np.full(len(values), -1, dtype=np.int64)
        first, last = values[usable].min(), values[usable].max()
        fits = [u for u, scale in EPOCH_UNITS.items()
                if low <= first * scale and last * scale < high]
        if len(fits) != 1:
            span = f"from {first:.17g} to {last:.17g}"
            verdict = "no epoch unit" if not fits else f"more than one epoch unit ({fits})"
            raise TimestampError(
                f"epoch {name}s {span}: {verdict} (s, ms, us, ns) puts them all between 1980 "
                "and 2100; say which with --epoch-unit s|ms|us|ns"
            )
        unit = fits[0]
    scale = EPOCH_UNITS[unit]
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = values * scale
    ok = usable & (scaled >= low) & (scaled < high)
    out = np.full(len(values), -1, dtype=np.int64)
    if exact:  # whole numbers stay exact: float64 cannot hold every nanosecond
        out[ok] = column.to_numpy(dtype="int64")[ok] * scale
    else:
        out[ok] = np.round(scaled[ok]).astype(np.int64)
    return out
