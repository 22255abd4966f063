"""Each agent on scenarios built for it: both directions, explicit abstentions, causality,
persistence, and robustness to any valid bar stream."""

from __future__ import annotations

import math
import pickle
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnosis.agents import AGENT_NAMES, build_default_agents
from gnosis.agents.base import Agent, AgentContext, safe_vote
from gnosis.agents.hedge import HedgeAgent, gamma_exposure
from gnosis.agents.liquidity import LiquidityAgent
from gnosis.agents.markov import MarkovAgent
from gnosis.agents.news_sim import SimulatedNewsProvider
from gnosis.agents.options_sim import SimulatedOptionsChain
from gnosis.agents.sentiment import SentimentAgent
from gnosis.agents.sentiment_lexicon import score_text
from gnosis.agents.wyckoff import WyckoffAgent
from gnosis.model.market import CALL, OptionContract, OptionsChain
from gnosis.model.regime import RegimeState
from gnosis.model.types import Bar, Vote
from tests.conftest import MINUTE, T0

READY = RegimeState(primary="ranging", confidence=0.6, bars_seen=100)


def make_bars(closes: list[float], volumes: list[float] | None = None,
              wick: float = 0.0005, opens: list[float] | None = None) -> list[Bar]:
    bars = []
    for i, close in enumerate(closes):
        open_ = opens[i] if opens else (closes[i - 1] if i else close)
        high = max(open_, close) * (1 + wick)
        low = min(open_, close) * (1 - wick)
        volume = volumes[i] if volumes else 100_000.0
        bars.append(Bar("SPY", T0 + i * MINUTE, open_, high, low, close, volume))
    return bars


def feed(agent: Agent, bars: list[Bar], regime: RegimeState = READY) -> list[Vote]:
    votes = []
    for bar in bars:
        ctx = AgentContext(bar, regime)
        agent.update(ctx)
        votes.append(agent.vote(ctx))
    return votes


def trend(n: int, step: float, seed: int = 1, noise: float = 0.0004) -> list[float]:
    rng = np.random.default_rng(seed)
    return (450.0 * np.exp(np.cumsum(step + rng.normal(0, noise, n)))).tolist()


def mirror(closes: list[float]) -> list[float]:
    return [2 * closes[0] - c for c in closes]


class FixedChain:
    """A chain with given net tilt: calls (dealer long gamma) or puts (short gamma) dominate."""

    def __init__(self, call_oi: float, put_oi: float, wall: float) -> None:
        self.call_oi, self.put_oi, self.wall = call_oi, put_oi, wall

    def chain(self, symbol: str, spot: float, as_of_ns: int) -> OptionsChain | None:
        expiry = as_of_ns + 3 * 86_400 * 10**9
        contracts = []
        for strike in range(int(spot) - 10, int(spot) + 11):
            boost = 5.0 if strike == self.wall else 1.0
            contracts.append(OptionContract("C", symbol, expiry, strike, "call",
                                            self.call_oi * boost, 0.15))
            contracts.append(OptionContract("P", symbol, expiry, strike, "put",
                                            self.put_oi * boost, 0.15))
        return OptionsChain(symbol, as_of_ns, spot, tuple(contracts))


# -- Hedge -----------------------------------------------------------------------------------
def test_hedge_long_gamma_reverts_toward_the_wall_both_ways() -> None:
    above = HedgeAgent(FixedChain(1000, 100, wall=440), refresh_bars=1)
    vote = feed(above, make_bars(trend(80, 0.0, noise=0.0002)))[-1]  # ~450, wall 440 below
    assert vote.signal == -1 and "wall 440" in vote.reasoning
    below = HedgeAgent(FixedChain(1000, 100, wall=460), refresh_bars=1)
    assert feed(below, make_bars(trend(80, 0.0, noise=0.0002)))[-1].signal == 1


def test_hedge_short_gamma_follows_momentum_both_ways() -> None:
    up = feed(HedgeAgent(FixedChain(100, 1000, wall=450), refresh_bars=1),
              make_bars(trend(80, 0.0008)))
    down = feed(HedgeAgent(FixedChain(100, 1000, wall=450), refresh_bars=1),
                make_bars(trend(80, -0.0008)))
    assert up[-1].signal == 1 and "short gamma" in up[-1].reasoning
    assert down[-1].signal == -1


