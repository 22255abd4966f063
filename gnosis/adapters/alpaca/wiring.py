"""One place that wires the Alpaca mode: ``gnosis run --feed alpaca`` and
``LiveTradingBot(feed="alpaca")`` both come through ``build_alpaca_bot``.

What is plugged in (DESIGN §1): the ``AlpacaFeed`` (live bars, warm-up from history), the
``AlpacaBroker`` on the paper account (``broker="alpaca"``) or the ``SimBroker`` (a dry run on
Alpaca's data, ``broker="sim"``), and for the agent strategy the Alpaca option chain (Hedge)
and Alpaca news (Sentiment). The keys are checked before anything starts: a missing key or one
the venue rejects stops here with one line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gnosis.adapters.alpaca.broker import AlpacaBroker
from gnosis.adapters.alpaca.calendar import VenueClock
from gnosis.adapters.alpaca.errors import AlpacaSetupError
from gnosis.adapters.alpaca.feed import AlpacaFeed
from gnosis.adapters.alpaca.news import AlpacaNews
from gnosis.adapters.alpaca.options import AlpacaOptionsChain
from gnosis.adapters.alpaca.settings import AlpacaSettings
from gnosis.core.bus import EventBus
from gnosis.core.config import GnosisConfig
from gnosis.model.ports import EpisodicMemory, Strategy
from gnosis.trading.live_bot import LiveBot

BROKERS = ("sim", "alpaca")


@dataclass(slots=True)
class AlpacaParts:
    """The Alpaca objects of one run (tests and the console look at their ``status()``)."""

    settings: AlpacaSettings
    clock: VenueClock
    feed: AlpacaFeed
    broker: AlpacaBroker | None = None
    news: AlpacaNews | None = None
    options: AlpacaOptionsChain | None = None
    services: list[Any] = field(default_factory=list)


def alpaca_identity(config: GnosisConfig, broker: str) -> dict[str, Any]:
    """A state directory of one Alpaca run: resuming it as another (other symbols, strategy,
    or a dry run as a paper-trading run) is refused."""
    from gnosis.bootstrap import run_identity

    return {**run_identity(config, "alpaca"), "broker": broker}


def build_alpaca_bot(config: GnosisConfig, *, broker: str = "sim",
                     state_dir: Path | None = None, fresh: bool = False,
                     max_bars: int | None = None, bus: EventBus | None = None,
                     memory: EpisodicMemory | None = None, warmup_days: int | None = None,
                     record: int = 0) -> tuple[LiveBot, Any, AlpacaParts]:
    """(the live bot, the system, the Alpaca parts) for ``broker`` "sim" (dry run) or
    "alpaca" (orders on the paper account)."""
    from gnosis.bootstrap import build_system

    if broker not in BROKERS:
        raise AlpacaSetupError(f"unknown broker {broker!r}: one of {', '.join(BROKERS)}")
    settings = AlpacaSettings.from_config(config)
    symbols = config.market.symbols
    days = config.market.warmup_days if warmup_days is None else warmup_days
    clock = VenueClock(settings.trading_client())
    clock.read()  # the keys are checked here: a rejected key stops us with one line
    strategy = _strategy(config, settings, clock, days)
    venue = None
    if broker == "alpaca":
        venue = AlpacaBroker(settings, symbols, fresh_journal=fresh,
                             execution=config.execution)
    feed = AlpacaFeed(settings, symbols, clock=clock, warmup_days=days,
                      fold_stale=venue is not None, record=record)
    parts = AlpacaParts(settings, clock, feed, venue)
    ensemble_inputs = (getattr(strategy, "chain_provider", None),
                       getattr(strategy, "news_provider", None))
    parts.options = ensemble_inputs[0] if isinstance(ensemble_inputs[0],
                                                     AlpacaOptionsChain) else None
    parts.news = ensemble_inputs[1] if isinstance(ensemble_inputs[1], AlpacaNews) else None
    if venue is not None:
        parts.services.append(venue)  # first: reconciliation comes before anything trades
        feed.on_reconnect(venue.request_reconcile)
    parts.services += [s for s in (parts.options, parts.news) if s is not None]
    system = build_system(config, feed, state_dir=state_dir, strategy=strategy, bus=bus,
                          memory=memory, identity=alpaca_identity(config, broker),
                          fresh=fresh, broker=venue)
    bot = LiveBot(system.engine, feed, max_bars=max_bars, services=parts.services)
    return bot, system, parts


def _strategy(config: GnosisConfig, settings: AlpacaSettings, clock: VenueClock,
              warmup_days: int) -> Strategy:
    """The agents read Alpaca's option chain and news; the SMA crossover reads bars only."""
    if config.strategy.name != "agents":
        from gnosis.bootstrap import build_strategy

        return build_strategy(config)
    from gnosis.strategies.ensemble import AgentEnsemble

    symbols = config.market.symbols
    options = AlpacaOptionsChain(settings, symbols, clock=clock)
    options.prepare()
    news = None
    if settings.tuning.news:
        news = AlpacaNews(settings, symbols, clock=clock)
        news.prepare(warmup_days)
    return AgentEnsemble(seed=config.market.seed, chain_provider=options, news_provider=news)
