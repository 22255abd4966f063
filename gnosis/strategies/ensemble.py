"""The default strategy: regime detection, five agents, activation rules and consensus.

Per symbol, the detector and the agents are built on the symbol's first bar for that bar's
interval (a daily file gets a daily detector). Side inputs are what the ensemble is given: an
options chain provider (Hedge) and a news provider (Sentiment); without them Hedge abstains
("no options data") and Sentiment runs on price and volume, and says so. Which inputs a mode
plugs in is decided in ``gnosis.bootstrap``; the ensemble never invents one.
"""

from __future__ import annotations

import io
import logging
import pickle
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gnosis.agents import build_default_agents
from gnosis.agents.base import Agent, AgentContext, consensus, safe_vote
from gnosis.model.market import NewsProvider, OptionsChainProvider
from gnosis.model.types import Bar, Decision, Vote
from gnosis.regime.activation import agent_activation
from gnosis.regime.detector import RegimeDetector
from gnosis.strategies.fast import FastBrain

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _SymbolBrain:
    """The reference objects of one symbol (``detector``, ``agents``), or, on the fast path,
    the compiled state that replaces them (``fast``)."""

    detector: RegimeDetector | None
    agents: list[Agent]
    fast: FastBrain | None = None


class _ProviderPickler(pickle.Pickler):
    """Pickle strategy state without the live providers (market, chain, news) it points at."""

    def __init__(self, file: io.BytesIO, providers: dict[int, str]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._providers = providers

    def persistent_id(self, obj: Any) -> str | None:  # noqa: D102 - pickle hook
        return self._providers.get(id(obj))


class _ProviderUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, providers: dict[str, Any]) -> None:
        super().__init__(file)
        self._providers = providers

    def persistent_load(self, pid: Any) -> Any:  # noqa: D102 - pickle hook
        return self._providers[pid]


class AgentEnsemble:
    """Per symbol: RegimeDetector → activation → agents → consensus → Decision.

    ``fast`` (the default) runs each symbol's detector and agents as one compiled step
    (``gnosis.strategies.fast``) that reproduces the reference path below bit for bit; with
    ``fast=False`` the reference objects themselves run, one Python call each.
    """

    name = "agents"

    def __init__(
        self,
        seed: int = 0,
        chain_provider: OptionsChainProvider | None = None,
        news_provider: NewsProvider | None = None,
        detector_factory: Callable[[int], RegimeDetector] | None = None,
        fast: bool = True,
        symbols: Sequence[str] = (),
    ) -> None:
        self.fast = fast
        # a symbol's place in the configured list staggers its HMM fits and options reads; it
        # must not depend on which symbol's first bar arrives first (a live stream's order is
        # not a replay's), or live and replay would fit on different bars
        self._places = {symbol: place for place, symbol in enumerate(symbols)}
        self.chain_provider = chain_provider
        self.news_provider = news_provider
        self._seed = seed
        self._detector_factory = detector_factory
        self._brains: dict[str, _SymbolBrain] = {}
        self.agent_errors: Counter[str] = Counter()

    def _brain(self, bar: Bar) -> _SymbolBrain:
        brain = self._brains.get(bar.symbol)
        if brain is None:
            place = self._places.get(bar.symbol)
            if place is None:  # not configured (a data file's symbols): order of appearance
                place = len(self._places) + sum(s not in self._places for s in self._brains)
            factory = self._detector_factory
            detector = (factory(bar.interval_s) if factory is not None else
                        RegimeDetector(interval_s=bar.interval_s, seed=self._seed,
                                       hmm_stagger=place))
            agents = build_default_agents(self.chain_provider, self.news_provider,
                                          interval_s=bar.interval_s, stagger=place)
            if self.fast:
                brain = _SymbolBrain(None, [], FastBrain(detector, agents))
            else:
                brain = _SymbolBrain(detector, agents)
            self._brains[bar.symbol] = brain
        return brain

    def on_bar(self, bar: Bar) -> Decision:
        brain = self._brains.get(bar.symbol) or self._brain(bar)
        if brain.fast is not None:
            return brain.fast.decide(bar, self.agent_errors)
        assert brain.detector is not None
        regime = brain.detector.update(bar)
        activation = agent_activation(regime)
        ctx = AgentContext(bar, regime)
        votes: list[Vote] = []
        inactive: list[tuple[str, str]] = []
        errors = self.agent_errors
        for agent in brain.agents:
            try:
                agent.update(ctx)
            except Exception as exc:  # an agent's bookkeeping error must not stop the bot
                errors[agent.name] += 1
                log.warning("agent %s failed to update: %s", agent.name, exc)
            active, why = activation.get(agent.name, (True, "no activation rule"))
            if active:
                votes.append(safe_vote(agent, ctx, errors))
            else:
                inactive.append((agent.name, why))
        signal, confidence, why = consensus(votes, len(votes))
        if not regime.ready:  # votes are recorded, but nothing trades on a half-formed view
            signal, confidence, why = 0, 0.0, f"no trading while {regime.reason} ({why})"
        return Decision(
            symbol=bar.symbol,
            ts_event=bar.ts_event,
            signal=signal,
            confidence=confidence,
            votes=tuple(votes),
            regime=regime.primary,
            regime_confidence=regime.confidence,
            reasoning=why,  # the regime's own explanation is formatted on demand from the state
            inactive=tuple(inactive),
            regime_state=regime,
        )

    def regime_of(self, symbol: str) -> Any:
        """The symbol's detector (or its fast twin): ``.last`` is its latest RegimeState."""
        brain = self._brains.get(symbol)
        if brain is None:
            return None
        return brain.fast if brain.fast is not None else brain.detector

    # -- persistence: everything but the live providers -------------------------------------
    def _provider_ids(self) -> dict[str, Any]:
        return {"chain": self.chain_provider, "news": self.news_provider}

    def snapshot(self) -> bytes:
        return self._pickle({"brains": self._brains, "errors": self.agent_errors})

    def restore(self, state: bytes) -> None:
        loaded = self._unpickle(state)
        self._brains = loaded["brains"]
        self.agent_errors = loaded["errors"]

    # the same state split by symbol: a bar changes one symbol's brain, so a live commit
    # rewrites that one (Engine/StateStore ``strategy_parts``), not every symbol's
    def shared_state(self) -> bytes:
        """What is not one symbol's: the agents' error counts and which symbols have brains."""
        return self._pickle({"errors": self.agent_errors, "symbols": list(self._brains)})

    def symbol_state(self, symbol: str) -> bytes:
        return self._pickle(self._brains[symbol])

    def restore_split(self, shared: bytes, parts: dict[str, bytes]) -> None:
        loaded = self._unpickle(shared)
        missing = [symbol for symbol in loaded["symbols"] if symbol not in parts]
        if missing:
            raise ValueError(f"the saved strategy state lacks the symbols {missing}")
        self._brains = {symbol: self._unpickle(parts[symbol]) for symbol in loaded["symbols"]}
        self.agent_errors = loaded["errors"]

    def _pickle(self, obj: Any) -> bytes:
        buffer = io.BytesIO()
        providers = {id(provider): name for name, provider in self._provider_ids().items()
                     if provider is not None}
        _ProviderPickler(buffer, providers).dump(obj)
        return buffer.getvalue()

    def _unpickle(self, state: bytes) -> Any:
        return _ProviderUnpickler(io.BytesIO(state), self._provider_ids()).load()

