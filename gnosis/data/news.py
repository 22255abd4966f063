"""News headlines from a file: the Sentiment agent's news on replayed data (``--news FILE``).

Format (CSV, gzipped CSV or Parquet; one headline a row; the fields of Alpaca's news API):

    created_at,symbols,headline[,summary,source]

- ``created_at``: when it was published: ISO-8601 with an offset or ``Z`` (naive times only
  with ``--tz``; epoch numbers as for bars, see ``gnosis.data.timestamps``);
- ``symbols``: the tickers it is about, comma- or space-separated inside one quoted field
  (``"AAPL,MSFT"`` or ``"AAPL MSFT"``), any case;
- ``headline``: the text the agent scores; ``summary`` and ``source`` are kept for display.

Rows with an unparseable time, no symbols or an empty headline are quarantined and counted; a
row repeating the time, symbols and headline of an earlier one is dropped as a duplicate. A file
that cannot be read, has no rows or no usable row is refused with ``NewsError``.

``NewsFile.headlines(symbol, after_ns, until_ns)`` returns what was published in
(``after_ns``, ``until_ns``], oldest first, by bisection over the symbol's publication times:
a bar sees the headlines published since the previous bar's close up to its own close (the
night's news at the session's first bar), never a later one.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gnosis.data.files import (
    InputError,
    RowScreen,
    lower_columns,
    read_table,
    require_columns,
    require_rows,
    text_column,
)
from gnosis.data.timestamps import TimestampError, to_ns
from gnosis.model.market import Headline

REQUIRED = ("created_at", "symbols", "headline")
FORMAT = "created_at,symbols,headline[,summary,source]"
_SEPARATORS = re.compile(r"[\s,;\[\]'\"]+")


class NewsError(InputError):
    """A news file that cannot be used, with the reason in the message."""


class NewsFile:
    """A ``NewsProvider`` over a file's headlines, indexed by symbol and publication time."""

    def __init__(self, path: Path, rows: int, reasons: dict[str, int],
                 index: dict[str, tuple[list[int], tuple[Headline, ...]]]) -> None:
        self.path = path
        self.rows = rows
        self.reasons = reasons
        self._index = index
        self.count = len({h for _, items in index.values() for h in items})

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(sorted(self._index))

    def all(self) -> tuple[Headline, ...]:
        """Every headline once, in publication order (a headline about two symbols is one)."""
        unique = {id(h): h for _, items in self._index.values() for h in items}
        return tuple(sorted(unique.values(), key=lambda h: (h.ts_event, h.headline)))

    def headlines(self, symbol: str, after_ns: int, until_ns: int) -> Sequence[Headline]:
        entry = self._index.get(symbol)
        if entry is None:
            return ()
        times, items = entry
        return items[bisect_right(times, after_ns):bisect_right(times, until_ns)]


def load_news(path: str | Path, *, tz: str | None = None,
              epoch_unit: str | None = None) -> NewsFile:
    """Read, validate and index a news file (see the module for the format)."""
    path = Path(path)
    frame = lower_columns(read_table(path, NewsError))
    require_columns(frame, path, REQUIRED, FORMAT, NewsError)
    rows = require_rows(frame, path, NewsError)
    try:
        created = to_ns(frame["created_at"], tz=tz, epoch_unit=epoch_unit, name="created_at")
    except TimestampError as exc:
        raise NewsError(f"{path}: {exc}") from None
    symbols = [tuple(dict.fromkeys(t for t in _SEPARATORS.split(text.upper()) if t))
               for text in text_column(frame, "symbols")]
    headline = text_column(frame, "headline")
    screen = RowScreen(path, rows)
    screen.drop(created < 0, "unparseable created_at")
    screen.drop(np.array([not s for s in symbols]), "no symbols")
    screen.drop(headline == "", "empty headline")
    if not screen.good.any():
        raise NewsError(f"{path}: none of its {rows} rows is a usable headline "
                        f"({', '.join(f'{k}: {n}' for k, n in screen.reasons.items())})")
    summary, source = text_column(frame, "summary"), text_column(frame, "source")
    good = np.flatnonzero(screen.good)
    by_symbol: dict[str, list[Headline]] = {}
    seen: set[tuple[int, tuple[str, ...], str]] = set()
    for i in good[np.argsort(created[good], kind="stable")].tolist():
        key = (int(created[i]), symbols[i], headline[i])
        if key in seen:
            screen.count("duplicate headline")
            continue
        seen.add(key)
        item = Headline(int(created[i]), symbols[i], headline[i], summary[i], source[i])
        for symbol in symbols[i]:
            by_symbol.setdefault(symbol, []).append(item)
    index = {symbol: ([h.ts_event for h in items], tuple(items))
             for symbol, items in by_symbol.items()}
    return NewsFile(path, rows, dict(screen.reasons), index)
