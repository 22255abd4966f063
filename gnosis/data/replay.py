"""Replay history from CSV or Parquet: Alpaca's ``t,o,h,l,c,v,n,vw`` columns or the long names
``timestamp,open,high,low,close,volume`` (plus optional ``trade_count``, ``vwap``, ``symbol``;
a ``date``, ``datetime`` or ``time`` column stands for ``timestamp``; other columns such as
``adj close`` are ignored).

Files are parsed column-wise with pandas (a million rows in a few seconds); timestamps follow
``gnosis.data.timestamps`` (offsets exact, naive times only with a zone, dates at midnight New
York, epoch units decided from every value). What cannot be used is refused or quarantined:
- refused with ``ReplayError`` (one line naming the file): no such file or type, unreadable,
  missing columns, no rows below the header, no valid row, naive times without a zone, epoch
  numbers no unit makes plausible, ``symbol`` contradicting the file's symbol column, bar steps
  that are not one interval;
- quarantined and counted by reason: unparseable timestamps, missing symbols, NaN/inf/
  non-positive prices, high below low, open or close outside the range, missing or negative
  volume, non-finite or negative trade counts, duplicate (symbol, time) rows (the first is
  kept), and prices that jump beyond ``MAX_JUMP`` times (or below 1/``MAX_JUMP`` of) the
  symbol's previous good close (for a symbol's first bar: the median close of its first five).

The bar interval is inferred per symbol: the most common step between consecutive bars (a step
within an hour of a whole number of days counts as those days), with every other step a whole
multiple of it (gaps, nights, weekends, holidays); a step of 12 hours or more may be an hour off
(a DST change). All symbols must share it. ``resample`` folds the bars into a coarser interval.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gnosis.data.files import (
    FIRST_ROW,
    InputError,
    RowScreen,
    lower_columns,
    number_column,
    read_table,
    require_columns,
    require_rows,
    text_column,
)
from gnosis.data.timestamps import TimestampError, to_ns
from gnosis.model.intervals import DAY_SECONDS, format_interval
from gnosis.model.types import NANOS_PER_SECOND, Bar, format_ns

ALPACA = {"t": "timestamp", "o": "open", "h": "high", "l": "low", "c": "close", "v": "volume",
          "n": "trade_count", "vw": "vwap", "s": "symbol"}
TIME_ALIASES = ("date", "datetime", "time")
REQUIRED = ("timestamp", "open", "high", "low", "close", "volume")
MAX_JUMP = 50.0  # a price beyond x50 or /50 of the previous good close is a bad print
JUMP_REFERENCE_BARS = 5
_HOUR_NS = 3_600 * NANOS_PER_SECOND
_DAY_NS = DAY_SECONDS * NANOS_PER_SECOND
_LONG_STEP_NS = 12 * _HOUR_NS  # steps this long may carry a DST change (one hour either way)
_SHOW_STEPS = 3


class ReplayError(InputError):
    """A replay file that cannot be used, with the reason in the message."""


@dataclass(slots=True)
class ReplayResult:
    bars: list[Bar]
    symbols: tuple[str, ...]
    quarantined: int
    rows: int
    reasons: dict[str, int] = field(default_factory=dict)
    interval_s: int = 60


class ReplayFeed:
    """A ``MarketFeed`` over loaded bars."""

    def __init__(self, result: ReplayResult) -> None:
        self.result = result
        self.symbols = result.symbols

    def bars(self) -> Iterator[Bar]:
        return iter(self.result.bars)


@dataclass(slots=True)
class _Columns:
    """The file's columns as arrays, one entry per row."""

    symbol: np.ndarray
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    trade_count: np.ndarray | None
    vwap: np.ndarray | None


