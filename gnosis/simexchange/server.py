"""Serve an exchange with uvicorn on 127.0.0.1, in the foreground (the CLI) or in a thread
(tests, and bots that embed the simulator). The socket is bound before uvicorn starts, so port 0
yields a free port that is known before the first request."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from gnosis.core.clock import LiveClock
from gnosis.simexchange.app import build_app
from gnosis.simexchange.exchange import ExchangeSettings, SimExchange
from gnosis.simexchange.faults import parse_fault

log = logging.getLogger(__name__)
HOST = "127.0.0.1"


class _Server(uvicorn.Server):
    """uvicorn's server, except that Ctrl-C and SIGTERM end it with a clean exit: uvicorn
    re-raises the signal after its graceful shutdown, so the process would die by it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def stop(sig: int, frame: object) -> None:
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True  # a second Ctrl-C: do not wait for connections
            self.should_exit = True

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def bind(port: int, host: str = HOST) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0: a free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class SimExchangeServer:
    """An exchange behind uvicorn on one loopback port."""

    def __init__(self, settings: ExchangeSettings | SimExchange, port: int = 0,
                 log_level: str = "warning") -> None:
        self.exchange = settings if isinstance(settings, SimExchange) else SimExchange(settings)
        self.socket = bind(port)
        self.port: int = self.socket.getsockname()[1]
        config = uvicorn.Config(build_app(self.exchange), log_level=log_level,
                                ws="websockets-sansio", lifespan="on",
                                timeout_graceful_shutdown=3, ws_ping_interval=20.0,
                                ws_ping_timeout=20.0)
        self.server = _Server(config)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- addresses ----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def stream_url(self) -> str:
        return f"ws://{HOST}:{self.port}"

    def environment(self) -> dict[str, str]:
        """The variables that point the bot's Alpaca mode at this exchange."""
        settings = self.exchange.settings
        return {
            "ALPACA_BASE_URL": self.base_url,
            "ALPACA_DATA_URL": self.base_url,
            "ALPACA_STREAM_URL": self.stream_url,
            "ALPACA_API_KEY": settings.key or "sim-key",
            "ALPACA_SECRET_KEY": settings.secret or "sim-secret",
        }

    # -- foreground -----------------------------------------------------------------------------
    def serve_forever(self) -> None:
        """Run until Ctrl-C or SIGTERM (uvicorn installs the handlers and shuts down cleanly)."""
        self.server.run(sockets=[self.socket])

    # -- background -----------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> SimExchangeServer:
        """Serve from a daemon thread; return once the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the server is already running")
        self._thread = threading.Thread(target=self._run_in_thread, name="sim-exchange",
                                        daemon=True)
        self._thread.start()
        clock = LiveClock()
        deadline = clock.monotonic_ns() + int(timeout * 1e9)
        while not self.server.started:
            if not self._thread.is_alive() or clock.monotonic_ns() > deadline:
                self.stop()
                raise RuntimeError(f"sim-exchange did not start within {timeout} s")
            clock.sleep(0.01)
        return self

    def _run_in_thread(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self.server.serve(sockets=[self.socket]))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            self._thread = None
        self.socket.close()

    def __enter__(self) -> SimExchangeServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- thread-safe control ------------------------------------------------------------------
    def call(self, fn: Any, *args: Any, timeout: float = 10.0) -> Any:
        """Run ``fn(*args)`` on the server's loop (where the exchange lives) and return it."""
        loop = self._loop
        if loop is None:
            return fn(*args)

        async def run() -> Any:
            return fn(*args)

        future: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(run(), loop)
        return future.result(timeout)

    def inject(self, fault: dict[str, Any]) -> dict[str, Any]:
        """Inject a fault described as for ``POST /_sim/faults`` (see ``faults``)."""
        spec = parse_fault(fault)
        return dict(self.call(self.exchange.inject, spec))

    def pause(self) -> None:
        self.call(self.exchange.clock.pause)

    def resume(self) -> None:
        self.call(self.exchange.clock.resume)

    def advance(self, seconds: float) -> None:
        """Jump the simulated clock forward and process what became due."""
        def go() -> None:
            self.exchange.clock.advance(seconds)
            self.exchange.step()
        self.call(go)

    def status(self) -> dict[str, Any]:
        return dict(self.call(self.exchange.status))
