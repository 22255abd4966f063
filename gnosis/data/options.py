"""Options chain snapshots from a file: the Hedge agent's chain on replayed data
(``--options FILE``).

Format (CSV, gzipped CSV or Parquet; one contract of one snapshot a row; the fields of Alpaca's
option chain snapshots with each contract's open interest):

    timestamp,underlying,symbol,expiration_date,type,strike_price,open_interest,
    implied_volatility[,gamma,delta]

- ``timestamp``: when the snapshot was taken (as bar timestamps: an offset or ``Z``, naive
  times only with ``--tz``, epoch numbers);
- ``underlying``: the stock; ``symbol``: the contract (its OCC symbol);
- ``expiration_date``: ``YYYY-MM-DD`` (the contract expires at 16:00 New York that day) or a
  full timestamp;
- ``type``: ``call`` or ``put``; ``strike_price`` > 0; ``open_interest`` >= 0;
  ``implied_volatility`` > 0, annual (0.15 is 15%);
- ``gamma`` (>= 0, per share per $1) and ``delta`` (in [-1, 1]) may be empty: the agent then
  computes gamma with Black-Scholes from the implied volatility.

Rows that break these are quarantined and counted; a contract listed twice in one snapshot
keeps its first row. A file that cannot be read, has no rows or no usable row is refused with
``OptionsError``.

``OptionsFile.chain(symbol, spot, as_of_ns)`` serves the latest snapshot of ``symbol`` taken at
or before ``as_of_ns`` (the bar's close: never a later one) and at most ``max_age_s`` old
(default 5 days, so a Friday snapshot still serves a Monday; an older one is no chain at all),
priced at ``spot``. Snapshots are found by bisection and turned into contracts when first served
(the latest one per symbol is kept), so a large file costs arrays, not objects.
"""

from __future__ import annotations

from bisect import bisect_right
from pathlib import Path
from typing import Any

import numpy as np

