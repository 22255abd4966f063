"""One place that wires every mode: modes differ only in what is plugged in."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gnosis.core.bus import EventBus
from gnosis.core.clock import ReplayClock
from gnosis.core.config import GnosisConfig
from gnosis.model.ports import Broker, EpisodicMemory, LiveMarketFeed, MarketFeed, Strategy
from gnosis.trading.engine import Engine
from gnosis.trading.sim_broker import SimBroker
from gnosis.trading.state import StateStore

BARS_PER_SESSION = 390


@dataclass(slots=True)
class System:
    config: GnosisConfig
    engine: Engine
    feed: MarketFeed | LiveMarketFeed
    bus: EventBus
    store: StateStore | None
    market: Any = None  # the synthetic market, when it is the feed (ground truth, news)


def build_strategy(config: GnosisConfig, market: Any = None) -> Strategy:
    """The configured strategy: the five-agent ensemble (default) or the SMA crossover."""
    if config.strategy.name == "sma":
        from gnosis.strategies.sma_crossover import SmaCrossover

        return SmaCrossover(config.strategy.sma_fast, config.strategy.sma_slow)
    from gnosis.strategies.ensemble import AgentEnsemble

    phase_of = getattr(market, "phase_at", None)
    return AgentEnsemble(seed=config.market.seed, phase_of=phase_of)


def run_identity(config: GnosisConfig, market: str) -> dict[str, Any]:
    """What makes two runs the same run: resuming one as the other is refused."""
    return {
        "market": market,
        "symbols": ",".join(config.market.symbols),
        "seed": config.market.seed,
        "strategy": config.strategy.name,
    }


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
