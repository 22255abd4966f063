"""Alpaca's shapes: msgpack bars the SDK parses, money strings, time strings, page tokens,
and the bars endpoint's pagination and aggregation."""

from __future__ import annotations

from datetime import UTC, datetime

import msgpack
import pytest
from alpaca.data.models import Bar as SdkBar

from gnosis.model.types import NANOS_PER_MINUTE, Bar
from gnosis.simexchange.bars import aggregate, bars_page, parse_limit, parse_timeframe
from gnosis.simexchange.market import BarHistory, ticks_for_bar, updated_bar
from gnosis.simexchange.wire import (
    WireError,
    bar_message,
    decode_token,
    encode_token,
    money,
    pack,
    parse_time,
    rfc3339,
    rfc3339_eastern,
)
from tests.conftest import T0, random_walk_bars


def test_stream_bar_is_an_array_of_maps_with_a_msgpack_timestamp() -> None:
    bar = Bar("SPY", T0, 470.0, 471.0, 469.5, 470.5, 1200.0, None, None)
    frame = pack([bar_message(bar)])
    assert frame[0] == 0x91  # a one-element array
    # ext type -1 (a timestamp) in the packed bytes: fixext 4 / fixext 8 / ext 8 with 12 bytes
    assert any(marker in frame for marker in (b"\xd6\xff", b"\xd7\xff", b"\xc7\x0c\xff"))
    (message,) = msgpack.unpackb(frame)
    assert isinstance(message["t"], msgpack.Timestamp)
    assert message["T"] == "b" and "n" in message and "vw" in message
    message["t"] = message["t"].to_datetime()  # what alpaca-py's stream does before parsing
    parsed = SdkBar("SPY", message)
    assert parsed.timestamp == datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    assert parsed.trade_count is None and parsed.close == 470.5


def test_money_and_times_as_alpaca_writes_them() -> None:
    assert money(100000.0) == "100000"
    assert money(470.125, 2) == "470.12" or money(470.125, 2) == "470.13"
    assert money(-0.0000001) == "0"
    assert money(None) is None
    assert rfc3339(T0) == "2024-01-02T14:30:00Z"
    assert rfc3339(T0 + 1_500) == "2024-01-02T14:30:00.000001Z"
    assert rfc3339_eastern(T0) == "2024-01-02T09:30:00-05:00"
    assert parse_time("2024-01-02T14:30:00Z", "start") == T0
    assert parse_time("2024-01-02T09:30:00-05:00", "start") == T0
    assert parse_time("2024-01-02T14:30:00", "start") == T0  # naive is UTC, as the SDK sends
    with pytest.raises(WireError) as refused:
        parse_time("yesterday", "start")
    assert refused.value.status == 400


def test_page_tokens_round_trip_and_refuse_garbage() -> None:
    assert decode_token(encode_token("SPY", 123), 2) == ["SPY", "123"]
    for bad in ("!!!", encode_token("only-one")):
        with pytest.raises(WireError):
            decode_token(bad, 2)


def test_timeframes_and_limits() -> None:
    assert parse_timeframe("5Min").amount == 5
    assert parse_timeframe("1Hour").unit == "hour"
    assert parse_timeframe("1Day").unit == "day"
    for bad in ("", "0Min", "60Min", "2Day", "1Fortnight"):
        with pytest.raises(WireError):
            parse_timeframe(bad)
    assert parse_limit(None) == 1000
    for bad in ("0", "-3", "x", "10001"):
        with pytest.raises(WireError):
            parse_limit(bad)


def _history(*series: list[Bar]) -> BarHistory:
    history = BarHistory()
    for bars in series:
        for bar in bars:
            history.append(bar)
    return history


