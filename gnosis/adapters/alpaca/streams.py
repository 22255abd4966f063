"""alpaca-py's websocket clients, run the way the SDK allows inside our own process.

``StreamThread`` is one background thread with its own asyncio loop; a stream runs there as
``stream._run_forever()`` (``.run()`` would call ``asyncio.run`` and cannot share a loop), and
is stopped with ``stop_ws()`` and a close of its socket (without the close, the SDK notices the
stop only after its 5 s receive timeout).

The SDK reconnects by itself (exponential backoff 1 → 30 s with jitter) but tells nobody that
it did. The ``Hooked*`` subclasses wrap the SDK's connect-and-authenticate step,
``_start_ws``, and nothing else: ``on_connect`` is called after every successful (re)connection
and ``on_failure`` with the reason when one fails (``auth failed`` = 402, ``connection limit
exceeded`` = 406, ``insufficient subscription`` = 409). That is the seam the feed and the broker
use to backfill and reconcile after a reconnect.

The SDK logs websocket failures with ``log.exception``; ``quiet_sdk_logs`` turns those records
into one line without a traceback (the hooks already report them as notices).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from alpaca.data.live import NewsDataStream, StockDataStream
from alpaca.trading.stream import TradingStream

log = logging.getLogger(__name__)
_SDK_LOGGERS = ("alpaca.data.live.websocket", "alpaca.trading.stream")
_STOP_WAIT_S = 10.0


class _OneLine(logging.Filter):
    """A record with a traceback becomes one line naming the exception."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "sent 1000 (OK)" in record.getMessage():
            return False  # our own clean close on stop, not an error
        if record.exc_info:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()} ({type(exc).__name__})"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


_quieted = False


def quiet_sdk_logs() -> None:
    """Install the one-line filter on the SDK's stream loggers (once per process)."""
    global _quieted
    if _quieted:
        return
    for name in _SDK_LOGGERS:
        logging.getLogger(name).addFilter(_OneLine())
    _quieted = True


Hook = Callable[[], None]
FailureHook = Callable[[Exception], None]


class _Hooked:
    """Mixin first in the bases: wraps the SDK stream's connect-and-authenticate step."""

    on_connect: Hook
    on_failure: FailureHook

    def __init__(self, *args: Any, on_connect: Hook | None = None,
                 on_failure: FailureHook | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_connect = on_connect or (lambda: None)
        self.on_failure = on_failure or (lambda exc: None)

    async def _start_ws(self) -> None:
        try:
            await super()._start_ws()  # type: ignore[misc]
        except Exception as exc:
            self.on_failure(exc)
            raise
        self.on_connect()


class HookedStockStream(_Hooked, StockDataStream):
    """``StockDataStream`` that reports each (re)connection and each failed attempt."""


class HookedNewsStream(_Hooked, NewsDataStream):
    """``NewsDataStream`` that reports each (re)connection and each failed attempt."""


class HookedTradingStream(_Hooked, TradingStream):
    """``TradingStream`` that reports each (re)connection and each failed attempt."""


def failure_reason(exc: Exception) -> str:
    """What a failed connection attempt means, for a person."""
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "auth failed" in lowered or "failed to authenticate" in lowered:
        return "the keys were rejected (402 auth failed)"
    if "connection limit" in lowered:
        return ("connection limit exceeded (406): another connection with these keys is open; "
                "the SDK retries with backoff")
    if "insufficient subscription" in lowered:
        return "insufficient subscription (409): the data plan does not include this feed"
    return text


def is_fatal(exc: Exception) -> bool:
    """A failure that retrying will not cure (rejected keys, a feed the plan lacks)."""
    lowered = str(exc).lower()
    return any(word in lowered for word in ("auth failed", "failed to authenticate",
                                             "insufficient subscription"))


class StreamThread:
    """A daemon thread running an asyncio loop, for the SDK's streams and small tasks."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._streams: list[tuple[Any, concurrent.futures.Future[Any]]] = []
        self._started = False

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def start(self) -> StreamThread:
        if not self._started:
            self._thread.start()
            self._started = True
        return self

    def submit(self, coroutine: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        """Run a coroutine on the loop; thread-safe."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def run_stream(self, stream: Any) -> None:
        """Start ``stream._run_forever()`` (subscribe before calling this)."""
        quiet_sdk_logs()
        self._streams.append((stream, self.submit(self._guard(stream))))

    async def _guard(self, stream: Any) -> None:
        try:
            await stream._run_forever()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a stream that dies must not kill the loop
            log.warning("%s stream ended: %s", self.name, exc)

    def reconnect(self, stream: Any) -> None:
        """Close the stream's socket: the SDK notices and reconnects (a mute-stream cure)."""
        if self._started and not self.loop.is_closed():
            self.submit(_close_quietly(stream))

    def stop(self) -> None:
        """Stop every stream, then the loop; returns within ``_STOP_WAIT_S`` seconds."""
        if not self._started or self.loop.is_closed():
            return
        for stream, _future in self._streams:
            with contextlib.suppress(Exception):
                self.submit(_stop_stream(stream)).result(_STOP_WAIT_S)
        for _stream, future in self._streams:
            try:
                future.result(_STOP_WAIT_S)
            except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                future.cancel()
            except Exception:  # noqa: BLE001, S110 - already logged by _guard
                pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(_STOP_WAIT_S)


async def _close_quietly(stream: Any) -> None:
    with contextlib.suppress(Exception):
        await stream.close()


async def _stop_stream(stream: Any) -> None:
    await stream.stop_ws()
    await _close_quietly(stream)
