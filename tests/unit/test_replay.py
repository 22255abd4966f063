"""Replay files: both column styles, CSV and Parquet, every timestamp form, bad rows counted,
unusable files refused with a message that says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from gnosis.data.replay import (
    ReplayError,
    ReplayFeed,
    ReplayResult,
    load_bars,
    resample,
    write_bars_csv,
    write_bars_parquet,
)
from gnosis.data.synthetic import SyntheticMarket
from gnosis.model.types import Bar, format_ns


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
HEADER = "timestamp,open,high,low,close,volume"


def write(tmp_path: Path, lines: list[str], name: str = "bars.csv",
          header: str = HEADER) -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def rows(stamps: list[str], price: float = 10.0) -> list[str]:
    return [f"{stamp},{price},{price * 1.01},{price * 0.99},{price},100" for stamp in stamps]


@pytest.mark.parametrize(("first", "second"), [
    (str(TS), str(TS + 60)),  # epoch seconds
    (str(TS * 1000), str((TS + 60) * 1000)),  # milliseconds
    (str(TS * 10**6), str((TS + 60) * 10**6)),  # microseconds
    (str(TS * 10**9), str((TS + 60) * 10**9)),  # nanoseconds
    (f"{TS}.0", f"{TS + 60}.0"),  # float seconds
    ("2024-01-02T14:30:00Z", "2024-01-02T14:31:00Z"),
    ("2024-01-02T09:30:00-05:00", "2024-01-02T09:31:00-05:00"),
    ("2024-01-02 14:30:00+00:00", "2024-01-02 14:31:00+0000"),
])
def test_timestamp_forms(tmp_path: Path, first: str, second: str) -> None:
    result = load_bars(write(tmp_path, rows([first, second])), symbol="spy")
    assert [(b.symbol, b.ts_event) for b in result.bars] == [
        ("SPY", TS * 10**9), ("SPY", (TS + 60) * 10**9)]
    assert result.interval_s == 60


@pytest.mark.parametrize(("zone", "stamps", "expected"), [
    ("America/New_York", ["2024-01-02 09:30:00", "2024-01-02 09:31:00"],
     ["2024-01-02T14:30:00Z", "2024-01-02T14:31:00Z"]),
    ("America/New_York", ["2024-07-01T09:30:00", "2024-07-01T09:31:00"],  # EDT
     ["2024-07-01T13:30:00Z", "2024-07-01T13:31:00Z"]),
    ("UTC", ["2024-01-02 14:30", "2024-01-02 14:31"],
     ["2024-01-02T14:30:00Z", "2024-01-02T14:31:00Z"]),
    ("Europe/Amsterdam", ["2024-01-02 09:00:00", "2024-01-02T10:00:00Z"],  # aware ones stay
     ["2024-01-02T08:00:00Z", "2024-01-02T10:00:00Z"]),
])
def test_naive_timestamps_are_read_in_the_zone_given(tmp_path: Path, zone: str,
                                                     stamps: list[str],
                                                     expected: list[str]) -> None:
    result = load_bars(write(tmp_path, rows(stamps)), symbol="X", tz=zone)
    assert [format_ns(b.ts_event) for b in result.bars] == expected


def test_naive_timestamps_without_a_zone_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, rows(["2024-01-02T14:30:00Z", "2024-01-02 09:31:00"]))
    with pytest.raises(ReplayError, match=r"bars.csv: 1 timestamp\(s\) have no UTC offset "
                                          r"\(first: row 3 '2024-01-02 09:31:00'\).*--tz"):
        load_bars(path, symbol="X")


def test_a_local_time_that_does_not_exist_is_quarantined(tmp_path: Path) -> None:
    # 02:30 on 2024-03-10 never happened in New York (clocks jumped from 02:00 to 03:00)
    stamps = ["2024-03-10 01:00", "2024-03-10 02:30", "2024-03-10 04:00", "2024-03-10 05:00"]
    result = load_bars(write(tmp_path, rows(stamps)), symbol="X", tz="America/New_York")
    assert result.reasons == {"unparseable timestamp": 1} and len(result.bars) == 3


@pytest.mark.parametrize(("zone", "expected"), [
    (None, ["2024-03-07T05:00:00Z", "2024-03-08T05:00:00Z", "2024-03-11T04:00:00Z"]),  # EST/EDT
    ("Europe/Amsterdam", ["2024-03-06T23:00:00Z", "2024-03-07T23:00:00Z", "2024-03-10T23:00:00Z"]),
])
def test_dates_alone_are_session_dates_stamped_at_midnight(tmp_path: Path, zone: str | None,
                                                          expected: list[str]) -> None:
    result = load_bars(write(tmp_path, rows(["2024-03-07", "2024-03-08", "2024-03-11"])),
                       symbol="X", tz=zone)
    assert [format_ns(b.ts_event) for b in result.bars] == expected
    assert result.interval_s == 86_400


@pytest.mark.parametrize(("values", "unit", "message"), [
    ([str(TS), str((TS + 60) * 1000)], None, "seconds and milliseconds mixed: no unit fits"),
    (["1000", "1060"], None, "1970: no unit fits"),
    ([str(TS), str(TS + 60), "5"], "s", None),  # told: the implausible value is quarantined
])
def test_the_epoch_unit_is_decided_from_every_value_or_asked_for(
    tmp_path: Path, values: list[str], unit: str | None, message: str | None,
) -> None:
    path = write(tmp_path, rows(values))
    if message is not None:
        with pytest.raises(ReplayError, match=r"bars.csv: .*no epoch unit.*--epoch-unit"):
            load_bars(path, symbol="X", epoch_unit=unit)
        return
    result = load_bars(path, symbol="X", epoch_unit=unit)
    assert [b.ts_event for b in result.bars] == [TS * 10**9, (TS + 60) * 10**9]
    assert result.reasons == {"unparseable timestamp": 1}


MINUTES = [f"2024-01-02T14:{m:02d}:00Z" for m in range(30, 40)]
NEXT_DAY = [f"2024-01-03T14:{m:02d}:00Z" for m in range(30, 36)]
HOURS = [f"2024-01-0{d}T{h}:00:00Z" for d in (2, 3, 4) for h in range(14, 21)]
DAILY = ["2024-03-07", "2024-03-08", "2024-03-11", "2024-03-12", "2024-03-13", "2024-03-14",
         "2024-03-15", "2024-03-18", "2024-03-19", "2024-03-20"]  # weekends, DST on 03-10
INTERVALS = [
    # (case, stamps, interval in seconds)
    ("1Min with an overnight gap", MINUTES + NEXT_DAY, 60),
    ("5Min with a missing bar", [f"2024-01-02T14:{m:02d}:00Z" for m in (30, 35, 45, 50, 55)],
     300),
    ("1H over three sessions", HOURS, 3_600),
    ("1D at midnight New York across DST and weekends",
     [f"{d}T05:00:00Z" if d < "2024-03-10" else f"{d}T04:00:00Z" for d in DAILY], 86_400),
    ("1D as dates", DAILY, 86_400),
    ("1W", ["2024-01-01", "2024-01-08", "2024-01-15", "2024-01-29"], 7 * 86_400),
]


@pytest.mark.parametrize(("case", "stamps", "interval_s"), INTERVALS,
                         ids=[c[0] for c in INTERVALS])
def test_the_bar_interval_is_inferred_from_the_timestamps(
    tmp_path: Path, case: str, stamps: list[str], interval_s: int,
) -> None:
    result = load_bars(write(tmp_path, rows(stamps)), symbol="X")
    assert result.interval_s == interval_s
    assert {b.interval_s for b in result.bars} == {interval_s}


REFUSED = [
    # (case, lines (with a symbol column), what the message must say)
    ("a 90 s step among 1Min bars",
     [f"{s},X" for s in rows(MINUTES[:4] + ["2024-01-02T14:34:30Z"] + MINUTES[5:])],
     r"bars.csv: X: steps are not whole multiples of the 1Min interval: row 6 is 1Min30s "
     r"after row 5"),
    ("a 12-hour step among daily bars",
     [f"{s},X" for s in rows([*DAILY[:5], "2024-03-13T12:00:00-04:00", *DAILY[5:]])],
     r"bars.csv: X: steps are not whole multiples of the 1D interval: row 7 is 12H after "
     r"row 6; row 8 is 12H after row 7"),
    ("two symbols on different intervals",
     [f"{s},AAA" for s in rows(MINUTES)] + [f"{s},BBB" for s in rows(HOURS)],
     r"bars.csv: symbols have different bar intervals \(AAA 1Min, BBB 1H\)"),
    ("one bar per symbol", [f"{s},X" for s in rows(MINUTES[:1])],
     r"bars.csv: cannot infer the bar interval: no symbol has two bars"),
]


@pytest.mark.parametrize(("case", "lines", "message"), REFUSED, ids=[c[0] for c in REFUSED])
def test_mixed_or_unknowable_intervals_are_refused(tmp_path: Path, case: str,
                                                   lines: list[str], message: str) -> None:
    path = write(tmp_path, lines, header=HEADER + ",symbol")
    with pytest.raises(ReplayError, match=message):
        load_bars(path)


def test_a_symbol_that_contradicts_the_symbol_column_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, [f"{s},SPY" for s in rows(MINUTES)], header=HEADER + ",symbol")
    with pytest.raises(ReplayError, match=r"--symbol QQQ contradicts the file's symbol column "
                                          r"\(SPY\)"):
        load_bars(path, symbol="QQQ")
    assert load_bars(path, symbol="spy").symbols == ("SPY",)


def test_a_header_without_rows_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="bars.csv: no rows below the header"):
        load_bars(write(tmp_path, []), symbol="X")


def test_a_date_column_names_the_time(tmp_path: Path) -> None:
    """Daily downloads often call the time column Date; adjusted closes are ignored."""
    path = write(tmp_path, [f"{d},10,11,9,10,100,9.5" for d in DAILY[:3]],
                 header="Date,Open,High,Low,Close,Volume,Adj Close")
    result = load_bars(path, symbol="X")
    assert len(result.bars) == 3 and result.bars[0].close == 10.0


@pytest.mark.parametrize(("count", "kept"), [
    ("inf", False), ("-3", False), ("", True), ("12", True),
])
def test_trade_counts_that_cannot_be_counts_are_quarantined(tmp_path: Path, count: str,
                                                            kept: bool) -> None:
    lines = [f"{s},{n}" for s, n in zip(rows(MINUTES[:3]), ["5", count, "7"])]
    result = load_bars(write(tmp_path, lines, header=HEADER + ",trade_count"), symbol="X")
    assert len(result.bars) == (3 if kept else 2)
    assert result.reasons == ({} if kept else {"non-finite or negative trade count": 1})


JUMPS = [
    # (case, closes, closes kept)
    ("a x1e6 print", [10, 10.1, 1.01e7, 10.2, 10.3], [10, 10.1, 10.2, 10.3]),
    ("a /1e6 print", [10, 10.1, 1.01e-5, 10.2, 10.3], [10, 10.1, 10.2, 10.3]),
    ("the first bar is the bad one", [1e7, 10, 10.1, 10.2, 10.3], [10, 10.1, 10.2, 10.3]),
    ("two bad in a row", [10, 1e7, 1e7, 10.2, 10.3], [10, 10.2, 10.3]),
    ("x40 stays (below the threshold)", [10, 400, 10.2, 10.3, 10.4], [10, 400, 10.2, 10.3, 10.4]),
]


@pytest.mark.parametrize(("case", "closes", "kept"), JUMPS, ids=[c[0] for c in JUMPS])
def test_price_jumps_beyond_the_threshold_are_quarantined(
    tmp_path: Path, case: str, closes: list[float], kept: list[float],
) -> None:
    lines = [f"{s},{c},{c},{c},{c},100" for s, c in zip(MINUTES, closes)]
    result = load_bars(write(tmp_path, lines), symbol="X")
    assert [b.close for b in result.bars] == kept
    dropped = len(closes) - len(kept)
    assert result.reasons == ({"price jump beyond x50 of the previous bar": dropped}
                              if dropped else {})


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
    ("timestamp,open,high,low,close,volume,symbol\n", "empty.csv", "no rows below the header"),
])
def test_unusable_files_raise_clear_errors(tmp_path: Path, content: str | None, name: str,
                                           message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(ReplayError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_bars(path)


@pytest.fixture(scope="module")
def two_sessions() -> ReplayResult:
    bars = list(SyntheticMarket(symbols=("SPY", "QQQ"), seed=3, days=2).bars())
    return ReplayResult(sorted(bars, key=lambda b: (b.ts_event, b.symbol)), ("QQQ", "SPY"), 0,
                        len(bars), {}, 60)


@pytest.mark.parametrize(("timeframe", "count", "first"), [
    (300, 2 * 78, "2024-01-02T14:30:00Z"),
    (3_600, 2 * 7, "2024-01-02T14:00:00Z"),  # on the UTC hour: 14:00 holds 14:30-14:59
    (86_400, 2, "2024-01-02T05:00:00Z"),  # New York days: midnight EST
])
def test_resample_folds_each_symbol_into_the_timeframe(two_sessions: ReplayResult,
                                                       timeframe: int, count: int,
                                                       first: str) -> None:
    out = resample(two_sessions, timeframe)
    assert out.interval_s == timeframe and {b.interval_s for b in out.bars} == {timeframe}
    spy = [b for b in out.bars if b.symbol == "SPY"]
    source = [b for b in two_sessions.bars if b.symbol == "SPY"]
    assert len(spy) == count and format_ns(spy[0].ts_event) == first
    assert spy[0].open == source[0].open and spy[-1].close == source[-1].close
    assert sum(b.volume for b in spy) == pytest.approx(sum(b.volume for b in source))
    assert max(b.high for b in spy) == max(b.high for b in source)


@pytest.mark.parametrize("timeframe", [30, 90])
def test_resample_only_coarsens_by_whole_multiples(two_sessions: ReplayResult,
                                                   timeframe: int) -> None:
    with pytest.raises(ReplayError, match="whole multiple of the file's interval"):
        resample(two_sessions, timeframe)
