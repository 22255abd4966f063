"""The live loop: a paced feed thread puts bars on an ordered queue; one core thread consumes.

Adapters (the feed here, later websockets and the dashboard) only put events on the queue;
only the core thread touches the engine. ``--speed`` is simulated seconds per real second;
closed-market hours are skipped rather than waited out, so a simulated night takes no time.
"""

from __future__ import annotations

import queue
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gnosis.core import background
from gnosis.core.clock import LiveClock
from gnosis.model.events import Notice
from gnosis.model.ports import MarketFeed
from gnosis.model.types import Bar, Fill, InvalidValue, format_ns
from gnosis.trading.engine import Engine
from gnosis.trading.inbox import Inbox, InboxMessage


@dataclass(frozen=True, slots=True)
class BrokerFills:
    """Fills a venue reported (from its stream thread), for the core to book."""

    fills: tuple[Fill, ...]


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


class LiveBot:
    """Run an engine against a feed in real time (paced by ``speed``)."""

    def __init__(
        self,
        engine: Engine,
        feed: MarketFeed,
        *,
        speed: float = 60.0,
        max_bars: int | None = None,
        warmup_bars: int = 0,
        wall: LiveClock | None = None,
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
        self._commands: queue.SimpleQueue[Command | BrokerFills | OrderEnded] = \
            queue.SimpleQueue()
        self.quarantined = 0
        self._stopping = threading.Event()
        self._last_bar: Bar | None = None

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

    def on_broker_fills(self, fills: list[Fill]) -> None:
        """Thread-safe: a venue's fills, booked by the core before its next bar."""
        self._commands.put(BrokerFills(tuple(fills)))

    def on_order_ended(self, client_order_id: str, status: str, reason: str) -> None:
        """Thread-safe: a venue ended one of our orders on its own."""
        self._commands.put(OrderEnded(client_order_id, status, reason))

    def _pending_bars(self) -> Iterator[Bar]:
        skip = self.engine.sequence  # bars already committed before a restart
        live_done = max(0, skip - self.warmup_bars)
        budget = None if self.max_bars is None else self.max_bars - live_done
        for index, bar in enumerate(self.feed.bars()):
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
            self._warm_up()
            producer = threading.Thread(target=self._produce, name="gnosis-feed", daemon=True)
            producer.start()
            self._start_inbox()
            self._consume()
        finally:
            self._stopping.set()
            self._restore_signal_handlers(previous)
            background.use_inline()
        return engine.summary()

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
                engine.on_bar(item)
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
                self.engine.on_broker_fills(item.fills)
            elif isinstance(item, OrderEnded):
                self.engine.on_order_ended(item.client_order_id, item.status, item.reason)
            else:
                self._apply(item)

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
            for index, bar in enumerate(self.feed.bars()):
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
