"""WebSocket sessions: the market-data streams (msgpack) and ``trade_updates`` (JSON).

Each connection has a bounded outbox drained by its own writer task, so a slow client never
stalls the exchange: when its outbox is full it is sent ``407 slow client`` and closed, as
Alpaca does. Messages produced during one exchange step are batched into one frame per
connection (server frames are arrays of maps). A stalled ("mute") connection stays open and is
sent nothing until the stall ends. Everything here runs on the server's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from gnosis.simexchange.wire import pack, stream_error, unpack_client

log = logging.getLogger(__name__)

STOCK_CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")
# Alpaca subscribes corrections and cancel errors along with trades
MIRRORED = ("corrections", "cancelErrors")
NEWS_CHANNELS = ("news",)
MARKET_ENDPOINTS = ("/v2/iex", "/v2/sip", "/v2/test")
NEWS_ENDPOINT = "/v1beta1/news"
TRADING_ENDPOINT = "/stream"
_CLOSE = object()


@dataclass(slots=True)
class Credentials:
    """The keys the exchange accepts: exactly these, or any non-empty pair when unset."""

    key: str | None = None
    secret: str | None = None

    def accepts(self, key: object, secret: object) -> bool:
        if not isinstance(key, str) or not isinstance(secret, str) or not key or not secret:
            return False
        if self.key is None or self.secret is None:
            return True
        return hmac.compare_digest(key, self.key) and hmac.compare_digest(secret, self.secret)


@dataclass(eq=False, slots=True)
class Connection:
    websocket: WebSocket
    endpoint: str
    limit: int
    binary: bool = True
    key: str | None = None
    subscriptions: dict[str, set[str]] = field(default_factory=dict)
    pending: list[dict[str, Any]] = field(default_factory=list)
    muted_until: float = 0.0  # loop time
    closed: bool = False
    slow: bool = False
    sent_frames: int = 0
    outbox: asyncio.Queue[Any] = field(init=False)

    def __post_init__(self) -> None:
        self.outbox = asyncio.Queue(maxsize=self.limit)

    @property
    def authenticated(self) -> bool:
        return self.key is not None

    def muted(self) -> bool:
        return asyncio.get_running_loop().time() < self.muted_until

    def wants(self, channel: str, symbol: str | tuple[str, ...] | None) -> bool:
        """Subscribed to ``channel`` for ``symbol`` (or for any of a tuple of symbols)."""
        symbols = self.subscriptions.get(channel)
        if not symbols:
            return False
        if "*" in symbols:
            return True
        if isinstance(symbol, tuple):
            return not symbols.isdisjoint(symbol)
        return symbol in symbols

    def offer(self, frame: Any) -> bool:
        """Queue a frame without waiting; a full outbox makes this a slow client."""
        if self.closed:
            return False
        try:
            self.outbox.put_nowait(frame)
        except asyncio.QueueFull:
            self._too_slow()
            return False
        return True

    def _too_slow(self) -> None:
        self.slow = True
        while not self.outbox.empty():
            self.outbox.get_nowait()
        self.outbox.put_nowait(pack([stream_error(407)]) if self.endpoint != TRADING_ENDPOINT
                               else json.dumps({"stream": "error",
                                                "data": {"error": "slow client"}}))
        self.outbox.put_nowait(_CLOSE)
        self.closed = True

    def close_after_sending(self) -> None:
        if not self.closed:
            with contextlib.suppress(asyncio.QueueFull):
                self.outbox.put_nowait(_CLOSE)
            self.closed = True

    async def writer(self) -> None:
        """Send queued frames in order; close the socket after ``_CLOSE``."""
        try:
            while True:
                frame = await self.outbox.get()
                if frame is _CLOSE:
                    await self.websocket.close(code=1008 if self.slow else 1000)
                    return
                if isinstance(frame, bytes):
                    await self.websocket.send_bytes(frame)
                else:
                    await self.websocket.send_text(frame)
                self.sent_frames += 1
        except (WebSocketDisconnect, RuntimeError, OSError):
            # the peer went away, or the socket closed under us: nothing more to send
            self.closed = True


class StreamHub:
    """The live connections of every stream endpoint and what they subscribed to."""

    def __init__(self, credentials: Credentials, *, outbox_limit: int = 2000,
                 auth_timeout_s: float = 10.0, refuse: Callable[[str], bool] | None = None
                 ) -> None:
        self.credentials = credentials
        self.outbox_limit = outbox_limit
        self.auth_timeout_s = auth_timeout_s
        self.connections: set[Connection] = set()
        self._keys: dict[tuple[str, str], Connection] = {}
        self._refuse = refuse or (lambda endpoint: False)
        self.slow_disconnects = 0
        self.refused = 0

    # -- publishing --------------------------------------------------------------------------
    def publish(self, endpoints: tuple[str, ...], channel: str,
                symbol: str | tuple[str, ...] | None, message: dict[str, Any]) -> None:
        for conn in self.connections:
            if conn.endpoint in endpoints and conn.authenticated and not conn.closed \
                    and conn.wants(channel, symbol):
                conn.pending.append(message)

    def trade_update(self, data: dict[str, Any]) -> None:
        frame = {"stream": "trade_updates", "data": data}
        for conn in self.connections:
            if conn.endpoint == TRADING_ENDPOINT and conn.authenticated and not conn.closed \
                    and conn.wants("trade_updates", None):
                conn.pending.append(frame)

    def flush(self) -> None:
        """Send what this step produced: one frame per market-data connection, one per trade
        update (the trading stream sends one JSON object per frame)."""
        for conn in list(self.connections):
            if not conn.pending:
                continue
            messages, conn.pending = conn.pending, []
            if conn.closed or conn.muted():
                continue
            if conn.endpoint == TRADING_ENDPOINT:
                for message in messages:
                    text = json.dumps(message)
                    if not conn.offer(text.encode() if conn.binary else text):
                        break
            else:
                conn.offer(pack(messages))
            if conn.slow:
                self.slow_disconnects += 1
                self._forget(conn)

    # -- faults -------------------------------------------------------------------------------
    def drop(self, endpoint: str | None = None) -> int:
        """Close every connection (of one endpoint) now, as a network drop would."""
        dropped = 0
        for conn in list(self.connections):
            if endpoint is None or conn.endpoint == endpoint:
                self._forget(conn)
                conn.closed = True
                conn.pending.clear()
                asyncio.get_running_loop().create_task(self._abort(conn))
                dropped += 1
        return dropped

    @staticmethod
    async def _abort(conn: Connection) -> None:
        with contextlib.suppress(Exception):  # the socket may already be gone
            await conn.websocket.close(code=1011)

    def stall(self, endpoint: str, seconds: float) -> int:
        until = asyncio.get_running_loop().time() + seconds
        stalled = 0
        for conn in self.connections:
            if conn.endpoint == endpoint:
                conn.muted_until = until
                stalled += 1
        return stalled

    def listeners(self) -> int:
        """Trading-stream connections listening to ``trade_updates``."""
        return sum(1 for c in self.connections if c.endpoint == TRADING_ENDPOINT
                   and c.wants("trade_updates", None))

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for conn in self.connections:
            counts[conn.endpoint] = counts.get(conn.endpoint, 0) + 1
        return counts

    def _forget(self, conn: Connection) -> None:
        self.connections.discard(conn)
        if conn.key is not None and self._keys.get((conn.endpoint, conn.key)) is conn:
            del self._keys[(conn.endpoint, conn.key)]

    # -- sessions -----------------------------------------------------------------------------
    async def serve_market(self, websocket: WebSocket, endpoint: str) -> None:
        """A market-data or news stream: msgpack, Alpaca's handshake and subscriptions."""
        await websocket.accept()
        conn = Connection(websocket, endpoint, self.outbox_limit)
        self.connections.add(conn)
        writer = asyncio.get_running_loop().create_task(conn.writer())
        conn.offer(pack([{"T": "success", "msg": "connected"}]))
        deadline = asyncio.get_running_loop().time() + self.auth_timeout_s
        try:
            while not conn.closed:
                timeout = None if conn.authenticated else max(
                    0.0, deadline - asyncio.get_running_loop().time())
                try:
                    message = await asyncio.wait_for(websocket.receive(), timeout)
                except TimeoutError:
                    self._reply(conn, [stream_error(404)])
                    conn.close_after_sending()
                    break
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("bytes")
                if data is None:
                    data = message.get("text")
                if data is None:
                    continue
                self._handle_market(conn, data)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went away mid-message
        finally:
            self._forget(conn)
            conn.closed = True
            await _finish(writer, conn)

    def _reply(self, conn: Connection, messages: list[dict[str, Any]]) -> None:
        conn.offer(pack(messages))

    def _handle_market(self, conn: Connection, data: bytes | str) -> None:
        try:
            request = unpack_client(data)
        except Exception:  # noqa: BLE001 - msgpack and json raise many kinds; all are bad syntax
            self._reply(conn, [stream_error(400)])
            return
        if not isinstance(request, dict):
            self._reply(conn, [stream_error(400)])
            return
        action = request.get("action")
        if action == "auth":
            self._authenticate(conn, request)
        elif action in ("subscribe", "unsubscribe"):
            if not conn.authenticated:
                self._reply(conn, [stream_error(401)])
                return
            self._subscribe(conn, request, action == "subscribe")
        else:
            self._reply(conn, [stream_error(410 if conn.authenticated else 401)])

    def _authenticate(self, conn: Connection, request: dict[str, Any]) -> None:
        if conn.authenticated:
            self._reply(conn, [stream_error(403)])
            return
        key, secret = request.get("key"), request.get("secret")
        if not self.credentials.accepts(key, secret):
            self._reply(conn, [stream_error(402)])
            conn.close_after_sending()
            return
        assert isinstance(key, str)
        if (conn.endpoint, key) in self._keys or self._refuse(conn.endpoint):
            self.refused += 1
            self._reply(conn, [stream_error(406)])
            conn.close_after_sending()
            return
        conn.key = key
        self._keys[(conn.endpoint, key)] = conn
        self._reply(conn, [{"T": "success", "msg": "authenticated"}])

    def _subscribe(self, conn: Connection, request: dict[str, Any], add: bool) -> None:
        channels = NEWS_CHANNELS if conn.endpoint == NEWS_ENDPOINT else STOCK_CHANNELS
        for channel in channels:
            symbols = request.get(channel)
            if symbols is None:
                continue
            if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
                self._reply(conn, [stream_error(400)])
                return
            current = conn.subscriptions.setdefault(channel, set())
            if add:
                current.update(s.upper() if s != "*" else s for s in symbols)
            else:
                current.difference_update(s.upper() if s != "*" else s for s in symbols)
        ack: dict[str, Any] = {"T": "subscription"}
        for channel in channels:
            ack[channel] = sorted(conn.subscriptions.get(channel, ()))
        if conn.endpoint != NEWS_ENDPOINT:
            for channel in MIRRORED:
                ack[channel] = list(ack["trades"])
        self._reply(conn, [ack])

    async def serve_trading(self, websocket: WebSocket) -> None:
        """The ``trade_updates`` stream: JSON; replies in the frame type the client uses."""
        await websocket.accept()
        conn = Connection(websocket, TRADING_ENDPOINT, self.outbox_limit, binary=False)
        self.connections.add(conn)
        writer = asyncio.get_running_loop().create_task(conn.writer())
        try:
            while not conn.closed:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("bytes") is not None:
                    conn.binary = True
                    data: bytes | str = message["bytes"]
                elif message.get("text") is not None:
                    conn.binary = False
                    data = message["text"]
                else:
                    continue
                self._handle_trading(conn, data)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            self._forget(conn)
            conn.closed = True
            await _finish(writer, conn)

    def _send_json(self, conn: Connection, payload: dict[str, Any]) -> None:
        text = json.dumps(payload)
        conn.offer(text.encode() if conn.binary else text)

    def _handle_trading(self, conn: Connection, data: bytes | str) -> None:
        try:
            request = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            self._send_json(conn, {"stream": "error", "data": {"error": "invalid syntax"}})
            return
        if not isinstance(request, dict):
            self._send_json(conn, {"stream": "error", "data": {"error": "invalid syntax"}})
            return
        action = request.get("action")
        data_field = request.get("data")
        body: dict[str, Any] = data_field if isinstance(data_field, dict) else {}
        if action in ("authenticate", "auth"):
            key, secret = body.get("key_id"), body.get("secret_key")
            ok = self.credentials.accepts(key, secret)
            self._send_json(conn, {"stream": "authorization", "data": {
                "status": "authorized" if ok else "unauthorized", "action": "authenticate"}})
            if ok:
                conn.key = str(key)
            else:
                conn.close_after_sending()
        elif action == "listen":
            if not conn.authenticated:
                self._send_json(conn, {"stream": "authorization", "data": {
                    "status": "unauthorized", "action": "listen"}})
                return
            streams = body.get("streams")
            if not isinstance(streams, list):
                self._send_json(conn, {"stream": "error", "data": {
                    "error": "listen needs data.streams, a list"}})
                return
            conn.subscriptions["trade_updates"] = (
                {"*"} if "trade_updates" in streams else set())
            listening = ["trade_updates"] if "trade_updates" in streams else []
            self._send_json(conn, {"stream": "listening", "data": {"streams": listening}})
        else:
            self._send_json(conn, {"stream": "error", "data": {
                "error": f"unrecognized action {action!r}"}})


async def _finish(writer: asyncio.Task[None], conn: Connection) -> None:
    """Let the writer send what is queued (a final error frame), then stop it."""
    with contextlib.suppress(asyncio.QueueFull):
        conn.outbox.put_nowait(_CLOSE)
    try:
        await asyncio.wait_for(asyncio.shield(writer), timeout=1.0)
    except (TimeoutError, asyncio.CancelledError):
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer
