"""BarAggregator: table of disorder cases, and a property against pandas resampling."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnosis.data.aggregator import BarAggregator, bucket_origin
from gnosis.model.types import Bar
from tests.conftest import MINUTE, T0, random_walk_bars

FIVE = 5 * MINUTE


def run(bars: list[Bar], target_s: int = 300, lateness: int = 0) -> tuple[list[Bar], dict]:
    agg = BarAggregator(target_s, allowed_lateness_s=lateness)
    out = [b for bar in bars for b in agg.add(bar)]
    return out + agg.flush(), dict(agg.stats)


def batch(bars: list[Bar], minutes: int = 5) -> pd.DataFrame:
    """The reference: pandas resampling of the distinct bars, in time order."""
    frame = pd.DataFrame([b._asdict() for b in bars]).drop_duplicates("ts_event")
    frame["t"] = pd.to_datetime(frame["ts_event"], utc=True)
    frame = frame.sort_values("t").set_index("t")
    frame["notional"] = frame["vwap"].fillna(frame["close"]) * frame["volume"]
    out = frame.resample(f"{minutes}min").agg({"open": "first", "high": "max", "low": "min",
                                                "close": "last", "volume": "sum",
                                                "notional": "sum"}).dropna(subset=["open"])
    return out


def as_frame(bars: list[Bar]) -> pd.DataFrame:
    return pd.DataFrame({"open": [b.open for b in bars], "high": [b.high for b in bars],
                         "low": [b.low for b in bars], "close": [b.close for b in bars],
                         "volume": [b.volume for b in bars]},
                        index=pd.to_datetime([b.ts_event for b in bars], utc=True))


SOURCE = random_walk_bars(30, seed=4)
CASES = [
    # (case, stream, expected bars out, expected stats subset)
    ("in order", SOURCE, 6, {"bars_in": 30}),
    ("gap of a whole bucket", SOURCE[:5] + SOURCE[10:], 5, {"bars_in": 25}),
    ("gap inside a bucket", SOURCE[:2] + SOURCE[4:], 6, {"bars_in": 28}),
    ("duplicates", SOURCE[:3] + [SOURCE[1], SOURCE[2]] + SOURCE[3:], 6, {"duplicates": 2}),
    ("out of order inside a bucket", [SOURCE[1], SOURCE[0]] + SOURCE[2:], 6,
     {"out_of_order": 1}),
    ("late after emit", SOURCE[:6] + [SOURCE[2]] + SOURCE[6:], 6, {"late_dropped": 1}),
]


@pytest.mark.parametrize(("case", "stream", "count", "stats"), CASES, ids=[c[0] for c in CASES])
def test_disorder_table(case: str, stream: list[Bar], count: int, stats: dict) -> None:
    out, got = run(stream)
    assert len(out) == count
    for key, value in stats.items():
        assert got.get(key, 0) == value, (key, got)
    reference = batch(stream)  # the late bar is a repeat, so the reference drops it as well
    pd.testing.assert_frame_equal(as_frame(out), reference[as_frame(out).columns],
                                  check_freq=False, check_names=False)


def test_lateness_lets_a_straggler_in() -> None:
    # minute 4 arrives after minutes 5 and 6: two minutes of lateness still take it in
    stream = SOURCE[:4] + SOURCE[5:7] + [SOURCE[4]] + SOURCE[7:]
    out, stats = run(stream, lateness=120)
    assert stats.get("late_dropped", 0) == 0
    pd.testing.assert_frame_equal(as_frame(out), batch(SOURCE)[as_frame(out).columns],
                                  check_freq=False, check_names=False)
    _, strict = run(stream, lateness=0)
    assert strict["late_dropped"] == 1


def test_interval_must_divide() -> None:
    with pytest.raises(ValueError, match="divide"):
        BarAggregator(target_s=90)


def test_multi_symbol_buckets_are_independent() -> None:
    spy = random_walk_bars(10, seed=1, symbol="SPY")
    qqq = random_walk_bars(10, seed=2, symbol="QQQ")
    merged = sorted(spy + qqq, key=lambda b: (b.ts_event, b.symbol))
    out, _ = run(merged)
    assert [(b.symbol, b.ts_event) for b in out] == [
        ("QQQ", T0), ("SPY", T0), ("QQQ", T0 + FIVE), ("SPY", T0 + FIVE)]
    assert out[1].volume == sum(b.volume for b in spy[:5])
    assert out[1].interval_s == 300


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=15, max_size=15), st.randoms(use_true_random=False))
def test_any_shuffle_within_buckets_equals_batch_resampling(keep: list[int], rnd) -> None:
    bars = [b for b, k in zip(random_walk_bars(15, seed=9), keep) if k]  # random gaps
    buckets: dict[int, list[Bar]] = {}
    for bar in bars:
        buckets.setdefault(bar.ts_event // FIVE, []).append(bar)
    stream = []
    for key in sorted(buckets):
        group = buckets[key][:]
        rnd.shuffle(group)
        stream += group
    out, _ = run(stream)
    if not bars:
        assert out == []
        return
    reference = batch(bars)
    got = as_frame(out)
    pd.testing.assert_frame_equal(got, reference[got.columns], check_freq=False,
                                  check_names=False)
    vwaps = [b.vwap for b in out]
    expected = (reference["notional"] / reference["volume"]).tolist()
    assert vwaps == pytest.approx(expected)


@pytest.mark.parametrize(("target_s", "origin_s"), [
    (300, 0), (3_600, 0), (4 * 3_600, 0),  # intraday buckets sit on the UTC grid
    (86_400, 5 * 3_600),  # days start at 05:00 UTC: midnight EST, 01:00 EDT
    (7 * 86_400, 4 * 86_400 + 5 * 3_600),  # weeks start on Monday (1970-01-05) at 05:00 UTC
])
def test_bucket_origins(target_s: int, origin_s: int) -> None:
    assert bucket_origin(target_s) == origin_s
    assert BarAggregator(target_s).origin_s == origin_s


def test_a_day_holds_the_whole_extended_session_across_utc_midnight() -> None:
    # 2024-01-02, 04:00-19:59 New York (EST) is 09:00 UTC to 00:59 UTC the next day
    start = T0 - (5 * 60 + 30) * MINUTE  # 09:00 UTC
    bars = random_walk_bars(16 * 60, seed=3, t0=start)
    out, _ = run(bars, target_s=86_400)
    assert len(out) == 1
    assert out[0].ts_event == T0 - (9 * 60 + 30) * MINUTE  # 05:00 UTC
    assert out[0].volume == sum(b.volume for b in bars)