def test_hedge_abstains_without_options_data() -> None:
    votes = feed(HedgeAgent(None), make_bars(trend(20, 0.0)))
    assert all(v.abstained and v.reasoning == "no options data" for v in votes)


class RecordingChain(FixedChain):
    """A chain that remembers when it was asked and has nothing before ``first``."""

    def __init__(self, first: int) -> None:
        super().__init__(1000, 100, wall=440)
        self.first = first
        self.asked: list[int] = []

    def chain(self, symbol: str, spot: float, as_of_ns: int) -> OptionsChain | None:
        self.asked.append(as_of_ns)
        return None if as_of_ns < self.first else super().chain(symbol, spot, as_of_ns)


def test_hedge_reads_the_chain_known_at_the_bars_close() -> None:
    bars = make_bars(trend(5, 0.0))
    provider = RecordingChain(first=bars[2].ts_close)
    votes = feed(HedgeAgent(provider, refresh_bars=1), bars)
    assert provider.asked == [bar.ts_close for bar in bars]
    assert [v.abstained for v in votes] == [True, True, False, False, False]
    assert votes[0].reasoning == "no options snapshot of SPY by 2024-01-02T14:31:00Z"


def test_the_kth_symbol_reads_its_chain_k_bars_later() -> None:
    bars = make_bars(trend(200, 0.0))
    asked = {}
    for stagger in (0, 1, 59, 61):
        provider = RecordingChain(first=0)
        feed(HedgeAgent(provider, refresh_bars=60, stagger=stagger), bars)
        asked[stagger] = [bars[[b.ts_close for b in bars].index(t)] for t in provider.asked]
    index = {b.ts_event: i + 1 for i, b in enumerate(bars)}  # bar numbers from 1
    reads = {k: [index[b.ts_event] for b in v] for k, v in asked.items()}
    assert reads[0] == [1, 61, 121, 181]  # one symbol alone: as before the stagger
    assert reads[1] == [2, 62, 122, 182]
    assert reads[59] == [60, 120, 180]
    assert reads[61] == reads[1]  # modulo the refresh
    waiting = feed(HedgeAgent(RecordingChain(first=0), refresh_bars=60, stagger=3),
                   make_bars(trend(5, 0.0)))
    assert [v.reasoning for v in waiting[:3]] == ["options chain not read yet"] * 3


@pytest.mark.parametrize(("interval_s", "refresh", "half_life", "bin_fraction"), [
    (60, 60, 60.0, 0.0005),  # an hour of trading, in 1-minute bars
    (300, 12, 12.0, 0.0005 * math.sqrt(5)),
    (3_600, 1, 1.0, 0.0005 * math.sqrt(60)),
    (86_400, 1, 3_600 / 23_400, 0.0005 * math.sqrt(390)),  # a daily bar is a session
])
def test_time_based_agent_parameters_follow_the_bar_interval(
    interval_s: int, refresh: int, half_life: float, bin_fraction: float,
) -> None:
    hedge, liquidity, sentiment, *_ = build_default_agents(interval_s=interval_s)
    assert isinstance(hedge, HedgeAgent) and hedge.refresh_bars == refresh
    assert isinstance(sentiment, SentimentAgent)
    assert sentiment.decay == pytest.approx(0.5 ** (1.0 / half_life))
    assert isinstance(liquidity, LiquidityAgent)
    assert liquidity.bin_fraction == pytest.approx(bin_fraction)


def test_gamma_sign_convention_calls_positive_puts_negative() -> None:
    expiry = T0 + 2 * 86_400 * 10**9
    call = OptionContract("C", "SPY", expiry, 450.0, CALL, 1000, 0.15)
    put = OptionContract("P", "SPY", expiry, 450.0, "put", 1000, 0.15)
    net_call, gross, wall = gamma_exposure(OptionsChain("SPY", T0, 450.0, (call,)))
    net_put, _, _ = gamma_exposure(OptionsChain("SPY", T0, 450.0, (put,)))
    assert net_call > 0 > net_put and net_call == pytest.approx(-net_put)
    assert gross == pytest.approx(net_call) and wall == 450.0


