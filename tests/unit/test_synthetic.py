"""The synthetic market: deterministic, valid, on the exchange calendar, with phase signatures."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from gnosis.data.synthetic import PHASES, SyntheticMarket
from gnosis.model.types import Bar, InvalidValue, format_ns


def test_same_seed_same_bars_other_seed_other_bars() -> None:
    a = list(SyntheticMarket(symbols=("SPY", "QQQ"), seed=3, days=2).bars())
    b = list(SyntheticMarket(symbols=("SPY", "QQQ"), seed=3, days=2).bars())
    c = list(SyntheticMarket(symbols=("SPY", "QQQ"), seed=4, days=2).bars())
    assert a == b
    assert a != c


def test_every_bar_passes_validation_and_order_is_time_then_symbol() -> None:
    market = SyntheticMarket(symbols=("SPY", "QQQ", "IWM"), seed=5, days=3)
    bars = list(market.bars())
    assert len(bars) == market.total_bars == 3 * 390 * 3
    for bar in bars:
        assert Bar(*bar) == bar  # re-validated through the checked constructor
    rank = {s: i for i, s in enumerate(market.symbols)}  # within a minute: configured order
    keys = [(b.ts_event, rank[b.symbol]) for b in bars]
    assert keys == sorted(keys)


def test_sessions_come_from_the_xnys_calendar_with_early_closes() -> None:
    # 2024-11-27 full day, 11-28 Thanksgiving (closed), 11-29 early close at 13:00 ET
    market = SyntheticMarket(symbols=("SPY",), seed=1, start="2024-11-27", days=3)
    per_day: dict[str, list[int]] = defaultdict(list)
    for bar in market.bars():
        per_day[format_ns(bar.ts_event)[:10]].append(bar.ts_event)
    assert {d: len(ts) for d, ts in per_day.items()} == {
        "2024-11-27": 390, "2024-11-29": 210, "2024-12-02": 390}
    assert format_ns(per_day["2024-11-29"][0]) == "2024-11-29T14:30:00Z"
    assert format_ns(per_day["2024-11-29"][-1]) == "2024-11-29T17:59:00Z"


def test_phase_at_answers_the_ground_truth_of_every_bar() -> None:
    market = SyntheticMarket(symbols=("SPY", "QQQ"), seed=9, days=4)
    for bar, phase in market.iter_with_phase():
        assert market.phase_at(bar.symbol, bar.ts_event) == phase
    with pytest.raises(KeyError):
        market.phase_at("SPY", 0)


def test_phases_have_their_signatures() -> None:
    market = SyntheticMarket(symbols=("SPY",), seed=7, days=60)
    returns: dict[str, list[float]] = defaultdict(list)
    volumes: dict[str, list[float]] = defaultdict(list)
    prev = None
    for bar, phase in market.iter_with_phase():
        if prev is not None and bar.ts_event - prev.ts_event == 60 * 10**9:
            returns[phase].append(np.log(bar.close / prev.close))
            volumes[phase].append(bar.volume)
        prev = bar
    assert set(returns) == set(PHASES)
    vol = {p: np.std(r) * np.sqrt(252 * 390) for p, r in returns.items()}
    drift = {p: np.mean(r) / np.std(r) for p, r in returns.items()}
    assert vol["calm"] < vol["ranging"] < vol["volatile"]
    assert vol["volatile"] > 0.30 > vol["trending_up"]
    assert drift["trending_up"] > 0.15 and drift["trending_down"] < -0.15
    assert abs(drift["ranging"]) < 0.08 and abs(drift["volatile"]) < 0.08
    assert np.mean(volumes["volatile"]) > np.mean(volumes["ranging"]) > np.mean(volumes["calm"])


def test_accumulation_puts_volume_on_up_bars_and_distribution_on_down_bars() -> None:
    market = SyntheticMarket(symbols=("SPY",), seed=7, days=60)
    balance: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for bar, phase in market.iter_with_phase():
        side = 0 if bar.close > bar.open else 1
        balance[phase][side] += bar.volume
    up, down = balance["accumulation"]
    assert up > 1.3 * down
    up, down = balance["distribution"]
    assert down > 1.3 * up


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(InvalidValue, match="at least one symbol"):
        SyntheticMarket(symbols=())
    with pytest.raises(InvalidValue, match="duplicate"):
        SyntheticMarket(symbols=("SPY", "SPY"))
    with pytest.raises(InvalidValue, match="days"):
        SyntheticMarket(days=0)
