"""``GET /v2/stocks/bars``: timeframes, aggregation and pagination over the published bars.

Only published bars exist here, and a bar is published when its minute closes in simulated
time, so no answer ever holds a minute that has not closed. Aggregated bars (5Min, 1Hour, 1Day,
...) are built from those closed minutes only; the current bucket is partial, as Alpaca's is.
Items are ordered by symbol, then time; ``limit`` counts items across symbols and
``next_page_token`` resumes after the last one returned.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gnosis.model.types import NANOS_PER_MINUTE, NANOS_PER_SECOND, Bar
from gnosis.simexchange.wire import (
    EASTERN,
    bad_request,
    bar_rest,
    decode_token,
    encode_token,
)

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
_TIMEFRAME = re.compile(r"^(\d+)(Min|T|Hour|H|Day|D)$")
_UNITS = {"Min": "min", "T": "min", "Hour": "hour", "H": "hour", "Day": "day", "D": "day"}


@dataclass(frozen=True, slots=True)
class Timeframe:
    unit: str  # "min" | "hour" | "day"
    amount: int

    @property
    def text(self) -> str:
        return f"{self.amount}{ {'min': 'Min', 'hour': 'Hour', 'day': 'Day'}[self.unit]}"


def parse_timeframe(text: str | None) -> Timeframe:
    match = _TIMEFRAME.match((text or "").strip())
    if not match:
        raise bad_request(f"invalid timeframe {text!r} (e.g. 1Min, 5Min, 15Min, 1Hour, 1Day)")
    amount, unit = int(match.group(1)), _UNITS[match.group(2)]
    if (unit == "min" and not 1 <= amount <= 59) or (unit == "hour" and not 1 <= amount <= 23) \
            or (unit == "day" and amount != 1):
        raise bad_request(f"invalid timeframe {text!r}: minutes 1-59, hours 1-23, days 1")
    return Timeframe(unit, amount)


def parse_limit(text: str | None, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    if text in (None, ""):
        return default
    try:
        limit = int(str(text))
    except ValueError:
        raise bad_request(f"invalid limit {text!r}") from None
    if not 1 <= limit <= maximum:
        raise bad_request(f"invalid limit {limit}: between 1 and {maximum}")
    return limit


def new_york_midnight(ts: int) -> int:
    moment = datetime.fromtimestamp(ts // NANOS_PER_SECOND, tz=UTC).astimezone(EASTERN)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return int(midnight.timestamp()) * NANOS_PER_SECOND


def bucket_of(ts: int, unit: str, amount: int) -> int:
    if unit == "min":
        size = amount * NANOS_PER_MINUTE
        return ts - ts % size
    if unit == "hour":
        size = amount * 60 * NANOS_PER_MINUTE
        return ts - ts % size
    return new_york_midnight(ts)


def aggregate(bars: Sequence[Bar], unit: str, amount: int) -> list[Bar]:
    """Minute bars of one symbol, in order, folded into ``amount`` ``unit`` bars."""
    if unit == "min" and amount == 1:
        return list(bars)
    out: list[Bar] = []
    group: list[Bar] = []
    key = None
    for bar in bars:
        bucket = bucket_of(bar.ts_event, unit, amount)
        if group and bucket != key:
            out.append(_fold(group, key))
            group = []
        key = bucket
        group.append(bar)
    if group:
        out.append(_fold(group, key))
    return out


def _fold(group: list[Bar], start: int | None) -> Bar:
    assert start is not None
    volume = sum(b.volume for b in group)
    counts = [b.trade_count for b in group]
    trades = None if any(c is None for c in counts) else sum(c for c in counts if c is not None)
    if volume > 0:
        vwap: float | None = sum((b.vwap or b.close) * b.volume for b in group) / volume
    else:
        vwap = None
    high = max(b.high for b in group)
    low = min(b.low for b in group)
    if vwap is not None:
        vwap = round(min(max(vwap, low), high), 4)
    return Bar(group[0].symbol, start, group[0].open, high, low, group[-1].close, volume,
               trades, vwap, 0, max(60, (group[-1].ts_close - start) // NANOS_PER_SECOND))


def bars_page(window: Callable[[str, int, int], list[Bar]], symbols: Sequence[str],
              timeframe: Timeframe, start: int, end: int, limit: int,
              page_token: str | None, descending: bool = False) -> dict[str, Any]:
    """One page of ``/v2/stocks/bars``: ``{"bars": {symbol: [...]}, "next_page_token"}``.

    ``window(symbol, lo, hi)`` returns the published minute bars with ``lo <= t < hi``.
    """
    ordered = sorted(set(symbols))
    resume_symbol, resume_t = None, None
    if page_token:
        symbol_text, t_text = decode_token(page_token, 2)
        try:
            resume_symbol, resume_t = symbol_text, int(t_text)
        except ValueError:
            raise bad_request("invalid page_token") from None
    # minute bars that can fall into buckets overlapping [start, end]
    lo = bucket_of(start, timeframe.unit, timeframe.amount)
    out: dict[str, list[dict[str, Any]]] = {}
    taken = 0
    for symbol in ordered:
        if resume_symbol is not None and symbol < resume_symbol:
            continue
        items = [b for b in aggregate(window(symbol, lo, end + 1), timeframe.unit,
                                      timeframe.amount) if start <= b.ts_event <= end]
        if descending:
            items.reverse()
        if resume_symbol == symbol and resume_t is not None:
            items = [b for b in items
                     if (b.ts_event <= resume_t if descending else b.ts_event >= resume_t)]
        for bar in items:
            if taken == limit:
                return {"bars": out, "next_page_token": encode_token(symbol, bar.ts_event)}
            out.setdefault(symbol, []).append(bar_rest(bar))
            taken += 1
    return {"bars": out, "next_page_token": None}
