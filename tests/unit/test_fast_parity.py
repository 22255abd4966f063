"""The compiled fast path decides exactly as the reference path does, bit for bit.

Each test runs the same bars through ``AgentEnsemble(fast=False)`` (the reference objects, the
readable specification) and ``AgentEnsemble(fast=True)`` (one compiled step per bar) and
compares whole ``Decision`` objects: signal, confidence, every vote with its confidence and
reasoning, inactive agents and why, and the full regime state (HMM probabilities included).
Floats are compared with ``==``, so a last-bit difference fails. The samples are small enough
for CI; ``benchmarks/fast_parity.py`` checks a million bars and the decisions files.
"""

from __future__ import annotations

import pickle
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gnosis.bootstrap import simulated_inputs
from gnosis.cli import main
from gnosis.data.replay import load_bars
from gnosis.data.synthetic import SyntheticMarket
from gnosis.model.market import OptionsChain
from gnosis.model.types import Bar, Decision
from gnosis.strategies.ensemble import AgentEnsemble
from gnosis.strategies.fast import FastBrain, UnsupportedForFastPath
from tests.conftest import interleave, random_walk_bars

DATA = Path(__file__).resolve().parents[1] / "data"


def decide(bars: list[Bar], fast: bool, market: SyntheticMarket | None = None,
           seed: int = 7) -> tuple[list[Decision], Counter[str]]:
    inputs = simulated_inputs(market, seed) if market is not None else None
    strategy = AgentEnsemble(seed=seed, fast=fast,
                             chain_provider=inputs.options if inputs else None,
                             news_provider=inputs.news if inputs else None)
    return [strategy.on_bar(bar) for bar in bars], strategy.agent_errors


def first_difference(reference: list[Decision], fast: list[Decision]) -> str:
    for index, (a, b) in enumerate(zip(reference, fast)):
        if a != b:
            fields = [name for name in ("signal", "confidence", "votes", "regime",
                                        "regime_confidence", "reasoning", "inactive",
                                        "regime_state") if getattr(a, name) != getattr(b, name)]
            return f"bar {index}: {fields}: {a!r} != {b!r}"
    return f"lengths {len(reference)} != {len(fast)}"


def assert_same(bars: list[Bar], market: SyntheticMarket | None = None, seed: int = 7) -> None:
    reference, reference_errors = decide(bars, False, market, seed)
    fast, fast_errors = decide(bars, True, market, seed)
    assert reference == fast, first_difference(reference, fast)
    # the marks the engine tallies come from the step's codes, not from the formatted votes
    assert [d.vote_marks for d in fast] == [d.vote_marks for d in reference]
    assert reference_errors == fast_errors
    signals = Counter(d.signal for d in fast)
    assert len(signals) == 3, signals  # it decided both ways: the comparison means something


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return SyntheticMarket(symbols=("SPY", "QQQ"), seed=7, days=22)


def test_the_synthetic_market_through_a_first_fit_and_a_refit(market: SyntheticMarket) -> None:
    bars = [bar for bar in market.bars() if bar.symbol == "SPY"][:8_900]
    assert_same(bars, market)  # first fit in effect from bar 990, the refit from 8,790


def test_two_symbols_interleaved_with_staggered_fits(market: SyntheticMarket) -> None:
    bars = list(market.bars())[:3_000]
    assert_same(bars, market)


def test_a_real_daily_file_with_refits_every_130_bars() -> None:
    bars = load_bars(DATA / "asml_daily.csv", symbol="ASML").bars
    assert len(bars) > 700
    assert_same(bars)


def test_gaps_zero_volumes_and_flat_bars() -> None:
    """Non-contiguous minutes (a return across a gap is the bar's own body), bars without
    volume or range, and vwap: the branches a synthetic session never takes. Zero volumes
    also reach the Liquidity agent's error path, counted the same way on both paths."""
    walk = random_walk_bars(2_400, seed=9)
    rng = np.random.default_rng(9)
    bars, t = [], walk[0].ts_event
    for bar in walk:
        t += 60 * 10**9 * (1 if rng.random() > 0.05 else int(rng.integers(2, 90)))
        volume = 0.0 if rng.random() < 0.03 else bar.volume
        if rng.random() < 0.02:
            bars.append(Bar(bar.symbol, t, bar.open, bar.open, bar.open, bar.open, volume))
            continue
        vwap = (bar.high + bar.low + bar.close) / 3 if rng.random() < 0.5 else None
        bars.append(Bar(bar.symbol, t, bar.open, bar.high, bar.low, bar.close, volume,
                        vwap=vwap))
    reference, errors = decide(bars, False)
    fast, fast_errors = decide(bars, True)
    assert reference == fast, first_difference(reference, fast)
    assert errors == fast_errors and errors["liquidity"] > 0


