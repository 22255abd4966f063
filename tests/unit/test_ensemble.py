"""The default strategy end to end on the synthetic market: causal, restorable, and alive."""

from __future__ import annotations

import pickle
from collections import Counter

import pytest

from gnosis.agents import AGENT_NAMES
from gnosis.agents.hedge import HedgeAgent
from gnosis.agents.news_sim import SimulatedNewsProvider
from gnosis.agents.options_sim import SimulatedOptionsChain
from gnosis.bootstrap import SideInputs, build_strategy, simulated_inputs
from gnosis.core.config import load_config
from gnosis.data.synthetic import SyntheticMarket
from gnosis.model.regime import REGIMES, WARMING_UP
from gnosis.model.types import Bar, Decision
from gnosis.regime.detector import RegimeDetector
from gnosis.strategies.ensemble import AgentEnsemble
from tests.conftest import random_walk_bars

BARS = 8_000
REFIT_EVERY = 2_000  # HMM fits decided at bars 600, 2600, 4600, 6600, each in effect 390 bars
# later: several inside the run


def ensemble(market: SyntheticMarket) -> AgentEnsemble:
    inputs = simulated_inputs(market, seed=7)
    return AgentEnsemble(seed=7, chain_provider=inputs.options, news_provider=inputs.news,
                         detector_factory=lambda interval_s: RegimeDetector(
                             interval_s=interval_s, seed=7, hmm_refit_every=REFIT_EVERY))


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return SyntheticMarket(symbols=("SPY",), seed=7, days=21)


@pytest.fixture(scope="module")
def bars(market: SyntheticMarket) -> list[Bar]:
    return list(market.bars())[:BARS]


@pytest.fixture(scope="module")
def decisions(market: SyntheticMarket, bars: list[Bar]) -> list[Decision]:
    strategy = ensemble(market)
    return [strategy.on_bar(bar) for bar in bars]


def run(market: SyntheticMarket, bars: list[Bar]) -> list[Decision]:
    strategy = ensemble(market)
    return [strategy.on_bar(bar) for bar in bars]


@pytest.mark.slow
@pytest.mark.parametrize("k", [60, 599, 601, 989, 991, 2_989, 4_991, 6_989, 6_991])
def test_truncating_the_future_changes_no_past_decision(
    market: SyntheticMarket, bars: list[Bar], decisions: list[Decision], k: int
) -> None:
    # k sits just before and after HMM refits: a decision at bar t depends only on bars <= t.
    assert run(market, bars[:k]) == decisions[:k]


@pytest.mark.slow
@pytest.mark.parametrize("cut", [3_333, 4_600])
def test_snapshot_and_restore_mid_run_continues_identically(
    market: SyntheticMarket, bars: list[Bar], decisions: list[Decision], cut: int
) -> None:
    first = ensemble(market)
    for bar in bars[:cut]:
        first.on_bar(bar)
    state = pickle.loads(pickle.dumps(first.snapshot()))  # as the state store would keep it
    second = ensemble(market)
    second.restore(state)
    assert [second.on_bar(bar) for bar in bars[cut:]] == decisions[cut:]


def test_every_agent_votes_both_ways_and_the_gated_ones_switch(
    decisions: list[Decision],
) -> None:
    signals: dict[str, Counter[int]] = {name: Counter() for name in AGENT_NAMES}
    inactive: Counter[str] = Counter()
    for decision in decisions:
        for vote in decision.votes:
            if not vote.abstained:
                signals[vote.agent][vote.signal] += 1
            assert vote.reasoning
        for name, why in decision.inactive:
            assert why
            inactive[name] += 1
    for name in AGENT_NAMES:
        assert signals[name][1] > 0 and signals[name][-1] > 0, (name, signals[name])
    for gated in ("wyckoff", "markov"):
        assert 0 < inactive[gated] < len(decisions), (gated, inactive[gated])
    for always in ("hedge", "liquidity", "sentiment"):
        assert inactive[always] == 0
    taken = Counter(d.signal for d in decisions)
    assert taken[1] > 0 and taken[-1] > 0, taken


def test_regimes_are_varied(decisions: list[Decision]) -> None:
    counts = Counter(d.regime for d in decisions if d.regime != WARMING_UP)
    assert set(counts) <= set(REGIMES)
    assert len(counts) >= 5, counts
    assert max(counts.values()) <= 0.6 * sum(counts.values()), counts


