"""Run the bot's Alpaca mode in this process against an in-process ``gnosis sim-exchange``.

``BotRun`` builds the bot with the production wiring (``build_alpaca_bot``) from a config that
points at the simulator, runs ``LiveBot.run()`` in a background thread (as a dashboard would),
records the engine's events, and stops it cleanly. Timeouts here are safety nets against hangs,
never assertions about speed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from gnosis.adapters.alpaca.wiring import build_alpaca_bot
from gnosis.core.config import GnosisConfig, load_config
from gnosis.model.events import (
    DecisionMade,
    Notice,
    OrderCanceled,
    OrderFilled,
    OrderSubmitted,
)
from gnosis.simexchange import SimExchangeServer
from tests.support.sim_exchange import wait_for

# the adapter's timings, shrunk for a simulator that runs minutes in fractions of a second
FAST_ALPACA = {"watchdog_s": 1.5, "clock_poll_s": 0.3, "order_poll_s": 0.5,
               "minute_grace_s": 0.2, "stale_after_s": 120.0, "options_refresh_s": 600.0}


def point_at(server: SimExchangeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Set the ALPACA_* variables as ``gnosis sim-exchange`` prints them."""
    for name, value in server.environment().items():
        monkeypatch.setenv(name, value)


def config_for(symbols: tuple[str, ...], *, strategy: str = "sma", warmup_days: int = 1,
               **alpaca: Any) -> GnosisConfig:
    return load_config(market={"symbols": symbols, "warmup_days": warmup_days},
                       strategy={"name": strategy, "sma_fast": 3, "sma_slow": 8},
                       alpaca={**FAST_ALPACA, **alpaca})


@dataclass
class BotRun:
    config: GnosisConfig
    broker: str = "alpaca"
    state_dir: Path | None = None
    max_bars: int | None = None
    record: int = 100_000
    fresh: bool = False
    notices: list[str] = field(default_factory=list)
    decisions: list[Any] = field(default_factory=list)
    fills: list[Any] = field(default_factory=list)
    submitted: list[Any] = field(default_factory=list)
    canceled: list[Any] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self._built = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-bot", daemon=True)

    @property
    def engine(self) -> Any:
        return self.system.engine

    def _build(self) -> None:
        # in the bot's own thread: the state store's SQLite connection belongs to it
        self.bot, self.system, self.parts = build_alpaca_bot(
            self.config, broker=self.broker, state_dir=self.state_dir, fresh=self.fresh,
            max_bars=self.max_bars, record=self.record)
        bus = self.system.bus
        bus.subscribe(Notice, lambda e: self.notices.append(e.message))
        bus.subscribe(DecisionMade, lambda e: self.decisions.append(e))
        bus.subscribe(OrderFilled, lambda e: self.fills.append(e.fill))
        bus.subscribe(OrderSubmitted, lambda e: self.submitted.append(e.order))
        bus.subscribe(OrderCanceled, lambda e: self.canceled.append(e))

    def _run(self) -> None:
        try:
            self._build()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            self.error = exc
            self._built.set()
            return
        self._built.set()
        try:
            self.summary = self.bot.run()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            self.error = exc
        finally:
            if self.system.store is not None:
                self.system.store.close()

    def start(self) -> BotRun:
        self._thread.start()
        self._built.wait(60)
        if self.error is not None:
            raise self.error
        return self

    def wait(self, predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
        def check() -> Any:
            if self.error is not None:
                raise self.error
            return predicate()
        return wait_for(check, timeout=timeout, what=what)

    def live_bars(self) -> int:
        return int(self.engine.stats.bars)

    def finish(self, timeout: float = 60.0) -> dict[str, Any]:
        """Stop the bot (if it is still running) and return its summary."""
        self.bot.stop()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the bot did not stop"
        if self.error is not None:
            raise self.error
        assert self.summary is not None
        return self.summary

    def notice(self, words: str) -> str | None:
        return next((n for n in self.notices if words in n), None)


def rest_get(server: SimExchangeServer, path: str, **params: Any) -> Any:
    headers = {"APCA-API-KEY-ID": server.exchange.settings.key or "sim-key",
               "APCA-API-SECRET-KEY": server.exchange.settings.secret or "sim-secret"}
    response = requests.get(f"{server.base_url}{path}", params=params, headers=headers,
                            timeout=30)
    response.raise_for_status()
    return response.json()


def venue_positions(server: SimExchangeServer) -> dict[str, float]:
    return {p["symbol"]: float(p["qty"]) for p in rest_get(server, "/v2/positions")}


def book_positions(run: BotRun) -> dict[str, float]:
    return {s: p.quantity for s, p in run.engine.positions.positions.items()}


def venue_orders(server: SimExchangeServer) -> list[dict[str, Any]]:
    return list(rest_get(server, "/v2/orders", status="all", limit=500, nested="true"))