def test_simulated_chain_is_deterministic_and_tilts_both_ways_over_time() -> None:
    sim = SimulatedOptionsChain(seed=3)
    assert sim.chain("SPY", 451.3, T0) == sim.chain("SPY", 451.3, T0)
    strikes = {c.strike for c in sim.chain("SPY", 451.3, T0).contracts}
    assert min(strikes) < 451.3 < max(strikes)
    tilts = [gamma_exposure(sim.chain("SPY", 450.0, T0 + d * 86_400 * 10**9))[0]
             for d in range(0, 20)]
    assert min(tilts) < 0 < max(tilts)


@pytest.mark.parametrize("sign", [1, -1])
def test_the_gamma_wall_sits_on_either_side_of_spot_whatever_the_tilt(sign: int) -> None:
    """The wall is the strike with the most total gamma: with long-gamma dealers it must not
    sit above spot by construction (that made 'revert to the wall' a standing long vote)."""
    sim = SimulatedOptionsChain(seed=4)
    rng = np.random.default_rng(1)
    above = below = 0
    for hour in range(1_500):
        spot = 450.0 + rng.uniform(-20, 20)
        chain = sim.chain("SPY", spot, T0 + hour * 3_600 * 10**9)
        assert chain is not None
        net, gross, wall = gamma_exposure(chain)
        if sign * net / gross < 0.1:
            continue
        above += wall > spot
        below += wall < spot
    assert above + below > 150
    assert 0.3 < above / (above + below) < 0.7, (above, below)


# -- Liquidity -------------------------------------------------------------------------------
def test_liquidity_buys_held_support_and_sells_rejected_resistance() -> None:
    # heavy trade around 450, then price drifts above: a bar closing up just above is support
    base = [450.0 + 0.02 * math.sin(i) for i in range(120)]
    rise = [450.0 + 0.05 * i for i in range(1, 8)]
    closes = base + rise + [rise[-1] - 0.2, rise[-1] - 0.1]
    opens = closes[:-1] + [closes[-1] - 0.15]
    opens = [closes[0]] + opens[:-1]
    opens[-1] = closes[-1] - 0.15  # the last bar closes up
    volumes = [400_000.0] * 120 + [50_000.0] * 9
    long_vote = feed(LiquidityAgent(), make_bars(closes, volumes, opens=opens))[-1]
    assert long_vote.signal == 1 and "support" in long_vote.reasoning
    low = [900.0 - c for c in closes]
    low_opens = [900.0 - o for o in opens]
    short_vote = feed(LiquidityAgent(), make_bars(low, volumes, opens=low_opens))[-1]
    assert short_vote.signal == -1 and "resistance" in short_vote.reasoning
    assert "no quotes" in short_vote.reasoning


def test_liquidity_abstains_while_the_profile_is_built() -> None:
    assert feed(LiquidityAgent(), make_bars(trend(10, 0.0)))[-1].abstained


# -- Sentiment -------------------------------------------------------------------------------
def test_sentiment_reads_momentum_and_volume_both_ways() -> None:
    up = feed(SentimentAgent(), make_bars(trend(60, 0.0006)))[-1]
    down = feed(SentimentAgent(), make_bars(trend(60, -0.0006)))[-1]
    assert up.signal == 1 and down.signal == -1
    assert "price/volume only, no news source" in up.reasoning


def test_sentiment_asks_for_the_news_published_since_the_previous_close() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.windows: list[tuple[int, int]] = []

        def headlines(self, symbol: str, after_ns: int, until_ns: int) -> list:
            self.windows.append((after_ns, until_ns))
            return []

    recorder = Recorder()
    bars = make_bars(trend(3, 0.0))
    overnight = bars[-1]._replace(ts_event=bars[-1].ts_event + 18 * 3_600 * 10**9, ts_init=0)
    feed(SentimentAgent(recorder), [*bars, Bar(*overnight)])
    assert recorder.windows == [
        (bars[0].ts_event, bars[0].ts_close),  # the first bar: its own span
        (bars[0].ts_close, bars[1].ts_close), (bars[1].ts_close, bars[2].ts_close),
        (bars[2].ts_close, Bar(*overnight).ts_close),  # the night's news at the next bar
    ]


