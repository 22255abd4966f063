"""The fast path of one symbol: the compiled step plus what is not arithmetic.

``FastBrain`` is built from the reference detector and agents of the symbol (so it takes their
parameters, and refuses any it does not mirror), then replaces them: per bar it

1. reads the side inputs as the reference agents do (Hedge re-reads the options chain every
   ``refresh_bars`` bars; Sentiment decays its news score and adds the headlines published
   since the previous bar's close),
2. lets the HMM's schedule install or decide a fit (``FilteredHMM.tick``, the same object and
   schedule as the reference; the compiled step writes its feature rows and filters),
3. runs ``kernel.step`` once, and
4. builds the same ``RegimeState``, ``Vote`` s and consensus as the reference, strings included.

Everything is O(1) per bar and causal, so live and replay use it alike. The reference path
(``AgentEnsemble(fast=False)``) stays the specification; tests/unit/test_fast_parity.py holds
the two equal.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Any, NamedTuple

import numpy as np

from gnosis.agents.base import Agent
from gnosis.agents.hedge import (
    HedgeAgent,
    chain_source,
    gamma_exposure,
    missing_chain_reason,
    with_source,
)
from gnosis.agents.liquidity import PROFILE_BARS, SCAN_BINS, LiquidityAgent
from gnosis.agents.markov import MarkovAgent
from gnosis.agents.sentiment import SentimentAgent, describe_news, news_outage
from gnosis.agents.sentiment_lexicon import score_text
from gnosis.agents.wyckoff import WyckoffAgent
from gnosis.model.regime import (
    ACCUMULATION,
    CALM,
    DISTRIBUTION,
    HMM_LABELS,
    RANGING,
    TRENDING_DOWN,
    TRENDING_UP,
    VOLATILE,
    WARMING_UP,
    RegimeState,
)
from gnosis.model.types import Bar, Decision, Vote
from gnosis.regime.activation import markov_active, wyckoff_active
from gnosis.regime.detector import RegimeDetector
from gnosis.strategies import kernel as k

log = logging.getLogger(__name__)

_PRIMARY = (WARMING_UP, VOLATILE, TRENDING_UP, TRENDING_DOWN, ACCUMULATION, DISTRIBUTION, CALM,
            RANGING)
_VOL_CLASS = ("calm", "normal", "volatile")
_EVENTS = ("", "spring", "upthrust", "sign of strength", "sign of weakness")
_PHASES = {
    k.PH_ACCUMULATION: "accumulation: volume on up bars, closes high",
    k.PH_DISTRIBUTION: "distribution: volume on down bars, closes low",
    k.PH_MARKUP_INSIDE: "markup inside the range",
    k.PH_MARKDOWN_INSIDE: "markdown inside the range",
    k.PH_RANGE: "trading range, no edge",
}
_AFTER = {k.PH_MARKUP_AFTER: "markup", k.PH_ACCUMULATION_AFTER: "accumulation",
          k.PH_MARKDOWN_AFTER: "markdown", k.PH_DISTRIBUTION_AFTER: "distribution"}
# offsets into the step's output block (module constants: no lookups per bar)
_O_BALANCE = k.O_BALANCE - k.OUT
_O_CAST = k.O_CAST - k.OUT
_O_CLV_MEAN = k.O_CLV_MEAN - k.OUT
_O_CONFIDENCE = k.O_CONFIDENCE - k.OUT
_O_CONSENSUS = k.O_CONSENSUS - k.OUT
_O_HAS_PROBS = k.O_HAS_PROBS - k.OUT
_O_HMM_STATE = k.O_HMM_STATE - k.OUT
_O_LIQUIDITY_BARS = k.O_LIQUIDITY_BARS - k.OUT
_O_MARKOV_ON = k.O_MARKOV_ON - k.OUT
_O_NEEDED = k.O_NEEDED - k.OUT
_O_POSITION = k.O_POSITION - k.OUT
_O_PRIMARY = k.O_PRIMARY - k.OUT
_O_PROBS = k.O_PROBS - k.OUT
_O_TOP_COUNT = k.O_TOP_COUNT - k.OUT
_O_TOP_SIGNAL = k.O_TOP_SIGNAL - k.OUT
_O_TREND = k.O_TREND - k.OUT
_O_VOLATILITY = k.O_VOLATILITY - k.OUT
_O_VOL_CLASS = k.O_VOL_CLASS - k.OUT
_O_VOTES = k.O_VOTES - k.OUT
_O_WIDTH_ATR = k.O_WIDTH_ATR - k.OUT
_O_WYCKOFF_INDEX = k.O_WYCKOFF_INDEX - k.OUT
_O_WYCKOFF_ON = k.O_WYCKOFF_ON - k.OUT
_V = _O_VOTES
_OUT, _OUT_END, _S_NEWS = k.OUT, k.OUT_END, k.S_NEWS
_step = k.step
# votes without numbers in them: one object each, shared (they are immutable)
_ATR_NOT_READY = Vote("hedge", 0, 0.2, "long gamma, ATR not ready")
_NOT_FITTED = Vote.abstain("markov", "HMM not fitted yet")
_F = k.VOTE_FIELDS


_AGENTS = ("hedge", "liquidity", "sentiment", "wyckoff", "markov")
_MARK_NAMES = ("-1", "0", "1", "abstain", "off")


def _marks_of(code: int) -> tuple[tuple[str, str], ...]:
    """``Decision.vote_marks`` of the step's mark code: active agents first, in agent order,
    then the ones switched off (the order the reference's votes and inactive list give)."""
    marks = []
    for agent in _AGENTS:
        marks.append((agent, _MARK_NAMES[code % 5]))
        code //= 5
    return (*(m for m in marks if m[1] != "off"), *(m for m in marks if m[1] == "off"))


_MARKS = tuple(_marks_of(code) for code in range(5 ** len(_AGENTS)))  # one shared tuple each


class _BarContext(NamedTuple):
    """What a bar's explanation is formatted from: the step's outputs and the brain's state
    at that bar (which later bars change)."""

    out: Any  # the step's output block: an array, a list once explained (``_outputs``)
    bars: int
    wall: float  # the options wall the hedge vote names
    source: str  # a live chain's source and age
    hedge_abstains: Vote  # the hedge abstention (why there is no chain)
    last_headline: str
    news_down: str | None  # why a live news source is down, if it is


_new_context = tuple.__new__  # a context a bar: without NamedTuple's length check


class _Context:
    """The context as pickled before the step returned its numbers (nine fields: the outputs
    as a list, and the two counts an abstaining vote names, which the step now writes at the
    end of its outputs). A brain saved then loads its last context as a ``_BarContext``."""

    def __new__(cls, out: list[float], bars: int, wall: float, source: str,  # type: ignore[misc]
                hedge_abstains: Vote, last_headline: str, liquidity_bars: int,
                wyckoff_index: int, news_down: str | None) -> _BarContext:
        return _BarContext(np.array([*out, liquidity_bars, wyckoff_index]), bars, wall, source,
                           hedge_abstains, last_headline, news_down)


def _outputs(context: _BarContext) -> _BarContext:
    """The context with its outputs as a list of floats (what the formatting reads)."""
    return context._replace(out=context.out.tolist())


class UnsupportedForFastPath(ValueError):
    """The reference objects carry a parameter or an input the compiled step does not mirror."""


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise UnsupportedForFastPath(f"the fast path does not mirror {what}")


def _check_agents(agents: list[Agent]) -> tuple[HedgeAgent, LiquidityAgent, SentimentAgent]:
    hedge, liquidity, sentiment, wyckoff, markov = agents
    _check(isinstance(hedge, HedgeAgent) and hedge.min_tilt == k.HEDGE_MIN_TILT, "this hedge")
    _check(isinstance(liquidity, LiquidityAgent) and liquidity.quote_provider is None
           and liquidity.window == k.LIQ_WINDOW and liquidity.zone_atr == k.LIQ_ZONE_ATR
           and PROFILE_BARS == k.LIQ_PROFILE_BARS and SCAN_BINS == k.LIQ_SCAN_BINS,
           "this liquidity agent (quotes, window)")
    _check(isinstance(sentiment, SentimentAgent)
           and sentiment.momentum_bars == k.SENT_MOMENTUM
           and sentiment.threshold == k.SENT_THRESHOLD
           and sentiment._up.period == k.SENT_BALANCE, "this sentiment agent")
    _check(isinstance(wyckoff, WyckoffAgent) and wyckoff.window == k.WY_WINDOW
           and wyckoff.memory_bars == k.WY_MEMORY and wyckoff.heavy_volume == k.WY_HEAVY,
           "this wyckoff agent")
    _check(isinstance(markov, MarkovAgent) and markov.min_prob == k.MARKOV_MIN_PROB
           and markov.accumulation_weight == k.MARKOV_ACC_WEIGHT, "this markov agent")
    assert isinstance(hedge, HedgeAgent) and isinstance(liquidity, LiquidityAgent)
    assert isinstance(sentiment, SentimentAgent)
    return hedge, liquidity, sentiment


class FastBrain:
    """One symbol's detector and agents as compiled state (see the module's docstring)."""

    def __init__(self, detector: RegimeDetector, agents: list[Agent]) -> None:
        hedge, liquidity, sentiment = _check_agents(agents)
        _check(detector.trend_window == k.TREND_WINDOW
               and detector._range_window == k.RANGE_WINDOW and detector.bars_seen == 0,
               "this detector (windows) or a detector that has seen bars")
        self.interval_s = detector.interval_s
        self.detector_params = (detector.warmup, detector.calm_vol, detector.volatile_vol,
                                detector.trend_threshold)
        hmm = detector.hmm
        self.hmm = hmm
        self.f, self.i = k.new_state(
            detector.interval_ns,
            -1 if detector._contiguous_ns is None else detector._contiguous_ns,
            detector.warmup, detector.calm_vol, detector.volatile_vol,
            detector.trend_threshold, detector.annualize,
            (detector._a_fast, detector._a_slow, detector._a_feat, detector._a_long),
            hmm is not None, hmm.window if hmm is not None else 1, liquidity.bin_fraction)
        self._no_buffer = np.zeros((1, 3))
        self.bars = 0
        self._hmm_version = 0
        # Hedge's side input
        self.chain_provider = hedge.chain_provider
        # a simulated chain offers its exposure directly (SimulatedOptionsChain.exposure)
        self._sim_chain = hasattr(hedge.chain_provider, "exposure")
        self.refresh_bars = hedge.refresh_bars
        self._since_refresh = hedge.refresh_bars - 1 - hedge.stagger  # as HedgeAgent
        self._wall = 0.0
        self._missing = hedge._missing
        self._source = ""  # a live chain's source and age, as HedgeAgent says it
        self._hedge_abstains = Vote.abstain("hedge", self._missing)  # the same until it changes
        # Sentiment's side input
        self.news_provider = sentiment.news_provider
        self.decay = sentiment.decay
        self._news_until = -1
        self._news = 0.0
        self._last_headline = ""
        self._news_outage = getattr(self.news_provider, "outage", None) is not None
        self._last_context: _BarContext | None = None
        self._last_regime: RegimeState | None = None

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A snapshot from before the explanation was formatted on demand kept ``last``; one
        from before the context was named holds it as a plain tuple; one from before the step
        returned its numbers has a shorter output block (and a nine-field context, which
        ``_Context`` loads)."""
        last = state.pop("last", None)
        state.setdefault("_last_context", None)
        state.setdefault("_last_regime", last)
        state.setdefault("_sim_chain", hasattr(state.get("chain_provider"), "exposure"))
        state.setdefault("_news_outage",
                         getattr(state.get("news_provider"), "outage", None) is not None)
        context = state["_last_context"]
        if type(context) is tuple:  # saved before the context was named: the nine fields
            state["_last_context"] = _Context(*context)
        f = state["f"]
        if len(f) < k.FLOATS:  # saved before the step wrote its last outputs: room for them
            state["f"] = np.concatenate((f, np.zeros(k.FLOATS - len(f))))
        self.__dict__.update(state)

    # -- per bar ----------------------------------------------------------------------------
    def decide(self, bar: Bar, errors: Counter[str]) -> Decision:
        """The decision of bar t, exactly as the reference ensemble computes it. Its numbers
        come from the step; its explanation (votes, reasons, regime) is formatted from the
        step's outputs only when read (``explain``)."""
        f = self.f
        since = self._since_refresh = self._since_refresh + 1
        if since >= self.refresh_bars and self.chain_provider is not None:
            self._read_chain(bar, errors)  # as HedgeAgent: every ``refresh_bars`` bars
        # Sentiment's news score: decayed, plus the headlines published since the last bar
        news = self._news * self.decay
        provider = self.news_provider
        if provider is not None:
            after = self._news_until if self._news_until >= 0 else bar.ts_event
            until = self._news_until = bar.ts_close
            try:
                for headline in provider.headlines(bar.symbol, after, until):
                    news = max(-2.0, min(2.0, news + score_text(headline.headline)))
                    self._last_headline = headline.headline
            except Exception as exc:  # noqa: BLE001 - as the reference: an agent error
                errors["sentiment"] += 1
                log.warning("agent %s failed to update: %s", "sentiment", exc)
        self._news = f[_S_NEWS] = news
        self.bars += 1
        hmm = self.hmm
        if hmm is not None:
            if self.bars >= hmm.next_tick:
                hmm._stored = int(self.i[k.I_HMM_STORED])
                hmm.tick(self.bars)
                if hmm.version != self._hmm_version:
                    self._load_model()
            buffer = hmm._buffer
        else:
            buffer = self._no_buffer
        vwap = bar.vwap
        signal, confidence, primary, regime_confidence, marks, failed = _step(
            f, self.i, buffer, bar.open, bar.high, bar.low, bar.close, bar.volume,
            math.nan if vwap is None else vwap, bar.ts_event)
        if failed:
            errors["liquidity"] += 1
            log.warning("agent %s failed to update: %s", "liquidity",
                        KeyError(int(f[k.O_LIQUIDITY_KEY])))
        # what the explanation needs: this bar's outputs (later bars overwrite them) and the
        # brain's state at this bar
        context = _new_context(_BarContext, (
            f[_OUT:_OUT_END].copy(), self.bars, self._wall, self._source,
            self._hedge_abstains, self._last_headline,
            news_outage(self.news_provider) if self._news_outage else None))
        self._last_context = context
        self._last_regime = None
        # the step zeroes the signal unless the votes agreed on a formed regime
        return Decision.explained_by(bar.symbol, bar.ts_event, signal, confidence,
                                     _PRIMARY[primary], regime_confidence, _MARKS[marks], self,
                                     context)

    @property
    def last(self) -> RegimeState | None:
        """The latest bar's RegimeState (formatted when first asked for)."""
        if self._last_regime is None and self._last_context is not None:
            self._last_regime = self._regime(_outputs(self._last_context))
        return self._last_regime

    def explain(self, context: _BarContext) -> tuple[
            tuple[Vote, ...], tuple[tuple[str, str], ...], str, RegimeState]:
        """(votes of the active agents, inactive agents and why, reasoning, regime) of the bar
        whose ``context`` this is, strings exactly as the reference ensemble writes them."""
        context = _outputs(context)
        out = context.out
        regime = self._regime(context)
        votes = [self._hedge_vote(context), self._liquidity_vote(context),
                 self._sentiment_vote(context)]
        inactive: list[tuple[str, str]] = []
        if out[_O_WYCKOFF_ON]:
            votes.append(self._wyckoff_vote(context))
        else:
            inactive.append(("wyckoff", wyckoff_active(regime)[1]))
        if out[_O_MARKOV_ON]:
            votes.append(self._markov_vote(out, regime))
        else:
            inactive.append(("markov", markov_active(regime)[1]))
        why = self._consensus(out, votes)
        if not regime.ready:
            why = f"no trading while {regime.reason} ({why})"
        return tuple(votes), tuple(inactive), why, regime

    def _read_chain(self, bar: Bar, errors: Counter[str]) -> None:
        self._since_refresh = 0
        provider = self.chain_provider
        try:
            if self._sim_chain:  # the simulated chain's numbers without the chain
                exposure = provider.exposure(  # type: ignore[union-attr]
                    bar.symbol, bar.close, bar.ts_close)
                source = ""
            else:
                chain = provider.chain(bar.symbol, bar.close,  # type: ignore[union-attr]
                                       bar.ts_close)
                if chain is None or not chain.contracts:
                    exposure = None
                else:
                    exposure = gamma_exposure(chain)
                    source = chain_source(chain, bar.ts_close)
            if exposure is None:
                self.i[k.I_H_HAVE_CHAIN] = 0
                self._missing = missing_chain_reason(provider, bar.symbol, bar.ts_close)
                self._source = ""
            else:
                net, gross, wall = exposure
                f = self.f
                f[k.H_NET], f[k.H_GROSS], f[k.H_WALL] = net, gross, wall
                self._wall = wall
                self.i[k.I_H_HAVE_CHAIN] = int(gross > 0)
                self._source = source
                self._missing = "options chain without open interest"
            if self._hedge_abstains.reasoning != self._missing:  # the same until it changes
                self._hedge_abstains = Vote.abstain("hedge", self._missing)
        except Exception as exc:  # noqa: BLE001 - as the reference: an agent error, not a crash
            errors["hedge"] += 1
            log.warning("agent %s failed to update: %s", "hedge", exc)

    def _load_model(self) -> None:
        """Copy the HMM's installed model (label order) into the compiled state."""
        hmm = self.hmm
        assert hmm is not None and hmm.means is not None
        f = self.f
        f[k.HMM_MEANS:k.HMM_MEANS + 15] = [x for row in hmm.means for x in row]
        f[k.HMM_VARS:k.HMM_VARS + 15] = [x for row in hmm._vars for x in row]
        f[k.HMM_NORMS:k.HMM_NORMS + 5] = hmm._log_norm
        f[k.HMM_TRANS:k.HMM_TRANS + 25] = [x for row in hmm._trans for x in row]
        f[k.HMM_START:k.HMM_START + 5] = hmm._start
        self.i[k.I_HMM_FITTED] = 1
        self._hmm_version = hmm.version

    # -- objects from the step's outputs ---------------------------------------------------------
    def _regime(self, context: _BarContext) -> RegimeState:
        out = context.out
        code = int(out[_O_PRIMARY])
        trend = out[_O_TREND]
        volatility = out[_O_VOLATILITY]
        probs = tuple(out[_O_PROBS:_O_PROBS + 5]) if out[_O_HAS_PROBS] else None
        state_index = int(out[_O_HMM_STATE])
        warmup, calm_vol, volatile_vol, threshold = self.detector_params
        if code == k.WARMING:
            reason = f"warming up {context.bars}/{warmup}"
        elif code == k.VOLATILE:
            reason = f"vol {volatility:.0%} > {volatile_vol:.0%}"
        elif code in (k.TRENDING_UP, k.TRENDING_DOWN):
            reason = f"|trend| {abs(trend):.2f} > {threshold}"
        elif code == k.ACCUMULATION:
            balance, clv = out[_O_BALANCE], out[_O_CLV_MEAN]
            reason = f"volume on up bars {balance:.0%}, closes high ({clv:+.2f})"
        elif code == k.DISTRIBUTION:
            balance, clv = out[_O_BALANCE], out[_O_CLV_MEAN]
            reason = f"volume on down bars {1 - balance:.0%}, closes low ({clv:+.2f})"
        elif code == k.CALM:
            reason = f"vol {volatility:.0%} < {calm_vol:.0%}"
        else:
            reason = (f"|trend| {abs(trend):.2f} <= {threshold}, bands "
                      f"{out[_O_WIDTH_ATR]:.1f} ATR wide")
        return RegimeState(_PRIMARY[code], out[_O_CONFIDENCE], trend, volatility,
                           _VOL_CLASS[int(out[_O_VOL_CLASS])], out[_O_POSITION],
                           HMM_LABELS[state_index] if state_index >= 0 else None, probs,
                           reason, context.bars)

    @staticmethod
    def _hedge_vote(context: _BarContext) -> Vote:
        return with_source(FastBrain._gamma_vote(context), context.source)

    @staticmethod
    def _gamma_vote(context: _BarContext) -> Vote:
        out = context.out
        v = _V
        code = out[v]
        if code == k.ABSTAIN:
            return context.hedge_abstains
        tilt = out[v + 3]
        wall = context.wall
        if code == k.H_BALANCED:
            return Vote("hedge", 0, 0.3, f"dealer gamma balanced (tilt {tilt:+.2f})")
        if code == k.H_ATR_NOT_READY:
            return _ATR_NOT_READY
        if code == k.H_PINNED:
            return Vote("hedge", 0, 0.4, f"long gamma {tilt:+.2f}: pinned near wall {wall:g}")
        if code == k.H_REVERT:
            return Vote("hedge", int(out[v + 1]), out[v + 2],
                        f"long gamma {tilt:+.2f}: revert to wall {wall:g} "
                        f"({out[v + 4]:+.1f} ATR away)")
        if code == k.H_MOMENTUM_NOT_READY:
            return Vote("hedge", 0, 0.2, f"short gamma {tilt:+.2f}, momentum not ready")
        move = out[v + 4]
        if code == k.H_NO_MOMENTUM:
            return Vote("hedge", 0, 0.3, f"short gamma {tilt:+.2f}, no momentum ({move:+.1f}σ)")
        return Vote("hedge", int(out[v + 1]), out[v + 2],
                    f"short gamma {tilt:+.2f}: dealers chase the {move:+.1f}σ move")

    @staticmethod
    def _liquidity_vote(context: _BarContext) -> Vote:
        out = context.out
        v = _V + _F
        code = out[v]
        if code == k.ABSTAIN:
            bars = int(out[_O_LIQUIDITY_BARS])
            return Vote.abstain("liquidity", f"building the volume profile ({bars}/30 bars)")
        where = f"Amihud stress {out[v + 3]:.1f}σ, λ x{out[v + 4]:.1f}, no quotes"
        if code == k.L_SUPPORT:
            return Vote("liquidity", 1, out[v + 2],
                        f"held support {out[v + 5]:.2f} ({out[v + 6]:.0%} of volume); "
                        f"{where}")
        if code == k.L_RESISTANCE:
            return Vote("liquidity", -1, out[v + 2],
                        f"rejected at resistance {out[v + 5]:.2f} ({out[v + 6]:.0%} of "
                        f"volume); {where}")
        return Vote("liquidity", 0, out[v + 2], f"between volume zones; {where}")

    def _sentiment_vote(self, context: _BarContext) -> Vote:
        out = context.out
        v = _V + 2 * _F
        code = out[v]
        if code == k.ABSTAIN:
            return Vote.abstain("sentiment", f"warming up ({context.bars}/{k.SENT_MOMENTUM + 1})")
        momentum, balance, news, shock, score = out[v + 3:v + 8]
        news_note = describe_news(self.news_provider, news, context.last_headline,
                                  context.news_down)
        why = (f"momentum {momentum:+.2f}, volume balance {balance:+.2f}, {news_note}, "
               f"vol shock x{shock:.1f}")
        if code == k.S_NEUTRAL:
            return Vote("sentiment", 0, out[v + 2], f"neutral: {why}")
        return Vote("sentiment", int(out[v + 1]), out[v + 2],
                    f"{'bullish' if score > 0 else 'bearish'} {score:+.2f}: {why}")

    @staticmethod
    def _wyckoff_vote(context: _BarContext) -> Vote:
        out = context.out
        v = _V + 3 * _F
        if out[v] == k.ABSTAIN:
            index = int(out[_O_WYCKOFF_INDEX])
            return Vote.abstain("wyckoff", f"no trading range yet ({index + 1}/{k.WY_WINDOW} "
                                           "bars)")
        phase = int(out[v + 3])
        text = _PHASES.get(phase)
        if text is None:
            text = f"{_AFTER[phase]} after {_EVENTS[int(out[v + 4])]}"
        return Vote("wyckoff", int(out[v + 1]), out[v + 2],
                    f"{text} (range {out[v + 5]:.2f}-{out[v + 6]:.2f})")

    def _markov_vote(self, out: list[float], regime: RegimeState) -> Vote:
        v = _V + 4 * _F
        code = out[v]
        if code == k.ABSTAIN:
            return _NOT_FITTED
        bull, bear, ranging = out[v + 3:v + 6]
        if code == k.M_RANGING:
            return Vote("markov", 0, out[v + 2], f"HMM ranging {ranging:.2f}")
        if code == k.M_BULLISH:
            return Vote("markov", 1, out[v + 2], f"HMM bullish {bull:.2f} ({regime.hmm_state})")
        if code == k.M_BEARISH:
            return Vote("markov", -1, out[v + 2],
                        f"HMM bearish {bear:.2f} ({regime.hmm_state})")
        return Vote("markov", 0, out[v + 2],
                    f"HMM undecided: bull {bull:.2f}, bear {bear:.2f} < {k.MARKOV_MIN_PROB}")

    @staticmethod
    def _consensus(out: list[float], votes: list[Vote]) -> str:
        """The consensus's reasoning, as ``gnosis.agents.base.consensus`` writes it."""
        outcome = out[_O_CONSENSUS]
        needed = int(out[_O_NEEDED])
        if outcome == k.C_NONE:
            return f"no votes cast (need {needed})"
        if outcome == k.C_TIE:
            tally = Counter(v.signal for v in votes if not v.abstained)
            return f"tie {dict(tally)} (need {needed})"
        top_count, top_signal = int(out[_O_TOP_COUNT]), int(out[_O_TOP_SIGNAL])
        if outcome == k.C_SHORT:
            return f"{top_count} vote(s) for {top_signal:+d} < {needed} needed"
        return f"{top_count}/{int(out[_O_CAST])} for {top_signal:+d} (need {needed})"

    # -- what the dashboard and memory read ----------------------------------------------------
    def hmm_state_dict(self) -> dict[str, Any] | None:
        return None if self.hmm is None else self.hmm.to_state()


def warm_up_compiled() -> None:
    """Compile (or load from numba's cache) the step, the HMM fit, the simulated chain's
    exposure and news draws before any timed bar (loading one from the cache costs a few
    milliseconds)."""
    from gnosis.agents.options_sim import SimulatedOptionsChain
    from gnosis.core.blake_kernel import key_draws
    from gnosis.regime.hmm import _best_fit

    detector = RegimeDetector()
    from gnosis.agents import build_default_agents

    brain = FastBrain(detector, build_default_agents())
    brain.decide(Bar("X", 0, 1.0, 1.0, 1.0, 1.0, 1.0), Counter())
    rng = np.random.default_rng(0)
    _best_fit(rng.standard_normal((50, 3)), seed=0, inits=1, n_iter=2)
    SimulatedOptionsChain().exposure("X", 100.0, 10**18)
    key_draws("0|X|", 0, 60 * 10**9, 2, "|news")
