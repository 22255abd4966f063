"""Replay history from CSV or Parquet: Alpaca's ``t,o,h,l,c,v,n,vw`` columns or the long names
``timestamp,open,high,low,close,volume`` (plus optional ``trade_count``, ``vwap``, ``symbol``).

Files are parsed column-wise with pandas (a million rows in a few seconds). Timestamps may be
ISO-8601 strings (with an offset or ``Z``; naive strings are taken as UTC) or epoch integers in
seconds, milliseconds, microseconds or nanoseconds (told apart by magnitude). Rows that cannot
be bars (unparseable time, NaN/inf/non-positive prices, high below low, open or close outside
the range, negative volume) are quarantined and counted by reason; duplicate (symbol, time)
rows keep the first. What remains is sorted by (time, symbol), ready to replay. A file that
cannot be read at all raises ``ReplayError`` with a message that says what is wrong.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gnosis.model.types import Bar, format_ns

log = logging.getLogger(__name__)

ALPACA = {"t": "timestamp", "o": "open", "h": "high", "l": "low", "c": "close", "v": "volume",
          "n": "trade_count", "vw": "vwap", "s": "symbol"}
REQUIRED = ("timestamp", "open", "high", "low", "close", "volume")
SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")


class ReplayError(Exception):
    """A replay file that cannot be used, with the reason in the message."""


@dataclass(slots=True)
class ReplayResult:
    bars: list[Bar]
    symbols: tuple[str, ...]
    quarantined: int
    rows: int
    reasons: dict[str, int] = field(default_factory=dict)


class ReplayFeed:
    """A ``MarketFeed`` over loaded bars."""

    def __init__(self, result: ReplayResult) -> None:
        self.result = result
        self.symbols = result.symbols

    def bars(self) -> Iterator[Bar]:
        return iter(self.result.bars)


def _read(path: Path):  # noqa: ANN202 - a pandas DataFrame
    import pandas as pd

    name = path.name.lower()
    if not path.exists():
        raise ReplayError(f"{path}: no such file")
    if not name.endswith(SUFFIXES):
        raise ReplayError(f"{path}: unsupported file type; use one of {', '.join(SUFFIXES)}")
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        return pd.read_csv(path, skipinitialspace=True)
    except Exception as exc:  # pandas/pyarrow raise many kinds; all mean "cannot read"
        raise ReplayError(f"{path}: cannot be parsed as {name.rsplit('.', 1)[-1]}: "
                          f"{type(exc).__name__}: {exc}") from exc


def _normalize_columns(frame, path: Path):  # noqa: ANN001, ANN202 - pandas objects
    lower = {c: str(c).strip().lower() for c in frame.columns}
    frame = frame.rename(columns=lower)
    if "t" in frame.columns and "timestamp" not in frame.columns:
        frame = frame.rename(columns={k: v for k, v in ALPACA.items() if k in frame.columns})
    elif "s" in frame.columns and "symbol" not in frame.columns:
        frame = frame.rename(columns={"s": "symbol"})
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns)) or "none"
        raise ReplayError(
            f"{path}: missing column(s) {', '.join(missing)}; found {found}. Expected Alpaca "
            "columns t,o,h,l,c,v[,n,vw] or timestamp,open,high,low,close,volume"
            "[,trade_count,vwap][,symbol]"
        )
    return frame


def _timestamps_ns(column) -> np.ndarray:  # noqa: ANN001 - a pandas Series
    """int64 ns since the epoch, with -1 where the value cannot be a time."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(column):
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64")
        magnitude = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 0.0
        if magnitude < 1e11:
            scale = 1e9  # seconds
        elif magnitude < 1e14:
            scale = 1e6  # milliseconds
        elif magnitude < 1e17:
            scale = 1e3  # microseconds
        else:
            scale = 1.0  # nanoseconds
        out = np.full(len(values), -1, dtype=np.int64)
        ok = np.isfinite(values) & (values > 0)
        out[ok] = np.round(values[ok] * scale).astype(np.int64)
        return out
    text = column.astype("string")
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601").dt.as_unit("ns")
    out = np.full(len(text), -1, dtype=np.int64)
    ok = parsed.notna().to_numpy()
    out[ok] = parsed[ok].astype("int64").to_numpy()
    return out