def load_bars(path: str | Path, symbol: str | None = None, *, tz: str | None = None,
              epoch_unit: str | None = None, max_jump: float = MAX_JUMP) -> ReplayResult:
    """Read, validate, de-duplicate, sort and type the bars of a CSV or Parquet file."""
    path = Path(path)
    frame = _normalize_columns(read_table(path, ReplayError), path)
    rows = require_rows(frame, path, ReplayError)
    columns = _columns(frame, path, symbol, tz, epoch_unit)
    screen = RowScreen(path, rows)
    _screen_rows(columns, screen)
    kept = _in_time_order(columns, screen, max_jump)
    if not kept.size:
        raise ReplayError(f"{path}: none of its {rows} rows is a valid bar "
                          f"({', '.join(f'{k}: {n}' for k, n in screen.reasons.items())})")
    interval_s = infer_interval(path, columns.symbol[kept], columns.ts[kept], kept)
    bars = _make_bars(columns, kept, interval_s)
    symbols = tuple(sorted({b.symbol for b in bars}))
    return ReplayResult(bars, symbols, screen.total, rows, dict(screen.reasons), interval_s)


def _normalize_columns(frame: Any, path: Path) -> Any:
    frame = lower_columns(frame)
    if "t" in frame.columns and "timestamp" not in frame.columns:
        frame = frame.rename(columns={k: v for k, v in ALPACA.items() if k in frame.columns})
    elif "s" in frame.columns and "symbol" not in frame.columns:
        frame = frame.rename(columns={"s": "symbol"})
    if "timestamp" not in frame.columns:
        alias = next((c for c in TIME_ALIASES if c in frame.columns), None)
        if alias is not None:
            frame = frame.rename(columns={alias: "timestamp"})
    require_columns(frame, path, REQUIRED, "Alpaca columns t,o,h,l,c,v[,n,vw] or "
                    "timestamp,open,high,low,close,volume[,trade_count,vwap][,symbol]",
                    ReplayError)
    return frame


def _columns(frame: Any, path: Path, symbol: str | None, tz: str | None,
             epoch_unit: str | None) -> _Columns:
    try:
        ts = to_ns(frame["timestamp"], tz=tz, epoch_unit=epoch_unit)
    except TimestampError as exc:
        raise ReplayError(f"{path}: {exc}") from None
    prices = [number_column(frame, name) for name in ("open", "high", "low", "close", "volume")]
    o, h, lo, c, v = (p for p in prices if p is not None)
    return _Columns(_symbols(frame, path, symbol), ts, o, h, lo, c, v,
                    number_column(frame, "trade_count"), number_column(frame, "vwap"))


def _symbols(frame: Any, path: Path, symbol: str | None) -> np.ndarray:
    """Each row's symbol: the file's column, or ``symbol`` when the file has none."""
    named = symbol.strip().upper() if symbol else ""
    if "symbol" not in frame.columns:
        if not named:
            raise ReplayError(f"{path}: the file has no symbol column; name it with --symbol")
        return np.full(len(frame), named, dtype=object)
    symbols = np.array([s.upper() for s in text_column(frame, "symbol")], dtype=object)
    if named:
        present = sorted(set(symbols.tolist()) - {""})
        if present and present != [named]:
            shown = ", ".join(present[:5]) + (", ..." if len(present) > 5 else "")
            raise ReplayError(f"{path}: --symbol {named} contradicts the file's symbol column "
                              f"({shown})")
        symbols[symbols == ""] = named
    return symbols


def _screen_rows(c: _Columns, screen: RowScreen) -> None:
    """Quarantine the rows that cannot be bars, one reason at a time."""
    drop = screen.drop
    o, h, lo, cl, v = c.open, c.high, c.low, c.close, c.volume
    with np.errstate(invalid="ignore"):
        drop(c.ts < 0, "unparseable timestamp")
        drop(c.symbol == "", "missing symbol")
        finite = np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(cl)
        drop(~finite, "missing or non-finite price")
        drop((o <= 0) | (h <= 0) | (lo <= 0) | (cl <= 0), "non-positive price")
        drop(h < lo, "high below low")
        drop((o < lo) | (o > h) | (cl < lo) | (cl > h), "open or close outside the high-low range")
        drop(~np.isfinite(v) | (v < 0), "missing or negative volume")
        if c.trade_count is not None:
            n = c.trade_count
            drop(~np.isnan(n) & (~np.isfinite(n) | (n < 0)), "non-finite or negative trade count")