def test_pagination_returns_every_bar_once_across_symbols() -> None:
    spy = random_walk_bars(25, seed=1, symbol="SPY")
    qqq = random_walk_bars(30, seed=2, symbol="QQQ", start=400.0)
    history = _history(spy, qqq)
    seen: list[tuple[str, str]] = []
    token = None
    pages = 0
    while True:
        page = bars_page(history.window, ["SPY", "QQQ"], parse_timeframe("1Min"), T0,
                         T0 + 10**15, 7, token)
        pages += 1
        assert sum(len(v) for v in page["bars"].values()) <= 7
        seen += [(s, b["t"]) for s, bars in page["bars"].items() for b in bars]
        token = page["next_page_token"]
        if token is None:
            break
    assert pages == 8  # 55 bars, 7 a page
    assert len(seen) == len(set(seen)) == 55
    assert [s for s, _ in seen] == ["QQQ"] * 30 + ["SPY"] * 25  # by symbol, then time


def test_bars_page_honours_start_end_and_sort() -> None:
    bars = random_walk_bars(20, seed=3)
    history = _history(bars)
    start, end = T0 + 5 * NANOS_PER_MINUTE, T0 + 9 * NANOS_PER_MINUTE
    page = bars_page(history.window, ["SPY"], parse_timeframe("1Min"), start, end, 100, None)
    times = [b["t"] for b in page["bars"]["SPY"]]
    assert times == [rfc3339(start + i * NANOS_PER_MINUTE) for i in range(5)]  # end inclusive
    desc = bars_page(history.window, ["SPY"], parse_timeframe("1Min"), start, end, 100, None,
                     descending=True)
    assert [b["t"] for b in desc["bars"]["SPY"]] == times[::-1]
    empty = bars_page(history.window, ["AAPL"], parse_timeframe("1Min"), start, end, 100, None)
    assert empty == {"bars": {}, "next_page_token": None}


def test_aggregation_folds_minutes_into_clock_aligned_buckets() -> None:
    bars = random_walk_bars(12, seed=4)
    five = aggregate(bars, "min", 5)
    assert [b.ts_event for b in five] == [T0, T0 + 5 * NANOS_PER_MINUTE,
                                          T0 + 10 * NANOS_PER_MINUTE]
    first = bars[:5]
    assert five[0].open == first[0].open and five[0].close == first[-1].close
    assert five[0].high == max(b.high for b in first)
    assert five[0].low == min(b.low for b in first)
    assert five[0].volume == sum(b.volume for b in first)
    assert five[2].volume == bars[10].volume + bars[11].volume  # the partial bucket
    (day,) = aggregate(bars, "day", 1)
    assert rfc3339(day.ts_event) == "2024-01-02T05:00:00Z"  # midnight in New York


def test_synthetic_ticks_follow_the_bar_path_inside_its_minute() -> None:
    up = Bar("SPY", T0, 470.0, 471.0, 469.0, 470.8, 5000.0, 40, 470.2)
    ticks = ticks_for_bar(up, 100)
    trades = [t.message for t in ticks if t.channel == "trades"]
    quotes = [t.message for t in ticks if t.channel == "quotes"]
    assert [t["p"] for t in trades] == [470.0, 469.0, 471.0, 470.8]  # O, L, H, C
    assert all(T0 <= t.ts < up.ts_close for t in ticks)
    assert all(q["bp"] <= t["p"] <= q["ap"] for q, t in zip(quotes, trades))
    down = Bar("SPY", T0, 470.0, 471.0, 469.0, 469.5, 5000.0, 40, 470.2)
    assert [t.message["p"] for t in ticks_for_bar(down, 0) if t.channel == "trades"] == \
        [470.0, 471.0, 469.0, 469.5]


def test_updated_bars_are_rare_deterministic_and_stay_in_range() -> None:
    bars = random_walk_bars(2000, seed=5)
    updates = [updated_bar(b, seed=7) for b in bars]
    revised = [(b, u) for b, u in zip(bars, updates) if u is not None]
    assert 0.01 < len(revised) / len(bars) < 0.08
    assert [u is None for u in updates] == [updated_bar(b, seed=7) is None for b in bars]
    for bar, update in revised:
        assert update.ts_event == bar.ts_event and update.volume > bar.volume
        assert bar.low <= update.close <= bar.high
