"""Replay files: both column styles, CSV and Parquet, every timestamp form, bad rows counted,
unusable files refused with a message that says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from gnosis.data.replay import (
    ReplayError,
    ReplayFeed,
    load_bars,
    write_bars_csv,
    write_bars_parquet,
)
from gnosis.data.synthetic import SyntheticMarket
from gnosis.model.types import Bar


@pytest.fixture(scope="module")
def bars() -> list[Bar]:
    loaded = list(SyntheticMarket(symbols=("SPY", "QQQ"), seed=2, days=1).bars())
    return sorted(loaded, key=lambda b: (b.ts_event, b.symbol))


@pytest.mark.parametrize("style", ["alpaca", "plain"])
def test_csv_round_trip(tmp_path: Path, bars: list[Bar], style: str) -> None:
    path = tmp_path / "bars.csv"
    write_bars_csv(bars, path, style=style)
    result = load_bars(path)
    assert result.bars == bars and result.symbols == ("QQQ", "SPY")
    assert result.rows == len(bars) and result.quarantined == 0
    assert list(ReplayFeed(result).bars()) == bars


def test_parquet_round_trip(tmp_path: Path, bars: list[Bar]) -> None:
    path = tmp_path / "bars.parquet"
    write_bars_parquet(bars, path)
    assert load_bars(path).bars == bars


TS = 1_704_205_800  # 2024-01-02 14:30:00 UTC


@pytest.mark.parametrize("stamp", [
    str(TS), str(TS * 1000), str(TS * 10**9),
    "2024-01-02T14:30:00Z", "2024-01-02T09:30:00-05:00", "2024-01-02 14:30:00",
])
def test_timestamp_forms(tmp_path: Path, stamp: str) -> None:
    path = tmp_path / "one.csv"
    path.write_text(f"timestamp,open,high,low,close,volume\n{stamp},10,11,9,10.5,100\n")
    result = load_bars(path, symbol="spy")
    assert [(b.symbol, b.ts_event) for b in result.bars] == [("SPY", TS * 10**9)]


def test_bad_rows_are_quarantined_and_counted(tmp_path: Path) -> None:
    rows = [
        "t,o,h,l,c,v,S",
        "2024-01-02T14:30:00Z,10,11,9,10,100,SPY",  # good
        "2024-01-02T14:31:00Z,nan,11,9,10,100,SPY",
        "2024-01-02T14:32:00Z,10,inf,9,10,100,SPY",
        "2024-01-02T14:33:00Z,0,11,9,10,100,SPY",
        "2024-01-02T14:34:00Z,-1,11,9,10,100,SPY",
        "2024-01-02T14:35:00Z,10,9,11,10,100,SPY",  # high < low
        "2024-01-02T14:36:00Z,10,11,9,10,-5,SPY",
        "not a time,10,11,9,10,100,SPY",
        "2024-01-02T14:30:00Z,10,12,9,11,100,SPY",  # duplicate of the first
        "2024-01-02T14:38:00Z,10,11,9,12,100,SPY",  # close above high
        "2024-01-02T14:37:00Z,10,11,9,10,100,SPY",  # good, out of order
    ]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(rows) + "\n")
    result = load_bars(path)
    assert [b.ts_event % 3_600_000_000_000 // 60_000_000_000 for b in result.bars] == [30, 37]
    assert result.bars[0].high == 11  # the first of the duplicates is kept
    assert result.rows == 11 and result.quarantined == 9
    assert result.reasons == {
        "unparseable timestamp": 1, "missing or non-finite price": 2, "non-positive price": 2,
        "high below low": 1, "open or close outside the high-low range": 1,
        "missing or negative volume": 1, "duplicate timestamp": 1,
    }


@pytest.mark.parametrize(("content", "name", "message"), [
    (None, "missing.csv", "no such file"),
    ("a,b\n1,2\n", "cols.csv", "missing column(s) timestamp, open"),
    ("timestamp,open,high,low,close,volume\n2024-01-02T14:30:00Z,1,1,1,1,1\n", "nosym.csv",
     "no symbol column"),
    ("\x00\x01garbage", "junk.parquet", "cannot be parsed"),
    ("x", "bars.json", "unsupported file type"),
    ("timestamp,open,high,low,close,volume,symbol\nnope,1,1,1,1,1,X\n", "allbad.csv",
     "none of its 1 rows"),
])
def test_unusable_files_raise_clear_errors(tmp_path: Path, content: str | None, name: str,
                                           message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(ReplayError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_bars(path)