def _in_time_order(c: _Columns, screen: RowScreen, max_jump: float) -> np.ndarray:
    """Rows kept, in (time, symbol) order: the first of duplicate (symbol, time) rows, and only
    prices within ``max_jump`` of the symbol's previous good close."""
    index = np.flatnonzero(screen.good)
    index = index[np.lexsort((c.symbol[index].astype(str), c.ts[index]))]
    reference = _first_references(c.symbol, c.close, index)
    last_ts: dict[str, int] = {}
    kept: list[int] = []
    duplicates = jumps = 0
    rows = zip(index.tolist(), c.symbol[index].tolist(), c.ts[index].tolist(),
               c.high[index].tolist(), c.low[index].tolist(), c.close[index].tolist())
    for i, symbol, t, high, low, close in rows:
        if last_ts.get(symbol) == t:
            duplicates += 1
            continue
        ref = reference[symbol]
        if high > ref * max_jump or low < ref / max_jump:
            jumps += 1
            continue
        last_ts[symbol] = t
        reference[symbol] = close
        kept.append(i)
    if duplicates:
        screen.count("duplicate timestamp", duplicates)
    if jumps:
        screen.count(f"price jump beyond x{max_jump:g} of the previous bar", jumps)
    return np.asarray(kept, dtype=np.int64)


def _first_references(symbols: np.ndarray, close: np.ndarray,
                      ordered: np.ndarray) -> dict[str, float]:
    """Per symbol, the median close of its first bars: what its first bar is checked against
    (so a bad first print cannot make every good bar after it look like a jump)."""
    firsts: dict[str, list[float]] = {s: [] for s in set(symbols[ordered].tolist())}
    waiting = len(firsts)
    for i in ordered.tolist():
        seen = firsts[symbols[i]]
        if len(seen) < JUMP_REFERENCE_BARS:
            seen.append(float(close[i]))
            if len(seen) == JUMP_REFERENCE_BARS:
                waiting -= 1
                if not waiting:
                    break
    return {s: float(np.median(v)) for s, v in firsts.items()}


def infer_interval(path: Path, symbols: np.ndarray, ts: np.ndarray, rows: np.ndarray) -> int:
    """The bars' interval in seconds, from their time-ordered timestamps (see the module)."""
    found: dict[str, int] = {}
    for symbol in sorted(set(symbols.tolist())):
        mine = np.flatnonzero(symbols == symbol)
        if len(mine) >= 2:
            found[symbol] = _symbol_interval(path, symbol, ts[mine], rows[mine])
    if not found:
        raise ReplayError(f"{path}: cannot infer the bar interval: no symbol has two bars")
    if len(set(found.values())) > 1:
        listed = ", ".join(f"{s} {format_interval(i)}" for s, i in found.items())
        raise ReplayError(f"{path}: symbols have different bar intervals ({listed}); replay "
                          "one interval per file")
    return next(iter(found.values()))


def _symbol_interval(path: Path, symbol: str, ts: np.ndarray, rows: np.ndarray) -> int:
    steps = np.diff(ts)
    values, counts = np.unique(steps, return_counts=True)
    step = int(values[int(np.argmax(counts))])  # the most common; the shortest of a tie
    days = round(step / _DAY_NS)
    if step >= _LONG_STEP_NS and abs(step - days * _DAY_NS) <= _HOUR_NS:
        step = days * _DAY_NS
    if step % NANOS_PER_SECOND:
        raise ReplayError(f"{path}: {symbol}: the most common step between bars, {step} ns, is "
                          "not a whole number of seconds")
    on_grid = steps % step == 0
    long = steps >= _LONG_STEP_NS
    on_grid |= long & (((steps - _HOUR_NS) % step == 0) | ((steps + _HOUR_NS) % step == 0))
    off = np.flatnonzero(~on_grid)
    if off.size:
        shown = "; ".join(f"row {int(rows[j + 1]) + FIRST_ROW} is "
                          f"{_duration(int(steps[j]))} after row {int(rows[j]) + FIRST_ROW}"
                          for j in off[:_SHOW_STEPS].tolist())
        more = f" (and {off.size - _SHOW_STEPS} more)" if off.size > _SHOW_STEPS else ""
        raise ReplayError(
            f"{path}: {symbol}: steps are not whole multiples of the "
            f"{format_interval(step // NANOS_PER_SECOND)} interval: {shown}{more}; mixed "
            "intervals cannot be replayed"
        )
    return step // NANOS_PER_SECOND


