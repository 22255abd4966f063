"""The live loop: a feed thread puts bars on an ordered queue; one core thread consumes.

Adapters (feeds, venue streams, the dashboard) only put events on the queue; only the core
thread touches the engine. Two kinds of feed:
- a paced feed (the synthetic market, a replay): ``feed.bars()`` is an iterator that a feed
  thread paces by ``--speed`` (simulated seconds per real second; closed-market hours are
  skipped rather than waited out), the first ``warmup_bars`` being history;
- a live feed (``feed.is_live``, e.g. ``AlpacaFeed``): its own threads deliver bars as they
  arrive (no pacing); warm-up comes from ``feed.history()`` on a fresh start, and a restart
  resumes after the last committed bar of each symbol (the feed backfills the gap). A
  ``HistoryBar`` from it is folded into the strategy without trading.
``services`` (a venue broker's streams, side-input refreshers) start after the warm-up and
before the first live bar, and stop with the bot.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from gnosis.core import background
from gnosis.core.clock import LiveClock
from gnosis.model.events import Notice
from gnosis.model.ports import LiveMarketFeed, MarketFeed
from gnosis.model.types import Bar, Fill, InvalidValue, format_ns
from gnosis.trading.engine import Engine
from gnosis.trading.inbox import Inbox, InboxMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BrokerFills:
    """Fills a venue reported (from its stream thread), for the core to book. ``before`` runs
    on the core thread just before they are booked (the broker's watermark of booked fills)."""

    fills: tuple[Fill, ...]
    before: Callable[[], None] | None = None


@dataclass(frozen=True, slots=True)
class HistoryBar:
    """A bar a live feed backfilled too late to trade on: folded in without trading."""

    bar: Bar


@dataclass(frozen=True, slots=True)
class CoreTask:
    """Work an adapter needs done on the core thread (reconciliation, a journaled notice)."""

    run: Callable[[Engine], None]
    what: str


class Service(Protocol):
    """Something that runs beside the core while the bot runs (a venue's streams)."""

    def start(self, bot: LiveBot) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class OrderEnded:
    """The venue ended one of our orders on its own (expired, rejected, canceled)."""

    client_order_id: str
    status: str
    reason: str


@dataclass(frozen=True, slots=True)
class Command:
    """An operator command for the core: ``halt``, ``resume``, ``flatten`` or ``stop``."""

    name: str
    reason: str = ""
    message: InboxMessage | None = None  # set when the command came through the inbox


_END = object()
COMMANDS = ("halt", "resume", "flatten", "stop")
_POLL_S = 0.1  # how long the core waits for a bar before it looks at commands and Ctrl-C
# bars a burst may stage before a commit (a backlog after a restart replays in such groups)
_MAX_UNCOMMITTED_BARS = 1_000


class LiveBot:
    """Run an engine against a feed in real time (paced by ``speed``)."""

    def __init__(
        self,
        engine: Engine,
        feed: MarketFeed | LiveMarketFeed,
        *,
        speed: float = 60.0,
        max_bars: int | None = None,
        warmup_bars: int = 0,
        wall: LiveClock | None = None,
        services: Sequence[Service] = (),
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive (simulated seconds per real second)")
        self.engine = engine
        self.feed = feed
        self.speed = speed
        self.max_bars = max_bars
        self.warmup_bars = max(0, warmup_bars)
        self.wall = wall or LiveClock()
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=10_000)
        # commands and venue events jump the bar queue: the core takes them before its next bar
        self._commands: queue.SimpleQueue[Command | BrokerFills | OrderEnded | CoreTask] = \
            queue.SimpleQueue()
        self.quarantined = 0
        self._stopping = threading.Event()
        self._last_bar: Bar | None = None
        self.services = tuple(services)
        self._live = bool(getattr(feed, "is_live", False))
        self.failure: str | None = None  # why a live feed or venue stopped the bot

    def command(self, name: str, reason: str = "") -> None:
        """Thread-safe and never blocking: ask the core to halt, resume, flatten or stop.

        Commands jump the bar queue: the core takes them before its next bar.
        """
        if name not in COMMANDS:
            raise ValueError(f"unknown command {name!r}; one of {', '.join(COMMANDS)}")
        if name == "stop":
            self.stop()
            return
        self._commands.put(Command(name, reason))

    def stop(self) -> None:
        self._stopping.set()

    def on_broker_fills(self, fills: Sequence[Fill],
                        before: Callable[[], None] | None = None) -> None:
        """Thread-safe: a venue's fills, booked by the core before its next bar."""
        self._commands.put(BrokerFills(tuple(fills), before))

    def call_soon(self, run: Callable[[Engine], None], what: str) -> None:
        """Thread-safe: run ``run(engine)`` on the core thread before its next bar."""
        self._commands.put(CoreTask(run, what))

    def notify(self, message: str) -> None:
        """Thread-safe: journal and show a notice (from the core thread)."""
        self.call_soon(lambda engine: engine.note(message), "notice")

    def fail(self, message: str) -> None:
        """Thread-safe: something outside cannot go on (rejected keys): say so and stop."""
        self.failure = message
        self.notify(message)
        self.stop()

    def offer(self, item: Bar | HistoryBar) -> None:
        """Thread-safe: a live feed's next bar, in order (blocks while the queue is full)."""
        while not self._stopping.is_set():
            try:
                self.queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def on_order_ended(self, client_order_id: str, status: str, reason: str) -> None:
        """Thread-safe: a venue ended one of our orders on its own."""
        self._commands.put(OrderEnded(client_order_id, status, reason))

    def _pending_bars(self) -> Iterator[Bar]:
        skip = self.engine.sequence  # bars already committed before a restart
        live_done = max(0, skip - self.warmup_bars)
        budget = None if self.max_bars is None else self.max_bars - live_done
        for index, bar in enumerate(cast(MarketFeed, self.feed).bars()):
            if index < skip:
                continue
            if budget is not None:
                if budget <= 0:
                    return
                budget -= 1
            yield bar

    def _produce(self) -> None:
        try:
            next_release = self.wall.monotonic_ns()
            current_ts = None
            for bar in self._pending_bars():
                if self._stopping.is_set():
                    return
                if bar.ts_event != current_ts:  # pace simulated time, not bars: N symbols
                    if current_ts is not None:  # share one minute
                        next_release += int(bar.interval_s / self.speed * 1e9)
                    current_ts = bar.ts_event
                    delay = (next_release - self.wall.monotonic_ns()) / 1e9
                    if delay > 0 and self._stopping.wait(delay):
                        return
                self.queue.put(bar)
        except InvalidValue as exc:  # a feed that yields a bad bar is quarantined, not fatal
            self.quarantined += 1
            self.queue.put(Notice(0, 0, f"quarantined bad bar: {exc}"))
        finally:
            self.queue.put(_END)

    def run(self) -> dict[str, Any]:
        """Consume until the feed ends, ``max_bars`` is reached or a stop arrives."""
        engine = self.engine
        engine.resume_from_store()
        previous = self._install_signal_handlers()  # Ctrl-C in the warm-up stops cleanly too
        background.use_worker_thread()  # HMM refits off the core thread, effective bars fixed
        try:
            if self._live:
                self._run_live()
            else:
                self._warm_up()
                producer = threading.Thread(target=self._produce, name="gnosis-feed",
                                            daemon=True)
                producer.start()
                self._start_inbox()
                self._consume()
                engine.commit_now()  # the bars of the last burst
        finally:
            self._stopping.set()
            self._restore_signal_handlers(previous)
            background.use_inline()
        summary = engine.summary()
        if self.failure is not None:
            summary["error"] = self.failure
        return summary

    def _run_live(self) -> None:
        """Warm up from history (fresh start only), start the services (a venue broker
        reconciles here, before any new order), then the feed, then consume."""
        engine = self.engine
        feed = cast(LiveMarketFeed, self.feed)
        if engine.sequence == 0:
            self._warm_up_live()
        started: list[Service] = []
        try:
            for service in self.services:
                if self._stopping.is_set():
                    return
                service.start(self)
                started.append(service)
            self._drain_commands()  # what the services found, before the first bar
            if self._stopping.is_set():
                return
            feed.start(self.offer, engine.last_bar_ts(), notify=self.notify, fail=self.fail)
            self._start_inbox()
            self._consume()
        finally:
            self._stopping.set()
            feed.stop()
            for service in reversed(started):
                service.stop()
            self._drain_commands()
            engine.commit_now()

    def _warm_up_live(self) -> None:
        engine = self.engine
        began = self.wall.monotonic_ns()
        done, last = 0, None
        for bar in cast(LiveMarketFeed, self.feed).history():
            if self._stopping.is_set():
                break
            engine.warm_up(bar)
            done, last = done + 1, bar
        engine.commit_warm_up()
        seconds = (self.wall.monotonic_ns() - began) / 1e9
        through = "" if last is None else f" through {format_ns(last.ts_close)}"
        engine.note(f"warmed up on {done} history bars{through} in {seconds:.1f} s"
                    if not self._stopping.is_set() else
                    f"warm-up stopped after {done} history bars")

    def _consume(self) -> None:
        """The core loop: commands first, then the next bar; a stop ends it within _POLL_S."""
        engine = self.engine
        while not self._stopping.is_set():
            self._drain_commands()
            try:
                item = self.queue.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if item is _END:
                break
            if isinstance(item, Bar):
                self._last_bar = item
                # a burst (every symbol's bar of a minute) commits once, after its last bar
                engine.on_bar(item, commit=self.queue.empty()
                              or engine.uncommitted_bars + 1 >= _MAX_UNCOMMITTED_BARS)
                if self._live and self.max_bars is not None \
                        and engine.stats.bars >= self.max_bars:
                    break
            elif isinstance(item, HistoryBar):
                engine.warm_up(item.bar)
                if self.queue.empty():
                    engine.commit_warm_up()
            elif isinstance(item, Notice):
                engine.bus.publish(item)
        self._drain_commands()

    def _drain_commands(self) -> None:
        while True:
            try:
                item = self._commands.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, BrokerFills):
                if item.before is not None:
                    item.before()
                self.engine.on_broker_fills(item.fills)
            elif isinstance(item, OrderEnded):
                self.engine.on_order_ended(item.client_order_id, item.status, item.reason)
            elif isinstance(item, CoreTask):
                self._run_task(item)
            else:
                self._apply(item)

    def _run_task(self, task: CoreTask) -> None:
        try:
            task.run(self.engine)
        except Exception as exc:  # noqa: BLE001 - an adapter's task must never stop the core
            log.warning("core task %s failed: %s", task.what, exc, exc_info=True)
            self.engine.note(f"{task.what} failed: {type(exc).__name__}: {exc}")

    def _start_inbox(self) -> None:
        """Commands from other processes (``gnosis resume`` while this bot runs)."""
        store = self.engine.store
        if store is None:
            return
        inbox = Inbox(store.directory)

        def watch() -> None:
            while not self._stopping.wait(0.5):
                for message in inbox.take():
                    self._commands.put(Command(message.command, message.reason, message))

        threading.Thread(target=watch, name="gnosis-inbox", daemon=True).start()

    def _warm_up(self) -> None:
        """Feed the first ``warmup_bars`` of the feed (history) unpaced and without trading."""
        engine = self.engine
        start = engine.sequence
        if start >= self.warmup_bars:
            return  # done before a restart: its state was committed
        began = self.wall.monotonic_ns()
        last: Bar | None = None
        try:
            for index, bar in enumerate(cast(MarketFeed, self.feed).bars()):
                if index >= self.warmup_bars or self._stopping.is_set():
                    break
                if index >= start:
                    engine.warm_up(bar)
                    last = bar
        except InvalidValue as exc:
            self.quarantined += 1
            engine.bus.publish(Notice(0, 0, f"quarantined bad history bar: {exc}"))
        engine.commit_warm_up()
        seconds = (self.wall.monotonic_ns() - began) / 1e9
        through = "" if last is None else f" through {format_ns(last.ts_close)}"
        done = engine.sequence - start
        message = (f"warm-up stopped after {done} history bars (resumes on restart)"
                   if self._stopping.is_set() else
                   f"warmed up on {done} history bars{through} in {seconds:.1f} s; "
                   "trading from the next bar")
        engine.bus.publish(Notice(engine.clock.now_ns(), engine.clock.now_ns(), message))

    def _apply(self, command: Command) -> None:
        """Carry out an operator command on the core thread, journal it and commit."""
        engine = self.engine
        reason = command.reason or f"{command.name} by operator"
        before = engine.trading_state
        engine.note(f"operator command: {command.name} ({reason})", command=command.name)
        if command.name == "halt":
            engine.halt(reason, flatten=True)
        elif command.name == "resume":
            engine.resume(reason)
        elif command.name == "flatten":
            engine.flatten(None, "operator_flatten")
        engine.commit_now()
        if command.message is not None:
            command.message.acknowledge(
                f"trading state {before.value} -> {engine.trading_state.value}")

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous: dict[int, Any] = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda *_: self.stop())
        return previous

    @staticmethod
    def _restore_signal_handlers(previous: dict[int, Any]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


LIVE_MONEY_REFUSED = (
    "paper_mode=False would trade real money: Gnosis trades paper accounts only (DESIGN §1); "
    "use paper_mode=True with paper keys")
INTERVALS = ("1Min",)


class TradingRefused(ValueError):
    """A ``LiveTradingBot`` configuration Gnosis will not run, with the reason."""


class LiveTradingBot:
    """The seed's Python API: ``LiveTradingBot(symbol="SPY", bar_interval="1Min",
    enable_memory=True, enable_trading=False, paper_mode=True).run()``.

    ``feed="sim"`` (default) runs on the embedded synthetic market with the SimBroker, as
    ``gnosis run`` does; ``feed="alpaca"`` runs on Alpaca's live bars (``ALPACA_*`` keys from
    the environment or ``.env``): ``enable_trading=False`` is a dry run (decisions on Alpaca's
    data, SimBroker fills, nothing sent to Alpaca), ``enable_trading=True`` places the orders
    on the paper account. ``paper_mode=False`` is refused. ``run()`` blocks and returns the
    summary; ``stop()`` ends it cleanly from another thread. The objects are wired by the same
    functions as the command line (``gnosis.bootstrap``, ``gnosis.adapters.alpaca.wiring``).
    """

    def __init__(self, symbol: str = "SPY", bar_interval: str = "1Min",
                 enable_memory: bool = True, enable_trading: bool = False,
                 paper_mode: bool = True, *, symbols: Sequence[str] | None = None,
                 feed: str = "sim", state_dir: Any = None, fresh: bool = False,
                 speed: float = 60.0, max_bars: int | None = None,
                 warmup_days: int | None = None, console: bool = True,
                 config: Any = None, dashboard: bool = False, host: str | None = None,
                 port: int | None = None, token: str | None = None) -> None:
        if not paper_mode:
            raise TradingRefused(LIVE_MONEY_REFUSED)
        if bar_interval not in INTERVALS:
            raise TradingRefused(f"bar_interval {bar_interval!r}: the live bot trades 1Min bars "
                                 "(gnosis backtest --timeframe replays coarser ones)")
        if feed not in ("sim", "alpaca"):
            raise TradingRefused(f"feed {feed!r}: one of 'sim', 'alpaca'")
        if enable_trading and feed != "alpaca":
            raise TradingRefused("enable_trading=True places orders on the Alpaca paper "
                                 "account, which trades on Alpaca's data: use feed='alpaca'")
        if dashboard:  # a public bind without a token is refused before any work
            from gnosis.dashboard import launch

            try:
                launch.check(True, host, port, token)
            except launch.DashboardError as exc:
                raise TradingRefused(str(exc)) from None
        self.dashboard = dashboard
        self.host, self.port, self.token = host, port, token
        self.dashboard_url: str | None = None
        self.symbols = tuple(s.upper() for s in (symbols or (symbol,)))
        self.bar_interval = bar_interval
        self.enable_memory = enable_memory
        self.enable_trading = enable_trading
        self.paper_mode = paper_mode
        self.feed = feed
        self.state_dir = state_dir
        self.fresh = fresh
        self.speed = speed
        self.max_bars = max_bars
        self.warmup_days = warmup_days
        self.console = console
        self._config = config
        self.memory_note = ""
        self.bot: LiveBot | None = None
        self.parts: Any = None
        self._stop_requested = threading.Event()

    def _configuration(self) -> Any:
        from pathlib import Path

        from gnosis.core.config import MarketConfig, load_config

        base = self._config or load_config()
        market = base.market.model_dump()
        market["symbols"] = self.symbols
        if self.warmup_days is not None:
            market["warmup_days"] = self.warmup_days
        update: dict[str, Any] = {"market": MarketConfig(**market)}
        if self.state_dir is not None:
            update["state_dir"] = Path(self.state_dir)
        return base.model_copy(update=update)

    def _memory(self, config: Any) -> Any:
        """The episodic memory (called once the state directory's lock is ours)."""
        if not self.enable_memory:
            self.memory_note = "episodic memory off (enable_memory=False)"
            return None
        from gnosis.memory import MemoryUnavailable, discard_memory, open_memory

        if self.fresh:
            discard_memory(config.state_dir)
        try:
            return open_memory(config.state_dir, config=config.memory)
        except MemoryUnavailable as exc:  # memory is advisory: trade on, and say why
            self.memory_note = f"episodic memory unavailable ({exc}); running without it"
            return None

    def run(self) -> dict[str, Any]:
        config = self._configuration()
        if self.feed == "alpaca":
            from gnosis.adapters.alpaca.wiring import build_alpaca_bot

            bot, system, self.parts = build_alpaca_bot(
                config, broker="alpaca" if self.enable_trading else "sim",
                state_dir=config.state_dir, fresh=self.fresh, max_bars=self.max_bars)
        else:
            from gnosis.bootstrap import build_system, run_identity, synthetic_market

            market = synthetic_market(config, history=True)
            system = build_system(config, market, market=market, state_dir=config.state_dir,
                                  identity=run_identity(config, "synthetic"), fresh=self.fresh)
            bot = LiveBot(system.engine, market, speed=self.speed, max_bars=self.max_bars,
                          warmup_bars=market.bars_in_sessions(config.market.warmup_days))
        memory = self._memory(config)
        system.engine.attach_memory(memory)
        if self.console:
            from gnosis.trading.console import ConsoleReporter

            strategy = system.engine.strategy
            regime_of = getattr(strategy, "regime_of", None)
            ConsoleReporter(system.bus, equity=lambda: system.engine.positions.equity,
                            regime_of=None if regime_of is None else
                            lambda symbol: getattr(regime_of(symbol), "last", None))
            where = ("Alpaca bars, orders on the paper account" if self.enable_trading else
                     "Alpaca bars, dry run (SimBroker)") if self.feed == "alpaca" else \
                f"simulated market (seed {config.market.seed}), dry run (SimBroker)"
            print(f"LiveTradingBot: {','.join(self.symbols)} {self.bar_interval} on {where}; "
                  f"memory {'on' if memory is not None else 'off'}; state in "
                  f"{config.state_dir}/", flush=True)
        if self.memory_note:
            system.engine.note(self.memory_note)
        self.bot = bot
        if self._stop_requested.is_set():
            bot.stop()
        attached = None
        try:
            attached = self._attach_dashboard(system, bot, config)
            summary = bot.run()
        finally:
            if attached is not None:
                attached.close()
            if system.store is not None:
                system.store.close()
            if memory is not None:
                memory.close()
        if self.memory_note:  # off or unavailable: say why (on: the engine's memory block)
            summary["memory_note"] = self.memory_note
        return summary

    def _attach_dashboard(self, system: Any, bot: LiveBot, config: Any) -> Any:
        """The web dashboard in this process (``dashboard=True``), control through ``bot``."""
        if not self.dashboard:
            return None
        from gnosis.dashboard import launch

        try:
            attached = launch.attach(system.engine, bot, state_dir=config.state_dir,
                                     host=self.host, port=self.port, token=self.token)
        except launch.DashboardError as exc:  # run() closes the store and the memory
            raise TradingRefused(str(exc)) from None
        self.dashboard_url = attached.url
        if self.console:
            print(f"dashboard: {attached.url}", flush=True)
        return attached

    def stop(self) -> None:
        """End ``run()`` cleanly (thread-safe; before ``run()`` it ends as soon as it starts)."""
        self._stop_requested.set()
        if self.bot is not None:
            self.bot.stop()

