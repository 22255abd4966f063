"""The Alpaca feed's rules without a network: record conversion and quarantine, the bar
sequencer (order, duplicates, minute barrier, backfill merge, stale folding, late corrections)
and the exchange calendar."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import msgpack
import pytest

from gnosis.adapters.alpaca.calendar import MarketCalendar
from gnosis.adapters.alpaca.convert import VenueOrder, bar_from_raw, timestamp_ns
from gnosis.adapters.alpaca.feed import BarSequencer
from gnosis.data.quarantine import Quarantine
from gnosis.model.types import NANOS_PER_SECOND, Bar, InvalidValue

T0 = 1_704_205_800_000_000_000  # 2024-01-02 14:30 UTC
MINUTE = 60 * NANOS_PER_SECOND
GRACE = 3 * NANOS_PER_SECOND


def bar(symbol: str, minute: int, close: float = 100.0) -> Bar:
    return Bar(symbol, T0 + minute * MINUTE, close, close + 1, close - 1, close, 1000.0)


@pytest.mark.parametrize("value", [
    "2024-01-02T14:30:00Z", "2024-01-02T14:30:00.000000000Z", "2024-01-02T09:30:00-05:00",
    "2024-01-02T14:30:00.000+00:00", datetime(2024, 1, 2, 14, 30, tzinfo=UTC),
    msgpack.Timestamp.from_unix_nano(T0)])
def test_timestamps_in_every_shape_alpaca_sends(value: object) -> None:
    assert timestamp_ns(value) == T0


def test_nanosecond_fractions_and_offsets_are_kept() -> None:
    assert timestamp_ns("2024-01-02T14:30:00.123456789Z") == T0 + 123_456_000
    assert timestamp_ns("2024-01-02T14:30:01.5+00:00") == T0 + 1_500_000_000
    with pytest.raises(InvalidValue):
        timestamp_ns("2024-01-02T14:30:00")  # naive: refused, never guessed


def test_bad_bar_records_are_quarantined_and_counted_never_raised() -> None:
    quarantine = Quarantine()
    good = {"t": "2024-01-02T14:30:00Z", "o": 1.0, "h": 2.0, "l": 0.5, "c": 1.5, "v": 10,
            "n": 3, "vw": 1.2}
    assert bar_from_raw("spy", good, quarantine) == Bar("SPY", T0, 1.0, 2.0, 0.5, 1.5, 10.0,
                                                        3, 1.2)
    bad = [{**good, "h": 0.4}, {**good, "c": math.nan}, {**good, "o": None},
           {k: v for k, v in good.items() if k != "t"}, {**good, "t": "yesterday"},
           {**good, "v": -1}, "not a record"]
    assert all(bar_from_raw("SPY", record, quarantine) is None for record in bad)
    assert quarantine.total == len(bad)
    assert set(quarantine.counts) <= {"invalid_values", "malformed"}


def test_order_records_parse_cumulative_quantities_and_nested_legs() -> None:
    raw = {"id": "a", "client_order_id": "gn-1", "symbol": "spy", "side": "buy",
           "type": "market", "qty": "10", "filled_qty": "4", "filled_avg_price": "100.5",
           "status": "partially_filled", "order_class": "bracket",
           "updated_at": "2024-01-02T14:31:00.5Z",
           "legs": [{"id": "b", "client_order_id": "x", "symbol": "SPY", "side": "sell",
                     "type": "stop", "qty": "10", "filled_qty": "0", "status": "held",
                     "stop_price": "98"}]}
    order = VenueOrder.parse(raw)
    assert (order.symbol, order.qty, order.filled_qty, order.remaining) == ("SPY", 10, 4, 6)
    assert order.filled_value == pytest.approx(402.0) and order.is_open
    assert order.legs[0].stop_price == 98 and order.legs[0].status == "held"
    with pytest.raises(InvalidValue):
        VenueOrder.parse({"client_order_id": "no id"})


def test_bars_of_one_minute_go_out_together_in_symbol_order() -> None:
    seq = BarSequencer(("SPY", "QQQ"), grace_ns=GRACE)
    assert seq.live(bar("SPY", 0), 0) == []  # waiting for QQQ's bar of the same minute
    out = seq.live(bar("QQQ", 0), 1)
    assert [b.symbol for b in out] == ["QQQ", "SPY"]  # as a backtest orders them


def test_a_symbol_without_a_bar_is_not_waited_for_beyond_the_next_minute_or_the_grace() -> None:
    seq = BarSequencer(("SPY", "QQQ"), grace_ns=GRACE)
    seq.live(bar("SPY", 0), 0)
    assert seq.due(GRACE - 1) == []
    assert [b.ts_event for b in seq.due(GRACE)] == [T0]  # an IEX gap: QQQ had no trade
    seq.live(bar("SPY", 1), GRACE)
    out = seq.live(bar("SPY", 2), GRACE + 1)  # a later minute releases the earlier one
    assert [(b.symbol, b.ts_event) for b in out] == [("SPY", T0 + MINUTE)]


def test_duplicates_and_stale_bars_are_dropped_and_counted() -> None:
    seq = BarSequencer(("SPY",), grace_ns=GRACE)
    assert len(seq.live(bar("SPY", 5), 0)) == 1
    assert seq.live(bar("SPY", 5), 1) == []
    assert seq.live(bar("SPY", 3), 2) == []
    assert seq.stats["duplicate"] == 1 and seq.stats["stale"] == 1
    assert seq.last_ts["SPY"] == T0 + 5 * MINUTE


def test_backfill_fills_the_gap_before_the_pending_live_bar_and_never_twice() -> None:
    seq = BarSequencer(("SPY", "QQQ"), grace_ns=GRACE)
    seq.last_ts.update({"SPY": T0, "QQQ": T0})
    seq.live(bar("SPY", 4, 104), 0)  # live while the gap 1..3 is still being fetched
    history = [bar(s, m) for m in (1, 2, 3, 4) for s in ("QQQ", "SPY")]
    out = seq.history(history, fold_before=None)
    keys = [(b.symbol, (b.ts_event - T0) // MINUTE) for b, _trade in out]
    assert keys == [("QQQ", 1), ("SPY", 1), ("QQQ", 2), ("SPY", 2), ("QQQ", 3), ("SPY", 3),
                    ("QQQ", 4), ("SPY", 4)]
    spy4 = next(b for b, _ in out if b.symbol == "SPY" and b.ts_event == T0 + 4 * MINUTE)
    assert spy4.close == 104  # the live bar wins over history's copy of the same minute
    assert seq.live(bar("SPY", 4), 1) == [] and seq.history(history, None) == []


def test_backfilled_bars_older_than_the_stale_window_are_folded_not_traded() -> None:
    seq = BarSequencer(("SPY",), grace_ns=GRACE)
    seq.last_ts["SPY"] = T0
    history = [bar("SPY", m) for m in range(1, 6)]
    fold_before = T0 + 4 * MINUTE  # bars that closed before minute 4 are stale
    out = seq.history(history, fold_before=fold_before)
    assert [trade for _b, trade in out] == [False, False, True, True, True]
    assert seq.history([], None) == []


def test_a_late_correction_replaces_a_pending_bar_but_never_a_used_one() -> None:
    seq = BarSequencer(("SPY", "QQQ"), grace_ns=GRACE)
    seq.live(bar("SPY", 0, 100), 0)
    assert seq.revise(bar("SPY", 0, 101)) == "pending"
    out = seq.live(bar("QQQ", 0), 1)
    assert next(b for b in out if b.symbol == "SPY").close == 101
    assert seq.revise(bar("SPY", 0, 102)) == "used"  # traded on: journaled, not replayed
    assert seq.revise(bar("SPY", 7, 102)) == "new"


def test_after_a_reconnect_a_live_bar_past_a_gap_asks_history_once() -> None:
    seq = BarSequencer(("SPY",), grace_ns=GRACE)
    seq.last_ts["SPY"] = T0
    seq.suspect.add("SPY")
    assert seq.needs_gap_fill(bar("SPY", 3))
    assert not seq.needs_gap_fill(bar("SPY", 1))  # contiguous: nothing missing
    assert "SPY" not in seq.suspect
    assert not seq.needs_gap_fill(bar("SPY", 9))  # no reconnect since: an IEX gap is normal


def test_calendar_knows_regular_sessions_holidays_and_early_closes() -> None:
    calendar = MarketCalendar()
    assert calendar.in_session(T0)  # 2024-01-02 09:30 ET
    assert not calendar.in_session(T0 - MINUTE)  # 09:29: pre-market
    assert not calendar.in_session(T0 + 390 * MINUTE)  # 16:00
    new_year = T0 - 86_400 * NANOS_PER_SECOND  # 2024-01-01: closed
    assert not calendar.is_open(new_year)
    assert calendar.next_open(new_year) == T0
    black_friday = 1_700_836_200_000_000_000  # 2023-11-24 09:30 ET, closes 13:00
    assert calendar.session_close(black_friday) == black_friday + 210 * MINUTE
    # two sessions back from a Tuesday open: the Thursday before the long weekend
    assert calendar.sessions_back(T0 + MINUTE, 2) == 1_703_773_800_000_000_000