def test_on_data_without_side_inputs_hedge_abstains_and_sentiment_says_so() -> None:
    strategy = build_strategy(load_config())  # no synthetic market: nothing is simulated
    decisions = [strategy.on_bar(bar) for bar in random_walk_bars(300, seed=2)]
    votes = [v for d in decisions for v in d.votes]
    hedge = [v for v in votes if v.agent == "hedge"]
    assert hedge and all(v.abstained and v.reasoning == "no options data" for v in hedge)
    sentiment = [v for v in votes if v.agent == "sentiment" and not v.abstained]
    assert sentiment and all("price/volume only, no news source" in v.reasoning
                             for v in sentiment)


def test_the_symbols_name_never_changes_a_decision_on_data() -> None:
    def run(symbol: str) -> list[Decision]:
        strategy = build_strategy(load_config())
        return [strategy.on_bar(bar) for bar in random_walk_bars(1_500, seed=4, symbol=symbol)]

    spy, other = run("SPY"), run("ZZZT")
    assert [d.signal for d in spy] == [d.signal for d in other]
    assert [(d.votes, d.regime, d.confidence) for d in spy] == \
        [(d.votes, d.regime, d.confidence) for d in other]
    assert {d.signal for d in spy} == {-1, 0, 1}  # it traded: the comparison means something


def test_the_detector_and_agents_are_built_for_the_feeds_interval() -> None:
    strategy = build_strategy(load_config())
    assert isinstance(strategy, AgentEnsemble)
    for bar in random_walk_bars(3, symbol="D"):
        strategy.on_bar(Bar(*bar._replace(interval_s=86_400, ts_init=0)))
    for bar in random_walk_bars(3, symbol="M"):
        strategy.on_bar(bar)
    daily, minute = strategy.regime_of("D"), strategy.regime_of("M")
    assert daily.interval_s == 86_400 and minute.interval_s == 60
    # the configured symbol (SPY) holds place 0; D and M, not configured, take places 1 and 2
    # in order of appearance: M's first fit is staggered by two bars
    assert daily.hmm.first_fit == 200 and minute.hmm.first_fit == 602
    fast = strategy._brains["D"].fast
    assert fast is not None and fast.refresh_bars == 1  # the default path is the fast one
    reference = AgentEnsemble(fast=False)
    reference.on_bar(Bar(*random_walk_bars(1, symbol="D")[0]._replace(interval_s=86_400,
                                                                     ts_init=0)))
    hedge = reference._brains["D"].agents[0]
    assert isinstance(hedge, HedgeAgent) and hedge.refresh_bars == 1


@pytest.mark.parametrize(("which", "options", "news"), [
    (("news", "options"), True, True), (("news",), False, True), (("options",), True, False),
    ((), False, False),
])
def test_simulated_inputs_exist_only_on_the_synthetic_market(
    market: SyntheticMarket, which: tuple[str, ...], options: bool, news: bool,
) -> None:
    inputs = simulated_inputs(market, seed=7, which=which)
    assert isinstance(inputs.options, SimulatedOptionsChain) is options
    assert isinstance(inputs.news, SimulatedNewsProvider) is news
    default = build_strategy(load_config(), market)
    assert isinstance(default, AgentEnsemble)
    assert isinstance(default.chain_provider, SimulatedOptionsChain)
    assert isinstance(default.news_provider, SimulatedNewsProvider)
    on_data = build_strategy(load_config())
    assert isinstance(on_data, AgentEnsemble)
    assert on_data.chain_provider is None and on_data.news_provider is None
    assert SideInputs() == SideInputs(None, None)


def test_a_symbols_place_comes_from_the_configured_list_not_from_arrival_order() -> None:
    """A live stream may deliver the first minute's bars in any order; the HMM fit stagger and
    the options-read stagger follow the configured list, so the decisions do not change."""
    market = SyntheticMarket(symbols=("SPY", "QQQ"), seed=3, days=4)
    bars = list(market.bars())
    swapped = list(bars)
    first = [b for b in bars if b.ts_event == bars[0].ts_event]
    assert [b.symbol for b in first] == ["SPY", "QQQ"]
    swapped[0], swapped[1] = swapped[1], swapped[0]  # QQQ's first bar arrives first
    runs = []
    for stream in (bars, swapped):
        inputs = simulated_inputs(market, seed=3)
        strategy = AgentEnsemble(seed=3, chain_provider=inputs.options,
                                 news_provider=inputs.news, symbols=("SPY", "QQQ"))
        decided = [strategy.on_bar(bar) for bar in stream]
        runs.append(sorted(decided, key=lambda d: (d.ts_event, d.symbol)))
    assert runs[0] == runs[1]
    unplaced = AgentEnsemble(seed=3, symbols=())
    for bar in swapped[:2]:
        unplaced.on_bar(bar)
    assert unplaced._brains["QQQ"].fast.hmm.first_fit < unplaced._brains["SPY"].fast.hmm.first_fit
