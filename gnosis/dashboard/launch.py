"""Attach the dashboard to a bot: what ``gnosis run`` calls, in a few lines.

The publisher and the state file are always attached (cheap: small dicts on the core thread,
one file write a second off it), so a standalone dashboard can follow any running bot; the web
server (FastAPI + uvicorn, imported only then) starts only when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gnosis.dashboard.publisher import DashboardPublisher, StateFileWriter


class DashboardError(Exception):
    """The dashboard cannot start; the message says why in one line."""


@dataclass
class AttachedDashboard:
    """The in-process dashboard of one bot: publisher, state file and (optionally) server."""

    publisher: DashboardPublisher
    writer: StateFileWriter | None
    handle: Any = None  # server.DashboardHandle when serving

    @property
    def url(self) -> str | None:
        return None if self.handle is None else self.handle.url

    def close(self) -> None:
        if self.handle is not None:
            if self.handle.backend is not None:
                self.publisher.remove_sink(self.handle.backend.broadcaster.publish)
            self.handle.stop()
        if self.writer is not None:
            self.writer.close()


def check(serve_web: bool, host: str | None, port: int | None, token: str | None) -> None:
    """Refuse a bad bind before any work is done (a public address needs a token)."""
    if not serve_web:
        return
    from gnosis.dashboard import server

    if port is not None and not 0 <= port <= 65_535:
        raise DashboardError(f"--port {port} is not a TCP port (0-65535; 0 picks a free one)")
    server.check_bind(host or server.DEFAULT_HOST, server.resolve_token(token))


def attach(engine: Any, bot: Any = None, *, state_dir: Path | None = None,
           serve_web: bool = True, host: str | None = None, port: int | None = None,
           token: str | None = None, **fan_out: Any) -> AttachedDashboard:
    """Publish an engine's state (and ``<state_dir>/dashboard.json``); with ``serve_web``,
    serve the dashboard too, its control going through ``bot``'s command queue.
    ``fan_out`` (``queue_size``, ``send_timeout``) tunes the per-client queues."""
    check(serve_web, host, port, token)
    publisher = DashboardPublisher(engine)
    publisher.seed_from_journal(getattr(engine, "store", None))
    writer = (StateFileWriter(publisher.state, state_dir, pump=publisher.pump).start()
              if state_dir else None)
    attached = AttachedDashboard(publisher, writer)
    if not serve_web:
        return attached
    from gnosis.dashboard import server
    from gnosis.dashboard.app import Backend
    from gnosis.dashboard.hub import Broadcaster

    broadcaster = Broadcaster(before_drain=publisher.pump, **fan_out)
    backend = Backend(publisher.state, broadcaster, "attached",
                      control=server.bot_control(bot) if bot is not None else None,
                      token=server.resolve_token(token), operator=publisher.operator,
                      sync=publisher.pump)
    try:
        attached.handle = server.serve(backend, host=host or server.DEFAULT_HOST,
                                       port=server.DEFAULT_PORT if port is None else port)
    except DashboardError:
        attached.close()
        raise
    publisher.add_sink(broadcaster.publish)
    return attached
