"""Serve the dashboard from inside the bot's process: uvicorn on its own thread and loop.

The bot's ``run()`` keeps the main thread (and its signal handlers); uvicorn runs in a daemon
thread with its own event loop, on a socket this module binds first, so a busy port is a clear
error before the bot starts, and port 0 picks a free one.
"""

from __future__ import annotations

import ipaddress
import os
import queue
import socket
import threading
from dataclasses import dataclass
from typing import Any

import uvicorn

from gnosis.dashboard.app import Backend, create_app
from gnosis.dashboard.launch import DashboardError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
TOKEN_ENV = "GNOSIS_DASHBOARD_TOKEN"  # noqa: S105 - the variable's name, not a token


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_token(token: str | None) -> str | None:
    """The control token: ``--token`` first, then ``GNOSIS_DASHBOARD_TOKEN``."""
    token = token or os.environ.get(TOKEN_ENV) or None
    return (token.strip() or None) if token else None


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve on anything but loopback without a token."""
    if not is_loopback(host) and not token:
        raise DashboardError(
            f"refusing to serve the dashboard on {host} without a token: anyone who can reach "
            f"it could halt or flatten the bot; pass --token or set {TOKEN_ENV} "
            f"(or bind {DEFAULT_HOST})")


def bot_control(bot: Any) -> Any:
    """Submit commands through a ``LiveBot``'s command port (thread-safe, never blocking;
    the core takes them before its next bar). False when the port refuses for lack of room."""

    def submit(name: str, reason: str) -> bool:
        try:
            bot.command(name, reason)
        except queue.Full:
            return False
        return True

    return submit


@dataclass
class DashboardHandle:
    url: str
    host: str
    port: int
    backend: Backend | None
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise DashboardError(f"cannot serve the dashboard on {host}:{port}: "
                             f"{exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(backend: Backend, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          startup_timeout: float = 30.0) -> DashboardHandle:
    """Start uvicorn for ``backend`` in a daemon thread; return once it accepts connections."""
    check_bind(host, backend.token)
    handle = serve_app(create_app(backend), host=host, port=port,
                       startup_timeout=startup_timeout)
    handle.backend = backend
    return handle


def serve_app(app: Any, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
              startup_timeout: float = 30.0) -> DashboardHandle:
    """Start uvicorn for an ASGI app in a daemon thread (the standalone app too, in tests)."""
    sock = _bind(host, port)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on",
        ws_per_message_deflate=False,  # compressing each message once per client costs CPU
        timeout_graceful_shutdown=3, ws_ping_interval=20.0, ws_ping_timeout=20.0,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="gnosis-dashboard", daemon=True)
    thread.start()
    pause = threading.Event()  # never set: a sleep that reads no clock
    for _ in range(int(startup_timeout / 0.02)):
        if server.started or not thread.is_alive():
            break
        pause.wait(0.02)
    if not server.started:
        server.should_exit = True
        sock.close()
        raise DashboardError(f"the dashboard server did not start on {host}:{port}")
    shown = f"[{host}]" if ":" in host else host
    return DashboardHandle(f"http://{shown}:{port}", host, port, None, server, thread)