def load_bars(path: str | Path, symbol: str | None = None, interval_s: int = 60) -> ReplayResult:
    """Read, validate, de-duplicate and sort the bars of a CSV or Parquet file."""
    import pandas as pd

    path = Path(path)
    frame = _normalize_columns(_read(path), path)
    rows = len(frame)
    if "symbol" not in frame.columns:
        if not symbol:
            raise ReplayError(f"{path}: the file has no symbol column; name it with --symbol")
        symbols_col = np.full(rows, symbol.upper(), dtype=object)
    else:
        symbols_col = frame["symbol"].astype("string").fillna("").str.strip().str.upper()
        symbols_col = symbols_col.to_numpy(dtype=object)
    reasons: Counter[str] = Counter()
    ts = _timestamps_ns(frame["timestamp"])
    prices = {}
    for name in ("open", "high", "low", "close", "volume"):
        prices[name] = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype="float64")
    o, h, lo, c, v = (prices[k] for k in ("open", "high", "low", "close", "volume"))
    trade_count = (pd.to_numeric(frame["trade_count"], errors="coerce").to_numpy(dtype="float64")
                   if "trade_count" in frame.columns else None)
    vwap = (pd.to_numeric(frame["vwap"], errors="coerce").to_numpy(dtype="float64")
            if "vwap" in frame.columns else None)

    good = np.ones(rows, dtype=bool)

    def drop(mask: np.ndarray, reason: str) -> None:
        nonlocal good
        bad = mask & good
        count = int(bad.sum())
        if count:
            reasons[reason] += count
            first = int(np.argmax(bad))
            log.warning("%s: quarantined %d row(s): %s (first at row %d)", path, count, reason,
                        first + 2)
            good &= ~mask

    with np.errstate(invalid="ignore"):
        drop(ts < 0, "unparseable timestamp")
        drop(symbols_col == "", "missing symbol")
        finite = np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c)
        drop(~finite, "missing or non-finite price")
        drop((o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0), "non-positive price")
        drop(h < lo, "high below low")
        drop((o < lo) | (o > h) | (c < lo) | (c > h), "open or close outside the high-low range")
        drop(~np.isfinite(v) | (v < 0), "missing or negative volume")

    index = np.flatnonzero(good)
    order = np.lexsort((symbols_col[index].astype(str), ts[index]))
    index = index[order]
    bars: list[Bar] = []
    seen_last: dict[str, int] = {}
    duplicates = 0
    new = Bar
    for i in index.tolist():
        sym = symbols_col[i]
        t = int(ts[i])
        if seen_last.get(sym) == t:
            duplicates += 1
            continue
        seen_last[sym] = t
        n = trade_count[i] if trade_count is not None else math.nan
        w = vwap[i] if vwap is not None else math.nan
        bars.append(new(sym, t, float(o[i]), float(h[i]), float(lo[i]), float(c[i]),
                        float(v[i]), int(n) if n == n else None, float(w) if w == w else None,
                        0, interval_s))
    if duplicates:
        reasons["duplicate timestamp"] += duplicates
        log.warning("%s: dropped %d duplicate (symbol, timestamp) row(s)", path, duplicates)
    if not bars and rows:
        raise ReplayError(f"{path}: none of its {rows} rows is a valid bar "
                          f"({', '.join(f'{k}: {n}' for k, n in reasons.items())})")
    symbols = tuple(sorted({b.symbol for b in bars}))
    return ReplayResult(bars, symbols, sum(reasons.values()), rows, dict(reasons))



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