def _duration(ns: int) -> str:
    """A step as 1D2H, 1Min30s, 250ms."""
    seconds, rest = divmod(ns, NANOS_PER_SECOND)
    if not seconds:
        return f"{rest / 1e6:g}ms"
    parts = []
    for size, unit in ((DAY_SECONDS, "D"), (3_600, "H"), (60, "Min"), (1, "s")):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _make_bars(c: _Columns, kept: np.ndarray, interval_s: int) -> list[Bar]:
    new = Bar
    size = len(kept)
    nan = [math.nan] * size
    counts = nan if c.trade_count is None else c.trade_count[kept].tolist()
    vwaps = nan if c.vwap is None else c.vwap[kept].tolist()
    rows = zip(c.symbol[kept].tolist(), c.ts[kept].tolist(), c.open[kept].tolist(),
               c.high[kept].tolist(), c.low[kept].tolist(), c.close[kept].tolist(),
               c.volume[kept].tolist(), counts, vwaps)
    return [new(symbol, t, o, h, lo, cl, v, int(n) if n == n else None, w if w == w else None,
                0, interval_s)
            for symbol, t, o, h, lo, cl, v, n, w in rows]


def resample(result: ReplayResult, target_s: int) -> ReplayResult:
    """The bars folded into ``target_s``-second bars (``--timeframe``), per symbol."""
    from gnosis.data.aggregator import BarAggregator

    source_s = result.interval_s
    if target_s == source_s:
        return result
    if target_s < source_s or target_s % source_s:
        raise ReplayError(f"cannot aggregate {format_interval(source_s)} bars into "
                          f"{format_interval(target_s)} bars: the timeframe must be a whole "
                          "multiple of the file's interval")
    aggregator = BarAggregator(target_s, source_s=source_s)
    bars = [out for bar in result.bars for out in aggregator.add(bar)]
    bars.extend(aggregator.flush())
    bars.sort(key=lambda b: (b.ts_event, b.symbol))
    return ReplayResult(bars, result.symbols, result.quarantined, result.rows,
                        dict(result.reasons), target_s)


def _frame(bars: Iterable[Bar], style: str):  # noqa: ANN202 - a pandas DataFrame
    import pandas as pd

    records = [(b.symbol, format_ns(b.ts_event), b.open, b.high, b.low, b.close, b.volume,
                b.trade_count, b.vwap) for b in bars]
    if style == "alpaca":
        columns = ["S", "t", "o", "h", "l", "c", "v", "n", "vw"]
    elif style == "plain":
        columns = ["symbol", "timestamp", "open", "high", "low", "close", "volume",
                   "trade_count", "vwap"]
    else:
        raise ValueError(f"style must be 'alpaca' or 'plain', not {style!r}")
    frame = pd.DataFrame.from_records(records, columns=columns)
    frame[columns[7]] = frame[columns[7]].astype("Int64")
    return frame


def write_bars_csv(bars: Iterable[Bar], path: str | Path, style: str = "alpaca") -> None:
    """Write bars as CSV in Alpaca's short column names or the long ones."""
    _frame(bars, style).to_csv(path, index=False)


def write_bars_parquet(bars: Iterable[Bar], path: str | Path, style: str = "plain") -> None:
    _frame(bars, style).to_parquet(path, index=False)