from gnosis.data.files import (
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
from gnosis.model.market import CALL, PUT, OptionContract, OptionsChain
from gnosis.model.types import NANOS_PER_SECOND

REQUIRED = ("timestamp", "underlying", "symbol", "expiration_date", "type", "strike_price",
            "open_interest", "implied_volatility")
FORMAT = ("timestamp,underlying,symbol,expiration_date,type,strike_price,open_interest,"
          "implied_volatility[,gamma,delta]")
MAX_AGE_S = 5 * 86_400
EXPIRY_ZONE = "America/New_York"
EXPIRY_HOUR = 16  # options expire at the close of their expiration date


class OptionsError(InputError):
    """An options file that cannot be used, with the reason in the message."""


class OptionsFile:
    """An ``OptionsChainProvider`` over a file's snapshots, indexed by underlying and time."""

    def __init__(self, path: Path, rows: int, reasons: dict[str, int],
                 columns: dict[str, np.ndarray],
                 index: dict[str, tuple[list[int], list[tuple[int, int]]]],
                 max_age_s: float) -> None:
        self.path = path
        self.rows = rows
        self.reasons = reasons
        self._columns = columns
        self._index = index
        self._max_age_ns = max_age_s * NANOS_PER_SECOND
        self._latest: dict[str, tuple[int, tuple[OptionContract, ...]]] = {}

    @property
    def underlyings(self) -> tuple[str, ...]:
        return tuple(sorted(self._index))

    @property
    def snapshots(self) -> int:
        return sum(len(times) for times, _ in self._index.values())

    @property
    def contracts(self) -> int:
        return len(self._columns["strike"])

    def chain(self, symbol: str, spot: float, as_of_ns: int) -> OptionsChain | None:
        entry = self._index.get(symbol)
        if entry is None:
            return None
        times, bounds = entry
        k = bisect_right(times, as_of_ns) - 1
        if k < 0 or as_of_ns - times[k] > self._max_age_ns:
            return None
        latest = self._latest.get(symbol)
        if latest is None or latest[0] != k:
            latest = self._latest[symbol] = (k, self._build(symbol, *bounds[k]))
        return OptionsChain(symbol, times[k], spot, latest[1])

    def _build(self, underlying: str, start: int, end: int) -> tuple[OptionContract, ...]:
        c = self._columns
        return tuple(
            OptionContract(str(c["contract"][i]), underlying, int(c["expiry"][i]),
                           float(c["strike"][i]), str(c["right"][i]), float(c["oi"][i]),
                           float(c["iv"][i]), _optional(c["gamma"][i]), _optional(c["delta"][i]))
            for i in range(start, end)
        )


def _optional(value: float) -> float | None:
    return None if value != value else float(value)


def load_options(path: str | Path, *, tz: str | None = None, epoch_unit: str | None = None,
                 max_age_s: float = MAX_AGE_S) -> OptionsFile:
    """Read, validate and index an options snapshot file (see the module for the format)."""
    path = Path(path)
    frame = lower_columns(read_table(path, OptionsError))
    require_columns(frame, path, REQUIRED, FORMAT, OptionsError)
    rows = require_rows(frame, path, OptionsError)
    try:
        ts = to_ns(frame["timestamp"], tz=tz, epoch_unit=epoch_unit)
        expiry = _expiries_ns(frame["expiration_date"], tz)
    except TimestampError as exc:
        raise OptionsError(f"{path}: {exc}") from None
    columns = _columns(frame, ts, expiry)
    screen = RowScreen(path, rows)
    _screen_rows(columns, screen)
    if not screen.good.any():
        raise OptionsError(f"{path}: none of its {rows} rows is a usable contract "
                           f"({', '.join(f'{k}: {n}' for k, n in screen.reasons.items())})")
    kept = _snapshot_order(columns, screen)
    columns = {name: values[kept] for name, values in columns.items()}
    return OptionsFile(path, rows, dict(screen.reasons), columns, _index(columns), max_age_s)


def _expiries_ns(column: Any, tz: str | None) -> np.ndarray:
    """Expiry instants: a date alone is 16:00 New York that day; a full time is itself."""
    import pandas as pd

    text = column.astype("string").str.strip()
    date_only = text.fillna("").str.fullmatch(r"\d{4}-\d{2}-\d{2}").to_numpy()
    out = np.full(len(text), -1, dtype=np.int64)
    if date_only.any():
        days = pd.to_datetime(text[date_only], errors="coerce", format="%Y-%m-%d")
        closes = (days + pd.Timedelta(hours=EXPIRY_HOUR)).dt.tz_localize(EXPIRY_ZONE)
        ok = closes.notna().to_numpy()
        values = np.full(len(closes), -1, dtype=np.int64)
        values[ok] = closes[ok].dt.as_unit("ns").astype("int64").to_numpy()
        out[date_only] = values
    if (~date_only).any():
        out[~date_only] = to_ns(text[~date_only], tz=tz, name="expiration_date")
    return out


def _columns(frame: Any, ts: np.ndarray, expiry: np.ndarray) -> dict[str, np.ndarray]:
    rows = len(frame)
    nan = np.full(rows, np.nan)
    numbers = {name: number_column(frame, source) for name, source in (
        ("strike", "strike_price"), ("oi", "open_interest"), ("iv", "implied_volatility"),
        ("gamma", "gamma"), ("delta", "delta"))}
    columns = {name: nan if values is None else values for name, values in numbers.items()}
    columns.update(
        ts=ts, expiry=expiry,
        underlying=np.array([s.upper() for s in text_column(frame, "underlying")], dtype=object),
        contract=text_column(frame, "symbol"),
        right=np.array([s.lower() for s in text_column(frame, "type")], dtype=object),
    )
    return columns


def _screen_rows(c: dict[str, np.ndarray], screen: RowScreen) -> None:
    drop = screen.drop
    strike, oi, iv, gamma, delta = c["strike"], c["oi"], c["iv"], c["gamma"], c["delta"]
    with np.errstate(invalid="ignore"):
        drop(c["ts"] < 0, "unparseable timestamp")
        drop(c["underlying"] == "", "missing underlying")
        drop(c["contract"] == "", "missing contract symbol")
        drop((c["right"] != CALL) & (c["right"] != PUT), "type not call or put")
        drop(~(np.isfinite(strike) & (strike > 0)), "missing or non-positive strike")
        drop(c["expiry"] < 0, "unparseable expiration_date")
        drop(~(np.isfinite(oi) & (oi >= 0)), "missing or negative open interest")
        drop(~(np.isfinite(iv) & (iv > 0)), "missing or non-positive implied volatility")
        drop(~np.isnan(gamma) & ~(np.isfinite(gamma) & (gamma >= 0)),
             "negative or non-finite gamma")
        drop(~np.isnan(delta) & ~(np.abs(delta) <= 1.0), "delta outside [-1, 1]")


def _snapshot_order(c: dict[str, np.ndarray], screen: RowScreen) -> np.ndarray:
    """Good rows grouped by (underlying, snapshot time), file order inside a snapshot, the
    first row of a contract repeated within a snapshot."""
    good = np.flatnonzero(screen.good)
    good = good[np.argsort(c["ts"][good], kind="stable")]
    good = good[np.argsort(c["underlying"][good].astype(str), kind="stable")]
    seen: set[tuple[str, int, str]] = set()
    kept = []
    for i in good.tolist():
        key = (c["underlying"][i], int(c["ts"][i]), c["contract"][i])
        if key in seen:
            screen.count("duplicate contract in a snapshot")
            continue
        seen.add(key)
        kept.append(i)
    return np.asarray(kept, dtype=np.int64)


def _index(c: dict[str, np.ndarray]) -> dict[str, tuple[list[int], list[tuple[int, int]]]]:
    """Per underlying: snapshot times and each snapshot's [start, end) in the sorted rows."""
    index: dict[str, tuple[list[int], list[tuple[int, int]]]] = {}
    underlying, ts = c["underlying"], c["ts"]
    start = 0
    for end in range(1, len(ts) + 1):
        if end == len(ts) or underlying[end] != underlying[start] or ts[end] != ts[start]:
            times, bounds = index.setdefault(str(underlying[start]), ([], []))
            times.append(int(ts[start]))
            bounds.append((start, end))
            start = end
    return index