class _LiveStyleChains:
    """A live source's extras: a chain names its source and age; a missing one says why."""

    def __init__(self, inner: object) -> None:
        self.inner = inner

    def chain(self, symbol: str, spot: float, as_of_ns: int) -> OptionsChain | None:
        if (as_of_ns // 60_000_000_000) % 300 < 60:  # an hour in five: the source is down
            return None
        chain = self.inner.chain(symbol, spot, as_of_ns)  # type: ignore[attr-defined]
        return None if chain is None else replace(
            chain, ts_event=as_of_ns - 15 * 60_000_000_000, source="test chains (15 min)")

    def missing_reason(self, symbol: str) -> str:
        return f"test chains of {symbol} down"


class _LiveStyleNews:
    """A live news source that is down now and then and says so."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.calls = 0

    def headlines(self, symbol: str, after_ns: int, until_ns: int) -> list[object]:
        self.calls += 1
        return self.inner.headlines(symbol, after_ns, until_ns)  # type: ignore[attr-defined]

    def outage(self) -> str | None:
        return "test news down" if (self.calls // 200) % 3 == 2 else None


def test_live_sources_that_name_themselves_and_go_down(market: SyntheticMarket) -> None:
    """The Alpaca adapters' chain source and age, missing reason and news outage reach the
    reasoning the same way on both paths."""
    bars = [bar for bar in market.bars() if bar.symbol == "SPY"][:2_000]
    runs = []
    for fast in (False, True):
        inputs = simulated_inputs(market, 7)
        strategy = AgentEnsemble(seed=7, fast=fast,
                                 chain_provider=_LiveStyleChains(inputs.options),
                                 news_provider=_LiveStyleNews(inputs.news))
        runs.append([strategy.on_bar(bar) for bar in bars])
    reference, fast_run = runs
    assert reference == fast_run, first_difference(reference, fast_run)
    assert [d.vote_marks for d in fast_run] == [d.vote_marks for d in reference]
    reasons = [v.reasoning for d in fast_run for v in d.votes]
    assert any("[test chains (15 min)" in r for r in reasons)
    assert any(r == "test chains of SPY down" for r in reasons)
    assert any("price/volume only: test news down" in r for r in reasons)


def test_a_snapshot_mid_run_resumes_identically(market: SyntheticMarket) -> None:
    bars = [bar for bar in market.bars() if bar.symbol == "SPY"][:1_400]
    inputs = simulated_inputs(market, 7)
    strategy = AgentEnsemble(seed=7, chain_provider=inputs.options, news_provider=inputs.news)
    cut = 605  # the first fit is decided (bar 600) and not yet in effect (bar 990)
    for bar in bars[:cut]:
        strategy.on_bar(bar)
    copy = AgentEnsemble(seed=7, chain_provider=inputs.options, news_provider=inputs.news)
    copy.restore(strategy.snapshot())
    assert [copy.on_bar(b) for b in bars[cut:]] == [strategy.on_bar(b) for b in bars[cut:]]
    assert pickle.loads(pickle.dumps(copy._brains["SPY"].fast)).bars == len(bars)


def test_a_brain_saved_with_a_shorter_output_block_resumes_identically(
        market: SyntheticMarket) -> None:
    """State saved before the step wrote its last two outputs (the bar counts an abstaining
    vote names) loads with room for them and decides as an uninterrupted brain."""
    from gnosis.strategies import kernel as k

    bars = [bar for bar in market.bars() if bar.symbol == "SPY"][:700]
    inputs = simulated_inputs(market, 7)
    strategy = AgentEnsemble(seed=7, chain_provider=inputs.options, news_provider=inputs.news)
    for bar in bars[:20]:  # liquidity and wyckoff still abstain: their reasons name counts
        strategy.on_bar(bar)
    state = dict(pickle.loads(pickle.dumps(strategy._brains["SPY"].fast)).__dict__)
    state["f"] = state["f"][:k.O_LIQUIDITY_BARS].copy()  # the old layout ended there
    old = FastBrain.__new__(FastBrain)
    old.__setstate__(state)
    assert len(old.f) == k.FLOATS
    copy = AgentEnsemble(seed=7, chain_provider=inputs.options, news_provider=inputs.news)
    copy.restore(strategy.snapshot())
    copy._brains["SPY"].fast = old
    later = [copy.on_bar(b) for b in bars[20:]]
    assert later == [strategy.on_bar(b) for b in bars[20:]]
    assert later[0].votes[1].reasoning == "building the volume profile (21/30 bars)"


def test_interleaved_symbols_each_keep_their_own_state() -> None:
    a = random_walk_bars(1_200, seed=1, symbol="AAA")
    b = random_walk_bars(1_200, seed=2, symbol="BBB", start=90.0)
    assert_same(interleave(a, b))


def test_an_agent_it_does_not_mirror_is_refused() -> None:
    from gnosis.agents import build_default_agents
    from gnosis.regime.detector import RegimeDetector

    agents = build_default_agents()
    agents[1].window = 30  # type: ignore[attr-defined]
    with pytest.raises(UnsupportedForFastPath, match="liquidity"):
        FastBrain(RegimeDetector(), agents)


def test_the_decisions_file_is_byte_identical(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    files = []
    for flag in ([], ["--reference"]):
        path = tmp_path / f"decisions{len(flag)}.csv"
        assert main(["backtest", "--synthetic", "--bars", "3000", "--seed", "5", "--json",
                     "--no-progress", "--decisions", str(path), *flag]) == 0
        files.append(path.read_bytes())
    capsys.readouterr()
    assert files[0] == files[1]
    assert files[0].count(b"\n") == 3_001


def test_a_context_pickled_in_the_nine_field_form_loads_and_explains_the_same(
        market: SyntheticMarket) -> None:
    """A brain saved before the step returned its numbers pickled its last context with
    nine fields (the outputs as a list, and the two counts an abstaining vote names): it loads
    as today's context and explains its bar the same. (A state directory written then failed
    to restore: "_Context.__new__() takes 8 positional arguments but 10 were given".)"""
    from typing import NamedTuple

    from gnosis.strategies import fast
    from gnosis.strategies import kernel as k

    bars = [bar for bar in market.bars() if bar.symbol == "SPY"][:20]
    inputs = simulated_inputs(market, 7)
    strategy = AgentEnsemble(seed=7, chain_provider=inputs.options, news_provider=inputs.news)
    for bar in bars:  # liquidity and wyckoff abstain: their reasons name the counts
        decision = strategy.on_bar(bar)
    brain = strategy._brains["SPY"].fast
    context = brain._last_context
    assert context is not None and len(context.out) == k.OUT_END - k.OUT
    old_fields = (context.out[:-2].tolist(), *context[1:6], int(context.out[-2]),
                  int(context.out[-1]), context.news_down)

    # what the old code pickled: a NamedTuple named gnosis.strategies.fast._Context
    saved = NamedTuple("_Context", [(f"field{n}", object) for n in range(9)])
    saved.__module__ = "gnosis.strategies.fast"
    current = fast._Context
    fast._Context = saved  # type: ignore[misc]
    try:
        blob = pickle.dumps(saved(*old_fields))
    finally:
        fast._Context = current  # type: ignore[misc]
    loaded = pickle.loads(blob)
    assert type(loaded) is fast._BarContext
    assert brain.explain(loaded) == brain.explain(context)
    assert brain.explain(loaded)[0] == decision.votes
    assert decision.votes[1].reasoning == "building the volume profile (20/30 bars)"


def test_a_context_saved_as_a_plain_tuple_loads_and_explains_the_same(
        market: SyntheticMarket) -> None:
    """Before the context was named it was pickled as a plain nine-field tuple: a brain saved
    then reads its last regime (what the dashboard asks right after a restart) the same."""
    bars = [bar for bar in market.bars() if bar.symbol == "SPY"][:20]
    inputs = simulated_inputs(market, 7)
    strategy = AgentEnsemble(seed=7, chain_provider=inputs.options, news_provider=inputs.news)
    for bar in bars:
        strategy.on_bar(bar)
    brain = strategy._brains["SPY"].fast
    context = brain._last_context
    assert context is not None
    state = dict(pickle.loads(pickle.dumps(brain)).__dict__)
    state["_last_context"] = (context.out[:-2].tolist(), *context[1:6], int(context.out[-2]),
                              int(context.out[-1]), context.news_down)
    state["_last_regime"] = None
    old = FastBrain.__new__(FastBrain)
    old.__setstate__(state)
    assert old.last == brain.last
    assert old.explain(old._last_context) == brain.explain(context)
