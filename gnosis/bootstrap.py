"""One place that wires every mode: modes differ only in what is plugged in.

Side inputs by mode (DESIGN §1): the synthetic market plugs in its simulated options chain and
news (both coupled to its ground truth; ``simulated_inputs`` can leave either out); a replayed
file plugs in only what real files it was given (``--options``, ``--news``); nothing
fabricated ever reaches a run on real data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gnosis.core.bus import EventBus
from gnosis.core.clock import ReplayClock
from gnosis.core.config import GnosisConfig
from gnosis.model.market import NewsProvider, OptionsChainProvider
from gnosis.model.ports import Broker, EpisodicMemory, LiveMarketFeed, MarketFeed, Strategy
from gnosis.trading.engine import Engine
from gnosis.trading.sim_broker import SimBroker
from gnosis.trading.state import StateStore

BARS_PER_SESSION = 390
SIM_INPUTS: tuple[str, ...] = ("news", "options")


@dataclass(slots=True)
class System:
    config: GnosisConfig
    engine: Engine
    feed: MarketFeed | LiveMarketFeed
    bus: EventBus
    store: StateStore | None
    market: Any = None  # the synthetic market, when it is the feed (ground truth, news)


@dataclass(frozen=True, slots=True)
class SideInputs:
    """What the agents read besides bars; None is "there is none" and the agent says so."""

    options: OptionsChainProvider | None = None
    news: NewsProvider | None = None


def simulated_inputs(market: Any, seed: int, which: tuple[str, ...] = SIM_INPUTS) -> SideInputs:
    """The synthetic market's simulated chain and/or news (``which`` ⊆ ``SIM_INPUTS``)."""
    from gnosis.agents.news_sim import SimulatedNewsProvider
    from gnosis.agents.options_sim import SimulatedOptionsChain

    return SideInputs(
        options=SimulatedOptionsChain(seed=seed) if "options" in which else None,
        news=SimulatedNewsProvider(market.phase_at, seed=seed) if "news" in which else None,
    )


def build_strategy(config: GnosisConfig, market: Any = None,
                   inputs: SideInputs | None = None,
                   symbols: tuple[str, ...] | None = None) -> Strategy:
    """The configured strategy: the five-agent ensemble (default) or the SMA crossover.

    ``inputs`` defaults to the synthetic market's simulated ones when ``market`` is the
    synthetic market, and to none otherwise. ``symbols`` (default: the configured ones, a data
    file's own otherwise) fixes each symbol's place in the run, which staggers its HMM fits."""
    if config.strategy.name == "sma":
        from gnosis.strategies.sma_crossover import SmaCrossover

        return SmaCrossover(config.strategy.sma_fast, config.strategy.sma_slow)
    from gnosis.strategies.ensemble import AgentEnsemble

    seed = config.market.seed
    if inputs is None:
        synthetic = getattr(market, "phase_at", None) is not None
        inputs = simulated_inputs(market, seed) if synthetic else SideInputs()
    return AgentEnsemble(seed=seed, chain_provider=inputs.options, news_provider=inputs.news,
                         fast=config.strategy.fast,
                         symbols=config.market.symbols if symbols is None else symbols)


def run_identity(config: GnosisConfig, market: str) -> dict[str, Any]:
    """What makes two runs the same run: resuming one as the other is refused. The synthetic
    market's path depends on its start and length too, so they are part of its identity."""
    identity: dict[str, Any] = {
        "market": market,
        "symbols": ",".join(config.market.symbols),
        "strategy": config.strategy.name,
    }
    if market == "synthetic":
        cfg = config.market
        identity.update(seed=cfg.seed, start=cfg.start, days=cfg.days,
                        warmup_days=cfg.warmup_days)
    return identity


def synthetic_market(config: GnosisConfig, bars: int | None = None, *,
                     history: bool = False) -> Any:
    """The embedded default market; ``bars`` sizes it (across all symbols). With ``history``
    the first ``market.warmup_days`` sessions come before the ``market.days`` live ones."""
    from gnosis.data.synthetic import SyntheticMarket

    market_cfg = config.market
    days = market_cfg.days + (market_cfg.warmup_days if history else 0)
    if bars is not None:  # early-close sessions are shorter: plan a few spare sessions
        full_days = math.ceil(bars / (BARS_PER_SESSION * len(market_cfg.symbols)))
        days = full_days + math.ceil(full_days * 0.02) + 1
    return SyntheticMarket(
        symbols=market_cfg.symbols, seed=market_cfg.seed, start=market_cfg.start, days=days
    )


def build_system(
    config: GnosisConfig,
    feed: MarketFeed | LiveMarketFeed,
    *,
    market: Any = None,
    state_dir: Path | None = None,
    strategy: Strategy | None = None,
    bus: EventBus | None = None,
    memory: EpisodicMemory | None = None,
    identity: dict[str, Any] | None = None,
    fresh: bool = False,
    broker: Broker | None = None,
) -> System:
    """Wire feed, strategy, risk, positions, broker and (optionally) durable state.

    ``identity`` names the run (market, symbols, seed, strategy): a state directory holding
    another run is refused on restart. Opening ``state_dir`` takes its lock (one owner).
    ``broker`` defaults to the SimBroker (simulation and dry runs).
    """
    bus = bus or EventBus()
    store = StateStore(state_dir, fresh=fresh) if state_dir is not None else None
    engine = Engine(
        config,
        strategy or build_strategy(config, market),
        broker or SimBroker(config.execution),
        clock=ReplayClock(),
        bus=bus,
        store=store,
        memory=memory,
    )
    engine.identity = dict(identity or {})
    return System(config, engine, feed, bus, store, market)
