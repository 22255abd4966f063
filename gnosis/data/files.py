"""What every input file loader shares: reading a table, screening its rows, the error type.

A file that cannot be used at all raises ``InputError`` with one line that names the file and
says what is wrong. A row that cannot be used is quarantined: counted under a reason (and the
first one of each reason logged with its row number), never raised into the bot.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
FIRST_ROW = 2  # the row number of a CSV's first data row (the header is row 1)


class InputError(Exception):
    """An input file that cannot be used, with the reason in the message."""


def read_table(path: Path, error: type[InputError] = InputError) -> Any:
    """The file as a pandas DataFrame; CSV (optionally gzipped) or Parquet."""
    import pandas as pd

    name = path.name.lower()
    if not path.exists():
        raise error(f"{path}: no such file")
    if not name.endswith(SUFFIXES):
        raise error(f"{path}: unsupported file type; use one of {', '.join(SUFFIXES)}")
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        return pd.read_csv(path, skipinitialspace=True)
    except Exception as exc:  # pandas/pyarrow raise many kinds; all mean "cannot read"
        raise error(f"{path}: cannot be parsed as {name.rsplit('.', 1)[-1]}: "
                    f"{type(exc).__name__}: {exc}") from exc


def lower_columns(frame: Any) -> Any:
    """The frame with its column names stripped and lower-cased."""
    return frame.rename(columns={c: str(c).strip().lower() for c in frame.columns})


def require_columns(frame: Any, path: Path, required: Sequence[str], expected: str,
                    error: type[InputError] = InputError) -> None:
    """Refuse a frame that lacks a required column, naming what it has and what is expected."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns)) or "none"
        raise error(f"{path}: missing column(s) {', '.join(missing)}; found {found}. "
                    f"Expected {expected}")


def require_rows(frame: Any, path: Path, error: type[InputError] = InputError) -> int:
    rows = len(frame)
    if rows == 0:
        raise error(f"{path}: no rows below the header")
    return rows


def text_column(frame: Any, name: str) -> np.ndarray:
    """A column as stripped strings ("" where missing), or all "" when there is none."""
    if name not in frame.columns:
        return np.full(len(frame), "", dtype=object)
    return frame[name].astype("string").fillna("").str.strip().to_numpy(dtype=object)


def number_column(frame: Any, name: str) -> np.ndarray | None:
    """A column as float64 (NaN where not a number), or None when there is none."""
    import pandas as pd

    if name not in frame.columns:
        return None
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype="float64")


class RowScreen:
    """The rows still good, and how many were quarantined for which reason."""

    def __init__(self, path: Path, rows: int) -> None:
        self.path = path
        self.good = np.ones(rows, dtype=bool)
        self.reasons: Counter[str] = Counter()

    def drop(self, mask: np.ndarray, reason: str) -> None:
        """Quarantine the still-good rows where ``mask`` holds."""
        bad = mask & self.good
        count = int(bad.sum())
        if count:
            self.reasons[reason] += count
            log.warning("%s: quarantined %d row(s): %s (first at row %d)", self.path, count,
                        reason, int(np.argmax(bad)) + FIRST_ROW)
            self.good &= ~mask

    def count(self, reason: str, n: int = 1) -> None:
        """Count rows quarantined one at a time (duplicates, jumps) after the screen."""
        self.reasons[reason] += n

    @property
    def total(self) -> int:
        return sum(self.reasons.values())