def test_news_moves_sentiment_on_a_flat_tape() -> None:
    class Wire:
        def __init__(self, text: str) -> None:
            self.text = text

        def headlines(self, symbol: str, after_ns: int, until_ns: int) -> list:
            from gnosis.model.market import Headline

            return [Headline(until_ns, (symbol,), self.text)] if until_ns % (5 * MINUTE) == 0 \
                else []

    flat = make_bars([450.0] * 40, opens=[450.0] * 40)
    good = feed(SentimentAgent(Wire("SPY soars on great earnings, strong rally")), flat)[-1]
    bad = feed(SentimentAgent(Wire("SPY plunges as panic selling and losses mount")), flat)[-1]
    assert good.signal == 1 and bad.signal == -1 and "news" in good.reasoning


def test_lexicon_scores_tone() -> None:
    assert score_text("Stocks rally on strong gains") > 0.3
    assert score_text("Markets crash amid panic and fear") < -0.3
    assert score_text("") == 0.0


def test_simulated_news_is_deterministic_and_follows_the_phase() -> None:
    def phase_of(symbol: str, ts: int) -> str:
        return "trending_up" if (ts // MINUTE) % 2000 < 1000 else "trending_down"

    news = SimulatedNewsProvider(phase_of, seed=1, rate=0.2)
    tone: dict[str, list[float]] = {"trending_up": [], "trending_down": []}
    for i in range(4000):
        ts = T0 + i * MINUTE
        window = (ts, ts + MINUTE)  # the bar's span: published at its close
        assert news.headlines("SPY", *window) == news.headlines("SPY", *window)
        for h in news.headlines("SPY", *window):
            assert h.ts_event == ts + MINUTE
            assert "SPY" in h.headline
            tone[phase_of("SPY", ts)].append(score_text(h.headline))
    assert np.mean(tone["trending_up"]) > 0.1 > -0.1 > np.mean(tone["trending_down"])


@pytest.mark.parametrize(
    ("phase", "bullish_share"),
    [("trending_up", (0.65, 0.85)), ("distribution", (0.15, 0.35)), ("ranging", (0.30, 0.60))],
)
def test_news_tone_mix_at_the_default_rate(phase: str, bullish_share: tuple[float, float]) -> None:
    """About 3 in 4 headlines follow the phase, 1 in 4 go against it; mixed phases are mixed.
    (Draws keyed on the same bar must be independent: a linear hash once made them all bearish.)
    """
    news = SimulatedNewsProvider(lambda symbol, ts: phase, seed=3)
    scores = [score_text(h.headline) for i in range(60_000)
              for h in news.headlines("SPY", T0 + i * MINUTE, T0 + (i + 1) * MINUTE)]
    assert 60_000 / 45 * 0.8 < len(scores) < 60_000 / 45 * 1.2
    toned = [s for s in scores if s != 0.0]
    share = sum(s > 0 for s in toned) / len(toned)
    assert bullish_share[0] <= share <= bullish_share[1], share


# -- Wyckoff ---------------------------------------------------------------------------------
def range_then(last: list[tuple[float, float, float, float]]) -> list[Bar]:
    """80 bars ranging 449-451, then the given (open, high, low, close) bars on heavy volume."""
    bars = make_bars([450.0 + math.sin(i / 3.0) for i in range(80)], wick=0.001)
    for j, (o, h, lo, c) in enumerate(last):
        bars.append(Bar("SPY", T0 + (80 + j) * MINUTE, o, h, lo, c, 400_000.0))
    return bars


def test_wyckoff_spring_is_bullish_and_upthrust_bearish() -> None:
    spring = feed(WyckoffAgent(), range_then([(449.2, 449.6, 447.5, 449.4)]))[-1]
    upthrust = feed(WyckoffAgent(), range_then([(450.8, 452.5, 450.4, 450.6)]))[-1]
    assert spring.signal == 1 and "spring" in spring.reasoning
    assert upthrust.signal == -1 and "upthrust" in upthrust.reasoning


def test_wyckoff_breakouts_are_markup_and_markdown() -> None:
    up = feed(WyckoffAgent(), range_then([(451.0, 453.0, 450.9, 452.8)]))[-1]
    down = feed(WyckoffAgent(), range_then([(449.0, 449.1, 447.0, 447.2)]))[-1]
    assert up.signal == 1 and "markup" in up.reasoning
    assert down.signal == -1 and "markdown" in down.reasoning


# -- Markov ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("probs", "signal"), [
    ((0.8, 0.05, 0.05, 0.05, 0.05), 1),
    ((0.05, 0.8, 0.05, 0.05, 0.05), -1),
    ((0.1, 0.1, 0.6, 0.1, 0.1), 0),
    ((0.3, 0.3, 0.1, 0.15, 0.15), 0),
])
def test_markov_reads_filtered_probabilities(probs: tuple[float, ...], signal: int) -> None:
    regime = RegimeState("trending_up", 0.8, hmm_probabilities=probs, hmm_state="x")
    vote = MarkovAgent().vote(AgentContext(make_bars([450.0])[0], regime))
    assert vote.signal == signal and not vote.abstained


