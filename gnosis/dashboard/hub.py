"""Fan messages out to WebSocket clients without ever making the bot wait.

``publish`` may be called from any thread (the core thread, in practice): it appends to a
deque, and that is all: it never blocks, never awaits and makes no system call. The event
loop drains the deque on a short timer (``DRAIN_INTERVAL``). Waking the loop from the core
thread instead (``call_soon_threadsafe`` writes to a pipe) measurably slowed the core: the
write releases the GIL mid-bar and the woken web thread takes it. The drain encodes each
message once and offers it to every client's bounded queue. A client whose queue is full
or whose send does not complete within the send timeout is dropped: a slow or dead browser
loses its connection (and reconnects), the bot and the other clients carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

log = logging.getLogger(__name__)

QUEUE_SIZE = 2_000
SEND_TIMEOUT = 5.0
PENDING_LIMIT = 100_000  # messages waiting for the loop; past this the loop is not draining
DRAIN_INTERVAL = 0.05  # seconds a message may wait for the loop: invisible on a page, and
# fewer wake-ups of the web thread disturb the core thread less (measured: bench_dashboard_fanout)


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


class Client:
    __slots__ = ("websocket", "queue", "since", "sent", "dropped", "gone")

    def __init__(self, websocket: WebSocket, queue_size: int, since: int) -> None:
        self.websocket = websocket
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_size)
        self.since = since  # the init carried the state up to this sequence number
        self.sent = 0
        self.dropped = ""
        self.gone = asyncio.Event()  # set when the broadcaster drops it


class Broadcaster:
    """Per-client bounded queues fed from any thread; one sender task per client."""

    def __init__(self, *, queue_size: int = QUEUE_SIZE, send_timeout: float = SEND_TIMEOUT,
                 drain_interval: float = DRAIN_INTERVAL,
                 before_drain: Callable[[], Any] | None = None) -> None:
        self.queue_size = queue_size
        self.before_drain = before_drain  # the publisher's pump: make this tick's messages
        self.send_timeout = send_timeout
        self.drain_interval = drain_interval
        self.clients: set[Client] = set()
        self.dropped_clients = 0
        self.lost_messages = 0  # dropped before reaching the loop (the loop was not draining)
        self.messages = 0
        self._pending: deque[dict[str, Any]] = deque()
        self._attached = False
        self._pump: asyncio.Task[None] | None = None

    def attach(self) -> None:
        """Start draining (on the running event loop)."""
        self._attached = True
        self._pump = asyncio.get_running_loop().create_task(self._drain_forever())

    async def detach(self) -> None:
        self._attached = False
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        self._pending.clear()

    # -- any thread ------------------------------------------------------------------------------
    def publish(self, message: dict[str, Any]) -> None:
        if not self._attached:
            return
        if len(self._pending) >= PENDING_LIMIT:
            self.lost_messages += 1
            return
        self._pending.append(message)

    # -- the event loop --------------------------------------------------------------------------
    async def _drain_forever(self) -> None:
        while True:
            await asyncio.sleep(self.drain_interval)
            self.drain()

    def drain(self) -> None:
        """Hand every pending message to the clients (loop thread only)."""
        if self.before_drain is not None:
            self.before_drain()
        pending = self._pending
        while pending:
            self.send_all(pending.popleft())

    def send_all(self, message: dict[str, Any]) -> None:
        """Offer one message to every client (loop thread only)."""
        self.messages += 1
        if not self.clients:
            return
        try:
            text = encode(message)
        except (TypeError, ValueError):
            log.exception("dashboard message %s is not JSON; not sent", message.get("type"))
            return
        seq = message.get("seq", 0)
        for client in list(self.clients):
            if seq <= client.since:
                continue  # already in the state this client's init carried
            try:
                client.queue.put_nowait(text)
            except asyncio.QueueFull:
                self._drop(client, f"fell {self.queue_size} messages behind")

    def _drop(self, client: Client, why: str) -> None:
        if client in self.clients:
            self.clients.discard(client)
            self.dropped_clients += 1
            client.dropped = why
            client.gone.set()
            log.info("dashboard client dropped: %s", why)

    def drop_all(self, why: str) -> None:
        """Disconnect every client (they reconnect and receive a fresh ``init``)."""
        for client in list(self.clients):
            self._drop(client, why)

    async def serve(self, websocket: WebSocket, init: Callable[[], dict[str, Any]]) -> None:
        """Run one client: ``init`` first, then every message after it, until it goes."""
        await websocket.accept()
        message = init()  # taken on the loop: no drain can run between it and registering
        client = Client(websocket, self.queue_size, message.get("seq", 0))
        self.clients.add(client)
        sender = asyncio.create_task(self._send(client, encode(message)))
        receiver = asyncio.create_task(self._receive(websocket))
        gone = asyncio.create_task(client.gone.wait())
        tasks = (sender, receiver, gone)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.clients.discard(client)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if client.dropped:  # tell it why, if it still listens; never wait for long
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(websocket.close(1013, client.dropped[:120]), 1.0)

    async def _send(self, client: Client, first: str) -> None:
        """Send what the client's queue holds, a batch at a time. One deadline covers a batch
        (``asyncio.timeout``: a timer, where ``wait_for`` per message made a task each time;
        with 100 clients that bookkeeping on the web thread competed with the core for the
        GIL as bars arrived)."""
        websocket, timeout, queue = client.websocket, self.send_timeout, client.queue
        batch = [first]
        while True:
            try:
                async with asyncio.timeout(timeout):
                    for text in batch:
                        await websocket.send_text(text)
                        client.sent += 1
            except TimeoutError:
                self._drop(client, f"a send took longer than {timeout:g} s")
                return
            except (WebSocketDisconnect, RuntimeError, OSError):
                return
            if client not in self.clients:
                return  # dropped while sending (its queue overflowed)
            batch = [await queue.get()]
            while not queue.empty():
                batch.append(queue.get_nowait())

    @staticmethod
    async def _receive(websocket: WebSocket) -> None:
        """Read (and ignore) what the client sends until it goes."""
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
        except (WebSocketDisconnect, RuntimeError):
            return

    async def close_all(self) -> None:
        for client in list(self.clients):
            self.clients.discard(client)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.websocket.close(1001, "server stopping"), 1.0)