def test_markov_abstains_before_the_hmm_is_fitted() -> None:
    vote = MarkovAgent().vote(AgentContext(make_bars([450.0])[0], READY))
    assert vote.abstained and "HMM not fitted" in vote.reasoning


# -- all agents ------------------------------------------------------------------------------
def always_ranging(symbol: str, ts_event: int) -> str:
    return "ranging"


def all_agents() -> list[Agent]:
    return build_default_agents(SimulatedOptionsChain(seed=1),
                                SimulatedNewsProvider(always_ranging, seed=1))


def test_default_agents_in_order() -> None:
    assert [a.name for a in all_agents()] == list(AGENT_NAMES)


@pytest.mark.parametrize("index", range(len(AGENT_NAMES)))
def test_no_look_ahead_and_pickle_continues_identically(index: int) -> None:
    bars = make_bars(trend(300, 0.0001, seed=index))
    probs = RegimeState("trending_up", 0.8, hmm_probabilities=(0.6, 0.1, 0.1, 0.1, 0.1))
    full = feed(all_agents()[index], bars, probs)
    agent = all_agents()[index]
    head = feed(agent, bars[:150], probs)
    assert head == full[:150]
    copy = pickle.loads(pickle.dumps(agent))
    copy_votes = [v for v in feed_from(copy, bars, 150, probs)]
    assert copy_votes == full[150:]


def feed_from(agent: Agent, bars: list[Bar], start: int, regime: RegimeState) -> list[Vote]:
    votes = []
    for i in range(start, len(bars)):
        ctx = AgentContext(bars[i], regime)
        agent.update(ctx)
        votes.append(agent.vote(ctx))
    return votes


bar_rows = st.lists(
    st.tuples(st.floats(0.5, 2000.0), st.floats(0.0, 0.05), st.floats(0.0, 0.05),
              st.floats(-0.05, 0.05), st.floats(0.0, 5e6)),
    min_size=1, max_size=120,
)


@settings(max_examples=40, deadline=None)
@given(bar_rows)
def test_any_valid_bar_stream_gives_valid_votes(rows: list[tuple[float, ...]]) -> None:
    agents = all_agents()
    regime = RegimeState("trending_up", 0.8, hmm_probabilities=(0.2,) * 5)
    errors: Counter[str] = Counter()
    for i, (price, up, down, move, volume) in enumerate(rows):
        open_ = price
        close = price * (1 + move)
        bar = Bar("SPY", T0 + i * MINUTE, open_, max(open_, close) * (1 + up),
                  min(open_, close) * (1 - down) if min(open_, close) * (1 - down) > 0 else 0.01,
                  close, volume)
        ctx = AgentContext(bar, regime)
        for agent in agents:
            agent.update(ctx)
            vote = safe_vote(agent, ctx, errors)
            assert vote.signal in (-1, 0, 1) and 0.0 <= vote.confidence <= 1.0
            assert vote.reasoning
    assert not errors, errors


def test_an_agent_that_raises_abstains_with_the_error() -> None:
    class Broken(Agent):
        name = "broken"

        def vote(self, ctx: AgentContext) -> Vote:
            raise ZeroDivisionError("boom")

    errors: Counter[str] = Counter()
    vote = safe_vote(Broken(), AgentContext(make_bars([450.0])[0], READY), errors)
    assert vote.abstained and "ZeroDivisionError" in vote.reasoning and errors["broken"] == 1

